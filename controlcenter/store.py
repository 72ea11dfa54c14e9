"""The durable store: runs, events, KPI series, alarms and their history, audit, users, settings.

One store, two engines behind the same methods, named by the ``--db`` URL:

- ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db`` (the default, embedded):
  WAL mode (readers never block the writer) with ``synchronous=FULL``;
- ``postgresql://user[:password]@host[:port]/database`` (several operators, a database server):
  every connection runs with ``synchronous_commit=on`` (PostgreSQL's default, set explicitly), so
  a commit returns only once its WAL record is flushed to disk.

On both, once a commit returns, what it wrote survives the process being killed (kill -9) and
the machine losing power. One thread writes (the recorder, through :class:`Writer`), holding the
engine's write lock for each transaction; readers use their own connections. Opening a store
brings its schema to the latest version (:mod:`controlcenter.store_schema`). Where the engines
differ is in :mod:`controlcenter.store_engine`, nowhere else.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from controlcenter.alarms import Alarm, AlarmAction, AlarmEvent, AlarmState, Severity, iso
from controlcenter.auth import Role, User
from controlcenter.store_engine import Db, Engine, Row, engine_for
from controlcenter.store_schema import migrate
from sim.errors import CcsimError

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


def error_text(exc: BaseException) -> str:
    """An engine's error on one line, to print and to show: PostgreSQL's span several (the
    error, then its DETAIL and HINT lines)."""
    return " ".join(str(exc).split())


EventRow = tuple[int, float, str, str, str]
"""(seq, t, source, kind, payload JSON) of one message."""


@dataclass(frozen=True)
class Page:
    total: int
    items: list[dict[str, Any]]


class Store:
    """Opens the database (creating the schema) and answers read queries."""

    def __init__(self, url: str) -> None:
        self.engine: Engine = engine_for(url)
        self.url = self.engine.shown_url
        """The URL without its password (to print, and to show in the health)."""
        self.migrated: list[int] = []
        """The schema versions this opening applied."""
        failures: tuple[type[Exception], ...] = (OSError, *self.engine.errors)
        try:
            self.engine.prepare()
            db = self.engine.connect(writer=True)
            try:
                self.migrated = migrate(db, self.engine, self.url)
            finally:
                db.close()
            self.engine.opened()
        except failures as exc:
            reason = error_text(exc)
            raise CcsimError(f"--db '{self.url}': cannot open the store ({reason})") from None

    @property
    def errors(self) -> tuple[type[Exception], ...]:
        """What the engine raises when the store fails (a lost connection, a full disk)."""
        return self.engine.errors

    @property
    def transient_errors(self) -> tuple[type[Exception], ...]:
        """Those of :attr:`errors` that can pass: the same write may succeed later."""
        return self.engine.transient_errors

    @contextmanager
    def reading(self) -> Iterator[Db]:
        with self.engine.reading() as db:
            yield db

    def writer(self) -> Writer:
        return Writer(self.engine)

    def close(self) -> None:
        """Close the connections kept for reading (a writer is closed by its owner)."""
        self.engine.close()

    # --- users --------------------------------------------------------------------------------

    def token_users(self) -> dict[str, User]:
        with self.reading() as c:
            rows = c.execute(
                "SELECT tokens.hash, users.name, users.role "
                'FROM tokens JOIN users ON users.name = tokens."user"'
            ).fetchall()
        return {r["hash"]: User(r["name"], Role.parse(r["role"])) for r in rows}

    def users(self) -> list[dict[str, Any]]:
        """Every account: name, role, when it was created, how many valid tokens it has and
        when the newest was issued (no token: the account can no longer sign in)."""
        with self.reading() as c:
            rows = c.execute(
                "SELECT users.name, users.role, users.created_at, COUNT(tokens.hash) AS tokens, "
                "MAX(tokens.created_at) AS issued FROM users "
                'LEFT JOIN tokens ON tokens."user" = users.name GROUP BY users.name ORDER BY users.name'
            ).fetchall()
        return [
            {"name": r["name"], "role": r["role"], "created": iso(r["created_at"]),
             "tokens": r["tokens"], "token_issued": iso(r["issued"])}
            for r in rows
        ]  # fmt: skip

    def user_count(self) -> int:
        with self.reading() as c:
            return int(c.scalar("SELECT COUNT(*) FROM users"))

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
            return int(c.scalar("SELECT COALESCE(MAX(id), 0) + 1 FROM alarms"))

    def last_alarm_seq(self) -> int:
        with self.reading() as c:
            return int(c.scalar("SELECT COALESCE(MAX(seq), 0) FROM alarm_events"))

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
            total = c.scalar(f"SELECT COUNT(*) FROM alarms{where}", args)
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
            return int(c.scalar("SELECT COALESCE(MIN(seq), 0) FROM alarm_events"))

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
        where, args = _where(('"user"', user), ("action", action), ("result", result))
        with self.reading() as c:
            total = c.scalar(f"SELECT COUNT(*) FROM audit{where}", args)
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


def audit_entry(r: Row) -> dict[str, Any]:
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


def _alarm(r: Row) -> Alarm:
    return Alarm(
        id=r["id"], rule=r["rule"], key=r["key"], run_id=r["run_id"], severity=Severity(r["severity"]),
        category=r["category"], subcategory=r["subcategory"], description=r["description"],
        source=r["source"], state=AlarmState(r["state"]), active=bool(r["active"]),
        raised_at=r["raised_at"], raised_t=r["raised_t"], updated_at=r["updated_at"],
        occurrences=r["occurrences"], shelved_until=r["shelved_until"],
        location=json.loads(r["location"]) if r["location"] else None,
    )  # fmt: skip


def _alarm_event(r: Row) -> AlarmEvent:
    return AlarmEvent(
        alarm_id=r["alarm_id"], action=AlarmAction(r["action"]),
        from_state=AlarmState(r["from_state"]) if r["from_state"] else None,
        to_state=AlarmState(r["to_state"]), user=r["user"], at=r["at"], t=r["t"], note=r["note"],
        seq=r["seq"],
    )  # fmt: skip


_ALARM_COLUMNS = (
    "id", "run_id", "rule", "key", "state", "active", "severity", "category", "subcategory",
    "description", "source", "raised_at", "raised_t", "updated_at", "occurrences", "shelved_until",
    "location",
)  # fmt: skip
SAVE_ALARM = (
    f"INSERT INTO alarms ({', '.join(_ALARM_COLUMNS)}) VALUES ({', '.join('?' * len(_ALARM_COLUMNS))}) "
    "ON CONFLICT (id) DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in _ALARM_COLUMNS[1:])
)
"""An alarm, new or changed: the whole row."""


class Writer:
    """The one writing connection. Group writes in :meth:`transaction`; on leaving it, they are
    committed (and durable) or, on an exception, rolled back."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.c = engine.connect(writer=True)

    def close(self) -> None:
        self.c.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        if self.c.broken:  # the database server restarted or the link dropped: connect again
            self._reconnect()
        try:
            self.c.begin()
        except self.engine.errors:
            if not self.c.broken:
                raise  # e.g. another writer held the lock too long
            # The server ended the session while it was idle (a restart, a failover): this is
            # where it shows, before anything of the transaction was sent - begin it again on a
            # new connection rather than fail it (the recorder would drop its whole batch).
            self._reconnect()
            self.c.begin()
        with self.c.transaction(begun=True):
            yield

    def _reconnect(self) -> None:
        self.c.close()
        self.c = self.engine.connect(writer=True)

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
        return self.c.insert(
            "INSERT INTO runs (scenario, controller, seed, started_at, status) "
            "VALUES (?, ?, ?, ?, ?) RETURNING id",
            (scenario, controller, seed, time.time(), "starting"),
        )

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
            "INSERT INTO events (run_id, seq, t, source, kind, payload, at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
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
            SAVE_ALARM,
            (a.id, a.run_id, a.rule, a.key, a.state.value, int(a.active), a.severity.value, a.category,
             a.subcategory, a.description, a.source, a.raised_at, a.raised_t, a.updated_at,
             a.occurrences, a.shelved_until, json.dumps(a.location) if a.location else None),
        )  # fmt: skip

    def add_alarm_event(self, e: AlarmEvent) -> int:
        """Persist a history entry; returns its sequence number."""
        return self.c.insert(
            'INSERT INTO alarm_events (alarm_id, action, from_state, to_state, "user", at, t, note) '
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq",
            (e.alarm_id, e.action.value, e.from_state.value if e.from_state else None,
             e.to_state.value, e.user, e.at, e.t, e.note),
        )  # fmt: skip

    def put_alarm_event(self, e: AlarmEvent) -> None:
        """Persist a history entry under the ``seq`` it has already (it was shown before the
        store could take it)."""
        self.c.execute(
            'INSERT INTO alarm_events (seq, alarm_id, action, from_state, to_state, "user", at, t, '
            "note) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (e.seq, e.alarm_id, e.action.value, e.from_state.value if e.from_state else None,
             e.to_state.value, e.user, e.at, e.t, e.note),
        )  # fmt: skip
        for statement in self.engine.keyed("alarm_events", "seq"):
            self.c.execute(statement)

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
        return self.c.insert(
            'INSERT INTO audit (at, "user", role, action, target, arguments, result, detail, t, '
            "run_id, decided_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (now, user, role, action, target, json.dumps(arguments, sort_keys=True), result, detail, t,
             run_id, None if result == "pending" else now),
        )  # fmt: skip

    def decide_audit(self, audit_id: int, result: str, detail: str, t: float | None) -> None:
        """Record what came of a command that was pending."""
        self.c.execute(
            "UPDATE audit SET result = ?, detail = ?, t = COALESCE(?, t), decided_at = ? WHERE id = ?",
            (result, detail, t, time.time(), audit_id),
        )

    def pending_audits(self, run_id: int) -> list[int]:
        """The ids of ``run_id``'s commands still waiting for the simulation's verdict."""
        rows = self.c.execute(
            "SELECT id FROM audit WHERE run_id = ? AND result = 'pending' ORDER BY id", (run_id,)
        ).fetchall()
        return [int(row["id"]) for row in rows]

    def audit_row(self, audit_id: int) -> dict[str, Any]:
        row = self.c.execute("SELECT * FROM audit WHERE id = ?", (audit_id,)).fetchone()
        return audit_entry(row)

    # --- users and settings ----------------------------------------------------------------------

    def add_user(self, name: str, role: str) -> None:
        # Not by catching the unique violation: on PostgreSQL that aborts the transaction, and
        # the refusal could no longer be audited in it.
        added = self.c.execute(
            "INSERT INTO users (name, role, created_at) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO NOTHING RETURNING name",
            (name, role, time.time()),
        ).fetchall()
        if not added:
            raise CcsimError(f"user '{name}' exists already")

    def add_token(self, hashed: str, user: str) -> None:
        self.c.execute(
            'INSERT INTO tokens (hash, "user", created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING',
            (hashed, user, time.time()),
        )

    def user_role(self, name: str) -> str | None:
        """The role of account ``name`` (None: no such account), read inside the transaction."""
        row = self.c.execute("SELECT role FROM users WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row["role"])

    def token_owner(self, hashed: str) -> str | None:
        row = self.c.execute('SELECT "user" FROM tokens WHERE hash = ?', (hashed,)).fetchone()
        return None if row is None else str(row["user"])

    def count_role(self, role: str) -> int:
        return int(self.c.scalar("SELECT COUNT(*) FROM users WHERE role = ?", (role,)))

    def set_role(self, name: str, role: str) -> None:
        self.c.execute("UPDATE users SET role = ? WHERE name = ?", (role, name))

    def revoke_tokens(self, user: str, keep: str | None = None) -> list[str]:
        """Delete every token of ``user`` but ``keep`` (a hash); returns the hashes revoked."""
        which, args = (
            ('"user" = ?', [user]) if keep is None else ('"user" = ? AND hash <> ?', [user, keep])
        )
        rows = self.c.execute(f"SELECT hash FROM tokens WHERE {which}", args).fetchall()
        self.c.execute(f"DELETE FROM tokens WHERE {which}", args)
        return [str(r["hash"]) for r in rows]

    def delete_user(self, name: str) -> list[str]:
        """Remove an account and revoke its tokens; returns the hashes revoked."""
        revoked = self.revoke_tokens(name)
        self.c.execute("DELETE FROM users WHERE name = ?", (name,))
        return revoked

    def set_retention(self, settings: dict[str, float]) -> None:
        self.c.executemany(
            "INSERT INTO settings (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
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
