"""Who may do what: users with a role, bearer tokens kept only as hashes, throttled bad tokens.

Roles are ordered: a ``viewer`` watches (every read, the live feed), an ``operator`` also
handles alarms and sends commands into the field (overrides, lanes, pause and speed), an
``engineer`` also configures (the controller, the retention settings), and an ``admin`` also
manages the accounts (create, change role, revoke, rotate tokens).

Tokens are 256-bit random strings, not passwords a person chose, so one SHA-256 pass is enough
to keep them useless to whoever reads the store, and lets a presented token be looked up by its
hash. There is no default password: the first start with an empty store creates the ``admin``
account with a fresh token (printed once) or with ``CCSIM_ADMIN_TOKEN``.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from sim.errors import CcsimError

ADMIN = "admin"
ADMIN_TOKEN_ENV = "CCSIM_ADMIN_TOKEN"
MIN_TOKEN_CHARS = 16
USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class Role(IntEnum):
    VIEWER = 1
    OPERATOR = 2
    ENGINEER = 3
    ADMIN = 4

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
    """A caller. ``token`` is the hash of the token it presented ('' for callers without one,
    such as an SNMP manager): it names the session to close when that token is revoked."""

    name: str
    role: Role
    token: str = field(default="", compare=False, repr=False)

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


FINGERPRINT_CHARS = 16
"""Hex characters of a token's hash that key the throttle. The hash, not the token's own first
characters: every generated token starts with ``ccsim_``, and a table of token prefixes would
hold part of each secret."""


def fingerprint(token: str) -> str:
    return token_hash(token)[:FINGERPRINT_CHARS]


@dataclass
class _Failures:
    times: deque[float] = field(default_factory=deque)
    locked_until: float = 0.0


class LoginThrottle:
    """Turns away clients that present bad tokens, keyed per address and token.

    - ``limit`` bad attempts with one token from one address within ``window_s`` lock that
      token out from that address for ``lockout_s`` (a client retrying a revoked token).
    - ``address_limit`` bad attempts from one address within ``window_s`` (someone guessing)
      lock the address out for ``lockout_s`` - but not the tokens that signed in from there
      within ``trust_s``: the operators behind the same address keep working through a flood.
      A token new to that address waits until the lockout is over.

    Both tables are bounded (``max_entries`` each, least recently used dropped first), so a flood
    of distinct addresses or tokens cannot grow them; the trusted table grows only with good
    tokens. Thread-safe.
    """

    def __init__(
        self,
        *,
        limit: int = 5,
        address_limit: int = 20,
        window_s: float = 60.0,
        lockout_s: float = 60.0,
        trust_s: float = 86_400.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.address_limit = address_limit
        self.window_s = window_s
        self.lockout_s = lockout_s
        self.trust_s = trust_s
        self.max_entries = max_entries
        self._clock = clock
        self._failures: OrderedDict[tuple[str, str], _Failures] = OrderedDict()
        """(address, fingerprint) and (address, '') for the address as a whole."""
        self._trusted: OrderedDict[tuple[str, str], float] = OrderedDict()
        """(address, fingerprint) -> until when that good token is let through an address lock."""
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """Entries held (both tables)."""
        with self._lock:
            return len(self._failures) + len(self._trusted)

    def _locked_for(self, key: tuple[str, str], now: float) -> float:
        entry = self._failures.get(key)
        return max(0.0, entry.locked_until - now) if entry is not None else 0.0

    def retry_after(self, address: str, token_fingerprint: str) -> float:
        """Seconds this token must still wait before it is tried from ``address`` (0: now)."""
        with self._lock:
            now = self._clock()
            wait = self._locked_for((address, token_fingerprint), now)
            if wait > 0:
                return wait
            if self._trusted.get((address, token_fingerprint), 0.0) > now:
                return 0.0
            return self._locked_for((address, ""), now)

    def failed(self, address: str, token_fingerprint: str) -> None:
        with self._lock:
            now = self._clock()
            limits = {(address, token_fingerprint): self.limit, (address, ""): self.address_limit}
            for key, limit in limits.items():
                entry = self._failures.pop(key, None) or _Failures()
                self._failures[key] = entry  # the most recently used last
                entry.times.append(now)
                while entry.times and entry.times[0] < now - self.window_s:
                    entry.times.popleft()
                if len(entry.times) >= limit:
                    entry.locked_until = now + self.lockout_s
                    entry.times.clear()
            _bound(self._failures, self.max_entries)

    def succeeded(self, address: str, token_fingerprint: str) -> None:
        with self._lock:
            key = (address, token_fingerprint)
            self._trusted.pop(key, None)
            self._trusted[key] = self._clock() + self.trust_s
            _bound(self._trusted, self.max_entries)


def _bound(table: OrderedDict[tuple[str, str], Any], size: int) -> None:
    while len(table) > size:
        table.popitem(last=False)


class Authenticator:
    """Turns a presented token into a :class:`User`. Token hashes are looked up in memory; the
    store is the source of truth, and the accounts API mirrors each committed change here."""

    def __init__(self, tokens: dict[str, User], throttle: LoginThrottle) -> None:
        self._names = {hashed: user.name for hashed, user in tokens.items()}
        self._roles = {user.name: user.role for user in tokens.values()}
        self.throttle = throttle

    def remember(self, hashed: str, user: User) -> None:
        self._names = {**self._names, hashed: user.name}
        self._roles = {**self._roles, user.name: user.role}

    def forget(self, hashes: Iterable[str]) -> None:
        gone = set(hashes)
        self._names = {h: name for h, name in self._names.items() if h not in gone}

    def set_role(self, name: str, role: Role) -> None:
        self._roles = {**self._roles, name: role}

    def knows(self, hashed: str) -> bool:
        return hashed in self._names

    def tokens_of(self, name: str) -> set[str]:
        return {h for h, owner in self._names.items() if owner == name}

    def authenticate(self, token: str | None, client: str) -> User:
        if not token:
            raise AuthError(401, "a bearer token is required")
        key = fingerprint(token)
        wait = self.throttle.retry_after(client, key)
        if wait > 0:
            raise AuthError(429, "too many bad tokens: try again later", wait)
        hashed = token_hash(token)
        name = self._names.get(hashed)
        if name is None:
            self.throttle.failed(client, key)
            raise AuthError(401, "invalid token")
        self.throttle.succeeded(client, key)
        return User(name, self._roles[name], hashed)

    def from_header(self, header: str | None, client: str) -> User:
        """Authenticate an ``Authorization: Bearer <token>`` header."""
        token = None
        if header:
            scheme, _, value = header.partition(" ")
            if scheme.lower() == "bearer":
                token = value.strip()
        return self.authenticate(token, client)
