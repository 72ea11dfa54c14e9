"""The live feed: one state stream serialised once per tick for every client, and a lossless,
sequenced alarm stream.

State. The simulation's change sets are merged into a :class:`StateMirror` (from the thread that
receives them). At every tick (``rate_hz``, 2 Hz by default) the hub takes what changed since
the previous tick, serialises it once as a ``delta`` frame, and puts that same text into every
client's one-frame slot: latest wins, so a client that falls behind skips frames rather than
queueing them. A client that skipped a frame (or has just connected) gets a ``snapshot`` frame
instead of the next delta - also serialised at most once per tick - so it never misses a change.

Alarms. Every alarm event has the store's sequence number. Each client has a queue of alarm
frames that is never thinned; a client that connects with ``since=N`` first gets every event
after ``N`` from the store, then the live ones, duplicates skipped by sequence number, so a
reconnecting client misses nothing. A client whose alarm queue overflows is dropped (it resyncs
when it comes back).

Each client has its own sender task, and every send has a timeout: a client that stops reading
is dropped and never delays the others.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from controlcenter.alarms import Alarm, AlarmEvent
from controlcenter.state import StateChanges

Send = Callable[[str], Awaitable[None]]
Close = Callable[[int, str], Awaitable[None]]
LoadAlarmEvents = Callable[[int], Awaitable[list[tuple[AlarmEvent, Alarm]] | None]]
"""A page of the alarm events after a sequence number from the store (in order; empty once
there are no more), or None if some are no longer kept."""

CLOSE_TOO_SLOW = 1013  # "try again later"
CLOSE_POLICY = 1008  # the token was revoked: do not come back with it
CLOSE_RECONNECT = 4001  # the account changed (its role): reconnect to get the new hello


def dumps(frame: dict[str, Any]) -> str:
    return json.dumps(frame, separators=(",", ":"))


class StateMirror:
    """The district's live state as the feed knows it (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state: StateChanges = {}
        self._pending: StateChanges = {}
        self.t: float | None = None

    def merge(self, changes: StateChanges, t: float | None) -> None:
        with self._lock:
            for section, entries in changes.items():
                self._state.setdefault(section, {}).update(entries)
                self._pending.setdefault(section, {}).update(entries)
            if t is not None:
                self.t = t

    def replace(self, state: StateChanges, t: float | None) -> None:
        """Put ``state`` in place of the whole state (a replay moved in time): what differs goes
        to the next delta, entries gone as None."""
        with self._lock:
            for section in self._state.keys() | state.keys():
                old, new = self._state.get(section, {}), state.get(section, {})
                pending = self._pending.setdefault(section, {})
                pending.update(dict.fromkeys(old.keys() - new.keys()))
                pending.update({k: v for k, v in new.items() if old.get(k, None) != v or k not in old})
            self._state = {section: dict(entries) for section, entries in state.items()}
            self.t = t

    def take(self) -> tuple[StateChanges, float | None]:
        """What changed since the last call, and the simulation time now."""
        with self._lock:
            pending, self._pending = self._pending, {}
            return pending, self.t

    def snapshot(self) -> StateChanges:
        with self._lock:
            return {section: dict(entries) for section, entries in self._state.items()}

    def get(self, section: str, key: str) -> Any:
        with self._lock:
            return self._state.get(section, {}).get(key)


class ClientGone(Exception):
    """The client was dropped: too slow, or its alarm queue overflowed."""


class ClientLeft(Exception):
    """The client closed the connection (raised by a ``send`` whose peer went away)."""


