"""``govsync audit report``: disclosures per agency, purpose and legal basis over a period,
with the sensitive personal fields disclosed, as a table or CSV (for the data protection
officer; it names no person)."""

from __future__ import annotations

import csv
import sys
from datetime import UTC, datetime, timedelta

import click
from rich.console import Console
from rich.table import Table

from sync.audit.reader import snapshot
from sync.audit.report import ReportRow, disclosure_report, sensitive_fields
from sync.cli.audit import dsn_option, reaching_store, require_store
from sync.contracts import load_contracts

_DAY = click.DateTime(formats=["%Y-%m-%d"])


@click.command()
@dsn_option
@click.option("--since", required=True, type=_DAY, help="First day of the period (UTC).")
@click.option("--until", type=_DAY, help="Day after the period (UTC) [default: tomorrow].")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV instead of a table.")
def report(dsn: str, since: datetime, until: datetime | None, as_csv: bool) -> None:
    """Disclosures per agency, purpose and legal basis since --since: how many, about how
    many people, which topics, and which sensitive personal fields."""
    start = since.replace(tzinfo=UTC)
    end = (until or datetime.now(UTC) + timedelta(days=1)).replace(
        hour=0, minute=0, second=0, microsecond=0, tzinfo=UTC
    )
    sensitive = sensitive_fields(load_contracts().values())
    with reaching_store(), snapshot(dsn) as conn:
        require_store(conn)
        rows = disclosure_report(conn, start, end, sensitive)
    if as_csv:
        _print_csv(rows)
    else:
        _print_table(rows, start, end)


def _print_csv(rows: list[ReportRow]) -> None:
    columns = ["agency", "purpose", "legal_basis", "disclosures", "people", "topics"]
    writer = csv.DictWriter(sys.stdout, fieldnames=[*columns, "sensitive_fields"])
    writer.writeheader()
    for row in rows:
        writer.writerow(row.as_dict())


def _print_table(rows: list[ReportRow], start: datetime, end: datetime) -> None:
    console = Console()
    period = f"{start.date().isoformat()} to {(end - timedelta(days=1)).date().isoformat()}"
    if not rows:
        console.print(f"no disclosure recorded from {period}")
        return
    table = Table(title=f"disclosures from {period}")
    for column in ("agency", "purpose", "legal basis", "disclosures", "people", "topics"):
        table.add_column(column)
    table.add_column("sensitive fields disclosed")
    for row in rows:
        d = row.as_dict()
        table.add_row(*(str(d[k]) for k in d))
    console.print(table)
