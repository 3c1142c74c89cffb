"""Demo rows of the tax administration (Ministry of Finance): taxpayers (every enterprise, some
of their branches and most adult citizens) and what they owed and paid for 2023 and 2024."""

from __future__ import annotations

import calendar
import random
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal

from sync.stack.demo_people import (
    PROVINCE_NAMES,
    PROVINCES,
    REFERENCE_DAY,
    Person,
    day_between,
    tax_code,
    ward_in,
    years_after,
)
from sync.stack.demo_world import Firm, Row, World

YEARS = (2023, 2024)
TAX_STATUS = {
    "dang_hoat_dong": "hoat_dong",
    "tam_ngung_kinh_doanh": "tam_ngung",
    "dang_giai_the": "hoat_dong",
    "da_giai_the": "ngung_hoat_dong",
}
# personal income tax: (top of the band in million dong a month, rate in percent)
PIT_BANDS = ((5, 5), (10, 10), (18, 15), (32, 20), (52, 25), (80, 30), (10**9, 35))
# (tax type, period, taxable amount or None, amount due, due date)
Obligation = tuple[str, str, int | None, int, date]


def taxpayers(world: World) -> list[Row]:
    rng = world.rng("taxpayers")
    codes = {firm.code for firm in world.firms}
    rows = []
    for firm in world.firms:
        rows.append(_firm_taxpayer(firm, rng))
        if firm.capital >= 5_000_000_000 and rng.random() < 0.3:
            rows.append(_branch_taxpayer(firm, rng))
    for person in world.people:
        if person.age_on(REFERENCE_DAY) >= 18 and rng.random() < 0.55:
            rows.append(_person_taxpayer(person, rng, codes))
    return rows


def _firm_taxpayer(firm: Firm, rng: random.Random) -> Row:
    status = TAX_STATUS[firm.status]
    if status == "hoat_dong" and rng.random() < 0.03:
        status = "khong_hoat_dong_tai_dia_chi"
    return {
        "tax_code": firm.code,
        "taxpayer_type": "doanh_nghiep",
        "personal_id": None,
        "enterprise_code": firm.code,
        "name": firm.name_vi,
        "tax_office_code": f"{firm.province}{firm.district}",
        "registered_on": firm.established,
        "status": status,
        "province_code": firm.province,
        "district_code": firm.district,
        "ward_code": firm.ward,
    }


def _branch_taxpayer(firm: Firm, rng: random.Random) -> Row:
    province = rng.choice([p for p in PROVINCES if p != firm.province])
    district = rng.choice(PROVINCES[province])
    return {
        **_firm_taxpayer(firm, rng),
        "tax_code": f"{firm.code}-001",
        "taxpayer_type": "don_vi_phu_thuoc",
        "name": f"Chi nhánh {firm.name_vi} tại {PROVINCE_NAMES[province]}",
        "tax_office_code": f"{province}{district}",
        "registered_on": day_between(firm.established, REFERENCE_DAY, rng),
        "province_code": province,
        "district_code": district,
        "ward_code": ward_in(district, rng),
    }


def _person_taxpayer(person: Person, rng: random.Random, codes: set[str]) -> Row:
    first = max(years_after(person.born, 18), date(2009, 1, 1))
    return {
        "tax_code": tax_code("8", rng, codes),
        "taxpayer_type": "ca_nhan",
        "personal_id": person.personal_id,
        "enterprise_code": None,
        "name": person.full_name,
        "tax_office_code": f"{person.province}{person.district}",
        "registered_on": day_between(first, REFERENCE_DAY, rng),
        "status": "hoat_dong" if rng.random() < 0.95 else "ngung_hoat_dong",
        "province_code": person.province,
        "district_code": person.district,
        "ward_code": person.ward,
    }


def taxpayer_rows(world: World) -> Iterator[Row]:
    now = datetime.now(UTC)
    for row in taxpayers(world):
        yield {**row, "updated_at": now}


