"""What one applied record disclosed to one agency, derived from the change before and after
the subscription's projection. Pure logic: nothing here talks to a server.

Who a change is about comes from its contract's marked fields (``govsync.subject``), whatever
they are called. An entry stores each identifier as text: a personal id as it is, as entries
always have, and any other kind prefixed with its kind, ``tax_code:8012345678`` or
``insurance_number:0112345678``, so one person's identifiers of different kinds never collide
and old entries, whose canonical form hashes the same text, stay findable and verifiable.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sync.types import ChangeEvent, Op

_OPS = frozenset(op.value for op in (Op.CREATE, Op.UPDATE, Op.DELETE, Op.READ))
PERSONAL_ID = "personal_id"


class Grounds(Protocol):
    """Why an agency receives a topic: a :class:`~sync.policy.Subscription` or a
    :class:`Basis`."""

    @property
    def purpose(self) -> str: ...

    @property
    def legal_basis(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Basis:
    """Purpose and legal basis, for callers that hold no subscription."""

    purpose: str
    legal_basis: str


@dataclass(frozen=True, slots=True)
class Disclosure:
    """One record applied to ``agency``'s replica: about whom (``subjects``, the identifiers
    of persons the source record holds, each as :func:`subject_text` writes it), which
    ``fields`` it received, why, and which source change it
    was. ``event_id`` is unique per agency: recording it twice writes one entry."""

    agency: str
    subjects: tuple[str, ...]
    topic: str
    op: str
    fields: tuple[str, ...]
    purpose: str
    legal_basis: str
    event_id: str
    lsn: str
    index: int
    committed_at: datetime

    def __post_init__(self) -> None:
        if self.op not in _OPS:
            raise ValueError(f"disclosure op must be one of c, u, d, r, not {self.op!r}")
        if self.committed_at.tzinfo is None:
            raise ValueError("disclosure committed_at must carry a time zone")
        if not self.event_id:
            raise ValueError("a disclosure needs its event id")


def subject_text(kind: str, value: object) -> str:
    """How an entry stores an identifier of ``kind``: a personal id bare, any other kind
    prefixed with it (``tax_code:8012345678``)."""
    return str(value) if kind == PERSONAL_ID else f"{kind}:{value}"


def subject_kind(text: str, kinds: Iterable[str]) -> tuple[str, str]:
    """(kind, value) of an identifier stored as ``text``; ``kinds`` are those that may
    prefix it. Text without a known prefix is a personal id."""
    prefix, colon, value = text.partition(":")
    if colon and prefix in kinds and prefix != PERSONAL_ID:
        return prefix, value
    return PERSONAL_ID, text


def subjects_of(event: ChangeEvent, marked: Mapping[str, str]) -> tuple[str, ...]:
    """The persons a source change is about: the values of its contract's ``marked`` fields
    (field name -> kind of identifier) in its key and both images, sorted."""
    images = [image for image in (event.key, event.before, event.after) if image is not None]
    found = set()
    for name, kind in marked.items():  # a field or two, against an image's many
        for image in images:
            value = image.get(name)
            if value is not None and value != "":
                found.add(subject_text(kind, value))
    return tuple(sorted(found))


def disclosures_of(
    source: ChangeEvent,
    projected: ChangeEvent | None,
    grounds: Grounds,
    topic: str,
    agency: str,
    marked: Mapping[str, str],
) -> tuple[Disclosure, ...]:
    """The disclosure ``agency`` received when ``projected`` (the subscriber's view of
    ``source``) was applied: none when the projection skipped the change. Subjects come from
    the source change's ``marked`` fields (field name -> kind, see
    :func:`sync.contracts.attributes.subject_fields`), fields from the projection; a delete
    discloses the key fields. A truncate names no one and discloses no field."""
    if projected is None or projected.op is Op.TRUNCATE:
        return ()
    if projected.op is Op.DELETE:
        fields = tuple(projected.key)
    else:
        fields = tuple(projected.after or projected.key)
    disclosure = Disclosure(
        agency=agency,
        subjects=subjects_of(source, marked),
        topic=topic,
        op=projected.op.value,
        fields=fields,
        purpose=grounds.purpose,
        legal_basis=grounds.legal_basis,
        event_id=audit_event_id(source),
        lsn=str(source.position.lsn),
        index=source.position.index,
        committed_at=source.commit_time,
    )
    return (disclosure,)


def audit_event_id(event: ChangeEvent) -> str:
    """The id the audit is idempotent on (snapshot reads are told apart by their key)."""
    return event.event_id
