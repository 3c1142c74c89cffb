"""A randomized workload over the five demo source databases, for the federation fault test.

Rows are drawn from the demo's own vocabulary (``sync/stack/demo_*``): Vietnamese names, the
provinces with their districts and wards, tax codes, statuses. The source tables enforce
primary keys and NOT NULL and nothing else, so the workload keeps references between tables
only where a transaction makes a parent and its children together (a citizen and their
household rows, a taxpayer and its obligations, ...).
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import sql

from sync.contracts import Contract, columns_of
from sync.stack.demo_business import TITLES
from sync.stack.demo_insurance import STATUSES as INSURANCE_STATUSES
from sync.stack.demo_land import RESIDENTIAL_ORIGINS, SERIES
from sync.stack.demo_people import (
    ETHNICITIES,
    FAMILY,
    GIVEN_FEMALE,
    GIVEN_MALE,
    MIDDLE_FEMALE,
    MIDDLE_MALE,
    PROVINCES,
    STREETS,
    ascii_fold,
    street_address,
    tax_code,
    ward_in,
)
from sync.stack.demo_world import FIRM_STATUSES, SECTORS

Connection = psycopg.Connection[tuple[Any, ...]]
Row = dict[str, object]

# dates and times PostgreSQL holds but Python's types cannot, all of which the contracts carry
# (docs/value-mapping.md); those no contract carries are the edge-value test's business
EDGE_DATES = ("infinity", "-infinity", "0044-03-15 BC", "4714-11-24 BC", "10000-01-01")
EDGE_TIMESTAMPS = (
    "infinity",
    "-infinity",
    "0044-03-15 10:00:00+00 BC",
    "10000-01-01 00:00:00+07",
    "294247-01-01 00:00:00+00",
)

# the two provinces with a subscribing province get most changes, so rows move in and out of
# their filters
PROVINCE_WEIGHTS = {"01": 3, "79": 3, "48": 1, "31": 1, "92": 1}
PLACE = ("province_code", "district_code", "ward_code")
NAMES = {"full_name", "holder_name", "name", "name_vi"}
ADDRESSES = {"address_line", "head_office_address"}
PERSON_IDS = {"personal_id", "head_personal_id", "holder_personal_id", "co_holder_personal_id"}
ENTERPRISE_CODES = {"enterprise_code", "holder_enterprise_code", "employer_enterprise_code"}
WORDS = [*FAMILY, *MIDDLE_MALE, *MIDDLE_FEMALE, *GIVEN_MALE, *GIVEN_FEMALE]
for _street in STREETS:
    WORDS += _street.split()
# (table or "", column) -> the values the demo uses
CHOICES: dict[tuple[str, str], Sequence[str]] = {
    ("", "sex"): ("nam", "nu"),
    ("", "ethnicity"): ETHNICITIES,
    ("", "relationship_to_head"): ("chu_ho", "vo", "chong", "con", "chau", "anh_chi_em", "khac"),
    ("", "enterprise_type"): tuple(TITLES),
    ("", "main_industry_code"): tuple(s[2] for s in SECTORS),
    ("", "position_title"): sorted({t for titles in TITLES.values() for t in titles}),
    ("", "taxpayer_type"): ("doanh_nghiep", "don_vi_phu_thuoc", "ca_nhan"),
    ("", "tax_type"): ("mon_bai", "gtgt", "tndn", "tncn", "su_dung_dat_phi_nong_nghiep"),
    ("", "participation_type"): ("bat_buoc", "tu_nguyen"),
    ("", "land_use_purpose"): ("ODT", "ONT", "LUC", "CLN", "RSX", "SKC", "TMD"),
    ("", "land_use_origin"): (
        *RESIDENTIAL_ORIGINS,
        "giao_khong_thu_tien",
        "thue_tra_tien_hang_nam",
    ),
    ("", "holder_type"): ("ca_nhan", "to_chuc"),
    ("enterprise", "status"): tuple(FIRM_STATUSES),
    ("taxpayer", "status"): ("hoat_dong", "tam_ngung", "ngung_hoat_dong"),
    ("tax_obligation", "status"): ("chua_den_han", "da_nop", "no_dong", "mien_giam"),
    ("insured_person", "status"): (*INSURANCE_STATUSES, "huong_luong_huu"),
    ("contribution_period", "status"): ("da_dong", "no_dong"),
}
# source agency -> (parent table, child table, the column the child refers to the parent by);
# in each the parent's primary key is that one column
FAMILIES = {
    "population": ("citizen", "household", "personal_id"),
    "land": ("land_parcel", "land_use_right", "parcel_id"),
    "business": ("enterprise", "legal_representative", "enterprise_code"),
    "finance": ("taxpayer", "tax_obligation", "tax_code"),
    "insurance": ("insured_person", "contribution_period", "insurance_number"),
}


class RowMaker:
    """Fresh values for a table's columns: valid for the demo, sometimes NULL where the column
    allows it, sometimes very long Vietnamese text, a value at the top of its type's range, or
    a date or time beyond Python's (``infinity``, BC, after 9999)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.taken: set[str] = set()  # tax codes already handed out
        self.made: Counter[str] = Counter()  # NULLs, long texts, values at a type's top

    def row(self, table: str, contract: Contract) -> Row:
        province = self.rng.choices(list(PROVINCE_WEIGHTS), list(PROVINCE_WEIGHTS.values()))[0]
        district = self.rng.choice(PROVINCES[province])
        place = {"province_code": province, "district_code": district}
        place["ward_code"] = ward_in(district, self.rng)
        row: Row = {}
        for column in columns_of(contract):
            if column.nullable and self.rng.random() < 0.25:
                row[column.name] = None
                self.made["NULL"] += 1
            elif column.name in place:
                row[column.name] = place[column.name]
            else:
                row[column.name] = self.value(table, column.name, column.sql_type, place)
        return row

    def value(self, table: str, name: str, sql_type: str, place: dict[str, str]) -> object:
        rng, province = self.rng, place["province_code"]
        choices = CHOICES.get((table, name)) or CHOICES.get(("", name))
        if choices:
            return rng.choice(choices)
        by_name: dict[str, Callable[[], object]] = {
            "household_id": lambda: f"{place['ward_code']}{rng.randrange(10**6):06d}",
            "parcel_id": lambda: (
                f"{place['ward_code']}-{rng.randrange(1, 80):03d}-{rng.randrange(1, 3000):05d}"
            ),
            "certificate_serial": lambda: f"{rng.choice(SERIES)}{rng.randrange(10**8):08d}",
            "insurance_number": lambda: f"{province}{rng.randrange(10**8):08d}",
            "tax_code": lambda: tax_code(rng.choice(["8", "01", "03"]), rng, self.taken),
            "tax_period": lambda: rng.choice(["2023", "2024", f"2024-Q{rng.randint(1, 4)}"]),
            "period_month": lambda: date(rng.choice([2023, 2024]), rng.randint(1, 12), 1),
            "tax_office_code": lambda: province + place["district_code"],
            "primary_care_facility_code": lambda: f"{province}{rng.randrange(1, 120):03d}",
            "health_insurance_card_number": lambda: (
                f"DN4{province}{province}{rng.randrange(10**8):08d}"
            ),
            "name_en": lambda: ascii_fold(self.text(NAMES)),
        }
        if name in by_name:
            return by_name[name]()
        if name in PERSON_IDS:
            return self.personal_id(province)
        if name in ENTERPRISE_CODES:
            return tax_code(rng.choice(["01", "02", "03", "04", "18"]), rng, self.taken)
        if name in NAMES or name in ADDRESSES:
            return self.text(NAMES if name in NAMES else ADDRESSES)
        return self.typed(sql_type)

    def personal_id(self, province: str) -> str:
        return f"0{province}{self.rng.randrange(4)}{self.rng.randrange(10**8):08d}"

    def text(self, kind: set[str]) -> str:
        """A name or an address; one in thirty is long enough to be stored out of line."""
        rng = self.rng
        if rng.random() < 1 / 30:
            self.made["long text"] += 1
            return " ".join(rng.choice(WORDS) for _ in range(rng.randint(2_000, 12_000)))
        if kind is ADDRESSES:
            return street_address(rng)
        male = rng.random() < 0.5
        middle, given = (MIDDLE_MALE, GIVEN_MALE) if male else (MIDDLE_FEMALE, GIVEN_FEMALE)
        return f"{rng.choice(FAMILY)} {rng.choice(middle)} {rng.choice(given)}"

    def typed(self, sql_type: str) -> object:
        rng, large = self.rng, self.rng.random() < 0.05
        if large and sql_type.startswith(("integer", "numeric")):
            self.made["value at its type's top"] += 1
        edge = rng.random() < 0.03
        if edge and sql_type in ("date", "timestamptz"):
            self.made["date or time beyond Python's range"] += 1
            return rng.choice(EDGE_DATES if sql_type == "date" else EDGE_TIMESTAMPS)
        if sql_type == "date":
            return date(1940, 1, 1) + timedelta(days=rng.randrange(365 * 90))
        if sql_type == "timestamptz":
            return datetime.now(UTC)
        if sql_type == "integer":
            return 2**31 - 1 if large else rng.randrange(1, 3000)
        if sql_type == "numeric(18,0)":
            return Decimal(10**18 - 1 - rng.randrange(1000) if large else rng.randrange(10**10))
        if sql_type == "numeric(14,2)":
            return Decimal("999999999999.99") if large else Decimal(rng.randrange(10**7)) / 100
        if sql_type == "text":
            return " ".join(rng.choices(WORDS, k=3))
        raise AssertionError(f"the workload has no values for {sql_type}")


