"""``govsync audit citizen`` finds what was disclosed about a person under their tax code and
their insurance number: the finance and insurance sources stream tax obligations and months of
contributions through real connectors, a processor applies them to an agency's replica and
audits them, and the command resolves the person's identifiers through the sources' own link
tables (taxpayer, insured person) named in stack.json."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from sync.audit.roles import create_store
from sync.contracts import load_contracts
from sync.policy import FEDERATION_FILE
from sync.stack.demo import load_demo
from sync.stack.description import DatabaseEntry, StackDescription
from sync.stack.ports import wait_until
from sync.stack.providers import StackProvider
from sync.stack.specs import KafkaEndpoints, connector_spec, processor_spec
from sync.stack.supervisor import Supervisor

pytestmark = pytest.mark.integration

AGENCY = "gdt"
TOPICS = {"finance": "tax_obligation", "insurance": "contribution_period"}
FIELDS = {
    "finance.tax_obligation": ["tax_code", "tax_type", "tax_period", "due_date", "updated_at"],
    "insurance.contribution_period": ["insurance_number", "period_month", "paid_on", "updated_at"],
}


def manifest(path: Path) -> Path:
    """The federation file with the agency's subscriptions replaced by the two topics, on the
    legal basis its population subscription cites (the test is about the audit, not the law)."""
    federation: dict[str, Any] = yaml.safe_load(FEDERATION_FILE.read_text(encoding="utf-8"))
    basis = next(
        s["legal_basis"]
        for s in federation["subscriptions"]
        if (s["agency"], s["topic"]) == (AGENCY, "population.citizen")
    )
    federation["subscriptions"] = [
        {
            "agency": AGENCY,
            "topic": topic,
            "purpose": "Cross-check declared income against tax and insurance records.",
            "legal_basis": copy.deepcopy(basis),  # written out: the file allows no aliases
            "fields": fields,
        }
        for topic, fields in FIELDS.items()
    ]
    path.write_text(yaml.safe_dump(federation, allow_unicode=True), encoding="utf-8")
    return path


def hash_keys(path: Path) -> Path:
    """The agency's secret for the keyed hashes its replica remembers deletes by."""
    path.write_text(json.dumps({f"remembered-deletes.{AGENCY}": "k" * 40}), encoding="utf-8")
    return path


def rows(dsn: str, query: str, *args: object) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(query, args).fetchall()


def one_value(dsn: str, query: str, *args: object) -> Any:
    (row,) = rows(dsn, query, *args)
    return row[0]


