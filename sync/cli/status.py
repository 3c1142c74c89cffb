"""``govsync status``: one table of the stack's processes, lag, freshness, dead letters, and
whether each processor is its agencies' active member or stands by."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape

from sync.cli.options import data_dir_option, stack_description
from sync.stack.status import ProcessHealth, stack_health


@click.command()
@data_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def status(data_dir: Path, as_json: bool) -> None:
    """Health of the running stack. Exits 1 when a process is down, its metrics cannot be
    read, a subscription is stopped, or an agency's every worker stands by."""
    report = stack_health(stack_description(data_dir))
    if as_json:
        click.echo(json.dumps([{**asdict(h), "healthy": h.healthy} for h in report], indent=2))
    else:
        _print(report)
    sys.exit(0 if all(h.healthy for h in report) else 1)


def _print(report: list[ProcessHealth]) -> None:
    """One line per process: its verdict (red where something is wrong), name, pid and
    figures, counts as integers."""
    console = Console(highlight=False, soft_wrap=True)
    width = max((len(h.name) for h in report), default=0)
    for h in report:
        figures = escape(", ".join(f"{k} {figure(v)}" for k, v in h.figures.items()))
        if h.healthy:
            verdict = "[green]ok  [/green]"
        else:
            verdict = "[bold red]FAIL[/bold red]"
            problems = "; ".join(h.problems) or ("down" if not h.alive else "no metrics")
            figures = f"[red]{escape(problems)}[/red]" + (f"; {figures}" if figures else "")
        console.print(f"{verdict} {escape(h.name):<{width}}  pid {h.pid:<7} {figures}")


def figure(value: float | str) -> str:
    """A figure as a person reads it: whole numbers without a decimal point and with
    thousands separators, others with at most one decimal."""
    if isinstance(value, str):
        return value
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.1f}"
