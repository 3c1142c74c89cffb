"""Inference leaks are closed at load: a filter reads only what its agency receives in clear
unless ``filter_only`` says why, a sensitive field needs a legal basis that names it, a mask
must hide most of a value, and a purpose is a sentence. Each refusal is a ManifestError naming
the file, the path inside it and the reason; the demo and national manifests pass."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from sync.contracts import load_contracts
from sync.policy import FEDERATION_FILE, ManifestError, load_manifest
from sync.policy.national import national_manifest_yaml

REPO = Path(__file__).resolve().parents[2]
CONTRACTS = load_contracts(REPO / "schemas" / "avro")

BASIS = "Law on Statistics No. 89/2015/QH13 (administrative data for official statistics)."
WHY = "The survey covers adults only; the office receives the year of birth alone."
SENSITIVE_BASIS = "Law on Personal Data Protection No. 91/2025/QH15, for ethnic statistics."


def statistics() -> dict[str, Any]:
    """The statistics office on citizens: pseudonymised, as in the demo."""
    return {
        "version": 1,
        "agencies": [
            {"code": "mps", "name": "Ministry of Public Security", "level": "central"},
            {"code": "gso", "name": "Statistics office", "level": "central"},
        ],
        "sources": [
            {"name": "population", "agency": "mps", "database": "population", "tables": ["citizen"]}
        ],
        "subscriptions": [
            {
                "agency": "gso",
                "topic": "population.citizen",
                "purpose": "Population statistics by age, sex and place of residence.",
                "legal_basis": {"basis": "public_duty", "reference": BASIS},
                "fields": ["personal_id", "date_of_birth", "sex", "province_code"],
                "transforms": {
                    "personal_id": {"kind": "hash", "key": "gso_pseudonym"},
                    "date_of_birth": "year",
                },
            }
        ],
    }


def load(tmp_path: Path, change: Callable[[dict[str, Any]], None]) -> Any:
    data = copy.deepcopy(statistics())
    change(data["subscriptions"][0])
    path = tmp_path / "federation.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path, lambda: load_manifest(path, CONTRACTS)


def refusal(tmp_path: Path, change: Callable[[dict[str, Any]], None]) -> ManifestError:
    path, run = load(tmp_path, change)
    with pytest.raises(ManifestError) as caught:
        run()
    error = caught.value
    assert error.file == str(path)
    assert str(error) == f"{path}: {error.path}: {error.reason}"
    return error


def passes(tmp_path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    _, run = load(tmp_path, change)
    run()


def test_the_pseudonymised_subscription_itself_passes(tmp_path: Path) -> None:
    passes(tmp_path, lambda s: None)


# name -> (change, path under subscriptions[0], words of the reason)
LEAKS: dict[str, tuple[Callable[[dict[str, Any]], None], str, str]] = {
    "filter on a field not allowed": (
        lambda s: s.update(row_filter="ethnicity == 'Khmer'"),
        "row_filter",
        "column 1: the filter reads 'ethnicity', which gso does not receive",
    ),
    "filter on the raw value of a hashed field": (
        lambda s: s.update(row_filter="personal_id == '001090000001'"),
        "row_filter",
        "column 1: the filter reads 'personal_id', which gso receives only as a keyed hash",
    ),
    "filter on the full date of a year": (
        lambda s: s.update(row_filter="sex == 'nu' and date_of_birth < '2008-01-01'"),
        "row_filter",
        "column 17: the filter reads 'date_of_birth', which gso receives only as its year",
    ),
    "sensitive field received without its legal basis": (
        lambda s: s["fields"].append("ethnicity"),
        "fields[4]",
        "'ethnicity' is sensitive personal data (sensitive_personal in its contract)",
    ),
    "sensitive field filtered on without its legal basis": (
        lambda s: s.update(
            row_filter="ethnicity == 'Khmer'", filter_only={"ethnicity": "Statistics of one group."}
        ),
        "filter_only.ethnicity",
        "name it under sensitive_fields with the legal basis",
    ),
    "mask that keeps too much": (
        lambda s: s.update(
            fields=[*s["fields"], "full_name"],
            transforms={"full_name": {"kind": "mask", "keep": 64}},
        ),
        "transforms.full_name.keep",
        "a mask keeps at most 8 characters in clear, not 64",
    ),
    "a one-letter purpose": (
        lambda s: s.update(purpose="x"),
        "purpose",
        "the purpose must say something a reviewer can check",
    ),
    "a one-word purpose": (
        lambda s: s.update(purpose="Statistics"),
        "purpose",
        "at least 3 words and 20 characters, not 'Statistics'",
    ),
    "a filter-only reason that says nothing": (
        lambda s: s.update(
            row_filter="date_of_birth < '2008-01-01'", filter_only={"date_of_birth": "ok"}
        ),
        "filter_only.date_of_birth",
        "the reason for filtering on 'date_of_birth' must say something",
    ),
    "a filter-only entry the filter does not read": (
        lambda s: s.update(filter_only={"date_of_birth": WHY}),
        "filter_only.date_of_birth",
        "the row filter does not read 'date_of_birth'",
    ),
    "a filter-only entry for a field received in clear": (
        lambda s: s.update(row_filter="sex == 'nu'", filter_only={"sex": WHY}),
        "filter_only.sex",
        "'sex' is received in clear",
    ),
    "a filter-only entry for an unknown field": (
        lambda s: s.update(filter_only={"blood_type": WHY}),
        "filter_only.blood_type",
        "unknown field 'blood_type'",
    ),
    "a legal basis for a sensitive field neither received nor filtered on": (
        lambda s: s.update(sensitive_fields={"ethnicity": SENSITIVE_BASIS}),
        "sensitive_fields.ethnicity",
        "'ethnicity' is neither received nor filtered on",
    ),
    "a sensitive field's legal basis that says nothing": (
        lambda s: s.update(
            fields=[*s["fields"], "ethnicity"], sensitive_fields={"ethnicity": "Law 91"}
        ),
        "sensitive_fields.ethnicity",
        "the legal basis for 'ethnicity' must say something",
    ),
}


@pytest.mark.parametrize("case", sorted(LEAKS))
def test_each_leak_is_refused_with_file_path_and_reason(tmp_path: Path, case: str) -> None:
    change, path, words = LEAKS[case]
    error = refusal(tmp_path, change)
    assert error.path == f"subscriptions[0].{path}"
    assert words in error.reason


def test_the_filter_refusal_says_how_to_declare_it(tmp_path: Path) -> None:
    error = refusal(tmp_path, lambda s: s.update(row_filter="ethnicity == 'Khmer'"))
    assert "list 'ethnicity' under filter_only with the reason" in error.reason


def test_a_filter_on_a_field_not_received_passes_with_its_reason(tmp_path: Path) -> None:
    passes(
        tmp_path,
        lambda s: s.update(
            row_filter="date_of_birth < '2008-01-01'", filter_only={"date_of_birth": WHY}
        ),
    )


def test_a_sensitive_field_passes_with_a_legal_basis_that_names_it(tmp_path: Path) -> None:
    passes(
        tmp_path,
        lambda s: s.update(
            fields=[*s["fields"], "ethnicity"], sensitive_fields={"ethnicity": SENSITIVE_BASIS}
        ),
    )


def test_a_sensitive_field_filtered_on_passes_with_reason_and_basis(tmp_path: Path) -> None:
    passes(
        tmp_path,
        lambda s: s.update(
            row_filter="ethnicity == 'Khmer'",
            filter_only={"ethnicity": "Statistics of the Khmer community, on its request."},
            sensitive_fields={"ethnicity": SENSITIVE_BASIS},
        ),
    )


def test_a_mask_keeping_up_to_the_bound_passes(tmp_path: Path) -> None:
    passes(
        tmp_path,
        lambda s: s.update(
            fields=[*s["fields"], "full_name"],
            transforms={"full_name": {"kind": "mask", "keep": 8}},
        ),
    )


def test_every_problem_is_collected(tmp_path: Path) -> None:
    def three(s: dict[str, Any]) -> None:
        s.update(purpose="x", row_filter="personal_id == '001090000001'")
        s["fields"].append("ethnicity")

    error = refusal(tmp_path, three)
    assert [path for path, _ in error.problems] == [
        "subscriptions[0].purpose",
        "subscriptions[0].row_filter",
        "subscriptions[0].fields[4]",
    ]


def test_the_demo_manifest_passes_and_names_its_sensitive_field() -> None:
    manifest = load_manifest(FEDERATION_FILE, CONTRACTS)
    hanoi = manifest.subscription("hanoi", "insurance.insured_person")
    assert set(hanoi.sensitive_fields) == {"health_insurance_card_number"}
    for subscription in manifest.subscriptions:
        assert not subscription.filter_only  # every demo filter reads what its agency receives


def test_the_national_manifest_passes(tmp_path: Path) -> None:
    path = tmp_path / "national.yaml"
    path.write_text(national_manifest_yaml(), encoding="utf-8")
    assert len(load_manifest(path, CONTRACTS).subscriptions) == 85
