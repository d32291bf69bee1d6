"""The pure parts of playback: media tokens (signature, expiry with a controlled clock,
binding) and byte-range parsing against an object's size."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from agent_desk.auth import Sessions
from recordings.playback import (
    ByteRange,
    MediaTokenRejected,
    MediaTokens,
    RangeNotSatisfiable,
    parse_range,
)

KEY = "playback-signing-key-0123456789abcdef"
REC = "0123456789abcdef0123456789abcdef"


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# -- tokens ---------------------------------------------------------------------------


def test_a_token_carries_the_recording_the_principal_and_the_purpose() -> None:
    clock = Clock()
    tokens = MediaTokens(KEY, lifetime=300, clock=clock)
    token, grant = tokens.issue(REC, "7", "supervisor", "download")
    read = tokens.read(token)
    assert read == grant
    assert (read.recording_id, read.principal_id, read.role, read.purpose) == (
        REC,
        "7",
        "supervisor",
        "download",
    )
    assert read.expires_at == clock.now + 300


def test_each_token_has_its_own_nonce() -> None:
    tokens = MediaTokens(KEY, lifetime=300)
    (_, a), (_, b) = (tokens.issue(REC, "7", "admin", "play") for _ in range(2))
    assert a.nonce != b.nonce


def test_an_expired_token_names_who_it_was_for() -> None:
    clock = Clock()
    tokens = MediaTokens(KEY, lifetime=300, clock=clock)
    token, _ = tokens.issue(REC, "7", "supervisor", "play")
    clock.now += 300
    assert tokens.read(token).recording_id == REC  # still valid at the edge
    clock.now += 1
    with pytest.raises(MediaTokenRejected) as caught:
        tokens.read(token)
    assert (caught.value.reason, caught.value.principal_id, caught.value.recording_id) == (
        "expired",
        "7",
        REC,
    )


def test_a_tampered_token_or_another_key_or_a_session_token_is_invalid() -> None:
    tokens = MediaTokens(KEY, lifetime=300)
    token, _ = tokens.issue(REC, "7", "supervisor", "play")
    payload, stamp, sig = token.rsplit(".", 2)
    other = REC.replace("0", "1")
    forged_payload = MediaTokens(KEY, lifetime=300).issue(other, "7", "supervisor", "play")[0]
    candidates = [
        f"{forged_payload.rsplit('.', 2)[0]}.{stamp}.{sig}",  # another recording, old signature
        f"{payload}.{stamp}.{sig[:-2]}{'AA' if sig[-2:] != 'AA' else 'BB'}",
        MediaTokens("another-signing-key-0123456789abcdef", lifetime=300).issue(
            REC, "7", "supervisor", "play"
        )[0],
        "garbage",
        "",
    ]
    agent = SimpleNamespace(id=7, role="supervisor", token_version=1)
    candidates.append(Sessions(KEY, max_age=300).issue(agent)[0])  # type: ignore[arg-type]
    for candidate in candidates:
        with pytest.raises(MediaTokenRejected) as caught:
            tokens.read(candidate)
        assert caught.value.reason == "invalid", candidate
        assert caught.value.principal_id is None


def test_bad_arguments_are_refused_when_issuing() -> None:
    tokens = MediaTokens(KEY, lifetime=300)
    with pytest.raises(ValueError, match="recording_id"):
        tokens.issue("../../etc/passwd", "7", "admin", "play")
    with pytest.raises(ValueError, match="purpose"):
        tokens.issue(REC, "7", "admin", "stream")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="signing key"):
        MediaTokens("", lifetime=300)


# -- ranges ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-99", ByteRange(0, 99)),
        ("bytes=100-", ByteRange(100, 999)),
        ("bytes=-100", ByteRange(900, 999)),
        ("bytes=-5000", ByteRange(0, 999)),  # a suffix longer than the object: all of it
        ("bytes=990-5000", ByteRange(990, 999)),  # the end is clamped
        ("bytes=999-999", ByteRange(999, 999)),
        (" bytes = 5-9 ", ByteRange(5, 9)),
        ("BYTES=5-9", ByteRange(5, 9)),
        ("bytes=0-1,5-6", None),  # several ranges: the whole object
        ("bytes=0-1, 2000-3000", None),
        ("items=0-5", None),  # another unit: ignored
    ],
)
def test_ranges_resolve_against_the_size(header: str | None, expected: ByteRange | None) -> None:
    assert parse_range(header, 1000) == expected


@pytest.mark.parametrize(
    "header",
    [
        "bytes=1000-",  # starts at the end
        "bytes=5000-6000",
        "bytes=-0",
        "bytes=9-5",  # last before first
        "bytes=abc",
        "bytes=-",
        "bytes=",
        "bytes=1-2-3",
        "bytes=0-1,x",  # one bad part spoils the header
        "bytes=2000-,3000-",  # several, none within
        "0-99",  # no unit
        "=0-99",
        "bytes=" + "1" * 2000 + "-",
    ],
)
def test_malformed_or_unsatisfiable_ranges_are_refused(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, 1000)


def test_an_empty_object_satisfies_no_range() -> None:
    assert parse_range(None, 0) is None
    for header in ("bytes=0-", "bytes=-10", "bytes=0-0"):
        with pytest.raises(RangeNotSatisfiable):
            parse_range(header, 0)


def test_content_range_names_the_span_and_the_size() -> None:
    assert ByteRange(100, 199).content_range(1000) == "bytes 100-199/1000"
    assert ByteRange(100, 199).length == 100
