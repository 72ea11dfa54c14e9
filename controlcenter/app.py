"""The FastAPI application of the control center: the REST API, the feed, the control-room page."""

from __future__ import annotations

import sys
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from controlcenter import accounts, api, ws
from controlcenter.auth import AuthError
from controlcenter.commands import Forbidden
from controlcenter.ngsild import api as ngsild_api
from controlcenter.runtime import ControlCenter
from controlcenter.sensorthings.router import router as sensorthings_router
from controlcenter.store import StoreError, error_text

STATIC = resources.files("controlcenter").joinpath("static")


def control_room_page() -> str:
    return STATIC.joinpath("index.html").read_text(encoding="utf-8")


def problem(error: dict[str, Any]) -> str:
    """One validation error as ``where: what was wrong``."""
    loc = error.get("loc", ())
    if error.get("type") == "json_invalid":  # loc is ("body", character offset)
        reason = error.get("ctx", {}).get("error", "")
        return f"body: not JSON ({reason} at character {loc[-1]}); expected a JSON object"
    return f"{'.'.join(str(p) for p in loc)}: {error.get('msg', '')}"


def create_app(center: ControlCenter) -> FastAPI:
    app = FastAPI(
        title="ccsim control center",
        summary="Live district, alarms, operator commands and their audit trail",
        lifespan=center.lifespan,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.center = center
    app.include_router(api.router)
    app.include_router(accounts.router)
    app.include_router(ngsild_api.router)
    app.include_router(sensorthings_router)
    app.add_api_websocket_route("/ws", ws.feed)
    # The control room's scripts, styles and vendored map library (no build step, no CDN).
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    page = control_room_page()

    @app.middleware("http")
    async def refuse_unreadable_input(request: Request, call_next: Any) -> Any:
        """Refused (422) before a route runs: a NUL character in the path or query of an API
        call, before it can reach the store (bodies are checked field by field: ``api.Body``),
        and a body that is not UTF-8 text (JSON is; FastAPI would answer an unexplained 400)."""
        if request.url.path.startswith("/api/"):
            where = "path" if api.NUL in request.url.path else None
            where = where or next((f"query.{k}" for k, v in request.query_params.multi_items()
                                   if api.NUL in k or api.NUL in v), None)  # fmt: skip
            if where is not None:
                detail = f"{where}: NUL characters (\\u0000) are not accepted"
                return JSONResponse({"detail": detail}, status_code=422)
            if request.method in ("POST", "PUT", "PATCH"):
                try:
                    (await request.body()).decode("utf-8")
                except UnicodeDecodeError as exc:
                    detail = f"body: not UTF-8 text at byte {exc.start}; expected a JSON object"
                    return JSONResponse({"detail": detail}, status_code=422)
        return await call_next(request)

    @app.get("/", include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(page)

    @app.exception_handler(AuthError)
    async def auth_error(request: Request, exc: AuthError) -> JSONResponse:
        # SensorThings clients (and browsers) send HTTP Basic only when challenged for it
        basic = request.url.path.startswith("/v1.1")
        headers = {"WWW-Authenticate": 'Basic realm="ccsim", Bearer' if basic else "Bearer"}
        if exc.retry_after_s:
            headers["Retry-After"] = str(max(1, round(exc.retry_after_s)))
        return JSONResponse({"detail": exc.detail}, status_code=exc.status, headers=headers)

    @app.exception_handler(StoreError)
    async def store_failed(_request: Request, exc: StoreError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503)

    async def store_unavailable(request: Request, exc: Exception) -> JSONResponse:
        """A read the store could not answer for a reason that can pass - the database server
        unreachable, or refusing new sessions while its disk is full (PostgreSQL must write a
        file to open one) - is 503 as a write it did not take is, not a server error."""
        detail = f"the store did not answer: {error_text(exc)}"
        print(f"ccsim: {request.method} {request.url.path}: {detail}", file=sys.stderr)
        return JSONResponse({"detail": detail}, status_code=503)

    for transient in center.store.transient_errors:
        app.add_exception_handler(transient, store_unavailable)

    @app.exception_handler(Forbidden)
    async def forbidden(_request: Request, exc: Forbidden) -> JSONResponse:
        return JSONResponse({**exc.result.to_dict(), "detail": exc.result.detail}, status_code=403)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [problem(e) for e in exc.errors()]
        # a field's name may hold a NUL (an unknown field is named): shown, never stored as one
        detail = "; ".join(errors).replace(api.NUL, "\\u0000")
        if request.method != "GET":
            await api.audit_rejected_body(center, request, detail)
        return JSONResponse({"detail": detail}, status_code=422)

    return app
