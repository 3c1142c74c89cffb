"""The fictional country behind the demo databases: citizens, the households they live in and
the enterprises they run, all derived from one seed.

Each agency's demo database is filled on its own, so every agency regenerates the same
:class:`World` from the same scale and seed and picks the citizens and enterprises it refers to
from it: a land-use right, a taxpayer or an insured person always names a citizen the population
database holds, and an employer the business registration database holds.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property

from sync.stack.demo_people import (
    PROVINCE_NAMES,
    PROVINCES,
    REFERENCE_DAY,
    TAX_PREFIX,
    Person,
    ascii_fold,
    citizens,
    day_between,
    street_address,
    tax_code,
    ward_in,
)

# legal form -> (start of the Vietnamese name, end of the English name, share in percent)
KINDS: dict[str, tuple[str, str | None, int]] = {
    "tnhh_mot_thanh_vien": ("Công ty TNHH Một thành viên", "One Member Company Limited", 30),
    "tnhh_hai_thanh_vien": ("Công ty TNHH", "Company Limited", 35),
    "co_phan": ("Công ty Cổ phần", "Joint Stock Company", 25),
    "hop_danh": ("Công ty Hợp danh", "Partnership", 2),
    "tu_nhan": ("Doanh nghiệp tư nhân", None, 8),
}
# legal form -> range of registered capital in hundreds of millions of dong
CAPITAL = {
    "tnhh_mot_thanh_vien": (5, 200),
    "tnhh_hai_thanh_vien": (10, 500),
    "co_phan": (100, 5000),
    "hop_danh": (10, 100),
    "tu_nhan": (2, 50),
}
# (Vietnamese, English, VSIC 2018 code of the main business line)
SECTORS = [
    ("Xây dựng", "Construction", "4100"),
    ("Thương mại và Dịch vụ", "Trading and Services", "4690"),
    ("Công nghệ Phần mềm", "Software Technology", "6201"),
    ("Vận tải", "Transport", "4933"),
    ("Thực phẩm", "Food", "1079"),
    ("Đầu tư Bất động sản", "Real Estate Investment", "6810"),
    ("Du lịch và Khách sạn", "Tourism and Hotel", "5510"),
    ("Tư vấn Quản lý", "Management Consulting", "7020"),
    ("May mặc", "Garment", "1410"),
    ("Cơ khí", "Mechanical Engineering", "2592"),
    ("Nông sản", "Agricultural Products", "4620"),
]
TRADE_FIRST = "An Bảo Đại Đông Gia Hải Hòa Hoàng Hưng Kim Minh Nam Phú Phúc Quang Tân Thành".split()
TRADE_SECOND = "Phát Long Thịnh Lộc Tín Khang Nguyên Sơn Vượng Đạt Hà Mỹ Dương Phong Tiến".split()
# status -> share in percent
FIRM_STATUSES = {
    "dang_hoat_dong": 88,
    "tam_ngung_kinh_doanh": 6,
    "dang_giai_the": 3,
    "da_giai_the": 3,
}
HOUSEHOLD_SIZES = (1, 2, 2, 3, 3, 3, 4, 4, 5, 6)

Row = dict[str, object]  # a source row: column name -> value


@dataclass(frozen=True, slots=True)
class Firm:
    """A generated enterprise: what the business registration database knows of it."""

    code: str
    name_vi: str
    name_en: str | None
    kind: str
    industry: str
    capital: int
    established: date
    address: str
    province: str
    district: str
    ward: str
    status: str


@dataclass(slots=True)
class Household:
    """A household at a place of permanent residence; the first member is its head."""

    household_id: str
    address: str
    established: date
    members: list[tuple[Person, str]] = field(default_factory=list)

    @property
    def head(self) -> Person:
        return self.members[0][0]


def make_firms(count: int, rng: random.Random) -> list[Firm]:
    codes: set[str] = set()
    names: set[str] = set()
    return [_firm(rng, codes, names) for _ in range(count)]


def _firm(rng: random.Random, codes: set[str], names: set[str]) -> Firm:
    kind = rng.choices(list(KINDS), weights=[k[2] for k in KINDS.values()])[0]
    name_start, name_end, _ = KINDS[kind]
    sector_vi, sector_en, industry = rng.choice(SECTORS)
    trade = _trade_name(rng, f"{name_start} {sector_vi}", names)
    province = rng.choice(list(PROVINCES))
    district = rng.choice(PROVINCES[province])
    low, high = CAPITAL[kind]
    return Firm(
        code=tax_code(TAX_PREFIX[province], rng, codes),
        name_vi=f"{name_start} {sector_vi} {trade}",
        name_en=None if name_end is None else f"{ascii_fold(trade)} {sector_en} {name_end}",
        kind=kind,
        industry=industry,
        capital=rng.randrange(low, high + 1) * 100_000_000,
        established=day_between(date(2000, 1, 1), date(2024, 6, 30), rng),
        address=f"{street_address(rng)}, {PROVINCE_NAMES[province]}",
        province=province,
        district=district,
        ward=ward_in(district, rng),
        status=rng.choices(list(FIRM_STATUSES), weights=list(FIRM_STATUSES.values()))[0],
    )


def _trade_name(rng: random.Random, stem: str, names: set[str]) -> str:
    """A trade name no other enterprise has with the same legal form and business line."""
    for attempt in range(1000):
        first, second = rng.choice(TRADE_FIRST), rng.choice(TRADE_SECOND)
        trade = f"{first} {second}" if attempt < 50 else f"{first} {second} {attempt}"
        if first != second and f"{stem} {trade}" not in names:
            names.add(f"{stem} {trade}")
            return trade
    raise RuntimeError(f"no free trade name for {stem!r}")


def make_households(people: list[Person], rng: random.Random) -> list[Household]:
    """Group the citizens of each ward into households headed by their oldest member."""
    by_ward: dict[str, list[Person]] = {}
    for person in people:
        by_ward.setdefault(person.ward, []).append(person)
    households = []
    for ward, residents in by_ward.items():
        for number, group in enumerate(_groups(residents, rng), start=1):
            household = Household(
                household_id=f"{ward}{number:06d}",
                address=street_address(rng),
                established=day_between(date(1990, 1, 1), date(2020, 12, 31), rng),
            )
            household.members = _related(sorted(group, key=lambda p: p.born))
            households.append(household)
    return households


def _groups(residents: list[Person], rng: random.Random) -> list[list[Person]]:
    """Residents cut into households; children without an adult join a neighbouring one."""
    groups: list[list[Person]] = []
    waiting: list[Person] = []  # children met before any adult of the ward
    rest = list(residents)
    while rest:
        size = rng.choice(HOUSEHOLD_SIZES)
        group, rest = rest[:size], rest[size:]
        if max(p.age_on(REFERENCE_DAY) for p in group) >= 18:
            groups.append(waiting + group)
            waiting = []
        else:
            (groups[-1] if groups else waiting).extend(group)
    return groups + ([waiting] if waiting else [])


def _related(members: list[Person]) -> list[tuple[Person, str]]:
    """Each member with their relationship to the head, the oldest member."""
    head = members[0]
    related = [(head, "chu_ho")]
    has_spouse = False
    for person in members[1:]:
        gap = person.born.year - head.born.year
        if (
            not has_spouse
            and person.male != head.male
            and gap < 12
            and person.age_on(REFERENCE_DAY) >= 18
        ):
            relationship, has_spouse = ("vo" if head.male else "chong"), True
        elif gap >= 40:
            relationship = "chau"
        elif gap >= 16:
            relationship = "con"
        else:
            same_family = person.full_name.split()[0] == head.full_name.split()[0]
            relationship = "anh_chi_em" if same_family else "khac"
        related.append((person, relationship))
    return related


class World:
    """Everything the demo databases refer to across agencies, for one scale and seed.

    ``scale`` is the number of citizens; there is one enterprise for every 20 of them.
    """

    def __init__(self, scale: int, seed: int = 84) -> None:
        self.scale = scale
        self.seed = seed

    def rng(self, purpose: str) -> random.Random:
        """A random stream of its own for each purpose, so that generators do not disturb
        each other: adding a table never changes the rows of another."""
        return random.Random(f"{self.seed}:{purpose}")

    @cached_property
    def people(self) -> list[Person]:
        return [Person.of(row) for row in citizens(self.scale, self.seed)]

    @cached_property
    def people_by_province(self) -> dict[str, list[Person]]:
        by_province: dict[str, list[Person]] = {p: [] for p in PROVINCES}
        for person in self.people:
            by_province[person.province].append(person)
        return by_province

    @cached_property
    def firms(self) -> list[Firm]:
        return make_firms(max(3, self.scale // 20), self.rng("firms"))

    @cached_property
    def operating_firms(self) -> list[Firm]:
        return [f for f in self.firms if f.status == "dang_hoat_dong"] or self.firms

    @cached_property
    def households(self) -> list[Household]:
        return make_households(self.people, self.rng("households"))

    @cached_property
    def spouse(self) -> dict[str, str]:
        """personal_id -> the personal_id of their spouse in the same household."""
        pairs = {}
        for household in self.households:
            for person, relationship in household.members:
                if relationship in ("vo", "chong"):
                    pairs[household.head.personal_id] = person.personal_id
                    pairs[person.personal_id] = household.head.personal_id
        return pairs

    def adult_in(self, province: str, on: date, rng: random.Random) -> Person | None:
        """A citizen of ``province`` at least 18 years old on ``on``, if one is found soon."""
        candidates = self.people_by_province[province] or self.people
        for _ in range(40):
            person = rng.choice(candidates)
            if person.age_on(on) >= 18:
                return person
        return None
