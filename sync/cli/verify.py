"""``govsync verify``: prove every replica equals its source (counts and row hashes)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from sync.cli.options import data_dir_option, stack_description
from sync.stack.verification import ReplicaReport, verify_stack
from sync.stack.verify_metrics import push_outcome


@click.command()
@click.argument("agency", required=False)
@data_dir_option
@click.option("--chunk-rows", default=10_000, show_default=True, help="Rows per compared chunk.")
@click.option("--show-keys", is_flag=True, help="List the keys that differ (personal data!).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.option(
    "--pushgateway",
    metavar="URL",
    help="Also push the outcome to this Prometheus Pushgateway (job govsync-verify).",
)
def verify(
    agency: str | None,
    data_dir: Path,
    chunk_rows: int,
    show_keys: bool,
    as_json: bool,
    pushgateway: str | None,
) -> None:
    """Compare each replica (or AGENCY's) with its source; exit 1 on any difference."""
    try:
        reports = verify_stack(stack_description(data_dir), agency, chunk_rows)
    except Exception:
        if pushgateway:  # a failed run pushes its end time, and no success
            push_outcome(pushgateway, None, time.time(), agency)
        raise
    if pushgateway:
        push_outcome(pushgateway, reports, time.time(), agency)
    if as_json:
        click.echo(json.dumps([_as_dict(r, show_keys) for r in reports], indent=2, default=str))
    else:
        _print(reports, show_keys)
    sys.exit(0 if reports and all(r.equal for r in reports) else 1)


def _as_dict(report: ReplicaReport, show_keys: bool) -> dict[str, object]:
    tables = []
    for t in report.tables:
        entry: dict[str, object] = {
            "table": t.name,
            "equal": t.equal,
            "source_rows": t.source_rows,
            "replica_rows": t.replica_rows,
            "missing": len(t.missing),
            "extra": len(t.extra),
            "different": len(t.different),
        }
        if show_keys:
            entry["keys"] = {"missing": t.missing, "extra": t.extra, "different": t.different}
        tables.append(entry)
    return {"agency": report.agency, "equal": report.equal, "tables": tables}


def _print(reports: list[ReplicaReport], show_keys: bool) -> None:
    table = Table(title="govsync verify")
    for column in ("agency", "table", "source", "replica", "missing", "extra", "different"):
        table.add_column(column)
    for report in reports:
        for t in report.tables:
            style = "" if t.equal else "[red]"
            table.add_row(
                report.agency,
                style + t.name,
                str(t.source_rows),
                str(t.replica_rows),
                str(len(t.missing)),
                str(len(t.extra)),
                str(len(t.different)),
            )
            if show_keys and not t.equal:
                table.add_row("", f"keys: {t.missing + t.extra + t.different}", "", "", "", "", "")
    Console().print(table)
    if not reports:
        Console().print("[red]no replica database in the stack description")
