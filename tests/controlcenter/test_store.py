"""The store, on both engines (SQLite and PostgreSQL, each test runs on each): what it keeps,
retention, the first admin, durability settings, the write lock and schema migrations."""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from controlcenter.alarms import Alarm, AlarmAction, AlarmState, Severity
from controlcenter.auth import ADMIN, Role, User, token_hash
from controlcenter.server import bootstrap_admin
from controlcenter.store import Store
from controlcenter.store_engine import SqliteEngine, engine_for
from controlcenter.store_schema import LATEST, MIGRATIONS, Migration, migrate
from sim.errors import CcsimError


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty store's URL, on each engine."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/control.db"
    postgres_url: str = request.getfixturevalue("postgres_url")
    return postgres_url


def test_urls() -> None:
    relative, absolute = engine_for("sqlite:///out/x.db"), engine_for("sqlite:////tmp/x.db")
    assert isinstance(relative, SqliteEngine) and relative.path == Path("out/x.db")
    assert isinstance(absolute, SqliteEngine) and absolute.path == Path("/tmp/x.db")
    assert engine_for("postgresql://u@db/ccsim").name == "postgresql"
    assert engine_for("postgres://u@db/ccsim").name == "postgresql"
    with pytest.raises(CcsimError, match=r"unsupported store; expected sqlite:///.* or postgresql://"):
        engine_for("mysql://db/ccsim")
    with pytest.raises(CcsimError, match=r"expected sqlite:///relative\.db"):
        engine_for("sqlite://x.db")
    with pytest.raises(CcsimError) as refused:
        engine_for("mysql://ana:hunter2@db/ccsim")
    assert "hunter2" not in str(refused.value) and "ana:***@db" in str(refused.value)


def test_sqlite_runs_in_wal_mode_and_creates_its_folder(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path}/deep/control.db")
    with store.reading() as c:
        assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    writer = store.writer()
    assert writer.c.scalar("PRAGMA synchronous") == 2  # FULL: a commit is on disk when it returns
    writer.close()
    assert (tmp_path / "deep" / "control.db").is_file()


def test_postgresql_commits_wait_for_the_disk_and_the_password_is_not_shown(
    postgres_url: str,
) -> None:
    store = Store(postgres_url)
    assert store.url == postgres_url.replace(":ccsim@", ":***@") and "ccsim@" not in store.url
    writer = store.writer()
    assert writer.c.scalar("SHOW synchronous_commit") == "on"
    assert writer.c.scalar("SHOW lock_timeout") == "30s"
    writer.close()
    store.close()


def test_unwritable_store_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(CcsimError, match="cannot open the store"):
        Store(f"sqlite:///{tmp_path}/file/control.db")


def test_unreachable_postgresql_is_a_clear_error_without_the_password() -> None:
    with pytest.raises(CcsimError, match="cannot open the store") as refused:
        Store("postgresql://ccsim:hunter2@127.0.0.1:1/ccsim")
    assert "hunter2" not in str(refused.value)
    assert str(refused.value).startswith("--db 'postgresql://ccsim:***@127.0.0.1:1/ccsim'")


def alarm(alarm_id: int, state: AlarmState = AlarmState.ACTIVE_UNACKNOWLEDGED) -> Alarm:
    return Alarm(alarm_id, "queue", "J1", 1, Severity.HIGH, "traffic", "trafficJam", "jam", "tls:J1",
                 state=state, raised_at=100.0, updated_at=100.0)  # fmt: skip


def test_alarms_and_their_history_survive_reopening(url: str) -> None:
    writer = Store(url).writer()
    with writer.transaction():
        a = alarm(1)
        writer.save_alarm(a)
        first = writer.add_alarm_event(a.raised_event("system"))
        ack = a.apply(AlarmAction.ACKNOWLEDGE, user="ana", at=120.0, note="seen")
        writer.save_alarm(a)
        second = writer.add_alarm_event(ack)
    writer.close()
    store = Store(url)
    [again] = store.open_alarms()
    assert again.state is AlarmState.ACKNOWLEDGED and again.severity is Severity.HIGH
    assert (first, second) == (1, 2) and store.last_alarm_seq() == 2
    events = store.alarm_events_since(1)
    assert [(e.seq, e.action, e.user, e.note) for e, _ in events] == [
        (2, AlarmAction.ACKNOWLEDGE, "ana", "seen")
    ]
    assert store.alarm_events_since(2) == []
    assert (
        store.alarms(states=["acknowledged"]).total == 1 and store.alarms(states=["cleared"]).total == 0
    )


