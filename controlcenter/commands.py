"""Operator commands and their audit trail.

Every command - allowed or not - is written to the audit log (who, when, what, with which
arguments, and the result) before the operator gets an answer. Commands into the simulation
(signal overrides, lanes, the controller) are audited as ``pending`` first, then sent; the
simulation's verdict (accepted or refused by the safety guard, and why) completes the entry.
The request waits a moment for it and otherwise answers that it is pending.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from controlcenter.alarms import AlarmAction, IllegalTransition
from controlcenter.auth import Role, User
from controlcenter.recorder import Recorder, Session
from controlcenter.replay import Replayer
from controlcenter.simproc import Control, SimProcess
from sim.live import LiveCommand, Outcome


@dataclass(frozen=True)
class CommandResult:
    """``result``: accepted, refused or pending; ``command`` is its audit entry's id."""

    command: int
    result: str
    detail: str
    t: float | None = None
    alarm: dict[str, Any] | None = field(default=None)

    def to_dict(self) -> dict[str, Any]:
        entry = {"command": self.command, "result": self.result, "detail": self.detail, "t": self.t}
        if self.alarm is not None:
            entry["alarm"] = self.alarm
        return entry


class Forbidden(Exception):
    """The user's role does not allow the command (it was audited as refused)."""

    def __init__(self, result: CommandResult) -> None:
        super().__init__(result.detail)
        self.result = result


class Commands:
    def __init__(self, recorder: Recorder, simulation: SimProcess | Replayer, *, wait_s: float) -> None:
        self.recorder = recorder
        self.simulation = simulation
        self.wait_s = wait_s
        self._waiting: dict[int, asyncio.Future[Outcome]] = {}

    async def audit(
        self,
        user: User,
        action: str,
        target: str,
        arguments: dict[str, Any],
        result: str,
        detail: str,
    ) -> CommandResult:
        def write(session: Session) -> int:
            return session.writer.add_audit(
                user=user.name, role=user.role.label, action=action, target=target,
                arguments=arguments, result=result, detail=detail, run_id=session.run_id,
            )  # fmt: skip

        return CommandResult(await self.recorder.call(write), result, detail)

    async def require(
        self, user: User, role: Role, action: str, target: str, arguments: dict[str, Any]
    ) -> None:
        """Refuse (audited) unless ``user`` has at least ``role``."""
        if not user.may(role):
            detail = f"role {user.role.label} may not {action}; it needs {role.label}"
            raise Forbidden(await self.audit(user, action, target, arguments, "refused", detail))

    # --- into the simulation -------------------------------------------------------------------------

    async def simulate(
        self, user: User, action: str, target: str, arguments: dict[str, Any], command: LiveCommand
    ) -> CommandResult:
        """Audit, send ``command`` into the running simulation and wait a moment for its verdict."""
        if not self.simulation.running:
            return await self.audit(user, action, target, arguments, "refused", "the run is over")
        refusal = self.simulation.refusal(command)
        if refusal is not None:
            return await self.audit(user, action, target, arguments, "refused", refusal)
        pending = await self.audit(user, action, target, arguments, "pending", "sent to the simulation")
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._waiting[pending.command] = future
        if not self.simulation.send(Control("submit", command_id=pending.command, command=command)):
            self._waiting.pop(pending.command, None)
            return await self._decide(pending.command, "refused", "the run is over")
        try:
            outcome = await asyncio.wait_for(asyncio.shield(future), self.wait_s)
        except TimeoutError:
            return CommandResult(pending.command, "pending", "queued: it applies at the next step")
        return CommandResult(
            pending.command, "accepted" if outcome.accepted else "refused", outcome.detail, outcome.t
        )

    async def _decide(self, command: int, result: str, detail: str) -> CommandResult:
        def write(session: Session) -> None:
            session.writer.decide_audit(command, result, detail, None)

        await self.recorder.call(write)
        return CommandResult(command, result, detail)

    def on_outcome(self, outcome: Outcome, _entry: dict[str, Any]) -> None:
        """A verdict, committed to the audit log (called in the event loop)."""
        future = self._waiting.pop(outcome.command_id, None)
        if future is not None and not future.done():
            future.set_result(outcome)

    # --- alarms ---------------------------------------------------------------------------------

    async def alarm(
        self,
        user: User,
        action: AlarmAction,
        alarm_id: int,
        *,
        note: str = "",
        shelve_until: float | None = None,
        arguments: dict[str, Any],
    ) -> CommandResult:
        """An operator's action on an alarm, audited with its outcome in the same commit."""

        def work(session: Session) -> CommandResult:
            alarm = session.book.get(alarm_id)
            try:
                if alarm is None and action is AlarmAction.COMMENT:
                    alarm = session.store.load_alarm(alarm_id)  # a note on a closed alarm
                    if alarm is None:
                        raise IllegalTransition(f"no alarm {alarm_id}")
                    event = alarm.apply(action, user=user.name, at=session.now, note=note)
                else:
                    alarm, event = session.book.act(
                        alarm_id, action, user=user.name, at=session.now, note=note,
                        shelve_until=shelve_until,
                    )  # fmt: skip
            except IllegalTransition as exc:
                result, detail, entry = "refused", str(exc), None
            else:
                stored = session.record(alarm, event)
                result, entry = "accepted", alarm.to_dict()
                detail = (
                    f"{event.from_state.value if event.from_state else '-'} -> {event.to_state.value}"
                )
                detail += f" (event {stored.seq})"
            audit_id = session.writer.add_audit(
                user=user.name, role=user.role.label, action=f"alarm.{action.value}",
                target=f"alarm:{alarm_id}",
                arguments=arguments, result=result, detail=detail, run_id=session.run_id,
            )  # fmt: skip
            return CommandResult(audit_id, result, detail, alarm=entry)

        return await self.recorder.call(work)
