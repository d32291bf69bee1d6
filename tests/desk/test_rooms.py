"""RoomLog: per-room sequence numbers and the replay buffer."""

from __future__ import annotations

import gc

import pytest

from agent_desk.rooms import RoomLog, encode_data


def test_each_room_numbers_its_events_from_one() -> None:
    log = RoomLog(epoch="e1")
    assert [log.publish("agent:1", "offer", {}, 0.0).seq for _ in range(3)] == [1, 2, 3]
    assert log.publish("queue:support", "queue_stats", {}, 0.0).seq == 1
    assert log.seqs(["agent:1", "queue:support", "supervisors"]) == {
        "agent:1": 3,
        "queue:support": 1,
        "supervisors": 0,
    }


def test_a_client_gets_exactly_what_it_missed_in_order() -> None:
    log = RoomLog()
    sent = [log.publish("agent:1", "task", {"n": n}, float(n)) for n in range(10)]
    missed = log.since("agent:1", 6, 10.0)
    assert missed == sent[6:]
    assert log.since("agent:1", 10, 10.0) == []


def test_a_client_that_saw_nothing_of_an_empty_room_missed_nothing() -> None:
    assert RoomLog().since("supervisors", 0, 0.0) == []


def test_events_beyond_the_buffer_mean_a_snapshot() -> None:
    log = RoomLog(max_events=5)
    for n in range(12):
        log.publish("supervisors", "agent_state", n, 0.0)
    assert log.buffered("supervisors") == 5
    assert log.since("supervisors", 6, 0.0) is None
    assert [e.seq for e in log.since("supervisors", 7, 0.0) or []] == [8, 9, 10, 11, 12]


def test_events_older_than_max_age_mean_a_snapshot() -> None:
    log = RoomLog(max_age=300.0)
    log.publish("queue:q", "queue_stats", 1, 1000.0)
    log.publish("queue:q", "queue_stats", 2, 1200.0)
    assert [e.data for e in log.since("queue:q", 0, 1250.0) or []] == [1, 2]
    assert log.since("queue:q", 0, 1301.0) is None  # the first is gone
    assert [e.data for e in log.since("queue:q", 1, 1301.0) or []] == [2]


def test_a_sequence_number_from_the_future_means_a_snapshot() -> None:
    log = RoomLog()
    log.publish("agent:1", "offer", {}, 0.0)
    assert log.since("agent:1", 5, 0.0) is None
    assert log.since("agent:1", -1, 0.0) is None


def test_several_rooms_replay_in_publication_order() -> None:
    log = RoomLog()
    a1 = log.publish("agent:1", "offer", "a1", 0.0)
    s1 = log.publish("supervisors", "agent_state", "s1", 0.0)
    a2 = log.publish("agent:1", "reservation", "a2", 0.0)
    s2 = log.publish("supervisors", "call", "s2", 0.0)
    assert log.since_many({"agent:1": 0, "supervisors": 0}, 0.0) == [a1, s1, a2, s2]
    assert log.since_many({"agent:1": 1, "supervisors": 1}, 0.0) == [a2, s2]


def test_several_rooms_need_a_snapshot_if_any_is_too_old() -> None:
    log = RoomLog(max_events=1)
    log.publish("agent:1", "offer", 1, 0.0)
    log.publish("agent:1", "offer", 2, 0.0)
    log.publish("supervisors", "call", 1, 0.0)
    assert log.since_many({"agent:1": 0, "supervisors": 0}, 0.0) is None


def test_envelope_json_names_room_seq_type_time_and_data() -> None:
    envelope = RoomLog().publish("agent:7", "offer", {"x": 1}, 12.5)
    assert envelope.to_json() == {
        "room": "agent:7",
        "seq": 1,
        "type": "offer",
        "at": 12.5,
        "data": {"x": 1},
    }


def test_every_log_has_its_own_epoch() -> None:
    assert RoomLog().epoch != RoomLog().epoch


def test_the_buffer_keeps_text_that_the_cyclic_collector_does_not_walk() -> None:
    """Minutes of envelopes of every room are kept: as JSON text in tuples of
    plain values, which Python's cyclic collector stops tracking, not as
    dictionaries it would walk at every full collection."""
    log = RoomLog()
    data = {"call": {"id": "1.1", "channels": [{"name": "PJSIP/trunk-1"}]}, "n": [1, 2]}
    for n in range(50):
        log.publish(f"agent:{n % 5}", "call", data, 1000.0 + n)
    gc.collect()
    kept = [item for room in log._rooms.values() for item in room.buffer]
    assert len(kept) == 50
    assert not any(gc.is_tracked(item) for item in kept)
    replayed = log.since("agent:1", 0, 1100.0) or []
    assert [e.seq for e in replayed] == list(range(1, 11))
    assert replayed[0].data == data and replayed[0].at == 1001.0
    assert replayed[0].to_json() == {
        "room": "agent:1",
        "seq": 1,
        "type": "call",
        "at": 1001.0,
        "data": data,
    }


def test_data_that_is_not_json_is_refused_and_uses_no_sequence_number() -> None:
    log = RoomLog()
    with pytest.raises(TypeError):
        log.publish("agent:1", "call", {"when": object()}, 1.0)
    assert log.seq("agent:1") == 0
    assert log.publish("agent:1", "call", {"ok": True}, 2.0).seq == 1


@pytest.mark.parametrize(
    "data",
    [
        {"x": 1},
        {"call": {"id": "1.1", "name": 'Zoë <b>"x"</b>', "at": 1.25e-7, "n": None}},
        [1, 2.5, "é", True, None],
        "text",
        float("nan"),
    ],
)
def test_data_encoded_once_for_several_rooms_gives_the_same_text(data: object) -> None:
    one, other = RoomLog(epoch="e"), RoomLog(epoch="e")
    one.publish("supervisors", "call", {}, 1.0)  # a different sequence number
    text = encode_data(data)
    for room in ("supervisors", "agent:7", 'odd "room"'):
        given = one.publish(room, "call", data, 1764530000.125, data_text=text)
        made = other.publish(room, "call", data, 1764530000.125)
        assert given.text == made.text.replace(f'"seq":{made.seq}', f'"seq":{given.seq}')
        assert given.to_json()["seq"] == one.seq(room)
