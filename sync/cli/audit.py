"""``govsync audit``: prove the disclosure audit intact, publish its anchors, and tell a data
subject which agencies received what about them, when and why."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
import psycopg
from rich.console import Console
from rich.table import Table

from sync.audit.chain import ChainWalk, Entry, Head
from sync.audit.reader import (
    Connection,
    chain_agencies,
    chain_heads,
    disclosures_about,
    snapshot,
    store_exists,
    walk_chain,
)
from sync.audit.schema import create_store
from sync.cli.options import data_dir_option
from sync.errors import ConfigError
from sync.stack.description import StackDescription

_OPS = {"c": "created", "u": "updated", "d": "removed", "r": "initial copy"}


def dsn_option(command: Callable[..., None]) -> Callable[..., None]:
    """``--dsn`` of the audit store; without it, the store of the stack in ``--data-dir``."""

    @functools.wraps(command)
    def resolved(*args: Any, dsn: str | None, data_dir: Path, **kwargs: Any) -> None:
        command(*args, dsn=dsn or _described_store(data_dir), **kwargs)

    with_dsn = click.option(
        "--dsn",
        envvar="GOVSYNC_AUDIT_DSN",
        show_envvar=True,
        help="libpq connection string of the audit store [default: from stack.json].",
    )(resolved)
    return data_dir_option(with_dsn)


def _described_store(data_dir: Path) -> str:
    try:
        description = StackDescription.read(data_dir)
    except ConfigError as exc:
        raise click.UsageError(f"no --dsn given and {exc}") from None
    for database in description.databases:
        if database.role == "audit":
            return database.dsn
    raise click.UsageError(f"no --dsn given and the stack in {data_dir} has no audit store")


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


@click.group()
def audit() -> None:
    """The disclosure audit: a hash-chained log of every record applied to a subscriber."""


@audit.command()
@dsn_option
@click.option("--writer", help="Role of the processors: may append, never update or delete.")
def init(dsn: str, writer: str | None) -> None:
    """Create the audit store's tables (processors also do on first start)."""
    with _reaching(), psycopg.connect(dsn) as conn:
        create_store(conn, writer)
    click.echo("audit store ready" + (f"; {writer} may append" if writer else ""))


@audit.command()
@dsn_option
@click.option("--agency", "agencies", multiple=True, help="Only this agency's chain (repeat).")
@click.option(
    "--anchor",
    "anchors",
    multiple=True,
    help="AGENCY:SEQ:HASH printed earlier by `govsync audit head`; the chain must pass it.",
)
@click.option("--chunk-rows", default=10_000, show_default=True, help="Entries read per chunk.")
@json_option
def verify(
    dsn: str, agencies: tuple[str, ...], anchors: tuple[str, ...], chunk_rows: int, as_json: bool
) -> None:
    """Walk every chain (or --agency's); exit 1 naming the agency and seq of any break."""
    anchored = _anchors(anchors)
    with _reaching(), snapshot(dsn) as conn:
        _require_store(conn)
        known = chain_agencies(conn)
        unknown = sorted({*agencies, *anchored} - set(known))
        names = [a for a in known if a in agencies] if agencies else known
        walks = [walk_chain(conn, a, anchored.get(a), chunk_rows) for a in names]
    if as_json:
        rows = [_walk_dict(w) for w in walks]
        rows += [{"agency": a, "intact": False, "problem": "no audit chain"} for a in unknown]
        click.echo(json.dumps(rows, indent=2))
    else:
        for w in walks:
            click.echo(_walk_line(w))
        for agency in unknown:
            click.echo(f"BROKEN agency {agency}: no audit chain")
        if not walks and not unknown:
            click.echo("no audit chains yet")
    sys.exit(0 if not unknown and all(w.problem is None for w in walks) else 1)


@audit.command()
@dsn_option
@json_option
def head(dsn: str, as_json: bool) -> None:
    """Print each chain's head as an anchor (AGENCY:SEQ:HASH) to keep outside this database;
    `verify --anchor` then detects a chain rewritten after it."""
    with _reaching(), snapshot(dsn) as conn:
        _require_store(conn)
        heads = list(chain_heads(conn).values())
    if as_json:
        rows = [{"agency": h.agency, "seq": h.seq, "anchor": str(h)} for h in heads]
        click.echo(json.dumps(rows, indent=2))
    else:
        for h in heads:
            click.echo(str(h))


@audit.command()
@click.argument("personal_id")
@dsn_option
@json_option
def citizen(personal_id: str, dsn: str, as_json: bool) -> None:
    """Which agencies received what about PERSONAL_ID, when and why (the data subject's
    right to be informed). Prints personal data: for the person or their authorised handler."""
    with _reaching(), snapshot(dsn) as conn:
        _require_store(conn)
        entries = disclosures_about(conn, personal_id)
    if as_json:
        click.echo(json.dumps([_entry_dict(e) for e in entries], indent=2, ensure_ascii=False))
    else:
        _print_disclosures(personal_id, entries)


def _anchors(texts: tuple[str, ...]) -> dict[str, dict[int, bytes]]:
    anchors: dict[str, dict[int, bytes]] = {}
    for text in texts:
        try:
            anchor = Head.parse(text)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--anchor") from None
        anchors.setdefault(anchor.agency, {})[anchor.seq] = anchor.hash
    return anchors


@contextmanager
def _reaching() -> Iterator[None]:
    try:
        yield
    except psycopg.OperationalError as exc:
        raise click.ClickException(f"cannot reach the audit store: {exc}") from None


def _require_store(conn: Connection) -> None:
    if not store_exists(conn):
        raise click.ClickException(
            "no audit store here (schema govsync_audit): check --dsn, or run `govsync audit init`"
        )


def _walk_line(walk: ChainWalk) -> str:
    if walk.problem is not None:
        return f"BROKEN {walk.problem}"
    last = walk.last
    return (
        f"agency {walk.agency}: intact, {walk.entries} entries, head seq {last.seq} "
        f"sha256 {last.hash.hex()}"
    )


def _walk_dict(walk: ChainWalk) -> dict[str, object]:
    problem = walk.problem
    return {
        "agency": walk.agency,
        "intact": problem is None,
        "entries": walk.entries,
        "head": str(walk.last),
        "broken_at_seq": None if problem is None else problem.seq,
        "problem": None if problem is None else problem.reason,
    }


def _entry_dict(e: Entry) -> dict[str, object]:
    return {
        "agency": e.agency,
        "topic": e.topic,
        "op": e.op,
        "fields": list(e.fields),
        "purpose": e.purpose,
        "legal_basis": e.legal_basis,
        "disclosed_at": e.recorded_at.isoformat(),
        "source_committed_at": e.committed_at.isoformat(),
        "event_id": e.event_id,
        "source_position": f"{e.lsn}#{e.index}",
        "audit_seq": e.seq,
    }


def _print_disclosures(personal_id: str, entries: list[Entry]) -> None:
    console = Console()
    if not entries:
        console.print(f"no disclosure recorded about {personal_id}")
        return
    table = Table(title=f"disclosures about {personal_id}")
    for column in ("when", "agency", "topic", "what", "fields", "purpose", "legal basis", "event"):
        table.add_column(column)
    for e in entries:
        table.add_row(
            e.recorded_at.strftime("%Y-%m-%d %H:%M:%S %z"),
            e.agency,
            e.topic,
            _OPS.get(e.op, e.op),
            ", ".join(e.fields),
            e.purpose,
            e.legal_basis,
            f"{e.event_id} ({e.lsn}#{e.index})",
        )
    console.print(table)
