"""The REST API under ``/api`` (OpenAPI at ``/openapi.json``, browsable at ``/docs``).

Every call needs ``Authorization: Bearer <token>``; reads need the viewer role, commands the
operator role, the controller and the retention settings the engineer role, and the accounts
(:mod:`controlcenter.accounts`) the admin role. Command answers carry the
audit entry's id and the result: 200 accepted, 202 pending (the simulation has not applied it
yet), 409 refused (and why), 403 when the role does not allow it - audited all the same.

The OpenAPI document describes every answer a route can give, errors included (each route's
``responses``), and schemathesis checks that against a running server (tests/e2e/test_api_fuzz.py).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Security
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, field_validator

from controlcenter.alarms import AlarmAction, AlarmState, Severity
from controlcenter.auth import AuthError, Role, User
from controlcenter.commands import CommandResult
from controlcenter.replay import RecordedRun
from controlcenter.runtime import ControlCenter, RunRefused
from controlcenter.store import RETENTION_DEFAULTS
from sim.devices.incidents import incident_problem
from sim.errors import CcsimError
from sim.live import ControllerSwitch, RunControl, check_speed
from sim.signals import Action, IncidentCommand, LaneCommand, SignalCommand

NUL = "\x00"


ROW_ID_MAX = 2**63 - 1
"""The largest id or offset the store can hold (a signed 64-bit integer, on both engines):
a larger one in a path or query is refused (422) rather than failing in the driver."""


class Body(BaseModel):
    """A request body. Its JSON types are taken as the schema gives them (strict: ``"5"`` is
    no number, ``1`` no text), a field the schema does not name is refused (a misspelt
    ``duration_s`` must not fall back to its default), and no text in it may hold a NUL
    character: nobody means one, and the PostgreSQL store cannot keep one (it would answer 503
    for what is bad input). NUL in a path or query: the ``no_nul`` middleware of the app."""

    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if isinstance(value, str) and NUL in value:
            raise ValueError("NUL characters (\\u0000) are not accepted")
        return value


class Problem(BaseModel):
    """An error answer. ``detail`` says what was wrong - for bad input, the field and what was
    expected; some answers add fields (a refused command's audit entry, the field at fault)."""

    detail: str


class CommandAnswer(BaseModel):
    """A command's answer: its audit entry's id and the result (and for an alarm, the alarm)."""

    command: int = Field(description="the audit entry's id")
    result: Literal["accepted", "refused", "pending"]
    detail: str
    t: float | None = Field(None, description="the simulation time it took effect at, s")
    alarm: dict[str, Any] | None = None


WHY: dict[int, str] = {
    400: "the request cannot be answered as asked (the detail says why)",
    401: "no valid token: Authorization: Bearer <token>",
    403: "the caller's role does not allow it (a command is audited as refused all the same)",
    404: "no such thing (the detail names it)",
    409: "refused, and why (audited)",
    422: "a parameter or the body does not fit: the detail names the field and what was expected",
    429: "too many bad tokens from this address: try again after Retry-After seconds",
    501: "not implemented here (the detail says what)",
    503: "the store did not answer or did not take the write: nothing of it was kept",
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entries for error answers ``{"detail": ...}`` with these statuses."""
    return {status: {"model": Problem, "description": WHY[status]} for status in statuses}


COMMAND_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {"model": CommandAnswer, "description": "accepted"},
    202: {"model": CommandAnswer, "description": "pending: sent, the simulation has not answered yet"},
    409: {"model": CommandAnswer, "description": WHY[409]},
    **problems(403),
}
"""The answers of a command (:func:`answer`), and its refusal for the caller's role."""

router = APIRouter(prefix="/api", responses=problems(401, 422, 429, 503))
"""Every route: no token (401), bad input (422; a NUL anywhere is refused before the route runs),
locked out (429) and the store failing (503)."""

BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="A user's token (`ccsim serve` prints the admin's; admins create the others).",
)
"""Declares the token in the OpenAPI document; :func:`authenticated` checks it."""

RowId = Annotated[int, Path(ge=1, le=ROW_ID_MAX)]
RunFilter = Annotated[int | None, Query(ge=1, le=ROW_ID_MAX, description="a run's id")]
Offset = Annotated[int, Query(ge=0, le=ROW_ID_MAX)]


def center_of(request: Request) -> ControlCenter:
    center: ControlCenter = request.app.state.center
    return center


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def authenticated(
    request: Request,
    _declared: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)] = None,
) -> User:
    """The caller, from its bearer token (401 without a valid one, 429 while locked out)."""
    return center_of(request).auth.from_header(
        request.headers.get("authorization"), client_address(request)
    )


