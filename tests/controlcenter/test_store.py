"""The SQLite store: WAL mode, what it keeps, retention, and the first admin."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from controlcenter.alarms import Alarm, AlarmAction, AlarmState, Severity
from controlcenter.auth import ADMIN, Role, User, token_hash
from controlcenter.server import bootstrap_admin
from controlcenter.store import Store, sqlite_path
from sim.errors import CcsimError


def test_urls() -> None:
    assert sqlite_path("sqlite:///out/x.db") == Path("out/x.db")
    assert sqlite_path("sqlite:////tmp/x.db") == Path("/tmp/x.db")
    with pytest.raises(CcsimError, match="unsupported store; expected sqlite:///"):
        sqlite_path("postgresql://db/ccsim")
    with pytest.raises(CcsimError, match=r"expected sqlite:///relative\.db"):
        sqlite_path("sqlite://x.db")


def test_the_store_runs_in_wal_mode_and_creates_its_folder(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path}/deep/control.db")
    with store.reading() as c:
        assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert (tmp_path / "deep" / "control.db").is_file()


def test_unwritable_store_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(CcsimError, match="cannot open the store"):
        Store(f"sqlite:///{tmp_path}/file/control.db")


def alarm(alarm_id: int, state: AlarmState = AlarmState.ACTIVE_UNACKNOWLEDGED) -> Alarm:
    return Alarm(alarm_id, "queue", "J1", 1, Severity.HIGH, "traffic", "trafficJam", "jam", "tls:J1",
                 state=state, raised_at=100.0, updated_at=100.0)  # fmt: skip


def test_alarms_and_their_history_survive_reopening(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/control.db"
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


def test_a_failed_transaction_leaves_nothing(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path}/control.db")
    writer = store.writer()
    with pytest.raises(RuntimeError), writer.transaction():
        writer.save_alarm(alarm(1))
        raise RuntimeError("disk on fire")
    assert store.open_alarms() == []


def test_audit_entries_are_decided_later(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path}/control.db")
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


def test_retention_deletes_old_records_but_never_open_alarms(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path}/control.db")
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


def test_first_start_creates_the_admin_once(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path}/control.db")
    token = bootstrap_admin(store, None)
    assert token is not None
    assert store.token_users()[token_hash(token)].role is Role.ADMIN
    assert bootstrap_admin(store, None) is None  # shown once, never again
    with store.reading() as c:
        stored = [r[0] for r in c.execute("SELECT hash FROM tokens")]
    assert stored == [token_hash(token)]  # the token itself is nowhere in the store


def test_admin_token_from_the_environment(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path}/control.db")
    assert bootstrap_admin(store, "a-long-enough-admin-token") is None
    assert store.token_users()[token_hash("a-long-enough-admin-token")] == User(ADMIN, Role.ADMIN)
    with pytest.raises(CcsimError, match="CCSIM_ADMIN_TOKEN: the token must be at least 16 characters"):
        bootstrap_admin(store, "short")


def test_a_changed_environment_token_replaces_the_previous_one(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path}/control.db")
    bootstrap_admin(store, "the-first-admin-token")
    bootstrap_admin(store, "the-first-admin-token")  # the same again: nothing changes
    assert set(store.token_users()) == {token_hash("the-first-admin-token")}
    bootstrap_admin(store, "the-second-admin-token")
    assert set(store.token_users()) == {token_hash("the-second-admin-token")}
    bootstrap_admin(store, None)  # unset: the last one stays the admin's token
    assert set(store.token_users()) == {token_hash("the-second-admin-token")}
    [admin] = store.users()
    assert admin["name"] == ADMIN and admin["role"] == "admin" and admin["tokens"] == 1


def test_the_environment_token_cannot_be_another_users_token(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path}/control.db")
    bootstrap_admin(store, "the-first-admin-token")
    writer = store.writer()
    with writer.transaction():
        writer.add_user("ana", "viewer")
        writer.add_token(token_hash("ana-has-this-token-0"), "ana")
    with pytest.raises(CcsimError, match="CCSIM_ADMIN_TOKEN: that token is the token of user 'ana'"):
        bootstrap_admin(store, "ana-has-this-token-0")
    assert store.token_users()[token_hash("the-first-admin-token")].name == ADMIN


def test_a_store_from_before_the_admin_role_gets_its_admin_promoted(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path}/control.db")
    writer = store.writer()
    with writer.transaction():
        writer.add_user(ADMIN, "engineer")
        writer.add_token(token_hash("an-old-admin-token-0"), ADMIN)
        writer.add_user("eve", "engineer")
    assert bootstrap_admin(store, None) is None
    roles = {u["name"]: u["role"] for u in store.users()}
    assert roles == {ADMIN: "admin", "eve": "engineer"}
    assert store.token_users()[token_hash("an-old-admin-token-0")].role is Role.ADMIN


def test_revoking_and_removing_accounts(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path}/control.db")
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


def test_a_second_user_with_the_same_name_is_refused(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path}/control.db")
    writer = store.writer()
    with writer.transaction():
        writer.add_user("ana", "viewer")
    with pytest.raises(CcsimError, match="user 'ana' exists already"), writer.transaction():
        writer.add_user("ana", "operator")
    with sqlite3.connect(tmp_path / "control.db") as c:
        assert c.execute("SELECT role FROM users").fetchall() == [("viewer",)]
