"""The API's OpenAPI document describes what the routes answer, and its bodies take JSON as the
document types it (tests/e2e/test_api_fuzz.py holds a running server to the document)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from controlcenter import accounts, api
from controlcenter.ngsild import api as ngsild_api
from controlcenter.sensorthings.router import router as sensorthings_router


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    app = FastAPI()
    for router in (api.router, accounts.router, ngsild_api.router, sensorthings_router):
        app.include_router(router)
    schema: dict[str, Any] = app.openapi()
    return schema


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(m.upper(), path, op) for path, ops in document["paths"].items() for m, op in ops.items()]


def schema_of(document: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    ref: str = response["content"]["application/json"]["schema"]["$ref"]
    found: dict[str, Any] = document["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return found


def test_every_operation_that_needs_a_token_declares_it_and_its_refusals(
    document: dict[str, Any],
) -> None:
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer", "description": api.BEARER.model.description,
    }  # fmt: skip
    checked = 0
    for method, path, op in operations(document):
        if path == ngsild_api.CONTEXT_PATH:  # JSON-LD processors fetch it without a token
            assert "security" not in op
            continue
        assert op["security"] == [{"bearer": []}], (method, path)
        # 422 on every /api route: a NUL anywhere in the path or query is refused before it runs
        statuses = ("401", "422", "429", "503") if path.startswith("/api/") else ("401", "429", "503")
        for status in statuses:
            problem = schema_of(document, op["responses"][status])
            assert problem["required"] == ["detail"], (method, path, status)
            assert problem["properties"]["detail"]["type"] == "string"
        checked += 1
    assert checked >= 35


def test_commands_document_their_answers_and_the_role_refusal(document: dict[str, Any]) -> None:
    commands = [(m, p, op) for m, p, op in operations(document) if m == "POST" and p.startswith("/api/")]
    assert len(commands) >= 16
    for method, path, op in commands:
        answers = {s for s in op["responses"] if s.startswith("2")} | {"403", "409"}
        assert answers <= set(op["responses"]), (method, path)
        if not path.startswith("/api/users"):
            assert {"200", "202", "409"} <= set(op["responses"])
            answer = schema_of(document, op["responses"]["409"])
            assert set(answer["required"]) == {"command", "result", "detail"}, path
    users = document["paths"]["/api/users/{name}"]
    assert {"404", "409"} <= set(users["delete"]["responses"]) & set(users["patch"]["responses"])


def test_ids_and_offsets_are_bounded_to_what_the_store_holds(document: dict[str, Any]) -> None:
    def parameter(path: str, name: str) -> dict[str, Any]:
        params = document["paths"][path]["get"]["parameters"]
        found: dict[str, Any] = next(p for p in params if p["name"] == name)["schema"]
        return found.get("anyOf", [found])[0]

    for path, name in [("/api/alarms/{alarm_id}", "alarm_id"), ("/api/alarms", "run"),
                       ("/api/alarms", "offset"), ("/api/events", "after"), ("/api/events", "run"),
                       ("/api/kpis", "run"), ("/api/audit", "offset")]:  # fmt: skip
        assert parameter(path, name)["maximum"] == 2**63 - 1, (path, name)


@pytest.mark.parametrize(
    ("model", "body", "field", "expected"),
    [
        (api.Shelve, {"duration_s": "60"}, "duration_s", "valid number"),
        (api.Shelve, {"duration_s": True}, "duration_s", "valid number"),
        (api.Shelve, {"duration": 60}, "duration", "Extra inputs are not permitted"),
        (api.Note, {"note": 5}, "note", "valid string"),
        (api.Speed, {"speed": "fast"}, "speed", "valid number"),
        (api.Speed, {"speed": float("nan")}, "speed", "finite number"),
        (api.IncidentReport, {"edge": "E0", "lane": 1.5}, "lane", "valid integer"),
        (api.IncidentReport, {"edge": "E0", "pos_m": float("inf")}, "pos_m", "finite number"),
        (api.SeekTo, {"t": "10"}, "t", "valid number"),
        (api.Retention, {"events_days": [1]}, "events_days", "valid number"),
        (accounts.NewUser, {"name": "eve", "role": "viewer", "admin": True}, "admin", "Extra inputs"),
        (api.Comment, {"text": "a\x00b"}, "text", "NUL characters"),
    ],
)
def test_a_body_of_the_wrong_json_type_is_refused_naming_the_field(
    model: type[api.Body], body: dict[str, Any], field: str, expected: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(body)
    errors = caught.value.errors()
    assert [e["loc"] for e in errors] == [(field,)]
    assert expected in errors[0]["msg"]


def test_a_whole_number_is_a_number() -> None:
    assert api.Shelve.model_validate({"duration_s": 60}).duration_s == 60.0
    assert api.Speed.model_validate({"speed": None}).speed is None
