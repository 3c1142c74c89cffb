"""The signed, externally anchored audit on a real PostgreSQL and a real broker: a database
superuser who deletes or alters an entry and re-chains the rest without the signing key is
caught by the signatures; one who cuts the tail back to an earlier signed entry is caught by
the checkpoints published to Kafka; checkpoints time-stamped by an RFC 3161 authority
verify; and pruning past the retention period leaves a chain that still verifies."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from sync.audit import AuditTrail, Disclosure, Entry
from sync.audit.chain import GENESIS
from sync.audit.checkpoints import encode, read_checkpoints
from sync.audit.prune import months_before
from sync.audit.schema import COLUMNS, entry_of, row_of
from sync.audit.signing import Signer
from sync.config import AuditSettings
from sync.stack.providers import StackProvider
from tests.fixtures.tsa import local_tsa
from tests.integration.test_audit import disclosure, run

pytestmark = pytest.mark.integration


@dataclasses.dataclass
class Keys:
    signing: Path
    trusted: Path
    signer: Signer


@dataclasses.dataclass
class Signed:
    """An audit store, a worker's key and a checkpoint topic of the test's own."""

    dsn: str
    bootstrap: str
    prefix: str
    keys: Keys

    def settings(self, **changes: object) -> AuditSettings:
        values: dict[str, object] = {
            "bootstrap": self.bootstrap,
            "topic_prefix": self.prefix,
            "audit_signing_key_file": self.keys.signing,
            "audit_checkpoint_seconds": 0.0,
            **changes,
        }
        return AuditSettings(**values)  # type: ignore[arg-type]

    def record(
        self, agency: str, *batches: Sequence[Disclosure], clock: datetime | None = None
    ) -> None:
        async def go() -> None:
            now = (lambda: clock) if clock else (lambda: datetime.now(UTC))
            trail = await AuditTrail.open(self.dsn, agency, self.settings(), clock=now)
            async with trail:
                for batch in batches:
                    await trail.record(batch)

        run(go())

    def cli(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        environment = {
            **os.environ,
            "GOVSYNC_AUDIT_DSN": self.dsn,
            "GOVSYNC_TOPIC_PREFIX": self.prefix,
            "COLUMNS": "200",
            **env,
        }
        return subprocess.run(
            [sys.executable, "-m", "sync.cli", "audit", *args],
            env=environment,
            capture_output=True,
            text=True,
            timeout=180,
        )

    def verify(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.cli("verify", "--trusted-keys", str(self.keys.trusted), *args)


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    signer = Signer.generate(tmp_path / "worker.key")
    trusted = tmp_path / "trusted.pem"
    trusted.write_text(signer.public_pem())
    return Keys(tmp_path / "worker.key", trusted, signer)


@pytest.fixture
def signed(stack: StackProvider, bootstrap: str, keys: Keys) -> Signed:
    name = uuid.uuid4().hex[:10]
    return Signed(stack.create_database(f"audit_{name}"), bootstrap, f"t{name}.", keys)


def batches(agency: str, first: int, count: int, size: int) -> list[list[Disclosure]]:
    return [[disclosure(agency, first + b * size + i) for i in range(size)] for b in range(count)]


def rewrite(dsn: str, agency: str, change: str) -> None:
    """What a database superuser without the signing key can do: delete or alter an entry,
    re-hash everything after it so the links hold, and move the head; the signatures of
    the rewritten batches are kept as they were (they cannot be made anew)."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            f"SELECT {', '.join(COLUMNS)} FROM govsync_audit.disclosure "
            "WHERE agency = %s ORDER BY seq",
            (agency,),
        ).fetchall()
    entries = [entry_of(r) for r in rows]
    if change == "deleted":
        entries = entries[:2] + entries[3:]
    else:
        entries[2] = dataclasses.replace(entries[2], fields=("personal_id",))
    rechained: list[Entry] = []
    prev = GENESIS
    for seq, e in enumerate(entries, start=1):
        names = [f.name for f in dataclasses.fields(Disclosure)]
        linked = Entry.link(seq, Disclosure(*(getattr(e, n) for n in names)), e.recorded_at, prev)
        rechained.append(dataclasses.replace(linked, key_id=e.key_id, signature=e.signature))
        prev = linked.hash
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")
        with conn.transaction():
            conn.execute("DELETE FROM govsync_audit.disclosure WHERE agency = %s", (agency,))
            with conn.cursor().copy(
                f"COPY govsync_audit.disclosure ({', '.join(COLUMNS)}) FROM STDIN"
            ) as copy:
                for e in rechained:
                    copy.write_row(row_of(e))
            conn.execute(
                "UPDATE govsync_audit.chain_head SET seq = %s, hash = %s WHERE agency = %s",
                (rechained[-1].seq, rechained[-1].hash, agency),
            )


@pytest.mark.parametrize(("change", "first_signed_after"), [("deleted", 3), ("altered", 4)])
def test_an_entry_deleted_or_altered_and_rechained_without_the_key_is_detected(
    signed: Signed, change: str, first_signed_after: int
) -> None:
    signed.record("vss", *batches("vss", 1, 3, 4))
    signed.record("gso", *batches("gso", 1, 1, 2))
    done = signed.verify("--bootstrap", signed.bootstrap)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "agency vss: intact, 12 entries" in done.stdout
    assert "3 signature(s) checked; passes 3 checkpoint(s)" in done.stdout

    rewrite(signed.dsn, "vss", change)

    # the hash links alone hold again: this is what a rewrite looked like before signatures
    unsigned = signed.cli("verify", "--agency", "vss")
    assert unsigned.returncode == 0 and "signatures NOT checked" in unsigned.stdout
    done = signed.verify()
    assert done.returncode == 1
    assert (
        f"BROKEN agency vss: seq {first_signed_after}: signed head: the signature by key "
        f"{signed.keys.signer.key_id} does not match (rewritten without the key)"
    ) in done.stdout, done.stdout
    assert "agency gso: intact, 2 entries" in done.stdout