def citizen(data_dir: Path, personal_id: str, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            *(sys.executable, "-m", "sync.cli", "audit", "citizen", personal_id),
            *("--data-dir", str(data_dir), "--json", *flags),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def describe(data_dir: Path, sources: dict[str, str], audit: str) -> Path:
    data_dir.mkdir(parents=True, exist_ok=True)
    StackDescription(
        data_dir=str(data_dir),
        bootstrap="",
        registry_url="",
        postgres_port=0,
        databases=[
            *(DatabaseEntry(name, "source", dsn, "") for name, dsn in sources.items()),
            DatabaseEntry("govsync", "audit", audit, ""),
        ],
    ).write(data_dir)
    return data_dir


@pytest.fixture
def supervisor() -> Iterator[Supervisor]:
    running = Supervisor()
    yield running
    running.stop_all(drain_timeout=0)


def test_disclosures_under_a_tax_code_and_an_insurance_number_are_listed(
    stack: StackProvider, supervisor: Supervisor, tmp_path: Path
) -> None:
    name = f"cit{uuid.uuid4().hex[:8]}"
    contracts = load_contracts()
    sources = {source: stack.create_database(f"{name}_{source}") for source in TOPICS}
    for source, dsn in sources.items():
        own = [c for c in contracts.values() if c.domain == source]
        with psycopg.connect(dsn, autocommit=True) as conn:
            load_demo(conn, own, 80)
    # an individual taxpayer with obligations who is also insured with contributions
    taxed = dict(
        rows(
            sources["finance"],
            "SELECT DISTINCT p.personal_id, p.tax_code FROM taxpayer p "
            "JOIN tax_obligation o USING (tax_code) WHERE p.personal_id IS NOT NULL",
        )
    )
    insured = dict(
        rows(
            sources["insurance"],
            "SELECT DISTINCT p.personal_id, p.insurance_number FROM insured_person p "
            "JOIN contribution_period c USING (insurance_number)",
        )
    )
    personal_id = min(set(taxed) & set(insured))
    tax_code, insurance_number = taxed[personal_id], insured[personal_id]
    obligations = one_value(
        sources["finance"], "SELECT count(*) FROM tax_obligation WHERE tax_code = %s", tax_code
    )
    months = one_value(
        sources["insurance"],
        "SELECT count(*) FROM contribution_period WHERE insurance_number = %s",
        insurance_number,
    )

    kafka = KafkaEndpoints(stack.bootstrap, stack.registry_url, 3, f"{name}.")
    logs = tmp_path / "logs"
    audit = stack.create_database(f"{name}_audit")
    with psycopg.connect(audit, autocommit=True) as conn:
        create_store(conn)  # as `govsync audit init` does before any processor starts
    for source, dsn in sources.items():
        supervisor.start(
            connector_spec(
                kafka, source, dsn, logs, slot=f"govsync_{name}_{source}", tables=[TOPICS[source]]
            )
        )
    supervisor.start(
        processor_spec(
            kafka,
            AGENCY,
            stack.create_database(f"{name}_replica"),
            list(FIELDS),
            logs,
            logs / "state",
            manifest=manifest(tmp_path / "federation.yaml"),
            hash_keys_file=hash_keys(tmp_path / "hash_keys.json"),
            audit_dsn=audit,
        )
    )

    def audited(topic: str, subject: str) -> int:
        return int(
            one_value(
                audit,
                "SELECT count(*) FROM govsync_audit.disclosure "
                "WHERE topic = %s AND subjects @> ARRAY[%s]::text[]",
                kafka.topic_prefix + topic,
                subject,
            )
        )

    def recorded() -> bool:
        supervisor.poll()
        return (
            audited("finance.tax_obligation", f"tax_code:{tax_code}"),
            audited("insurance.contribution_period", f"insurance_number:{insurance_number}"),
        ) == (obligations, months)

    wait_until(recorded, 180, "the person's obligations and contributions to be audited", 0.5)
    # a change streamed after the snapshot is found the same way
    with psycopg.connect(sources["insurance"], autocommit=True) as conn:
        conn.execute(
            "UPDATE contribution_period SET paid_on = period_month + 40, updated_at = now() "
            "WHERE insurance_number = %s AND period_month = "
            "(SELECT min(period_month) FROM contribution_period WHERE insurance_number = %s)",
            (insurance_number, insurance_number),
        )
    months += 1
    wait_until(recorded, 60, "the streamed change to be audited", 0.5)

    data_dir = describe(tmp_path / "described", sources, audit)
    done = citizen(data_dir, personal_id)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    by_topic: dict[str, list[dict[str, Any]]] = {}
    for entry in found:
        by_topic.setdefault(entry["topic"].removeprefix(kafka.topic_prefix), []).append(entry)
    assert set(by_topic) == set(FIELDS), "the processor disclosed nothing else about anyone"
    assert len(by_topic["finance.tax_obligation"]) == obligations
    assert len(by_topic["insurance.contribution_period"]) == months
    for topic, entries in by_topic.items():
        kind = "tax_code" if topic.startswith("finance") else "insurance_number"
        for entry in entries:
            assert entry["agency"] == AGENCY and entry["fields"] == FIELDS[topic]
            assert entry["matched"] == [{"kind": kind}]
    # field names and kinds, never the linked identifiers' values unless asked
    assert tax_code not in done.stdout + done.stderr
    assert insurance_number not in done.stdout + done.stderr
    assert "also searched: tax code (linked in finance.taxpayer)" in done.stderr
    shown = citizen(data_dir, personal_id, "--show-identifiers")
    assert shown.returncode == 0, shown.stderr
    matches = [m for entry in json.loads(shown.stdout) for m in entry["matched"]]
    assert {"kind": "tax_code", "identifier": tax_code} in matches
    assert f"insurance number {insurance_number}" in shown.stderr

    # a source out of reach is named, and the rest is still answered
    unreachable = {**sources, "finance": "host=127.0.0.1 port=1 dbname=finance"}
    partial = citizen(describe(tmp_path / "partial", unreachable, audit), personal_id)
    assert partial.returncode == 0, partial.stderr
    assert "note: finance.taxpayer: cannot read source 'finance'" in partial.stderr
    topics = {entry["topic"] for entry in json.loads(partial.stdout)}
    assert topics == {f"{kafka.topic_prefix}insurance.contribution_period"}
