"""Who a contract change reaches: for each changed field of a topic, the subscriptions that
receive it (in clear or transformed) or whose row filter reads it. What a schema reviewer reads
beside the verdicts (``govsync schemas diff``, the console). Pure: manifest and changes in,
names out."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sync.contracts.diff import Change
from sync.policy.filters import fields_of
from sync.policy.models import Manifest, Subscription


@dataclass(frozen=True, slots=True)
class Receiver:
    """One subscription a changed field reaches, and how: ``receives`` (in clear),
    ``receives <transform>`` (hashed, masked, as a year) or ``filters on``."""

    agency: str
    how: str
    purpose: str

    def __str__(self) -> str:
        return f"{self.agency} ({self.how})"

    def to_json(self) -> dict[str, str]:
        return {"agency": self.agency, "how": self.how, "purpose": self.purpose}


@dataclass(frozen=True, slots=True)
class Reach:
    """A changed field of ``topic`` and every subscription it reaches (none: no agency sees
    the field, so the change touches only the source and the topic)."""

    field: str
    changes: tuple[Change, ...]
    receivers: tuple[Receiver, ...]

    def to_json(self) -> dict[str, object]:
        return {
            "field": self.field,
            "changes": [c.to_json() for c in self.changes],
            "receivers": [r.to_json() for r in self.receivers],
        }


def reach(
    manifest: Manifest, topic: str, field_names: Iterable[str], changes: Iterable[Change]
) -> list[Reach]:
    """For each field of ``topic``'s rows that ``changes`` touch, in the order first touched,
    the subscriptions it reaches. A change whose path names no row field (the envelope's own
    parts, the record's name) is left out."""
    names = set(field_names)
    touched: dict[str, list[Change]] = {}
    for change in changes:
        field = changed_field(change.path, names)
        if field is not None:
            touched.setdefault(field, []).append(change)
    subscriptions = [s for s in manifest.subscriptions if s.topic == topic]
    return [
        Reach(field, tuple(found), tuple(_receivers(field, subscriptions)))
        for field, found in touched.items()
    ]


def changed_field(path: str, names: set[str]) -> str | None:
    """The row field a change's dotted path is about (``after.district_code``,
    ``district_code``), or None."""
    for part in reversed(path.split(".")):
        if part in names:
            return part
    return None


_AS = {"hash": "hashed", "mask": "masked", "year": "as its year"}


def _receivers(field: str, subscriptions: Iterable[Subscription]) -> Iterable[Receiver]:
    for s in subscriptions:
        if field in s.fields:
            transform = s.transforms.get(field)
            how = "receives" if transform is None else f"receives {_AS[transform.kind]}"
            yield Receiver(s.agency, how, s.purpose)
        elif field in fields_of(s.filter):
            yield Receiver(s.agency, "filters on", s.purpose)
