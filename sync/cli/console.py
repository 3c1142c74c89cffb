"""``govsync console``: the web console for schema reviewers and the data protection officer,
and ``govsync console user``, which makes a line of its users file."""

from __future__ import annotations

from pathlib import Path

import click
from pydantic import ValidationError

from sync.console.users import Role, UsersFileError, user_line


@click.group(invoke_without_command=True)
@click.option("--host", envvar="GOVSYNC_HOST", default="127.0.0.1", show_default=True)
@click.option("--port", envvar="GOVSYNC_PORT", default=8082, show_default=True, type=int)
@click.option(
    "--users",
    "users_file",
    envvar="GOVSYNC_CONSOLE_USERS",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The console's users, one 'name:hash:role' per line (roles: reviewer, dpo; "
    "`govsync console user` makes a line). [env: GOVSYNC_CONSOLE_USERS]",
)
@click.pass_context
def console(ctx: click.Context, host: str, port: int, users_file: Path | None) -> None:
    """Serve the web console until SIGTERM or SIGINT: subjects, versions and reviewed diffs
    from the registry (GOVSYNC_REGISTRY_URL, _USERNAME, _PASSWORD_FILE), the agencies a
    change reaches (GOVSYNC_MANIFEST), and for the dpo role one person's disclosures from
    the audit's reader role (GOVSYNC_AUDIT_DSN)."""
    if ctx.invoked_subcommand is not None:
        return
    if users_file is None:
        raise click.UsageError("give the console's users: --users FILE")
    from sync.console.server import serve
    from sync.console.settings import ConsoleSettings

    try:
        # the registry, the audit and the manifest come from the environment
        settings = ConsoleSettings(  # type: ignore[call-arg]
            host=host, port=port, console_users=users_file
        )
    except ValidationError as exc:
        raise click.UsageError(str(exc)) from None
    try:
        serve(settings)
    except UsersFileError as exc:
        raise click.BadParameter(str(exc), param_hint="--users") from None


@console.command("user")
@click.argument("name")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@click.password_option(help="Asked for when not given (twice, unseen).")
def user(name: str, role: str, password: str) -> None:
    """Print a users file line for NAME: the password's salted scrypt hash, never the
    password."""
    try:
        click.echo(user_line(name, password, Role(role)), nl=False)
    except UsersFileError as exc:
        raise click.BadParameter(str(exc), param_hint="NAME") from None
