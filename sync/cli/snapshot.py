"""``govsync snapshot TABLE``: snapshot a table again on a live source, with a progress bar."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
import psycopg
from rich.progress import Progress

from sync.cli.options import data_dir_option, stack_description
from sync.errors import ConfigError
from sync.types import TableRef


@click.command()
@click.argument("table")
@click.option("--source", required=True, help="Source agency whose database holds TABLE.")
@data_dir_option
@click.option("--slot", default="", help="The connector's slot; govsync_<source> if empty.")
@click.option(
    "--wait/--no-wait",
    default=True,
    show_default=True,
    help="Follow the snapshot until it is done.",
)
@click.option("--timeout", default=3600.0, show_default=True, help="Seconds to wait at most.")
def snapshot(
    table: str, source: str, data_dir: Path, slot: str, wait: bool, timeout: float
) -> None:
    """Ask the running connector of SOURCE to snapshot TABLE (schema.table or table) again.

    The connector reads it in key-ordered chunks between watermarks while it keeps streaming,
    so the table stays writable and no replica row goes back in time."""
    from connectors.postgres.snapshot import SnapshotState, estimated_rows

    schema, _, name = table.rpartition(".")
    ref = TableRef(schema or "public", name)
    dsn = stack_description(data_dir).database(source, "source").dsn
    state = SnapshotState(dsn, slot or f"govsync_{source}")
    try:
        state.request([ref], again=True)
    except ConfigError as exc:
        message = _not_captured(ref, source, state.slot, exc.fields.get("captured", []))
        raise click.BadParameter(message, param_hint="'TABLE'") from None
    click.echo(f"snapshot of {ref} requested from the {source} connector")
    if not wait:
        return
    total = max(estimated_rows(dsn, ref), 1)
    deadline = time.monotonic() + timeout
    with Progress() as progress:
        task = progress.add_task(f"snapshot {ref}", total=total)
        while time.monotonic() < deadline:
            status, rows = _progress(dsn, state.slot, ref)
            progress.update(task, completed=min(rows, total))
            if status == "done":
                progress.update(task, completed=total)
                click.echo(f"snapshot of {ref} done: {rows} rows")
                return
            time.sleep(0.5)
    click.echo(f"snapshot of {ref} not done within {timeout:.0f} s", err=True)
    sys.exit(1)


def _not_captured(table: TableRef, source: str, slot: str, captured: list[str]) -> str:
    listed = ", ".join(captured) or "no table yet (a connector registers its tables as it starts)"
    return f"{table} is not captured by the {source} connector (slot {slot}); it captures {listed}"


def _progress(dsn: str, slot: str, table: TableRef) -> tuple[str, int]:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT status, rows_read FROM govsync.snapshot_state "
            "WHERE slot_name = %s AND table_name = %s",
            (slot, str(table)),
        ).fetchone()
    return (str(row[0]), int(row[1])) if row else ("unknown", 0)
