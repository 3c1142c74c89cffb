"""``govsync audit citizen``'s two halves: a person's identifiers, resolved through the
sources' link tables of the deployment described by ``--federation`` or stack.json, and the
answer, which names the fields disclosed and the kind of identifier each entry matched but
prints a linked identifier's value only when asked."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import click
import psycopg
from rich.console import Console
from rich.table import Table

from sync.audit.chain import Entry
from sync.audit.disclosure import PERSONAL_ID
from sync.audit.links import Linked, LinkTable, link_tables, linked_identifiers
from sync.cli.options import described, stack_description
from sync.contracts import load_contracts
from sync.errors import ConfigError, ContractError
from sync.stack.description import StackDescription

CONNECT_TIMEOUT_SECONDS = 5
_OPS = {"c": "created", "u": "updated", "d": "removed", "r": "initial copy"}
_KIND_WORDS = {
    "personal_id": "personal id",
    "tax_code": "tax code",
    "insurance_number": "insurance number",
}


@dataclass
class Identifiers:
    """One person's identifiers: the personal id asked about, those the sources link to it,
    and why a link table could not be read."""

    personal_id: str
    linked: list[Linked] = field(default_factory=list)
    unreachable: list[str] = field(default_factory=list)

    def stored(self) -> dict[str, tuple[str, str]]:
        """Text as audit entries store it -> (kind, value)."""
        found = {self.personal_id: (PERSONAL_ID, self.personal_id)}
        found.update({x.stored: (x.kind, x.value) for x in self.linked})
        return found


def resolve(data_dir: Path, personal_id: str) -> Identifiers:
    """``personal_id`` and what the described deployment's link tables tie to it."""
    found = Identifiers(personal_id)
    try:
        links = link_tables(load_contracts().values())
    except ContractError as exc:
        found.unreachable.append(f"cannot load the contracts to find the link tables: {exc}")
        return found
    if not links:
        return found
    names = ", ".join(link.topic for link in links)
    if not described(data_dir):
        found.unreachable.append(
            f"no --federation and no stack.json in {data_dir}: the sources' link tables "
            f"({names}) were not read"
        )
        return found
    try:
        description = stack_description(data_dir)
    except ConfigError as exc:
        found.unreachable.append(f"{exc}: the sources' link tables ({names}) were not read")
        return found
    for link in links:
        problem = _read_link(description, link, found)
        if problem:
            found.unreachable.append(f"{link.topic}: {problem}")
    return found


def _read_link(description: StackDescription, link: LinkTable, found: Identifiers) -> str:
    """Add what ``link`` ties to the person; return why it could not be read, or ''."""
    try:
        dsn = description.database(link.source, "source").dsn
    except ConfigError:
        return f"the deployment describes no source database {link.source!r}"
    try:
        with psycopg.connect(dsn, connect_timeout=CONNECT_TIMEOUT_SECONDS) as conn:
            found.linked += linked_identifiers(conn, link, found.personal_id)
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"cannot read source {link.source!r}: {reason}"
    return ""


def report_identifiers(identifiers: Identifiers, show: bool) -> None:
    """On stderr, so the answer on stdout stays what scripts read: which identifiers were
    searched (values only with ``show``) and which sources could not be read."""
    for problem in identifiers.unreachable:
        click.echo(f"note: {problem}; answering for the personal id alone there", err=True)
    for linked in identifiers.linked:
        value = f" {linked.value}" if show else ""
        word = _KIND_WORDS.get(linked.kind, linked.kind)
        click.echo(f"also searched: {word}{value} (linked in {linked.topic})", err=True)


def matched(entry: Entry, identifiers: Identifiers, show: bool) -> list[dict[str, str]]:
    """The person's identifiers ``entry`` names: their kinds, and values only with ``show``."""
    stored = identifiers.stored()
    found = []
    for text in entry.subjects:
        if text in stored:
            kind, value = stored[text]
            found.append({"kind": kind, "identifier": value} if show else {"kind": kind})
    return found


def entry_dict(e: Entry, identifiers: Identifiers, show: bool) -> dict[str, object]:
    return {
        "agency": e.agency,
        "topic": e.topic,
        "op": e.op,
        "fields": list(e.fields),
        "matched": matched(e, identifiers, show),
        "purpose": e.purpose,
        "legal_basis": e.legal_basis,
        "disclosed_at": e.recorded_at.isoformat(),
        "source_committed_at": e.committed_at.isoformat(),
        "event_id": e.event_id,
        "source_position": f"{e.lsn}#{e.index}",
        "audit_seq": e.seq,
    }


def print_disclosures(identifiers: Identifiers, entries: list[Entry], show: bool) -> None:
    console = Console()
    personal_id = identifiers.personal_id
    if not entries:
        console.print(f"no disclosure recorded about {personal_id}")
        return
    table = Table(title=f"disclosures about {personal_id}")
    columns = ("when", "agency", "topic", "what", "fields", "matched", "purpose", "legal basis")
    for column in (*columns, "event"):
        table.add_column(column)
    for e in entries:
        table.add_row(
            e.recorded_at.strftime("%Y-%m-%d %H:%M:%S %z"),
            e.agency,
            e.topic,
            _OPS.get(e.op, e.op),
            ", ".join(e.fields),
            ", ".join(_matched_words(m) for m in matched(e, identifiers, show)),
            e.purpose,
            e.legal_basis,
            f"{e.event_id} ({e.lsn}#{e.index})",
        )
    console.print(table)


def _matched_words(match: dict[str, str]) -> str:
    word = _KIND_WORDS.get(match["kind"], match["kind"])
    return f"{word} {match['identifier']}" if "identifier" in match else word
