"""``/v1.1``: the SensorThings API over HTTP.

Reads need the viewer role, as every read of the control center does: a token either as
``Authorization: Bearer <token>`` or - what SensorThings client libraries send - HTTP Basic
with the account's name as user and the token as password. Errors are JSON with ``code``,
``message`` (as FROST writes them) and ``detail`` (as the rest of the API does).
"""

from __future__ import annotations

import base64
import binascii

from fastapi import APIRouter, Request, Security
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from controlcenter.api import BEARER, problems
from controlcenter.auth import AuthError, User
from controlcenter.runtime import ControlCenter
from controlcenter.sensorthings.expr import QueryError
from controlcenter.sensorthings.live import VERSION_PATH

router = APIRouter(
    prefix=VERSION_PATH,
    tags=["SensorThings API 1.1"],
    dependencies=[Security(BEARER)],  # declares the token in the OpenAPI document; _caller checks it
    responses={
        200: {"description": "the entity, collection or property (a $value as plain text)",
              "content": {"application/json": {}, "text/plain": {"schema": {"type": "string"}}}},
        **problems(400, 401, 404, 422, 429, 503),
    },
)  # fmt: skip


def _caller(request: Request, center: ControlCenter) -> User:
    header = request.headers.get("authorization") or ""
    scheme, _, value = header.partition(" ")
    client = request.client.host if request.client else "unknown"
    if not header:
        raise AuthError(401, "a token is required: Authorization: Bearer <token>, or HTTP Basic "
                        "with the user name and the token as password")  # fmt: skip
    if scheme.lower() != "basic":
        return center.auth.from_header(header, client)
    try:
        name, colon, token = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise AuthError(401, "Basic credentials: expected base64 of name:token") from None
    if not colon:
        raise AuthError(401, "Basic credentials: expected name:token")
    user = center.auth.authenticate(token, client)
    if user.name != name:
        raise AuthError(401, f"Basic credentials: the token is not user '{name}''s")
    return user


def _error(status: int, message: str) -> JSONResponse:
    body = {"code": status, "type": "error", "message": message, "detail": message}
    return JSONResponse(body, status_code=status)


def _option(name: str, schema: dict[str, object], description: str) -> dict[str, object]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


QUERY_OPTIONS = [
    _option("$filter", {"type": "string"}, "a condition, e.g. result gt 10 and phenomenonTime ge ..."),
    _option("$select", {"type": "string"}, "properties to return, comma-separated"),
    _option("$expand", {"type": "string"}, "related entities inline, with their own options"),
    _option("$orderby", {"type": "string"}, "e.g. phenomenonTime desc"),
    _option("$top", {"type": "integer", "minimum": 0}, "at most this many (a page holds 1000)"),
    _option("$skip", {"type": "integer", "minimum": 0}, "leave out this many first"),
    _option("$count", {"type": "boolean"}, "true: the total in @iot.count"),
]
"""The query options (OData 4.0, as SensorThings 1.1 has them), read from the query string."""


@router.get("", summary="The service root: entity sets and the conformance classes served")
async def service_root(request: Request) -> Response:
    return await sensorthings(request, "")


@router.get(
    "/{path:path}",
    summary="Entities, collections, properties; query options per OData",
    openapi_extra={"parameters": QUERY_OPTIONS},
)
async def sensorthings(request: Request, path: str) -> Response:
    center: ControlCenter = request.app.state.center
    _caller(request, center)
    params: dict[str, str] = {}
    for key, value in request.query_params.multi_items():
        if key in params and key.startswith("$"):
            return _error(400, f"{key} given more than once")
        params[key] = value
    base = str(request.base_url).rstrip("/") + VERSION_PATH
    try:
        answer = center.sensorthings.service.get(path, params, base)
    except QueryError as exc:
        return _error(exc.status, str(exc))
    except (ValueError, ArithmeticError, RecursionError, TypeError) as exc:  # a backstop
        return _error(400, f"cannot evaluate the request: {type(exc).__name__}: {exc}")
    if answer.text:
        return PlainTextResponse(str(answer.body))
    return JSONResponse(answer.body)
