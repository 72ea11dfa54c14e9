"""Accounts on a real ``ccsim serve`` process: admins list, create, change roles, revoke and
rotate tokens over REST; a revoked token stops working at once, on REST and on the feed; the
environment's admin token replaces the previous one on restart."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.e2e.serving import Server, audit, make_user, start_server, wait_for


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(tmp_path_factory.mktemp("accounts"), "--speed", "20")
    try:
        running.wait_running()
        yield running
    finally:
        assert running.stop() == 0, running.lines


@contextlib.contextmanager
def feed(server: Server, token: str, *, first_message: bool = False) -> Iterator[ClientConnection]:
    """A feed session past its hello (by header, or as a browser does, by its first message)."""
    headers = None if first_message else {"Authorization": f"Bearer {token}"}
    with connect(server.ws_url, additional_headers=headers, compression=None) as ws:
        if first_message:
            ws.send(json.dumps({"type": "auth", "token": token}))
        hello = json.loads(ws.recv(timeout=10))
        assert hello["type"] == "hello", hello
        yield ws


def closed(ws: ClientConnection, timeout_s: float = 10.0) -> tuple[int, str]:
    """Read until the server closes the session; its close code and reason."""

    def ended() -> tuple[int, str] | None:
        try:
            ws.recv(timeout=timeout_s)
        except ConnectionClosed as exc:
            assert exc.rcvd is not None, "closed without a close frame"
            return exc.rcvd.code, exc.rcvd.reason
        return None

    return wait_for(ended, timeout_s, "the server to close the session", every_s=0)


def still_streaming(ws: ClientConnection) -> bool:
    return all(json.loads(ws.recv(timeout=10))["type"] in {"alarms", "snapshot", "delta", "alarm"}
               for _ in range(3))  # fmt: skip


def users(server: Server) -> dict[str, dict[str, Any]]:
    with server.client() as c:
        response = c.get("/api/users")
    assert response.status_code == 200, response.text
    return {u["name"]: u for u in response.json()["items"]}


def test_an_admin_creates_lists_and_changes_roles(server: Server) -> None:
    token = make_user(server, "ines", "viewer")
    listed = users(server)
    assert listed["admin"]["role"] == "admin" and listed["admin"]["tokens"] == 1
    assert listed["ines"]["role"] == "viewer" and listed["ines"]["tokens"] == 1
    assert listed["ines"]["created"] and listed["ines"]["token_issued"]
    with server.client() as c:
        changed = c.patch("/api/users/ines", json={"role": "operator"})
        assert changed.status_code == 200, changed.text
        assert changed.json()["detail"] == "viewer -> operator"
        taken = c.post("/api/users", json={"name": "ines", "role": "viewer"})
        assert taken.status_code == 409 and taken.json()["detail"] == "user 'ines' exists already"
    with server.client(token) as c:  # the same token, the new role, at once
        assert c.get("/api/me").json() == {"name": "ines", "role": "operator"}
        assert c.post("/api/signals/C/override", json={"action": "automatic"}).status_code == 200
    entries = audit(server, action="user.create") + audit(server, action="user.role")
    assert all(token not in json.dumps(e) for e in entries)  # a token is never in the audit log
    assert {(e["target"], e["result"]) for e in entries} >= {("user:ines", "accepted"),
                                                            ("user:ines", "refused")}  # fmt: skip


def test_only_admins_manage_accounts(server: Server) -> None:
    engineer = make_user(server, "eli", "engineer")
    with server.client(engineer) as c:
        assert c.get("/api/users").status_code == 403
        for method, path, body in (
            ("post", "/api/users", {"name": "x", "role": "viewer"}),
            ("patch", "/api/users/admin", {"role": "viewer"}),
            ("delete", "/api/users/admin", None),
            ("post", "/api/users/admin/rotate", None),
        ):
            refused = c.request(method, path, json=body)
            assert refused.status_code == 403, (method, path, refused.text)
            assert "needs admin" in refused.json()["detail"]
        # ...but an engineer configures: the controller and the retention.
        assert c.put("/api/settings/retention", json={"kpis_days": 400}).status_code == 200
    refusals = {e["action"] for e in audit(server, user="eli", result="refused")}
    assert refusals == {"user.create", "user.role", "user.delete", "user.rotate"}
    assert users(server)["admin"]["tokens"] == 1  # nothing happened to the admin


def test_revoking_a_user_ends_its_rest_calls_and_feed_sessions_at_once(server: Server) -> None:
    token = make_user(server, "rui", "operator")
    other = make_user(server, "sol", "viewer")
    with (
        feed(server, token) as by_header,
        feed(server, token, first_message=True) as by_message,
        feed(server, other) as bystander,
    ):
        with server.client() as c:
            revoked = c.delete("/api/users/rui")
        assert revoked.status_code == 200, revoked.text
        assert revoked.json()["detail"] == "removed; 1 token(s) revoked"
        assert closed(by_header) == (1008, "token revoked")
        assert closed(by_message) == (1008, "token revoked")
        assert still_streaming(bystander)
    with server.client(token) as c:
        assert c.get("/api/state").status_code == 401
    assert "rui" not in users(server)
    with pytest.raises(ConnectionClosed) as refused, feed(server, token, first_message=True):
        pass  # the feed no longer takes it
    assert refused.value.rcvd is not None and refused.value.rcvd.code == 1008
    [entry] = audit(server, action="user.delete", result="accepted")
    assert entry["user"] == "admin" and entry["target"] == "user:rui"


def test_rotating_gives_a_new_token_and_revokes_the_old(server: Server) -> None:
    old = make_user(server, "teo", "viewer")
    with feed(server, old) as session, server.client() as c:
        rotated = c.post("/api/users/teo/rotate")
        assert rotated.status_code == 200, rotated.text
        new = rotated.json()["token"]
        assert new != old and rotated.json()["role"] == "viewer"
        code, reason = closed(session)
    assert code == 1008 and reason.startswith("token rotated")
    with server.client(old) as c:
        assert c.get("/api/me").status_code == 401
    with server.client(new) as c:
        assert c.get("/api/me").json() == {"name": "teo", "role": "viewer"}
    with feed(server, new) as session:
        assert still_streaming(session)
    assert users(server)["teo"]["tokens"] == 1
    [entry] = audit(server, action="user.rotate", result="accepted")
    assert new not in json.dumps(entry) and old not in json.dumps(entry)


def test_a_role_change_reconnects_the_feed_with_the_new_role(server: Server) -> None:
    token = make_user(server, "uma", "operator")
    with feed(server, token) as session, server.client() as c:
        assert c.patch("/api/users/uma", json={"role": "viewer"}).status_code == 200
        assert closed(session) == (4001, "role changed to viewer")
    with connect(server.ws_url, compression=None) as ws:  # as the browser does, reconnecting
        ws.send(json.dumps({"type": "auth", "token": token}))
        assert json.loads(ws.recv(timeout=10))["role"] == "viewer"
    with server.client(token) as c:
        refused = c.post("/api/signals/C/override", json={"action": "flash"})
    assert refused.status_code == 403 and "needs operator" in refused.json()["detail"]


def test_bad_requests_name_what_was_wrong(server: Server) -> None:
    with server.client() as c:
        role = c.post("/api/users", json={"name": "vic", "role": "root"})
        assert role.status_code == 422
        assert "body.role" in role.json()["detail"] and "'admin'" in role.json()["detail"]
        name = c.post("/api/users", json={"name": "no spaces", "role": "viewer"})
        assert name.status_code == 422 and "body.name" in name.json()["detail"]
        for method, path, body in (
            ("patch", "/api/users/nobody", {"role": "viewer"}),
            ("delete", "/api/users/nobody", None),
            ("post", "/api/users/nobody/rotate", None),
        ):
            missing = c.request(method, path, json=body)
            assert missing.status_code == 404 and missing.json()["detail"] == "no user 'nobody'"
            assert missing.json()["result"] == "refused"


def test_the_last_admin_can_be_neither_removed_nor_demoted(server: Server) -> None:
    with server.client() as c:
        demote = c.patch("/api/users/admin", json={"role": "engineer"})
        assert demote.status_code == 409
        assert demote.json()["detail"] == "cannot make engineer of 'admin': it is the last admin account"
        remove = c.delete("/api/users/admin")
        assert remove.status_code == 409 and "last admin account" in remove.json()["detail"]
        second = c.post("/api/users", json={"name": "wen", "role": "admin"}).json()["token"]
    with server.client(second) as c:  # with a second admin, the first one can go
        assert c.patch("/api/users/admin", json={"role": "engineer"}).status_code == 200
        assert c.patch("/api/users/admin", json={"role": "admin"}).status_code == 200
        assert c.delete("/api/users/wen").status_code == 200  # an admin may remove itself
        assert c.get("/api/me").status_code == 401
    assert users(server)["admin"]["role"] == "admin"


def test_a_changed_admin_token_retires_the_previous_one_on_restart(tmp_path: Path) -> None:
    first = start_server(
        tmp_path / "a", "--speed", "max", "--end", "60", admin_token="first-admin-token-0000"
    )
    try:
        viewer = make_user_as(first, "first-admin-token-0000", "yara", "viewer")
    finally:
        first.stop()
    again = start_server(
        tmp_path / "b", "--speed", "max", "--end", "60", db=first.db,
        admin_token="second-admin-token-000",
    )  # fmt: skip
    try:
        with again.client("first-admin-token-0000") as c:
            assert c.get("/api/me").status_code == 401
        with again.client("second-admin-token-000") as c:
            assert c.get("/api/me").json() == {"name": "admin", "role": "admin"}
            assert c.get("/api/users").json()["items"][0]["tokens"] == 1
        with again.client(viewer) as c:  # other accounts keep their tokens
            assert c.get("/api/me").json()["name"] == "yara"
    finally:
        again.stop()


def make_user_as(server: Server, admin: str, name: str, role: str) -> str:
    with server.client(admin) as c:
        response = c.post("/api/users", json={"name": name, "role": role})
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token
