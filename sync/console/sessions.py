"""Who is logged in: sessions kept in the console's memory, named by a random token in an
HttpOnly, SameSite=Strict cookie. A session ends at logout, after ``idle`` seconds without a
request, or ``lifetime`` seconds after login, whichever comes first; a restart of the console
ends them all. Each carries a token the console's forms send back (a second guard, beside
SameSite, against a request forged from another site)."""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sync.console.users import ConsoleUser, Role

COOKIE = "govsync_console"
IDLE_SECONDS = 30 * 60
LIFETIME_SECONDS = 8 * 60 * 60


@dataclass
class Session:
    user: str
    role: Role
    form_token: str
    started: float
    seen: float

    def form_token_matches(self, given: str) -> bool:
        return hmac.compare_digest(given.encode(), self.form_token.encode())


@dataclass
class Sessions:
    idle: float = IDLE_SECONDS
    lifetime: float = LIFETIME_SECONDS
    clock: Callable[[], float] = time.monotonic
    _by_token: dict[str, Session] = field(default_factory=dict)

    def start(self, user: ConsoleUser) -> str:
        """A new session for ``user``; returns the cookie's value."""
        self._forget_expired()
        now = self.clock()
        token = secrets.token_urlsafe(32)
        self._by_token[token] = Session(user.name, user.role, secrets.token_urlsafe(24), now, now)
        return token

    def get(self, token: str | None) -> Session | None:
        """The live session named by ``token``, marked as seen now; None if there is none."""
        if not token:
            return None
        session = self._by_token.get(token)
        if session is None:
            return None
        now = self.clock()
        if now - session.seen > self.idle or now - session.started > self.lifetime:
            del self._by_token[token]
            return None
        session.seen = now
        return session

    def end(self, token: str | None) -> None:
        if token:
            self._by_token.pop(token, None)

    def _forget_expired(self) -> None:
        now = self.clock()
        for token, s in list(self._by_token.items()):
            if now - s.seen > self.idle or now - s.started > self.lifetime:
                del self._by_token[token]
