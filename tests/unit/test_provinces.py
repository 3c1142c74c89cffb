"""The 2025 administrative reform's map: 63 provinces into 34, every former code in exactly one
province of today, and the national manifest offering either map."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from sync.contracts import load_contracts
from sync.policy import load_manifest
from sync.policy.national import national_agencies, national_manifest_yaml
from sync.policy.provinces import MERGED_INTO, PROVINCES_2025, PROVINCES_BEFORE_2025

CONTRACTS = load_contracts(Path(__file__).resolve().parents[2] / "schemas" / "avro")


def test_sixty_three_provinces_become_thirty_four() -> None:
    assert len(set(PROVINCES_BEFORE_2025)) == 63
    assert len(PROVINCES_2025) == 34
    assert sorted(MERGED_INTO) == sorted(PROVINCES_BEFORE_2025), "each former code in one"
    former = Counter(old for _, olds in PROVINCES_2025.values() for old in olds)
    assert max(former.values()) == 1
    unchanged = [new for new, (_, olds) in PROVINCES_2025.items() if olds == (new,)]
    assert len(unchanged) == 11 and "01" in unchanged


def test_a_merged_province_keeps_one_of_its_former_codes() -> None:
    for new, (_, olds) in PROVINCES_2025.items():
        assert new in olds
    assert PROVINCES_2025["79"][1] == ("74", "77", "79")
    assert MERGED_INTO["74"] == MERGED_INTO["77"] == "79"


def test_the_national_manifest_offers_todays_provinces(tmp_path: Path) -> None:
    path = tmp_path / "national-2025.yaml"
    path.write_text(national_manifest_yaml(since_2025=True), encoding="utf-8")
    manifest = load_manifest(path, CONTRACTS)
    assert len(manifest.subscriptions) == 22 + 34
    assert national_agencies(since_2025=True)[-1] == "p96"
    hcmc = manifest.subscription("p79", "population.citizen")
    assert hcmc.row_filter == "province_code in ['74', '77', '79']"
    assert manifest.agency("p79").name.endswith("Thành phố Hồ Chí Minh")
    historical = national_manifest_yaml()
    assert "province_code == '74'" in historical
