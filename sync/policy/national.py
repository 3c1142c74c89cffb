"""A federation manifest at national scale, for load tests and the benchmark: the 85 subscribers
of the mission (22 ministries and ministry-level agencies, 63 provinces) on the population
topic. Synthetic: one purpose and legal basis for every ministry and every province, the
provinces each receiving their own residents; not a statement of what any agency may receive.
"""

from __future__ import annotations

from typing import Any

import yaml

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
# the 63 provinces and centrally-run cities, by their statistical code
PROVINCE_CODES = (
    "01 02 04 06 08 10 11 12 14 15 17 19 20 22 24 25 26 27 30 31 33 34 35 36 37 38 40 42 44 45 "
    "46 48 49 51 52 54 56 58 60 62 64 66 67 68 70 72 74 75 77 79 80 82 83 84 86 87 89 91 92 93 "
    "94 95 96"
).split()
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


def national_agencies(ministries: int = 22, provinces: int = 63) -> list[str]:
    """The codes of the first ``ministries`` ministries and ``provinces`` provinces."""
    return [*list(MINISTRIES)[:ministries], *(f"p{c}" for c in PROVINCE_CODES[:provinces])]


def national_manifest(ministries: int = 22, provinces: int = 63) -> dict[str, Any]:
    """The manifest as data: the population source and the subscribers on its citizens."""
    assert len(MINISTRIES) == 22 and len(PROVINCE_CODES) == 63
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
    for province in PROVINCE_CODES[:provinces]:
        code = f"p{province}"
        agencies.append(
            {
                "code": code,
                "name": f"Provincial People's Committee, province {province}",
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
                "row_filter": f"province_code == '{province}'",
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


def national_manifest_yaml(ministries: int = 22, provinces: int = 63) -> str:
    header = "# Synthetic national-scale manifest for load tests (sync.policy.national).\n"
    body: str = yaml.safe_dump(national_manifest(ministries, provinces), allow_unicode=True)
    return header + body
