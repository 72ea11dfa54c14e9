"""Who holds each lane closed: the one owner of every lane's access.

A lane is closed while anyone holds it: the operators (one hold, ``operator``, labelled with
whoever placed it last - operators act for the control room, so any of them may lift it) and
each incident that blocks it (``incident.N``, a ``blocked_lane``). An incident ending releases
only its own hold; an operator opening the lane releases only the operators' hold. SUMO is told
only when the first hold comes or the last one goes, so no writer undoes another's closure.

Every change - and every operator request, granted or refused - is published as
``lane.status`` with the holders, so the control room shows who holds each closed lane.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from sim.messages import LaneStatus, MessageBus
from sim.network import Network

OPERATOR = "operator"
"""The key of the operators' hold."""

CLOSED_TO = ["authority"]
"""The vehicle classes still let onto a closed lane (police, fire, works)."""


class LaneHolds:
    """Pure bookkeeping: lane -> the owners holding it closed, in the order they came, each with
    the label the control room shows (``operator:ana``, ``incident.3``)."""

    def __init__(self) -> None:
        self._holds: dict[str, dict[str, str]] = {}

    def owners(self, lane: str) -> tuple[str, ...]:
        """The labels of the holders of ``lane`` the control room may know of (hidden holders,
        labelled "", hold it too: see :meth:`closed`)."""
        return tuple(label for label in self._holds.get(lane, {}).values() if label)

    def label(self, lane: str, owner: str) -> str:
        return self._holds.get(lane, {}).get(owner, "")

    def closed(self, lane: str) -> bool:
        return bool(self._holds.get(lane))

    def held_by(self, lane: str, owner: str) -> bool:
        return owner in self._holds.get(lane, {})

    def hold(self, lane: str, owner: str, label: str) -> bool:
        """``owner`` holds ``lane`` (again: its label is updated); True if the lane was open."""
        holds = self._holds.setdefault(lane, {})
        was_open = not holds
        holds[owner] = label
        return was_open

    def release(self, lane: str, owner: str) -> bool:
        """``owner`` lets go of ``lane``; True if that opens it (it was the last holder)."""
        holds = self._holds.get(lane)
        if not holds or owner not in holds:
            return False
        del holds[owner]
        if holds:
            return False
        del self._holds[lane]
        return True


class LaneWorld(Protocol):
    """What lane access needs of the SUMO world (:class:`sim.sumo.SumoWorld`)."""

    def set_lane_access(
        self, lane: str, *, allowed: list[str] | None, disallowed: list[str] | None
    ) -> None: ...


Closed = Callable[[str], bool]
"""Whether a lane is closed now (held by anyone); the checks below count only open lanes as
ways through."""


def _never(_lane: str) -> bool:
    return False


def _other_vehicle_lanes(network: Network, lane_id: str, closed: Closed = _never) -> list[str]:
    lane = network.lanes[lane_id]
    return [
        other.id for other in network.lanes.values()
        if other.edge == lane.edge and other.id != lane.id and other.carries_vehicles
        and not closed(other.id)
    ]  # fmt: skip


def stranded_turns(network: Network, lane_id: str, closed: Closed = _never) -> list[str]:
    """Edges that only ``lane_id`` leads to among its edge's open vehicle lanes (or its own edge,
    if it is the edge's only one): closing it would leave routes through them without a lane."""
    others = _other_vehicle_lanes(network, lane_id, closed)
    if not others:
        return [network.lanes[lane_id].edge]
    reachable: set[str] = set().union(*(network.lane_targets.get(o, set()) for o in others))
    return sorted(network.lane_targets.get(lane_id, set()) - reachable)


def stranded_entries(network: Network, lane_id: str, closed: Closed = _never) -> list[str]:
    """Edges whose connections into ``lane_id``'s edge all land on ``lane_id``: closing it leaves
    routes from them without a way in, and SUMO stops the run at the next such departure."""

    def edges_into(lanes: list[str]) -> set[str]:
        return {network.lanes[s].edge for x in lanes for s in network.lane_sources.get(x, [])
                if s in network.lanes}  # fmt: skip

    others = _other_vehicle_lanes(network, lane_id, closed)
    return sorted(edges_into([lane_id]) - edges_into(others))


def closing_problem(network: Network, lane_id: str, closed: Closed = _never) -> str | None:
    """Why an operator may not close ``lane_id`` (a turn or an entry only it serves among the
    lanes open now), or None."""
    edge = network.lanes[lane_id].edge
    if missing := stranded_turns(network, lane_id, closed):
        return f"closing {lane_id} would leave no lane of {edge} leading to {', '.join(missing)}"
    if missing := stranded_entries(network, lane_id, closed):
        return f"closing {lane_id} would leave no lane of {edge} reached from {', '.join(missing)}"
    return None


def blocking_problem(network: Network, lane_id: str, closed: Closed = _never) -> str | None:
    """Why an incident may not block ``lane_id`` in SUMO, or None. A blockage may strand turns
    (drivers then wait to change lanes, as at a real one), but SUMO cannot run with an edge
    that has no lane left, or with routes into an edge that lost its only way in."""
    edge = network.lanes[lane_id].edge
    if not _other_vehicle_lanes(network, lane_id, closed):
        return f"{lane_id} is the only open vehicle lane of {edge}"
    if missing := stranded_entries(network, lane_id, closed):
        return f"blocking {lane_id} would leave no lane of {edge} reached from {', '.join(missing)}"
    return None


