"""The data protection officer's report: over a period, what each agency received, for which
purpose and on which legal basis, about how many people, and which sensitive personal fields
(by the contracts' classification) were among them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from sync.audit.schema import ENTRIES
from sync.contracts import Contract
from sync.contracts.columns import columns_of

SENSITIVE = "sensitive_personal"
_PERIOD = sql.SQL("recorded_at >= %(since)s AND recorded_at < %(until)s")
_COUNTS = sql.SQL(
    "SELECT agency, purpose, legal_basis, count(*) FROM {} WHERE {} GROUP BY 1, 2, 3"
).format(ENTRIES, _PERIOD)
_PEOPLE = sql.SQL(
    "SELECT agency, purpose, legal_basis, count(DISTINCT s) FROM {}, unnest(subjects) s "
    "WHERE {} GROUP BY 1, 2, 3"
).format(ENTRIES, _PERIOD)
_FIELDS = sql.SQL(
    "SELECT DISTINCT agency, purpose, legal_basis, topic, f FROM {}, unnest(fields) f WHERE {}"
).format(ENTRIES, _PERIOD)

Grounds = tuple[str, str, str]  # agency, purpose, legal basis


@dataclass
class ReportRow:
    agency: str
    purpose: str
    legal_basis: str
    disclosures: int = 0
    people: int = 0
    topics: set[str] = field(default_factory=set)
    sensitive: set[str] = field(default_factory=set)  # topic.field

    def as_dict(self) -> dict[str, object]:
        return {
            "agency": self.agency,
            "purpose": self.purpose,
            "legal_basis": self.legal_basis,
            "disclosures": self.disclosures,
            "people": self.people,
            "topics": ", ".join(sorted(self.topics)),
            "sensitive_fields": ", ".join(sorted(self.sensitive)),
        }


def sensitive_fields(contracts: Iterable[Contract]) -> dict[str, frozenset[str]]:
    """Per topic, the fields its contract classifies as sensitive personal data."""
    return {
        c.topic: frozenset(col.name for col in columns_of(c) if col.classification == SENSITIVE)
        for c in contracts
    }


def disclosure_report(
    conn: psycopg.Connection[Any],
    since: datetime,
    until: datetime,
    sensitive: Mapping[str, frozenset[str]],
) -> list[ReportRow]:
    """One row per agency, purpose and legal basis with a disclosure in [since, until)."""
    period = {"since": since, "until": until}
    rows: dict[Grounds, ReportRow] = {}

    def row(grounds: Grounds) -> ReportRow:
        return rows.setdefault(grounds, ReportRow(*grounds))

    for agency, purpose, basis, count in conn.execute(_COUNTS, period):
        row((agency, purpose, basis)).disclosures = count
    for agency, purpose, basis, count in conn.execute(_PEOPLE, period):
        row((agency, purpose, basis)).people = count
    for agency, purpose, basis, topic, name in conn.execute(_FIELDS, period):
        target = row((agency, purpose, basis))
        target.topics.add(topic)
        if name in _classified(sensitive, topic):
            target.sensitive.add(f"{topic}.{name}")
    return sorted(rows.values(), key=lambda r: (r.agency, r.purpose, r.legal_basis))


def _classified(sensitive: Mapping[str, frozenset[str]], topic: str) -> frozenset[str]:
    """A topic's sensitive fields; a prefixed topic name matches its contract's."""
    if topic in sensitive:
        return sensitive[topic]
    for name, fields in sensitive.items():
        if topic.endswith("." + name):
            return fields
    return frozenset()
