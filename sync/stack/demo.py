"""Demo source data: the population agency's citizens, with realistic Vietnamese names,
12-digit personal identification numbers and administrative unit codes.

Source tables are created from the same contract columns as the replicas, so the contract, the
source table and the replica table cannot drift apart.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import psycopg
from psycopg import sql

from sync.contracts import Contract, columns_of

FAMILY = [
    "Nguyễn",
    "Trần",
    "Lê",
    "Phạm",
    "Hoàng",
    "Huỳnh",
    "Phan",
    "Vũ",
    "Võ",
    "Đặng",
    "Bùi",
    "Đỗ",
    "Hồ",
    "Ngô",
    "Dương",
    "Lý",
    "Trịnh",
    "Đinh",
    "Lâm",
    "Mai",
]
MIDDLE_MALE = ["Văn", "Hữu", "Đức", "Minh", "Quang", "Thành", "Công", "Xuân", "Gia", "Anh"]
MIDDLE_FEMALE = ["Thị", "Ngọc", "Thu", "Thanh", "Kim", "Minh", "Phương", "Hồng", "Bảo", "Mỹ"]
GIVEN_MALE = [
    "An",
    "Bình",
    "Cường",
    "Dũng",
    "Đạt",
    "Hải",
    "Hiếu",
    "Hùng",
    "Khánh",
    "Long",
    "Nam",
    "Phúc",
    "Quân",
    "Sơn",
    "Thắng",
    "Trung",
    "Tuấn",
    "Việt",
    "Vinh",
    "Khoa",
]
GIVEN_FEMALE = [
    "Anh",
    "Châu",
    "Giang",
    "Hà",
    "Hạnh",
    "Hoa",
    "Hương",
    "Lan",
    "Linh",
    "Mai",
    "Ngân",
    "Nga",
    "Phương",
    "Quyên",
    "Tâm",
    "Thảo",
    "Trang",
    "Uyên",
    "Xuân",
    "Yến",
]
ETHNICITIES = ["Kinh"] * 17 + ["Tày", "Thái", "Mường", "Khmer", "Hoa", "Nùng", "H'Mông"]
# province code -> its first district codes (General Statistics Office numbering)
PROVINCES = {
    "01": ["001", "002", "003", "004", "005"],  # Hà Nội
    "79": ["760", "761", "764", "765", "766"],  # Thành phố Hồ Chí Minh
    "48": ["490", "491", "492", "493", "494"],  # Đà Nẵng
    "31": ["303", "304", "305", "306", "307"],  # Hải Phòng
    "92": ["916", "917", "918", "919", "923"],  # Cần Thơ
}


def source_table_ddl(contract: Contract) -> sql.Composed:
    columns = columns_of(contract)
    return sql.SQL("CREATE TABLE IF NOT EXISTS {table} ({columns}, PRIMARY KEY ({keys}))").format(
        table=sql.Identifier("public", contract.source_table),
        columns=sql.SQL(", ").join(
            sql.SQL("{} {}{}").format(
                sql.Identifier(c.name),
                sql.SQL(c.sql_type),
                sql.SQL("" if c.nullable else " NOT NULL"),
            )
            for c in columns
        ),
        keys=sql.SQL(", ").join(sql.Identifier(c.name) for c in columns if c.in_key),
    )


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
        "ward_code": f"{int(district) * 30 + rng.randrange(30):05d}",
        "updated_at": datetime.now(UTC),
    }


def load_citizens(
    conn: psycopg.Connection[tuple[object, ...]], contract: Contract, count: int
) -> int:
    """Create the citizen table and fill it, unless it already has rows."""
    conn.execute(source_table_ddl(contract))
    row = conn.execute(
        sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(contract.source_table))
    ).fetchone()
    if row and row[0]:
        return 0
    names = list(contract.field_names)
    copy_sql = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(contract.source_table), sql.SQL(", ").join(map(sql.Identifier, names))
    )
    with conn.cursor().copy(copy_sql) as copy:
        for citizen in citizens(count):
            copy.write_row([citizen[n] for n in names])
    return count
