"""``govsync dlq list`` and ``govsync dlq replay``: an agency's dead letters, and replaying
them once their cause is fixed. Configured by the processor's own ``GOVSYNC_*`` variables; the
addresses (the brokers, the registry, for a replay the agency's replica, the federation file
and its hash keys) come instead from the deployment ``govsync --federation FILE`` names, or
from the embedded stack's ``stack.json`` in ``--data-dir`` when there is one."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click
from pydantic import ValidationError
from pydantic_settings import BaseSettings
from rich.console import Console
from rich.table import Table

from sync.cli.options import data_dir_option, described, stack_description
from sync.config import DeadLetterSettings, ProcessorSettings
from sync.errors import ConfigError, GovsyncError
from sync.kafka.deadletter import dead_letter_topic
from sync.processor.dlq import Coordinates, Letter, read_letters
from sync.processor.replay import Replayed, replay, select

S = TypeVar("S", bound=BaseSettings)

agency_argument = click.argument("agency", required=False)
agency_option = click.option(
    "--agency", "agency_option", help="The subscribing agency (or GOVSYNC_AGENCY)."
)


@click.group()
def dlq() -> None:
    """Dead letters: events a processor could not apply, and their replay."""


@dlq.command("list")
@agency_argument
@agency_option
@data_dir_option
@click.option("--all", "show_all", is_flag=True, help="Show replayed letters too.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def list_letters(
    agency: str | None, agency_option: str | None, data_dir: Path, show_all: bool, as_json: bool
) -> None:
    """The agency's dead letters, read from its dead-letter topic: where each original event
    is, why it was dead-lettered, and whether it is open, replayed or failed again."""
    settings = _settings(DeadLetterSettings, agency, agency_option, data_dir)
    letters = _letters(settings)
    shown = [x for x in letters if show_all or x.unresolved]
    if as_json:
        click.echo(json.dumps([x.as_dict() for x in shown], indent=2))
        return
    _print_letters(settings.agency, shown, len(letters) - len(shown))


@dlq.command("replay")
@agency_argument
@agency_option
@data_dir_option
@click.option(
    "--offset",
    "offsets",
    multiple=True,
    metavar="TOPIC/PARTITION/OFFSET",
    help="Replay only this letter (repeatable).",
)
@click.option("--reason", default="", help="Replay only letters of this reason.")
@click.option("--dry-run", is_flag=True, help="Show what would be replayed; change nothing.")
@click.option(
    "--timeout", default=120.0, show_default=True, help="Seconds a batch may wait for the replica."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def replay_letters(
    agency: str | None,
    agency_option: str | None,
    data_dir: Path,
    offsets: tuple[str, ...],
    reason: str,
    dry_run: bool,
    timeout: float,
    as_json: bool,
) -> None:
    """Apply the agency's open dead-lettered events again, from their original records, through
    the processor's own decode, policy and apply. Exits 1 if any failed again or is gone."""
    settings = _settings(ProcessorSettings, agency, agency_option, data_dir)
    try:
        places = [Coordinates.parse(o) for o in offsets]
        chosen = select(_letters(settings), places, reason)
        results = asyncio.run(replay(settings, chosen, dry_run, timeout)) if chosen else []
    except (GovsyncError, ConnectionError) as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps([_replayed_dict(r) for r in results], indent=2))
    else:
        _print_replayed(settings.agency, results, dry_run)
    sys.exit(0 if all(r.outcome.ok for r in results) else 1)


def _settings(model: type[S], agency: str | None, agency_option: str | None, data_dir: Path) -> S:
    if agency and agency_option and agency != agency_option:
        raise click.UsageError(f"two agencies given: {agency} and {agency_option}")
    chosen = agency or agency_option
    given: dict[str, Any] = {"agency": chosen} if chosen else {}  # else GOVSYNC_AGENCY
    given |= _described(model, chosen, data_dir)
    try:
        return model(**given)
    except ValidationError as exc:
        missing = [
            "GOVSYNC_" + str(e["loc"][0]).upper() for e in exc.errors() if e["type"] == "missing"
        ]
        if missing:
            raise click.UsageError(f"set {', '.join(missing)} (as for the processor)") from exc
        raise click.UsageError(str(exc)) from exc


def _described(model: type[S], agency: str | None, data_dir: Path) -> dict[str, Any]:
    """The addresses a described deployment gives (none without a description)."""
    if not described(data_dir):
        return {}
    try:
        description = stack_description(data_dir)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    given: dict[str, Any] = {
        "bootstrap": description.bootstrap,
        "registry_url": description.registry_url,
    }
    if model is ProcessorSettings and agency:
        try:
            given["replica_dsn"] = description.database(agency, "replica").dsn
        except ConfigError as exc:
            raise click.UsageError(str(exc)) from None
        if description.manifest:
            given["manifest"] = description.manifest
        if description.hash_keys_file:
            given["hash_keys_file"] = description.hash_keys_file
        writers = [
            d for d in description.databases if (d.agency, d.role) == (agency, "audit-writer")
        ]
        if writers:  # a replayed record is a disclosure like any other
            given["audit_dsn"] = writers[0].dsn
    return given


def _letters(settings: DeadLetterSettings | ProcessorSettings) -> list[Letter]:
    topic = dead_letter_topic(settings.topic_prefix, settings.agency)
    try:
        return read_letters(settings.client_config(), topic)
    except (GovsyncError, ConnectionError) as exc:
        raise click.ClickException(str(exc)) from exc


def _time(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _print_letters(agency: str, letters: Sequence[Letter], hidden: int) -> None:
    console = Console()
    if not letters:
        console.print(f"no {'unresolved ' if hidden else ''}dead letters for {agency}")
        return
    table = Table(title=f"dead letters of {agency}")
    for column in ("original", "reason", "error", "dead-lettered", "event id", "status"):
        table.add_column(column, overflow="fold")
    for x in letters:
        style = {"open": "[yellow]", "replayed": "[green]"}.get(str(x.status), "[red]")
        times = f" ({x.letters}x)" if x.letters > 1 else ""
        table.add_row(
            str(x.original),
            x.reason,
            x.error,
            _time(x.first_ts_ms) + times,
            x.event_id,
            style + str(x.status),
        )
    console.print(table)
    if hidden:
        console.print(f"{hidden} replayed letters not shown (--all shows them)")


def _replayed_dict(r: Replayed) -> dict[str, object]:
    return {**r.letter.as_dict(), "outcome": str(r.outcome), "detail": r.detail}


def _print_replayed(agency: str, results: Sequence[Replayed], dry_run: bool) -> None:
    console = Console()
    if not results:
        console.print(f"no unresolved dead letters to replay for {agency}")
        return
    table = Table(title=f"replay of {agency}'s dead letters{' (dry run)' if dry_run else ''}")
    for column in ("original", "reason", "outcome", "detail"):
        table.add_column(column, overflow="fold")
    for r in sorted(results, key=lambda r: str(r.letter.original)):
        style = "[green]" if r.outcome.ok else "[red]"
        table.add_row(str(r.letter.original), r.letter.reason, style + str(r.outcome), r.detail)
    console.print(table)
    counts: dict[str, int] = {}
    for r in results:
        counts[str(r.outcome)] = counts.get(str(r.outcome), 0) + 1
    console.print(", ".join(f"{n} {outcome}" for outcome, n in counts.items()))
