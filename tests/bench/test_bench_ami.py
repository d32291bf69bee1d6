"""Smoke test of the AMI ingestion benchmark (bench/bench_ami.py) on a tiny
stream: every path must see every event and the tracker must account for every
call. Timings are never asserted (shared, noisy machine)."""

from __future__ import annotations

import json

import pytest

from bench.bench_ami import (
    PATHS,
    build_stream,
    chunked,
    decode_events,
    main,
    run_framing,
    run_panoramisk,
    run_tracker,
    run_tracker_only,
    split_characters,
    verify,
)

CALLS = 4


@pytest.fixture(scope="module")
def stream():
    return build_stream(CALLS, seed=7)


def events_on_the_wire(data: bytes) -> int:
    return sum(1 for block in data.split(b"\r\n\r\n") if block.startswith(b"Event: "))


def test_stream_holds_every_recorded_event_of_every_call(stream) -> None:
    assert stream.calls == CALLS
    assert stream.events_per_call > 50  # the 03 + 04 + 05 bursts, VarSet/Newexten included
    assert stream.events == CALLS * stream.events_per_call
    assert events_on_the_wire(stream.data) == stream.events - 1  # the banner hides the first
    assert stream.data.startswith(b"Asterisk Call Manager/11.0.0\r\nEvent: ")
    assert stream.non_ascii_events > 0


def test_same_seed_builds_the_same_bytes(stream) -> None:
    assert build_stream(CALLS, seed=7).data == stream.data
    assert build_stream(CALLS, seed=8).data != stream.data


@pytest.mark.parametrize("chunk", [64 * 1024, 1000, 97])
def test_every_path_sees_every_event(stream, chunk: int) -> None:
    chunks = chunked(stream.data, chunk)
    assert b"".join(chunks) == stream.data

    _, framed = run_framing(chunks)
    _, tracked = run_tracker(chunks)
    _, peer = run_panoramisk(chunks)
    _, tracker_only = run_tracker_only(decode_events(chunks))

    assert framed.events == tracked.events == tracker_only.events == stream.events
    assert peer.events == stream.events
    assert framed.invalid_utf8 == tracked.invalid_utf8 == 0


def test_tracker_starts_and_ends_every_call(stream) -> None:
    _, tracked = run_tracker(chunked(stream.data, 1000))

    assert tracked.calls_started == CALLS
    assert tracked.calls_ended == CALLS
    assert tracked.live_calls == 0
    assert tracked.tracker_orphans == 0
    assert tracked.tracker_internal_errors == 0
    assert tracked.domain_events >= 4 * CALLS  # started, answered, bridged, ended at least


def test_panoramisk_loses_exactly_the_characters_split_across_reads(stream) -> None:
    chunks = chunked(stream.data, 97)
    split = split_characters(chunks)
    assert split > 0, "the tiny stream should cut some caller names in two"

    agreement = verify(chunks)

    assert agreement.callwright_events == agreement.panoramisk_events == stream.events
    assert agreement.callwright_replacement_chars == 0
    assert agreement.panoramisk_lost_characters == split
    assert agreement.panoramisk_damaged_values >= 1


def test_command_prints_a_table_with_every_path(capsys) -> None:
    assert main(["--calls", "2", "--runs", "1"]) == 0
    out = capsys.readouterr().out

    assert "| path | events |" in out
    for path in PATHS:
        assert f"| {path} |" in out
    assert "Tracker: 2 calls started, 2 ended, 0 live at the end" in out


def test_command_json_reports_the_same_event_count_for_every_path(capsys) -> None:
    assert main(["--calls", "2", "--runs", "1", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)

    events = {result["path"]: result["events"] for result in report["results"]}
    assert set(events) == set(PATHS)
    assert len(set(events.values())) == 1
    assert events[PATHS[0]] == report["stream"]["events"]
    assert report["machine"]["cpu_count"] >= 1
