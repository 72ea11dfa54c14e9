"""The control room's state: what the screen shows, reduced from the message stream alone.

The simulation publishes messages; the control center (this process) reduces them into plain
JSON-able sections, live or replayed from a run's ``events.parquet`` - the same reducers either
way, so a replay shows what was shown live. A reducer reads a message's ``t`` and its payload as
a dict (as the stream's rows carry it), so nothing needs the simulation's objects.

Sections (``GET /api/state`` and the websocket feed, see the README):

=================== ==================================================================================
``run``             scenario, controller, seed, begin_s, end_s..., status, t, speed, paused, id
``signals``         per signal: program, phase (shown), target, state (SUMO's), since, mode
``decisions``       per signal: its last :data:`DECISIONS_KEPT` decisions with their reasons
``detectors``       per lane: count, queue, present, occupancy, buses (the last report)
``intersections``   per signal: the last KPI interval's queues
``kpis``            departed, arrived, running, teleported, pending, guard_violations, violations
``interval``        the last closed KPI interval's network figures (from the KPI rows)
``lanes``           closed lanes: closed, owners, user, since
``reported_incidents`` incidents operators reported, until they end
``incidents``       per lane: the last incident detection
``sensor_faults``   per lane: the detector fault, until it recovers
``stations`` ``gates`` ``signs`` ``radars`` ``crossings`` ``zones`` ``devices``  field devices
=================== ==================================================================================
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sim.kpi import INTERVAL
from sim.messages import READING_FIELDS, Message

StateChanges = dict[str, dict[str, Any]]
"""section -> key -> entry (a JSON-able value; ``None`` once an entry is gone)."""

Row = tuple[int, float, str, str, str]
"""A message as the stream's rows carry it: (seq, t, source, kind, payload as JSON)."""

Reducer = Callable[["ControlState", float, dict[str, Any]], None]
_REDUCERS: dict[str, Reducer] = {}

DECISIONS_KEPT = 6
"""The latest decisions kept per signal in the ``decisions`` section (the intersection panel's)."""


def register_reducer(kind: str) -> Callable[[Reducer], Reducer]:
    """Declare how messages of ``kind`` change the state (``reducer(state, t, payload)``);
    devices of later issues plug in here."""

    def add(reducer: Reducer) -> Reducer:
        _REDUCERS[kind] = reducer
        return reducer

    return add


class ControlState:
    """The district now, from the messages reduced so far; remembers which entries changed
    since it was last asked. Not thread-safe: the owner serialises access."""

    def __init__(self) -> None:
        self._sections: StateChanges = {}
        self._changed: StateChanges = {}

    def __call__(self, message: Message) -> None:
        self.apply(message.t, message.kind, message.payload.to_dict())

    def apply(self, t: float, kind: str, payload: dict[str, Any]) -> None:
        reducer = _REDUCERS.get(kind)
        if reducer is not None:
            reducer(self, t, payload)

    def apply_rows(self, rows: Iterable[Row]) -> None:
        """Reduce the stream's rows, in order (kinds without a reducer are not even parsed)."""
        reducers = _REDUCERS
        for _seq, t, _source, kind, payload in rows:
            reducer = reducers.get(kind)
            if reducer is not None:
                reducer(self, t, json.loads(payload))

    def apply_kpis(self, rows: Sequence[dict[str, Any]]) -> None:
        """The latest closed interval's network figures, apart from the run's running counters
        in ``kpis`` (both have ``departed`` and ``arrived``: per interval vs since the start)."""
        closed = [r for r in rows if r["scope"] == "network" and r["period"] == INTERVAL]
        for row in closed:
            self.set("interval", row["metric"], row["value"])
        if closed:
            self.set("interval", "end_s", max(r["end_s"] for r in closed))

    def get(self, section: str, key: str) -> Any:
        return self._sections.get(section, {}).get(key)

    def set(self, section: str, key: str, entry: Any) -> None:
        """Set one entry; it counts as changed only if it differs."""
        entries = self._sections.setdefault(section, {})
        if key in entries and entries[key] == entry:
            return
        entries[key] = entry
        self._changed.setdefault(section, {})[key] = entry

    def update(self, section: str, key: str, **fields: Any) -> None:
        """Merge ``fields`` into a dict entry."""
        current = self.get(section, key)
        self.set(section, key, {**(current if isinstance(current, dict) else {}), **fields})

    def add(self, section: str, key: str, amount: float) -> None:
        self.set(section, key, (self.get(section, key) or 0) + amount)

    def changes(self) -> StateChanges:
        """The entries changed since the last call (and forget them)."""
        changed, self._changed = self._changed, {}
        return changed

    def snapshot(self) -> StateChanges:
        return {section: dict(entries) for section, entries in self._sections.items()}


