"""Demo rows of Vietnam Social Security: insured citizens (employees of the demo enterprises,
voluntary participants and pensioners) and their monthly contributions in the second half of
2024."""

from __future__ import annotations

import calendar
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

from sync.stack.demo_people import REFERENCE_DAY, Person, day_between, years_after
from sync.stack.demo_world import Firm, Row, World

REGION_I_MINIMUM_WAGE = 4_960_000  # dong a month, from 1 July 2024
SALARY_CAP = 20 * 2_340_000  # contributions stop at 20 times the base salary
MONTHS = [date(2024, month, 1) for month in range(7, 13)]
# per mille of the salary: the employee's 8 + 1.5 + 1 % and the employer's 17.5 + 3 + 1 % for
# social, health and unemployment insurance; a voluntary participant pays 22 % alone
EMPLOYEE_RATE, EMPLOYER_RATE, VOLUNTARY_RATE = 105, 215, 220
STATUSES = {"dang_tham_gia": 90, "tam_dung": 5, "dung_tham_gia": 5}


@dataclass(frozen=True, slots=True)
class Member:
    """An insured person's row and what their contributions are computed from."""

    row: Row
    salary: int
    since: date

    @property
    def employer(self) -> str | None:
        code = self.row["employer_enterprise_code"]
        return None if code is None else str(code)


def members(world: World) -> list[Member]:
    rng = world.rng("insurance")
    numbers: set[str] = set()
    employers: dict[str, list[Firm]] = {}
    for firm in world.operating_firms:
        employers.setdefault(firm.province, []).append(firm)
    out = []
    for person in world.people:
        age = person.age_on(REFERENCE_DAY)
        if 18 <= age < 62 and rng.random() < 0.65:
            firms = employers.get(person.province) or world.operating_firms
            out.append(_worker(person, firms, rng, _number(person, rng, numbers)))
        elif age >= 62 and rng.random() < 0.3:
            out.append(_pensioner(person, rng, _number(person, rng, numbers)))
    return out


def _number(person: Person, rng: random.Random, taken: set[str]) -> str:
    while True:
        number = f"{person.province}{rng.randrange(10**8):08d}"
        if number not in taken:
            taken.add(number)
            return number


def _worker(person: Person, firms: list[Firm], rng: random.Random, number: str) -> Member:
    voluntary = rng.random() < 0.2
    status = rng.choices(list(STATUSES), weights=list(STATUSES.values()))[0]
    employer = None if voluntary or status == "dung_tham_gia" else rng.choice(firms)
    if voluntary:
        salary = rng.randrange(30, 200) * 50_000
    else:
        salary = min(SALARY_CAP, int(REGION_I_MINIMUM_WAGE * rng.uniform(1, 6)) // 10_000 * 10_000)
    group = "DN" if employer else "GD"
    card = None if status == "dung_tham_gia" else f"{group}4{person.province}{number}"
    since = day_between(max(years_after(person.born, 18), date(1995, 1, 1)), REFERENCE_DAY, rng)
    row = _row(person, number, rng) | {
        "participation_type": "tu_nguyen" if voluntary else "bat_buoc",
        "employer_enterprise_code": employer.code if employer else None,
        "health_insurance_card_number": card,
        "first_participation_on": since,
        "status": status,
    }
    return Member(row, salary, since)


def _pensioner(person: Person, rng: random.Random, number: str) -> Member:
    since = day_between(years_after(person.born, 18), years_after(person.born, 30), rng)
    row = _row(person, number, rng) | {
        "participation_type": "bat_buoc",
        "employer_enterprise_code": None,
        "health_insurance_card_number": f"HT3{person.province}{number}",
        "first_participation_on": since,
        "status": "huong_luong_huu",
    }
    return Member(row, 0, since)


def _row(person: Person, number: str, rng: random.Random) -> Row:
    return {
        "insurance_number": number,
        "personal_id": person.personal_id,
        "full_name": person.full_name,
        "date_of_birth": person.born,
        "sex": "nam" if person.male else "nu",
        "primary_care_facility_code": f"{person.province}{rng.randrange(1, 120):03d}",
        "province_code": person.province,
        "district_code": person.district,
        "ward_code": person.ward,
    }


def insured_person_rows(world: World) -> Iterator[Row]:
    now = datetime.now(UTC)
    for member in members(world):
        yield {**member.row, "updated_at": now}


def contribution_period_rows(world: World) -> Iterator[Row]:
    """A row per month contributed for since July 2024 (three months for a paused member);
    some December contributions are still owed."""
    rng = world.rng("contributions")
    now = datetime.now(UTC)
    for member in members(world):
        if member.row["status"] not in ("dang_tham_gia", "tam_dung"):
            continue
        months = [m for m in MONTHS if m >= member.since.replace(day=1)]
        if member.row["status"] == "tam_dung":
            months = months[:3]
        for month in months:
            yield {**_contribution(member, month, rng), "updated_at": now}


def _contribution(member: Member, month: date, rng: random.Random) -> Row:
    employee, employer = (EMPLOYEE_RATE, EMPLOYER_RATE) if member.employer else (VOLUNTARY_RATE, 0)
    owed = month == MONTHS[-1] and rng.random() < 0.1
    paid_on = date(month.year, month.month, calendar.monthrange(month.year, month.month)[1])
    return {
        "insurance_number": member.row["insurance_number"],
        "period_month": month,
        "employer_enterprise_code": member.employer,
        "salary_base_vnd": Decimal(member.salary),
        "employee_contribution_vnd": Decimal(_per_mille(member.salary, employee)),
        "employer_contribution_vnd": Decimal(_per_mille(member.salary, employer)),
        "paid_on": None if owed else paid_on,
        "status": "no_dong" if owed else "da_dong",
    }


def _per_mille(amount: int, rate: int) -> int:
    return (amount * rate + 500) // 1000
