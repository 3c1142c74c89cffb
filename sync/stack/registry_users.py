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
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sync.stack.kafka.acls import connector_user, processor_user
from sync.stack.kafka.security import write_private

ADMIN = "admin"
CONSOLE = "console"


@dataclass(frozen=True)
class RegistryUsers:
    directory: Path

    @property
    def users_file(self) -> Path:
        return self.directory / "users"

    def password_file(self, user: str) -> Path:
        return self.directory / "passwords" / user

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
    (directory / "passwords").mkdir(parents=True, exist_ok=True, mode=0o700)
    lines = []
    for user, role in roles.items():
        path = users.password_file(user)
        if not path.exists():
            write_private(path, secrets.token_urlsafe(24).encode())
        lines.append(f"{user}:{path.read_text(encoding='ascii').strip()}:{role}\n")
    users.users_file.unlink(missing_ok=True)
    write_private(users.users_file, "".join(lines).encode())
    return users
