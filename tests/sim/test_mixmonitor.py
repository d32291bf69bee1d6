"""MixMonitor in the simulator writes real WAV files, as Asterisk 22 does:
under ``<spool>/monitor/`` for a relative name, audio for the time the call
lasts (a tone), silence for a muted direction, complete once the recording
ends; the AMI replies and events stay those of the transcripts."""

from __future__ import annotations

import array
import asyncio
import sys
import wave
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from simtest_support import USERS, AmiClient

from sim.pbx import PbxSimulator, SimChannel
from sim.pbx.model import MixMonitorRec
from sim.pbx.recording import _TABLES, RATE, WavRecorder, option_flags, spool_path

TIMEOUT = 10.0
CHANNEL_SNAPSHOT = [
    "Channel",
    "ChannelState",
    "ChannelStateDesc",
    "CallerIDNum",
    "CallerIDName",
    "ConnectedLineNum",
    "ConnectedLineName",
    "Language",
    "AccountCode",
    "Context",
    "Exten",
    "Priority",
    "Uniqueid",
    "Linkedid",
]


async def until(predicate: Callable[[], bool]) -> None:
    async def loop() -> None:
        while not predicate():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(loop(), TIMEOUT)


def samples(path: Path) -> array.array[int]:
    with wave.open(str(path)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, RATE)
        data = wav.readframes(wav.getnframes())
    out = array.array("h", data)
    if sys.byteorder == "big":
        out.byteswap()
    return out


def wav_files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.wav"))


def exists(path: Path) -> bool:
    return path.exists()


def recording(sim: PbxSimulator, channel: str) -> MixMonitorRec:
    ch = sim.pbx.find(channel)
    assert ch is not None and ch.mixmonitors
    return ch.mixmonitors[0]


def writer(rec: MixMonitorRec) -> WavRecorder:
    assert rec.writer is not None
    return rec.writer


@pytest.fixture
async def spool(tmp_path: Path) -> Path:
    return tmp_path / "spool"


@pytest.fixture
async def rsim(spool: Path) -> AsyncIterator[PbxSimulator]:
    simulator = PbxSimulator(
        users=USERS, spool_dir=str(spool), answer_delay=0.0, login_failure_delay=0.0
    )
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.stop()


@pytest.fixture
async def client(rsim: PbxSimulator) -> AsyncIterator[AmiClient]:
    reader, writer_ = await asyncio.open_connection(rsim.host, rsim.port)
    ami = AmiClient(reader, writer_)
    await ami.wait_banner()
    response = await ami.request(
        "Login", {"Username": "callwright", "Secret": USERS["callwright"].secret}
    )
    assert response.ok
    yield ami
    await ami.close()


async def bridged_call(ami: AmiClient, sim: PbxSimulator) -> SimChannel:
    customer = await sim.inbound_call("+15551234567", "Jane Roe", "5000")
    response = await ami.request(
        "Redirect",
        {"Channel": customer.name, "Context": "callwright-agent", "Exten": "1001", "Priority": "1"},
    )
    assert response.ok
    await ami.event("BridgeEnter", Channel=customer.name)
    return customer


