"""The durable store: runs, events, KPI series, alarms and their history, audit, users, settings.

SQLite in WAL mode (readers never block the writer) with ``synchronous=FULL``: once a commit
returns, what it wrote survives the process being killed and the machine losing power. One
thread writes (the recorder, through :class:`Writer`); readers open their own connections. The
URL names the database (``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db``) so that
another engine (PostgreSQL) can plug in behind the same methods.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controlcenter.alarms import Alarm, AlarmAction, AlarmEvent, AlarmState, Severity, iso
from controlcenter.auth import Role, User
from sim.errors import CcsimError

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY, scenario TEXT NOT NULL, controller TEXT NOT NULL, seed INTEGER NOT NULL,
    started_at REAL NOT NULL, ended_at REAL, status TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS events (
    run_id INTEGER NOT NULL, seq INTEGER NOT NULL, t REAL NOT NULL, source TEXT NOT NULL,
    kind TEXT NOT NULL, payload TEXT NOT NULL, at REAL NOT NULL, PRIMARY KEY (run_id, seq));
CREATE INDEX IF NOT EXISTS events_kind ON events (kind, run_id, seq);
CREATE INDEX IF NOT EXISTS events_at ON events (at);
CREATE TABLE IF NOT EXISTS kpis (
    run_id INTEGER NOT NULL, period TEXT NOT NULL, begin_s REAL NOT NULL, end_s REAL NOT NULL,
    scope TEXT NOT NULL, metric TEXT NOT NULL, value REAL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS kpis_scope ON kpis (scope, metric, run_id, end_s);
CREATE TABLE IF NOT EXISTS alarms (
    id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL, rule TEXT NOT NULL, key TEXT NOT NULL,
    state TEXT NOT NULL, active INTEGER NOT NULL, severity TEXT NOT NULL, category TEXT NOT NULL,
    subcategory TEXT NOT NULL, description TEXT NOT NULL, source TEXT NOT NULL,
    raised_at REAL NOT NULL, raised_t REAL, updated_at REAL NOT NULL,
    occurrences INTEGER NOT NULL, shelved_until REAL, location TEXT);
CREATE INDEX IF NOT EXISTS alarms_state ON alarms (state);
CREATE TABLE IF NOT EXISTS alarm_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, alarm_id INTEGER NOT NULL, action TEXT NOT NULL,
    from_state TEXT, to_state TEXT NOT NULL, user TEXT NOT NULL, at REAL NOT NULL, t REAL,
    note TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS alarm_events_alarm ON alarm_events (alarm_id, seq);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, user TEXT NOT NULL, role TEXT NOT NULL,
    action TEXT NOT NULL, target TEXT NOT NULL, arguments TEXT NOT NULL, result TEXT NOT NULL,
    detail TEXT NOT NULL, t REAL, run_id INTEGER, decided_at REAL);
CREATE INDEX IF NOT EXISTS audit_at ON audit (at);
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY, role TEXT NOT NULL, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (
    hash TEXT PRIMARY KEY, user TEXT NOT NULL REFERENCES users(name), created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

RETENTION_DEFAULTS: dict[str, float] = {
    "events_days": 30.0,
    "kpis_days": 365.0,
    "alarms_days": 365.0,
    "audit_days": 730.0,
}
"""How long each kind of record is kept (days; 0 keeps it for ever). Open alarms are never
deleted, whatever their age."""


class StoreError(CcsimError):
    """The store did not take a write (disk full, a broken file...): nothing of it was kept."""


EventRow = tuple[int, float, str, str, str]
"""(seq, t, source, kind, payload JSON) of one message."""


def sqlite_path(url: str) -> Path:
    """The file of a ``sqlite:///path`` URL; other schemes are refused with what is supported."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme != "sqlite":
        raise CcsimError(
            f"--db '{url}': unsupported store; expected sqlite:///path/to/file.db "
            "(PostgreSQL is planned)"
        )
    if not rest.startswith("/") or rest == "/":
        raise CcsimError(f"--db '{url}': expected sqlite:///relative.db or sqlite:////absolute.db")
    return Path(rest[1:])