def test_an_alarm_event_shown_before_it_was_stored_keeps_its_number(url: str) -> None:
    """The store-failed alarm is shown while the store takes no writes, under the next number;
    written later under that number, the events after it are numbered on from it - also where
    failed transactions used numbers up meanwhile (a PostgreSQL sequence is not rolled back)."""
    store = Store(url)
    writer = store.writer()
    a = alarm(1)
    with writer.transaction():
        writer.save_alarm(a)
        assert writer.add_alarm_event(a.raised_event("system")) == 1
    with pytest.raises(RuntimeError), writer.transaction():  # a commit that failed
        writer.add_alarm_event(a.apply(AlarmAction.COMMENT, user="ana", at=110.0, note="lost"))
        raise RuntimeError("disk full")
    shown = replace(a.apply(AlarmAction.ACKNOWLEDGE, user="ana", at=120.0), seq=2)
    with writer.transaction():
        writer.save_alarm(a)
        writer.put_alarm_event(shown)
        after = writer.add_alarm_event(a.apply(AlarmAction.COMMENT, user="bo", at=130.0, note="x"))
    writer.close()
    assert after == 3
    assert [(e.seq, e.action) for e, _ in store.alarm_events_since(0)] == [
        (1, AlarmAction.RAISE), (2, AlarmAction.ACKNOWLEDGE), (3, AlarmAction.COMMENT),
    ]  # fmt: skip


def test_a_failed_transaction_leaves_nothing(url: str) -> None:
    store = Store(url)
    writer = store.writer()
    with pytest.raises(RuntimeError), writer.transaction():
        writer.save_alarm(alarm(1))
        raise RuntimeError("disk on fire")
    assert store.open_alarms() == []


def test_audit_entries_are_decided_later(url: str) -> None:
    store = Store(url)
    writer = store.writer()
    with writer.transaction():
        pending = writer.add_audit(
            user="ana", role="operator", action="signal.override", target="tls:J1",
            arguments={"action": "flash"}, result="pending",
        )  # fmt: skip
    assert store.audit().items[0]["decided"] is None
    with writer.transaction():
        writer.decide_audit(pending, "refused", "no signal 'J1'", 12.0)
    [entry] = store.audit(user="ana").items
    assert (entry["result"], entry["detail"], entry["t"]) == ("refused", "no signal 'J1'", 12.0)
    assert entry["arguments"] == {"action": "flash"} and entry["decided"]


def test_a_nul_character_is_kept_as_a_replacement_and_fails_nothing(url: str) -> None:
    """PostgreSQL's text cannot hold a NUL: an operator's note with one, or a refusal quoting a
    command's argument (``phase '\x00' is not a number``), must not fail the transaction - on
    PostgreSQL that lost the recorder's whole batch, its messages with it."""
    store = Store(url)
    writer = store.writer()
    with writer.transaction():
        run = writer.begin_run("single", "fixed", 1)
        pending = writer.add_audit(
            user="ana", role="operator", action="signal.override", target="tls:J\x00",
            arguments={"argument": "\x00"}, result="pending",
        )  # fmt: skip
    with writer.transaction():
        writer.add_events(run, [(1, 0.5, "engine\x00", "run.status", "{}")], 1.0)
        writer.decide_audit(pending, "refused", "phase '\x00' is not a number", 12.0)
        a = alarm(1)
        writer.save_alarm(a)
        writer.add_alarm_event(a.apply(AlarmAction.ACKNOWLEDGE, user="ana", at=120.0, note="x\x00"))
    [entry] = store.audit().items
    assert (entry["target"], entry["detail"]) == ("tls:J\ufffd", "phase '\ufffd' is not a number")
    assert entry["arguments"] == {"argument": "\x00"}  # JSON escapes it: kept as it was
    assert [e["source"] for e in store.events(run_id=run)] == ["engine\ufffd"]
    assert [h["note"] for h in store.alarm_history(1)] == ["x\ufffd"]
    writer.close()
    store.close()


