"""Token bucket (client events) and coalescer (queue statistics)."""

from __future__ import annotations

import itertools

from agent_desk.throttle import SEND, Coalescer, TokenBucket


def test_a_bucket_allows_a_burst_then_refuses() -> None:
    bucket = TokenBucket(rate=20, burst=40, now=0.0)
    assert all(bucket.take(0.0) for _ in range(40))
    assert not bucket.take(0.0)


def test_a_bucket_refills_at_its_rate_up_to_the_burst() -> None:
    bucket = TokenBucket(rate=20, burst=40, now=0.0)
    for _ in range(40):
        bucket.take(0.0)
    assert bucket.take(0.05)  # one token after 50 ms
    assert not bucket.take(0.05)
    taken = sum(bucket.take(100.0) for _ in range(100))
    assert taken == 40


def test_a_clock_going_backwards_grants_nothing() -> None:
    bucket = TokenBucket(rate=1, burst=1, now=10.0)
    assert bucket.take(10.0)
    assert not bucket.take(5.0)
    assert not bucket.take(10.5)
    assert bucket.take(11.0)


def test_the_first_change_is_sent_at_once_and_later_ones_coalesce() -> None:
    c = Coalescer(interval=0.25)
    assert c.request("support", 0.0) == SEND
    assert c.request("support", 0.1) == 0.25  # one send scheduled at the end of the interval
    assert c.request("support", 0.2) is None  # already scheduled: carried by it
    assert c.request("sales", 0.2) == SEND  # per queue
    c.sent("support", 0.25)
    assert c.request("support", 0.3) == 0.5
    c.sent("support", 0.5)
    assert c.request("support", 0.9) == SEND


def test_at_most_one_send_per_interval() -> None:
    c = Coalescer(interval=1.0)
    sends = []
    now = 0.0
    scheduled: float | None = None
    while now < 10.0:
        if scheduled is not None and now >= scheduled:
            c.sent("q", now)
            sends.append(now)
            scheduled = None
        decision = c.request("q", now)
        if decision == SEND:
            sends.append(now)
        elif isinstance(decision, float):
            scheduled = decision
        now = round(now + 0.01, 2)
    assert all(b - a >= 1.0 - 1e-9 for a, b in itertools.pairwise(sends))
    assert len(sends) >= 9
