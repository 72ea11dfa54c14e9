"""The store's schema, in versions: ordered migration steps, applied when a store is opened.

Each step takes the schema from the version before it to its own. The steps a database lacks
run in one transaction holding the write lock (on both engines a schema change is
transactional: a step that fails leaves the database at the version it had).
``schema_version`` keeps one row per step applied. A database made before versions were kept
(it has the tables of version 1 but no ``schema_version``) is at version 1. A database at a
version newer than this code knows is refused: an older ccsim must not write to it.

The statements are written for SQLite; :meth:`Engine.ddl` turns their types into PostgreSQL's.
To change the schema, append a step; never edit one that has been released.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from controlcenter.store_engine import Db, Engine
from sim.errors import CcsimError


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "runs, events, KPIs, alarms and their history, audit, users, tokens, settings", (
        "CREATE TABLE IF NOT EXISTS runs ("
        " id INTEGER PRIMARY KEY, scenario TEXT NOT NULL, controller TEXT NOT NULL,"
        " seed INTEGER NOT NULL, started_at REAL NOT NULL, ended_at REAL, status TEXT NOT NULL,"
        " detail TEXT NOT NULL DEFAULT '')",
        "CREATE TABLE IF NOT EXISTS events ("
        " run_id INTEGER NOT NULL, seq INTEGER NOT NULL, t REAL NOT NULL, source TEXT NOT NULL,"
        " kind TEXT NOT NULL, payload TEXT NOT NULL, at REAL NOT NULL, PRIMARY KEY (run_id, seq))",
        "CREATE INDEX IF NOT EXISTS events_kind ON events (kind, run_id, seq)",
        "CREATE INDEX IF NOT EXISTS events_at ON events (at)",
        "CREATE TABLE IF NOT EXISTS kpis ("
        " run_id INTEGER NOT NULL, period TEXT NOT NULL, begin_s REAL NOT NULL, end_s REAL NOT NULL,"
        " scope TEXT NOT NULL, metric TEXT NOT NULL, value REAL, at REAL NOT NULL)",
        "CREATE INDEX IF NOT EXISTS kpis_scope ON kpis (scope, metric, run_id, end_s)",
        "CREATE TABLE IF NOT EXISTS alarms ("
        " id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL, rule TEXT NOT NULL, key TEXT NOT NULL,"
        " state TEXT NOT NULL, active INTEGER NOT NULL, severity TEXT NOT NULL,"
        " category TEXT NOT NULL, subcategory TEXT NOT NULL, description TEXT NOT NULL,"
        " source TEXT NOT NULL, raised_at REAL NOT NULL, raised_t REAL, updated_at REAL NOT NULL,"
        " occurrences INTEGER NOT NULL, shelved_until REAL, location TEXT)",
        "CREATE INDEX IF NOT EXISTS alarms_state ON alarms (state)",
        "CREATE TABLE IF NOT EXISTS alarm_events ("
        " seq INTEGER PRIMARY KEY AUTOINCREMENT, alarm_id INTEGER NOT NULL, action TEXT NOT NULL,"
        ' from_state TEXT, to_state TEXT NOT NULL, "user" TEXT NOT NULL, at REAL NOT NULL, t REAL,'
        " note TEXT NOT NULL DEFAULT '')",
        "CREATE INDEX IF NOT EXISTS alarm_events_alarm ON alarm_events (alarm_id, seq)",
        "CREATE TABLE IF NOT EXISTS audit ("
        ' id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, "user" TEXT NOT NULL,'
        " role TEXT NOT NULL, action TEXT NOT NULL, target TEXT NOT NULL, arguments TEXT NOT NULL,"
        " result TEXT NOT NULL, detail TEXT NOT NULL, t REAL, run_id INTEGER, decided_at REAL)",
        "CREATE INDEX IF NOT EXISTS audit_at ON audit (at)",
        "CREATE TABLE IF NOT EXISTS users ("
        " name TEXT PRIMARY KEY, role TEXT NOT NULL, created_at REAL NOT NULL)",
        "CREATE TABLE IF NOT EXISTS tokens ("
        ' hash TEXT PRIMARY KEY, "user" TEXT NOT NULL REFERENCES users(name),'
        " created_at REAL NOT NULL)",
        "CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    )),
    # The alarm list filtered by run (GET /api/alarms?run=) and an account's tokens (revoke,
    # rotate, remove) read by index rather than by scanning the whole table.
    Migration(2, "indexes: alarms by run, tokens by user", (
        "CREATE INDEX IF NOT EXISTS alarms_run ON alarms (run_id, id)",
        'CREATE INDEX IF NOT EXISTS tokens_user ON tokens ("user")',
    )),
)  # fmt: skip

LATEST = MIGRATIONS[-1].version

VERSION_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_version ("
    " version INTEGER PRIMARY KEY, applied_at REAL NOT NULL, description TEXT NOT NULL)"
)


def version_of(db: Db, engine: Engine) -> int:
    """The schema version of the database (0: empty; 1: made before versions were kept)."""
    tables = {str(r[0]) for r in db.execute(engine.tables_query).fetchall()}
    if "schema_version" in tables:
        return int(db.scalar("SELECT COALESCE(MAX(version), 0) FROM schema_version"))
    return 1 if "runs" in tables else 0


def migrate(db: Db, engine: Engine, url: str, steps: Sequence[Migration] = MIGRATIONS) -> list[int]:
    """Bring the database to the last of ``steps``; returns the versions applied (none: it was
    there already).

    Runs in one writing transaction, so two processes opening one database at once apply each
    step once, and a step that fails leaves the database as it was."""
    applied: list[int] = []
    latest = steps[-1].version
    with db.transaction():
        current = version_of(db, engine)
        if current > latest:
            raise CcsimError(
                f"--db '{url}': the database is at schema version {current}, newer than this "
                f"ccsim knows (up to {latest}); upgrade ccsim to use it"
            )
        if current < latest:
            db.execute(engine.ddl(VERSION_TABLE))
        if current == 1 and not db.scalar("SELECT COUNT(*) FROM schema_version"):
            # Made before versions were kept: record the version it is at.
            db.execute(
                "INSERT INTO schema_version (version, applied_at, description) VALUES (?, ?, ?)",
                (1, time.time(), "found (made before schema versions were kept)"),
            )
        for step in steps:
            if step.version <= current:
                continue
            for statement in step.statements:
                db.execute(engine.ddl(statement))
            db.execute(
                "INSERT INTO schema_version (version, applied_at, description) VALUES (?, ?, ?)",
                (step.version, time.time(), step.description),
            )
            applied.append(step.version)
    return applied
