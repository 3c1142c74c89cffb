"""A data subject's restriction: `govsync restrict add` takes the person's rows out of the
replica of a subscription on consent, and keeps them out as their record changes, while a
subscription on a state agency's duties goes on receiving them; verify agrees; lifting the
restriction lets the person's next change through again."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from sync.replica import deletes_key_name
from sync.stack.providers import StackProvider
from sync.stack.status import scrape
from tests.fixtures.pipeline import Pipeline

pytestmark = pytest.mark.integration

PSEUDONYM_KEY = "r" * 40
MANIFEST = """
version: 1
agencies:
  - {code: mps, name: Ministry of Public Security, level: central}
  - {code: vss, name: Vietnam Social Security, level: central}
  - {code: ios, name: Institute of Sociology, level: central}
sources:
  - {name: population, agency: mps, database: population, tables: [citizen]}
subscriptions:
  - agency: vss
    topic: population.citizen
    purpose: Keep identity data on insurance records current.
    legal_basis: {basis: public_duty, reference: Law on Social Insurance No. 41/2024/QH15.}
    fields: [personal_id, full_name, province_code, updated_at]
  - agency: ios
    topic: population.citizen
    purpose: A survey of internal migration among people who agreed to take part.
    legal_basis:
      basis: consent
      reference: Law on Personal Data Protection No. 91/2025/QH15, the participants' consent.
    fields: [personal_id, sex, province_code, updated_at]
    transforms:
      personal_id: {kind: hash, key: ios_pseudonym}
