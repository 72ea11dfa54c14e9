"""The websocket feed at ``/ws``.

A client authenticates with ``Authorization: Bearer <token>`` on the handshake (a bad token is
refused there, with HTTP 403), or - a browser cannot set that header - by sending
``{"type": "auth", "token": "...", "since": N}`` as its first message within
``AUTH_TIMEOUT_S``; otherwise the socket is closed (code 1008) before any data is sent. ``since``
(or the ``?since=N`` query parameter) is the last alarm sequence number the client has seen.

Frames (JSON text): ``hello``, then ``alarms`` (the open alarms; or the missed ``alarm`` events
when ``since`` is given), a ``snapshot``, then ``delta`` frames at the feed rate and ``alarm``
frames as they happen. See :mod:`controlcenter.feed`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from controlcenter.auth import AuthError, User
from controlcenter.feed import ClientLeft, FeedClient
from controlcenter.runtime import ControlCenter

AUTH_TIMEOUT_S = 5.0
CLOSE_POLICY = 1008
CLOSE_TRY_LATER = 1013


def _since(value: Any) -> int | None:
    try:
        return None if value is None else max(0, int(value))
    except (TypeError, ValueError):
        return None


async def _first_message_auth(
    websocket: WebSocket, center: ControlCenter, client: str
) -> tuple[User, Any]:
    text = await asyncio.wait_for(websocket.receive_text(), AUTH_TIMEOUT_S)
    message = json.loads(text)
    if not isinstance(message, dict) or message.get("type") != "auth":
        raise AuthError(401, 'the first message must be {"type": "auth", "token": ...}')
    token = message.get("token")
    return center.auth.authenticate(token if isinstance(token, str) else None, client), message.get(
        "since"
    )


async def feed(websocket: WebSocket) -> None:
    center: ControlCenter = websocket.app.state.center
    client = websocket.client.host if websocket.client else "unknown"
    since = _since(websocket.query_params.get("since"))
    header = websocket.headers.get("authorization")
    user: User | None = None
    if header is not None:
        try:
            user = center.auth.from_header(header, client)
        except AuthError:
            await websocket.close(code=CLOSE_POLICY)  # before accepting: the handshake gets 403
            return
    await websocket.accept()
    if user is None:
        try:
            user, asked = await _first_message_auth(websocket, center, client)
        except (AuthError, TimeoutError, ValueError, KeyError, WebSocketDisconnect) as exc:
            reason = exc.detail if isinstance(exc, AuthError) else "authentication required"
            # A locked-out address may come back later (its token may be good): "try again
            # later", with the wait; a bad token is a policy violation.
            code = CLOSE_POLICY
            if isinstance(exc, AuthError) and exc.status == 429:
                code = CLOSE_TRY_LATER
                reason = f"{reason} (in {max(1, round(exc.retry_after_s))} s)"
            with contextlib.suppress(RuntimeError):  # unless the client already went away
                await websocket.close(code=code, reason=reason)
            return
        since = _since(asked) if asked is not None else since

    async def close(code: int, reason: str) -> None:
        await websocket.close(code=code, reason=reason)

    async def send(text: str) -> None:
        try:
            await websocket.send_text(text)
        except (WebSocketDisconnect, RuntimeError) as exc:  # RuntimeError: sent after close
            raise ClientLeft(str(exc)) from exc

    subscriber = FeedClient(center.hub, user.name, send, close, token=user.token)
    hello = {"user": user.name, "role": user.role.label, "run": center.run.id}

    async def serve() -> None:
        # Nothing awaits between this check and serve() registering the client: a revocation
        # lands either before it (refused here) or after (and closes this session).
        if not center.auth.knows(user.token):
            await close(CLOSE_POLICY, "token revoked")
            return
        await center.hub.serve(subscriber, hello, since)

    serving = asyncio.create_task(serve())
    listening = asyncio.create_task(_until_disconnect(websocket))
    done, pending = await asyncio.wait({serving, listening}, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    for task in done:
        task.result()  # a failure here is a bug: let the server log it


async def _until_disconnect(websocket: WebSocket) -> None:
    """Read (and ignore) what the client sends, until it goes away."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
