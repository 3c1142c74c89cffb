"""``govsync registry serve``: the Confluent-compatible schema registry."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import click

from sync.config import RegistrySettings

ROLES = ("admin", "readonly")


@dataclass(frozen=True, slots=True)
class RegistryUser:
    name: str
    password: str
    role: str

    def __repr__(self) -> str:  # never show the password, not even in a traceback
        return f"RegistryUser(name={self.name!r}, role={self.role!r})"


def read_users(path: Path) -> list[RegistryUser]:
    """The users in ``path``: one ``name:password:role`` per line.

    The name is everything before the first colon and the role everything after the last, so
    a password may contain colons. Blank lines and lines starting with ``#`` are skipped.
    Errors name the line, never its password.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise click.BadParameter(f"cannot read {path}: {exc.strerror}") from None
    users: dict[str, RegistryUser] = {}
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, _, rest = line.partition(":")
        password, _, role = rest.rpartition(":")
        where = f"{path}, line {number}"
        if not name or not password or not role:
            raise click.BadParameter(f"{where}: expected name:password:role")
        if role not in ROLES:
            raise click.BadParameter(f"{where}: role {role!r} is not one of {', '.join(ROLES)}")
        if name in users:
            raise click.BadParameter(f"{where}: user {name!r} appears twice")
        users[name] = RegistryUser(name, password, role)
    if not users:
        raise click.BadParameter(f"{path}: no users (expected name:password:role lines)")
    return list(users.values())


@click.group()
def registry() -> None:
    """The schema registry."""


@registry.command("serve")
@click.option(
    "--dsn",
    envvar="GOVSYNC_REGISTRY_DSN",
    required=True,
    help="PostgreSQL store (libpq connection string).",
)
@click.option("--host", envvar="GOVSYNC_HOST", default="127.0.0.1", show_default=True)
@click.option("--port", envvar="GOVSYNC_PORT", default=8081, show_default=True, type=int)
@click.option(
    "--users",
    "users_file",
    envvar="GOVSYNC_REGISTRY_USERS",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Turn on HTTP basic auth with the users in FILE, one 'name:password:role' per line "
    "(role: admin or readonly; '#' starts a comment; a password may contain ':'). Every API "
    "route then needs credentials and /metrics stays open; a readonly user gets 403 on "
    "anything that writes. Keep the file readable only by the registry's user. "
    "[env: GOVSYNC_REGISTRY_USERS]",
)
def serve(dsn: str, host: str, port: int, users_file: Path | None) -> None:
    """Serve the registry until SIGTERM or SIGINT."""
    from sync.registry.server import serve as serve_registry

    settings = RegistrySettings(registry_dsn=dsn, host=host, port=port)
    users = read_users(users_file) if users_file else []
    credentials = {u.name: u.password for u in users} or None
    readonly = frozenset(u.name for u in users if u.role == "readonly")
    serve_registry(settings, users=credentials, readonly=readonly)
