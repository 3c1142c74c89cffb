"""The hash chain that makes the audit tamper-evident, as pure logic.

Each agency has one chain. Entry ``seq`` (1, 2, 3, … without gaps) stores the hash of entry
``seq - 1`` (``prev_hash``; 32 zero bytes for the first) and its own ``hash = SHA-256(prev_hash
|| canonical)``, where ``canonical`` is a deterministic JSON of every field of the entry,
``seq`` and ``agency`` included. The chain head (last seq and hash) is kept beside the entries.
Walking the chain then finds:

- an edited entry: its content no longer gives its hash;
- a removed entry: a gap in ``seq``, or, if renumbered, a ``prev_hash`` that does not match;
- a reordered pair: a ``prev_hash`` (or a ``seq`` inside the hash) that does not match;
- a removed tail: the head names a later seq and hash than the last entry;
- a rewritten tail with a rewritten head: the last entry of every batch carries its
  writer's signature over the head (:mod:`.signing`), which a database superuser cannot
  forge; a chain re-hashed after an edit no longer matches those signatures;
- a tail cut back to an earlier signed entry: only a checkpoint kept elsewhere (published to
  Kafka and a time-stamping authority, or ``audit head`` handed to another party) shows it,
  which is why ``verify`` takes checkpoints as anchors.

After ``govsync audit prune`` a chain starts at a signed ``cut`` checkpoint instead of seq 0.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from sync.audit.disclosure import Disclosure
from sync.audit.signing import Checkpoint, Signer, TrustedKeys

GENESIS = bytes(32)
CANONICAL_VERSION = 1


@dataclass(frozen=True, slots=True)
class Entry:
    """One stored audit entry, as written and as read back (unvalidated: read from storage,
    any field may have been tampered with)."""

    seq: int
    agency: str
    subjects: tuple[str, ...]
    topic: str
    op: str
    fields: tuple[str, ...]
    purpose: str
    legal_basis: str
    event_id: str
    lsn: str
    index: int
    committed_at: datetime
    recorded_at: datetime
    prev_hash: bytes
    hash: bytes
    # on the last entry of a batch: its writer's key and signature over the head it makes
    key_id: str | None = None
    signature: bytes | None = None

    @property
    def checkpoint(self) -> Checkpoint | None:
        """The signed head this entry carries, if it ends a batch."""
        if self.key_id is None or self.signature is None:
            return None
        return Checkpoint(
            "head", self.agency, self.seq, self.hash, self.recorded_at, self.key_id, self.signature
        )

    @classmethod
    def link(
        cls, seq: int, disclosure: Disclosure, recorded_at: datetime, prev_hash: bytes
    ) -> Entry:
        """The entry that follows ``prev_hash`` at ``seq``, hashed."""
        d = disclosure
        digest = chained_hash(prev_hash, _canonical(seq, d, _instant(recorded_at)))
        return cls(
            seq=seq,
            agency=d.agency,
            subjects=d.subjects,
            topic=d.topic,
            op=d.op,
            fields=d.fields,
            purpose=d.purpose,
            legal_basis=d.legal_basis,
            event_id=d.event_id,
            lsn=d.lsn,
            index=d.index,
            committed_at=d.committed_at,
            recorded_at=recorded_at,
            prev_hash=prev_hash,
            hash=digest,
        )


def canonical(entry: Entry) -> bytes:
    """The entry's fields as deterministic JSON (sorted keys, no spaces, UTF-8, times in UTC
    with microseconds), hashes excluded. Versioned so the form can change without breaking
    the verification of older entries."""
    return _canonical(entry.seq, entry, _instant(entry.recorded_at))


def _canonical(seq: int, e: Entry | Disclosure, recorded_at: str) -> bytes:
    document = {
        "v": CANONICAL_VERSION,
        "seq": seq,
        "agency": e.agency,
        "subjects": list(e.subjects),
        "topic": e.topic,
        "op": e.op,
        "fields": list(e.fields),
        "purpose": e.purpose,
        "legal_basis": e.legal_basis,
        "event_id": e.event_id,
        "lsn": e.lsn,
        "index": e.index,
        "committed_at": _instant(e.committed_at),
        "recorded_at": recorded_at,
    }
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


def _instant(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def chained_hash(prev_hash: bytes, canonical_bytes: bytes) -> bytes:
    return hashlib.sha256(prev_hash + canonical_bytes).digest()


@dataclass(frozen=True, slots=True)
class Head:
    """Where an agency's chain ends: its last seq (0 when empty) and that entry's hash."""

    agency: str
    seq: int = 0
    hash: bytes = GENESIS

    def __str__(self) -> str:
        return f"{self.agency}:{self.seq}:{self.hash.hex()}"

    @classmethod
    def parse(cls, text: str) -> Head:
        """``AGENCY:SEQ:HASH`` as printed by ``govsync audit head``."""
        agency, _, rest = text.partition(":")
        seq, _, digest = rest.partition(":")
        try:
            head = cls(agency, int(seq), bytes.fromhex(digest))
        except ValueError:
            head = None
        if head is None or not agency or len(head.hash) != 32 or head.seq < 0:
            raise ValueError(f"an anchor is AGENCY:SEQ:SHA256HEX, not {text!r}")
        return head


def extend(
    head: Head,
    disclosures: Sequence[Disclosure],
    recorded_at: datetime,
    signer: Signer | None = None,
) -> list[Entry]:
    """The entries that append ``disclosures`` to the chain ending at ``head``; with a
    ``signer``, the last one carries its signature over the new head."""
    entries = []
    prev, seq = head.hash, head.seq
    for disclosure in disclosures:
        if disclosure.agency != head.agency:
            raise ValueError(
                f"a disclosure to {disclosure.agency!r} does not belong in {head.agency!r}'s chain"
            )
        seq += 1
        entry = Entry.link(seq, disclosure, recorded_at, prev)
        entries.append(entry)
        prev = entry.hash
    if signer is not None and entries:
        last = entries[-1]
        signed = signer.sign("head", last.agency, last.seq, last.hash, recorded_at)
        entries[-1] = replace(last, key_id=signed.key_id, signature=signed.signature)
    return entries


@dataclass(frozen=True, slots=True)
class Break:
    """Where and how an agency's chain is broken."""

    agency: str
    seq: int
    reason: str

    def __str__(self) -> str:
        return f"agency {self.agency}: seq {self.seq}: {self.reason}"


