"""The console's pages as pure rendering: a schema's fields, the review of two versions (the
house diff, a verdict per level, who receives each changed field) and one person's
disclosures, every value escaped."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from sync.audit.chain import Entry
from sync.console.disclosure_page import disclosures_page
from sync.console.fields import fields_of, topic_of, type_text
from sync.console.review_page import review_page, review_versions, side_by_side
from sync.console.schema_pages import SubjectSummary, subject_page, subjects_page
from sync.console.sessions import Session
from sync.console.users import Role
from sync.contracts import load_contracts
from sync.contracts.compatibility import Level, parse
from sync.contracts.envelope import envelope_schema
from sync.contracts.review import RegisteredVersion
from sync.policy import FEDERATION_FILE, load_manifest

SUBJECT = "population.citizen-value"
DPO = Session("minh", Role.DPO, "form-token", 0.0, 0.0)
REVIEWER = Session("lan", Role.REVIEWER, "form-token", 0.0, 0.0)


def version(number: int, schema: dict[str, Any]) -> RegisteredVersion:
    return RegisteredVersion(number, 100 + number, schema, parse(json.dumps(schema)))


def citizen_row(schema: dict[str, Any]) -> dict[str, Any]:
    before = next(f for f in schema["fields"] if f["name"] == "before")
    row: dict[str, Any] = before["type"][1]
    return row


def field(row: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(f for f in row["fields"] if f["name"] == name)
    return found


@pytest.fixture(scope="module")
def citizen() -> dict[str, Any]:
    return envelope_schema(load_contracts()["population.citizen"])


def evolved(citizen: dict[str, Any], *, with_default: bool) -> dict[str, Any]:
    """The citizen envelope with a new field (with or without a default) and date_of_birth
    classified anew."""
    schema = copy.deepcopy(citizen)
    row = citizen_row(schema)
    new_field: dict[str, Any] = {"name": "nickname", "doc": "<b>Nickname</b>", "type": "string"}
    if with_default:
        new_field |= {"type": ["null", "string"], "default": None}
    new_field["classification"] = "personal"
    row["fields"].append(new_field)
    field(row, "date_of_birth")["classification"] = "sensitive_personal"
    return schema


def test_fields_are_the_row_records_with_docs_classifications_and_marks(
    citizen: dict[str, Any],
) -> None:
    fields = {f.name: f for f in fields_of(citizen)}
    assert "before" not in fields and "source" not in fields
    assert fields["personal_id"].subject_kind == "personal_id"
    assert fields["ethnicity"].classification == "sensitive_personal"
    assert fields["ethnicity"].type == "null | string" and fields["ethnicity"].default == "null"
    assert fields["date_of_birth"].type == "int (date)"
    key = load_contracts()["population.citizen"].key_schema
    assert [f.name for f in fields_of(key)] == ["personal_id"]
    assert type_text({"type": "array", "items": "long"}) == "array of long"
    assert topic_of("dev.population.citizen-value", "dev.") == "population.citizen"
    assert topic_of("population.citizen-key") == "population.citizen"
    assert topic_of("not-a-topic-subject") == ""


def test_a_review_gives_a_verdict_per_level_and_who_receives_each_changed_field(
    citizen: dict[str, Any],
) -> None:
    manifest = load_manifest(FEDERATION_FILE, load_contracts())
    history = [version(2, evolved(citizen, with_default=False)), version(1, citizen)]
    review = review_versions(SUBJECT, history, 1, 2, "FULL_TRANSITIVE", manifest)

    verdicts = {v.level: v for v in review.verdicts}
    assert not verdicts[Level.BACKWARD].compatible  # v2 cannot read v1's rows: no default
    assert any("nickname" in r for r in verdicts[Level.BACKWARD].reasons)
    assert verdicts[Level.FORWARD].compatible and verdicts[Level.NONE].compatible
    assert not verdicts[Level.FULL_TRANSITIVE].compatible

    reaches = {r.field: r for r in review.reaches}
    assert set(reaches) == {"nickname", "date_of_birth"}
    assert reaches["nickname"].receivers == ()  # no subscription lists a new field yet
    by_agency = {r.agency: r for r in reaches["date_of_birth"].receivers}
    assert set(by_agency) == {"gdt", "vss", "gso", "hanoi", "hcmc"}
    assert by_agency["gso"].how == "receives as its year"

    text = review_page(review, REVIEWER)
    assert "refused" in text and "accepted" in text
    assert "<strong>FULL_TRANSITIVE</strong> (this subject's level)" in text
    assert "&lt;b&gt;Nickname&lt;/b&gt;" in text and "<b>Nickname</b>" not in text
    assert "no subscription" in text and "Statistics office" in text
    hanoi_row = text.split("(<code>hanoi</code>)")[1].split("</tr>")[0]
    assert "receives" in hanoi_row and "public_duty: " in hanoi_row  # the legal basis too


def test_with_a_default_every_level_accepts_and_transitive_levels_see_every_version(
    citizen: dict[str, Any],
) -> None:
    v2 = evolved(citizen, with_default=True)
    v3 = copy.deepcopy(v2)
    citizen_row(v3)["fields"] = [f for f in citizen_row(v3)["fields"] if f["name"] != "nickname"]
    field(citizen_row(v3), "sex")["type"] = "int"  # v1 and v2 wrote a string there
    history = [version(3, v3), version(2, v2), version(1, citizen)]
    review = review_versions(SUBJECT, history, 2, 3, "BACKWARD", None)
    assert all(not v.compatible for v in review.verdicts if v.level is not Level.NONE)
    assert review.reaches == []  # no manifest: who receives a field is not known
    assert "who receives it is unknown" in review_page(review, REVIEWER)
    with pytest.raises(KeyError):
        review_versions(SUBJECT, history, 1, 4, "BACKWARD", None)

    accepted = review_versions(SUBJECT, history[1:], 1, 2, "BACKWARD", None)
    assert all(v.compatible for v in accepted.verdicts)


def test_side_by_side_aligns_fields_by_name_and_marks_what_changed(
    citizen: dict[str, Any],
) -> None:
    new = evolved(citizen, with_default=True)
    text = side_by_side(fields_of(citizen), fields_of(new), 1, 2)
    rows = text.split("<tr")[2:]  # after the heading row
    by_field = {row.split("<code>")[-1].split("</code>")[0]: row for row in rows}
    assert by_field["nickname"].startswith(' class="added"')
    assert by_field["date_of_birth"].startswith(' class="changed"')
    assert by_field["full_name"].startswith(">")
    assert by_field["full_name"].count("<code>full_name</code>") == 2
    assert by_field["nickname"].count("<code>nickname</code>") == 1


def test_subject_pages_link_versions_and_offer_a_comparison(citizen: dict[str, Any]) -> None:
    listing = subjects_page([SubjectSummary("a/b<c>-value", (1, 2))], REVIEWER)
    assert 'href="/subjects/a%2Fb%3Cc%3E-value"' in listing and "a/b&lt;c&gt;-value" in listing
    assert "Disclosures" not in listing  # a reviewer has no link to the dpo's page
    history = [version(2, evolved(citizen, with_default=True)), version(1, citizen)]
    page = subject_page(SUBJECT, history, "FULL_TRANSITIVE", DPO)
    assert 'href="/subjects/population.citizen-value/diff?old=1&new=2"' in page
    assert 'href="/disclosures"' in page
    assert page.count("<option") == 4 and "FULL_TRANSITIVE" in page
    assert "nickname" in page  # the newest version's fields


def entry(seq: int, agency: str, purpose: str) -> Entry:
    at = datetime(2026, 11, 30, 8, 15, tzinfo=UTC)
    return Entry(
        seq, agency, ("001099000777",), "population.citizen", "c", ("full_name", "sex"),
        purpose, "public_duty: Law on Residence 68/2020/QH14", f"event-{seq}", "0/16B3748",
        2, at, at, b"", b"",
    )  # fmt: skip


def test_a_persons_disclosures_name_agency_fields_purpose_basis_and_time() -> None:
    entries = [entry(1, "hanoi", "Residence <management>"), entry(2, "gdt", "Tax")]
    text = disclosures_page(DPO, "001099000777", entries, {"hanoi": "Hanoi People's Committee"})
    assert "Hanoi People&#x27;s Committee (<code>hanoi</code>)" in text
    assert "Residence &lt;management&gt;" in text
    assert "full_name, sex" in text and "created" in text
    assert "public_duty: Law on Residence 68/2020/QH14" in text
    assert "2026-11-30 08:15:00 +0000" in text
    assert "2 disclosures about 001099000777" in text
    assert 'name="form_token" value="form-token"' in text
    assert "No disclosure recorded about 42" in disclosures_page(DPO, "42", [])
    assert "<table" not in disclosures_page(DPO)
