"""Signed heads and checkpoints, as pure logic: what a verifier holding the trusted keys
accepts, what a rewrite without the key looks like, and the retention arithmetic."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from sync.audit import Disclosure, Head, extend, verify_entries
from sync.audit.chain import GENESIS, Entry
from sync.audit.checkpoints import Anchors, decode, encode
from sync.audit.prune import earliest_allowed, months_before
from sync.audit.signing import Signer, TrustedKeys
from sync.audit.timestamp import read_token, timestamp_request, token_of_response
from sync.config import AuditSettings
from sync.errors import AuditError, ConfigError

WHEN = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def disclosure(n: int, agency: str = "vss") -> Disclosure:
    return Disclosure(
        agency=agency,
        subjects=(f"0010900{n:05d}",),
        topic="population.citizen",
        op="u",
        fields=("personal_id", "full_name"),
        purpose="Quản lý người tham gia bảo hiểm",
        legal_basis="Luật Bảo hiểm xã hội 41/2024/QH15",
        event_id=f"population:0/{n}:0",
        lsn=f"0/{n:X}",
        index=0,
        committed_at=WHEN,
    )


@pytest.fixture
def signer(tmp_path: Path) -> Signer:
    return Signer.generate(tmp_path / "worker.key")


@pytest.fixture
def keys(signer: Signer) -> TrustedKeys:
    return TrustedKeys.from_pem(signer.public_pem())


def chain(signer: Signer | None, *batches: int) -> list[Entry]:
    """Batches of the given sizes, each appended (and signed) in turn."""
    entries: list[Entry] = []
    n = 0
    for size in batches:
        head = Head("vss", entries[-1].seq, entries[-1].hash) if entries else Head("vss")
        batch = [disclosure(n + i + 1) for i in range(size)]
        entries += extend(head, batch, WHEN, signer)
        n += size
    return entries


def rechain(entries: list[Entry]) -> list[Entry]:
    """What a superuser without the key can do: hash the entries again from the start,
    keeping their old signatures (or dropping them)."""
    out: list[Entry] = []
    prev = GENESIS
    for seq, e in enumerate(entries, start=1):
        names = [f.name for f in dataclasses.fields(Disclosure)]
        d = Disclosure(*(getattr(e, name) for name in names))
        linked = Entry.link(seq, d, e.recorded_at, prev)
        out.append(dataclasses.replace(linked, key_id=e.key_id, signature=e.signature))
        prev = linked.hash
    return out


def head_of(entries: list[Entry]) -> Head:
    return Head("vss", entries[-1].seq, entries[-1].hash)


def test_the_last_entry_of_each_batch_is_signed_and_verifies(
    signer: Signer, keys: TrustedKeys
) -> None:
    entries = chain(signer, 3, 2)
    assert [e.seq for e in entries if e.signature] == [3, 5]
    assert all(e.key_id == signer.key_id for e in entries if e.signature)
    walk = verify_entries("vss", entries, head_of(entries), keys=keys)
    assert walk.problem is None and walk.signatures == 2


def test_a_removed_entry_rechained_without_the_key_is_found(
    signer: Signer, keys: TrustedKeys
) -> None:
    entries = chain(signer, 3, 3, 3)
    forged = rechain(entries[:2] + entries[3:])  # seq 3 gone, the rest renumbered
    walk = verify_entries("vss", forged, head_of(forged), keys=keys)
    assert walk.problem is not None and walk.problem.seq == 5
    assert "does not match (rewritten without the key)" in walk.problem.reason
    # the hash links alone are consistent: only the signatures show it
    assert verify_entries("vss", forged, head_of(forged)).problem is None


def test_an_edit_rechained_with_signatures_stripped_ends_unsigned(
    signer: Signer, keys: TrustedKeys
) -> None:
    entries = chain(signer, 4)
    edited = [dataclasses.replace(e, purpose="x", key_id=None, signature=None) for e in entries]
    forged = rechain(edited)
    walk = verify_entries("vss", forged, head_of(forged), keys=keys)
    assert walk.problem is not None and walk.problem.seq == 4
    assert "ends at an unsigned entry" in walk.problem.reason


def test_a_key_not_trusted_is_refused(signer: Signer, tmp_path: Path) -> None:
    other = TrustedKeys.from_pem(Signer.generate(tmp_path / "other.key").public_pem())
    entries = chain(signer, 2)
    walk = verify_entries("vss", entries, head_of(entries), keys=other)
    assert walk.problem is not None and "not a trusted key" in walk.problem.reason


def test_a_pruned_chain_verifies_from_its_signed_cut(signer: Signer, keys: TrustedKeys) -> None:
    entries = chain(signer, 3, 3)
    cut = signer.sign("cut", "vss", 3, entries[2].hash, WHEN)
    walk = verify_entries("vss", entries[3:], head_of(entries), keys=keys, start=cut)
    assert walk.problem is None and walk.entries == 3
    forged_cut = dataclasses.replace(cut, seq=4, head=entries[3].hash)
    walk = verify_entries("vss", entries[4:], head_of(entries), keys=keys, start=forged_cut)
    assert walk.problem is not None
    assert "start (pruned up to here): the signature" in walk.problem.reason


def test_checkpoint_anchors_find_a_cut_tail_and_a_signed_fork(
    signer: Signer, keys: TrustedKeys
) -> None:
    entries = chain(signer, 2, 2, 2)
    published = [e.checkpoint for e in entries if e.checkpoint is not None]
    anchors = Anchors.of([decode(encode(c)) for c in published], keys)
    assert anchors.counts == {"vss": 3} and not anchors.conflicts
    cut_back = entries[:4]  # ends signed, head row rewound: consistent on its own
    walk = verify_entries("vss", cut_back, head_of(cut_back), anchors.heads["vss"], keys)
    assert walk.problem is not None and "an anchor names seq 6" in walk.problem.reason

    fork = signer.sign("head", "vss", 4, b"\x01" * 32, WHEN)
    both = Anchors.of([*published, fork], keys)
    assert [(b.agency, b.seq) for b in both.conflicts] == [("vss", 4)]


def test_checkpoints_signed_by_unknown_keys_are_ignored_not_trusted(
    signer: Signer, keys: TrustedKeys, tmp_path: Path
) -> None:
    stranger = Signer.generate(tmp_path / "stranger.key")
    found = Anchors.of([stranger.sign("head", "vss", 9, b"\x02" * 32, WHEN)], keys)
    assert found.heads == {} and "not a trusted key" in found.ignored[0]


def test_checkpoint_messages_round_trip_and_garbage_is_refused(signer: Signer) -> None:
    c = signer.sign("head", "gso", 12, b"\x03" * 32, WHEN).stamped(b"token")
    assert decode(encode(c)) == c
    for garbage in (b"", b"{}", b'{"kind": "other"}', b"\xff"):
        with pytest.raises(ValueError, match="not a checkpoint"):
            decode(garbage)


def test_key_files_are_checked(tmp_path: Path, signer: Signer) -> None:
    with pytest.raises(FileExistsError):
        Signer.generate(tmp_path / "worker.key")
    assert (tmp_path / "worker.key").stat().st_mode & 0o077 == 0
    assert Signer.from_file(tmp_path / "worker.key").key_id == signer.key_id
    (tmp_path / "bad.pem").write_text("not a key")
    with pytest.raises(ConfigError, match=r"bad\.pem"):
        Signer.from_file(tmp_path / "bad.pem")
    with pytest.raises(ConfigError, match="no PEM public key"):
        TrustedKeys.from_pem("")


def test_retention_is_at_least_twelve_months() -> None:
    assert months_before(date(2026, 3, 31), 1) == date(2026, 2, 28)
    assert months_before(date(2026, 1, 15), 12) == date(2025, 1, 15)
    assert earliest_allowed(18, date(2026, 6, 30)) == date(2024, 12, 30)
    with pytest.raises(AuditError, match="at least 12 months"):
        earliest_allowed(6, date(2026, 6, 30))
    with pytest.raises(ValidationError, match="audit_retention_months"):
        AuditSettings(audit_retention_months=11)


def test_a_timestamp_request_is_the_der_rfc_3161_names() -> None:
    request = timestamp_request(b"\xab" * 32, 0x0102)
    assert request.startswith(b"\x30")
    assert b"\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x01\x05\x00\x04\x20" + b"\xab" * 32 in request
    assert request.endswith(b"\x02\x02\x01\x02\x01\x01\xff")
    refused = bytes.fromhex("30053003020102")  # PKIStatus 2: rejection
    with pytest.raises(ValueError, match="refused"):
        token_of_response(refused)
    with pytest.raises(ValueError):
        read_token(b"\x30\x05\x02")
