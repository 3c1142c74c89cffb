"""Who may do what on the registry: users, their roles, and the check of every request.

A user is named by HTTP Basic credentials or by the common name of a client certificate the
TLS listener verified. Roles:

* ``admin``: everything, the registry-wide config and mode included;
* ``reviewer=PREFIX[,PREFIX...]``: reads everything; registers, deletes and sets the
  compatibility level of subjects starting with one of the prefixes (a domain's subjects);
* ``readonly``: reads, lookups and compatibility tests;
* ``metrics``: ``/metrics`` only.

``/metrics`` needs an ``admin`` or ``metrics`` user unless ``metrics_open``. Refusals are
Confluent's: 401 without valid credentials, 403 (error code 40301) for a denied operation.

The users file has one ``name:password:role`` per line; the name ends at the first colon and
the role starts after the last, so a password may hold colons (a prefix may not). An empty
password makes a certificate-only user.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from aiohttp import web

from sync.errors import RegistryError
from sync.registry.audit import Actor
from sync.registry.metrics import UNMATCHED

METRICS_PATH = "/metrics"
REALM = "govsync-registry"
# POSTs that change nothing: a lookup and the compatibility tests
READING_POSTS = frozenset(
    {
        "/subjects/{subject}",
        "/compatibility/subjects/{subject}/versions",
        "/compatibility/subjects/{subject}/versions/{version}",
    }
)


class Role(StrEnum):
    ADMIN = "admin"
    REVIEWER = "reviewer"
    READONLY = "readonly"
    METRICS = "metrics"


class UsersFileError(ValueError):
    """A users file that cannot be used; the message names the line, never a password."""


@dataclass(frozen=True, slots=True)
class User:
    name: str
    password: str  # empty: the user can only be named by a client certificate
    role: Role
    prefixes: tuple[str, ...] = ()  # a reviewer's subjects

    def __repr__(self) -> str:  # never show the password, not even in a traceback
        return f"User(name={self.name!r}, role={self.role.value!r}, prefixes={self.prefixes!r})"

    def may_write(self, subject: str | None) -> bool:
        if self.role is Role.ADMIN:
            return True
        return (
            self.role is Role.REVIEWER and subject is not None and subject.startswith(self.prefixes)
        )


@dataclass(frozen=True)
class AccessPolicy:
    """The users of a registry (none: auth is off) and whether ``/metrics`` is open."""

    users: Mapping[str, User] = field(default_factory=dict)
    metrics_open: bool = False

    @classmethod
    def of(cls, users: Iterable[User], *, metrics_open: bool = False) -> AccessPolicy:
        return cls({u.name: u for u in users}, metrics_open=metrics_open)

    def check(self, request: web.Request, endpoint: str) -> Actor:
        """Who sends ``request`` (to the route template ``endpoint``), if they may; else a
        401 or 403 :class:`RegistryError`."""
        address = request.remote
        if not self.users:
            return Actor("anonymous", address)
        if request.path == METRICS_PATH and self.metrics_open:
            return Actor("anonymous", address)
        user = self._authenticate(request)
        if not _allowed(user, request, endpoint):
            raise RegistryError(
                403, 40301, f"User {user.name} is denied operation {request.method} on {endpoint}"
            )
        return Actor(user.name, address)

    def _authenticate(self, request: web.Request) -> User:
        name = certificate_name(request)
        if name is not None and name in self.users:
            return self.users[name]
        scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
        try:
            decoded = base64.b64decode(encoded, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            decoded = ""
        name, _, password = decoded.partition(":")
        user = self.users.get(name)
        # a certificate-only user (empty password) never passes Basic auth
        if user is None or not user.password or scheme.lower() != "basic":
            raise RegistryError(401, 401, "Unauthorized")
        if not hmac.compare_digest(password.encode(), user.password.encode()):
            raise RegistryError(401, 401, "Unauthorized")
        return user


def _allowed(user: User, request: web.Request, endpoint: str) -> bool:
    if endpoint == UNMATCHED:
        return True  # answered 404 or 405 by the router
    if endpoint == METRICS_PATH:
        return user.role in (Role.ADMIN, Role.METRICS)
    if user.role is Role.METRICS:
        return False
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return True
    if request.method == "POST" and endpoint in READING_POSTS:
        return True  # DELETE shares the lookup's route: only its POST reads
    if endpoint.startswith("/mode") or "{subject}" not in endpoint:
        return user.role is Role.ADMIN  # modes, and the registry-wide config
    return user.may_write(request.match_info.get("subject"))


def certificate_name(request: web.Request) -> str | None:
    """The common name of the client certificate the TLS listener verified, if any."""
    transport = request.transport
    certificate = transport.get_extra_info("peercert") if transport is not None else None
    if not certificate:
        return None
    for entry in certificate.get("subject", ()):
        for key, value in entry:
            if key == "commonName":
                return str(value)
    return None


def read_users(path: Path) -> list[User]:
    """The users in ``path`` (see the module's docstring); '#' starts a comment line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise UsersFileError(f"cannot read {path}: {exc.strerror}") from None
    users: dict[str, User] = {}
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, _, rest = line.partition(":")
        password, separator, role_text = rest.rpartition(":")
        where = f"{path}, line {number}"
        if not name or not separator or not role_text:
            raise UsersFileError(f"{where}: expected name:password:role")
        if name in users:
            raise UsersFileError(f"{where}: user {name!r} appears twice")
        users[name] = User(name, password, *_role(role_text, where))
    if not users:
        raise UsersFileError(f"{path}: no users (expected name:password:role lines)")
    return list(users.values())


def _role(text: str, where: str) -> tuple[Role, tuple[str, ...]]:
    kind, _, listed = text.partition("=")
    try:
        role = Role(kind)
    except ValueError:
        roles = ", ".join(r.value for r in Role)
        raise UsersFileError(f"{where}: role {kind!r} is not one of {roles}") from None
    prefixes = tuple(p.strip() for p in listed.split(",") if p.strip())
    if (role is Role.REVIEWER) != bool(prefixes):
        raise UsersFileError(f"{where}: a reviewer has prefixes (reviewer=PREFIX,...), no other")
    return role, prefixes
