"""The embedded federation's registry users: every process authenticates, as in a deployment.

Users are named as on the secure Kafka cluster (:mod:`sync.stack.kafka.acls`). A connector
is ``reviewer=<source>.`` (it registers and reviews its own source's subjects and no
other), a processor ``readonly``, the web console ``readonly`` as ``console``, and ``admin``
is the operator's. Passwords are made once per
data directory (``registry/passwords/<user>``, readable by their owner only) and kept across
restarts; the users file the registry reads is written from them on every start.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from sync.stack.kafka.acls import connector_user, processor_user
from sync.stack.kafka.security import write_private

ADMIN = "admin"
CONSOLE = "console"


@dataclass(frozen=True)
class UsersDirectory:
    """A server's users in the data directory: a password file per user, made once and kept
    across restarts, and the users file the server reads, written from them on every start."""

    directory: Path

    @property
    def users_file(self) -> Path:
        return self.directory / "users"

    def password_file(self, user: str) -> Path:
        return self.directory / "passwords" / user

    def write(self, lines: Mapping[str, Callable[[str], str]]) -> None:
        """Make each user's password if it has none, and write the users file: for each user
        the line ``lines[user]`` makes of its password."""
        (self.directory / "passwords").mkdir(parents=True, exist_ok=True, mode=0o700)
        written = []
        for user, line in lines.items():
            path = self.password_file(user)
            if not path.exists():
                write_private(path, secrets.token_urlsafe(24).encode())
            written.append(line(path.read_text(encoding="ascii").strip()))
        self.users_file.unlink(missing_ok=True)
        write_private(self.users_file, "".join(written).encode())


@dataclass(frozen=True)
class RegistryUsers(UsersDirectory):
    def env(self, user: str) -> dict[str, str]:
        """The ``GOVSYNC_*`` settings that make a govsync process ``user`` on the registry."""
        return {
            "GOVSYNC_REGISTRY_USERNAME": user,
            "GOVSYNC_REGISTRY_PASSWORD_FILE": str(self.password_file(user)),
        }


def prepare_registry_users(
    directory: Path, sources: Iterable[str], subscribers: Iterable[str]
) -> RegistryUsers:
    users = RegistryUsers(directory)
    roles = {ADMIN: "admin"}
    roles |= {connector_user(s): f"reviewer={s}." for s in sources}
    roles |= {processor_user(a): "readonly" for a in subscribers}
    roles[CONSOLE] = "readonly"
    users.write({user: _line(user, role) for user, role in roles.items()})
    return users


def _line(user: str, role: str) -> Callable[[str], str]:
    return lambda password: f"{user}:{password}:{role}\n"
