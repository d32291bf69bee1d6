"""Business hours and holidays through the interpreter, with a fake clock at the
edges of daylight-saving changes (Europe/Paris, America/New_York)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from ivr import CallInfo, Done, Flow, parse_flow, start, validate_flow

HOURS = """
[flow]
name = "hours"
start = "h"
language = "en"
timezone = "{tz}"

[nodes.h]
kind = "hours"
week = {week}
holidays = ["2026-12-25", 2027-01-01]
open = "open"
closed = "closed"
holiday = "holiday"

[nodes.open]
kind = "hangup"

[nodes.closed]
kind = "hangup"

[nodes.holiday]
kind = "hangup"
"""

OFFICE = '["mon-fri 08:00-18:00", "sat 09:00-12:00"]'


def hours_flow(tz: str = "Europe/Paris", week: str = OFFICE) -> Flow:
    flow = parse_flow(tomllib.loads(HOURS.replace("{tz}", tz).replace("{week}", week)))
    validate_flow(flow, ())
    return flow


@dataclass
class FakeClock:
    now: datetime

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def branch(flow: Flow, now: datetime) -> str:
    step = start(flow, CallInfo("+33100000000"), now)
    assert isinstance(step.wait, Done) and step.wait.outcome == "completed"
    return step.wait.node


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        # Paris, winter (UTC+1): Friday 2026-03-27 opens 07:00 UTC, closes 17:00 UTC
        (utc(2026, 3, 27, 6, 59, 59), "closed"),
        (utc(2026, 3, 27, 7, 0, 0), "open"),
        (utc(2026, 3, 27, 16, 59, 59), "open"),
        (utc(2026, 3, 27, 17, 0, 0), "closed"),
        # Saturday morning 09:00-12:00 local
        (utc(2026, 3, 28, 8, 0, 0), "open"),
        (utc(2026, 3, 28, 11, 0, 0), "closed"),
        # Sunday 2026-03-29: the clocks go forward; closed all day
        (utc(2026, 3, 29, 1, 0, 0), "closed"),
        # Monday after the change (UTC+2): opens 06:00 UTC, closes 16:00 UTC
        (utc(2026, 3, 30, 5, 59, 59), "closed"),
        (utc(2026, 3, 30, 6, 0, 0), "open"),
        (utc(2026, 3, 30, 15, 59, 59), "open"),
        (utc(2026, 3, 30, 16, 0, 0), "closed"),
        # Friday before the autumn change 2026-10-25 (UTC+2)
        (utc(2026, 10, 23, 6, 0, 0), "open"),
        (utc(2026, 10, 23, 16, 0, 0), "closed"),
        # Monday after it (UTC+1): 06:00 UTC is 07:00 local, still closed
        (utc(2026, 10, 26, 6, 0, 0), "closed"),
        (utc(2026, 10, 26, 7, 0, 0), "open"),
        (utc(2026, 10, 26, 16, 59, 0), "open"),
        (utc(2026, 10, 26, 17, 0, 0), "closed"),
    ],
)
def test_paris_office_hours_follow_the_wall_clock_across_dst(
    moment: datetime, expected: str
) -> None:
    assert branch(hours_flow(), moment) == expected


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        # New York: Friday 2026-03-06 (EST, UTC-5) opens 13:00 UTC
        (utc(2026, 3, 6, 12, 59, 0), "closed"),
        (utc(2026, 3, 6, 13, 0, 0), "open"),
        # Monday 2026-03-09, after the change on the 8th (EDT, UTC-4): opens 12:00 UTC
        (utc(2026, 3, 9, 11, 59, 0), "closed"),
        (utc(2026, 3, 9, 12, 0, 0), "open"),
        (utc(2026, 3, 9, 21, 59, 0), "open"),
        (utc(2026, 3, 9, 22, 0, 0), "closed"),
        # Monday 2026-11-02, after the change on the 1st (EST again): opens 13:00 UTC
        (utc(2026, 11, 2, 12, 0, 0), "closed"),
        (utc(2026, 11, 2, 13, 0, 0), "open"),
        # Friday 2026-11-06: 17:30 EST is 22:30 UTC (open), 18:00 EST is 23:00 UTC
        (utc(2026, 11, 6, 22, 30, 0), "open"),
        (utc(2026, 11, 6, 23, 0, 0), "closed"),
    ],
)
def test_new_york_office_hours_across_dst(moment: datetime, expected: str) -> None:
    assert branch(hours_flow("America/New_York"), moment) == expected


def test_a_range_over_the_skipped_hour_opens_at_the_first_wall_time_that_exists() -> None:
    flow = hours_flow(week='["sun 02:30-03:30"]')
    clock = FakeClock(utc(2026, 3, 29, 0, 59, 59))  # 01:59:59 CET

    assert branch(flow, clock.now) == "closed"
    assert branch(flow, clock.advance(seconds=1)) == "open"  # 03:00 CEST
    assert branch(flow, clock.advance(minutes=29, seconds=59)) == "open"  # 03:29:59
    assert branch(flow, clock.advance(seconds=1)) == "closed"  # 03:30


def test_a_range_in_the_repeated_hour_is_open_both_times() -> None:
    flow = hours_flow(week='["sun 02:00-02:30"]')
    clock = FakeClock(utc(2026, 10, 24, 23, 45))  # 01:45 CEST

    seen = [branch(flow, clock.advance(minutes=15)) for _ in range(8)]

    # UTC 00:00 (02:00 CEST), 00:15, 00:30 (02:30 CEST), 00:45,
    #     01:00 (02:00 CET), 01:15, 01:30 (02:30 CET), 01:45
    assert seen == ["open", "open", "closed", "closed", "open", "open", "closed", "closed"]


def test_holidays_are_local_dates_and_close_the_whole_day() -> None:
    flow = hours_flow()

    # Thursday 24 December, 23:30 UTC is already the 25th in Paris
    assert branch(flow, utc(2026, 12, 24, 22, 59, 0)) == "closed"
    assert branch(flow, utc(2026, 12, 24, 23, 0, 0)) == "holiday"
    assert branch(flow, utc(2026, 12, 25, 10, 0, 0)) == "holiday"  # a Friday in office hours
    assert branch(flow, utc(2026, 12, 25, 23, 0, 0)) == "closed"  # Saturday 00:00 local
    assert branch(flow, utc(2026, 12, 26, 8, 0, 0)) == "open"  # Saturday 09:00 local
    assert branch(flow, utc(2027, 1, 1, 9, 0, 0)) == "holiday"  # TOML date literal


def test_a_holiday_without_its_own_branch_is_closed() -> None:
    text = HOURS.replace("{tz}", "Europe/Paris").replace("{week}", OFFICE)
    text = text.replace('holiday = "holiday"\n', "").replace(
        '[nodes.holiday]\nkind = "hangup"\n', ""
    )
    flow = parse_flow(tomllib.loads(text))
    validate_flow(flow, ())
    assert branch(flow, utc(2026, 12, 25, 10, 0, 0)) == "closed"


def test_a_node_may_use_another_time_zone_and_a_naive_clock_is_utc() -> None:
    text = HOURS.replace("{tz}", "Europe/Paris").replace("{week}", OFFICE)
    text = text.replace('week = ["mon', 'timezone = "America/New_York"\nweek = ["mon')
    flow = parse_flow(tomllib.loads(text))

    assert branch(flow, utc(2026, 3, 9, 12, 0, 0)) == "open"  # 08:00 EDT
    assert branch(flow, datetime(2026, 3, 9, 11, 59)) == "closed"  # naive: 07:59 EDT
    assert branch(flow, datetime(2026, 3, 9, 12, 0)) == "open"