def tax_obligation_rows(world: World) -> Iterator[Row]:
    rng = world.rng("tax_obligations")
    firms = {firm.code: firm for firm in world.firms}
    now = datetime.now(UTC)
    for payer in taxpayers(world):
        if payer["taxpayer_type"] == "ca_nhan":
            obligations = _individual_obligations(rng)
        else:
            firm = firms[str(payer["enterprise_code"])]
            obligations = _business_obligations(firm, payer["tax_code"] != firm.code, rng)
        for tax_type, period, taxable, due, due_date in obligations:
            yield {
                "tax_code": payer["tax_code"],
                "tax_type": tax_type,
                "tax_period": period,
                "taxable_amount_vnd": None if taxable is None else Decimal(taxable),
                "due_date": due_date,
                **_settlement(due, due_date, rng),
                "updated_at": now,
            }


def _business_obligations(firm: Firm, branch: bool, rng: random.Random) -> list[Obligation]:
    """The licence fee, and for the enterprise itself quarterly VAT and yearly income tax."""
    years = [y for y in YEARS if y > firm.established.year]
    if firm.status == "da_giai_the":
        years = years[:1]
    fee = 1_000_000 if branch else 3_000_000 if firm.capital > 10_000_000_000 else 2_000_000
    yearly_revenue = firm.capital * rng.uniform(0.2, 1.5)
    out: list[Obligation] = []
    for year in years:
        out.append(("mon_bai", str(year), None, fee, date(year, 1, 30)))
        if branch:
            continue
        for quarter in range(1, 5):
            revenue = _thousands(yearly_revenue / 4 * rng.uniform(0.7, 1.3))
            vat = round(revenue * 0.1 * rng.uniform(0.1, 0.4))
            out.append(
                ("gtgt", f"{year}-Q{quarter}", revenue, vat, _month_end(year, quarter * 3 + 1))
            )
        profit = max(0, _thousands(yearly_revenue * rng.uniform(-0.05, 0.12)))
        out.append(("tndn", str(year), profit, profit // 5, date(year + 1, 3, 31)))
    return out


def _individual_obligations(rng: random.Random) -> list[Obligation]:
    """Personal income tax settled for some years, land use tax for some home owners."""
    out: list[Obligation] = []
    land_value = rng.randrange(100, 3000) * 1_000_000 if rng.random() < 0.3 else 0
    for year in YEARS:
        if rng.random() < 0.6:
            income = rng.randrange(0, 600) * 1_000_000
            out.append(("tncn", str(year), income, income_tax(income), date(year + 1, 4, 30)))
        if land_value:
            tax = land_value * 3 // 10_000  # 0.03 % of the value within the quota
            out.append(
                ("su_dung_dat_phi_nong_nghiep", str(year), land_value, tax, date(year, 10, 31))
            )
    return out


def income_tax(yearly_taxable: int) -> int:
    """Personal income tax on a year's taxable income, by the progressive monthly bands."""
    tax, bottom = 0, 0
    for top_million, rate in PIT_BANDS:
        top = top_million * 12 * 1_000_000
        if yearly_taxable > bottom:
            tax += (min(yearly_taxable, top) - bottom) * rate // 100
        bottom = top
    return tax


def _settlement(due: int, due_date: date, rng: random.Random) -> Row:
    if due_date > REFERENCE_DAY:
        return {"tax_due_vnd": Decimal(due), "tax_paid_vnd": Decimal(0), "status": "chua_den_han"}
    draw = rng.random()
    if draw < 0.06 and due:
        paid, status = due * rng.randrange(0, 80) // 100, "no_dong"
    elif draw < 0.08 and due:
        due = paid = due // 2
        status = "mien_giam"
    else:
        paid, status = due, "da_nop"
    return {"tax_due_vnd": Decimal(due), "tax_paid_vnd": Decimal(paid), "status": status}


def _thousands(amount: float) -> int:
    return int(amount) // 1000 * 1000


def _month_end(year: int, month: int) -> date:
    year, month = (year + 1, month - 12) if month > 12 else (year, month)
    return date(year, month, calendar.monthrange(year, month)[1])
