"""``govsync audit citizen``'s pure parts: which contracts are link tables, how a person's
identifiers are matched against entries, and that linked identifiers' values are printed only
when asked."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from psycopg import sql

from sync.audit.chain import Entry
from sync.audit.links import Linked, LinkTable, link_tables
from sync.cli.audit_citizen import Identifiers, entry_dict, matched, resolve
from sync.contracts import load_contracts
from sync.stack.description import DatabaseEntry, StackDescription

REPO_SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "avro"
AN = "001090000001"
WHEN = datetime(2026, 1, 5, 8, 30, tzinfo=UTC)


def entry(subjects: tuple[str, ...], topic: str = "finance.tax_obligation") -> Entry:
    return Entry(
        agency="gdt",
        seq=3,
        subjects=subjects,
        topic=topic,
        op="r",
        fields=("tax_code", "tax_type", "tax_period"),
        purpose="p",
        legal_basis="b",
        event_id="finance:1:2",
        lsn="0/16",
        index=2,
        committed_at=WHEN,
        recorded_at=WHEN,
        prev_hash=b"\0" * 32,
        hash=b"\1" * 32,
    )


def person() -> Identifiers:
    linked = [
        Linked("insurance_number", "0112345678", "insurance.insured_person"),
        Linked("tax_code", "8012345678", "finance.taxpayer"),
    ]
    return Identifiers(AN, linked)


def test_the_link_tables_are_the_contracts_tying_a_personal_id_to_another_kind() -> None:
    links = link_tables(load_contracts(REPO_SCHEMAS).values())
    assert links == [
        LinkTable(
            "finance.taxpayer", "finance", "taxpayer", "personal_id", (("tax_code", "tax_code"),)
        ),
        LinkTable(
            "insurance.insured_person",
            "insurance",
            "insured_person",
            "personal_id",
            (("insurance_number", "insurance_number"),),
        ),
    ]
    query = links[0].query()
    assert isinstance(query, sql.Composed)
    rendered = repr(query)
    assert "'taxpayer'" in rendered and "'personal_id'" in rendered and "'tax_code'" in rendered


def test_a_person_is_searched_under_every_identifier_as_entries_store_it() -> None:
    assert person().stored() == {
        AN: ("personal_id", AN),
        "insurance_number:0112345678": ("insurance_number", "0112345678"),
        "tax_code:8012345678": ("tax_code", "8012345678"),
    }


def test_an_entry_says_which_kind_matched_and_the_value_only_when_asked() -> None:
    about = entry(("001090000002", "tax_code:8012345678"))
    assert matched(about, person(), show=False) == [{"kind": "tax_code"}]
    assert matched(about, person(), show=True) == [{"kind": "tax_code", "identifier": "8012345678"}]
    shown = json.dumps(entry_dict(about, person(), show=False))
    assert "8012345678" not in shown and "001090000002" not in shown
    assert json.loads(shown)["fields"] == ["tax_code", "tax_type", "tax_period"]
    assert "8012345678" in json.dumps(entry_dict(about, person(), show=True))


def test_without_a_described_deployment_the_personal_id_alone_is_searched(
    tmp_path: Path,
) -> None:
    found = resolve(tmp_path, AN)
    assert found.linked == []
    (problem,) = found.unreachable
    assert f"no --federation and no stack.json in {tmp_path}" in problem
    assert "finance.taxpayer, insurance.insured_person" in problem
    assert found.stored() == {AN: ("personal_id", AN)}


@pytest.mark.parametrize("missing", ["finance", "insurance"])
def test_a_source_the_deployment_does_not_describe_is_named(tmp_path: Path, missing: str) -> None:
    present = "insurance" if missing == "finance" else "finance"
    # a source database nobody listens for: the connection is refused at once
    dsn = "host=127.0.0.1 port=1 dbname=x connect_timeout=2"
    StackDescription(
        data_dir=str(tmp_path),
        bootstrap="",
        registry_url="",
        postgres_port=0,
        databases=[DatabaseEntry(present, "source", dsn, "x")],
    ).write(tmp_path)
    found = resolve(tmp_path, AN)
    assert found.linked == []
    problems = sorted(found.unreachable)
    assert len(problems) == 2
    assert any(f"the deployment describes no source database {missing!r}" in p for p in problems)
    assert any(f"cannot read source {present!r}" in p for p in problems)