# --- the reducers ---------------------------------------------------------------------------------


@register_reducer("run.started")
def _run_started(state: ControlState, t: float, p: dict[str, Any]) -> None:
    for key, value in p.items():
        state.set("run", key, value)
    state.set("run", "status", "running")


@register_reducer("run.finished")
def _run_finished(state: ControlState, t: float, p: dict[str, Any]) -> None:
    state.set("run", "status", "finished")


def _decided(state: ControlState, tls: str, entry: dict[str, Any]) -> None:
    kept = state.get("decisions", tls) or []
    state.set("decisions", tls, [*kept[-(DECISIONS_KEPT - 1) :], entry])


@register_reducer("signal.decision")
def _signal_decision(state: ControlState, t: float, p: dict[str, Any]) -> None:
    _decided(state, p["tls"], {
        "t": t, "by": p["controller"], "reason": p["reason"], "detail": p["detail"],
        "from": p["from_phase"], "to": p["to_phase"], "values": p["values"],
    })  # fmt: skip


@register_reducer("signal.preempted")
def _signal_preempted(state: ControlState, t: float, p: dict[str, Any]) -> None:
    _decided(state, p["tls"], {
        "t": t, "by": "pre-emption", "reason": "preemption",
        "detail": f"emergency vehicle on {p['lane']}: phase {p['phase']} held for it",
        "to": p["phase"],
    })  # fmt: skip


@register_reducer("guard.refused")
def _guard_refused(state: ControlState, t: float, p: dict[str, Any]) -> None:
    _decided(state, p["tls"], {"t": t, "by": "guard", "reason": "guard", "detail": p["reason"]})


@register_reducer("signal.override")
def _signal_override(state: ControlState, t: float, p: dict[str, Any]) -> None:
    what = f"{p['action']} {p['argument']}".strip()
    verdict = "accepted" if p["accepted"] else "refused"
    _decided(state, p["tls"], {
        "t": t, "by": p["user"], "reason": "operator", "detail": f"{what}: {verdict} ({p['detail']})",
    })  # fmt: skip


@register_reducer("run.control")
def _run_controlled(state: ControlState, t: float, p: dict[str, Any]) -> None:
    if p["action"] in ("pause", "resume"):
        state.set("run", "paused", p["action"] == "pause")
    state.set("run", "speed", p["speed"])


@register_reducer("signal.phase")
def _signal_phase(state: ControlState, t: float, p: dict[str, Any]) -> None:
    state.update(
        "signals", p["tls"], program=p["program"], phase=p["phase"], target=p.get("target"),
        state=p["state"], since=t,
    )  # fmt: skip


@register_reducer("signal.mode")
def _signal_mode(state: ControlState, t: float, p: dict[str, Any]) -> None:
    state.update("signals", p["tls"], mode=p["mode"])


@register_reducer("detector.readings")
def _detector_readings(state: ControlState, t: float, p: dict[str, Any]) -> None:
    for lane, figures in p["lanes"].items():
        state.set("detectors", lane, dict(zip(READING_FIELDS, figures, strict=True)))


@register_reducer("intersection.interval")
def _intersection_interval(state: ControlState, t: float, p: dict[str, Any]) -> None:
    state.set("intersections", p["tls"], {
        "begin_s": p["begin_s"], "end_s": p["end_s"],
        "queue_mean_veh": round(p["queue_mean_veh"], 2), "queue_max_veh": p["queue_max_veh"],
    })  # fmt: skip


