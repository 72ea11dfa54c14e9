"""Accounts under ``/api/users``: list, create, change role, revoke and rotate tokens (admins).

Every change is audited in the same commit that makes it - refusals too - and only then mirrored
in the authenticator and the feed: a revoked token stops working at once (REST calls get 401,
its open feed sessions are closed with code 1008), and the feed sessions of a user whose role
changed are closed with code 4001 so that they reconnect and get a ``hello`` with the new role.
The last admin account can be neither removed nor demoted: somebody must manage the others.
A token is shown once, in the answer that made it; the store keeps only its hash.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import Field

from controlcenter.api import WHY, Body, Caller, Center, CommandAnswer, need, problems
from controlcenter.auth import USER_NAME, Role, User, new_token, token_hash
from controlcenter.commands import CommandResult
from controlcenter.feed import CLOSE_POLICY, CLOSE_RECONNECT
from controlcenter.recorder import Session
from controlcenter.runtime import ControlCenter
from controlcenter.store import Writer
from sim.errors import CcsimError

router = APIRouter(prefix="/api/users", responses=problems(401, 403, 422, 429, 503))

RoleName = Literal["viewer", "operator", "engineer", "admin"]


class AccountAnswer(CommandAnswer):
    """An account change's answer; an accepted one names the account and its role, and a new
    token is shown here, once."""

    name: str | None = None
    role: RoleName | None = None
    token: str | None = None


def _answers(ok: int, *errors: int) -> dict[int | str, dict[str, Any]]:
    entries: dict[int | str, dict[str, Any]] = {ok: {"model": AccountAnswer, "description": "done"}}
    entries.update({s: {"model": AccountAnswer, "description": WHY[s]} for s in errors})
    return entries


class NewUser(Body):
    name: str = Field(
        pattern=USER_NAME.pattern,
        description="1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit",
    )
    role: RoleName


class RoleChange(Body):
    role: RoleName


class NoSuchUser(CcsimError):
    """The account named in the path does not exist (HTTP 404)."""


@dataclass
class Change:
    """What a committed account change asks of the running server."""

    detail: str
    token: str | None = None
    """A new token (shown once)."""
    role: Role | None = None
    revoked: list[str] = field(default_factory=list)
    """Hashes of the tokens revoked."""


def _role_of(writer: Writer, name: str) -> Role:
    role = writer.user_role(name)
    if role is None:
        raise NoSuchUser(f"no user '{name}'")
    return Role.parse(role)


def _keep_an_admin(writer: Writer, name: str, role: Role, doing: str) -> None:
    if role is Role.ADMIN and writer.count_role(Role.ADMIN.label) <= 1:
        raise CcsimError(f"cannot {doing} '{name}': it is the last admin account")


async def _account_change(
    center: ControlCenter,
    user: User,
    action: str,
    name: str,
    arguments: dict[str, Any],
    change: Callable[[Writer], Change],
) -> tuple[CommandResult, Change | None, int]:
    """Check the role, then make ``change`` and audit it (or its refusal) in one commit."""
    target = f"user:{name}"
    await center.commands.require(user, Role.ADMIN, action, target, arguments)

    def work(session: Session) -> tuple[CommandResult, Change | None, int]:
        made: Change | None = None
        try:
            made = change(session.writer)  # checks first, writes after: a refusal writes nothing
        except CcsimError as exc:
            result, detail, status = "refused", str(exc), 404 if isinstance(exc, NoSuchUser) else 409
        else:
            result, detail, status = "accepted", made.detail, 200
        audit_id = session.writer.add_audit(
            user=user.name, role=user.role.label, action=action, target=target,
            arguments=arguments, result=result, detail=detail, run_id=session.run_id,
        )  # fmt: skip
        return CommandResult(audit_id, result, detail), made, status

    return await center.commands.recorder.call(work)


def _answer(result: CommandResult, status: int, **extra: Any) -> JSONResponse:
    return JSONResponse({**result.to_dict(), **extra}, status_code=status)


@router.get("")
def users(center: Center, user: Caller) -> dict[str, Any]:
    """Every account: name, role, created, its number of valid tokens and when the newest was
    issued (0 tokens: it cannot sign in until its token is rotated)."""
    need(user, Role.ADMIN)
    return {"items": center.store.users()}


@router.post("", status_code=201, responses=_answers(201, 409))
async def create_user(center: Center, user: Caller, body: NewUser) -> JSONResponse:
    """Create an account; the answer holds its token, shown this once and stored only as a hash."""
    token = new_token()
    role = Role.parse(body.role)

    def create(writer: Writer) -> Change:
        writer.add_user(body.name, role.label)  # refused if the name is taken
        writer.add_token(token_hash(token), body.name)
        return Change("created", token=token, role=role)

    result, made, status = await _account_change(
        center, user, "user.create", body.name, body.model_dump(), create
    )
    if made is None:
        return _answer(result, status)
    center.auth.remember(token_hash(token), User(body.name, role))
    return _answer(result, 201, name=body.name, role=role.label, token=token)


@router.patch("/{name}", responses=_answers(200, 404, 409))
async def change_role(center: Center, user: Caller, name: str, body: RoleChange) -> JSONResponse:
    """Give an account another role; its open feed sessions reconnect with it."""
    role = Role.parse(body.role)

    def change(writer: Writer) -> Change:
        before = _role_of(writer, name)
        if role is not before:
            _keep_an_admin(writer, name, before, f"make {role.label} of")
            writer.set_role(name, role.label)
        return Change(f"{before.label} -> {role.label}", role=role)

    result, made, status = await _account_change(
        center, user, "user.role", name, body.model_dump(), change
    )
    if made is not None:
        center.auth.set_role(name, role)
        center.hub.close_sessions(
            center.auth.tokens_of(name), CLOSE_RECONNECT, f"role changed to {role.label}"
        )
    return _answer(result, status, **({"name": name, "role": role.label} if made else {}))


@router.delete("/{name}", responses=_answers(200, 404, 409))
async def revoke_user(center: Center, user: Caller, name: str) -> JSONResponse:
    """Revoke every token of the account and remove it (its audit trail stays). Its open feed
    sessions are closed at once."""

    def revoke(writer: Writer) -> Change:
        _keep_an_admin(writer, name, _role_of(writer, name), "remove")
        revoked = writer.delete_user(name)
        return Change(f"removed; {len(revoked)} token(s) revoked", revoked=revoked)

    result, made, status = await _account_change(center, user, "user.delete", name, {}, revoke)
    if made is not None:
        _end_tokens(center, made.revoked, "token revoked")
    return _answer(result, status)


@router.post("/{name}/rotate", responses=_answers(200, 404, 409))
async def rotate_token(center: Center, user: Caller, name: str) -> JSONResponse:
    """A new token for the account (shown this once); every token it had is revoked, and the
    feed sessions signed in with them are closed."""
    token = new_token()

    def rotate(writer: Writer) -> Change:
        role = _role_of(writer, name)
        revoked = writer.revoke_tokens(name)
        writer.add_token(token_hash(token), name)
        return Change(f"new token; {len(revoked)} revoked", token=token, role=role, revoked=revoked)

    result, made, status = await _account_change(center, user, "user.rotate", name, {}, rotate)
    if made is None or made.role is None:
        return _answer(result, status)
    _end_tokens(center, made.revoked, "token rotated: sign in with the new one")
    center.auth.remember(token_hash(token), User(name, made.role))
    return _answer(result, 200, name=name, role=made.role.label, token=token)


def _end_tokens(center: ControlCenter, revoked: list[str], reason: str) -> None:
    center.auth.forget(revoked)
    center.hub.close_sessions(set(revoked), CLOSE_POLICY, reason)
