"""Schemathesis against a running ``ccsim serve``: every operation of its OpenAPI document, fuzzed
as an admin, as a viewer and without a token, and what comes back checked against the document.

Two kinds of failure count:

- a **server error**: any 5xx answer (``not_a_server_error``);
- a **schema violation**: an answer the document does not describe - a status code it does not
  list, another content type, a body or header not matching its schema - or bad input that the
  server took (``negative_data_rejection``: a wrong JSON type, a value out of range answered 2xx),
  or an operation that declares the token and answers 2xx without it (``ignored_auth``).

The run is deterministic (hypothesis derandomized, a fixed seed): the same server code gets the same
requests. Shared by ``tests/e2e/test_api_fuzz.py`` (a bounded run) and ``benchmarks/api_fuzz.py``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import schemathesis
from schemathesis.engine import events

from tests.e2e.serving import Server, make_user

SERVER_ERROR_CHECKS = ("not_a_server_error",)
SCHEMA_CHECKS = (
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
    "negative_data_rejection",
    "ignored_auth",
)
SEED = 16


@dataclass(frozen=True)
class Finding:
    """One failed check: which, on what request, and the answer."""

    check: str
    identity: str
    operation: str
    request: str
    status: int | None
    title: str
    message: str

    @property
    def server_error(self) -> bool:
        return self.check in SERVER_ERROR_CHECKS

    def __str__(self) -> str:
        answer = f"-> {self.status}" if self.status is not None else "-> no answer"
        return f"[{self.check}] {self.identity}: {self.request} {answer}: {self.title}: {self.message}"


@dataclass
class FuzzReport:
    cases: int = 0
    """Requests sent whose answers were checked."""
    operations: set[str] = field(default_factory=set)
    findings: list[Finding] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    """What kept schemathesis from testing (not a finding about the server, but a run to distrust)."""
    wall_s: float = 0.0

    @property
    def server_errors(self) -> list[Finding]:
        return [f for f in self.findings if f.server_error]

    @property
    def schema_violations(self) -> list[Finding]:
        return [f for f in self.findings if not f.server_error]

    def summary(self) -> str:
        return (
            f"{self.cases} cases on {len(self.operations)} operations in {self.wall_s:.0f} s: "
            f"{len(self.server_errors)} server errors, {len(self.schema_violations)} schema violations"
        )


def config(token: str | None, *, max_examples: int, seed: int = SEED) -> schemathesis.Config:
    """The schemathesis configuration of one identity's run (``token`` None: no token at all)."""
    checks: dict[str, Any] = {"enabled": False}
    checks.update({name: {"enabled": True} for name in (*SERVER_ERROR_CHECKS, *SCHEMA_CHECKS)})
    data: dict[str, Any] = {
        "seed": seed,
        "workers": 1,
        "request-timeout": 30,
        "generation": {
            "mode": "all",  # valid input and invalid input (which must be refused)
            "max-examples": max_examples,
            "deterministic": True,
            "database": "none",
        },
        "checks": checks,
        # Each operation on its own; the stateful phase's chains are left to a later issue.
        "phases": {"stateful": {"enabled": False}},
    }
    if token is not None:
        data["auth"] = {"openapi": {"bearer": {"bearer": token}}}
    return schemathesis.Config.from_dict(data)


def fuzz_as(
    server: Server, identity: str, token: str | None, *, max_examples: int, keep: set[str]
) -> FuzzReport:
    """Fuzz every operation as ``identity`` (its ``token``; None: without one). The accounts in
    ``keep`` are left alone (not deleted, demoted or rotated): the run signs in with them."""
    schema = schemathesis.openapi.from_url(
        server.url + "openapi.json", config=config(token, max_examples=max_examples)
    )

    @schema.hook("filter_case")
    def _spare_our_accounts(_context: Any, case: Any) -> bool:
        name = (case.path_parameters or {}).get("name")
        return not (case.operation.path.startswith("/api/users/") and name in keep)

    report = FuzzReport()
    started = time.monotonic()
    for event in schema_events(schema):
        if isinstance(event, events.ScenarioFinished):
            record(report, identity, event)
        elif isinstance(event, events.NonFatalError):
            report.errors.append(f"{identity}: {event.label}: {event.info.message}")
        elif isinstance(event, events.FatalError):
            report.errors.append(f"{identity}: fatal: {event.exception!r}")
    report.wall_s = time.monotonic() - started
    return report


def schema_events(schema: Any) -> Iterator[events.EngineEvent]:
    yield from schemathesis.engine.from_schema(schema).execute()


def record(report: FuzzReport, identity: str, event: events.ScenarioFinished) -> None:
    recorder = event.recorder
    for case_id, node in recorder.cases.items():
        interaction = recorder.interactions.get(case_id)
        case = node.value
        request = f"{case.method.upper()} {case.formatted_path}"
        if interaction is None or interaction.response is None:
            continue
        report.cases += 1
        report.operations.add(case.operation.label)
        for check in recorder.checks.get(case_id, []):
            if check.failure_info is None:
                continue
            failure = check.failure_info.failure
            if check.name == "ignored_auth" and "got `429 " in failure.message:
                # schemathesis counts only 401 and 403 as refusing a bad token; the login
                # throttle's 429 (after the fuzzer's many bad tokens) refuses it too
                continue
            report.findings.append(Finding(
                check.name, identity, case.operation.label, f"{request} {_inputs(case)}",
                interaction.response.status_code, failure.title, failure.message,
            ))  # fmt: skip


def _inputs(case: Any) -> str:
    parts = []
    if case.query:
        parts.append(f"query={case.query!r}")
    if case.body is not None and type(case.body).__name__ != "NotSet":
        parts.append(f"body={case.body!r}"[:300])
    return " ".join(parts)


def fuzz(server: Server, *, max_examples: int, others: int | None = None) -> FuzzReport:
    """The whole run on ``server`` (started with its admin token): as a viewer and without a
    token (``others`` examples per operation, default ``max_examples``), then as an admin."""
    viewer = make_user(server, "fuzz-viewer", "viewer")
    with server.client(viewer) as c:
        # signed in once, before the bad tokens the fuzzer sends lock this address out for
        # tokens new to it (the login throttle): its good tokens keep working
        assert c.get("/api/me").status_code == 200
    keep = {"admin", "fuzz-viewer"}
    total = FuzzReport()
    identities = [("anonymous", None), ("viewer", viewer), ("admin", server.token)]
    for identity, token in identities:
        examples = max_examples if identity == "admin" else (others or max_examples)
        part = fuzz_as(server, identity, token, max_examples=examples, keep=keep)
        total.cases += part.cases
        total.operations |= part.operations
        total.findings += part.findings
        total.errors += part.errors
        total.wall_s += part.wall_s
    return total