@register_reducer("network.interval")
def _network_interval(state: ControlState, t: float, p: dict[str, Any]) -> None:
    state.set("kpis", "pending", p["pending"])


def _counter(key: str) -> Reducer:
    def count(state: ControlState, t: float, p: dict[str, Any]) -> None:
        state.add("kpis", key, len(p.get("ids", ())))
        if key in ("departed", "arrived"):
            running = (state.get("kpis", "departed") or 0) - (state.get("kpis", "arrived") or 0)
            state.set("kpis", "running", running)

    return count


register_reducer("vehicles.departed")(_counter("departed"))
register_reducer("vehicles.arrived")(_counter("arrived"))
register_reducer("vehicles.teleported")(_counter("teleported"))


@register_reducer("guard.violation")
def _guard_violation(state: ControlState, t: float, p: dict[str, Any]) -> None:
    state.add("kpis", "guard_violations", 1)


@register_reducer("lane.status")
def _lane_status(state: ControlState, t: float, p: dict[str, Any]) -> None:
    if not p["accepted"]:
        return
    # ``since``: when the lane last closed or opened (a holder joining or leaving does neither).
    previous = state.get("lanes", p["lane"]) or {}
    since = previous["since"] if previous.get("closed") == p["closed"] else t
    state.set("lanes", p["lane"], {
        "closed": p["closed"], "owners": list(p["owners"]), "user": p["user"], "since": since,
    })  # fmt: skip


@register_reducer("incident.reported")
def _incident_reported(state: ControlState, t: float, p: dict[str, Any]) -> None:
    if p["accepted"]:
        state.set("reported_incidents", p["incident"], {
            "cause": p["cause"], "edge": p["edge"], "lane": p["lane"], "pos_m": p["pos_m"],
            "user": p["user"], "since": t, "until": t + p["duration_s"],
        })  # fmt: skip


@register_reducer("incident.ended")
def _incident_ended(state: ControlState, t: float, p: dict[str, Any]) -> None:
    if state.get("reported_incidents", p["incident"]) is not None:  # one an operator reported
        state.set("reported_incidents", p["incident"], None)


@register_reducer("controller.changed")
def _controller_changed(state: ControlState, t: float, p: dict[str, Any]) -> None:
    if p["accepted"]:
        state.set("run", "controller", p["controller"])


def _keyed(section: str, key: str) -> Reducer:
    """Each message is the latest entry of its device (named by the payload field ``key``)."""

    def reduce(state: ControlState, t: float, p: dict[str, Any]) -> None:
        entry = dict(p)
        state.set(section, str(entry.pop(key, "")), {**entry, "t": t})

    return reduce


# Field devices: each appears in its own section, keyed by its id.
for _kind, _section, _key in (
    ("air.reading", "stations", "station"),
    ("gate.count", "gates", "gate"),
    ("sign.shown", "signs", "sign"),
    ("radar.passes", "radars", "site"),
    ("pedestrian.count", "crossings", "site"),
    ("sensor.fault", "sensor_faults", "lane"),
    ("incident.detected", "incidents", "lane"),
):
    register_reducer(_kind)(_keyed(_section, _key))


@register_reducer("sensor.recovered")
def _sensor_recovered(state: ControlState, t: float, p: dict[str, Any]) -> None:
    state.set("sensor_faults", str(p.get("lane", "")), None)


@register_reducer("parking.occupancy")
def _parking_occupancy(state: ControlState, t: float, p: dict[str, Any]) -> None:
    for zone in p.get("zones", ()):
        entry = dict(zone)
        state.set("zones", str(entry.pop("zone", "")), entry)


@register_reducer("devices.deployed")
def _devices_deployed(state: ControlState, t: float, p: dict[str, Any]) -> None:
    state.set("devices", str(p.get("device", "")), list(p.get("sites", ())))


def _violation(state: ControlState, t: float, p: dict[str, Any]) -> None:
    state.add("kpis", "violations", 1)


for _kind in ("violation", "violation.red_light", "violation.speeding", "violation.crosswalk",
              "violation.box_blocking", "violation.improper_turn"):  # fmt: skip
    register_reducer(_kind)(_violation)