@dataclass(frozen=True)
class Table:
    name: str
    contract: Contract

    @property
    def ident(self) -> sql.Identifier:
        return sql.Identifier("public", self.name)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(self.contract.key_fields)

    @property
    def others(self) -> list[str]:
        return [f for f in self.contract.field_names if f not in self.keys]

    def where_key(self, key: tuple[object, ...]) -> sql.Composed:
        return sql.SQL(" AND ").join(
            sql.SQL("{} = {}").format(sql.Identifier(k), sql.Literal(v))
            for k, v in zip(self.keys, key, strict=True)
        )


class SourceWorkload(threading.Thread):
    """Random transactions on one source database until ``stop`` is set: inserts, updates
    (some of the row's columns, often leaving a long value untouched), primary-key changes,
    deletes, and transactions over a parent table and its child. Rides out a database restart
    by reconnecting; ``changes`` counts rows changed by committed transactions."""

    def __init__(self, agency: str, dsn: str, contracts: Sequence[Contract], seed: int) -> None:
        super().__init__(daemon=True, name=f"workload-{agency}")
        self.agency, self.dsn = agency, dsn
        self.rng = random.Random(seed)
        self.make = RowMaker(self.rng)
        self.tables = {c.source_table: Table(c.source_table, c) for c in contracts}
        self.stop = threading.Event()
        self.transactions = self.changes = self.interrupted = self.rolled_back = 0
        self.kinds: Counter[str] = Counter()  # changes of committed transactions, by kind
        self._pending: Counter[str] = Counter()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # the test reports it: a dead workload is no workload
            self.error = exc
            raise

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                with psycopg.connect(self.dsn, autocommit=True, connect_timeout=2) as conn:
                    while not self.stop.is_set():
                        self._transaction(conn)
                        self.stop.wait(self.rng.uniform(0.02, 0.12))  # pacing, modest load
            except psycopg.OperationalError:
                self.interrupted += 1  # the server went away mid-transaction: not committed
                self.stop.wait(0.2)

    def _transaction(self, conn: Connection) -> None:
        changed, self._pending = 0, Counter()
        try:
            with conn.transaction():
                for _ in range(self.rng.randint(1, 5)):
                    changed += self._change(conn)
        except psycopg.errors.UniqueViolation:
            self.rolled_back += 1  # a generated key already taken: nothing was committed
            return
        self.transactions += 1
        self.changes += changed
        self.kinds += self._pending

    def _change(self, conn: Connection) -> int:
        draw = self.rng.random()
        table = self.tables[self.rng.choice(sorted(self.tables))]
        if draw < 0.30:
            return self._count(
                "insert", self._insert(conn, table, self.make.row(table.name, table.contract))
            )
        if draw < 0.60:
            return self._count("update", self._update(conn, table))
        if draw < 0.70:
            return self._count("key change", self._change_key(conn, table))
        if draw < 0.82:
            victim = self._victim(conn, table)
            deleted = 0 if victim is None else self._delete(conn, table, table.where_key(victim))
            return self._count("delete", deleted)
        return self._family(conn)

    def _count(self, kind: str, changed: int) -> int:
        if changed:
            self._pending[kind] += changed
        return changed

    def _victim(self, conn: Connection, table: Table) -> tuple[object, ...] | None:
        query = sql.SQL("SELECT {} FROM {} ORDER BY random() LIMIT 1").format(
            sql.SQL(", ").join(map(sql.Identifier, table.keys)), table.ident
        )
        return conn.execute(query).fetchone()

    def _insert(self, conn: Connection, table: Table, row: Row) -> int:
        query = sql.SQL("INSERT INTO {} ({}) VALUES ({}) ON CONFLICT DO NOTHING").format(
            table.ident,
            sql.SQL(", ").join(map(sql.Identifier, row)),
            sql.SQL(", ").join(sql.Placeholder() * len(row)),
        )
        return conn.execute(query, list(row.values())).rowcount

    def _update(self, conn: Connection, table: Table) -> int:
        victim = self._victim(conn, table)
        if victim is None:
            return 0
        fresh = self.make.row(table.name, table.contract)
        chosen = set(self.rng.sample(table.others, self.rng.randint(1, 3)))
        if chosen & set(PLACE):
            chosen |= set(PLACE) & set(table.others)  # a move changes the whole address
        return self._set(conn, table, {c: fresh[c] for c in chosen}, victim)

    def _set(self, conn: Connection, table: Table, values: Row, key: tuple[object, ...]) -> int:
        query = sql.SQL("UPDATE {} SET {} WHERE {}").format(
            table.ident,
            sql.SQL(", ").join(
                sql.SQL("{} = {}").format(sql.Identifier(c), sql.Literal(v))
                for c, v in values.items()
            ),
            table.where_key(key),
        )
        return conn.execute(query).rowcount

    def _change_key(self, conn: Connection, table: Table) -> int:
        victim = self._victim(conn, table)
        if victim is None:
            return 0
        return 0 if self._rekey(conn, table, victim, self.rng.choice(table.keys)) is None else 1

    def _rekey(
        self, conn: Connection, table: Table, victim: tuple[object, ...], column: str
    ) -> object | None:
        """A primary-key change: ``column`` of the victim's key gets a fresh value, which is
        returned; None when that key is already taken."""
        new_value = self.make.row(table.name, table.contract)[column]
        new_key = tuple(
            new_value if k == column else v for k, v in zip(table.keys, victim, strict=True)
        )
        taken = conn.execute(
            sql.SQL("SELECT EXISTS (SELECT FROM {} WHERE {})").format(
                table.ident, table.where_key(new_key)
            )
        ).fetchone()
        if taken and taken[0]:
            return None
        return new_value if self._set(conn, table, {column: new_value}, victim) else None

    def _delete(self, conn: Connection, table: Table, where: sql.Composable) -> int:
        query = sql.SQL("DELETE FROM {} WHERE {}").format(table.ident, where)
        return conn.execute(query).rowcount

    def _family(self, conn: Connection) -> int:
        """One transaction over a parent and its children: make them together, remove them
        together, or give the parent a new key and move its children with it."""
        parent_name, child_name, link = FAMILIES[self.agency]
        parent, child = self.tables[parent_name], self.tables[child_name]
        draw = self.rng.random()
        if draw < 0.5:
            row = self.make.row(parent.name, parent.contract)
            changed = self._insert(conn, parent, row)
            for _ in range(self.rng.randint(1, 3)):
                kid = self.make.row(child.name, child.contract)
                kid |= {c: row[c] for c in (link, *PLACE) if c in kid and c in row}
                changed += self._insert(conn, child, kid)
            return self._count("parent and children inserted together", changed)
        victim = self._victim(conn, parent)
        if victim is None:
            return 0
        of_victim = sql.SQL("{} = {}").format(sql.Identifier(link), sql.Literal(victim[0]))
        if draw < 0.75:
            deleted = self._delete(conn, child, of_victim) + self._delete(conn, parent, of_victim)
            return self._count("parent and children deleted together", deleted)
        new_key = self._rekey(conn, parent, victim, link)  # the parent's key is the link
        if new_key is None:
            return 0
        moved = 1 + self._set_children(conn, child, link, victim[0], new_key)
        return self._count("parent re-keyed with its children", moved)

    def _set_children(
        self, conn: Connection, child: Table, link: str, old: object, new: object
    ) -> int:
        query = sql.SQL("UPDATE {} SET {} = {} WHERE {} = {}").format(
            child.ident,
            sql.Identifier(link),
            sql.Literal(new),
            sql.Identifier(link),
            sql.Literal(old),
        )
        return conn.execute(query).rowcount
