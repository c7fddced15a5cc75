"""The back-off for failed logins and the bounded password-check pool, with a hand-moved clock."""

from __future__ import annotations

import asyncio
import threading

import pytest

from agent.errors import Unauthorized
from agent.ops.auth import Authenticator, TokenService, password_stamp
from agent.ops.passwords import CheckPool, LoginThrottle, TooManyAttempts

NOW = 1_700_000_000.0
ADDRESS, OTHER = ("address", "10.0.0.1"), ("address", "10.0.0.2")
USER = ("user", "admin")


# -- LoginThrottle -----------------------------------------------------------------------------


def fail(throttle: LoginThrottle, now: float, times: int, *keys) -> None:
    for _ in range(times):
        throttle.failed(keys or (ADDRESS,), now)


def test_the_first_failures_cost_nothing_more() -> None:
    throttle = LoginThrottle(free=5)
    fail(throttle, NOW, 4)
    assert throttle.wait(ADDRESS, NOW) == 0.0
    fail(throttle, NOW, 1)
    assert throttle.wait(ADDRESS, NOW) == 1.0


def test_the_block_doubles_up_to_the_cap() -> None:
    throttle = LoginThrottle(free=5, base=1.0, cap=30.0)
    fail(throttle, NOW, 4)
    now, blocks = NOW, []
    for _ in range(8):
        now += throttle.wait(ADDRESS, now)  # retry as soon as allowed, and fail again
        fail(throttle, now, 1)
        blocks.append(throttle.wait(ADDRESS, now))
    assert blocks == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]


def test_a_block_ends_on_time_and_refused_attempts_do_not_extend_it() -> None:
    throttle = LoginThrottle(free=1, base=8.0, cap=30.0)
    fail(throttle, NOW, 1)
    assert throttle.wait(ADDRESS, NOW + 7.5) == pytest.approx(0.5)
    assert throttle.wait(ADDRESS, NOW + 8.0) == 0.0  # nothing counted while refused


def test_success_clears_and_quiet_keys_are_forgotten() -> None:
    throttle = LoginThrottle(free=2, forget=600.0)
    fail(throttle, NOW, 3, ADDRESS, USER)
    throttle.succeeded([USER])
    assert throttle.wait(USER, NOW) == 0.0 and throttle.wait(ADDRESS, NOW) > 0
    assert throttle.failures(ADDRESS, NOW + 601) == 0
    fail(throttle, NOW + 601, 1)
    assert throttle.wait(ADDRESS, NOW + 601) == 0.0  # counting started over


def test_held_keys_are_bounded() -> None:
    throttle = LoginThrottle(size=3)
    for n in range(10):
        throttle.failed([("address", str(n))], NOW)
    assert [throttle.failures(("address", str(n)), NOW) for n in range(10)] == [0] * 7 + [1] * 3


def test_retry_after_is_whole_seconds_rounded_up() -> None:
    assert TooManyAttempts("x", 0.2).retry_after == 1
    assert TooManyAttempts("x", 29.01).retry_after == 30
    assert TooManyAttempts("x", 3.0).status == 429


# -- CheckPool ---------------------------------------------------------------------------------


def test_the_pool_refuses_when_its_queue_is_full() -> None:
    gate = threading.Event()

    async def scenario() -> list:
        pool = CheckPool(workers=1, queue=1)
        running = [asyncio.ensure_future(pool.run(gate.wait)) for _ in range(2)]
        await asyncio.sleep(0)
        with pytest.raises(TooManyAttempts):
            await pool.run(gate.wait)
        gate.set()
        done = await asyncio.gather(*running)
        pool.close()
        return done

    assert asyncio.run(scenario()) == [True, True]


def test_the_pool_runs_checks_off_the_event_loop() -> None:
    async def scenario() -> bool:
        pool = CheckPool(workers=1, queue=4)
        loop_thread = threading.get_ident()
        other = await pool.run(lambda: threading.get_ident() != loop_thread)
        pool.close()
        return other

    assert asyncio.run(scenario())


# -- Authenticator.check / login_async ---------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def setup():
    """An authenticator over one user whose password check compares plainly (no scrypt)."""
    users = {"admin": ({"username": "admin", "password": "stored-good", "role": "su"}, None)}
    clock = Clock()

    def verify(password: str, stored: str) -> bool:
        return stored == f"stored-{password}"

    auth = Authenticator(users.get, TokenService.__new__(TokenService), clock, verify=verify)
    return auth, clock


def basic(user: str, password: str) -> str:
    import base64

    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def run(coro):
    return asyncio.run(coro)


def login(auth: Authenticator, password: str, remote: str = "10.0.0.1"):
    async def go():
        try:
            return await auth.login_async("admin", password, remote)
        finally:
            auth.pool.close()

    return run(go())


@pytest.fixture(autouse=True)
def no_pause(monkeypatch) -> None:
    monkeypatch.setattr("agent.ops.auth._REFUSAL_PAUSE", 0.0)


def test_failed_logins_back_off_the_address_with_429(setup) -> None:
    auth, clock = setup
    for _ in range(auth.throttle.free):
        with pytest.raises(Unauthorized):
            login(auth, "bad")
    with pytest.raises(TooManyAttempts) as refused:
        login(auth, "good")  # even the right password waits: the address is blocked
    assert refused.value.retry_after == 1
    clock.now += 1.0
    assert login(auth, "good").username == "admin"  # allowed again, and it clears the keys
    with pytest.raises(Unauthorized):
        login(auth, "bad")


def test_a_user_blocked_elsewhere_still_admits_a_clean_address(setup) -> None:
    auth, clock = setup
    for n in range(20):  # a flood spread over many addresses, all for admin
        with pytest.raises((Unauthorized, TooManyAttempts)):
            login(auth, "bad", remote=f"10.1.0.{n}")
    assert auth.throttle.wait(("user", "admin"), clock.now) > 0
    assert login(auth, "good", remote="10.9.9.9").username == "admin"


def test_an_address_that_failed_waits_out_the_user_block_at_most_the_cap(setup) -> None:
    auth, clock = setup
    for n in range(40):
        clock.now += auth.throttle.wait(("user", "admin"), clock.now)
        with pytest.raises(Unauthorized):
            login(auth, "bad", remote=f"10.1.0.{n % 5}")
    with pytest.raises(TooManyAttempts) as refused:
        login(auth, "good", remote="10.1.0.1")  # it failed before: the user block applies
    assert refused.value.retry_after <= 30
    clock.now += 30.0
    assert login(auth, "good", remote="10.1.0.1").username == "admin"


def test_cached_basic_headers_are_never_backed_off(setup) -> None:
    auth, clock = setup
    good = basic("admin", "good")

    async def scenario():
        await auth.check(good, "10.0.0.1")
        for _ in range(10):
            with pytest.raises((Unauthorized, TooManyAttempts)):
                await auth.check(basic("admin", "bad"), "10.0.0.1")
        user, kind = await auth.check(good, "10.0.0.1")
        auth.pool.close()
        return user.username, kind

    assert run(scenario()) == ("admin", "basic")


def test_password_stamps_differ_per_stored_hash() -> None:
    assert password_stamp("scrypt$a") == password_stamp("scrypt$a")
    assert password_stamp("scrypt$a") != password_stamp("scrypt$b")
    assert "scrypt" not in password_stamp("scrypt$a")
