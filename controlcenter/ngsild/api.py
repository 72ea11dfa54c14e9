"""The read-only NGSI-LD API under ``/ngsi-ld/v1`` (a subset of ETSI GS CIM 009):

* ``GET /ngsi-ld/v1/entities`` - query: ``type`` (names or full IRIs, comma-separated), ``id``
  (comma-separated), ``idPattern`` (a regular expression), ``q`` (see
  :mod:`controlcenter.ngsild.query`), ``attrs`` (only these attributes; entities with none of
  them are left out), ``limit`` (0..1000, default 20) and ``offset``, ``count=true`` (the total in
  ``NGSILD-Results-Count``), ``options=keyValues`` (or ``format=simplified``) for key-values
  instead of normalized. Entities come ordered by type, then id; the next and previous pages are
  in the ``Link`` header (``rel="next"`` / ``rel="prev"``).
* ``GET /ngsi-ld/v1/entities/{id}`` - one entity (``attrs``, ``options`` as above).
* ``GET /ngsi-ld/v1/types`` - the entity types there are, as an ``EntityTypeList``.
* ``GET /ngsi-ld/v1/jsonldContexts/ccsim`` - the @context every entity uses (no token needed:
  JSON-LD processors fetch it by itself; it holds no data of the run).

``Accept: application/ld+json`` puts the @context in the body; otherwise (``application/json``)
it is in a ``Link`` header. The request's own ``Link`` context is not processed: names are the
Smart Data Models' (a type may also be given by its full IRI). Errors are ProblemDetails with
the NGSI-LD error types (BadRequestData, ResourceNotFound, TooManyResults,
OperationNotSupported). Reads need a token of any role, like the rest of the API.
"""

from __future__ import annotations

import re
import urllib.parse
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from controlcenter.api import Caller, Center, problems
from controlcenter.ngsild.entities import Entity, EntityBook
from controlcenter.ngsild.formats import key_values, normalized
from controlcenter.ngsild.models import CONTEXT, model_of
from controlcenter.ngsild.query import Expr, QueryError, compile_pattern, parse_q

LD_JSON = "application/ld+json"
ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"
CONTEXT_PATH = "/ngsi-ld/v1/jsonldContexts/ccsim"
DEFAULT_LIMIT = 20
MAX_LIMIT = 1000
_GEO_PARAMS = ("georel", "geometry", "coordinates", "geoproperty", "geometryProperty")

_JSON_OR_LD = {
    "application/json": {"schema": {"type": "object"}},
    LD_JSON: {"schema": {"type": "object"}},
}
_ENTITIES = {"application/json": {"schema": {"type": "array"}}, LD_JSON: {"schema": {"type": "array"}}}


