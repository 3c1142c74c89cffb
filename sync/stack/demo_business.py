"""Demo rows of the business registration agency (Ministry of Planning and Investment):
enterprises and their legal representatives, who are citizens of the enterprise's province."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal

from sync.stack.demo_people import REFERENCE_DAY, day_between
from sync.stack.demo_world import Firm, Row, World

# legal form -> the positions whose holder may represent it
TITLES = {
    "tnhh_mot_thanh_vien": ("giam_doc", "chu_tich_cong_ty"),
    "tnhh_hai_thanh_vien": ("giam_doc", "chu_tich_hoi_dong_thanh_vien"),
    "co_phan": ("tong_giam_doc", "chu_tich_hoi_dong_quan_tri"),
    "hop_danh": ("giam_doc",),
    "tu_nhan": ("chu_doanh_nghiep",),
}


def enterprise_rows(world: World) -> Iterator[Row]:
    now = datetime.now(UTC)
    for firm in world.firms:
        yield {
            "enterprise_code": firm.code,
            "name_vi": firm.name_vi,
            "name_en": firm.name_en,
            "enterprise_type": firm.kind,
            "main_industry_code": firm.industry,
            "charter_capital_vnd": Decimal(firm.capital),
            "established_on": firm.established,
            "head_office_address": firm.address,
            "province_code": firm.province,
            "district_code": firm.district,
            "ward_code": firm.ward,
            "status": firm.status,
            "updated_at": now,
        }


def legal_representative_rows(world: World) -> Iterator[Row]:
    """Each enterprise's representatives, past and present; a joint stock company may have
    two (the general director and the chair of the board)."""
    rng = world.rng("representatives")
    now = datetime.now(UTC)
    for firm in world.firms:
        for row in _representatives_of(firm, world, rng):
            yield {**row, "updated_at": now}


def _representatives_of(firm: Firm, world: World, rng: random.Random) -> list[Row]:
    titles = TITLES[firm.kind]
    if not (firm.kind == "co_phan" and rng.random() < 0.3):
        titles = (rng.choice(titles),)
    rows: list[Row] = []
    taken: set[str] = set()
    for title in titles:
        start = firm.established
        if rng.random() < 0.15:  # the first representative was replaced
            change = day_between(firm.established, REFERENCE_DAY, rng)
            rows += _appoint(world, firm, (title, start, change), rng, taken)
            start = change
        rows += _appoint(world, firm, (title, start, None), rng, taken)
    return rows


def _appoint(
    world: World,
    firm: Firm,
    term: tuple[str, date, date | None],
    rng: random.Random,
    taken: set[str],
) -> list[Row]:
    title, start, end = term
    person = world.adult_in(firm.province, start, rng)
    if person is None or person.personal_id in taken:
        return []
    taken.add(person.personal_id)
    return [
        {
            "enterprise_code": firm.code,
            "personal_id": person.personal_id,
            "full_name": person.full_name,
            "position_title": title,
            "appointed_on": start,
            "ended_on": end,
        }
    ]