def test_retention_deletes_old_records_but_never_open_alarms(url: str) -> None:
    store = Store(url)
    writer = store.writer()
    day = 86400.0
    with writer.transaction():
        writer.add_events(1, [(1, 0.0, "monitor", "vehicles.departed", "{}")], at=0.0)
        writer.add_events(1, [(2, 1.0, "monitor", "vehicles.departed", "{}")], at=40 * day)
        old_open, old_cleared = alarm(1), alarm(2, AlarmState.CLEARED)
        old_open.updated_at = old_cleared.updated_at = 0.0
        writer.save_alarm(old_open)
        writer.save_alarm(old_cleared)
        writer.set_retention({"events_days": 30.0, "alarms_days": 10.0})
    settings = store.retention()
    assert settings["events_days"] == 30.0 and settings["audit_days"] == 730.0
    with writer.transaction():
        deleted = writer.apply_retention(settings, now=41 * day)
    assert deleted["events"] == 1 and deleted["alarms"] == 1
    assert [e["seq"] for e in store.events(run_id=1)] == [2]
    assert [a.id for a in store.open_alarms()] == [1]


def test_first_start_creates_the_admin_once(url: str) -> None:
    store = Store(url)
    token = bootstrap_admin(store, None)
    assert token is not None
    assert store.token_users()[token_hash(token)].role is Role.ADMIN
    assert bootstrap_admin(store, None) is None  # shown once, never again
    with store.reading() as c:
        stored = [r["hash"] for r in c.execute("SELECT hash FROM tokens").fetchall()]
    assert stored == [token_hash(token)]  # the token itself is nowhere in the store


def test_admin_token_from_the_environment(url: str) -> None:
    store = Store(url)
    assert bootstrap_admin(store, "a-long-enough-admin-token") is None
    assert store.token_users()[token_hash("a-long-enough-admin-token")] == User(ADMIN, Role.ADMIN)
    with pytest.raises(CcsimError, match="CCSIM_ADMIN_TOKEN: the token must be at least 16 characters"):
        bootstrap_admin(store, "short")


def test_a_changed_environment_token_replaces_the_previous_one(url: str) -> None:
    store = Store(url)
    bootstrap_admin(store, "the-first-admin-token")
    bootstrap_admin(store, "the-first-admin-token")  # the same again: nothing changes
    assert set(store.token_users()) == {token_hash("the-first-admin-token")}
    bootstrap_admin(store, "the-second-admin-token")
    assert set(store.token_users()) == {token_hash("the-second-admin-token")}
    bootstrap_admin(store, None)  # unset: the last one stays the admin's token
    assert set(store.token_users()) == {token_hash("the-second-admin-token")}
    [admin] = store.users()
    assert admin["name"] == ADMIN and admin["role"] == "admin" and admin["tokens"] == 1


def test_the_environment_token_cannot_be_another_users_token(url: str) -> None:
    store = Store(url)
    bootstrap_admin(store, "the-first-admin-token")
    writer = store.writer()
    with writer.transaction():
        writer.add_user("ana", "viewer")
        writer.add_token(token_hash("ana-has-this-token-0"), "ana")
    with pytest.raises(CcsimError, match="CCSIM_ADMIN_TOKEN: that token is the token of user 'ana'"):
        bootstrap_admin(store, "ana-has-this-token-0")
    assert store.token_users()[token_hash("the-first-admin-token")].name == ADMIN


def test_a_store_from_before_the_admin_role_gets_its_admin_promoted(url: str) -> None:
    store = Store(url)
    writer = store.writer()
    with writer.transaction():
        writer.add_user(ADMIN, "engineer")
        writer.add_token(token_hash("an-old-admin-token-0"), ADMIN)
        writer.add_user("eve", "engineer")
    assert bootstrap_admin(store, None) is None
    roles = {u["name"]: u["role"] for u in store.users()}
    assert roles == {ADMIN: "admin", "eve": "engineer"}
    assert store.token_users()[token_hash("an-old-admin-token-0")].role is Role.ADMIN


def test_revoking_and_removing_accounts(url: str) -> None:
    store = Store(url)
    writer = store.writer()
    with writer.transaction():
        writer.add_user("ana", "operator")
        writer.add_token(token_hash("ana-token-one-00000"), "ana")
        writer.add_token(token_hash("ana-token-two-00000"), "ana")
    [ana] = store.users()
    assert ana["tokens"] == 2 and ana["token_issued"] is not None
    with writer.transaction():
        revoked = writer.revoke_tokens("ana", keep=token_hash("ana-token-two-00000"))
    assert revoked == [token_hash("ana-token-one-00000")]
    assert set(store.token_users()) == {token_hash("ana-token-two-00000")}
    with writer.transaction():
        assert writer.delete_user("ana") == [token_hash("ana-token-two-00000")]
        assert writer.user_role("ana") is None
    assert store.users() == [] and store.token_users() == {}


