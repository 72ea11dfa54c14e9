"""The feed hub without a network: latest-wins state slots, snapshots after a gap, lossless
alarms with resync, and slow clients dropped without holding up the others."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from controlcenter.alarms import Alarm, AlarmAction, AlarmEvent, AlarmState, Severity
from controlcenter.feed import FeedClient, FeedHub, StateMirror


def alarm(alarm_id: int) -> Alarm:
    return Alarm(alarm_id, "queue", "J1", 1, Severity.LOW, "traffic", "trafficJam", "jam", "tls:J1")


def event(seq: int, alarm_id: int = 1) -> AlarmEvent:
    return AlarmEvent(
        alarm_id, AlarmAction.RAISE, None, AlarmState.ACTIVE_UNACKNOWLEDGED, "system", 0.0, seq=seq
    )


class Peer:
    """A client connection: records what it was sent; ``gate`` (if set) holds every send."""

    def __init__(self, gate: asyncio.Event | None = None) -> None:
        self.sent: list[str] = []
        self.gate = gate
        self.closed: tuple[int, str] | None = None

    async def send(self, text: str) -> None:
        if self.gate is not None:
            await self.gate.wait()
        self.sent.append(text)

    async def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)

    def frames(self, kind: str | None = None) -> list[dict[str, Any]]:
        frames = [json.loads(t) for t in self.sent]
        return [f for f in frames if kind is None or f["type"] == kind]


def hub_with(
    replay: Callable[[int], Awaitable[list[tuple[AlarmEvent, Alarm]] | None]] | None = None,
    **kwargs: Any,
) -> FeedHub:
    async def nothing(_seq: int) -> list[tuple[AlarmEvent, Alarm]] | None:
        return []

    return FeedHub(
        StateMirror(), load_alarm_events=replay or nothing, open_alarms=[], alarm_seq=0, **kwargs
    )


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


def connect(hub: FeedHub, peer: Peer, since: int | None = None) -> tuple[FeedClient, asyncio.Task[None]]:
    client = FeedClient(hub, "ana", peer.send, peer.close)
    return client, asyncio.create_task(hub.serve(client, {"user": "ana"}, since))


def test_mirror_merges_changes_and_hands_out_what_changed() -> None:
    mirror = StateMirror()
    mirror.merge({"signals": {"J1": {"state": "Gr"}}}, 1.0)
    mirror.merge({"signals": {"J2": {"state": "rG"}}, "kpis": {"running": 3}}, 2.0)
    changes, t = mirror.take()
    assert t == 2.0 and set(changes["signals"]) == {"J1", "J2"}
    assert mirror.take() == ({}, 2.0)
    mirror.merge({"signals": {"J1": {"state": "rG"}}}, None)
    assert mirror.snapshot()["signals"] == {"J1": {"state": "rG"}, "J2": {"state": "rG"}}


def test_each_tick_is_serialised_once_and_the_same_text_goes_to_every_client() -> None:
    async def scenario() -> None:
        hub = hub_with()
        peers = [Peer(), Peer()]
        tasks = [connect(hub, p)[1] for p in peers]
        await settle()
        hub.mirror.merge({"signals": {"J1": {"state": "Gr"}}}, 5.0)
        hub.tick()
        await settle()
        assert peers[0].sent[-1] is peers[1].sent[-1]  # one string object for all
        [delta] = peers[0].frames("delta")
        assert delta["changes"] == {"signals": {"J1": {"state": "Gr"}}} and delta["t"] == 5.0
        for task in tasks:
            task.cancel()

    asyncio.run(scenario())


def test_a_client_that_falls_behind_skips_to_a_snapshot_and_misses_nothing() -> None:
    async def scenario() -> None:
        hub = hub_with(send_timeout_s=10.0)
        gate = asyncio.Event()
        gate.set()
        peer = Peer(gate)
        _client, task = connect(hub, peer)
        await settle()
        assert [f["type"] for f in peer.frames()] == ["hello", "alarms", "snapshot"]
        gate.clear()  # the client stops taking frames for a while
        hub.tick()
        await settle()
        for i in range(5):
            hub.mirror.merge({"detectors": {f"lane{i}": {"queue": i}}}, float(i))
            hub.tick()
        gate.set()
        await settle()
        kinds = [(f["type"], f["seq"]) for f in peer.frames()[3:]]
        assert kinds == [("delta", 1), ("snapshot", 6)]  # the 4 skipped deltas folded into one
        assert set(peer.frames("snapshot")[-1]["state"]["detectors"]) == {f"lane{i}" for i in range(5)}
        hub.tick()
        await settle()
        assert peer.frames()[-1]["type"] == "delta" and peer.frames()[-1]["seq"] == 7
        task.cancel()

    asyncio.run(scenario())


def test_a_client_that_stops_reading_is_dropped_and_never_delays_the_others() -> None:
    async def scenario() -> None:
        hub = hub_with(send_timeout_s=0.2)
        stalled, steady = Peer(asyncio.Event()), Peer()
        _c1, stalled_task = connect(hub, stalled)
        _c2, steady_task = connect(hub, steady)
        await settle()
        loop = asyncio.get_running_loop()
        started = loop.time()
        for _ in range(10):
            hub.tick()
            await asyncio.sleep(0.05)
        await stalled_task  # it ended: dropped
        assert stalled.closed == (1013, "no progress sending for 0.2 s") and hub.stats.dropped == 1
        assert [f["seq"] for f in steady.frames("delta")] == list(range(1, 11))
        assert loop.time() - started < 1.0
        assert hub.clients == {_c2}
        steady_task.cancel()

    asyncio.run(scenario())


def test_alarms_are_lossless_and_a_reconnecting_client_gets_what_it_missed() -> None:
    stored = [(event(seq, alarm_id=seq), alarm(seq)) for seq in range(1, 6)]

    async def replay(since: int) -> list[tuple[AlarmEvent, Alarm]] | None:
        await asyncio.sleep(0.01)  # meanwhile, live events arrive
        return [(e, a) for e, a in stored if e.seq > since]

    async def scenario() -> None:
        hub = hub_with(replay)
        hub.alarm_seq = 5
        peer = Peer()
        _client, task = connect(hub, peer, since=2)
        await asyncio.sleep(0)
        hub.publish_alarms([stored[4], (event(6, 6), alarm(6))])  # 5 is also in the replay
        await asyncio.sleep(0.05)
        assert [f["seq"] for f in peer.frames("alarm")] == [3, 4, 5, 6]
        assert peer.frames("alarms") == []
        task.cancel()

    asyncio.run(scenario())


def test_a_new_client_gets_the_open_alarms_then_every_event() -> None:
    async def scenario() -> None:
        hub = hub_with()
        hub.publish_alarms([(event(1), alarm(1))])
        peer = Peer()
        _client, task = connect(hub, peer)
        await settle()
        [listed] = peer.frames("alarms")
        assert listed["seq"] == 1 and [a["id"] for a in listed["alarms"]] == [1]
        hub.publish_alarms([(event(2, alarm_id=2), alarm(2))])
        await settle()
        assert [f["seq"] for f in peer.frames("alarm")] == [2]
        task.cancel()

    asyncio.run(scenario())


def test_a_client_whose_alarm_queue_overflows_is_dropped() -> None:
    async def scenario() -> None:
        hub = hub_with(alarm_queue_limit=3, send_timeout_s=0.3)
        peer = Peer(asyncio.Event())
        _client, task = connect(hub, peer)
        await settle()
        for seq in range(1, 6):
            hub.publish_alarms([(event(seq), alarm(1))])
        await asyncio.wait_for(task, 1.0)
        assert peer.closed == (1013, "alarm queue overflow")

    asyncio.run(scenario())


def test_a_reconnecting_client_gets_every_missed_event_page_by_page_however_many() -> None:
    stored = [(event(seq), alarm(1)) for seq in range(1, 25_001)]
    pages: list[int] = []

    async def replay(since: int) -> list[tuple[AlarmEvent, Alarm]] | None:
        pages.append(since)
        await asyncio.sleep(0)
        return stored[since : since + 1000]  # as the store pages: at most 1000 after ``since``

    async def scenario() -> None:
        hub = hub_with(replay)
        hub.alarm_seq = 25_000
        peer = Peer()
        _client, task = connect(hub, peer, since=10)
        await asyncio.sleep(0)
        hub.publish_alarms([(event(25_001), alarm(1))])  # live, while the replay goes on
        for _ in range(200):
            if sum(t.startswith('{"type":"alarm",') for t in peer.sent) == 24_991:
                break
            await asyncio.sleep(0.01)
        assert [f["seq"] for f in peer.frames("alarm")] == list(range(11, 25_002))
        assert peer.frames("alarms") == []
        assert len(pages) == 26 and pages[-1] == 25_000  # the last page came back empty
        task.cancel()

    asyncio.run(scenario())


def test_after_a_tick_the_hook_runs_once_every_client_has_its_frame() -> None:
    async def scenario() -> None:
        hub = hub_with(rate_hz=100.0)
        peers = [Peer() for _ in range(3)]
        tasks = [connect(hub, p)[1] for p in peers]
        await settle()
        seen: list[list[int]] = []
        ticked = asyncio.Event()

        def after_tick() -> None:  # e.g. a full garbage collection, while the loop is quiet
            seen.append([len(p.frames("delta")) for p in peers])
            ticked.set()

        hub.after_tick = after_tick
        hub.mirror.merge({"signals": {"J1": {"state": "Gr"}}}, 5.0)
        ticker = asyncio.create_task(hub.run_ticker())
        await asyncio.wait_for(ticked.wait(), 5.0)
        assert seen[0] == [1, 1, 1]  # the tick's delta is out to all of them already
        for task in [ticker, *tasks]:
            task.cancel()

    asyncio.run(scenario())