Caller = Annotated[User, Depends(authenticated)]
Center = Annotated[ControlCenter, Depends(center_of)]


def answer(result: CommandResult) -> JSONResponse:
    status = {"accepted": 200, "pending": 202}.get(result.result, 409)
    return JSONResponse(result.to_dict(), status_code=status)


def need(user: User, role: Role) -> None:
    """For reads: 403 unless the caller has ``role``."""
    if not user.may(role):
        raise HTTPException(403, f"role {user.role.label} may not do this; it needs {role.label}")


# --- reads ---------------------------------------------------------------------------------------


@router.get("/health")
async def health(center: Center, _user: Caller) -> dict[str, Any]:
    """The server, the simulation, the feed, the store and the alarms at a glance."""
    return center.health()


@router.get("/me")
async def me(user: Caller) -> dict[str, str]:
    """Who the token belongs to and its role (the control room shows what the role allows)."""
    return {"name": user.name, "role": user.role.label}


@router.get("/network", response_class=Response)
async def network(center: Center, _user: Caller) -> Response:
    """The district as a GeoJSON FeatureCollection (net coordinates in metres, see properties)."""
    return JSONResponse(center.map.geojson, media_type="application/geo+json")


@router.get("/adapters")
async def adapters(center: Center, _user: Caller) -> dict[str, Any]:
    """The protocol adapters: each NTCIP agent's signal, address, phases, detectors and counters."""
    return center.adapters()


@router.get("/state")
async def state(center: Center, _user: Caller) -> dict[str, Any]:
    """The current state snapshot (as the feed's snapshot frames), with the open alarms."""
    return {
        "tick": center.hub.seq,
        "t": center.mirror.t,
        "state": center.mirror.snapshot(),
        "alarm_seq": center.hub.alarm_seq,
        "alarms": list(center.hub.open_alarms.values()),
    }


