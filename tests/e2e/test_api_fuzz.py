"""Schemathesis against ``ccsim serve`` on each store: no server error, and no answer the OpenAPI
document does not describe (a bounded, deterministic run; ``benchmarks/api_fuzz.py`` runs
a larger one)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.fuzzing import fuzz
from tests.e2e.serving import served

ADMIN_EXAMPLES = 8
OTHER_EXAMPLES = 2


@pytest.mark.parametrize("store", ["sqlite", "postgresql"])
def test_fuzzed_api_answers_as_documented(
    tmp_path: Path, store: str, request: pytest.FixtureRequest
) -> None:
    db_url = request.getfixturevalue("postgres_url") if store == "postgresql" else None
    with served(tmp_path, "--speed", "10", db_url=db_url) as server:
        server.wait_running()
        report = fuzz(server, max_examples=ADMIN_EXAMPLES, others=OTHER_EXAMPLES)
        with server.client() as c:  # the run spared the accounts it signs in with
            assert c.get("/api/me").json() == {"name": "admin", "role": "admin"}
    assert not report.errors, "\n".join(report.errors)
    # every operation was reached, as each identity, with answers checked
    assert len(report.operations) >= 30, sorted(report.operations)
    assert report.cases >= 3 * len(report.operations), report.summary()
    found = "\n".join(str(f) for f in report.findings[:30])
    assert not report.server_errors, f"{report.summary()}\n{found}"
    assert not report.schema_violations, f"{report.summary()}\n{found}"
