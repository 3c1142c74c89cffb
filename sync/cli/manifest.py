"""``govsync manifest``: check a federation manifest as the processor loads it, and preview what
an agency would receive. The checks are :func:`sync.policy.load_manifest`'s; the preview's
rows come from :mod:`sync.cli.manifest_preview`."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from sync.cli.manifest_preview import SubscriptionPreview, preview_agency
from sync.cli.options import data_dir_option
from sync.contracts import Contract, default_schemas_dir, load_contracts
from sync.errors import ConfigError, ContractError
from sync.policy import Hash, Manifest, ManifestError, load_manifest, read_hash_keys
from sync.policy.transforms import secret_for
from sync.stack.description import StackDescription
from sync.temporal import FarValue

Problem = tuple[str, str]

schemas_dir_option = click.option(
    "--schemas-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Contracts directory the manifest refers to. "
    "[default: GOVSYNC_SCHEMAS_DIR, else the repository's schemas/avro]",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


@click.group()
def manifest() -> None:
    """Check a federation manifest, and preview what an agency would receive."""


@manifest.command("check")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@schemas_dir_option
@click.option(
    "--hash-keys-file",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="GOVSYNC_HASH_KEYS_FILE",
    show_envvar=True,
    help="The secrets of the keyed hashes; with it, every hash key must have a secret.",
)
@json_option
def check(file: Path, schemas_dir: Path | None, hash_keys_file: Path | None, as_json: bool) -> None:
    """Check FILE as a processor does when it loads it; exit 1 listing every problem.

    The YAML's structure (no tags beyond YAML's core schema, anchors, merge keys or repeated
    keys), each entry's fields, agencies and topics against each other and the contracts,
    allowed fields, transforms and row filters against the contracts, per-agency hash keys,
    and what each subscription discloses (filter_only, sensitive_fields, mask lengths,
    purposes). Each problem is printed with the file, the path inside it and the reason.
    """
    found: Manifest | None = None
    try:
        found = load_manifest(file, _contracts(schemas_dir))
        problems = _secret_problems(found, hash_keys_file) if hash_keys_file else []
    except ManifestError as exc:
        problems = list(exc.problems)
    if as_json:
        out = {
            "file": str(file),
            "ok": not problems,
            "problems": [{"file": str(file), "path": p, "reason": r} for p, r in problems],
        }
        click.echo(json.dumps(out, indent=2, ensure_ascii=False))
    else:
        for path, reason in problems:
            click.echo(f"{file}: {path}: {reason}")
        click.echo(_check_summary(file, found, problems))
    sys.exit(1 if problems else 0)


@manifest.command("preview")
@click.argument("agency")
@click.option(
    "--sample",
    type=click.IntRange(min=0, max=1000),
    metavar="N",
    default=5,
    show_default=True,
    help="Source rows to show per subscription.",
)
@data_dir_option
@click.option(
    "--manifest",
    "manifest_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Federation manifest [default: the stack's, from stack.json].",
)
@schemas_dir_option
@json_option
def preview(
    agency: str,
    sample: int,
    data_dir: Path,
    manifest_file: Path | None,
    schemas_dir: Path | None,
    as_json: bool,
) -> None:
    """Show what AGENCY would receive: per subscription, the projected schema and a sample of
    real rows of the stack's source databases, projected exactly as the processor projects
    them.

    Only the fields the agency receives are shown, transformed as it receives them (hashed,
    masked, a year), and only rows its row filter lets through. Exit 1 when a subscription
    cannot be previewed.
    """
    description = _description(data_dir)
    contracts = _contracts(schemas_dir)
    federation = _manifest(manifest_file or description.manifest, contracts)
    if not federation.subscriptions_of(agency):
        known = ", ".join(sorted({s.agency for s in federation.subscriptions}))
        raise click.UsageError(f"agency {agency!r} subscribes to nothing; subscribers: {known}")
    try:
        secrets = read_hash_keys(description.hash_keys_file)
    except (OSError, ValueError, AttributeError) as exc:
        raise click.ClickException(f"cannot read the stack's hash keys: {exc}") from None

    def source_dsn(source: str) -> str:
        return description.database(source, "source").dsn

    previews = preview_agency(federation, contracts, secrets, source_dsn, agency, sample)
    if as_json:
        out = {"agency": agency, "subscriptions": [p.to_json(_json_value) for p in previews]}
        click.echo(json.dumps(out, indent=2, ensure_ascii=False))
    else:
        console = Console()
        for item in previews:
            _print_preview(console, agency, item)
    sys.exit(1 if any(p.problem for p in previews) else 0)


def _contracts(schemas_dir: Path | None) -> dict[str, Contract]:
    try:
        return load_contracts(schemas_dir or default_schemas_dir())
    except ContractError as exc:
        raise click.ClickException(f"cannot load the contracts: {exc}") from None


def _description(data_dir: Path) -> StackDescription:
    try:
        return StackDescription.read(data_dir)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None


def _manifest(path: str | Path | None, contracts: Mapping[str, Contract]) -> Manifest:
    if path is None:
        raise click.UsageError("the stack has no manifest: name one with --manifest")
    try:
        return load_manifest(path, contracts)
    except ManifestError as exc:
        lines = "\n".join(f"{exc.file}: {p}: {r}" for p, r in exc.problems)
        raise click.ClickException(
            f"the manifest has problems (govsync manifest check):\n{lines}"
        ) from None


def _secret_problems(federation: Manifest, hash_keys_file: Path) -> list[Problem]:
    """A problem for every hash key without a usable secret, as a processor would refuse it."""
    try:
        secrets = read_hash_keys(hash_keys_file)
    except (OSError, ValueError, AttributeError) as exc:
        return [("(hash keys)", f"cannot read {hash_keys_file}: {exc}")]
    problems = []
    for i, subscription in enumerate(federation.subscriptions):
        for name, transform in subscription.transforms.items():
            if isinstance(transform, Hash):
                try:
                    secret_for(transform.key, secrets)
                except ConfigError as exc:
                    problems.append((f"subscriptions[{i}].transforms.{name}.key", str(exc)))
    return problems


def _check_summary(file: Path, found: Manifest | None, problems: list[Problem]) -> str:
    if problems:
        return f"manifest check: {len(problems)} problem(s) in {file}"
    assert found is not None
    return (
        f"manifest check: {file}: {len(found.agencies)} agencies, {len(found.sources)} sources, "
        f"{len(found.subscriptions)} subscriptions: no problems"
    )


def _print_preview(console: Console, agency: str, item: SubscriptionPreview) -> None:
    console.rule(Text(f"{agency} receives {item.topic}", style="bold"))
    console.print(f"purpose: {item.purpose}", markup=False, highlight=False)
    console.print(f"legal basis: {item.legal_basis}", markup=False, highlight=False)
    console.print(f"rows: {item.row_filter or 'all'}", markup=False, highlight=False)
    schema = Table(title="fields received", title_justify="left")
    for column in ("field", "type", "transform", "classification", "doc"):
        schema.add_column(column, overflow="fold")
    for f in item.fields:
        schema.add_row(*(Text(v) for v in (f.name, f.type, f.transform, f.classification, f.doc)))
    console.print(schema)
    if item.problem:
        console.print(Text(f"no rows: {item.problem}", style="red"))
        return
    rows = Table(title=f"{len(item.rows)} sample row(s) as received", title_justify="left")
    for f in item.fields:
        rows.add_column(f.name, overflow="fold")
    for row in item.rows:
        rows.add_row(*(_shown(row[f.name]) for f in item.fields))
    console.print(rows)


def _shown(value: Any) -> Text:
    if value is None:
        return Text("null", style="dim")
    return Text(str(_json_value(value)))


def _json_value(value: Any) -> Any:
    """A received value as JSON shows it: dates ISO 8601, decimals and far dates as text,
    bytes as hex."""
    if isinstance(value, FarValue):
        return str(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return "\\x" + value.hex()
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    if isinstance(value, bool | int | float | str):
        return value
    return str(value)
