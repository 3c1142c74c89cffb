"""``govsync status``: one table of the stack's processes, lag, freshness, dead letters, and
whether each processor is its agencies' active member or stands by."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from sync.cli.options import data_dir_option
from sync.stack.description import StackDescription
from sync.stack.status import ProcessHealth, stack_health


@click.command()
@data_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def status(data_dir: Path, as_json: bool) -> None:
    """Health of the running stack. Exits 1 when a process is down, its metrics cannot be
    read, a subscription is stopped, or an agency's every worker stands by."""
    report = stack_health(StackDescription.read(data_dir))
    if as_json:
        click.echo(json.dumps([{**asdict(h), "healthy": h.healthy} for h in report], indent=2))
    else:
        _print(report)
    sys.exit(0 if all(h.healthy for h in report) else 1)


def _print(report: list[ProcessHealth]) -> None:
    table = Table(title="govsync status")
    for column in ("process", "role", "pid", "health", "figures"):
        table.add_column(column)
    for h in report:
        verdict = "[green]ok" if h.healthy else "[red]" + "; ".join(h.problems)
        figures = ", ".join(f"{k} {v}" for k, v in h.figures.items())
        table.add_row(h.name, h.role, str(h.pid), verdict, figures)
    Console().print(table)