async def test_a_relative_file_is_written_under_monitor_with_a_tone_and_silence_while_muted(
    client: AmiClient, rsim: PbxSimulator, spool: Path
) -> None:
    customer = await bridged_call(client, rsim)
    started = await client.request(
        "MixMonitor", {"Channel": customer.name, "File": "call-1.wav", "Options": "b"}
    )
    assert started.headers == (("Response", "Success"), ("ActionID", started.action_id))
    filename = await client.event("VarSet", Channel=customer.name, Variable="MIXMONITOR_FILENAME")
    path = spool / "monitor" / "call-1.wav"
    assert filename["Value"] == f"{spool}/monitor/call-1.wav"
    start = await client.event("MixMonitorStart", Channel=customer.name)
    assert [k for k, _ in start.headers] == ["Event", "Privilege", *CHANNEL_SNAPSHOT]
    rec = writer(recording(rsim, customer.name))
    # the file exists and grows while the call goes on
    await until(lambda: path.exists() and path.stat().st_size > 44 + 2 * 800)

    for state in ("1", "0"):
        before = rec.frames_written
        muted = await client.request(
            "MixMonitorMute", {"Channel": customer.name, "Direction": "both", "State": state}
        )
        assert muted.headers == (("Response", "Success"), ("ActionID", muted.action_id))
        event = await client.event("MixMonitorMute", Channel=customer.name, State=state)
        assert [(k, v) for k, v in event.headers][-2:] == [("Direction", "both"), ("State", state)]
        await until(lambda before=before: rec.frames_written > before + 800)  # type: ignore[misc]

    stopped = await client.request("StopMixMonitor", {"Channel": customer.name})
    assert stopped.headers == (("Response", "Success"), ("ActionID", stopped.action_id))
    await client.event("MixMonitorStop", Channel=customer.name)
    again = await client.request("StopMixMonitor", {"Channel": customer.name})
    assert again.message == "Could not stop monitoring channel"
    nomute = await client.request(
        "MixMonitorMute", {"Channel": customer.name, "Direction": "read", "State": "1"}
    )
    assert nomute.message == "Cannot set mute flag"

    audio = samples(path)
    assert len(audio) == rec.frames_written
    assert path.stat().st_size == 44 + 2 * len(audio)  # the header's sizes were fixed at the stop
    (mute_at, *_), (unmute_at, *_) = rec.marks
    assert 0 < mute_at < unmute_at < len(audio)
    assert any(audio[:mute_at]) and any(audio[unmute_at:])
    assert not any(audio[mute_at:unmute_at])  # digital silence while muted


async def test_muting_one_direction_leaves_the_other_in_the_file(
    client: AmiClient, rsim: PbxSimulator, spool: Path
) -> None:
    customer = await bridged_call(client, rsim)
    await client.request("MixMonitor", {"Channel": customer.name, "File": "dir.wav"})
    rec = writer(recording(rsim, customer.name))
    await until(lambda: rec.frames_written > 800)
    await client.request(
        "MixMonitorMute", {"Channel": customer.name, "Direction": "read", "State": "1"}
    )
    mute_at = rec.marks[0][0]
    await until(lambda: rec.frames_written > mute_at + 800)
    await client.request("StopMixMonitor", {"Channel": customer.name})
    await client.event("MixMonitorStop", Channel=customer.name)
    audio = samples(spool / "monitor" / "dir.wav")
    assert rec.marks == [(mute_at, True, False)]
    write_only = array.array("h", _TABLES[(True, False)])
    both = array.array("h", _TABLES[(False, False)])
    if sys.byteorder == "big":
        write_only.byteswap()
        both.byteswap()
    # before: both directions mixed; after: only what the channel hears (write)
    assert all(audio[i] == both[i % RATE] for i in range(mute_at))
    assert all(audio[i] == write_only[i % RATE] for i in range(mute_at, len(audio)))
    assert any(audio[mute_at:])


async def test_a_call_hanging_up_while_recording_leaves_a_complete_file(
    client: AmiClient, rsim: PbxSimulator, spool: Path
) -> None:
    customer = await bridged_call(client, rsim)
    response = await client.request(
        "MixMonitor",
        {"Channel": customer.name, "File": "sub/hup.wav", "Options": "bi(CW_MIXMON)"},
    )
    mixmonitor_id = response["MixMonitorID"]
    got = await client.request("Getvar", {"Channel": customer.name, "Variable": "CW_MIXMON"})
    assert got["Value"] == mixmonitor_id
    rec = writer(recording(rsim, customer.name))
    await until(lambda: rec.frames_written > 800)
    path = spool / "monitor" / "sub" / "hup.wav"
    await rsim.customer_hangup(customer.name)
    await client.event("Hangup", Channel=customer.name)
    # by the Hangup event the file is closed: header and size agree
    audio = samples(path)
    assert len(audio) >= 800 and any(audio)
    assert path.stat().st_size == 44 + 2 * len(audio)
    assert not client.events("MixMonitorStop")  # Asterisk sends none on hangup (08)


