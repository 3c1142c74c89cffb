"""A federation manifest at national scale, for load tests and the benchmark: the 85 subscribers
of the mission (22 ministries and ministry-level agencies, 63 provinces) on the population
topic. Synthetic: one purpose and legal basis for every ministry and every province, the
provinces each receiving their own residents; not a statement of what any agency may receive.

``since_2025=True`` offers today's 34 provinces instead of the historical 63 (see
:mod:`sync.policy.provinces`): each receives the residents of its territory, whether the
source still records a former province's code or already the merged one's.
"""

from __future__ import annotations

from typing import Any

import yaml

from sync.policy.provinces import PROVINCES_2025, PROVINCES_BEFORE_2025

# before the 2025 reorganisation: 18 ministries and 4 ministry-level agencies
MINISTRIES = {
    "mod": "Ministry of National Defence",
    "mofa": "Ministry of Foreign Affairs",
    "moha": "Ministry of Home Affairs",
    "moj": "Ministry of Justice",
    "mpi": "Ministry of Planning and Investment",
    "moit": "Ministry of Industry and Trade",
    "mard": "Ministry of Agriculture and Rural Development",
    "mot": "Ministry of Transport",
    "moc": "Ministry of Construction",
    "monre": "Ministry of Natural Resources and Environment",
    "mic": "Ministry of Information and Communications",
    "molisa": "Ministry of Labour, Invalids and Social Affairs",
    "mocst": "Ministry of Culture, Sports and Tourism",
    "most": "Ministry of Science and Technology",
    "moet": "Ministry of Education and Training",
    "moh": "Ministry of Health",
    "mof_budget": "Ministry of Finance, state budget",
    "mps_exit": "Ministry of Public Security, immigration",
    "gi": "Government Inspectorate",
    "sbv": "State Bank of Vietnam",
    "cema": "Committee for Ethnic Minority Affairs",
    "ogov": "Office of the Government",
}
PROVINCE_CODES = list(PROVINCES_BEFORE_2025)
TOPIC = "population.citizen"
MINISTRY_FIELDS = ["personal_id", "full_name", "date_of_birth", "province_code", "updated_at"]
PROVINCE_FIELDS = [
    "personal_id",
    "full_name",
    "date_of_birth",
    "sex",
    "province_code",
    "district_code",
    "ward_code",
    "updated_at",
]
LEGAL_BASIS = {
    "basis": "public_duty",
    "reference": "Synthetic load-test subscription; Law on Identification No. 26/2023/QH15; "
    "Law on Personal Data Protection No. 91/2025/QH15.",
}


def _province_codes(since_2025: bool) -> list[str]:
    return list(PROVINCES_2025) if since_2025 else PROVINCE_CODES


def national_agencies(
    ministries: int = 22, provinces: int = 63, since_2025: bool = False
) -> list[str]:
    """The codes of the first ``ministries`` ministries and ``provinces`` provinces."""
    codes = _province_codes(since_2025)[:provinces]
    return [*list(MINISTRIES)[:ministries], *(f"p{c}" for c in codes)]


def _province_filter(province: str, since_2025: bool) -> str:
    if not since_2025:
        return f"province_code == '{province}'"
    former = ", ".join(f"'{c}'" for c in PROVINCES_2025[province][1])
    return f"province_code in [{former}]"


def national_manifest(
    ministries: int = 22, provinces: int = 63, since_2025: bool = False
) -> dict[str, Any]:
    """The manifest as data: the population source and the subscribers on its citizens."""
    assert len(MINISTRIES) == 22 and len(PROVINCE_CODES) == 63 and len(PROVINCES_2025) == 34
    agencies: list[dict[str, Any]] = [
        {"code": "mps", "name": "Ministry of Public Security, population", "level": "central"}
    ]
    subscriptions: list[dict[str, Any]] = []
    for code in list(MINISTRIES)[:ministries]:
        agencies.append({"code": code, "name": MINISTRIES[code], "level": "central"})
        subscriptions.append(
            {
                "agency": code,
                "topic": TOPIC,
                "purpose": f"Identity of the citizens the {MINISTRIES[code]} serves.",
                "legal_basis": dict(LEGAL_BASIS),
                "fields": list(MINISTRY_FIELDS),
            }
        )
    for province in _province_codes(since_2025)[:provinces]:
        code = f"p{province}"
        name = PROVINCES_2025[province][0] if since_2025 else f"province {province}"
        agencies.append(
            {
                "code": code,
                "name": f"Provincial People's Committee, {name}",
                "level": "provincial",
                "province_code": province,
            }
        )
        subscriptions.append(
            {
                "agency": code,
                "topic": TOPIC,
                "purpose": f"Administration of the residents of province {province}.",
                "legal_basis": dict(LEGAL_BASIS),
                "fields": list(PROVINCE_FIELDS),
                "row_filter": _province_filter(province, since_2025),
            }
        )
    return {
        "version": 1,
        "agencies": agencies,
        "sources": [
            {"name": "population", "agency": "mps", "database": "population", "tables": ["citizen"]}
        ],
        "subscriptions": subscriptions,
    }


def national_manifest_yaml(
    ministries: int = 22, provinces: int = 63, since_2025: bool = False
) -> str:
    header = "# Synthetic national-scale manifest for load tests (sync.policy.national).\n"
    manifest = national_manifest(ministries, provinces, since_2025)
    body: str = yaml.safe_dump(manifest, allow_unicode=True)
    return header + body
