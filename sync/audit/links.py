"""A person's other identifiers, read from the sources' own link tables.

The audit names a person by whatever identifies them in the record disclosed: a tax obligation
by the taxpayer's tax code, a month of contributions by the social insurance number. To answer
"who received what about me" for a personal id, the identifiers the sources tie to it are
looked up where the sources keep them. A link table is any contract whose rows hold a field
marked ``govsync.subject: personal_id`` beside fields marked with another kind (in the
catalogue, ``finance.taxpayer`` and ``insurance.insured_person``); its rows are read in the
source database's own table, so the answer is as current as the source.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from sync.audit.disclosure import PERSONAL_ID, subject_text
from sync.contracts import Contract
from sync.contracts.attributes import subject_fields


@dataclass(frozen=True, slots=True)
class LinkTable:
    """A source table tying personal ids (column ``personal_id``) to identifiers of other
    kinds (``identifiers``: column -> kind)."""

    topic: str
    source: str  # the source database's name (the contract's govsync.source)
    table: str  # in that database's public schema
    personal_id: str
    identifiers: tuple[tuple[str, str], ...]

    def query(self) -> sql.Composed:
        columns = [column for column, _ in self.identifiers]
        return sql.SQL("SELECT DISTINCT {} FROM {} WHERE {} = %s").format(
            sql.SQL(", ").join(map(sql.Identifier, columns)),
            sql.Identifier("public", self.table),
            sql.Identifier(self.personal_id),
        )


@dataclass(frozen=True, slots=True)
class Linked:
    """One identifier of the person, of ``kind``, found in link table ``topic``."""

    kind: str
    value: str
    topic: str

    @property
    def stored(self) -> str:
        """As audit entries store it."""
        return subject_text(self.kind, self.value)


def link_tables(contracts: Iterable[Contract]) -> list[LinkTable]:
    """The contracts whose rows tie a personal id to identifiers of other kinds, by topic."""
    found = []
    for contract in sorted(contracts, key=lambda c: c.topic):
        marked = subject_fields(contract.row_schema)
        personal = [name for name, kind in marked.items() if kind == PERSONAL_ID]
        others = tuple((name, kind) for name, kind in marked.items() if kind != PERSONAL_ID)
        if len(personal) != 1 or not others:
            continue  # several personal ids (a household's member and head) link nothing
        source = str(contract.row_schema.get("govsync.source", contract.domain))
        found.append(LinkTable(contract.topic, source, contract.source_table, personal[0], others))
    return found


def linked_identifiers(
    conn: psycopg.Connection[Any], link: LinkTable, personal_id: str
) -> list[Linked]:
    """The identifiers ``link`` ties to ``personal_id`` in the source database ``conn``."""
    found = set()
    for row in conn.execute(link.query(), (personal_id,)):
        for (_, kind), value in zip(link.identifiers, row, strict=True):
            if value is not None and value != "":
                found.add(Linked(kind, str(value), link.topic))
    return sorted(found, key=lambda x: (x.kind, x.value))
