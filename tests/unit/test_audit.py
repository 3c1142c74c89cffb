"""The disclosure audit's pure logic: who a change is about, what an agency received, the
canonical form and hash chain of entries, and a walk that finds every kind of tampering."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync.audit import (
    Basis,
    Disclosure,
    Entry,
    Head,
    audit_event_id,
    canonical,
    disclosures_of,
    extend,
    subject_kind,
    subject_text,
    subjects_of,
    verify_entries,
)
from sync.audit.chain import GENESIS, ChainWalk
from sync.audit.schema import COLUMNS, entry_of, row_of
from sync.contracts import load_contracts
from sync.contracts.attributes import subject_fields
from sync.policy import FEDERATION_FILE, Projection, load_manifest
from sync.types import ChangeEvent, Lsn, Op, Position, TableRef

REPO = Path(__file__).resolve().parents[2]
CONTRACTS = load_contracts(REPO / "schemas" / "avro")
MANIFEST = load_manifest(FEDERATION_FILE, CONTRACTS)
SECRETS = {"gso_pseudonym": b"g" * 32}
WHEN = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def citizen(**changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "personal_id": "001090000001",
        "full_name": "Nguyễn Văn An",
        "date_of_birth": date(1990, 5, 1),
        "sex": "nam",
        "ethnicity": "Kinh",
        "province_code": "01",
        "district_code": "001",
        "ward_code": "00001",
        "updated_at": datetime(2025, 7, 1, tzinfo=UTC),
    }
    row.update(changes)
    return row


def event(
    op: Op,
    after: dict[str, Any] | None,
    before: dict[str, Any] | None = None,
    key: dict[str, Any] | None = None,
    table: str = "citizen",
    index: int = 1,
) -> ChangeEvent:
    image = after if after is not None else before
    assert image is not None
    position = Position(Lsn.parse("16/B374D848"), index)
    return ChangeEvent(
        op=op,
        table=TableRef("public", table),
        key=key if key is not None else {"personal_id": image["personal_id"]},
        before=before,
        after=after,
        position=position,
        txid=42,
        commit_time=WHEN,
        event_id=ChangeEvent.make_event_id(
            "population",
            position,
            {"personal_id": image["personal_id"]} if op is Op.READ else None,
        ),
        source="population",
    )


def disclosure(n: int, agency: str = "vss", **changes: Any) -> Disclosure:
    values: dict[str, Any] = {
        "agency": agency,
        "subjects": (f"0010900{n:05d}",),
        "topic": "population.citizen",
        "op": "u",
        "fields": ("personal_id", "full_name"),
        "purpose": "Đăng ký bảo hiểm xã hội",
        "legal_basis": "Law 41/2024/QH15",
        "event_id": f"population:00000016B374D848:{n}",
        "lsn": "16/B374D848",
        "index": n,
        "committed_at": WHEN,
    }
    values.update(changes)
    return Disclosure(**values)


def chain(n: int, agency: str = "vss") -> list[Entry]:
    return extend(Head(agency), [disclosure(i, agency) for i in range(1, n + 1)], WHEN)


def head_of(entries: list[Entry]) -> Head:
    last = entries[-1]
    return Head(last.agency, last.seq, last.hash)


def broken(entries: list[Entry], head: Head | None, **kw: Any) -> tuple[int, str]:
    problem = verify_entries("vss", entries, head, **kw).problem
    assert problem is not None, "the walk found nothing wrong"
    return problem.seq, problem.reason


# --- subjects and disclosures ----------------------------------------------------------------


def marked(topic: str) -> dict[str, str]:
    contract = CONTRACTS[topic]
    return subject_fields(contract.row_schema, contract.key_schema)


CITIZEN = marked("population.citizen")


def test_subjects_come_from_every_marked_field_of_key_and_images() -> None:
    household = {
        "household_id": "H1",
        "personal_id": "001090000002",
        "head_personal_id": "001090000001",
    }
    before = household | {"head_personal_id": "001090000009"}
    e = event(Op.UPDATE, household, before, key={"household_id": "H1", "personal_id": "X"})
    subjects = subjects_of(e, marked("population.household"))
    assert subjects == ("001090000001", "001090000002", "001090000009", "X")


def test_null_and_absent_identifiers_name_nobody() -> None:
    right = {
        "certificate_serial": "CS1",
        "holder_personal_id": "0011",
        "co_holder_personal_id": None,
    }
    e = event(Op.CREATE, right | {"personal_id": ""}, key={"certificate_serial": "CS1"})
    assert subjects_of(e, marked("land.land_use_right")) == ("0011",)
    enterprise = event(Op.CREATE, {"personal_id": None, "enterprise_code": "0100"}, key={"e": 1})
    assert subjects_of(enterprise, marked("finance.taxpayer")) == ()


def test_subjects_are_the_marked_fields_whatever_their_name_and_carry_their_kind() -> None:
    obligation = {"tax_code": "8012345678", "tax_type": "tncn", "tax_period": "2025"}
    e = event(Op.CREATE, obligation, key={"tax_code": "8012345678"}, table="tax_obligation")
    assert subjects_of(e, marked("finance.tax_obligation")) == ("tax_code:8012345678",)
    month = {"insurance_number": "0112345678", "personal_id": "not marked here"}
    e = event(Op.UPDATE, month, key={"insurance_number": "0112345678"}, table="contribution")
    assert subjects_of(e, marked("insurance.contribution_period")) == (
        "insurance_number:0112345678",
    )
    # a field a name-based guess would miss, and one it would wrongly take
    e = event(Op.CREATE, {"cccd": "001090000001", "personal_id": "x"}, key={"cccd": "001090000001"})
    assert subjects_of(e, {"cccd": "personal_id"}) == ("001090000001",)


def test_stored_identifiers_read_back_with_their_kind() -> None:
    kinds = ("personal_id", "tax_code", "insurance_number")
    assert subject_text("personal_id", "001090000001") == "001090000001"
    assert subject_text("tax_code", 8012345678) == "tax_code:8012345678"
    for kind, value in [("tax_code", "0101234567-001"), ("insurance_number", "0112345678")]:
        assert subject_kind(subject_text(kind, value), kinds) == (kind, value)
    # entries written before kinds were stored hold bare personal ids
    assert subject_kind("001090000001", kinds) == ("personal_id", "001090000001")
    assert subject_kind("passport:B1234567", kinds) == ("personal_id", "passport:B1234567")


def test_an_upsert_discloses_the_projected_fields_and_the_subscription_grounds() -> None:
    projection = Projection(
        CONTRACTS["population.citizen"], MANIFEST.subscription("vss", "population.citizen")
    )
    source = event(Op.UPDATE, citizen(), citizen(full_name="old"))
    projected = projection.project_event(source)
    assert projected is not None and projected.after is not None
    (d,) = disclosures_of(
        source, projected, projection.subscription, "population.citizen", "vss", CITIZEN
    )
    assert d.fields == tuple(projected.after)
    assert set(d.fields) == set(projection.subscription.fields)
    assert "ethnicity" not in d.fields
    assert (d.purpose, d.legal_basis) == (
        projection.subscription.purpose,
        projection.subscription.legal_basis,
    )
    assert (d.agency, d.op, d.subjects) == ("vss", "u", ("001090000001",))
    assert (d.event_id, d.lsn, d.index, d.committed_at) == (source.event_id, "16/B374D848", 1, WHEN)


def test_a_pseudonymised_subscriber_is_audited_under_the_real_personal_id() -> None:
    projection = Projection(
        CONTRACTS["population.citizen"], MANIFEST.subscription("gso", "population.citizen"), SECRETS
    )
    source = event(Op.CREATE, citizen())
    projected = projection.project_event(source)
    assert projected is not None and projected.after is not None
    assert projected.after["personal_id"] != "001090000001"
    (d,) = disclosures_of(
        source, projected, projection.subscription, "population.citizen", "gso", CITIZEN
    )
    assert d.subjects == ("001090000001",)
    assert "personal_id" in d.fields


def test_a_delete_discloses_the_removal_by_its_key_fields() -> None:
    source = event(Op.DELETE, None, citizen())
    projected = dataclasses.replace(source, before=None)
    (d,) = disclosures_of(source, projected, Basis("p", "b"), "population.citizen", "vss", CITIZEN)
    assert (d.op, d.fields, d.subjects) == ("d", ("personal_id",), ("001090000001",))


def test_a_row_moving_out_of_a_filter_is_disclosed_as_a_removal() -> None:
    projection = Projection(
        CONTRACTS["population.citizen"], MANIFEST.subscription("hanoi", "population.citizen")
    )
    source = event(Op.UPDATE, citizen(province_code="79"), citizen())
    (d,) = disclosures_of(
        source, projection.project_event(source), projection.subscription, "t", "hanoi", CITIZEN
    )
    assert (d.op, d.fields) == ("d", ("personal_id",))


def test_a_skipped_change_discloses_nothing() -> None:
    assert (
        disclosures_of(event(Op.CREATE, citizen()), None, Basis("p", "b"), "t", "vss", CITIZEN)
        == ()
    )


def test_a_truncate_discloses_nothing() -> None:
    truncate = dataclasses.replace(
        event(Op.DELETE, None, citizen()), op=Op.TRUNCATE, key={}, before=None
    )
    assert disclosures_of(truncate, truncate, Basis("p", "b"), "t", "vss", CITIZEN) == ()


def test_snapshot_reads_sharing_a_position_get_distinct_stable_audit_ids() -> None:
    one = event(Op.READ, citizen(), index=0)
    two = event(Op.READ, citizen(personal_id="001090000002"), index=0)
    assert one.position == two.position
    assert audit_event_id(one) != audit_event_id(two)
    assert audit_event_id(one) == audit_event_id(dataclasses.replace(one, after=citizen()))
    assert "001090000001" not in audit_event_id(one)
    assert audit_event_id(event(Op.CREATE, citizen())) == event(Op.CREATE, citizen()).event_id


def test_a_disclosure_refuses_unknown_ops_and_naive_times() -> None:
    with pytest.raises(ValueError, match="op must be one of"):
        disclosure(1, op="t")
    with pytest.raises(ValueError, match="time zone"):
        disclosure(1, committed_at=datetime(2026, 1, 1))


# --- canonical form and chaining -------------------------------------------------------------


def test_canonical_bytes_are_pinned() -> None:
    """Changing this form makes every stored entry fail verification: bump its version."""
    (entry,) = extend(Head("vss"), [disclosure(7)], WHEN)
    assert (
        canonical(entry)
        == (
            '{"agency":"vss","committed_at":"2026-01-02T03:04:05.678901+00:00",'
            '"event_id":"population:00000016B374D848:7","fields":["personal_id","full_name"],'
            '"index":7,"legal_basis":"Law 41/2024/QH15","lsn":"16/B374D848","op":"u",'
            '"purpose":"Đăng ký bảo hiểm xã hội","recorded_at":"2026-01-02T03:04:05.678901+00:00",'
            '"seq":1,"subjects":["001090000007"],"topic":"population.citizen","v":1}'
        ).encode()
    )
    assert entry.prev_hash == GENESIS
    assert entry.hash == hashlib.sha256(GENESIS + canonical(entry)).digest()


def test_the_same_instant_in_another_zone_has_the_same_canonical_bytes() -> None:
    (utc,) = extend(Head("vss"), [disclosure(1)], WHEN)
    hanoi = timezone(timedelta(hours=7))
    (local,) = extend(
        Head("vss"), [disclosure(1, committed_at=WHEN.astimezone(hanoi))], WHEN.astimezone(hanoi)
    )
    assert canonical(utc) == canonical(local) and utc.hash == local.hash


def test_extend_numbers_and_links_entries_from_the_head() -> None:
    first = chain(3)
    assert [e.seq for e in first] == [1, 2, 3]
    assert [e.prev_hash for e in first] == [GENESIS, first[0].hash, first[1].hash]
    more = extend(head_of(first), [disclosure(4)], WHEN)
    assert (more[0].seq, more[0].prev_hash) == (4, first[2].hash)
    assert verify_entries("vss", first + more, head_of(more)).problem is None


def test_a_chain_takes_only_its_agency() -> None:
    with pytest.raises(ValueError, match="'gso' does not belong in 'vss'"):
        extend(Head("vss"), [disclosure(1, agency="gso")], WHEN)


def test_an_entry_survives_its_row_form() -> None:
    (entry,) = chain(1)
    row = row_of(entry)
    assert len(row) == len(COLUMNS) and isinstance(row[2], list)
    assert entry_of(row) == entry


# --- verification ----------------------------------------------------------------------------


def test_an_intact_chain_verifies() -> None:
    entries = chain(5)
    walk = verify_entries("vss", entries, head_of(entries))
    assert walk.problem is None and walk.entries == 5 and walk.last == head_of(entries)
    assert verify_entries("vss", [], Head("vss")).problem is None


def test_an_edited_entry_is_named() -> None:
    entries = chain(5)
    entries[2] = dataclasses.replace(entries[2], purpose="something else")
    assert broken(entries, head_of(entries)) == (
        3,
        "content does not match its hash (entry edited)",
    )


def test_a_removed_middle_entry_is_a_gap() -> None:
    entries = chain(5)
    del entries[2]
    assert broken(entries, head_of(entries)) == (3, "seq 3 missing (removed)")


def test_a_removed_and_renumbered_entry_breaks_the_link() -> None:
    entries = chain(5)
    del entries[2]
    entries[2:] = [dataclasses.replace(e, seq=e.seq - 1) for e in entries[2:]]
    seq, reason = broken(entries, head_of(chain(5)))
    assert seq == 3 and "prev_hash is not the hash of seq 2" in reason


def test_a_removed_tail_is_found_from_the_head() -> None:
    entries = chain(5)
    seq, reason = broken(entries[:3], head_of(entries))
    assert seq == 4 and "seq 4..5 missing" in reason and "tail removed" in reason


def test_a_swapped_pair_is_found() -> None:
    entries = chain(5)
    a, b = entries[1], entries[2]
    entries[1], entries[2] = dataclasses.replace(b, seq=2), dataclasses.replace(a, seq=3)
    seq, reason = broken(entries, head_of(entries))
    assert seq == 2 and "prev_hash" in reason


def test_entries_beyond_the_head_and_a_missing_head_are_found() -> None:
    entries = chain(5)
    seq, reason = broken(entries, head_of(entries[:4]))
    assert seq == 5 and "not in the chain head" in reason
    assert broken(entries, None) == (5, "the chain head row is missing")
    wrong = dataclasses.replace(head_of(entries), hash=bytes(32))
    assert broken(entries, wrong)[1] == "the chain head's hash differs from the entry's hash"


def test_anchors_find_a_rewritten_chain_and_a_removed_tail_with_a_rewritten_head() -> None:
    original = chain(5)
    anchors = {4: original[3].hash}
    forged = extend(Head("vss"), [disclosure(i, purpose="forged") for i in range(1, 6)], WHEN)
    assert broken(forged, head_of(forged), anchors=anchors) == (
        4,
        "hash differs from the anchor (chain rewritten)",
    )
    seq, reason = broken(original[:3], head_of(original[:3]), anchors=anchors)
    assert seq == 4 and "an anchor names seq 4" in reason


def test_the_walk_reports_the_first_problem_and_stops() -> None:
    entries = chain(5)
    entries[1] = dataclasses.replace(entries[1], topic="x")
    walk = ChainWalk("vss")
    results = [walk.feed(e) for e in entries]
    assert results[0] is None and len(set(results[1:])) == 1 and walk.entries == 1
    assert walk.finish(head_of(entries)) is not None and walk.problem is not None
    assert walk.problem.seq == 2


def test_an_entry_of_another_agency_in_the_walk_is_named() -> None:
    entries = chain(2)
    entries[1] = dataclasses.replace(entries[1], agency="gso")
    assert broken(entries, head_of(entries)) == (2, "the entry names agency 'gso'")


def test_anchors_parse_and_print() -> None:
    head = Head("vss", 12, hashlib.sha256(b"x").digest())
    assert Head.parse(str(head)) == head
    for bad in ("vss", "vss:x:00", "vss:1:abcd", ":1:" + "00" * 32, "vss:-1:" + "00" * 32):
        with pytest.raises(ValueError, match="AGENCY:SEQ:SHA256HEX"):
            Head.parse(bad)


_FIELDS = ("subjects", "topic", "op", "fields", "purpose", "legal_basis", "event_id", "lsn")


@given(
    size=st.integers(2, 12),
    data=st.data(),
    kind=st.sampled_from(["edit", "delete", "swap", "truncate", "renumber", "duplicate"]),
)
def test_any_single_tampering_is_detected(size: int, data: st.DataObject, kind: str) -> None:
    entries = chain(size)
    head = head_of(entries)
    # a renumbered chain whose head is rewritten too loses only its tail: anchors catch that
    last = size - 2 if kind == "renumber" else size - 1
    i = data.draw(st.integers(0, last), label="i")
    if kind == "edit":
        name = data.draw(st.sampled_from(_FIELDS), label="field")
        value: Any = ("someone",) if name in ("subjects", "fields") else "tampered"
        entries[i] = dataclasses.replace(entries[i], **{name: value})
    elif kind == "delete":
        del entries[i]
    elif kind == "swap":
        j = data.draw(st.integers(0, size - 1).filter(lambda j: j != i), label="j")
        a, b = entries[i], entries[j]
        entries[i], entries[j] = (
            dataclasses.replace(b, seq=a.seq),
            dataclasses.replace(a, seq=b.seq),
        )
    elif kind == "truncate":
        del entries[i:]
    elif kind == "renumber":
        del entries[i]
        entries[i:] = [dataclasses.replace(e, seq=e.seq - 1) for e in entries[i:]]
        head = Head("vss", size - 1, entries[-1].hash) if entries else Head("vss")
    else:
        entries.insert(i, entries[i])
    assert verify_entries("vss", entries, head).problem is not None