def test_cutting_the_tail_back_before_the_last_checkpoint_is_detected(signed: Signed) -> None:
    signed.record("vss", *batches("vss", 1, 3, 4))
    signed.record("gso", *batches("gso", 1, 1, 2))
    published, _ = read_checkpoints(
        {"bootstrap.servers": signed.bootstrap}, signed.settings().checkpoint_topic
    )
    assert [(c.agency, c.seq) for c in published] == [
        ("vss", 4),
        ("vss", 8),
        ("vss", 12),
        ("gso", 2),
    ]

    with psycopg.connect(signed.dsn, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")
        eighth = conn.execute(
            "SELECT hash FROM govsync_audit.disclosure WHERE agency = 'vss' AND seq = 8"
        ).fetchone()
        assert eighth is not None
        conn.execute("DELETE FROM govsync_audit.disclosure WHERE agency = 'vss' AND seq > 8")
        conn.execute(
            "UPDATE govsync_audit.chain_head SET seq = 8, hash = %s WHERE agency = 'vss'",
            (eighth[0],),
        )
        conn.execute("DELETE FROM govsync_audit.disclosure WHERE agency = 'gso'")
        conn.execute("DELETE FROM govsync_audit.chain_head WHERE agency = 'gso'")

    # signed and linked up to seq 8: consistent on its own
    alone = signed.verify("--agency", "vss")
    assert alone.returncode == 0, alone.stdout + alone.stderr
    done = signed.verify("--bootstrap", signed.bootstrap)
    assert done.returncode == 1
    assert (
        "BROKEN agency vss: seq 9: seq 9..12 missing: an anchor names seq 12 (tail removed)"
    ) in done.stdout, done.stdout
    assert "BROKEN agency gso: no audit chain" in done.stdout


def test_checkpoints_time_stamped_by_an_rfc_3161_authority_verify(signed: Signed) -> None:
    with local_tsa() as tsa:
        settings = signed.settings(audit_tsa_url=tsa.url, audit_tsa_seconds=0.0)

        async def go() -> None:
            async with await AuditTrail.open(signed.dsn, "vss", settings) as trail:
                for batch in batches("vss", 1, 2, 3):
                    await trail.record(batch)

        run(go())
        assert len(tsa.requests) == 2
        published, _ = read_checkpoints(
            {"bootstrap.servers": signed.bootstrap}, settings.checkpoint_topic
        )
        assert [(c.seq, bool(c.timestamp_token)) for c in published] == [(3, True), (6, True)]
        ca = str(tsa.ca_file)

        done = signed.verify("--bootstrap", signed.bootstrap, "--tsa-ca", ca)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "2 time-stamp token(s) verified" in done.stdout

        # a checkpoint kept elsewhere, its token swapped for another checkpoint's
        swapped = dataclasses.replace(published[0], timestamp_token=published[1].timestamp_token)
        kept = signed.keys.trusted.parent / "kept.jsonl"
        kept.write_bytes(encode(swapped) + b"\n")
        done = signed.verify("--checkpoints", str(kept), "--tsa-ca", ca)
        assert done.returncode == 1
        assert "BROKEN checkpoint vss:3: its time-stamp token does not verify" in done.stdout


def test_prune_keeps_twelve_months_and_leaves_a_chain_that_verifies(signed: Signed) -> None:
    today = datetime.now(UTC).date()
    old = datetime.combine(months_before(today, 14), datetime.min.time(), tzinfo=UTC)
    signed.record("vss", *batches("vss", 1, 2, 5), clock=old)
    signed.record("vss", *batches("vss", 11, 1, 3), clock=old + timedelta(days=200))
    signed.record("vss", *batches("vss", 14, 1, 2))
    trusted = str(signed.keys.trusted)
    key = str(signed.keys.signing)

    too_recent = months_before(today, 11).isoformat()
    refused = signed.cli(
        "prune", "--before", too_recent, "--signing-key", key, "--trusted-keys", trusted
    )
    assert refused.returncode == 1
    assert "audit entries are kept 12 months: --before may be at most" in refused.stderr

    cut = months_before(today, 12).isoformat()
    done = signed.cli(
        "prune",
        "--before",
        cut,
        "--signing-key",
        key,
        "--trusted-keys",
        trusted,
        "--bootstrap",
        signed.bootstrap,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "agency vss: 10 entries removed, chain cut at seq 10" in done.stdout
    assert "1 cut checkpoint(s) published" in done.stdout

    verified = signed.verify("--bootstrap", signed.bootstrap)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "agency vss: intact, 5 entries after the cut at seq 10" in verified.stdout
    assert "passes 5 checkpoint(s)" in verified.stdout  # 4 heads and the cut

    with psycopg.connect(signed.dsn, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="refused"):
            conn.execute("DELETE FROM govsync_audit.disclosure WHERE seq = 11")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="refused"):
            conn.execute("UPDATE govsync_audit.chain_start SET seq = 1")
