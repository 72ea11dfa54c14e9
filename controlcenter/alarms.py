"""Alarms and their lifecycle, in the spirit of ISA-18.2, as an explicit state machine.

::

    raise ──> ACTIVE_UNACKNOWLEDGED ──acknowledge──> ACKNOWLEDGED ──return-to-normal──> CLEARED
                  │        ^                                                            ^
     return-to-normal   re-alarm                                                        │
                  v        │                                                            │
           RETURN_TO_NORMAL_UNACKNOWLEDGED ─────────────acknowledge─────────────────────┘

    shelve (from any open state) ──> SHELVED ──unshelve / shelf time over──> ACTIVE_UNACKNOWLEDGED
                                                                        (or CLEARED if normal)
    out-of-service (from any open state) ──> OUT_OF_SERVICE ──return-to-service──> (as unshelve)
    clear (any open alarm whose run has ended) ──> CLEARED

An alarm whose run has ended can no longer return to normal - its condition is no longer
evaluated - so an operator clears it (or takes it out of service) by hand, audited like every
operator action. The book refuses ``clear`` for an alarm of the run in progress.

The condition behind an alarm (``active``) is tracked apart from the state: a shelved alarm
still notes when its condition returns to normal or comes back. ``CLEARED`` is final; the next
occurrence of the condition raises a new alarm. Every transition records who made it and when,
and anything not in the table raises :class:`IllegalTransition`. A comment is allowed in every
state and changes none.

Severity and category follow the Smart Data Models ``Alert`` entity (``severity``: informational
... critical; ``category`` / ``subCategory`` from its vocabulary), so an alarm maps onto an NGSI
``Alert`` as it is.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from sim.errors import CcsimError


class Severity(Enum):
    INFORMATIONAL = "informational"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return list(Severity).index(self)


CATEGORIES = frozenset(
    {"traffic", "naturalDisaster", "weather", "environment", "health", "security", "agriculture"}
)
"""``Alert.category`` of the Smart Data Models."""

SUBCATEGORIES = frozenset({
    "trafficJam", "carAccident", "carWrongDirection", "carStopped", "pothole", "roadClosed",
    "roadWorks", "hazardOnRoad", "injuredBiker", "pedestrianOnRoad", "bikerOnRoad",
    "tramApproaching", "crowdRisk", "flood", "tsunami", "coastalEvent", "earthquake", "rainfall",
    "highTemperature", "lowTemperature", "lowHumidity", "highHumidity", "heatWave", "coldWave",
    "ice", "snow", "wind", "fog", "tornado", "tropicalCyclone", "hurricane", "thunderstorms",
    "fireRisk", "avalancheRisk", "floodRisk", "airPollution", "waterPollution",
    "pollenConcentration", "asthmaAttack", "bumpedPatient", "fallenPatient", "heartAttack",
    "suspiciousAction", "robbery", "assault", "civilDisorder", "buildingFire", "forestFire",
})  # fmt: skip
"""``Alert.subCategory`` values of the Smart Data Models that a district can raise..."""

CCSIM_SUBCATEGORIES = frozenset({"sensorFault", "parkingOverstay", "parkingMisuse"})
"""...and the few a control room needs that the Smart Data Models do not name."""


class AlarmState(Enum):
    ACTIVE_UNACKNOWLEDGED = "active-unacknowledged"
    ACKNOWLEDGED = "acknowledged"
    RETURN_TO_NORMAL_UNACKNOWLEDGED = "return-to-normal-unacknowledged"
    CLEARED = "cleared"
    SHELVED = "shelved"
    OUT_OF_SERVICE = "out-of-service"


class AlarmAction(Enum):
    RAISE = "raise"
    ACKNOWLEDGE = "acknowledge"
    RETURN_TO_NORMAL = "return-to-normal"
    REALARM = "re-alarm"
    SHELVE = "shelve"
    UNSHELVE = "unshelve"
    REMOVE_FROM_SERVICE = "out-of-service"
    RETURN_TO_SERVICE = "return-to-service"
    CLEAR = "clear"
    COMMENT = "comment"


_S, _A = AlarmState, AlarmAction
_OPEN_IN_SERVICE = (
    _S.ACTIVE_UNACKNOWLEDGED, _S.ACKNOWLEDGED, _S.RETURN_TO_NORMAL_UNACKNOWLEDGED, _S.SHELVED
)  # fmt: skip
TRANSITIONS: dict[tuple[AlarmState, AlarmAction], AlarmState] = {
    (_S.ACTIVE_UNACKNOWLEDGED, _A.ACKNOWLEDGE): _S.ACKNOWLEDGED,
    (_S.ACTIVE_UNACKNOWLEDGED, _A.RETURN_TO_NORMAL): _S.RETURN_TO_NORMAL_UNACKNOWLEDGED,
    (_S.ACTIVE_UNACKNOWLEDGED, _A.SHELVE): _S.SHELVED,
    (_S.ACKNOWLEDGED, _A.RETURN_TO_NORMAL): _S.CLEARED,
    (_S.ACKNOWLEDGED, _A.SHELVE): _S.SHELVED,
    (_S.RETURN_TO_NORMAL_UNACKNOWLEDGED, _A.ACKNOWLEDGE): _S.CLEARED,
    (_S.RETURN_TO_NORMAL_UNACKNOWLEDGED, _A.REALARM): _S.ACTIVE_UNACKNOWLEDGED,
    (_S.RETURN_TO_NORMAL_UNACKNOWLEDGED, _A.SHELVE): _S.SHELVED,
    (_S.SHELVED, _A.RETURN_TO_NORMAL): _S.SHELVED,
    (_S.SHELVED, _A.REALARM): _S.SHELVED,
    (_S.OUT_OF_SERVICE, _A.RETURN_TO_NORMAL): _S.OUT_OF_SERVICE,
    (_S.OUT_OF_SERVICE, _A.REALARM): _S.OUT_OF_SERVICE,
    **{(state, _A.REMOVE_FROM_SERVICE): _S.OUT_OF_SERVICE for state in _OPEN_IN_SERVICE},
    **{(state, _A.CLEAR): _S.CLEARED for state in (*_OPEN_IN_SERVICE, _S.OUT_OF_SERVICE)},
    # (SHELVED, UNSHELVE) and (OUT_OF_SERVICE, RETURN_TO_SERVICE) depend on the condition: see
    # Alarm.next_state.
}
"""Every legal transition but unshelving and returning to service; anything else raises."""


class IllegalTransition(CcsimError):
    """An action the alarm's current state does not allow (HTTP 409 for an operator)."""


