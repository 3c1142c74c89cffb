"""The embedded federation's console users: ``reviewer`` and ``dpo``, one of each role.

As for the registry (:mod:`sync.stack.registry_users`), each password is made once per data
directory (``console/passwords/<user>``, readable by its owner only) and kept across restarts,
for the operator to read; the users file the console reads holds only their salted hashes and
is written from them on every start.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from sync.console.users import Role, user_line
from sync.stack.kafka.security import write_private

USERS = {"reviewer": Role.REVIEWER, "dpo": Role.DPO}


@dataclass(frozen=True)
class ConsoleUsersFiles:
    directory: Path

    @property
    def users_file(self) -> Path:
        return self.directory / "users"

    def password_file(self, user: str) -> Path:
        return self.directory / "passwords" / user


def prepare_console_users(directory: Path) -> ConsoleUsersFiles:
    files = ConsoleUsersFiles(directory)
    (directory / "passwords").mkdir(parents=True, exist_ok=True, mode=0o700)
    lines = []
    for user, role in USERS.items():
        path = files.password_file(user)
        if not path.exists():
            write_private(path, secrets.token_urlsafe(18).encode())
        lines.append(user_line(user, path.read_text(encoding="ascii").strip(), role))
    files.users_file.unlink(missing_ok=True)
    write_private(files.users_file, "".join(lines).encode())
    return files
