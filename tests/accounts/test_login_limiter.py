"""The login rate limit (pure: the clock is an argument)."""

from __future__ import annotations

from agent_desk.auth import Attempt, Locked, LoginLimiter


def fail(limiter: LoginLimiter, username: str, ip: str, now: float) -> Attempt | Locked:
    return limiter.begin(username, ip, now)


def test_the_sixth_attempt_within_five_minutes_is_locked_until_the_first_ages_out() -> None:
    limiter = LoginLimiter(max_failures=5, window=300)
    for t in (0, 10, 20, 30, 40):
        assert isinstance(fail(limiter, "alice", "192.0.2.1", t), Attempt)

    locked = limiter.begin("alice", "192.0.2.1", 100)

    assert locked == Locked(retry_after=200, by="username")
    assert limiter.begin("alice", "192.0.2.1", 299.5) == Locked(
        retry_after=0.5 + 0.5, by="username"
    )
    assert isinstance(limiter.begin("alice", "192.0.2.1", 300), Attempt)  # 0 left the window
    assert isinstance(limiter.begin("alice", "192.0.2.1", 300), Locked)  # 10..40, 300, 300


def test_a_locked_attempt_is_not_counted() -> None:
    limiter = LoginLimiter(max_failures=2, window=60)
    fail(limiter, "alice", "192.0.2.1", 0)
    fail(limiter, "alice", "192.0.2.1", 1)
    for t in range(2, 50):
        assert isinstance(limiter.begin("alice", "192.0.2.1", t), Locked)

    assert isinstance(limiter.begin("alice", "192.0.2.1", 61), Attempt)


def test_usernames_are_counted_case_and_space_insensitively() -> None:
    limiter = LoginLimiter(max_failures=2, window=60)
    fail(limiter, "Alice", "192.0.2.1", 0)
    fail(limiter, " alice ", "192.0.2.2", 0)

    assert isinstance(limiter.begin("ALICE", "192.0.2.3", 1), Locked)
    assert isinstance(limiter.begin("bob", "192.0.2.3", 1), Attempt)


def test_one_address_guessing_many_usernames_is_locked_by_address() -> None:
    limiter = LoginLimiter(max_failures=5, ip_max_failures=20, window=300)
    for n in range(20):
        assert isinstance(fail(limiter, f"user{n}", "198.51.100.7", n), Attempt)

    assert limiter.begin("alice", "198.51.100.7", 30) == Locked(retry_after=270, by="ip")
    assert isinstance(limiter.begin("alice", "192.0.2.1", 30), Attempt)


def test_success_forgives_the_attempt_and_clears_the_username_but_not_the_address() -> None:
    limiter = LoginLimiter(max_failures=3, ip_max_failures=4, window=60)
    fail(limiter, "alice", "192.0.2.1", 0)
    fail(limiter, "alice", "192.0.2.1", 1)
    attempt = limiter.begin("alice", "192.0.2.1", 2)
    assert isinstance(attempt, Attempt)

    limiter.succeeded(attempt)

    for t in (3, 4):
        assert isinstance(limiter.begin("alice", "192.0.2.1", t), Attempt)  # user: 2 of 3
    # The address kept its two earlier failures, plus these two: 4 of 4.
    assert limiter.begin("carol", "192.0.2.1", 5) == Locked(retry_after=55, by="ip")


def test_memory_is_bounded_by_dropping_the_stalest_keys() -> None:
    limiter = LoginLimiter(max_failures=1, window=3600, max_keys=10)
    for n in range(100):
        fail(limiter, f"user{n}", f"10.0.0.{n}", n)

    assert len(limiter._failures) <= 10
    assert isinstance(limiter.begin("user99", "10.0.1.1", 100), Locked)  # recent: kept
    assert isinstance(limiter.begin("user0", "10.0.1.1", 100), Attempt)  # stalest: dropped