def _holders(owners: tuple[str, ...]) -> str:
    return ", ".join(owners)


class LaneAccess:
    """Every lane's holds in one run, applied to SUMO and published (source ``lane:<id>``).
    Times in s. Bind it to the world once SUMO runs."""

    def __init__(self, network: Network, bus: MessageBus) -> None:
        self.network = network
        self.bus = bus
        self.holds = LaneHolds()
        self.world: LaneWorld | None = None

    def bind(self, world: LaneWorld) -> None:
        self.world = world

    def owners(self, lane: str) -> tuple[str, ...]:
        return self.holds.owners(lane)

    # --- operators ----------------------------------------------------------------------------

    def close(self, t: float, lane: str, user: str, command: int = 0) -> LaneStatus:
        """An operator closes ``lane``: refused for an unknown lane or one some turn needs."""
        if lane not in self.network.lanes:
            return self._publish(t, lane, user, "close", False, f"no lane '{lane}'", command)
        # checked even when the lane is closed already: this hold may outlive the others
        if problem := closing_problem(self.network, lane, self.holds.closed):
            return self._publish(t, lane, user, "close", False, problem, command)
        others = [o for o in self.owners(lane) if not o.startswith(f"{OPERATOR}:")]
        if self.holds.hold(lane, OPERATOR, f"{OPERATOR}:{user}"):
            self._apply(lane, closed=True)
        detail = "closed" + (f" (also held by {_holders(tuple(others))})" if others else "")
        return self._publish(t, lane, user, "close", True, detail, command)

    def open(self, t: float, lane: str, user: str, command: int = 0) -> LaneStatus:
        """An operator opens ``lane``: this lifts the operators' hold only. A lane an incident
        still blocks stays closed (said in the detail); with no operators' hold to lift, that
        is a refusal."""
        if lane not in self.network.lanes:
            return self._publish(t, lane, user, "open", False, f"no lane '{lane}'", command)
        had_hold = self.holds.held_by(lane, OPERATOR)
        if self.holds.release(lane, OPERATOR):
            self._apply(lane, closed=False)
        others = self.owners(lane)
        if not others:
            return self._publish(t, lane, user, "open", True, "open", command)
        why = f"the lane stays closed: held by {_holders(others)} until it ends"
        if had_hold:
            return self._publish(t, lane, user, "open", True, f"operator hold lifted; {why}", command)
        refused = f"{why} (an operator cannot lift it)"
        return self._publish(t, lane, user, "open", False, refused, command)

    # --- incidents ----------------------------------------------------------------------------

    def blocking_problem(self, lane: str) -> str | None:
        """Why an incident may not block ``lane`` now, with the other lanes closed now (None: it
        may); checked even when the lane is closed already, as its hold may outlive the others."""
        return blocking_problem(self.network, lane, self.holds.closed)

    def block(self, t: float, lane: str, incident: str, *, known: bool) -> None:
        """Incident ``incident`` blocks ``lane`` (check :meth:`blocking_problem` first). Only a
        ``known`` one (an operator reported it) is published and named to operators: the
        control room does not learn of an incident from the ground truth (a scheduled one, a
        crash) but from its detection; its hold still counts."""
        if self.holds.hold(lane, incident, incident if known else ""):
            self._apply(lane, closed=True)
        if known:
            self._publish(t, lane, incident, "close", True, f"blocked by {incident}")

    def unblock(self, t: float, lane: str, incident: str) -> None:
        """Incident ``incident`` ended: its hold goes; the lane opens if nobody else holds it."""
        if not self.holds.held_by(lane, incident):
            return
        known = bool(self.holds.label(lane, incident))
        if self.holds.release(lane, incident):
            self._apply(lane, closed=False)
        if not known:
            return
        others = self.owners(lane)
        detail = f"{incident} ended" + (
            f"; the lane stays closed: held by {_holders(others)}" if others else ": open"
        )
        self._publish(t, lane, incident, "open", True, detail)

    # --- SUMO and the stream ------------------------------------------------------------------

    def _apply(self, lane_id: str, *, closed: bool) -> None:
        if self.world is None:
            raise RuntimeError("lane access used before SUMO runs (bind it first)")
        if closed:
            self.world.set_lane_access(lane_id, allowed=list(CLOSED_TO), disallowed=None)
            return
        lane = self.network.lanes[lane_id]
        self.world.set_lane_access(
            lane_id,
            allowed=sorted(lane.allow) if lane.allow else None,
            disallowed=sorted(lane.disallow) if lane.disallow else None,
        )

    def _publish(
        self,
        t: float,
        lane: str,
        user: str,
        asked: str,
        accepted: bool,
        detail: str,
        command: int = 0,
    ) -> LaneStatus:
        owners = self.owners(lane)
        status = LaneStatus(lane, bool(owners), user, accepted, detail, owners, asked, command)
        self.bus.publish(t, f"lane:{lane}", status)
        return status