def _connect(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
    connection.row_factory = sqlite3.Row
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    connection.execute("PRAGMA foreign_keys=ON")
    return connection


@dataclass(frozen=True)
class Page:
    total: int
    items: list[dict[str, Any]]


class Store:
    """Opens the database (creating the schema) and answers read queries."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.path = sqlite_path(url)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.reading() as connection:
                mode = connection.execute("PRAGMA journal_mode").fetchone()[0]
                connection.executescript(SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise CcsimError(f"--db '{url}': cannot open the store ({exc})") from None
        if mode != "wal":
            raise CcsimError(f"--db '{url}': the store refused WAL mode (journal mode {mode})")

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        connection = _connect(self.path)
        try:
            yield connection
        finally:
            connection.close()

    def writer(self) -> Writer:
        return Writer(_connect(self.path))

    # --- users --------------------------------------------------------------------------------

    def token_users(self) -> dict[str, User]:
        with self.reading() as c:
            rows = c.execute(
                "SELECT tokens.hash, users.name, users.role "
                "FROM tokens JOIN users ON users.name = tokens.user"
            ).fetchall()
        return {r["hash"]: User(r["name"], Role.parse(r["role"])) for r in rows}

    def users(self) -> list[dict[str, Any]]:
        """Every account: name, role, when it was created, how many valid tokens it has and
        when the newest was issued (no token: the account can no longer sign in)."""
        with self.reading() as c:
            rows = c.execute(
                "SELECT users.name, users.role, users.created_at, COUNT(tokens.hash) AS tokens, "
                "MAX(tokens.created_at) AS issued FROM users "
                "LEFT JOIN tokens ON tokens.user = users.name GROUP BY users.name ORDER BY users.name"
            ).fetchall()
        return [
            {"name": r["name"], "role": r["role"], "created": iso(r["created_at"]),
             "tokens": r["tokens"], "token_issued": iso(r["issued"])}
            for r in rows
        ]  # fmt: skip

    def user_count(self) -> int:
        with self.reading() as c:
            return int(c.execute("SELECT COUNT(*) FROM users").fetchone()[0])

    # --- settings -----------------------------------------------------------------------------

    def retention(self) -> dict[str, float]:
        with self.reading() as c:
            rows = c.execute("SELECT key, value FROM settings WHERE key LIKE 'retention.%'").fetchall()
        settings = dict(RETENTION_DEFAULTS)
        for r in rows:
            settings[r["key"].removeprefix("retention.")] = float(r["value"])
        return settings

    # --- alarms -------------------------------------------------------------------------------

    def open_alarms(self) -> list[Alarm]:
        with self.reading() as c:
            rows = c.execute(
                "SELECT * FROM alarms WHERE state != ? ORDER BY id", ("cleared",)
            ).fetchall()
        return [_alarm(r) for r in rows]

    def load_alarm(self, alarm_id: int) -> Alarm | None:
        with self.reading() as c:
            row = c.execute("SELECT * FROM alarms WHERE id = ?", (alarm_id,)).fetchone()
        return None if row is None else _alarm(row)

    def next_alarm_id(self) -> int:
        with self.reading() as c:
            return int(c.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM alarms").fetchone()[0])

    def last_alarm_seq(self) -> int:
        with self.reading() as c:
            return int(c.execute("SELECT COALESCE(MAX(seq), 0) FROM alarm_events").fetchone()[0])

    def alarms(
        self,
        *,
        states: Sequence[str] = (),
        severities: Sequence[str] = (),
        category: str | None = None,
        run_id: int | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> Page:
        where, args = _where(
            ("state", states), ("severity", severities), ("category", category), ("run_id", run_id)
        )
        with self.reading() as c:
            total = c.execute(f"SELECT COUNT(*) FROM alarms{where}", args).fetchone()[0]
            rows = c.execute(
                f"SELECT * FROM alarms{where} ORDER BY id DESC LIMIT ? OFFSET ?", [*args, limit, offset]
            ).fetchall()
        return Page(int(total), [_alarm(r).to_dict() for r in rows])

    def alarm_history(self, alarm_id: int) -> list[dict[str, Any]]:
        with self.reading() as c:
            rows = c.execute(
                "SELECT * FROM alarm_events WHERE alarm_id = ? ORDER BY seq", (alarm_id,)
            ).fetchall()
        return [_alarm_event(r).to_dict() for r in rows]

    def alarm_events_since(self, seq: int, limit: int = 1000) -> list[tuple[AlarmEvent, Alarm]]:
        """A page of the alarm events after ``seq`` (at most ``limit``), in order, each with its
        alarm as it is now; page on from the last one's ``seq``."""
        with self.reading() as c:
            rows = c.execute(
                "SELECT e.*, a.id AS a_id FROM alarm_events e JOIN alarms a ON a.id = e.alarm_id "
                "WHERE e.seq > ? ORDER BY e.seq LIMIT ?",
                (seq, limit),
            ).fetchall()
            ids = sorted({r["alarm_id"] for r in rows})
            if not ids:
                return []
            alarms = {
                r["id"]: _alarm(r)
                for r in c.execute(
                    f"SELECT * FROM alarms WHERE id IN ({','.join('?' * len(ids))})", ids
                ).fetchall()
            }
        return [(_alarm_event(r), alarms[r["alarm_id"]]) for r in rows]

    def first_alarm_seq(self) -> int:
        with self.reading() as c:
            return int(c.execute("SELECT COALESCE(MIN(seq), 0) FROM alarm_events").fetchone()[0])

    # --- events, KPIs, audit ----------------------------------------------------------------------

    def events(
        self,
        *,
        run_id: int | None = None,
        kinds: Sequence[str] = (),
        source: str | None = None,
        after_seq: int = 0,
        since_t: float | None = None,
        until_t: float | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        where, args = _where(("run_id", run_id), ("kind", kinds), ("source", source))
        where += " AND seq > ?" if where else " WHERE seq > ?"
        args.append(after_seq)
        if since_t is not None:
            where, args = where + " AND t >= ?", [*args, since_t]
        if until_t is not None:
            where, args = where + " AND t <= ?", [*args, until_t]
        with self.reading() as c:
            rows = c.execute(
                f"SELECT * FROM events{where} ORDER BY run_id, seq LIMIT ?", [*args, limit]
            ).fetchall()
        return [
            {"run": r["run_id"], "seq": r["seq"], "t": r["t"], "source": r["source"], "kind": r["kind"],
             "payload": json.loads(r["payload"]), "at": iso(r["at"])}
            for r in rows
        ]  # fmt: skip

    def kpis(
        self,
        *,
        run_id: int | None = None,
        scope: str | None = None,
        metric: str | None = None,
        period: str | None = None,
        limit: int = 10_000,
    ) -> list[dict[str, Any]]:
        where, args = _where(
            ("run_id", run_id), ("scope", scope), ("metric", metric), ("period", period)
        )
        with self.reading() as c:
            rows = c.execute(
                f"SELECT * FROM kpis{where} ORDER BY run_id, scope, metric, end_s LIMIT ?",
                [*args, limit],
            ).fetchall()
        return [
            {"run": r["run_id"], "period": r["period"], "begin_s": r["begin_s"], "end_s": r["end_s"],
             "scope": r["scope"], "metric": r["metric"], "value": r["value"]}
            for r in rows
        ]  # fmt: skip

    def audit(
        self,
        *,
        user: str | None = None,
        action: str | None = None,
        result: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> Page:
        where, args = _where(("user", user), ("action", action), ("result", result))
        with self.reading() as c:
            total = c.execute(f"SELECT COUNT(*) FROM audit{where}", args).fetchone()[0]
            rows = c.execute(
                f"SELECT * FROM audit{where} ORDER BY id DESC LIMIT ? OFFSET ?", [*args, limit, offset]
            ).fetchall()
        return Page(int(total), [audit_entry(r) for r in rows])

    def runs(self) -> list[dict[str, Any]]:
        with self.reading() as c:
            rows = c.execute("SELECT * FROM runs ORDER BY id DESC").fetchall()
        return [
            {"id": r["id"], "scenario": r["scenario"], "controller": r["controller"], "seed": r["seed"],
             "started": iso(r["started_at"]), "ended": iso(r["ended_at"]), "status": r["status"],
             "detail": r["detail"]}
            for r in rows
        ]  # fmt: skip


def audit_entry(r: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": r["id"], "at": iso(r["at"]), "user": r["user"], "role": r["role"], "action": r["action"],
        "target": r["target"], "arguments": json.loads(r["arguments"]), "result": r["result"],
        "detail": r["detail"], "t": r["t"], "run": r["run_id"], "decided": iso(r["decided_at"]),
    }  # fmt: skip


def _where(*filters: tuple[str, Any]) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    args: list[Any] = []
    for column, value in filters:
        if value is None or (isinstance(value, list | tuple) and not value):
            continue
        if isinstance(value, list | tuple):
            clauses.append(f"{column} IN ({','.join('?' * len(value))})")
            args.extend(value)
        else:
            clauses.append(f"{column} = ?")
            args.append(value)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), args


def _alarm(r: sqlite3.Row) -> Alarm:
    return Alarm(
        id=r["id"], rule=r["rule"], key=r["key"], run_id=r["run_id"], severity=Severity(r["severity"]),
        category=r["category"], subcategory=r["subcategory"], description=r["description"],
        source=r["source"], state=AlarmState(r["state"]), active=bool(r["active"]),
        raised_at=r["raised_at"], raised_t=r["raised_t"], updated_at=r["updated_at"],
        occurrences=r["occurrences"], shelved_until=r["shelved_until"],
        location=json.loads(r["location"]) if r["location"] else None,
    )  # fmt: skip


def _alarm_event(r: sqlite3.Row) -> AlarmEvent:
    return AlarmEvent(
        alarm_id=r["alarm_id"], action=AlarmAction(r["action"]),
        from_state=AlarmState(r["from_state"]) if r["from_state"] else None,
        to_state=AlarmState(r["to_state"]), user=r["user"], at=r["at"], t=r["t"], note=r["note"],
        seq=r["seq"],
    )  # fmt: skip


class Writer:
    """The one writing connection. Group writes in :meth:`transaction`; on leaving it, they are
    committed (and durable) or, on an exception, rolled back."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.c = connection

    def close(self) -> None:
        self.c.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.c.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.c.execute("ROLLBACK")
            raise
        self.c.execute("COMMIT")

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A nested step inside a transaction that can fail alone."""
        self.c.execute("SAVEPOINT step")
        try:
            yield
        except BaseException:
            self.c.execute("ROLLBACK TO step")
            self.c.execute("RELEASE step")
            raise
        self.c.execute("RELEASE step")

    # --- runs, events, KPIs ---------------------------------------------------------------------

    def begin_run(self, scenario: str, controller: str, seed: int) -> int:
        cursor = self.c.execute(
            "INSERT INTO runs (scenario, controller, seed, started_at, status) VALUES (?, ?, ?, ?, ?)",
            (scenario, controller, seed, time.time(), "starting"),
        )
        return int(cursor.lastrowid or 0)

    def close_interrupted_runs(self) -> int:
        """Mark runs that never ended (their server was killed) as interrupted."""
        return self.c.execute(
            "UPDATE runs SET status = 'interrupted', detail = ? WHERE ended_at IS NULL",
            ("the server stopped (killed?) before the run ended",),
        ).rowcount

    def set_run_status(self, run_id: int, status: str, detail: str = "", ended: bool = False) -> None:
        self.c.execute(
            "UPDATE runs SET status = ?, detail = ?, ended_at = ? WHERE id = ?",
            (status, detail, time.time() if ended else None, run_id),
        )

    def add_events(self, run_id: int, rows: Iterable[EventRow], at: float) -> None:
        self.c.executemany(
            "INSERT OR IGNORE INTO events (run_id, seq, t, source, kind, payload, at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            ((run_id, *row, at) for row in rows),
        )

    def add_kpis(self, run_id: int, rows: Iterable[dict[str, Any]], at: float) -> None:
        self.c.executemany(
            "INSERT INTO kpis (run_id, period, begin_s, end_s, scope, metric, value, at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                (run_id, r["period"], r["begin_s"], r["end_s"], r["scope"], r["metric"], r["value"], at)
                for r in rows
            ),
        )

    # --- alarms ---------------------------------------------------------------------------------

    def save_alarm(self, a: Alarm) -> None:
        self.c.execute(
            "INSERT OR REPLACE INTO alarms (id, run_id, rule, key, state, active, severity, category, "
            "subcategory, description, source, raised_at, raised_t, updated_at, occurrences, "
            "shelved_until, location) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (a.id, a.run_id, a.rule, a.key, a.state.value, int(a.active), a.severity.value, a.category,
             a.subcategory, a.description, a.source, a.raised_at, a.raised_t, a.updated_at,
             a.occurrences, a.shelved_until, json.dumps(a.location) if a.location else None),
        )  # fmt: skip

    def add_alarm_event(self, e: AlarmEvent) -> int:
        """Persist a history entry; returns its sequence number."""
        cursor = self.c.execute(
            "INSERT INTO alarm_events (alarm_id, action, from_state, to_state, user, at, t, note) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (e.alarm_id, e.action.value, e.from_state.value if e.from_state else None,
             e.to_state.value, e.user, e.at, e.t, e.note),
        )  # fmt: skip
        return int(cursor.lastrowid or 0)

    # --- audit ------------------------------------------------------------------------------------

    def add_audit(
        self,
        *,
        user: str,
        role: str,
        action: str,
        target: str,
        arguments: dict[str, Any],
        result: str,
        detail: str = "",
        t: float | None = None,
        run_id: int | None = None,
    ) -> int:
        now = time.time()
        cursor = self.c.execute(
            "INSERT INTO audit (at, user, role, action, target, arguments, result, detail, t, run_id, "
            "decided_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (now, user, role, action, target, json.dumps(arguments, sort_keys=True), result, detail, t,
             run_id, None if result == "pending" else now),
        )  # fmt: skip
        return int(cursor.lastrowid or 0)

    def decide_audit(self, audit_id: int, result: str, detail: str, t: float | None) -> None:
        """Record what came of a command that was pending."""
        self.c.execute(
            "UPDATE audit SET result = ?, detail = ?, t = COALESCE(?, t), decided_at = ? WHERE id = ?",
            (result, detail, t, time.time(), audit_id),
        )

    def audit_row(self, audit_id: int) -> dict[str, Any]:
        row = self.c.execute("SELECT * FROM audit WHERE id = ?", (audit_id,)).fetchone()
        return audit_entry(row)

    # --- users and settings ----------------------------------------------------------------------

    def add_user(self, name: str, role: str) -> None:
        try:
            self.c.execute(
                "INSERT INTO users (name, role, created_at) VALUES (?, ?, ?)", (name, role, time.time())
            )
        except sqlite3.IntegrityError:
            raise CcsimError(f"user '{name}' exists already") from None

    def add_token(self, hashed: str, user: str) -> None:
        self.c.execute(
            "INSERT OR IGNORE INTO tokens (hash, user, created_at) VALUES (?, ?, ?)",
            (hashed, user, time.time()),
        )

    def user_role(self, name: str) -> str | None:
        """The role of account ``name`` (None: no such account), read inside the transaction."""
        row = self.c.execute("SELECT role FROM users WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row["role"])

    def token_owner(self, hashed: str) -> str | None:
        row = self.c.execute("SELECT user FROM tokens WHERE hash = ?", (hashed,)).fetchone()
        return None if row is None else str(row["user"])

    def count_role(self, role: str) -> int:
        return int(self.c.execute("SELECT COUNT(*) FROM users WHERE role = ?", (role,)).fetchone()[0])

    def set_role(self, name: str, role: str) -> None:
        self.c.execute("UPDATE users SET role = ? WHERE name = ?", (role, name))

    def revoke_tokens(self, user: str, keep: str | None = None) -> list[str]:
        """Delete every token of ``user`` but ``keep`` (a hash); returns the hashes revoked."""
        rows = self.c.execute(
            "SELECT hash FROM tokens WHERE user = ? AND hash IS NOT ?", (user, keep)
        ).fetchall()
        self.c.execute("DELETE FROM tokens WHERE user = ? AND hash IS NOT ?", (user, keep))
        return [str(r["hash"]) for r in rows]

    def delete_user(self, name: str) -> list[str]:
        """Remove an account and revoke its tokens; returns the hashes revoked."""
        revoked = self.revoke_tokens(name)
        self.c.execute("DELETE FROM users WHERE name = ?", (name,))
        return revoked

    def set_retention(self, settings: dict[str, float]) -> None:
        self.c.executemany(
            "INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)",
            ((f"retention.{k}", str(v)) for k, v in settings.items()),
        )

    def apply_retention(self, settings: dict[str, float], now: float) -> dict[str, int]:
        """Delete what is older than its retention; returns rows deleted per table."""
        deleted: dict[str, int] = {}

        def cutoff(key: str) -> float | None:
            days = settings.get(key, 0.0)
            return now - days * 86400.0 if days > 0 else None

        for table, key in (("events", "events_days"), ("kpis", "kpis_days"), ("audit", "audit_days")):
            limit = cutoff(key)
            if limit is not None:
                deleted[table] = self.c.execute(f"DELETE FROM {table} WHERE at < ?", (limit,)).rowcount
        limit = cutoff("alarms_days")
        if limit is not None:
            self.c.execute(
                "DELETE FROM alarm_events WHERE alarm_id IN "
                "(SELECT id FROM alarms WHERE state = 'cleared' AND updated_at < ?)",
                (limit,),
            )
            deleted["alarms"] = self.c.execute(
                "DELETE FROM alarms WHERE state = 'cleared' AND updated_at < ?", (limit,)
            ).rowcount
        return deleted