@dataclass
class ChainWalk:
    """Checks one agency's entries fed in ``seq`` order, remembering only the last link, so
    a log of any size is checked in constant memory. ``anchors`` are heads recorded earlier
    (seq -> hash) that the chain must still pass through. ``start`` is the signed cut a
    pruned chain begins at. With ``keys``, every signature must be a trusted key's and the
    chain must end at a signed entry; without, only the hash links are checked."""

    agency: str
    anchors: Mapping[int, bytes] = field(default_factory=dict)
    start: Checkpoint | None = None
    keys: TrustedKeys | None = None
    entries: int = 0
    signatures: int = 0
    problem: Break | None = None

    def __post_init__(self) -> None:
        self._seq, self._hash = 0, GENESIS
        self._signed = True  # the walk ends at a signed entry (or at its start)
        if self.start is not None:
            self._seq, self._hash = self.start.seq, self.start.head
            self.problem = self._check_start(self.start)

    @property
    def last(self) -> Head:
        return Head(self.agency, self._seq, self._hash)

    @property
    def first_seq(self) -> int:
        return 1 if self.start is None else self.start.seq + 1

    def feed(self, entry: Entry) -> Break | None:
        """Check the next entry; the first problem found is kept and returned again."""
        if self.problem is None:
            self.problem = self._check(entry) or self._check_signature(entry)
            if self.problem is None:
                self._seq, self._hash = entry.seq, entry.hash
                self._signed = entry.checkpoint is not None
                self.entries += 1
        return self.problem

    def finish(self, head: Head | None) -> Break | None:
        """Compare the end of the walk with the stored chain head and the anchors."""
        if self.problem is None:
            self.problem = self._check_end(head) or self._check_signed_end()
        return self.problem

    def _check_start(self, start: Checkpoint) -> Break | None:
        if start.kind != "cut" or start.agency != self.agency:
            return self._break(start.seq, f"the chain starts at a {start.kind} of {start.agency}")
        problem = None if self.keys is None else self.keys.problem(start)
        if problem is not None:
            return self._break(start.seq, f"the chain's start (pruned up to here): {problem}")
        anchored = self.anchors.get(start.seq)
        if anchored is not None and anchored != start.head:
            return self._break(start.seq, "the chain's start differs from the anchor")
        return None

    def _check(self, entry: Entry) -> Break | None:
        expected = self._seq + 1
        if entry.agency != self.agency:
            return self._break(entry.seq, f"the entry names agency {entry.agency!r}")
        if entry.seq > expected:
            missing = _span(expected, entry.seq - 1)
            return self._break(expected, f"{missing} missing (removed)")
        if entry.seq < expected:
            return self._break(entry.seq, f"seq repeats or goes backwards after {self._seq}")
        if entry.prev_hash != self._hash:
            return self._break(
                entry.seq,
                f"prev_hash is not the hash of seq {self._seq}: an entry was replaced, removed "
                "or reordered",
            )
        if chained_hash(entry.prev_hash, canonical(entry)) != entry.hash:
            return self._break(entry.seq, "content does not match its hash (entry edited)")
        anchored = self.anchors.get(entry.seq)
        if anchored is not None and anchored != entry.hash:
            return self._break(entry.seq, "hash differs from the anchor (chain rewritten)")
        return None

    def _check_signature(self, entry: Entry) -> Break | None:
        signed = entry.checkpoint
        if signed is None:
            if entry.key_id is not None or entry.signature is not None:
                return self._break(entry.seq, "a key id or signature without the other")
            return None
        self.signatures += 1
        problem = None if self.keys is None else self.keys.problem(signed)
        return None if problem is None else self._break(entry.seq, f"signed head: {problem}")

    def _check_end(self, head: Head | None) -> Break | None:
        last = self._seq
        beyond = [seq for seq in self.anchors if seq > last]
        if beyond:
            anchored = max(beyond)
            return self._break(
                last + 1,
                f"{_span(last + 1, anchored)} missing: an anchor names seq {anchored} "
                "(tail removed)",
            )
        if head is None:
            if self.entries or self.start is not None:
                return self._break(last, "the chain head row is missing")
            return None
        if head.seq > last:
            return self._break(
                last + 1,
                f"{_span(last + 1, head.seq)} missing: the chain head records seq {head.seq} "
                "(tail removed)",
            )
        if head.seq < last:
            return self._break(
                head.seq + 1, f"entries after seq {head.seq} are not in the chain head"
            )
        if head.hash != self._hash:
            return self._break(last, "the chain head's hash differs from the entry's hash")
        return None

    def _check_signed_end(self) -> Break | None:
        if self.keys is None or self._signed:
            return None
        return self._break(
            self._seq,
            "the chain ends at an unsigned entry: entries were appended or re-chained "
            "without a signing key",
        )

    def _break(self, seq: int, reason: str) -> Break:
        return Break(self.agency, seq, reason)


def _span(first: int, last: int) -> str:
    return f"seq {first}" if first == last else f"seq {first}..{last}"


def verify_entries(
    agency: str,
    entries: Iterable[Entry],
    head: Head | None,
    anchors: Mapping[int, bytes] | None = None,
    keys: TrustedKeys | None = None,
    start: Checkpoint | None = None,
) -> ChainWalk:
    """Walk a whole chain; ``walk.problem`` is None when it is intact."""
    walk = ChainWalk(agency, anchors=anchors or {}, start=start, keys=keys)
    for entry in entries:
        if walk.feed(entry) is not None:
            break
    walk.finish(head)
    return walk
