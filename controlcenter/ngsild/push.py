"""Pushing the entities to an NGSI-LD context broker (``ccsim serve --ngsi-ld URL``).

Every ``period_s`` the pusher sends the entities that changed since they were last accepted, in
batches of at most ``batch_size``, as ``POST {URL}/ngsi-ld/v1/entityOperations/upsert`` (normalized,
``application/ld+json`` with the Smart Data Models' @context in each entity) - what Orion-LD,
Scorpio or Stellio take. A broker that is down or answers 5xx costs nothing but a log line when
it starts failing and one when it is back: the failures are counted (``/api/health``), and the
entities stay due, so the next period sends their latest state. A batch the broker refuses as
such (4xx) is counted as rejected and not sent again until those entities change: resending
what it has refused would only repeat the refusal. A 207 answer names the entities it refused;
the others count as sent.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from controlcenter.ngsild.entities import Entity, EntityBook
from controlcenter.ngsild.formats import normalized
from controlcenter.ngsild.models import CONTEXT
from sim.errors import CcsimError

log = logging.getLogger("ccsim.ngsild")

UPSERT_PATH = "/ngsi-ld/v1/entityOperations/upsert"


def check_broker_url(text: str) -> str:
    """``--ngsi-ld URL``: an http(s) address of a broker (its API root; the NGSI-LD paths are
    appended), without query or fragment."""
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise CcsimError(
            f"--ngsi-ld {text!r}: expected the broker's address, http://HOST:PORT or https://HOST:PORT"
        )
    try:
        parts.port  # noqa: B018  # raises on a port that is not a number
    except ValueError:
        raise CcsimError(f"--ngsi-ld {text!r}: the port is not a number") from None
    return text.rstrip("/")


@dataclass
class PushStats:
    requests: int = 0
    entities_sent: int = 0
    failures: int = 0
    """Requests that did not reach the broker or that it failed (5xx): retried."""
    rejected: int = 0
    """Entities the broker refused (4xx, or listed as errors in a 207)."""
    last_error: str = ""
    last_ok: float | None = None
    """Wall-clock time of the last accepted request."""


REFUSED = frozenset({400, 409, 422})
"""What a broker answers about the entities themselves: not sent again until they change."""


class _Failed(Exception):
    pass


class Pusher:
    """Sends the :class:`EntityBook`'s changes to a broker; :meth:`run` is its task."""

    def __init__(
        self,
        url: str,
        book: EntityBook,
        *,
        period_s: float = 5.0,
        batch_size: int = 100,
        timeout_s: float = 5.0,
    ) -> None:
        self.url = check_broker_url(url)
        self.book = book
        self.period_s = period_s
        self.batch_size = batch_size
        self.timeout_s = timeout_s
        self.stats = PushStats()
        self._sent: dict[str, int] = {}
        """Entity id -> the version the broker accepted (or refused: not resent unchanged)."""
        self._failing = False

    def due(self) -> list[Entity]:
        return [e for e in self.book.entities() if self._sent.get(e.id) != e.version]

    async def run(self) -> None:
        while True:
            try:
                await self.push_once()
            except Exception as exc:  # a bug here must not end the pushing, nor the server
                self.stats.failures += 1
                self.stats.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("ngsi-ld: pushing to %s failed", self.url)
            await asyncio.sleep(self.period_s)

    async def push_once(self) -> int:
        """Send every entity due, batch by batch; returns how many the broker accepted."""
        due = self.due()
        accepted = 0
        for start in range(0, len(due), self.batch_size):
            batch = due[start : start + self.batch_size]
            try:
                refused = await asyncio.to_thread(self._post, batch)
            except _Failed as exc:
                self.stats.failures += 1
                self.stats.last_error = str(exc)
                if not self._failing:
                    log.warning("ngsi-ld: cannot push to %s: %s (will retry)", self.url, exc)
                self._failing = True
                return accepted  # the rest stays due for the next period
            if self._failing:
                log.warning("ngsi-ld: pushing to %s again", self.url)
            self._failing = False
            self.stats.last_ok = time.time()
            for entity in batch:
                self._sent[entity.id] = entity.version
            accepted += len(batch) - len(refused)
            self.stats.entities_sent += len(batch) - len(refused)
            self.stats.rejected += len(refused)
        return accepted

    def _post(self, batch: list[Entity]) -> set[str]:
        """POST one batch; returns the ids the broker refused. :class:`_Failed` when the broker
        could not be reached or failed (5xx)."""
        body = json.dumps([normalized(e, context=CONTEXT) for e in batch]).encode()
        request = urllib.request.Request(
            self.url + UPSERT_PATH,
            data=body,
            method="POST",
            headers={"Content-Type": "application/ld+json", "Accept": "application/json"},
        )
        self.stats.requests += 1
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                status, text = response.status, response.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            status, text = exc.code, exc.read().decode("utf-8", "replace")
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            reason = getattr(exc, "reason", exc)
            raise _Failed(f"{type(exc).__name__}: {reason}") from None
        if status == 207:
            return _refused_ids(text, self) & {e.id for e in batch}
        if status not in REFUSED and not 200 <= status < 300:
            # 5xx, and what says "not now" or "not here" rather than "not this": a redirect,
            # 401/403 (credentials), 404 (wrong URL), 408, 413, 429 - sent again next period
            raise _Failed(f"HTTP {status}: {text[:200]}")
        if status in REFUSED:
            self.stats.last_error = f"HTTP {status}: {text[:200]}"
            log.warning(
                "ngsi-ld: %s refused %d entities: %s", self.url, len(batch), self.stats.last_error
            )
            return {e.id for e in batch}
        return set()

    def describe(self) -> dict[str, Any]:
        return {"url": self.url, "period_s": self.period_s, **self.stats.__dict__}


def _refused_ids(text: str, pusher: Pusher) -> set[str]:
    """The ids listed under ``errors`` of a 207 BatchOperationResult."""
    try:
        errors = json.loads(text).get("errors", [])
        refused = {str(e["entityId"]) for e in errors}
    except (ValueError, AttributeError, KeyError, TypeError):
        pusher.stats.last_error = f"HTTP 207 with an unreadable body: {text[:200]}"
        return set()
    if errors:
        pusher.stats.last_error = f"HTTP 207: {json.dumps(errors[0])[:200]}"
    return refused