@router.get("/alarms")
def alarms(
    center: Center,
    _user: Caller,
    state: Annotated[list[AlarmState] | None, Query()] = None,
    severity: Annotated[list[Severity] | None, Query()] = None,
    category: str | None = None,
    run: RunFilter = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Alarms, newest first, filtered by state, severity, category or run; paged."""
    page = center.store.alarms(
        states=[s.value for s in state or []],
        severities=[s.value for s in severity or []],
        category=category,
        run_id=run,
        limit=limit,
        offset=offset,
    )
    return {"total": page.total, "limit": limit, "offset": offset, "items": page.items}


@router.get("/alarms/{alarm_id}", responses=problems(404))
def alarm(center: Center, _user: Caller, alarm_id: RowId) -> dict[str, Any]:
    """One alarm with its whole history (who did what, when)."""
    found = center.store.load_alarm(alarm_id)
    if found is None:
        raise HTTPException(404, f"no alarm {alarm_id}")
    return {**found.to_dict(), "history": center.store.alarm_history(alarm_id)}


@router.get("/events")
def events(
    center: Center,
    _user: Caller,
    run: RunFilter = None,
    kind: Annotated[list[str] | None, Query()] = None,
    source: str | None = None,
    after: Annotated[int, Query(ge=0, le=ROW_ID_MAX, description="only events with seq above this")] = 0,
    since_t: float | None = None,
    until_t: float | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> dict[str, Any]:
    """The message history: every message of the run (``t``, ``seq``, source, kind, payload)."""
    run_id = center.run.id if run is None else run
    if center.replaying is not None and run_id == center.run.id:
        # a replay's messages are those of its events.parquet, up to the time replayed
        until = center.replaying.t if until_t is None else min(until_t, center.replaying.t)
        items = replayed_events(
            center.replaying.run, run_id, kind or [], source, after, since_t, until, limit
        )
    else:
        items = center.store.events(
            run_id=run_id, kinds=kind or [], source=source, after_seq=after, since_t=since_t,
            until_t=until_t, limit=limit,
        )  # fmt: skip
    return {"run": run_id, "items": items, "next": items[-1]["seq"] if items else after}


@router.get("/kpis")
def kpis(
    center: Center,
    _user: Caller,
    run: RunFilter = None,
    scope: str | None = None,
    metric: str | None = None,
    period: Literal["interval", "run"] | None = None,
) -> dict[str, Any]:
    """KPI time series (the rows of ``timeseries.parquet``), as each interval closes."""
    run_id = center.run.id if run is None else run
    if center.replaying is not None and run_id == center.run.id:
        t, recorded = center.replaying.t, center.replaying.run
        rows = [
            r for r in recorded.kpis
            if (r["end_s"] <= t if r["period"] == "interval" else t >= recorded.end_t)
            and (scope is None or r["scope"] == scope) and (metric is None or r["metric"] == metric)
            and (period is None or r["period"] == period)
        ]  # fmt: skip
    else:
        rows = center.store.kpis(run_id=run_id, scope=scope, metric=metric, period=period)
    return {"run": run_id, "items": rows}


@router.get("/audit")
def audit(
    center: Center,
    _user: Caller,
    user: str | None = None,
    action: str | None = None,
    result: Literal["accepted", "refused", "pending"] | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Every command, newest first: who, when, what, with which arguments, and the result."""
    page = center.store.audit(user=user, action=action, result=result, limit=limit, offset=offset)
    return {"total": page.total, "limit": limit, "offset": offset, "items": page.items}


@router.get("/runs")
def runs(center: Center, _user: Caller) -> dict[str, Any]:
    return {"current": center.run.id, "items": center.store.runs()}


@router.post("/runs", responses=COMMAND_ANSWERS)
async def new_run(center: Center, user: Caller) -> JSONResponse:
    """Start the scenario again as a new run (same controller, seed and options) once the run
    in progress has ended: finished, or failed (its simulation process crashed). The ended
    runs stay in the store with their alarms and audit. 409 while a run is in progress, and in
    a replay; the answer's ``run`` is the new run's id."""
    await center.commands.require(user, Role.OPERATOR, "run.start", "simulation", {})
    try:
        run = await center.new_run()
    except RunRefused as exc:
        return answer(
            await center.commands.audit(user, "run.start", "simulation", {}, "refused", str(exc))
        )
    started = await center.commands.audit(
        user, "run.start", "simulation", {}, "accepted", f"run {run.id} started"
    )
    return JSONResponse({**started.to_dict(), "run": run.id})


def replayed_events(
    run: RecordedRun, run_id: int, kinds: list[str], source: str | None, after: int,
    since_t: float | None, until_t: float, limit: int,
) -> list[dict[str, Any]]:  # fmt: skip
    """A replayed run's messages as ``/api/events`` gives a live run's."""
    items = []
    for seq, t, src, kind, payload in run.rows[: run.until(until_t)]:
        if seq <= after or (since_t is not None and t < since_t) or (kinds and kind not in kinds):
            continue
        if source is not None and src != source:
            continue
        items.append({"run": run_id, "seq": seq, "t": t, "source": src, "kind": kind,
                      "payload": json.loads(payload)})  # fmt: skip
        if len(items) >= limit:
            break
    return items


# --- alarm commands ------------------------------------------------------------------------------


class Note(Body):
    note: str = Field("", max_length=2000)


class Shelve(Body):
    duration_s: float = Field(3600.0, gt=0, le=7 * 86400, description="how long, s (at most 7 days)")
    note: str = Field("", max_length=2000)


class Comment(Body):
    text: str = Field(min_length=1, max_length=2000)


async def _alarm_command(
    center: ControlCenter, user: User, action: AlarmAction, alarm_id: int, arguments: dict[str, Any],
    *, note: str = "", shelve_until: float | None = None,
) -> JSONResponse:  # fmt: skip
    await center.commands.require(
        user, Role.OPERATOR, f"alarm.{action.value}", f"alarm:{alarm_id}", arguments
    )
    result = await center.commands.alarm(
        user, action, alarm_id, note=note, shelve_until=shelve_until, arguments=arguments
    )
    return answer(result)


@router.post("/alarms/{alarm_id}/acknowledge", responses=COMMAND_ANSWERS)
async def acknowledge(center: Center, user: Caller, alarm_id: RowId, body: Note) -> JSONResponse:
    return await _alarm_command(
        center, user, AlarmAction.ACKNOWLEDGE, alarm_id, body.model_dump(), note=body.note
    )


@router.post("/alarms/{alarm_id}/shelve", responses=COMMAND_ANSWERS)
async def shelve(center: Center, user: Caller, alarm_id: RowId, body: Shelve) -> JSONResponse:
    until = time.time() + body.duration_s
    return await _alarm_command(
        center, user, AlarmAction.SHELVE, alarm_id, body.model_dump(), note=body.note, shelve_until=until
    )


@router.post("/alarms/{alarm_id}/unshelve", responses=COMMAND_ANSWERS)
async def unshelve(center: Center, user: Caller, alarm_id: RowId, body: Note) -> JSONResponse:
    return await _alarm_command(
        center, user, AlarmAction.UNSHELVE, alarm_id, body.model_dump(), note=body.note
    )


@router.post("/alarms/{alarm_id}/out-of-service", responses=COMMAND_ANSWERS)
async def remove_from_service(center: Center, user: Caller, alarm_id: RowId, body: Note) -> JSONResponse:
    """Take an open alarm out of service (a device in maintenance, an alarm of a run that ended):
    it stays recorded, apart, until returned to service or cleared."""
    return await _alarm_command(
        center, user, AlarmAction.REMOVE_FROM_SERVICE, alarm_id, body.model_dump(), note=body.note
    )


@router.post("/alarms/{alarm_id}/return-to-service", responses=COMMAND_ANSWERS)
async def return_to_service(center: Center, user: Caller, alarm_id: RowId, body: Note) -> JSONResponse:
    return await _alarm_command(
        center, user, AlarmAction.RETURN_TO_SERVICE, alarm_id, body.model_dump(), note=body.note
    )


@router.post("/alarms/{alarm_id}/clear", responses=COMMAND_ANSWERS)
async def clear(center: Center, user: Caller, alarm_id: RowId, body: Note) -> JSONResponse:
    """Clear an open alarm of a run that has ended (its condition can no longer return to
    normal); refused (409) for an alarm of the run in progress."""
    return await _alarm_command(
        center, user, AlarmAction.CLEAR, alarm_id, body.model_dump(), note=body.note
    )


@router.post("/alarms/{alarm_id}/comment", responses=COMMAND_ANSWERS)
async def comment(center: Center, user: Caller, alarm_id: RowId, body: Comment) -> JSONResponse:
    return await _alarm_command(
        center, user, AlarmAction.COMMENT, alarm_id, body.model_dump(), note=body.text
    )


# --- commands into the simulation ----------------------------------------------------------------


class Override(Body):
    action: Literal["hold", "plan", "flash", "automatic"]
    argument: str = Field("", max_length=100, description="phase index (hold) or program id (plan)")


class Speed(Body):
    speed: float | None = Field(
        description="simulated seconds per wall second; null: as fast as possible"
    )


class ControllerChoice(Body):
    controller: str = Field(min_length=1, max_length=64)


@router.post("/signals/{tls}/override", responses=COMMAND_ANSWERS)
async def override(center: Center, user: Caller, tls: str, body: Override) -> JSONResponse:
    """Hold a phase, force a plan, flash, or back to automatic - through the safety guard."""
    arguments = body.model_dump()
    await center.commands.require(user, Role.OPERATOR, "signal.override", f"tls:{tls}", arguments)
    command = SignalCommand(tls, Action(body.action), body.argument, user.name)
    return answer(
        await center.commands.simulate(user, "signal.override", f"tls:{tls}", arguments, command)
    )


async def _lane(center: ControlCenter, user: User, lane: str, closed: bool) -> JSONResponse:
    action = "lane.close" if closed else "lane.open"
    await center.commands.require(user, Role.OPERATOR, action, f"lane:{lane}", {})
    command = LaneCommand(lane, closed, user.name)
    return answer(await center.commands.simulate(user, action, f"lane:{lane}", {}, command))


@router.post("/lanes/{lane}/close", responses=COMMAND_ANSWERS)
async def close_lane(center: Center, user: Caller, lane: str) -> JSONResponse:
    """Close a lane to traffic (only authority vehicles may use it): the operators' hold on it,
    beside any incident blocking it. Refused for a lane some turn or entry needs."""
    return await _lane(center, user, lane, True)


@router.post("/lanes/{lane}/open", responses=COMMAND_ANSWERS)
async def open_lane(center: Center, user: Caller, lane: str) -> JSONResponse:
    """Lift the operators' hold on a lane. A lane an incident still blocks stays closed (the
    detail says by whom); with no operators' hold to lift, that is refused (409)."""
    return await _lane(center, user, lane, False)


class IncidentReport(Body):
    """As a ``[[devices.incidents.inject]]`` entry of scenario.toml, without ``at_s``: it occurs
    at the next step."""

    edge: str = Field(min_length=1, max_length=200, description="the edge (road) it is on")
    lane: int = Field(0, ge=0, le=99, description="the lane's index on the edge, 0 the rightmost")
    pos_m: float = Field(50.0, ge=0, description="where along the lane, m from its start")
    duration_s: float = Field(600.0, gt=0, le=86400, description="how long it lasts, s")
    cause: Literal["stopped_vehicle", "blocked_lane"] = Field(
        "stopped_vehicle", description="a broken-down car, or the lane closed to all traffic"
    )


@router.post("/incidents", responses={**COMMAND_ANSWERS, **problems(422)})
async def report_incident(center: Center, user: Caller, body: IncidentReport) -> JSONResponse:
    """Report an incident: it occurs in the simulation at the next step, as an injected one
    does (detection, the information signs, a ``blocked_lane`` holding its lane closed). 422
    names the field that does not fit the net and what was expected."""
    arguments = body.model_dump()
    target = f"lane:{body.edge}_{body.lane}"
    await center.commands.require(user, Role.OPERATOR, "incident.report", target, arguments)
    devices = center.scenario.devices
    if devices is None or devices.incidents is None:
        detail = "no incident model in this run: the scenario needs [devices.incidents]"
        return answer(await center.commands.audit(
            user, "incident.report", target, arguments, "refused", detail
        ))  # fmt: skip
    problem = incident_problem(
        center.map.network, body.edge, body.lane, body.pos_m, body.duration_s, body.cause
    )
    if problem is not None:
        refused = await center.commands.audit(
            user, "incident.report", target, arguments, "refused", str(problem)
        )
        wrong = {"field": problem.field, "expected": problem.expected}
        return JSONResponse({**refused.to_dict(), **wrong}, status_code=422)
    command = IncidentCommand(body.edge, body.lane, body.pos_m, body.duration_s, body.cause, user.name)
    return answer(await center.commands.simulate(user, "incident.report", target, arguments, command))


@router.post("/simulation/pause", responses=COMMAND_ANSWERS)
async def pause(center: Center, user: Caller) -> JSONResponse:
    await center.commands.require(user, Role.OPERATOR, "simulation.pause", "simulation", {})
    command = RunControl("pause", user=user.name)
    return answer(await center.commands.simulate(user, "simulation.pause", "simulation", {}, command))


@router.post("/simulation/resume", responses=COMMAND_ANSWERS)
async def resume(center: Center, user: Caller) -> JSONResponse:
    await center.commands.require(user, Role.OPERATOR, "simulation.resume", "simulation", {})
    command = RunControl("resume", user=user.name)
    return answer(await center.commands.simulate(user, "simulation.resume", "simulation", {}, command))


@router.post("/simulation/speed", responses=COMMAND_ANSWERS)
async def speed(center: Center, user: Caller, body: Speed) -> JSONResponse:
    arguments = body.model_dump()
    await center.commands.require(user, Role.OPERATOR, "simulation.speed", "simulation", arguments)
    try:
        check_speed(body.speed)
        if center.ntcip is not None and center.ntcip.controllers and body.speed != 1.0:
            raise CcsimError(
                "an external controller is in the loop: it times its phases on the wall clock, "
                "so the run keeps speed 1"
            )
    except CcsimError as exc:
        refused = await center.commands.audit(
            user, "simulation.speed", "simulation", arguments, "refused", str(exc)
        )
        return answer(refused)
    command = RunControl("speed", body.speed, user=user.name)
    return answer(
        await center.commands.simulate(user, "simulation.speed", "simulation", arguments, command)
    )


class SeekTo(Body):
    t: float = Field(description="the simulation time to move the replay to, s")


@router.post("/simulation/seek", responses=COMMAND_ANSWERS)
async def seek(center: Center, user: Caller, body: SeekTo) -> JSONResponse:
    """Move a replay (``ccsim replay``) to simulation time ``t``: the control room then shows
    the state as of ``t``, and plays on from there unless paused. Refused (409) on a live run,
    and for a time outside the run."""
    arguments = body.model_dump()
    await center.commands.require(user, Role.OPERATOR, "simulation.seek", "simulation", arguments)
    replaying = center.replaying
    if replaying is None:
        detail = "seek is for a replay of a finished run (ccsim replay); a live run goes forward only"
        return answer(await center.commands.audit(
            user, "simulation.seek", "simulation", arguments, "refused", detail
        ))  # fmt: skip
    try:
        t = await asyncio.to_thread(replaying.seek, body.t)
    except CcsimError as exc:
        return answer(await center.commands.audit(
            user, "simulation.seek", "simulation", arguments, "refused", str(exc)
        ))  # fmt: skip
    center.hub.resync()
    result = await center.commands.audit(
        user, "simulation.seek", "simulation", arguments, "accepted", f"at t={t:g} s"
    )
    return answer(replace(result, t=t))


@router.post("/simulation/controller", responses=COMMAND_ANSWERS)
async def controller(center: Center, user: Caller, body: ControllerChoice) -> JSONResponse:
    """Hand the signals to another of ccsim's controllers (at the next step)."""
    arguments = body.model_dump()
    await center.commands.require(user, Role.ENGINEER, "simulation.controller", "simulation", arguments)
    command = ControllerSwitch(body.controller, user.name)
    return answer(
        await center.commands.simulate(user, "simulation.controller", "simulation", arguments, command)
    )


# --- users and settings --------------------------------------------------------------------------


class Retention(Body):
    events_days: float | None = Field(None, ge=0)
    kpis_days: float | None = Field(None, ge=0)
    alarms_days: float | None = Field(None, ge=0)
    audit_days: float | None = Field(None, ge=0)


@router.get("/settings/retention")
def retention(center: Center, _user: Caller) -> dict[str, float]:
    """How long each kind of record is kept, days (0: for ever; open alarms are always kept)."""
    return center.store.retention()


@router.put("/settings/retention", responses=problems(403))
async def set_retention(center: Center, user: Caller, body: Retention) -> dict[str, Any]:
    settings = {k: v for k, v in body.model_dump().items() if v is not None and k in RETENTION_DEFAULTS}
    await center.commands.require(user, Role.ENGINEER, "settings.retention", "store", settings)
    current = await center.set_retention(settings)
    await center.commands.audit(user, "settings.retention", "store", settings, "accepted", "saved")
    return {"retention": current}


async def audit_rejected_body(center: ControlCenter, request: Request, detail: str) -> None:
    """Audit a command whose body did not validate (when its caller is known)."""
    try:
        user = await authenticated(request)
    except AuthError:  # an unknown caller: nobody to put in the audit log
        return
    target = request.url.path.removeprefix("/api/")
    await asyncio.shield(
        center.commands.audit(user, f"{request.method} {target}", target, {}, "refused", detail)
    )
