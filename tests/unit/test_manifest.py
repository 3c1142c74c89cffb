"""The federation manifest: the demo loads against the repository's contracts, and every kind
of mistake is a ManifestError naming the file, the path inside it and the reason."""

from __future__ import annotations

import copy
import pickle
from pathlib import Path
from typing import Any

import pytest
import yaml

from sync.contracts import load_contracts
from sync.errors import ConfigError, is_retryable
from sync.policy import FEDERATION_FILE, Hash, ManifestError, Year, load_manifest

REPO = Path(__file__).resolve().parents[2]
CONTRACTS = load_contracts(REPO / "schemas" / "avro")

LEGAL_BASIS = {"basis": "public_duty", "reference": "Law on Residence No. 68/2020/QH14"}


def base() -> dict[str, Any]:
    """A small valid manifest: one source, one filtered provincial subscription."""
    return {
        "version": 1,
        "agencies": [
            {"code": "mps", "name": "Ministry of Public Security", "level": "central"},
            {"code": "hanoi", "name": "Hanoi", "level": "provincial", "province_code": "01"},
        ],
        "sources": [
            {"name": "population", "agency": "mps", "database": "population", "tables": ["citizen"]}
        ],
        "subscriptions": [
            {
                "agency": "hanoi",
                "topic": "population.citizen",
                "purpose": "Administration of residents",
                "legal_basis": LEGAL_BASIS,
                "fields": ["personal_id", "full_name", "province_code"],
                "row_filter": "province_code == '01'",
            }
        ],
    }


def write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "federation.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def error_of(path: Path) -> ManifestError:
    with pytest.raises(ManifestError) as caught:
        load_manifest(path, CONTRACTS)
    return caught.value


# --- the demo --------------------------------------------------------------------------------


def test_the_demo_manifest_loads_against_the_repository_contracts() -> None:
    manifest = load_manifest(FEDERATION_FILE, CONTRACTS)
    assert {s.name for s in manifest.sources} >= {
        "population",
        "land",
        "business",
        "finance",
        "insurance",
    }
    subscribers = {s.agency for s in manifest.subscriptions}
    assert subscribers >= {"gdt", "vss", "gso", "hanoi", "hcmc"}
    for subscription in manifest.subscriptions:
        assert subscription.purpose.strip() and subscription.legal_basis.strip()
        assert "QH1" in subscription.grounds.reference  # cites a law by its number
    for topic in manifest.topics:
        assert topic in CONTRACTS


def test_the_statistics_office_receives_pseudonymised_data_only() -> None:
    manifest = load_manifest(FEDERATION_FILE, CONTRACTS)
    for subscription in manifest.subscriptions_of("gso"):
        assert "full_name" not in subscription.fields
        assert isinstance(subscription.transforms["personal_id"], Hash)
        assert isinstance(subscription.transforms["date_of_birth"], Year)
        assert subscription.row_filter is None
    citizen = manifest.subscription("gso", "population.citizen")
    assert set(citizen.fields) == {
        "personal_id",
        "date_of_birth",
        "sex",
        "province_code",
        "district_code",
    }
    assert manifest.hash_keys("gso") == {"gso_pseudonym"}
    assert manifest.hash_keys("hanoi") == frozenset()


def test_provinces_receive_their_own_residents() -> None:
    manifest = load_manifest(FEDERATION_FILE, CONTRACTS)
    for code, province in (("hanoi", "01"), ("hcmc", "79")):
        assert manifest.agency(code).province_code == province
        citizens = manifest.subscription(code, "population.citizen")
        assert citizens.row_filter == f"province_code == '{province}'"


# --- errors: path and reason -----------------------------------------------------------------


def mutated(change: Any) -> dict[str, Any]:
    data = copy.deepcopy(base())
    change(data)
    return data


def _sub(data: dict[str, Any]) -> dict[str, Any]:
    subscription: dict[str, Any] = data["subscriptions"][0]
    return subscription


def _second_subscription(data: dict[str, Any]) -> None:
    data["subscriptions"].append(copy.deepcopy(_sub(data)))