class FeedClient:
    """One connected websocket: its state slot, its alarm queue and its sender."""

    def __init__(self, hub: FeedHub, name: str, send: Send, close: Close, token: str = "") -> None:
        self.hub = hub
        self.name = name
        self.token = token
        """The hash of the token it signed in with (its session ends when that is revoked)."""
        self._send_fn = send
        self._close_fn = close
        self._wake = asyncio.Event()
        self._state: tuple[int, str] | None = None
        self._alarms: deque[tuple[int, str]] = deque()
        self.state_seq: int | None = None
        """The last state frame sent (None: next one must be a snapshot)."""
        self.alarm_seq = 0
        """The last alarm event sent."""
        self.dropped_reason = ""
        self.close_code = CLOSE_TOO_SLOW

    def offer_state(self, seq: int, text: str) -> None:
        self._state = (seq, text)
        self._wake.set()

    def offer_alarm(self, seq: int, text: str) -> None:
        if len(self._alarms) >= self.hub.alarm_queue_limit:
            self.drop("alarm queue overflow")
        self._alarms.append((seq, text))
        self._wake.set()

    def drop(self, reason: str, code: int = CLOSE_TOO_SLOW) -> None:
        """Drop the client at its next frame (or when its current send times out)."""
        if not self.dropped_reason:
            self.dropped_reason, self.close_code = reason, code
        self._wake.set()

    def resume_from(self, seq: int, frames: list[tuple[int, str]]) -> None:
        """Send ``frames`` before any alarm frame queued so far, and nothing up to ``seq``."""
        self._alarms.extendleft(reversed(frames))
        self.alarm_seq = seq
        self._wake.set()

    async def send(self, text: str) -> None:
        try:
            # A timeout scope, not wait_for: wait_for runs the send as a task of its own, one
            # per client per frame, each a round of the event loop later (every tick's fan-out
            # and every alarm burst paid for them); a send that does not block needs neither.
            async with asyncio.timeout(self.hub.send_timeout_s):
                await self._send_fn(text)
        except TimeoutError:
            self.dropped_reason = (
                self.dropped_reason or f"no progress sending for {self.hub.send_timeout_s:g} s"
            )
            raise ClientGone(self.dropped_reason) from None

    async def run(self) -> None:
        """Send until the client goes away or is dropped."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self.dropped_reason:
                raise ClientGone(self.dropped_reason)
            while self._alarms:
                seq, text = self._alarms.popleft()
                if seq > self.alarm_seq:
                    await self.send(text)
                    self.alarm_seq = seq
            if self._state is not None or self.state_seq is None:
                seq, text = self._state or (-1, "")
                self._state = None
                if self.state_seq is None or seq != self.state_seq + 1:
                    seq, text = self.hub.snapshot_frame()
                await self.send(text)
                self.state_seq = seq

    async def close(self, code: int, reason: str) -> None:
        try:
            await asyncio.wait_for(self._close_fn(code, reason), 1.0)
        except Exception:  # the peer is already unreachable: nothing more to tell it
            return


@dataclass
class FeedStats:
    connected: int = 0
    dropped: int = 0
    ticks: int = 0


class FeedHub:
    """All feed clients of the server; runs in the event loop's thread."""

    def __init__(
        self,
        mirror: StateMirror,
        *,
        rate_hz: float = 2.0,
        send_timeout_s: float = 2.0,
        alarm_queue_limit: int = 10_000,
        load_alarm_events: LoadAlarmEvents,
        open_alarms: list[Alarm],
        alarm_seq: int,
    ) -> None:
        self.mirror = mirror
        self.rate_hz = rate_hz
        self.send_timeout_s = send_timeout_s
        self.alarm_queue_limit = alarm_queue_limit
        self._load_alarm_events = load_alarm_events
        self.clients: set[FeedClient] = set()
        self.seq = 0
        self.alarm_seq = alarm_seq
        self.open_alarms: dict[int, dict[str, Any]] = {a.id: a.to_dict() for a in open_alarms}
        self._snapshot: tuple[int, str] | None = None
        self.stats = FeedStats()
        self.after_tick: Callable[[], None] | None = None
        """Called once a tick's frames are out (the loop's quiet moment until the next tick)."""

    # --- state -----------------------------------------------------------------------------------

    async def run_ticker(self) -> None:
        loop = asyncio.get_running_loop()
        period = 1.0 / self.rate_hz
        due = loop.time()
        while True:
            due += period
            delay = due - loop.time()
            if delay < -period:  # the loop was held up: skip ticks rather than burst
                due = loop.time()
                delay = 0.0
            await asyncio.sleep(max(0.0, delay))
            self.tick()
            if self.after_tick is not None:
                await asyncio.sleep(0)  # every client's task sends its frame first
                self.after_tick()

    def tick(self) -> None:
        """Serialise what changed since the last tick once, and offer it to every client."""
        changes, t = self.mirror.take()
        self.seq += 1
        self.stats.ticks += 1
        self._snapshot = None
        text = dumps({"type": "delta", "seq": self.seq, "sent": time.time(), "t": t, "changes": changes})
        for client in self.clients:
            client.offer_state(self.seq, text)

    def resync(self) -> None:
        """Every client gets a snapshot next, not a delta (the state was replaced)."""
        self._snapshot = None
        for client in self.clients:
            client.state_seq = None

    def snapshot_frame(self) -> tuple[int, str]:
        """The whole state as of the latest tick (serialised at most once per tick)."""
        if self._snapshot is None:
            state = self.mirror.snapshot()
            frame = {"type": "snapshot", "seq": self.seq, "sent": time.time(), "t": self.mirror.t}
            self._snapshot = (self.seq, dumps({**frame, "state": state}))
        return self._snapshot

    # --- alarms ----------------------------------------------------------------------------------

    def publish_alarms(self, events: list[tuple[AlarmEvent, Alarm]]) -> None:
        """Committed alarm events, in sequence order: to every client's lossless queue."""
        for event, alarm in events:
            entry = alarm.to_dict()
            if alarm.open:
                self.open_alarms[alarm.id] = entry
            else:
                self.open_alarms.pop(alarm.id, None)
            self.alarm_seq = max(self.alarm_seq, event.seq)
            text = dumps(_alarm_frame(event, entry))
            for client in self.clients:
                client.offer_alarm(event.seq, text)

    def _alarm_list_frame(self) -> tuple[int, str]:
        frame = {"type": "alarms", "seq": self.alarm_seq, "alarms": list(self.open_alarms.values())}
        return self.alarm_seq, dumps(frame)

    # --- one connection --------------------------------------------------------------------------

    async def serve(self, client: FeedClient, hello: dict[str, Any], since: int | None) -> None:
        """Run one client to its end: hello, the alarms it lacks, then the live streams."""
        self.clients.add(client)  # from here on it queues live alarm events
        self.stats.connected += 1
        try:
            await client.send(dumps({"type": "hello", "rate_hz": self.rate_hz, **hello}))
            if since is None or since > self.alarm_seq or not await self._replay(client, since):
                client.resume_from(-1, [self._alarm_list_frame()])  # even at seq 0
            await client.run()  # its first state frame is a snapshot
        except ClientGone:
            if client.close_code == CLOSE_TOO_SLOW:
                self.stats.dropped += 1
            await client.close(client.close_code, client.dropped_reason)
        except ClientLeft:
            return
        finally:
            self.clients.discard(client)
            self.stats.connected -= 1

    async def _replay(self, client: FeedClient, since: int) -> bool:
        """Send the alarm events after ``since`` from the store, page by page, however many
        there are (live events queued meanwhile follow, duplicates skipped). False if some of
        them are no longer kept: the client needs the list of open alarms instead."""
        seq = since
        while True:
            page = await self._load_alarm_events(seq)
            if page is None:
                return False
            if not page:
                client.resume_from(seq, [])
                return True
            for event, alarm in page:
                if client.dropped_reason:
                    raise ClientGone(client.dropped_reason)
                await client.send(dumps(_alarm_frame(event, alarm.to_dict())))
                seq = client.alarm_seq = event.seq

    def close_all(self) -> None:
        for client in self.clients:
            client.drop("server shutting down")

    def close_sessions(self, tokens: set[str], code: int, reason: str) -> int:
        """End the sessions signed in with any of ``tokens`` (hashes); returns how many."""
        ended = [client for client in self.clients if client.token in tokens]
        for client in ended:
            client.drop(reason, code)
        return len(ended)


def _alarm_frame(event: AlarmEvent, alarm: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "alarm",
        "seq": event.seq,
        "sent": time.time(),
        "event": event.to_dict(),
        "alarm": alarm,
    }