async def test_option_b_writes_nothing_while_the_channel_is_not_bridged(
    client: AmiClient, rsim: PbxSimulator, spool: Path
) -> None:
    customer = await rsim.inbound_call("+15551234567", "Jane Roe", "5000")  # at the holding point
    await client.request(
        "MixMonitor", {"Channel": customer.name, "File": "alone.wav", "Options": "b"}
    )
    rec = writer(recording(rsim, customer.name))
    await until(lambda: rec._position > 800)  # simulated time has passed
    assert rec.frames_written == 0 and not (spool / "monitor" / "alone.wav").exists()
    await client.request(
        "Redirect",
        {"Channel": customer.name, "Context": "callwright-agent", "Exten": "1001", "Priority": "1"},
    )
    await client.event("BridgeEnter", Channel=customer.name)
    await until(lambda: rec.frames_written > 800)
    assert (spool / "monitor" / "alone.wav").exists()


@pytest.mark.parametrize("name", ["/etc/cw-test.wav", "../../escape.wav", "a/../../../x.wav"])
async def test_a_file_outside_the_spool_is_not_written(
    client: AmiClient, rsim: PbxSimulator, spool: Path, tmp_path: Path, name: str
) -> None:
    customer = await bridged_call(client, rsim)
    started = await client.request("MixMonitor", {"Channel": customer.name, "File": name})
    assert started.ok  # Asterisk answers before its recording thread opens the file
    await client.event("MixMonitorStart", Channel=customer.name)
    rec = recording(rsim, customer.name)
    assert rec.writer is not None and rec.writer.path is None
    stopped = await client.request("StopMixMonitor", {"Channel": customer.name})
    assert stopped.ok
    assert wav_files(tmp_path) == [] and not exists(Path("/etc/cw-test.wav"))


async def test_an_absolute_file_inside_the_spool_is_written_as_given(
    client: AmiClient, rsim: PbxSimulator, spool: Path
) -> None:
    customer = await bridged_call(client, rsim)
    target = spool / "elsewhere" / "abs.wav"
    await client.request("MixMonitor", {"Channel": customer.name, "File": str(target)})
    filename = await client.event("VarSet", Channel=customer.name, Variable="MIXMONITOR_FILENAME")
    assert filename["Value"] == str(target)
    rec = writer(recording(rsim, customer.name))
    await until(lambda: rec.frames_written > 0)
    await client.request("StopMixMonitor", {"Channel": customer.name})
    assert len(samples(target)) == rec.frames_written


async def test_without_a_spool_the_reply_and_events_are_the_transcripts_and_no_file(
    tmp_path: Path,
) -> None:
    sim = PbxSimulator(users=USERS, answer_delay=0.0, login_failure_delay=0.0)
    await sim.start()
    try:
        reader, writer_ = await asyncio.open_connection(sim.host, sim.port)
        ami = AmiClient(reader, writer_)
        await ami.wait_banner()
        await ami.request("Login", {"Username": "callwright", "Secret": "callwright-secret"})
        customer = await sim.inbound_call("5550001")
        await ami.request("MixMonitor", {"Channel": customer.name, "File": "a.wav"})
        path = await ami.event("VarSet", Channel=customer.name, Variable="MIXMONITOR_FILENAME")
        assert path["Value"] == "/var/spool/asterisk/monitor/a.wav"
        assert recording(sim, customer.name).task is None  # nothing to write
        await ami.close()
    finally:
        await sim.stop()


def test_option_flags_and_spool_paths() -> None:
    assert option_flags("bi(MMID)") == {"b": "", "i": "MMID"}
    assert option_flags("i(b)") == {"i": "b"}
    assert option_flags("") == {}
    assert spool_path("x.wav", None) == ("/var/spool/asterisk/monitor/x.wav", None)
    assert spool_path("x.wav", "/srv/spool") == (
        "/srv/spool/monitor/x.wav",
        Path("/srv/spool/monitor/x.wav"),
    )
    assert spool_path("/srv/other/x.wav", "/srv/spool")[1] is None
    relative = spool_path("x.wav", "spool")[0]  # reported absolute, as Asterisk does
    assert relative.startswith("/") and relative.endswith("/spool/monitor/x.wav")
    assert spool_path("x.gsm", "/srv/spool")[1] is None  # only .wav is simulated


def test_audio_follows_simulated_time_and_mute_state() -> None:
    rec = WavRecorder(None, started=100.0, only_bridged=False, scale=0.5)
    rec.advance(101.0, bridged=True)  # one wall second at time_scale 0.5 = two simulated
    assert rec._position == 2 * RATE
    only = WavRecorder(None, started=0.0, only_bridged=True)
    only.advance(1.0, bridged=False)
    assert only._position == RATE and only.frames_written == 0
