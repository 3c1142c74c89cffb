"""The embedded federation's console users: ``reviewer`` and ``dpo``, one of each role.

As for the registry (:mod:`sync.stack.registry_users`), each password is made once per data
directory (``console/passwords/<user>``, readable by its owner only) and kept across restarts,
for the operator to read; the users file the console reads holds only their salted hashes and
is written from them on every start.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sync.console.users import Role, user_line
from sync.stack.registry_users import UsersDirectory

USERS = {"reviewer": Role.REVIEWER, "dpo": Role.DPO}


def prepare_console_users(directory: Path) -> UsersDirectory:
    files = UsersDirectory(directory)
    files.write({user: _line(user, role) for user, role in USERS.items()})
    return files


def _line(user: str, role: Role) -> Callable[[str], str]:
    return lambda password: user_line(user, password, role)
