"""What prepare decides when a replica table and its projected contract differ: compatible
differences become ALTERs, the rest an error naming the table, the column and both types."""

from __future__ import annotations

import pickle

import pytest

from sync.contracts import load_contracts
from sync.errors import Fatal, ReplicaSchemaError
from sync.replica import ReplicaTable
from sync.replica.evolution import FoundColumn, canonical_type, plan_changes

CITIZEN = ReplicaTable.for_contract(load_contracts()["population.citizen"])
BOOKKEEPING = {
    "_source_lsn": FoundColumn("_source_lsn", "pg_lsn", False, False),
    "_source_index": FoundColumn("_source_index", "integer", False, False),
    "_source_commit_time": FoundColumn(
        "_source_commit_time", "timestamp with time zone", False, False
    ),
}


def as_created(table: ReplicaTable) -> dict[str, FoundColumn]:
    """The catalog of the table as ``ReplicaTable.ddl`` creates it."""
    return {
        c.name: FoundColumn(c.name, canonical_type(c.sql_type), c.nullable, False)
        for c in table.columns
    } | BOOKKEEPING


def test_a_table_created_from_its_contract_needs_no_change() -> None:
    changes = plan_changes(CITIZEN, as_created(CITIZEN), ["personal_id"])
    assert not changes.alters
    assert changes.kept == ()


def test_a_column_the_contract_gained_is_added() -> None:
    found = as_created(CITIZEN)
    del found["ethnicity"], found["ward_code"]
    changes = plan_changes(CITIZEN, found, ["personal_id"])
    assert changes.added == ("ethnicity", "ward_code")
    assert changes.alters


def test_a_column_made_optional_loses_not_null_and_a_dropped_nullable_column_is_kept() -> None:
    found = as_created(CITIZEN)
    found["ethnicity"] = FoundColumn("ethnicity", "text", False, False)
    found["nickname"] = FoundColumn("nickname", "text", True, False)
    found["legacy_code"] = FoundColumn("legacy_code", "integer", False, True)
    changes = plan_changes(CITIZEN, found, ["personal_id"])
    assert changes.relaxed == ("ethnicity",)
    assert changes.kept == ("legacy_code", "nickname")
    assert changes.added == ()


@pytest.mark.parametrize(
    ("column", "found", "message"),
    [
        (
            "ward_code",
            FoundColumn("ward_code", "integer", True, False),
            "column 'ward_code' found integer, the contract expects text: its type changed",
        ),
        (
            "updated_at",
            FoundColumn("updated_at", "timestamp without time zone", False, False),
            "column 'updated_at' found timestamp without time zone, the contract expects "
            "timestamp with time zone",
        ),
        (
            "old_code",
            FoundColumn("old_code", "text", False, False),
            "column 'old_code' found text, the contract expects no such column: the contract "
            "no longer has it and it is NOT NULL without a default",
        ),
    ],
)
def test_what_no_alter_can_make_safe_is_an_error_naming_table_column_and_types(
    column: str, found: FoundColumn, message: str
) -> None:
    catalog = as_created(CITIZEN) | {column: found}
    with pytest.raises(ReplicaSchemaError) as raised:
        plan_changes(CITIZEN, catalog, ["personal_id"])
    assert str(raised.value).startswith("replica table population.citizen: ")
    assert message in str(raised.value)
    assert raised.value.column == column
    assert isinstance(raised.value, Fatal)
    copy = pickle.loads(pickle.dumps(raised.value))
    assert (copy.table, copy.column, copy.found) == ("population.citizen", column, found.sql_type)


def test_a_missing_key_column_or_another_primary_key_is_an_error() -> None:
    found = as_created(CITIZEN)
    del found["personal_id"]
    with pytest.raises(ReplicaSchemaError, match=r"'personal_id' found missing.*key column"):
        plan_changes(CITIZEN, found, [])
    with pytest.raises(ReplicaSchemaError, match=r"primary key \(personal_id, sex\) differs"):
        plan_changes(CITIZEN, as_created(CITIZEN), ["personal_id", "sex"])


def test_canonical_types_match_format_type() -> None:
    assert canonical_type("timestamptz[]") == "timestamp with time zone[]"
    assert canonical_type("numeric(12,2)") == "numeric(12,2)"
    assert canonical_type("time") == "time without time zone"
