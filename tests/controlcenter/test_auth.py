"""Users, roles, hashed tokens and the bad-token throttle."""

from __future__ import annotations

import pytest

from controlcenter.auth import (
    Authenticator,
    AuthError,
    LoginThrottle,
    Role,
    User,
    fingerprint,
    new_token,
    token_hash,
)
from sim.errors import CcsimError


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def status_of(auth: Authenticator, token: str | None, address: str) -> int:
    try:
        auth.authenticate(token, address)
    except AuthError as error:
        return error.status
    return 200


def test_roles_are_ordered() -> None:
    assert Role.ADMIN > Role.ENGINEER > Role.OPERATOR > Role.VIEWER
    assert User("o", Role.OPERATOR).may(Role.VIEWER) and not User("o", Role.OPERATOR).may(Role.ENGINEER)
    assert User("a", Role.ADMIN).may(Role.ENGINEER) and not User("e", Role.ENGINEER).may(Role.ADMIN)
    assert Role.parse("operator") is Role.OPERATOR and Role.parse("admin") is Role.ADMIN
    with pytest.raises(
        CcsimError, match="role 'root': expected one of viewer, operator, engineer, admin"
    ):
        Role.parse("root")


def test_tokens_are_random_and_only_their_hash_identifies_them() -> None:
    first, second = new_token(), new_token()
    assert first != second and len(first) > 40
    assert token_hash(first) == token_hash(first) != token_hash(second)
    assert first not in token_hash(first)
    # Generated tokens share their first characters; their fingerprints do not.
    assert first[:6] == second[:6] == "ccsim_" and fingerprint(first) != fingerprint(second)


def test_authenticate_by_header_or_token() -> None:
    token = new_token()
    auth = Authenticator({token_hash(token): User("ana", Role.OPERATOR)}, LoginThrottle())
    assert auth.from_header(f"Bearer {token}", "10.0.0.1") == User("ana", Role.OPERATOR)
    assert auth.authenticate(token, "10.0.0.1").token == token_hash(token)
    for header in (None, "", f"Basic {token}", "Bearer wrong"):
        with pytest.raises(AuthError) as error:
            auth.from_header(header, "10.0.0.2")
        assert error.value.status == 401


def test_forgotten_tokens_and_changed_roles_take_effect_at_once() -> None:
    old, new = new_token(), new_token()
    auth = Authenticator({token_hash(old): User("ana", Role.OPERATOR)}, LoginThrottle())
    auth.set_role("ana", Role.VIEWER)
    assert auth.authenticate(old, "10.0.0.1").role is Role.VIEWER
    auth.remember(token_hash(new), User("ana", Role.VIEWER))
    auth.forget([token_hash(old)])
    assert status_of(auth, old, "10.0.0.1") == 401 and not auth.knows(token_hash(old))
    assert auth.authenticate(new, "10.0.0.1").name == "ana"
    assert auth.tokens_of("ana") == {token_hash(new)}


def test_one_bad_token_repeated_locks_out_that_token_not_the_address() -> None:
    clock = Clock()
    good = new_token()
    throttle = LoginThrottle(limit=3, window_s=60.0, lockout_s=30.0, clock=clock)
    auth = Authenticator({token_hash(good): User("ana", Role.VIEWER)}, throttle)
    assert [status_of(auth, "a-revoked-token-000", "1.2.3.4") for _ in range(4)] == [401] * 3 + [429]
    with pytest.raises(AuthError) as locked:
        auth.authenticate("a-revoked-token-000", "1.2.3.4")
    assert locked.value.retry_after_s == 30.0
    # A good token from the same address (never seen there before) is not locked out.
    assert status_of(auth, good, "1.2.3.4") == 200
    clock.now += 30.0
    assert status_of(auth, "a-revoked-token-000", "1.2.3.4") == 401  # tried again, and refused


def test_a_flood_of_guesses_locks_the_address_but_not_its_signed_in_tokens() -> None:
    clock = Clock()
    good, colleague = new_token(), new_token()
    users = {token_hash(good): User("ana", Role.VIEWER), token_hash(colleague): User("bo", Role.VIEWER)}
    throttle = LoginThrottle(limit=5, address_limit=20, lockout_s=60.0, clock=clock)
    auth = Authenticator(users, throttle)
    assert status_of(auth, good, "10.9.9.9") == 200  # ana's browser is signed in from there
    flood = [status_of(auth, f"guess-{n:020d}", "10.9.9.9") for n in range(100)]
    assert flood[:20] == [401] * 20 and set(flood[20:]) == {429}  # guesses are no longer checked
    assert status_of(auth, good, "10.9.9.9") == 200  # ana keeps working through the flood
    assert status_of(auth, colleague, "10.9.9.9") == 429  # a token new to that address waits...
    assert status_of(auth, colleague, "10.0.0.1") == 200  # ...there only
    clock.now += 60.0
    assert status_of(auth, colleague, "10.9.9.9") == 200


def test_the_throttle_tables_stay_bounded() -> None:
    clock = Clock()
    good = new_token()
    throttle = LoginThrottle(limit=5, address_limit=20, max_entries=100, clock=clock)
    auth = Authenticator({token_hash(good): User("ana", Role.VIEWER)}, throttle)
    for n in range(5000):  # distinct addresses and tokens: every one a new key
        status_of(auth, f"guess-{n:020d}", f"10.{n // 256 % 256}.{n % 256}.1")
        status_of(auth, f"guess-{n:020d}", "10.255.255.255")
    assert len(throttle) <= 200
    assert status_of(auth, good, "10.255.255.255") == 429  # the flooding address is still locked
    assert status_of(auth, good, "10.0.0.2") == 200


def test_failures_spread_out_in_time_do_not_lock_out() -> None:
    clock = Clock()
    throttle = LoginThrottle(limit=3, window_s=60.0, clock=clock)
    for _ in range(5):
        throttle.failed("1.2.3.4", "abcd")
        clock.now += 31.0
    assert throttle.retry_after("1.2.3.4", "abcd") == 0.0


def test_a_missing_token_is_not_a_bad_guess() -> None:
    auth = Authenticator({}, LoginThrottle(limit=1, address_limit=1))
    for _ in range(3):
        with pytest.raises(AuthError) as error:
            auth.authenticate(None, "1.2.3.4")
        assert error.value.status == 401
    assert len(auth.throttle) == 0
