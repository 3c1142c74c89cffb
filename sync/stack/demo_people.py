"""The people of the demo: Vietnamese names, the provinces, districts and wards they live in,
and the 12-digit personal identification numbers, enterprise and tax codes they are known by.
"""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

FAMILY = (
    "Nguyễn Trần Lê Phạm Hoàng Huỳnh Phan Vũ Võ Đặng Bùi Đỗ Hồ Ngô Dương Lý Trịnh Đinh Lâm Mai"
).split()
MIDDLE_MALE = "Văn Hữu Đức Minh Quang Thành Công Xuân Gia Anh".split()
MIDDLE_FEMALE = "Thị Ngọc Thu Thanh Kim Minh Phương Hồng Bảo Mỹ".split()
GIVEN_MALE = (
    "An Bình Cường Dũng Đạt Hải Hiếu Hùng Khánh Long Nam Phúc Quân Sơn Thắng Trung Tuấn Việt Vinh "
    "Khoa"
).split()
GIVEN_FEMALE = (
    "Anh Châu Giang Hà Hạnh Hoa Hương Lan Linh Mai Ngân Nga Phương Quyên Tâm Thảo Trang Uyên Xuân "
    "Yến"
).split()
ETHNICITIES = ["Kinh"] * 17 + ["Tày", "Thái", "Mường", "Khmer", "Hoa", "Nùng", "H'Mông"]
# province code -> its first district codes (General Statistics Office numbering)
PROVINCES = {
    "01": ["001", "002", "003", "004", "005"],  # Hà Nội
    "79": ["760", "761", "764", "765", "766"],  # Thành phố Hồ Chí Minh
    "48": ["490", "491", "492", "493", "494"],  # Đà Nẵng
    "31": ["303", "304", "305", "306", "307"],  # Hải Phòng
    "92": ["916", "917", "918", "919", "923"],  # Cần Thơ
}
PROVINCE_NAMES = {
    "01": "Hà Nội",
    "79": "Thành phố Hồ Chí Minh",
    "48": "Đà Nẵng",
    "31": "Hải Phòng",
    "92": "Cần Thơ",
}
# the first two digits of enterprise and tax codes issued in each province
TAX_PREFIX = {"01": "01", "31": "02", "79": "03", "48": "04", "92": "18"}
STREETS = (
    "Lê Lợi|Trần Hưng Đạo|Nguyễn Trãi|Hai Bà Trưng|Lý Thường Kiệt|Quang Trung|Hùng Vương|"
    "Điện Biên Phủ|Lê Duẩn|Nguyễn Văn Cừ|Phan Chu Trinh|Trần Phú|Võ Thị Sáu|Nguyễn Du"
).split("|")
# the demo's "today": every registration, appointment and payment happened on or before it
# (terms and due dates may end after it)
REFERENCE_DAY = date(2024, 12, 31)
WARDS_PER_DISTRICT = 30


@dataclass(frozen=True, slots=True)
class Person:
    """A generated citizen, typed."""

    personal_id: str
    full_name: str
    born: date
    male: bool
    province: str
    district: str
    ward: str

    @classmethod
    def of(cls, row: Mapping[str, object]) -> Person:
        born = row["date_of_birth"]
        assert isinstance(born, date)
        return cls(
            personal_id=str(row["personal_id"]),
            full_name=str(row["full_name"]),
            born=born,
            male=row["sex"] == "nam",
            province=str(row["province_code"]),
            district=str(row["district_code"]),
            ward=str(row["ward_code"]),
        )

    def age_on(self, day: date) -> int:
        return day.year - self.born.year - ((day.month, day.day) < (self.born.month, self.born.day))


def citizens(count: int, seed: int = 84) -> Iterator[dict[str, object]]:
    """``count`` distinct fictional citizens, the same ones for the same seed."""
    rng = random.Random(seed)
    seen: set[str] = set()
    while len(seen) < count:
        citizen = _citizen(rng)
        if citizen["personal_id"] not in seen:
            seen.add(str(citizen["personal_id"]))
            yield citizen


def _citizen(rng: random.Random) -> dict[str, object]:
    male = rng.random() < 0.5
    born = date(1940, 1, 1) + timedelta(days=rng.randrange(0, 365 * 84))
    province = rng.choice(list(PROVINCES))
    district = rng.choice(PROVINCES[province])
    middle, given = (MIDDLE_MALE, GIVEN_MALE) if male else (MIDDLE_FEMALE, GIVEN_FEMALE)
    # digits 1-3 birth province, 4 sex and century, 5-6 year of birth, 7-12 a serial number
    century_sex = (0 if born.year < 2000 else 2) + (0 if male else 1)
    personal_id = f"0{province}{century_sex}{born.year % 100:02d}{rng.randrange(10**6):06d}"
    return {
        "personal_id": personal_id,
        "full_name": f"{rng.choice(FAMILY)} {rng.choice(middle)} {rng.choice(given)}",
        "date_of_birth": born,
        "sex": "nam" if male else "nu",
        "ethnicity": rng.choice(ETHNICITIES),
        "province_code": province,
        "district_code": district,
        "ward_code": ward_in(district, rng),
        "updated_at": datetime.now(UTC),
    }


def ward_in(district: str, rng: random.Random) -> str:
    """A 5-digit ward code of ``district``: every district has wards numbered after it."""
    return f"{int(district) * WARDS_PER_DISTRICT + rng.randrange(WARDS_PER_DISTRICT):05d}"


def check_digit(nine: str) -> int | None:
    """The tenth digit of a tax code after ``nine`` digits; None when no digit fits."""
    weights = (31, 29, 23, 19, 17, 13, 7, 5, 3)
    rest = sum(w * int(d) for w, d in zip(weights, nine, strict=True)) % 11
    return None if rest == 0 else 10 - rest


def tax_code(prefix: str, rng: random.Random, taken: set[str]) -> str:
    """A fresh 10-digit tax code starting with ``prefix``, with a valid check digit."""
    while True:
        nine = prefix + "".join(rng.choices("0123456789", k=9 - len(prefix)))
        check = check_digit(nine)
        if check is not None and nine + str(check) not in taken:
            taken.add(nine + str(check))
            return nine + str(check)


def ascii_fold(text: str) -> str:
    """Vietnamese without diacritics, as in foreign-language names: 'Đông Á' -> 'Dong A'."""
    text = text.replace("Đ", "D").replace("đ", "d")
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def street_address(rng: random.Random) -> str:
    if rng.random() < 0.4:
        return f"Số {rng.randrange(1, 200)} ngõ {rng.randrange(1, 120)} {rng.choice(STREETS)}"
    return f"Số {rng.randrange(1, 400)} {rng.choice(STREETS)}"


def day_between(first: date, last: date, rng: random.Random) -> date:
    return first + timedelta(days=rng.randrange(max(1, (last - first).days + 1)))


def years_after(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)
