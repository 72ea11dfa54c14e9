"""Users, roles, hashed tokens and the bad-login throttle."""

from __future__ import annotations

import pytest

from controlcenter.auth import Authenticator, AuthError, LoginThrottle, Role, User, new_token, token_hash
from sim.errors import CcsimError


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_roles_are_ordered() -> None:
    assert Role.ENGINEER > Role.OPERATOR > Role.VIEWER
    assert User("o", Role.OPERATOR).may(Role.VIEWER) and not User("o", Role.OPERATOR).may(Role.ENGINEER)
    assert Role.parse("operator") is Role.OPERATOR
    with pytest.raises(CcsimError, match="role 'admin': expected one of viewer, operator, engineer"):
        Role.parse("admin")


def test_tokens_are_random_and_only_their_hash_identifies_them() -> None:
    first, second = new_token(), new_token()
    assert first != second and len(first) > 40
    assert token_hash(first) == token_hash(first) != token_hash(second)
    assert first not in token_hash(first)


def test_authenticate_by_header_or_token() -> None:
    token = new_token()
    auth = Authenticator({token_hash(token): User("ana", Role.OPERATOR)}, LoginThrottle())
    assert auth.from_header(f"Bearer {token}", "10.0.0.1") == User("ana", Role.OPERATOR)
    assert auth.authenticate(token, "10.0.0.1").name == "ana"
    for header in (None, "", f"Basic {token}", "Bearer wrong"):
        with pytest.raises(AuthError) as error:
            auth.from_header(header, "10.0.0.2")
        assert error.value.status == 401


def test_repeated_bad_tokens_lock_out_one_address_for_a_while() -> None:
    clock = Clock()
    token = new_token()
    throttle = LoginThrottle(limit=3, window_s=60.0, lockout_s=30.0, clock=clock)
    auth = Authenticator({token_hash(token): User("ana", Role.VIEWER)}, throttle)
    for _ in range(3):
        with pytest.raises(AuthError):
            auth.authenticate("guess", "1.2.3.4")
    with pytest.raises(AuthError) as locked:
        auth.authenticate(token, "1.2.3.4")  # even the right token, while locked out
    assert locked.value.status == 429 and locked.value.retry_after_s == 30.0
    assert auth.authenticate(token, "5.6.7.8").name == "ana"  # others are not affected
    clock.now += 30.0
    assert auth.authenticate(token, "1.2.3.4").name == "ana"


def test_failures_spread_out_in_time_do_not_lock_out() -> None:
    clock = Clock()
    throttle = LoginThrottle(limit=3, window_s=60.0, clock=clock)
    for _ in range(5):
        throttle.failed("1.2.3.4")
        clock.now += 31.0
    assert throttle.retry_after("1.2.3.4") == 0.0


def test_a_missing_token_is_not_a_bad_guess() -> None:
    auth = Authenticator({}, LoginThrottle(limit=1))
    for _ in range(3):
        with pytest.raises(AuthError) as error:
            auth.authenticate(None, "1.2.3.4")
        assert error.value.status == 401
