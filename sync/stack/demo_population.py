"""Demo rows of the population agency (Ministry of Public Security): citizens and the
households they are registered in."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

from sync.stack.demo_people import citizens
from sync.stack.demo_world import Row, World


def citizen_rows(world: World) -> Iterator[Row]:
    return citizens(world.scale, world.seed)


def household_rows(world: World) -> Iterator[Row]:
    """One row per member; every citizen belongs to exactly one household of their ward."""
    now = datetime.now(UTC)
    for household in world.households:
        head = household.head
        for person, relationship in household.members:
            yield {
                "household_id": household.household_id,
                "personal_id": person.personal_id,
                "head_personal_id": head.personal_id,
                "relationship_to_head": relationship,
                "address_line": household.address,
                "province_code": person.province,
                "district_code": person.district,
                "ward_code": person.ward,
                "registered_on": max(household.established, person.born),
                "updated_at": now,
            }
