"""Demo rows of the land agency: parcels on the cadastral map and the land-use rights over
them, held by the citizens heading households (with their spouses) and by enterprises."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal

from sync.stack.demo_people import REFERENCE_DAY, Person, day_between, ward_in, years_after
from sync.stack.demo_world import Firm, Household, Row, World

SERIES = "AA AB AC AD BA BB BC BD BE BG BH BK CA CB CC CD CE CH CK CS CT CY DA DB DC DD DE".split()
RESIDENTIAL_ORIGINS = ["cong_nhan", "nhan_chuyen_nhuong", "giao_co_thu_tien", "nhan_thua_ke"]
CENT = Decimal("0.01")


@dataclass
class _Register:
    """The parcels and rights recorded so far, and the identifiers already used."""

    rng: random.Random
    parcels: list[Row] = field(default_factory=list)
    rights: list[Row] = field(default_factory=list)
    serials: set[str] = field(default_factory=set)
    parcel_ids: set[str] = field(default_factory=set)

    def parcel(
        self,
        where: Person | Firm,
        purpose: str,
        area: tuple[int, int],
        address: str | None,
        ward: str = "",
    ) -> str:
        """Record a parcel near ``where`` (in ``ward`` if given) whose area, in hundredths of a
        square metre, lies in ``area``; returns its id."""
        ward = ward or where.ward
        while True:
            sheet, number = self.rng.randrange(1, 80), self.rng.randrange(1, 3000)
            parcel_id = f"{ward}-{sheet:03d}-{number:05d}"
            if parcel_id not in self.parcel_ids:
                break
        self.parcel_ids.add(parcel_id)
        self.parcels.append(
            {
                "parcel_id": parcel_id,
                "map_sheet_number": sheet,
                "parcel_number": number,
                "province_code": where.province,
                "district_code": where.district,
                "ward_code": ward,
                "address_line": address,
                "area_m2": (Decimal(self.rng.randrange(*area)) / 100).quantize(CENT),
                "land_use_purpose": purpose,
            }
        )
        return parcel_id

    def right(
        self, parcel_id: str, holder: Row, origin: str, issued: date, term_end: date | None
    ) -> None:
        while True:
            serial = f"{self.rng.choice(SERIES)}{self.rng.randrange(10**8):08d}"
            if serial not in self.serials:
                break
        self.serials.add(serial)
        self.rights.append(
            {
                "certificate_serial": serial,
                "parcel_id": parcel_id,
                "land_use_origin": origin,
                "use_term_end": term_end,
                "issued_on": issued,
                **holder,
            }
        )


def land(world: World) -> tuple[list[Row], list[Row]]:
    """(parcels, land-use rights), the same for the same world."""
    register = _Register(world.rng("land"))
    for household in world.households:
        _household_land(register, household, world.spouse.get(household.head.personal_id))
    for firm in world.firms:
        if register.rng.random() < 0.4:
            _firm_land(register, firm)
    return register.parcels, register.rights


def _household_land(register: _Register, household: Household, spouse: str | None) -> None:
    head, rng = household.head, register.rng
    if head.age_on(REFERENCE_DAY) < 18:
        return
    holder: Row = {
        "holder_type": "ca_nhan",
        "holder_personal_id": head.personal_id,
        "co_holder_personal_id": spouse,
        "holder_enterprise_code": None,
        "holder_name": head.full_name,
    }
    adult = max(years_after(head.born, 18), date(1995, 1, 1))
    if rng.random() < 0.6:
        purpose = "ODT" if rng.random() < 0.8 else "ONT"
        parcel = register.parcel(head, purpose, (3000, 25000), household.address)
        origin = rng.choice(RESIDENTIAL_ORIGINS)
        register.right(parcel, holder, origin, day_between(adult, REFERENCE_DAY, rng), None)
    if rng.random() < 0.15:
        purpose = rng.choice(["LUC", "LUC", "CLN", "RSX"])
        ward = ward_in(head.district, rng)
        parcel = register.parcel(
            head, purpose, (50000, 500000), f"Thôn {rng.randrange(1, 15)}", ward
        )
        issued = day_between(adult, REFERENCE_DAY, rng)
        register.right(parcel, holder, "giao_khong_thu_tien", issued, years_after(issued, 50))


def _firm_land(register: _Register, firm: Firm) -> None:
    rng = register.rng
    holder: Row = {
        "holder_type": "to_chuc",
        "holder_personal_id": None,
        "co_holder_personal_id": None,
        "holder_enterprise_code": firm.code,
        "holder_name": firm.name_vi,
    }
    purpose = "SKC" if firm.industry in ("1079", "1410", "2592") else "TMD"
    parcel = register.parcel(firm, purpose, (50000, 2000000), firm.address)
    origin = "thue_tra_tien_hang_nam" if rng.random() < 0.6 else "thue_tra_tien_mot_lan"
    issued = day_between(firm.established, REFERENCE_DAY, rng)
    register.right(parcel, holder, origin, issued, years_after(issued, 50))


def land_parcel_rows(world: World) -> Iterator[Row]:
    now = datetime.now(UTC)
    for row in land(world)[0]:
        yield {**row, "updated_at": now}


def land_use_right_rows(world: World) -> Iterator[Row]:
    now = datetime.now(UTC)
    for row in land(world)[1]:
        yield {**row, "updated_at": now}
