"""``govsync schemas``: contract review tooling, for reviewers and for a contract pull
request's CI. The rules are in :mod:`sync.contracts.lint` and :mod:`sync.contracts.review`;
this module reads options and prints."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click
from confluent_kafka.schema_registry import SchemaRegistryClient, SchemaRegistryError

from sync.contracts.loader import Contract, default_schemas_dir, load_contracts
from sync.contracts.review import (
    Outcome,
    Part,
    Registration,
    Subject,
    SubjectCheck,
    SubjectReview,
    check_subject,
    find_subject,
    register,
    review,
    subjects_of,
)
from sync.errors import ContractError
from sync.policy import FEDERATION_FILE, ManifestError, load_manifest
from sync.policy.affected import Reach, reach

F = TypeVar("F", bound=Callable[..., Any])


def _schemas_dir_option(command: F) -> F:
    return click.option(
        "--schemas-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Contracts directory (<domain>/<entity>.avsc). "
        "[default: GOVSYNC_SCHEMAS_DIR, else the repository's schemas/avro]",
    )(command)


def _json_option(command: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")(command)


def _registry_options(command: F) -> F:
    options = [
        click.option(
            "--registry-url",
            envvar="GOVSYNC_REGISTRY_URL",
            required=True,
            help="Confluent-compatible schema registry URL. [env: GOVSYNC_REGISTRY_URL]",
        ),
        click.option(
            "--basic-auth",
            envvar="GOVSYNC_REGISTRY_BASIC_AUTH",
            default="",
            metavar="USER:PASSWORD",
            help="Credentials for a registry with HTTP basic auth. "
            "[env: GOVSYNC_REGISTRY_BASIC_AUTH]",
        ),
        click.option(
            "--topic-prefix",
            envvar="GOVSYNC_TOPIC_PREFIX",
            default="",
            help="Prefix of every topic and subject, as the connectors use it. "
            "[env: GOVSYNC_TOPIC_PREFIX]",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@click.group()
def schemas() -> None:
    """Write and review Avro contracts: scaffolding from a source table, house rules, changes
    against the registry, and registration."""


@schemas.command("lint")
@_schemas_dir_option
@_json_option
def lint_command(schemas_dir: Path | None, as_json: bool) -> None:
    """Check the house rules on every contract; exit 1 listing every failure.

    Each failure names its file and field: namespace vn.gov.<domain> matching the directory,
    a doc on the record and every field, a classification on every field (public, internal,
    personal, sensitive_personal), well-formed logical types, nullable fields as ["null", T]
    with default null, lowercase snake_case names that are safe SQL identifiers, key
    fields present in the row with the same, non-null type, no "TODO:" placeholder left by
    `schemas scaffold`, and govsync.subject (where a field has it) one of personal_id,
    tax_code, insurance_number.
    """
    from sync.contracts.lint import lint

    report = lint(schemas_dir or default_schemas_dir())
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        for issue in report.issues:
            click.echo(str(issue))
        click.echo(report.summary())
    sys.exit(0 if report.ok else 1)


@schemas.command("diff")
@click.argument("subject")
@_registry_options
@_schemas_dir_option
@click.option(
    "--federation",
    "federation_file",
    envvar="GOVSYNC_FEDERATION",
    show_envvar=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=FEDERATION_FILE,
    show_default="the repository's federation.yaml",
    help="The federation whose subscriptions each changed field reaches.",
)
@_json_option
def diff_command(
    subject: str,
    registry_url: str,
    basic_auth: str,
    topic_prefix: str,
    schemas_dir: Path | None,
    federation_file: Path,
    as_json: bool,
) -> None:
    """Compare the local contract of SUBJECT with its newest registered version.

    SUBJECT is <topic>-value (the change-event envelope around the row schema) or <topic>-key
    (the key schema). Prints each change in words, the agencies each changed field reaches
    (receives, hashed, masked, or filters on) under --federation, then whether every
    compatibility level would accept the local contract (transitive levels against every
    registered version), with the reasons from Apache Avro's checker.
    """
    contracts = _contracts(schemas_dir)
    try:
        target = find_subject(contracts, subject, topic_prefix)
    except ContractError as exc:
        raise click.ClickException(str(exc)) from None
    with _client(registry_url, basic_auth) as client:
        result = review(client, target.name, target.schema)
    contract = target.contract
    reached: list[Reach] | str
    try:
        manifest = load_manifest(federation_file, contracts)
        reached = reach(manifest, contract.topic, contract.field_names, result.changes)
    except ManifestError as exc:
        reached = f"not shown: {exc}"
    if as_json:
        shown = reached if isinstance(reached, str) else [r.to_json() for r in reached]
        click.echo(json.dumps(result.to_json() | {"reach": shown}, indent=2))
    else:
        _print_review(target, result)
        _print_reach(federation_file, reached)


def _print_reach(federation_file: Path, reached: list[Reach] | str) -> None:
    if isinstance(reached, str):
        click.echo(f"reaches: {reached}")
        return
    if not reached:
        return
    click.echo(f"reaches (subscriptions in {federation_file.name}):")
    for item in reached:
        who = ", ".join(str(r) for r in item.receivers) or "no agency receives or filters on it"
        click.echo(f"  {item.field}: {who}")


@schemas.command("check")
@_registry_options
@_schemas_dir_option
@_json_option
def check_command(
    registry_url: str, basic_auth: str, topic_prefix: str, schemas_dir: Path | None, as_json: bool
) -> None:
    """Exit 1 when a contract breaks a house rule or the registry would refuse it.

    Every contract's key and value subjects are tested with the registry's compatibility
    endpoint under the subject's configured level (a transitive level against every
    registered version). A subject not registered yet passes. This is what a contract pull
    request's CI runs.
    """
    from sync.contracts.lint import lint

    root = schemas_dir or default_schemas_dir()
    report = lint(root)
    checks: list[SubjectCheck] = []
    load_error = ""
    try:
        contracts = load_contracts(root)
    except ContractError as exc:
        contracts, load_error = {}, str(exc)
    with _client(registry_url, basic_auth) as client:
        checks = [check_subject(client, s) for s in subjects_of(contracts, topic_prefix)]
    rejected = [c for c in checks if c.outcome is Outcome.REJECTED]
    ok = report.ok and not load_error and not rejected
    if as_json:
        out = {
            "ok": ok,
            "lint": report.to_json(),
            "load_error": load_error,
            "subjects": [c.to_json() for c in checks],
        }
        click.echo(json.dumps(out, indent=2))
    else:
        for issue in report.issues:
            click.echo(str(issue))
        if load_error:
            click.echo(f"cannot load the contracts: {load_error}")
        for item in checks:
            _print_check(item)
        counts = {o: sum(c.outcome is o for c in checks) for o in Outcome}
        click.echo(
            f"schemas check: accepted {counts[Outcome.ACCEPTED]}, new {counts[Outcome.NEW]}, "
            f"rejected {counts[Outcome.REJECTED]}; "
            f"lint: {'no problems' if report.ok else f'{len(report.issues)} problems'}"
        )
    sys.exit(0 if ok else 1)


@schemas.command("register")
@_registry_options
@_schemas_dir_option
@_json_option
def register_command(
    registry_url: str, basic_auth: str, topic_prefix: str, schemas_dir: Path | None, as_json: bool
) -> None:
    """Register every contract's key and value subjects; idempotent.

    Each subject's compatibility is set from the contract's govsync.compatibility attribute
    (FULL_TRANSITIVE by default) before its schema is registered. Contracts that break a
    house rule are not registered. Prints the schema id and version of every subject.
    """
    from sync.contracts.lint import lint

    root = schemas_dir or default_schemas_dir()
    report = lint(root)
    if not report.ok:
        for issue in report.issues:
            click.echo(str(issue), err=True)
        raise click.ClickException(f"nothing registered: {report.summary()}")
    contracts = _contracts(root)
    with _client(registry_url, basic_auth) as client:
        done = [register(client, s) for s in subjects_of(contracts, topic_prefix)]
    if as_json:
        click.echo(json.dumps([r.to_json() for r in done], indent=2))
    else:
        for item in done:
            _print_registration(item)
    sys.exit(1 if any(r.error for r in done) else 0)


# -- helpers ---------------------------------------------------------------------------------


def _contracts(schemas_dir: Path | None) -> dict[str, Contract]:
    try:
        return load_contracts(schemas_dir or default_schemas_dir())
    except ContractError as exc:
        raise click.ClickException(str(exc)) from None


@contextmanager
def _client(url: str, basic_auth: str) -> Iterator[SchemaRegistryClient]:
    conf: dict[str, Any] = {"url": url, "timeout": 30}
    if basic_auth:
        conf["basic.auth.user.info"] = basic_auth
    try:
        with SchemaRegistryClient(conf) as client:
            yield client
    except SchemaRegistryError as exc:
        raise click.ClickException(
            f"the registry at {url} answered {exc.http_status_code} "
            f"(error {exc.error_code}): {exc.error_message}"
        ) from None
    except (ContractError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(f"cannot reach the registry at {url}: {exc}") from None
    except Exception as exc:
        # httpx's transport errors do not derive from OSError
        if type(exc).__module__.startswith(("httpx", "httpcore")):
            raise click.ClickException(f"cannot reach the registry at {url}: {exc}") from None
        raise


def _print_review(target: Subject, result: SubjectReview) -> None:
    what = "the change-event envelope of" if target.part is Part.VALUE else "the key schema of"
    click.echo(f"subject {result.subject}")
    click.echo(f"local:      {what} {target.contract.path}")
    latest = result.history[0] if result.history else None
    if latest is None:
        click.echo("registered: nothing yet; any level accepts a first version")
    else:
        versions = ", ".join(str(v.version) for v in reversed(result.history))
        click.echo(
            f"registered: version {latest.version} (id {latest.schema_id}); versions {versions}"
        )
        if result.identical:
            click.echo(f"changes:    none, the local contract is version {latest.version}")
        elif not result.changes:
            click.echo("changes:    none a reviewer reads (only the schema's spelling differs)")
        else:
            click.echo(f"changes ({len(result.changes)}):")
            for change in result.changes:
                click.echo(f"  {change}")
    click.echo(f"compatibility (the subject is configured {result.configured.value}):")
    width = max(len(v.level.value) for v in result.verdicts)
    for verdict in result.verdicts:
        mark = "  <- configured" if verdict.level is result.configured else ""
        answer = "yes" if verdict.compatible else "no"
        click.echo(f"  {verdict.level.value:<{width}}  {answer}{mark}")
        for reason in verdict.reasons:
            click.echo(f"  {'':<{width}}    {reason}")


def _print_check(item: SubjectCheck) -> None:
    asked = ""
    if item.wanted is not None and item.level is not None and item.wanted is not item.level:
        asked = f" (the contract asks for {item.wanted.value})"
    plural = "s" if len(item.versions) > 1 else ""
    versions = f"version{plural} " + ", ".join(str(v) for v in item.versions)
    if item.outcome is Outcome.NEW:
        click.echo(f"new       {item.subject}: not registered yet")
    elif item.outcome is Outcome.ACCEPTED:
        level = item.level.value if item.level else ""
        click.echo(f"ok        {item.subject}: {level} against {versions}{asked}")
    else:
        level = item.level.value if item.level else ""
        click.echo(f"REJECTED  {item.subject}: {level} against {versions}{asked}")
        for reason in item.reasons:
            click.echo(f"            {reason}")


def _print_registration(item: Registration) -> None:
    if item.error:
        click.echo(f"{item.subject}  REFUSED  {item.error}")
        return
    state = "registered" if item.created else "unchanged"
    click.echo(
        f"{item.subject}  id {item.schema_id}  version {item.version}  {item.level.value}  {state}"
    )
