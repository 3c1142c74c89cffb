"""``govsync schemas scaffold``: a new source table's contracts from the source's catalog. The
mapping and the placeholders are in :mod:`sync.contracts.scaffold`; this module finds the
source, reads options and prints."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import click
import psycopg

from connectors.postgres.catalog import describe_table
from sync.cli.options import data_dir_option
from sync.contracts.loader import default_schemas_dir
from sync.contracts.scaffold import Scaffold, scaffold_contract, write_scaffold
from sync.errors import ConfigError
from sync.stack.description import StackDescription


@click.command("scaffold")
@click.argument("tables", nargs=-1, required=True, metavar="TABLE...")
@click.option(
    "--source",
    required=True,
    metavar="AGENCY",
    help="The source, as stack.json names its database (population, land, ...). It is also "
    "the contracts' domain: topic <source>.<table>, namespace vn.gov.<source>.",
)
@data_dir_option
@click.option(
    "--dsn",
    envvar="GOVSYNC_SOURCE_DSN",
    show_envvar=True,
    help="libpq connection string of the source database [default: the source's in stack.json].",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Directory the contracts are written to [default: <schemas dir>/<source>, the schemas "
    "dir being GOVSYNC_SCHEMAS_DIR, else the repository's schemas/avro].",
)
@click.option(
    "--exclude",
    multiple=True,
    metavar="TABLE.COLUMN",
    help="Leave a column out of the contract, so it stays unpublished. Repeatable.",
)
@click.option("--force", is_flag=True, help="Overwrite contract files that already exist.")
def scaffold(
    tables: tuple[str, ...],
    source: str,
    data_dir: Path,
    dsn: str | None,
    out: Path | None,
    exclude: tuple[str, ...],
    force: bool,
) -> None:
    """Write the key and value contracts of the source's TABLEs from its catalog.

    Each column becomes a field through the contracts' own SQL -> Avro type mapping; a
    nullable column becomes ["null", T] with default null, and the key is the table's primary
    key (else its replica identity index). What the catalog cannot tell is written as a
    "TODO:" placeholder: every doc, every classification and, on fields whose name suggests a
    personal identifier, govsync.subject. `govsync schemas lint` refuses the contracts until
    a person has filled each one.

    Nothing is written when a table cannot be scaffolded (a column type without an Avro
    mapping, no primary key) or a file exists and --force is not given.
    """
    directory = out or default_schemas_dir() / source
    excluded = _excluded(exclude, tables)
    source_dsn = dsn or _described_source(data_dir, source)
    scaffolds, problems = _scaffolds(source_dsn, source, tables, excluded)
    for problem in problems:
        click.echo(problem, err=True)
    if problems:
        raise click.ClickException(f"nothing written: {len(problems)} problem(s)")
    existing = [path for s in scaffolds for path in s.files(directory) if path.exists()]
    if existing and not force:
        for path in existing:
            click.echo(f"{path} already exists", err=True)
        raise click.ClickException("nothing written: --force overwrites existing contracts")
    for item in scaffolds:
        for path in write_scaffold(item, directory, force=force):
            click.echo(f"wrote {path}")
    click.echo(
        "Next: replace every TODO: placeholder (docs, classifications, govsync.subject), "
        "then run govsync schemas lint."
    )


def _described_source(data_dir: Path, source: str) -> str:
    try:
        return StackDescription.read(data_dir).database(source, "source").dsn
    except ConfigError as exc:
        raise click.UsageError(f"no --dsn given and {exc}") from None


def _excluded(exclude: Sequence[str], tables: Sequence[str]) -> dict[str, set[str]]:
    """``--exclude`` values by table."""
    excluded: dict[str, set[str]] = {}
    for item in exclude:
        table, dot, column = item.partition(".")
        if not dot or not column or table not in tables:
            raise click.BadParameter(
                f"{item!r} is not TABLE.COLUMN of a table being scaffolded", param_hint="--exclude"
            )
        excluded.setdefault(table, set()).add(column)
    return excluded


def _scaffolds(
    dsn: str, source: str, tables: Sequence[str], excluded: dict[str, set[str]]
) -> tuple[list[Scaffold], list[str]]:
    """Each table's contract, and every problem found in any of them."""
    scaffolds: list[Scaffold] = []
    problems: list[str] = []
    try:
        with psycopg.connect(dsn) as conn:
            for table in tables:
                try:
                    described = describe_table(conn, table)
                except ConfigError as exc:
                    problems.append(f"{table}: {exc}")
                    continue
                item = scaffold_contract(described, source, exclude=excluded.get(table, ()))
                scaffolds.append(item)
                problems += item.problems
    except psycopg.OperationalError as exc:
        raise click.ClickException(f"cannot connect to the source database: {exc}") from None
    return scaffolds, problems