def test_a_second_user_with_the_same_name_is_refused(url: str) -> None:
    store = Store(url)
    writer = store.writer()
    with writer.transaction():
        writer.add_user("ana", "viewer")
    with pytest.raises(CcsimError, match="user 'ana' exists already"), writer.transaction():
        writer.add_user("ana", "operator")
    with store.reading() as c:
        assert [r["role"] for r in c.execute("SELECT role FROM users").fetchall()] == ["viewer"]


def test_a_refused_user_leaves_the_transaction_usable(url: str) -> None:
    """POST /api/users with a taken name: the refusal is audited in the same transaction (a 409).
    On PostgreSQL a unique violation aborts the transaction, so the audit failed with it (a 503,
    nothing audited); the name is checked without one."""
    store = Store(url)
    writer = store.writer()
    with writer.transaction():
        writer.add_user("ana", "viewer")
    with writer.transaction(), writer.savepoint():  # as the recorder runs a job
        with pytest.raises(CcsimError, match="user 'ana' exists already"):
            writer.add_user("ana", "operator")
        writer.add_audit(
            user="admin", role="admin", action="user.create", target="user:ana", arguments={},
            result="refused", detail="user 'ana' exists already",
        )  # fmt: skip
    assert [(e["action"], e["result"]) for e in store.audit().items] == [("user.create", "refused")]
    assert [(u["name"], u["role"]) for u in store.users()] == [("ana", "viewer")]
    writer.close()
    store.close()


# --- the write lock, a lost connection ------------------------------------------------------------


def test_one_writer_at_a_time(url: str) -> None:
    """A second writer (another thread, or another process on the same database) waits for the
    first one's transaction to end before its own begins."""
    store = Store(url)
    first, second = store.writer(), store.writer()
    finished = threading.Event()

    def write_second() -> None:
        with second.transaction():
            second.add_user("ben", "viewer")
        finished.set()

    with first.transaction():
        first.add_user("ana", "viewer")
        waiting = threading.Thread(target=write_second)
        waiting.start()
        assert not finished.wait(0.5), "the second writer did not wait for the first"
    waiting.join(30)
    assert finished.is_set()
    assert [u["name"] for u in store.users()] == ["ana", "ben"]
    first.close()
    second.close()
    store.close()


def test_a_writer_whose_connection_was_cut_connects_again(postgres_url: str) -> None:
    """The database server ended the writer's session (a restart, a failover). Cut while it was
    idle, the next transaction finds out as it begins, before sending anything: it begins again
    on a new connection and keeps what it writes (the recorder's batch is not lost). Cut in the
    middle of a transaction, that one fails and keeps nothing; the next connects again."""
    store = Store(postgres_url)
    writer = store.writer()

    def cut() -> None:
        pid = writer.c.scalar("SELECT pg_backend_pid()")
        with store.reading() as c:
            assert c.scalar("SELECT pg_terminate_backend(?, 10000)", (pid,)) is True

    with writer.transaction():
        writer.add_user("ana", "viewer")
    cut()
    with writer.transaction():
        writer.add_user("ben", "viewer")
    with pytest.raises(store.errors), writer.transaction():
        writer.add_user("cat", "viewer")
        cut()
        writer.add_user("dan", "viewer")
    with writer.transaction():
        writer.add_user("eve", "viewer")
    assert [u["name"] for u in store.users()] == ["ana", "ben", "eve"]
    writer.close()
    store.close()


def test_reads_after_the_server_ended_the_kept_connections(postgres_url: str) -> None:
    """The reading connections kept between reads were ended by the server (a restart): the
    next reads connect again rather than fail (an API read answered 500)."""
    store = Store(postgres_url)
    with store.reading() as first, store.reading() as second:  # two kept for the next reads
        pids = [first.scalar("SELECT pg_backend_pid()"), second.scalar("SELECT pg_backend_pid()")]
    writer = store.writer()
    for pid in pids:
        assert writer.c.scalar("SELECT pg_terminate_backend(?, 10000)", (pid,)) is True
    assert store.user_count() == 0 and store.user_count() == 0
    writer.close()
    store.close()


# --- schema versions ------------------------------------------------------------------------------

