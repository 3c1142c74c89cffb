"""``govsync audit``: prove the disclosure audit intact, publish its anchors, and tell a data
subject which agencies received what about them, when and why."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import psycopg
from confluent_kafka import KafkaException

from sync.audit.chain import ChainWalk, Head
from sync.audit.checkpoints import Anchors, read_checkpoint_file, read_checkpoints
from sync.audit.reader import (
    Connection,
    chain_agencies,
    chain_heads,
    disclosures_about,
    snapshot,
    store_exists,
    walk_chain,
)
from sync.audit.roles import allow_reader, allow_writer, create_store
from sync.audit.signing import Checkpoint, TrustedKeys
from sync.audit.timestamp import verify_token
from sync.cli.audit_citizen import entry_dict, print_disclosures, report_identifiers, resolve
from sync.cli.options import data_dir_option, stack_description
from sync.config import AuditSettings
from sync.errors import AuditError, ConfigError


def dsn_option(command: Callable[..., None]) -> Callable[..., None]:
    """``--dsn`` of the audit store; without it, the store of the stack in ``--data-dir``."""
    return _with_dsn(command, pass_data_dir=False)


def dsn_and_data_dir_option(command: Callable[..., None]) -> Callable[..., None]:
    """:func:`dsn_option` for a command that reads more of the deployment: it is given
    ``data_dir`` too."""
    return _with_dsn(command, pass_data_dir=True)


def _with_dsn(command: Callable[..., None], pass_data_dir: bool) -> Callable[..., None]:
    @functools.wraps(command)
    def resolved(*args: Any, dsn: str | None, data_dir: Path, **kwargs: Any) -> None:
        if pass_data_dir:
            kwargs["data_dir"] = data_dir
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
        description = stack_description(data_dir)
    except ConfigError as exc:
        raise click.UsageError(f"no --dsn given and {exc}") from None
    for database in description.databases:
        if database.role == "audit":
            return database.dsn
    raise click.UsageError(f"no --dsn given and the stack in {data_dir} has no audit store")


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
trusted_keys_option = click.option(
    "--trusted-keys",
    envvar="GOVSYNC_AUDIT_TRUSTED_KEYS_FILE",
    show_envvar=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="PEM public keys of the workers whose audit signatures are accepted.",
)


@click.group()
def audit() -> None:
    """The disclosure audit: a hash-chained log of every record applied to a subscriber."""


@audit.command()
@dsn_option
@click.option("--writer", help="An existing login role that may append to --agency's chains.")
@click.option("--agency", "agencies", multiple=True, help="An agency --writer appends for.")
@click.option("--reader", help="An existing login role that may read the whole audit (DPO).")
def init(dsn: str, writer: str | None, agencies: tuple[str, ...], reader: str | None) -> None:
    """Create the audit store, owned by govsync_audit_owner, with its roles and row-level
    security (run as a superuser or the owner's admin; processors never create it)."""
    if agencies and not writer:
        raise click.UsageError("--agency says which chains --writer appends to: give --writer")
    with reaching_store(), psycopg.connect(dsn, autocommit=True) as conn:
        try:
            create_store(conn)
            if writer:
                allow_writer(conn, writer, agencies)
            if reader:
                allow_reader(conn, reader)
        except (psycopg.errors.InsufficientPrivilege, AuditError) as exc:
            raise click.ClickException(f"audit init: {exc}") from None
    click.echo("audit store ready")
    if writer:
        click.echo(f"{writer} may append to the chains of {', '.join(sorted(set(agencies)))}")
    if reader:
        click.echo(f"{reader} may read the audit")


@audit.command()
@dsn_option
@click.option("--agency", "agencies", multiple=True, help="Only this agency's chain (repeat).")
@click.option(
    "--anchor",
    "anchors",
    multiple=True,
    help="AGENCY:SEQ:HASH printed earlier by `govsync audit head`; the chain must pass it.",
)
@trusted_keys_option
@click.option(
    "--bootstrap",
    envvar="GOVSYNC_BOOTSTRAP",
    help="Kafka servers: read the signed checkpoints published there.",
)
@click.option(
    "--checkpoints",
    "checkpoint_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Checkpoints kept elsewhere, one published message (JSON) per line.",
)
@click.option(
    "--tsa-ca",
    envvar="GOVSYNC_AUDIT_TSA_CA_FILE",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="CA of the time-stamping authority: check the checkpoints' time-stamp tokens.",
)
@click.option("--chunk-rows", default=10_000, show_default=True, help="Entries read per chunk.")
@json_option
def verify(
    dsn: str,
    agencies: tuple[str, ...],
    anchors: tuple[str, ...],
    trusted_keys: Path | None,
    bootstrap: str | None,
    checkpoint_file: Path | None,
    tsa_ca: Path | None,
    chunk_rows: int,
    as_json: bool,
) -> None:
    """Walk every chain (or --agency's); exit 1 naming the agency and seq of any break.
    With --trusted-keys every signature is checked and each chain must end signed; with
    --bootstrap or --checkpoints it must still pass every signed checkpoint."""
    keys = _trusted(trusted_keys)
    published = _published(bootstrap, checkpoint_file)
    found = Anchors.of(published, keys)
    for note in found.ignored:
        click.echo(f"note: {note}", err=True)
    anchored = _anchors(anchors)
    for agency, heads in found.heads.items():
        anchored[agency] = {**heads, **anchored.get(agency, {})}
    stamps = _check_stamps(published, keys, tsa_ca)
    with reaching_store(), snapshot(dsn) as conn:
        require_store(conn)
        known = chain_agencies(conn)
        wanted = set(agencies) or set(known) | set(anchored)
        unknown = sorted((set(agencies) | (set(anchored) & wanted)) - set(known))
        names = [a for a in known if a in wanted]
        walks = [walk_chain(conn, a, anchored.get(a), chunk_rows, keys) for a in names]
    conflicts = [c for c in found.conflicts if c.agency in wanted]
    counts = found.counts
    if as_json:
        rows = [_walk_dict(w, keys is not None, counts.get(w.agency, 0)) for w in walks]
        rows += [{"agency": a, "intact": False, "problem": "no audit chain"} for a in unknown]
        rows += [{"agency": c.agency, "intact": False, "problem": str(c)} for c in conflicts]
        rows += [{"checkpoint": s, "intact": False, "problem": s} for s in stamps.broken]
        click.echo(json.dumps(rows, indent=2))
    else:
        for w in walks:
            click.echo(_walk_line(w, keys is not None, counts.get(w.agency, 0)))
        for agency in unknown:
            click.echo(f"BROKEN agency {agency}: no audit chain")
        for conflict in conflicts:
            click.echo(f"BROKEN {conflict}")
        for problem in stamps.broken:
            click.echo(f"BROKEN {problem}")
        if stamps.checked:
            click.echo(f"{stamps.checked} time-stamp token(s) verified")
        if not walks and not unknown:
            click.echo("no audit chains yet")
    intact = not unknown and not conflicts and not stamps.broken
    sys.exit(0 if intact and all(w.problem is None for w in walks) else 1)


@audit.command()
@dsn_option
@json_option
def head(dsn: str, as_json: bool) -> None:
    """Print each chain's head as an anchor (AGENCY:SEQ:HASH) to keep outside this database;
    `verify --anchor` then detects a chain rewritten after it."""
    with reaching_store(), snapshot(dsn) as conn:
        require_store(conn)
        heads = list(chain_heads(conn).values())
    if as_json:
        rows = [{"agency": h.agency, "seq": h.seq, "anchor": str(h)} for h in heads]
        click.echo(json.dumps(rows, indent=2))
    else:
        for h in heads:
            click.echo(str(h))


@audit.command()
@click.argument("personal_id")
@dsn_and_data_dir_option
@click.option(
    "--show-identifiers",
    is_flag=True,
    help="Print the values of the tax codes and insurance numbers linked to PERSONAL_ID.",
)
@json_option
def citizen(
    personal_id: str, dsn: str, data_dir: Path, show_identifiers: bool, as_json: bool
) -> None:
    """Which agencies received what about PERSONAL_ID, when and why (the data subject's
    right to be informed), also under the tax codes and insurance numbers the sources' link
    tables tie to it. Names the fields disclosed and the kind of identifier each entry
    matched; the linked identifiers' values only with --show-identifiers. For the person or
    their authorised handler."""
    identifiers = resolve(data_dir, personal_id)
    with reaching_store(), snapshot(dsn) as conn:
        require_store(conn)
        entries = disclosures_about(conn, identifiers.stored())
    report_identifiers(identifiers, show_identifiers)
    if as_json:
        rows = [entry_dict(e, identifiers, show_identifiers) for e in entries]
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
    else:
        print_disclosures(identifiers, entries, show_identifiers)


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
def reaching_store() -> Iterator[None]:
    try:
        yield
    except psycopg.OperationalError as exc:
        raise click.ClickException(f"cannot reach the audit store: {exc}") from None


def require_store(conn: Connection) -> None:
    if not store_exists(conn):
        raise click.ClickException(
            "no audit store here (schema govsync_audit): check --dsn, or run `govsync audit init`"
        )


def _walk_line(walk: ChainWalk, signed: bool, checkpoints: int) -> str:
    if walk.problem is not None:
        return f"BROKEN {walk.problem}"
    last = walk.last
    pruned = f" after the cut at seq {walk.start.seq}" if walk.start is not None else ""
    checked = (
        f"{walk.signatures} signature(s) checked"
        if signed
        else "signatures NOT checked (no --trusted-keys)"
    )
    return (
        f"agency {walk.agency}: intact, {walk.entries} entries{pruned}, head seq {last.seq} "
        f"sha256 {last.hash.hex()}; {checked}; passes {checkpoints} checkpoint(s)"
    )


def _walk_dict(walk: ChainWalk, signed: bool, checkpoints: int) -> dict[str, object]:
    problem = walk.problem
    return {
        "agency": walk.agency,
        "intact": problem is None,
        "entries": walk.entries,
        "head": str(walk.last),
        "pruned_up_to_seq": None if walk.start is None else walk.start.seq,
        "signatures_checked": signed,
        "signatures": walk.signatures,
        "checkpoints": checkpoints,
        "broken_at_seq": None if problem is None else problem.seq,
        "problem": None if problem is None else problem.reason,
    }


def _trusted(path: Path | None) -> TrustedKeys | None:
    try:
        return None if path is None else TrustedKeys.from_file(path)
    except ConfigError as exc:
        raise click.BadParameter(str(exc), param_hint="--trusted-keys") from None


def _published(bootstrap: str | None, path: Path | None) -> list[Checkpoint]:
    """The checkpoints published to the topic and/or kept in a file."""
    checkpoints: list[Checkpoint] = []
    unreadable = 0
    if bootstrap:
        settings = AuditSettings(bootstrap=bootstrap)
        try:
            found, unreadable = read_checkpoints(
                settings.client_config(), settings.checkpoint_topic
            )
        except (AuditError, KafkaException) as exc:
            raise click.ClickException(f"cannot read the audit checkpoints: {exc}") from None
        checkpoints += found
    if path is not None:
        found, bad = read_checkpoint_file(path)
        checkpoints += found
        unreadable += bad
    if unreadable:
        click.echo(f"note: {unreadable} message(s) that are not checkpoints ignored", err=True)
    return checkpoints


@dataclass
class _Stamps:
    checked: int = 0
    broken: list[str] = field(default_factory=list)


def _check_stamps(
    checkpoints: list[Checkpoint], keys: TrustedKeys | None, ca: Path | None
) -> _Stamps:
    """Each time-stamp token of a trusted checkpoint, checked against the TSA's CA."""
    stamps = _Stamps()
    if ca is None:
        return stamps
    for c in checkpoints:
        if c.timestamp_token is None or (keys is not None and keys.problem(c) is not None):
            continue
        try:
            problem = verify_token(c.timestamp_token, c.statement(), ca)
        except AuditError as exc:
            raise click.ClickException(str(exc)) from None
        if problem is None:
            stamps.checked += 1
        else:
            stamps.broken.append(f"checkpoint {c.agency}:{c.seq}: {problem}")
    return stamps
