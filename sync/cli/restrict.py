"""``govsync restrict``: the register of data subjects' objections and withdrawn consents.

A restriction stops every subscription on consent or legitimate interest (of one agency, or of
all) from carrying the person's rows: the processors withhold them from then on and remove
those the replicas hold. Subscriptions on other legal bases are not affected. Each addition
and removal is logged in the register with who made it, when and why.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click
import psycopg

from sync.audit.restrictions import EVERY_AGENCY, Kind, Restriction, add, listed, remove
from sync.cli.audit import dsn_option, reaching_store, require_store

T = TypeVar("T")
KINDS = {"objection": Kind.OBJECTION, "withdrawn-consent": Kind.WITHDRAWN_CONSENT}

agency_option = click.option(
    "--agency",
    default=EVERY_AGENCY,
    show_default=True,
    help="The agency the restriction applies to (* for every agency).",
)
reason_option = click.option(
    "--reason",
    required=True,
    help="Why, as the data protection officer records it (the request's reference).",
)


@click.group()
def restrict() -> None:
    """The data subjects' restrictions: objections and withdrawn consents (Law 91/2025/QH15)."""


@restrict.command("add")
@click.argument("personal_id")
@agency_option
@click.option(
    "--kind",
    type=click.Choice(sorted(KINDS)),
    default="withdrawn-consent",
    show_default=True,
    help="An objection to processing, or consent withdrawn.",
)
@reason_option
@dsn_option
def add_command(personal_id: str, agency: str, kind: str, reason: str, dsn: str) -> None:
    """Stop the consent and legitimate-interest subscriptions (of --agency) from carrying
    PERSONAL_ID's rows; the processors remove those their replicas hold within seconds."""
    with _register(dsn) as conn:
        added = _checked(lambda: add(conn, personal_id, agency, KINDS[kind], reason))
    where = "every agency" if agency == EVERY_AGENCY else f"agency {agency}"
    if added:
        click.echo(f"restricted: {personal_id} for {where} ({KINDS[kind].value})")
    else:
        click.echo(f"already restricted: {personal_id} for {where}; nothing changed")


@restrict.command("remove")
@click.argument("personal_id")
@agency_option
@reason_option
@dsn_option
def remove_command(personal_id: str, agency: str, reason: str, dsn: str) -> None:
    """Lift a restriction. The person's rows return to the replicas with their next change at
    the source, or at once with `govsync snapshot` of the table."""
    with _register(dsn) as conn:
        removed = _checked(lambda: remove(conn, personal_id, agency, reason))
    if not removed:
        raise click.ClickException(f"no restriction of {personal_id} for {agency} to remove")
    click.echo(f"lifted: {personal_id} for {agency}")


@restrict.command("list")
@click.argument("personal_id", required=False)
@click.option("--agency", help="Only restrictions that apply to this agency.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@dsn_option
def list_command(personal_id: str | None, agency: str | None, as_json: bool, dsn: str) -> None:
    """The restrictions in force (of PERSONAL_ID, if given). Prints personal ids: for the data
    protection officer."""
    with _register(dsn) as conn:
        found = _checked(lambda: listed(conn, personal_id, agency))
    if as_json:
        click.echo(json.dumps([r.as_dict() for r in found], indent=2, ensure_ascii=False))
        return
    if not found:
        click.echo("no restriction in force")
    for r in found:
        click.echo(_line(r))


def _line(r: Restriction) -> str:
    when = r.added_at.strftime("%Y-%m-%d %H:%M")
    return f"{r.personal_id}  {r.agency:<8} {r.kind.value:<17} {when}  {r.added_by}: {r.reason}"


@contextmanager
def _register(dsn: str) -> Iterator[psycopg.Connection[Any]]:
    """The audit store, or a clear error when it cannot be reached or is not there."""
    with reaching_store(), psycopg.connect(dsn, autocommit=True) as conn:
        require_store(conn)
        yield conn


def _checked(action: Callable[[], T]) -> T:
    try:
        return action()
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    except psycopg.errors.UndefinedTable:
        raise click.ClickException(
            "the audit store has no restrictions register yet: run `govsync audit init`"
        ) from None
    except psycopg.errors.InsufficientPrivilege as exc:
        raise click.ClickException(
            f"not allowed: {exc}; the register is kept by the data protection officer's role"
        ) from None