def iso(epoch_s: float | None) -> str | None:
    """UTC ISO 8601 time of a wall-clock epoch (s)."""
    if epoch_s is None:
        return None
    return dt.datetime.fromtimestamp(epoch_s, dt.UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class AlarmEvent:
    """One entry of an alarm's history. ``seq`` orders all alarm events of the store (it is the
    resync point of the feed); ``at`` is wall-clock epoch s, ``t`` simulation time s."""

    alarm_id: int
    action: AlarmAction
    from_state: AlarmState | None
    to_state: AlarmState
    user: str
    at: float
    t: float | None = None
    note: str = ""
    seq: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "alarm": self.alarm_id,
            "action": self.action.value,
            "from": None if self.from_state is None else self.from_state.value,
            "to": self.to_state.value,
            "user": self.user,
            "at": iso(self.at),
            "t": self.t,
            "note": self.note,
        }


@dataclass
class Alarm:
    """One alarm. ``key`` names its subject (a signal id, a lane...) within its ``rule``."""

    id: int
    rule: str
    key: str
    run_id: int
    severity: Severity
    category: str
    subcategory: str
    description: str
    source: str
    state: AlarmState = AlarmState.ACTIVE_UNACKNOWLEDGED
    active: bool = True
    raised_at: float = 0.0
    raised_t: float | None = None
    updated_at: float = 0.0
    occurrences: int = 1
    shelved_until: float | None = None
    location: dict[str, Any] | None = field(default=None, compare=False)

    @property
    def open(self) -> bool:
        return self.state is not AlarmState.CLEARED

    def next_state(self, action: AlarmAction) -> AlarmState:
        """The state ``action`` leads to, or :class:`IllegalTransition`."""
        if action is AlarmAction.COMMENT:
            return self.state
        if (action, self.state) in (
            (AlarmAction.UNSHELVE, AlarmState.SHELVED),
            (AlarmAction.RETURN_TO_SERVICE, AlarmState.OUT_OF_SERVICE),
        ):
            return AlarmState.ACTIVE_UNACKNOWLEDGED if self.active else AlarmState.CLEARED
        if action is AlarmAction.RETURN_TO_NORMAL and not self.active:
            raise IllegalTransition(f"alarm {self.id}: its condition is already normal")
        if action is AlarmAction.REALARM and self.active:
            raise IllegalTransition(f"alarm {self.id}: its condition is already active")
        state = TRANSITIONS.get((self.state, action))
        if state is None:
            raise IllegalTransition(f"alarm {self.id} is {self.state.value}: cannot {action.value}")
        return state

    def apply(
        self,
        action: AlarmAction,
        *,
        user: str,
        at: float,
        t: float | None = None,
        note: str = "",
        shelve_until: float | None = None,
    ) -> AlarmEvent:
        """Carry out ``action`` (nothing changes if it is illegal) and return its history entry."""
        if action is AlarmAction.RAISE:
            raise IllegalTransition(f"alarm {self.id} exists already: a raise creates a new alarm")
        if action is AlarmAction.SHELVE and (shelve_until is None or shelve_until <= at):
            raise IllegalTransition(f"alarm {self.id}: shelving needs an end in the future")
        to_state = self.next_state(action)
        event = AlarmEvent(self.id, action, self.state, to_state, user, at, t, note)
        self.state = to_state
        self.updated_at = at
        if action is AlarmAction.RETURN_TO_NORMAL:
            self.active = False
        elif action is AlarmAction.REALARM:
            self.active = True
            self.occurrences += 1
        elif action is AlarmAction.SHELVE:
            self.shelved_until = shelve_until
        elif action in (AlarmAction.UNSHELVE, AlarmAction.REMOVE_FROM_SERVICE, AlarmAction.CLEAR):
            self.shelved_until = None
        return event

    def raised_event(self, user: str) -> AlarmEvent:
        return AlarmEvent(
            self.id, AlarmAction.RAISE, None, self.state, user, self.raised_at, self.raised_t
        )

    def to_dict(self) -> dict[str, Any]:
        """The alarm as a Smart Data Models ``Alert`` (key-values), with its lifecycle fields."""
        entry: dict[str, Any] = {
            "id": self.id,
            "type": "Alert",
            "state": self.state.value,
            "active": self.active,
            "severity": self.severity.value,
            "category": self.category,
            "subCategory": self.subcategory,
            "description": self.description,
            "alertSource": self.source,
            "dateIssued": iso(self.raised_at),
            "dateModified": iso(self.updated_at),
            "t": self.raised_t,
            "rule": self.rule,
            "key": self.key,
            "run": self.run_id,
            "occurrences": self.occurrences,
            "shelvedUntil": iso(self.shelved_until),
        }
        if self.location is not None:
            entry["location"] = self.location
        return entry
