"""Who may do what: users with a role, bearer tokens kept only as hashes, throttled bad logins.

Roles are ordered: a ``viewer`` watches (every read, the live feed), an ``operator`` also handles
alarms and sends commands into the field (overrides, lanes, pause and speed), an ``engineer``
also changes the controller, the retention settings and the users.

Tokens are 256-bit random strings, not passwords a person chose, so one SHA-256 pass is enough
to keep them useless to whoever reads the store, and lets a presented token be looked up by its
hash. There is no default password: the first start with an empty store creates the ``admin``
engineer with a fresh token (printed once) or with ``CCSIM_ADMIN_TOKEN``.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum

from sim.errors import CcsimError

ADMIN = "admin"
ADMIN_TOKEN_ENV = "CCSIM_ADMIN_TOKEN"
MIN_TOKEN_CHARS = 16
USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class Role(IntEnum):
    VIEWER = 1
    OPERATOR = 2
    ENGINEER = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Role:
        try:
            return cls[text.upper()]
        except KeyError:
            names = ", ".join(r.label for r in cls)
            raise CcsimError(f"role '{text}': expected one of {names}") from None


@dataclass(frozen=True)
class User:
    name: str
    role: Role

    def may(self, role: Role) -> bool:
        return self.role >= role


def new_token() -> str:
    return "ccsim_" + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_token_text(token: str, origin: str) -> None:
    if len(token) < MIN_TOKEN_CHARS or any(c.isspace() for c in token):
        raise CcsimError(
            f"{origin}: the token must be at least {MIN_TOKEN_CHARS} characters without spaces"
        )


class AuthError(Exception):
    """A request without a valid token (401) or from a client locked out for a while (429)."""

    def __init__(self, status: int, detail: str, retry_after_s: float = 0.0) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.retry_after_s = retry_after_s


class LoginThrottle:
    """Locks a client (by address) out for ``lockout_s`` after ``limit`` bad tokens within
    ``window_s``; while locked out even a good token is turned away. Thread-safe."""

    def __init__(
        self,
        *,
        limit: int = 5,
        window_s: float = 60.0,
        lockout_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self.lockout_s = lockout_s
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._locked_until: dict[str, float] = {}
        self._lock = threading.Lock()

    def retry_after(self, client: str) -> float:
        """Seconds ``client`` must still wait (0 if it may try)."""
        with self._lock:
            until = self._locked_until.get(client)
            if until is None:
                return 0.0
            left = until - self._clock()
            if left <= 0:
                del self._locked_until[client]
                return 0.0
            return left

    def failed(self, client: str) -> None:
        with self._lock:
            now = self._clock()
            failures = self._failures.setdefault(client, deque())
            failures.append(now)
            while failures and failures[0] < now - self.window_s:
                failures.popleft()
            if len(failures) >= self.limit:
                self._locked_until[client] = now + self.lockout_s
                failures.clear()


class Authenticator:
    """Turns a presented token into a :class:`User`. Token hashes are looked up in memory; the
    store is the source of truth and :meth:`remember` adds tokens issued while running."""

    def __init__(self, tokens: dict[str, User], throttle: LoginThrottle) -> None:
        self._tokens = dict(tokens)
        self.throttle = throttle

    def remember(self, hashed: str, user: User) -> None:
        self._tokens = {**self._tokens, hashed: user}

    def authenticate(self, token: str | None, client: str) -> User:
        wait = self.throttle.retry_after(client)
        if wait > 0:
            raise AuthError(429, "too many bad tokens: try again later", wait)
        if not token:
            raise AuthError(401, "a bearer token is required")
        user = self._tokens.get(token_hash(token))
        if user is None:
            self.throttle.failed(client)
            raise AuthError(401, "invalid token")
        return user

    def from_header(self, header: str | None, client: str) -> User:
        """Authenticate an ``Authorization: Bearer <token>`` header."""
        token = None
        if header:
            scheme, _, value = header.partition(" ")
            if scheme.lower() == "bearer":
                token = value.strip()
        return self.authenticate(token, client)
