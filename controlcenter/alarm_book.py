"""The open alarms, and how condition changes and operator actions become alarm transitions.

The book holds every alarm not yet cleared. A condition change finds the open alarm of its rule
and key in the current run (or raises a new one); an operator action finds the alarm by id.
Each call returns the history entries it made, for the store to persist and the feed to send.
The book is not thread-safe: the recorder thread owns it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from controlcenter.alarms import Alarm, AlarmAction, AlarmEvent, AlarmState, IllegalTransition
from controlcenter.rules import ConditionChange

SYSTEM = "system"
"""Who makes the transitions that conditions and timers cause."""

Checkpoint = tuple[dict[int, Alarm], int, bool, int]
"""Copies of the open alarms, the next alarm id, whether the run has ended, the run's id."""

Locate = Callable[[str, str], dict[str, Any] | None]
"""(alarm source, key) -> a GeoJSON geometry for the alarm, if the network knows one."""


class AlarmBook:
    def __init__(
        self, open_alarms: Iterable[Alarm], next_id: int, run_id: int, locate: Locate | None = None
    ) -> None:
        self.alarms = {a.id: a for a in open_alarms if a.open}
        self._next_id = next_id
        self.run_id = run_id
        self.run_ended = False
        """Set when the run in progress ends: its alarms can then be cleared by hand."""
        self._locate = locate

    def checkpoint(self) -> Checkpoint:
        """The book as it is now, to :meth:`restore` if the store does not take what follows."""
        alarms = {i: replace(a) for i, a in self.alarms.items()}
        return alarms, self._next_id, self.run_ended, self.run_id

    def restore(self, checkpoint: Checkpoint) -> None:
        """Back to a :meth:`checkpoint`: the book says what the store has, no more."""
        alarms, self._next_id, self.run_ended, self.run_id = checkpoint
        self.alarms = {i: replace(a) for i, a in alarms.items()}

    def get(self, alarm_id: int) -> Alarm | None:
        return self.alarms.get(alarm_id)

    def _find(self, rule: str, key: str) -> Alarm | None:
        for alarm in self.alarms.values():
            if alarm.run_id == self.run_id and alarm.rule == rule and alarm.key == key:
                return alarm
        return None

    def _settle(self, alarm: Alarm) -> None:
        if not alarm.open:
            del self.alarms[alarm.id]

    def on_condition(self, change: ConditionChange, at: float) -> list[tuple[Alarm, AlarmEvent]]:
        """Apply a condition change at wall time ``at`` (epoch s)."""
        alarm = self._find(change.rule, change.key)
        if alarm is None:
            if not change.active:
                return []
            alarm = Alarm(
                id=self._next_id,
                rule=change.rule,
                key=change.key,
                run_id=self.run_id,
                severity=change.severity,
                category=change.category,
                subcategory=change.subcategory,
                description=change.description,
                source=change.source,
                raised_at=at,
                raised_t=change.t,
                updated_at=at,
                location=self._locate(change.source, change.key) if self._locate else None,
            )
            self._next_id += 1
            self.alarms[alarm.id] = alarm
            return [(alarm, alarm.raised_event(SYSTEM))]
        if change.active == alarm.active:
            return []  # a latched condition seen again while still active
        action = AlarmAction.REALARM if change.active else AlarmAction.RETURN_TO_NORMAL
        if change.active:
            alarm.description = change.description
        event = alarm.apply(action, user=SYSTEM, at=at, t=change.t, note=change.description)
        self._settle(alarm)
        return [(alarm, event)]

    def act(
        self,
        alarm_id: int,
        action: AlarmAction,
        *,
        user: str,
        at: float,
        note: str = "",
        shelve_until: float | None = None,
    ) -> tuple[Alarm, AlarmEvent]:
        """An operator's action on an open alarm; :class:`IllegalTransition` if not allowed."""
        alarm = self.alarms.get(alarm_id)
        if alarm is None:
            raise IllegalTransition(f"alarm {alarm_id} is not open (cleared, or no such alarm)")
        if action in (AlarmAction.RAISE, AlarmAction.RETURN_TO_NORMAL, AlarmAction.REALARM):
            raise IllegalTransition(f"'{action.value}' follows the alarm's condition, not an operator")
        if action is AlarmAction.CLEAR and alarm.run_id == self.run_id and not self.run_ended:
            raise IllegalTransition(
                f"alarm {alarm_id} belongs to the run in progress: it clears when its condition "
                "returns to normal (clear is for alarms of ended runs)"
            )
        event = alarm.apply(action, user=user, at=at, note=note, shelve_until=shelve_until)
        self._settle(alarm)
        return alarm, event

    def expire_shelves(self, at: float) -> list[tuple[Alarm, AlarmEvent]]:
        """Unshelve every alarm whose shelf time is over."""
        done = []
        for alarm in list(self.alarms.values()):
            if alarm.state is AlarmState.SHELVED and (alarm.shelved_until or 0.0) <= at:
                event = alarm.apply(AlarmAction.UNSHELVE, user=SYSTEM, at=at, note="shelf time over")
                self._settle(alarm)
                done.append((alarm, event))
        return done

    def next_shelf_end(self) -> float | None:
        ends = [a.shelved_until for a in self.alarms.values() if a.shelved_until is not None]
        return min(ends, default=None)