# The schema as ccsim created it before schema versions were kept (it is version 1).
BEFORE_VERSIONS = """
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


def versions(store: Store) -> list[int]:
    with store.reading() as c:
        return [r["version"] for r in c.execute("SELECT version FROM schema_version ORDER BY 1")]


def test_a_new_store_gets_every_version_once(url: str) -> None:
    store = Store(url)
    assert store.migrated == [m.version for m in MIGRATIONS] and versions(store) == store.migrated
    store.close()
    again = Store(url)
    assert again.migrated == [] and versions(again) == [m.version for m in MIGRATIONS]
    again.close()


def test_a_sqlite_store_from_before_schema_versions_opens_and_migrates(tmp_path: Path) -> None:
    db = tmp_path / "control.db"
    with sqlite3.connect(db) as c:  # what ccsim made before this change, with a little in it
        c.executescript(BEFORE_VERSIONS)
        c.execute("INSERT INTO users VALUES ('admin', 'admin', 1.0)")
        c.execute("INSERT INTO tokens VALUES (?, 'admin', 1.0)", (token_hash("an-old-admin-token-0"),))
        c.execute("INSERT INTO runs VALUES (1, 'single', 'adaptive', 1, 1.0, NULL, 'running', '')")
        c.execute(
            "INSERT INTO alarms VALUES (7, 1, 'queue', 'J1', 'active-unacknowledged', 1, "
            "'high', 'traffic', 'trafficJam', 'jam', 'tls:J1', 1.0, 2.0, 1.0, 1, NULL, NULL)"
        )
        c.execute(
            "INSERT INTO alarm_events (alarm_id, action, from_state, to_state, user, at, t) "
            "VALUES (7, 'raise', NULL, 'active-unacknowledged', 'system', 1.0, 2.0)"
        )
        c.execute(
            "INSERT INTO audit (at, user, role, action, target, arguments, result, detail) "
            "VALUES (1.0, 'admin', 'admin', 'signal.override', 'tls:J1', '{}', 'accepted', '')"
        )
    c.close()
    store = Store(f"sqlite:///{db}")
    assert store.migrated == [v for v in range(2, LATEST + 1)] and versions(store) == [
        *range(1, LATEST + 1)
    ]
    assert store.token_users()[token_hash("an-old-admin-token-0")] == User(ADMIN, Role.ADMIN)
    [alarm] = store.open_alarms()
    assert (alarm.id, alarm.severity, store.last_alarm_seq(), store.next_alarm_id()) == (
        7,
        Severity.HIGH,
        1,
        8,
    )
    assert store.audit(user="admin").items[0]["target"] == "tls:J1"
    with store.reading() as c:
        indexes = {
            r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type = 'index'").fetchall()
        }
    assert {"alarms_run", "tokens_user"} <= indexes
    # and it goes on working: new ids follow the old ones
    writer = store.writer()
    with writer.transaction():
        assert writer.begin_run("single", "fixed", 2) == 2
        assert writer.add_alarm_event(alarm.raised_event("system")) == 2
    writer.close()


def test_a_store_at_an_older_version_is_brought_to_the_latest(url: str) -> None:
    engine = engine_for(url)
    db = engine.connect(writer=True)
    assert migrate(db, engine, url, MIGRATIONS[:1]) == [1]  # a store made by version 1's code
    with db.transaction():
        db.execute("INSERT INTO users (name, role, created_at) VALUES ('ana', 'viewer', 1.0)")
    db.close()
    store = Store(url)
    assert store.migrated == [v for v in range(2, LATEST + 1)] and versions(store) == [
        *range(1, LATEST + 1)
    ]
    assert [u["name"] for u in store.users()] == ["ana"]
    store.close()
    engine.close()


def test_a_store_newer_than_the_code_is_refused(url: str) -> None:
    Store(url).close()
    engine = engine_for(url)
    db = engine.connect(writer=True)
    with db.transaction():
        db.execute("INSERT INTO schema_version VALUES (?, 1.0, 'from the future')", (LATEST + 1,))
    db.close()
    with pytest.raises(CcsimError, match=f"schema version {LATEST + 1}, newer than this ccsim knows "
                       f"\\(up to {LATEST}\\); upgrade ccsim"):  # fmt: skip
        Store(url)


def test_a_failing_migration_step_leaves_the_store_as_it_was(url: str) -> None:
    Store(url).close()
    broken = Migration(LATEST + 1, "a step that fails half-way", (
        "CREATE TABLE plans (id INTEGER PRIMARY KEY)",
        "ALTER TABLE no_such_table ADD COLUMN x INTEGER",
    ))  # fmt: skip
    engine = engine_for(url)
    db = engine.connect(writer=True)
    with pytest.raises(engine.errors):
        migrate(db, engine, url, [*MIGRATIONS, broken])
    assert db.scalar("SELECT MAX(version) FROM schema_version") == LATEST
    assert "plans" not in {r[0] for r in db.execute(engine.tables_query).fetchall()}
    db.close()
