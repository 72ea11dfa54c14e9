"""Schemathesis against the OpenAPI document of a running ``ccsim serve``, on each store.

For each store (SQLite, and PostgreSQL on a fresh database made for the run and dropped after),
``ccsim serve single`` starts as a user starts it (admin token in ``CCSIM_ADMIN_TOKEN``), and every
operation of its ``/openapi.json`` is fuzzed without a token, as a viewer and as the admin
(tests/e2e/fuzzing.py: schemathesis's examples, coverage and fuzzing phases, deterministic).
Counted: cases run, server errors (5xx) and schema violations (an answer the document does not
describe, or bad input taken). Larger than the test's run (tests/e2e/test_api_fuzz.py).

    python benchmarks/api_fuzz.py [--examples 100] [--others 10] [--stores sqlite,postgresql]
                                  [--pg postgresql://ccsim:ccsim@127.0.0.1:5432/] [--no-write]

The figures are printed and written into benchmarks/RESULTS.md between the ``api-fuzz`` markers.
Exit status 1 when anything was found.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import platform
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import schemathesis
from results_md import replace_section

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the tests' server runner and fuzzing harness

from tests.e2e.fuzzing import FuzzReport, fuzz  # noqa: E402
from tests.e2e.serving import served  # noqa: E402


@contextlib.contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """A new, empty database on the PostgreSQL server at ``server_url`` (dropped after)."""
    name = f"ccsim_api_fuzz_{os.getpid()}"
    with psycopg.connect(server_url + "postgres", autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield server_url + name
    finally:
        with psycopg.connect(server_url + "postgres", autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def run_store(store: str, tmp: Path, pg: str, examples: int, others: int) -> FuzzReport:
    with contextlib.ExitStack() as stack:
        db_url = stack.enter_context(fresh_database(pg)) if store == "postgresql" else None
        server = stack.enter_context(served(tmp / store, "--speed", "10", db_url=db_url))
        server.wait_running()
        return fuzz(server, max_examples=examples, others=others)


def commit() -> str:
    git = ["git", "rev-parse", "--short", "HEAD"]
    done = subprocess.run(git, capture_output=True, text=True, cwd=REPO)
    return done.stdout.strip() or "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=100, help="per operation, as the admin")
    parser.add_argument("--others", type=int, default=10, help="per operation, as viewer and anonymous")
    parser.add_argument("--stores", default="sqlite,postgresql")
    parser.add_argument("--pg", default="postgresql://ccsim:ccsim@127.0.0.1:5432/",
                        help="the PostgreSQL server (a fresh database is made on it)")  # fmt: skip
    parser.add_argument("--no-write", action="store_true", help="do not update RESULTS.md")
    args = parser.parse_args()
    stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    load_before = os.getloadavg()[0]
    reports: dict[str, FuzzReport] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for store in stores:
            reports[store] = report = run_store(store, Path(tmp), args.pg, args.examples, args.others)
            print(f"{store}: {report.summary()}", flush=True)
            for finding in report.findings:
                print(f"  {finding}")
            for error in report.errors:
                print(f"  not tested: {error}")
    load_after = os.getloadavg()[0]
    command = (
        f"python benchmarks/api_fuzz.py --examples {args.examples} --others {args.others}"
        f" --stores {','.join(stores)}"
    )
    rows = [
        f"| {store} | {r.cases} | {len(r.operations)} | {len(r.server_errors)} | "
        f"{len(r.schema_violations)} | {len(r.errors)} | {r.wall_s:.0f} s |"
        for store, r in reports.items()
    ]
    lines = [
        "## API fuzzing: schemathesis against the OpenAPI document of `ccsim serve`",
        "",
        f"{dt.date.today().isoformat()}, commit {commit()}, {platform.machine()} "
        f"{platform.python_version()}, schemathesis {schemathesis.__version__}. `{command}`. "
        f"Each store: `ccsim serve single --speed 10`; every operation of `/openapi.json` fuzzed "
        f"without a token and as a viewer ({args.others} examples each) and as the admin "
        f"({args.examples}): examples, coverage and fuzzing phases, valid and invalid input, "
        f"deterministic (seed 16). A schema violation is an answer the document does not describe "
        f"(status code, content type, body or headers) or bad input answered 2xx; a server error "
        f"is any 5xx. Load average (1 min) {load_before:.1f} before, {load_after:.1f} after "
        f"(2 cores, shared with other work: the wall times are not speed figures).",
        "",
        "| store | cases | operations | server errors | schema violations | not tested | wall time |",
        "|---|---|---|---|---|---|---|",
        *rows,
    ]
    if not args.no_write:
        replace_section("api-fuzz", "\n".join(lines))
    print("\n".join(lines))
    if any(r.findings or r.errors for r in reports.values()):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