"""


def pseudonym(personal_id: str) -> str:
    return hmac.new(PSEUDONYM_KEY.encode(), personal_id.encode(), hashlib.sha256).hexdigest()


def govsync(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sync.cli", *args], capture_output=True, text=True, timeout=120
    )


def holds(dsn: str, personal_id: str) -> bool:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT count(*) FROM population.citizen WHERE personal_id = %s", (personal_id,)
        ).fetchone()
    return bool(row and row[0])


def province(dsn: str, personal_id: str) -> str | None:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT province_code FROM population.citizen WHERE personal_id = %s", (personal_id,)
        ).fetchone()
    return None if row is None else str(row[0])


def in_force(metrics_url: str | None) -> float:
    assert metrics_url is not None
    samples = scrape(metrics_url).get("govsync_processor_restrictions_in_force", [])
    return sum(value for labels, value in samples if labels.get("agency") == "ios")


def count(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        try:
            row = conn.execute("SELECT count(*) FROM population.citizen").fetchone()
        except psycopg.errors.UndefinedTable:
            return -1
    return int(row[0]) if row else 0


def test_a_withdrawn_consent_takes_the_person_out_of_consent_based_replicas_only(
    stack: StackProvider, pipeline_factory: Callable[..., Pipeline], tmp_path: Path
) -> None:
    pipeline = pipeline_factory(citizens=60)
    manifest = tmp_path / "federation.yaml"
    manifest.write_text(MANIFEST)
    keys = tmp_path / "hash_keys.json"
    secrets = {"ios_pseudonym": PSEUDONYM_KEY}
    secrets |= {deletes_key_name(a): a * 32 for a in ("vss", "ios")}
    keys.write_text(json.dumps(secrets))
    replicas = {a: stack.create_database(f"{pipeline.name}_{a}") for a in ("vss", "ios")}
    audit = stack.create_database(f"{pipeline.name}_audit")
    pipeline.start_connector()
    metrics = {}
    for agency, dsn in replicas.items():
        managed = pipeline.start_processor(
            agency, dsn, manifest=str(manifest), hash_keys_file=str(keys), audit_dsn=audit
        )
        metrics[agency] = managed.spec.metrics_url
    pipeline.wait_for(
        lambda: count(replicas["vss"]) == count(replicas["ios"]) == 60,
        "both replicas to hold every citizen",
        90,
    )
    person, other = sorted(pipeline.source_rows())[:2]
    assert holds(replicas["ios"], pseudonym(person)), "the survey holds the person's pseudonym"

    reason = "Request 2026/117: the participant withdrew from the survey"
    added = govsync(
        "restrict", "add", person, "--agency", "ios", "--reason", reason, "--dsn", audit
    )
    assert added.returncode == 0, added.stderr
    assert "restricted" in added.stdout
    pipeline.wait_for(
        lambda: not holds(replicas["ios"], pseudonym(person)),
        "the person's row to leave the consent-based replica",
    )
    assert holds(replicas["vss"], person), "a public-duty subscription is not restricted"
    assert count(replicas["ios"]) == 59

    # the person's later changes stay out; everyone else's still arrive
    with pipeline.source() as conn:
        conn.execute(
            "UPDATE citizen SET province_code = '48' WHERE personal_id = ANY(%s)",
            ([person, other],),
        )
    pipeline.wait_for(
        lambda: (
            province(replicas["ios"], pseudonym(other)) == "48"
            and province(replicas["vss"], person) == "48"
        ),
        "the move to reach the survey (for the other citizen) and social security (for both)",
    )
    assert not holds(replicas["ios"], pseudonym(person))

    listed = govsync("restrict", "list", person, "--json", "--dsn", audit)
    assert listed.returncode == 0, listed.stderr
    (entry,) = json.loads(listed.stdout)
    assert (entry["agency"], entry["kind"], entry["reason"]) == ("ios", "withdrawn_consent", reason)
    twice = govsync(
        "restrict", "add", person, "--agency", "ios", "--reason", reason, "--dsn", audit
    )
    assert "already restricted" in twice.stdout

    # verify projects the source as the processors do, the restriction included
    data_dir = pipeline.describe(replicas, manifest, keys, audit_dsn=audit)
    verified = govsync("verify", "--data-dir", str(data_dir), "--json")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    reports = {r["agency"]: r["tables"][0] for r in json.loads(verified.stdout)}
    assert reports["ios"]["source_rows"] == reports["ios"]["replica_rows"] == 59
    assert reports["vss"]["source_rows"] == 60

    # lifted: the person's next change reaches the survey again
    lifted = govsync(
        "restrict", "remove", person, "--agency", "ios", "--reason", "consent given again",
        "--dsn", audit,
    )  # fmt: skip
    assert lifted.returncode == 0, lifted.stderr
    assert json.loads(govsync("restrict", "list", "--json", "--dsn", audit).stdout) == []
    # the processor reads the register every 2 s: a change before it has seen the lift is
    # still withheld
    pipeline.wait_for(
        lambda: in_force(metrics["ios"]) == 0, "the survey's processor to see the lift"
    )
    with pipeline.source() as conn:
        conn.execute("UPDATE citizen SET province_code = '01' WHERE personal_id = %s", (person,))
    pipeline.wait_for(
        lambda: province(replicas["ios"], pseudonym(person)) == "01",
        "the person's next change to reach the survey once the restriction is lifted",
    )
    with psycopg.connect(audit) as conn:
        log = conn.execute(
            "SELECT action, agency, reason FROM govsync_audit.restriction_log ORDER BY id"
        ).fetchall()
    assert log == [("add", "ios", reason), ("remove", "ios", "consent given again")]


def test_a_restriction_names_a_person_and_a_reason(stack: StackProvider, tmp_path: Path) -> None:
    audit = stack.create_database(f"restrict_{tmp_path.name[-8:].lower()}")
    init = govsync("audit", "init", "--dsn", audit)
    assert init.returncode == 0, init.stderr
    not_an_id = govsync("restrict", "add", "12345", "--reason", "an objection", "--dsn", audit)
    assert not_an_id.returncode == 2
    assert "a personal id is 12 digits, not '12345'" in not_an_id.stderr
    no_reason = govsync("restrict", "add", "001090000001", "--reason", " ", "--dsn", audit)
    assert no_reason.returncode == 2
    assert "needs its reason" in no_reason.stderr
    nothing = govsync("restrict", "remove", "001090000001", "--reason", "x", "--dsn", audit)
    assert nothing.returncode == 1
    assert "no restriction of 001090000001 for * to remove" in nothing.stderr
