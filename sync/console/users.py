"""The console's users: a file of ``name:hash:role`` lines, the password kept only as a salted
scrypt hash, and the check of a login.

Roles: ``reviewer`` (subjects, versions, diffs) and ``dpo``, the data protection officer, who
also sees one person's disclosures. The hash is ``scrypt$N$r$p$SALT$DIGEST`` (salt and digest
in unpadded URL-safe base64), so no colon appears in it and a line splits in three.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

SCHEME = "scrypt"
# scrypt's interactive-login cost (RFC 7914 section 2): about 50 ms and 16 MiB per check
COST, BLOCK_SIZE, PARALLEL = 2**14, 8, 1
SALT_BYTES, DIGEST_BYTES = 16, 32


class Role(StrEnum):
    REVIEWER = "reviewer"
    DPO = "dpo"


class UsersFileError(ValueError):
    """A users file that cannot be used; the message names the line, never a hash."""


@dataclass(frozen=True, slots=True)
class ConsoleUser:
    name: str
    password_hash: str
    role: Role

    def __repr__(self) -> str:  # the hash stays out of tracebacks too
        return f"ConsoleUser(name={self.name!r}, role={self.role.value!r})"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str, salt: bytes | None = None) -> str:
    """A new salted hash of ``password``."""
    salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=COST, r=BLOCK_SIZE, p=PARALLEL, dklen=DIGEST_BYTES
    )
    return f"{SCHEME}${COST}${BLOCK_SIZE}${PARALLEL}${_b64(salt)}${_b64(digest)}"


def _parse_hash(text: str) -> tuple[int, int, int, bytes, bytes]:
    scheme, n, r, p, salt, digest = text.split("$")
    if scheme != SCHEME:
        raise ValueError(f"unknown scheme {scheme!r}")
    return int(n), int(r), int(p), _unb64(salt), _unb64(digest)


def password_matches(password: str, password_hash: str) -> bool:
    """Whether ``password`` gives ``password_hash``, compared in constant time."""
    n, r, p, salt, digest = _parse_hash(password_hash)
    given = hashlib.scrypt(
        password.encode(), salt=salt, n=n, r=r, p=p, dklen=len(digest), maxmem=2**26
    )
    return hmac.compare_digest(given, digest)


# checked against when the name is unknown, so a wrong name costs as long as a wrong password
_NOBODY = hash_password(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class ConsoleUsers:
    by_name: Mapping[str, ConsoleUser]

    @classmethod
    def of(cls, users: Iterable[ConsoleUser]) -> ConsoleUsers:
        return cls({u.name: u for u in users})

    def authenticate(self, name: str, password: str) -> ConsoleUser | None:
        """The user ``name`` if ``password`` is theirs; None otherwise (blocking: scrypt)."""
        user = self.by_name.get(name)
        matches = password_matches(password, user.password_hash if user else _NOBODY)
        return user if user is not None and matches else None


def user_line(name: str, password: str, role: Role) -> str:
    """One line of a users file."""
    if not name or ":" in name or any(c.isspace() for c in name):
        raise UsersFileError(f"a user name has no colon or space and is not empty: {name!r}")
    return f"{name}:{hash_password(password)}:{role.value}\n"


def read_users(path: Path) -> ConsoleUsers:
    """The users in ``path``; '#' starts a comment line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise UsersFileError(f"cannot read {path}: {exc.strerror}") from None
    users: dict[str, ConsoleUser] = {}
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        users_line = _user(line, f"{path}, line {number}")
        if users_line.name in users:
            raise UsersFileError(f"{path}, line {number}: user {users_line.name!r} appears twice")
        users[users_line.name] = users_line
    if not users:
        raise UsersFileError(f"{path}: no users (expected name:hash:role lines)")
    return ConsoleUsers(users)


def _user(line: str, where: str) -> ConsoleUser:
    parts = line.split(":")
    if len(parts) != 3 or not parts[0]:
        raise UsersFileError(f"{where}: expected name:hash:role")
    name, password_hash, role_text = parts
    try:
        role = Role(role_text)
    except ValueError:
        roles = ", ".join(r.value for r in Role)
        raise UsersFileError(f"{where}: role {role_text!r} is not one of {roles}") from None
    try:
        _parse_hash(password_hash)
    except (ValueError, TypeError):
        raise UsersFileError(
            f"{where}: the password is not a {SCHEME} hash (make a line with "
            "`govsync console user NAME --role ROLE`)"
        ) from None
    return ConsoleUser(name, password_hash, role)