def _param(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


_FORMAT = [
    _param("options", {"type": "string"}, "keyValues or normalized (comma-separated)"),
    _param("format", {"enum": ["simplified", "normalized", "keyValues"]}, "as options"),
    _param("attrs", {"type": "string"}, "only these attributes, comma-separated"),
]
_QUERY = [
    _param("type", {"type": "string"}, "entity types (names or IRIs), comma-separated"),
    _param("id", {"type": "string"}, "entity ids (URIs), comma-separated"),
    _param("idPattern", {"type": "string"}, "a regular expression on the id"),
    _param("q", {"type": "string"}, "a query on the attributes, e.g. occupancy>0.5"),
    *_FORMAT,
    _param(
        "limit", {"type": "integer", "minimum": 0, "maximum": MAX_LIMIT}, "page size (0: count only)"
    ),
    _param("offset", {"type": "integer", "minimum": 0}, "where the page starts"),
    _param("count", {"enum": ["true", "false"]}, "true: the total in NGSILD-Results-Count"),
]
"""The query parameters (ETSI GS CIM 009), read from the query string by the routes."""

router = APIRouter(
    prefix="/ngsi-ld/v1",
    tags=["NGSI-LD"],
    responses=problems(400, 401, 429, 501, 503),
)
"""Every route: a bad query (400, as NGSI-LD ProblemDetails), no token (401), locked out (429),
a tenant asked for (501: there is one), the store failing (503)."""


class Problem(Exception):
    """An NGSI-LD error: ``kind`` is the last part of its type URI."""

    def __init__(self, status: int, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.kind, self.detail = status, kind, detail

    def response(self) -> JSONResponse:
        body = {"type": ERRORS + self.kind, "title": _TITLES.get(self.kind, self.kind),
                "status": self.status, "detail": self.detail}  # fmt: skip
        return JSONResponse(body, status_code=self.status)


_TITLES = {
    "BadRequestData": "The request includes input data which does not meet the requirements",
    "ResourceNotFound": "The referred resource has not been found",
    "TooManyResults": "The query result exceeds the maximum allowed",
    "OperationNotSupported": "The operation is not supported",
    "NoMultiTenantSupport": "Tenants are not supported",
}


def _book(center: Any) -> EntityBook:
    book: EntityBook = center.ngsild
    return book


@dataclass(frozen=True)
class _Options:
    render: Callable[..., dict[str, Any]]
    attrs: frozenset[str] | None
    ld: bool


def _options(request: Request) -> _Options:
    params = request.query_params
    if "NGSILD-Tenant" in request.headers:
        raise Problem(501, "NoMultiTenantSupport", "this server has one tenant: leave out NGSILD-Tenant")
    simplified = False
    for option in _split(params.get("options")):
        if option == "keyValues":
            simplified = True
        elif option != "normalized":
            raise Problem(400, "BadRequestData", f"options: {option!r} is not keyValues or normalized")
    fmt = params.get("format")
    if fmt is not None:
        if fmt not in ("simplified", "normalized", "keyValues"):
            raise Problem(400, "BadRequestData", f"format: {fmt!r} is not simplified or normalized")
        simplified = fmt != "normalized"
    attrs = frozenset(_split(params.get("attrs"))) if "attrs" in params else None
    if attrs is not None and not attrs:
        raise Problem(400, "BadRequestData", "attrs: empty; name one attribute or more")
    ld = LD_JSON in request.headers.get("accept", "")
    return _Options(key_values if simplified else normalized, attrs, ld)


def _split(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def _check_uri(text: str, field: str) -> str:
    if not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$", text):
        raise Problem(400, "BadRequestData", f"{field}: {text!r} is not a URI (urn:ngsi-ld:Type:...)")
    return text


def _int(request: Request, name: str, default: int, low: int) -> int:
    text = request.query_params.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise Problem(400, "BadRequestData", f"{name}: {text!r} is not a whole number") from None
    if value < low:
        raise Problem(400, "BadRequestData", f"{name}: {value} is below {low}")
    return value


def _context_link(request: Request) -> str:
    url = str(request.base_url).rstrip("/") + CONTEXT_PATH
    return f'<{url}>; rel="http://www.w3.org/ns/json-ld#context"; type="{LD_JSON}"'


def _answer(
    request: Request, body: Any, options: _Options, links: Sequence[str] = (), **headers: str
) -> JSONResponse:
    if options.ld:
        return JSONResponse(body, media_type=LD_JSON, headers=headers | _link(links))
    return JSONResponse(body, headers=headers | _link([_context_link(request), *links]))


def _link(links: Sequence[str]) -> dict[str, str]:
    return {"Link": ", ".join(links)} if links else {}


def _render(entity: Entity, options: _Options) -> dict[str, Any]:
    return options.render(entity, options.attrs, CONTEXT if options.ld else None)


# --- the query -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Filter:
    types: frozenset[str] | None
    ids: frozenset[str] | None
    id_pattern: Any
    q: Expr | None
    attrs: frozenset[str] | None

    def keeps(self, entity: Entity) -> bool:
        if self.types is not None and entity.type not in self.types:
            return False
        if self.ids is not None and entity.id not in self.ids:
            return False
        if self.id_pattern is not None and not self.id_pattern.search(entity.id):
            return False
        if self.attrs is not None and not self.attrs & entity.attrs.keys():
            return False
        return self.q is None or self.q.holds(key_values(entity))


def _filter(request: Request, options: _Options) -> _Filter:
    params = request.query_params
    for name in _GEO_PARAMS:
        if name in params:
            raise Problem(422, "OperationNotSupported", f"{name}: geo-queries are not supported here")
    types = None
    if "type" in params:
        names = _split(params["type"])
        if not names:
            raise Problem(400, "BadRequestData", "type: empty; name one entity type or more")
        # An unknown type is no error: it just has no entities.
        types = frozenset(m.name if (m := model_of(n)) else n for n in names)
    ids = None
    if "id" in params:
        ids = frozenset(_check_uri(i, "id") for i in _split(params["id"]))
    pattern = None
    if "idPattern" in params:
        try:
            pattern = compile_pattern(params["idPattern"], "idPattern")
        except QueryError as exc:
            raise Problem(400, "BadRequestData", str(exc)) from None
    q = None
    if "q" in params:
        try:
            q = parse_q(params["q"])
        except QueryError as exc:
            raise Problem(400, "BadRequestData", str(exc)) from None
    return _Filter(types, ids, pattern, q, options.attrs)


def _page_link(request: Request, offset: int, limit: int, rel: str) -> str:
    query = dict(request.query_params)
    query.update(offset=str(offset), limit=str(limit))
    url = str(request.url.replace(query=urllib.parse.urlencode(query)))
    return f'<{url}>; rel="{rel}"'


@router.get(
    "/entities",
    response_class=Response,
    openapi_extra={"parameters": _QUERY},
    responses={
        200: {"description": "the entities of the page", "content": _ENTITIES},
        **problems(403, 422),  # 403: limit over 1000 (TooManyResults); 422: a geo-query
    },
)
async def query_entities(request: Request, center: Center, _user: Caller) -> Response:
    """Entities by type, id, idPattern, q and attrs; paged with limit and offset."""
    try:
        options = _options(request)
        keep = _filter(request, options)
        limit = _int(request, "limit", DEFAULT_LIMIT, 0)
        offset = _int(request, "offset", 0, 0)
        count = request.query_params.get("count", "false")
        if count not in ("true", "false"):
            raise Problem(400, "BadRequestData", f"count: {count!r} is not true or false")
        if limit > MAX_LIMIT:
            raise Problem(403, "TooManyResults", f"limit: {limit} is over the maximum, {MAX_LIMIT}")
        if limit == 0 and count != "true":
            raise Problem(400, "BadRequestData", "limit: 0 only goes with count=true")
    except Problem as problem:
        return problem.response()
    found = [e for e in _book(center).entities() if keep.keeps(e)]
    page = found[offset : offset + limit]
    links = []
    if offset + limit < len(found) and limit > 0:
        links.append(_page_link(request, offset + limit, limit, "next"))
    if offset > 0 and limit > 0:
        links.append(_page_link(request, max(0, offset - limit), limit, "prev"))
    headers = {"NGSILD-Results-Count": str(len(found))} if count == "true" else {}
    return _answer(request, [_render(e, options) for e in page], options, links, **headers)


@router.get(
    "/entities/{entity_id:path}",
    response_class=Response,
    openapi_extra={"parameters": _FORMAT},
    responses={200: {"description": "the entity", "content": _JSON_OR_LD}, **problems(404, 422)},
)
async def retrieve_entity(entity_id: str, request: Request, center: Center, _user: Caller) -> Response:
    """One entity by its id."""
    try:
        options = _options(request)
        _check_uri(entity_id, "id")
        entity = _book(center).get(entity_id)
        if entity is None:
            raise Problem(404, "ResourceNotFound", f"no entity {entity_id}")
    except Problem as problem:
        return problem.response()
    return _answer(request, _render(entity, options), options)


@router.get(
    "/types",
    response_class=Response,
    openapi_extra={"parameters": _FORMAT[:2]},
    responses={200: {"description": "an EntityTypeList", "content": _JSON_OR_LD}},
)
async def entity_types(request: Request, center: Center, _user: Caller) -> Response:
    """The types of the entities there are now, with how many of each (``typeList``)."""
    try:
        options = _options(request)
    except Problem as problem:
        return problem.response()
    counts = _book(center).counts()
    body: dict[str, Any] = {
        "id": f"urn:ngsi-ld:EntityTypeList:{uuid.uuid4()}",
        "type": "EntityTypeList",
        "typeList": list(counts),
    }
    if options.ld:
        body["@context"] = CONTEXT
    return _answer(request, body, options)


@router.get(
    CONTEXT_PATH.removeprefix("/ngsi-ld/v1"),
    include_in_schema=True,
    responses={
        200: {"description": "the @context", "content": {LD_JSON: {"schema": {"type": "object"}}}}
    },
)
async def context_document() -> JSONResponse:
    """The JSON-LD @context of every entity (the Smart Data Models' and NGSI-LD's core)."""
    return JSONResponse({"@context": CONTEXT}, media_type=LD_JSON)