def _shared_hash_key(data: dict[str, Any]) -> None:
    data["agencies"].append({"code": "gso", "name": "Statistics", "level": "central"})
    for agency in ("hanoi", "gso"):
        subscription = copy.deepcopy(_sub(data))
        subscription.update(agency=agency, topic="population.citizen", row_filter=None)
        subscription["transforms"] = {"personal_id": {"kind": "hash", "key": "shared"}}
        data["subscriptions"].append(subscription)
    del data["subscriptions"][0]


# name -> (change, path, words in the reason)
CASES: dict[str, tuple[Any, str, str]] = {
    "unknown subscribing agency": (
        lambda d: _sub(d).update(agency="hue"),
        "subscriptions[0].agency",
        "unknown agency 'hue'",
    ),
    "unknown source agency": (
        lambda d: d["sources"][0].update(agency="moh"),
        "sources[0].agency",
        "unknown agency 'moh'",
    ),
    "unknown topic": (
        lambda d: _sub(d).update(topic="population.passport"),
        "subscriptions[0].topic",
        "unknown topic 'population.passport': no contract",
    ),
    "topic nobody publishes": (
        lambda d: _sub(d).update(topic="land.land_parcel", fields=["parcel_id"], row_filter=None),
        "subscriptions[0].topic",
        "no source in the manifest publishes 'land.land_parcel'",
    ),
    "unknown table of a source": (
        lambda d: d["sources"][0]["tables"].append("passport"),
        "sources[0].tables[1]",
        "unknown topic 'population.passport'",
    ),
    "unknown field": (
        lambda d: _sub(d)["fields"].append("blood_type"),
        "subscriptions[0].fields[3]",
        "unknown field 'blood_type': not a field of population.citizen",
    ),
    "field listed twice": (
        lambda d: _sub(d)["fields"].append("full_name"),
        "subscriptions[0].fields[3]",
        "listed twice",
    ),
    "missing purpose": (
        lambda d: _sub(d).pop("purpose"),
        "subscriptions[0].purpose",
        "Field required",
    ),
    "blank legal basis": (
        lambda d: _sub(d).update(legal_basis={"basis": "public_duty", "reference": "   "}),
        "subscriptions[0].legal_basis.reference",
        "at least 1 character",
    ),
    "legal basis as bare text": (
        lambda d: _sub(d).update(legal_basis="Law on Residence No. 68/2020/QH14"),
        "subscriptions[0].legal_basis",
        "a legal basis is structured: {basis: <one of consent, contract",
    ),
    "legal basis the law does not name": (
        lambda d: _sub(d).update(legal_basis={"basis": "convenience", "reference": "a memo"}),
        "subscriptions[0].legal_basis.basis",
        "'consent', 'contract', 'legal_obligation'",
    ),
    "missing legal basis": (
        lambda d: _sub(d).pop("legal_basis"),
        "subscriptions[0].legal_basis",
        "Field required",
    ),
    "key field not allowed": (
        lambda d: _sub(d)["fields"].remove("personal_id"),
        "subscriptions[0].fields",
        "key field 'personal_id' of population.citizen must be allowed",
    ),
    "transform on a field not allowed": (
        lambda d: _sub(d).update(transforms={"date_of_birth": "year"}),
        "subscriptions[0].transforms.date_of_birth",
        "not in the allowed fields",
    ),
    "transform that does not fit the type": (
        lambda d: _sub(d).update(transforms={"full_name": "year"}),
        "subscriptions[0].transforms.full_name",
        "year applies to date and timestamp fields, not string",
    ),
    "mask on a key field": (
        lambda d: _sub(d).update(transforms={"personal_id": "mask"}),
        "subscriptions[0].transforms.personal_id",
        "only hash keeps distinct keys distinct",
    ),
    "unknown transform": (
        lambda d: _sub(d).update(transforms={"full_name": "encrypt"}),
        "subscriptions[0].transforms.full_name",
        "does not match any of the expected tags",
    ),
    "hash without a key": (
        lambda d: _sub(d).update(transforms={"full_name": {"kind": "hash"}}),
        "subscriptions[0].transforms.full_name.key",
        "Field required",
    ),
    "mask keep not an integer": (
        lambda d: _sub(d).update(transforms={"full_name": {"kind": "mask", "keep": "4"}}),
        "subscriptions[0].transforms.full_name.keep",
        "valid integer",
    ),
    "hash key of two agencies": (
        _shared_hash_key,
        "subscriptions[1].transforms.personal_id.key",
        "hash key 'shared' is already used by agency 'hanoi'",
    ),
    "duplicate subscription": (
        _second_subscription,
        "subscriptions[1]",
        "duplicate subscription of 'hanoi' to 'population.citizen' (also subscriptions[0])",
    ),
    "duplicate agency": (
        lambda d: d["agencies"].append(dict(d["agencies"][0])),
        "agencies[2].code",
        "duplicate agency 'mps'",
    ),
    "row filter syntax": (
        lambda d: _sub(d).update(row_filter="province_code = '01'"),
        "subscriptions[0].row_filter",
        "column 15: '=' is not an operator",
    ),
    "row filter injection": (
        lambda d: _sub(d).update(row_filter="province_code == '01'; drop table citizen"),
        "subscriptions[0].row_filter",
        "column 22: unexpected character ';'",
    ),
    "row filter unknown field": (
        lambda d: _sub(d).update(row_filter="province == '01'"),
        "subscriptions[0].row_filter",
        "column 1: unknown field 'province'",
    ),
    "row filter type": (
        lambda d: _sub(d).update(row_filter="date_of_birth < 2008"),
        "subscriptions[0].row_filter",
        "cannot compare field 'date_of_birth' (date) with 2008 (number)",
    ),
    "provincial agency without province": (
        lambda d: d["agencies"][1].pop("province_code"),
        "agencies[1]",
        "a provincial agency needs its province_code",
    ),
    "central agency with a province": (
        lambda d: d["agencies"][0].update(province_code="01"),
        "agencies[0]",
        "a central agency has no province_code",
    ),
    "province code as a number": (
        lambda d: d["agencies"][1].update(province_code=1),
        "agencies[1].province_code",
        "valid string",
    ),
    "unknown level": (
        lambda d: d["agencies"][0].update(level="ministry"),
        "agencies[0].level",
        "'central' or 'provincial'",
    ),
    "unknown key": (
        lambda d: _sub(d).update(retention="forever"),
        "subscriptions[0].retention",
        "Extra inputs are not permitted",
    ),
    "no version": (lambda d: d.pop("version"), "version", "Field required"),
    "no fields": (
        lambda d: _sub(d).update(fields=[]),
        "subscriptions[0].fields",
        "at least 1 item",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_mistake_names_file_path_and_reason(tmp_path: Path, case: str) -> None:
    change, path, words = CASES[case]
    file = write(tmp_path, mutated(change))
    error = error_of(file)
    assert (error.file, error.path) == (str(file), path)
    assert words in error.reason
    assert str(error) == f"{file}: {path}: {error.reason}"
    assert error.problems[0] == (path, error.reason)


UNSAFE = ['"; drop table citizen', "select", "full'name", 'full"name', "a;b", "Hanoi", "9lives"]


@pytest.mark.parametrize("name", UNSAFE)
def test_unsafe_identifiers_are_refused_wherever_they_appear(tmp_path: Path, name: str) -> None:
    places: list[tuple[Any, str]] = [
        (lambda d: d["agencies"][0].update(code=name), "agencies[0].code"),
        (lambda d: d["sources"][0].update(database=name), "sources[0].database"),
        (lambda d: d["sources"][0].update(tables=[name]), "sources[0].tables[0]"),
        (lambda d: _sub(d)["fields"].append(name), "subscriptions[0].fields[3]"),
        (lambda d: _sub(d).update(agency=name), "subscriptions[0].agency"),
        (lambda d: _sub(d).update(topic=f"population.{name}"), "subscriptions[0].topic"),
        (
            lambda d: _sub(d).update(transforms={name: "mask"}),
            f"subscriptions[0].transforms.{name}",
        ),
        (
            lambda d: _sub(d).update(transforms={"full_name": {"kind": "hash", "key": name}}),
            "subscriptions[0].transforms.full_name.key",
        ),
    ]
    for change, path in places:
        error = error_of(write(tmp_path, mutated(change)))
        assert error.path == path
        assert "unsafe identifier" in error.reason
        assert repr(name) in error.reason


# --- YAML that is refused before validation --------------------------------------------------

YAML_CASES: dict[str, tuple[str, str, str]] = {
    "object-constructing tag": (
        "version: 1\nagencies:\n  - code: !!python/object/apply:os.system ['echo owned']\n",
        "agencies[0].code",
        "YAML tag '!!python/object/apply:os.system' is not allowed",
    ),
    "python name tag": (
        "version: !!python/name:os.system\n",
        "version",
        "YAML tag '!!python/name:os.system' is not allowed",
    ),
    "local tag": ("version: !include secrets.yaml\n", "version", "YAML tag '!include'"),
    "alias": (
        "version: 1\nagencies:\n  - &a {code: mps, name: M, level: central}\n  - *a\n",
        "agencies[1]",
        "anchors and aliases are not allowed",
    ),
    "merge key": (
        "version: 1\nagencies:\n  - <<: {code: mps}\n    name: M\n",
        "agencies[0].<<",
        "merge keys",
    ),
    "duplicate key": (
        "version: 1\nagencies: []\nsubscriptions:\n  - agency: a\n    fields: [x]\n"
        "    fields: [x, y]\n",
        "subscriptions[0].fields",
        "key 'fields' appears twice",
    ),
    "syntax": ("version: [1\n", "line 2, column 1", "not valid YAML"),
    "not a mapping": ("- just\n- a list\n", "(root)", "must be a mapping"),
    "empty": ("", "(root)", "must be a mapping"),
}


@pytest.mark.parametrize("case", sorted(YAML_CASES))
def test_unsafe_or_ambiguous_yaml_is_refused(tmp_path: Path, case: str) -> None:
    text, path, words = YAML_CASES[case]
    file = tmp_path / "federation.yaml"
    file.write_text(text, encoding="utf-8")
    error = error_of(file)
    assert (error.file, error.path) == (str(file), path)
    assert words in error.reason
    assert str(error).startswith(f"{file}: {path}: ")


def test_a_missing_file_is_a_manifest_error(tmp_path: Path) -> None:
    error = error_of(tmp_path / "absent.yaml")
    assert error.path == "(root)"
    assert "cannot read the manifest" in error.reason


def test_validation_problems_are_all_collected_first_one_first(tmp_path: Path) -> None:
    def two_mistakes(data: dict[str, Any]) -> None:
        _sub(data)["fields"] += ["Ethnicity", "ward code"]

    error = error_of(write(tmp_path, mutated(two_mistakes)))
    assert [path for path, _ in error.problems] == [
        "subscriptions[0].fields[3]",
        "subscriptions[0].fields[4]",
    ]
    assert error.path == "subscriptions[0].fields[3]"


def test_cross_check_problems_are_all_collected(tmp_path: Path) -> None:
    def three_mistakes(data: dict[str, Any]) -> None:
        _sub(data)["fields"].append("blood_type")
        _sub(data).update(agency="hue", transforms={"date_of_birth": "year"})

    error = error_of(write(tmp_path, mutated(three_mistakes)))
    assert [path for path, _ in error.problems] == [
        "subscriptions[0].agency",
        "subscriptions[0].fields[3]",
        "subscriptions[0].transforms.date_of_birth",
    ]


def test_manifest_error_is_a_fatal_config_error_and_pickles() -> None:
    error = ManifestError("federation.yaml", "subscriptions[3].fields[2]", "unknown field 'x'")
    assert isinstance(error, ConfigError)
    assert not is_retryable(error)
    assert str(error) == "federation.yaml: subscriptions[3].fields[2]: unknown field 'x'"
    copy_ = pickle.loads(pickle.dumps(error))
    assert (copy_.file, copy_.path, copy_.reason) == (error.file, error.path, error.reason)
    assert str(copy_) == str(error)
