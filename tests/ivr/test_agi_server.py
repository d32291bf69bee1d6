"""The FastAGI server over real TCP, driven by sim.agi_driver (Asterisk's side)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from ivr.agi import (
    AgiChannel,
    AgiCommandError,
    AgiCommandFailed,
    AgiHandler,
    AgiHangup,
    AgiReply,
    AgiServer,
    AgiTimeout,
    LocalProtocolError,
    RemoteProtocolError,
)
from sim.agi_driver import REPLY_DEAD, env_block, run_fastagi

TIMEOUT = 10
CALLER = {"channel": "PJSIP/trunk-00000042", "callerid": "5551234", "calleridname": "Ann Lee"}


@asynccontextmanager
async def agi_server(handler: AgiHandler, **kwargs: float) -> AsyncIterator[AgiServer]:
    server = AgiServer(handler, **kwargs)  # type: ignore[arg-type]
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def finished(server: AgiServer) -> int:
    s = server.stats
    return s.completed + s.hungup + s.errors + s.cancelled


async def test_scripted_ivr_answers_a_call() -> None:
    seen: dict[str, object] = {}

    async def ivr(channel: AgiChannel) -> None:
        seen["request"] = channel.request
        await channel.answer()
        seen["pressed"] = await channel.stream_file("welcome", "0123456789")
        seen["account"] = await channel.get_data("enter-account", 5000, 6)
        seen["segment"] = await channel.get_variable("CRM_SEGMENT")
        await channel.set_variable("IVR_ACCOUNT", str(seen["account"]))
        seen["full"] = await channel.get_full_variable("${IVR_ACCOUNT}@${EXTEN}")
        await channel.verbose("routing account to queue", 3)
        seen["exec"] = await channel.exec("Set", "QUEUE_PRIO=5")
        seen["status"] = await channel.channel_status()
        await channel.hangup()

    async with agi_server(ivr) as server:
        transcript = await asyncio.wait_for(
            run_fastagi(
                f"{server.url}/support?lang=fr&vip=1",
                {**CALLER, "extension": "700"},
                args=["from-trunk"],
                digits="7123456#",
                variables={"CRM_SEGMENT": "gold"},
            ),
            TIMEOUT,
        )
        await server.wait_idle()
        request = seen.pop("request")
        assert request.script == "support"  # type: ignore[attr-defined]
        assert request.query == {"lang": "fr", "vip": "1"}  # type: ignore[attr-defined]
        assert request.callerid == "5551234"  # type: ignore[attr-defined]
        assert request.args == ("from-trunk",)  # type: ignore[attr-defined]
        assert seen == {
            "pressed": "7",
            "account": "123456",
            "segment": "gold",
            "full": "123456@700",
            "exec": 0,
            "status": 6,
        }
        assert transcript.commands == [
            "ANSWER",
            "STREAM FILE welcome 0123456789",
            "GET DATA enter-account 5000 6",
            "GET VARIABLE CRM_SEGMENT",
            "SET VARIABLE IVR_ACCOUNT 123456",
            "GET FULL VARIABLE ${IVR_ACCOUNT}@${EXTEN}",
            'VERBOSE "routing account to queue" 3',
            "EXEC Set QUEUE_PRIO=5",
            "CHANNEL STATUS",
            "HANGUP",
        ]
        assert transcript.closed_by == "server"  # the socket closes when the handler returns
        assert server.stats.sessions == server.stats.completed == 1


async def test_abusive_clients_do_not_stop_a_concurrent_real_call() -> None:
    async def ivr(channel: AgiChannel) -> None:
        await channel.answer()
        await channel.stream_file("welcome")

    async with agi_server(ivr, header_timeout=0.5) as server:
        # One that connects and says nothing, staying open (header_timeout ends it).
        silent_reader, silent_writer = await asyncio.open_connection(server.host, server.port)
        # A port scan: connect and close without a word.
        _, scan_writer = await asyncio.open_connection(server.host, server.port)
        scan_writer.close()
        # Half an agi_* block, then close.
        _, half_writer = await asyncio.open_connection(server.host, server.port)
        half_writer.write(b"agi_network: yes\nagi_network_script: ivr\nagi_chan")
        half_writer.close()
        # Not FastAGI at all.
        junk_reader, junk_writer = await asyncio.open_connection(server.host, server.port)
        junk_writer.write(b"GET / HTTP/1.1\r\nHost: pbx\r\n\r\n")

        transcript = await asyncio.wait_for(run_fastagi(f"{server.url}/ivr", CALLER), TIMEOUT)
        assert transcript.replies == ["200 result=0", "200 result=0 endpos=16000"]

        # The server closed the junk and the silent connections itself.
        assert await asyncio.wait_for(junk_reader.read(), TIMEOUT) == b""
        assert await asyncio.wait_for(silent_reader.read(), TIMEOUT) == b""
        for writer in (silent_writer, junk_writer):
            writer.close()
        await asyncio.wait_for(server.wait_idle(), TIMEOUT)
        assert server.stats.aborted_before_headers == 4
        assert server.stats.completed == 1
        assert server.stats.errors == 0


async def test_oversized_agi_block_is_cut_off() -> None:
    async def ivr(channel: AgiChannel) -> None:
        raise AssertionError("never runs")

    async with agi_server(ivr, max_env_bytes=4096) as server:
        reader, writer = await asyncio.open_connection(server.host, server.port)
        writer.write(b"agi_network: yes\n" + b"agi_arg_1: " + b"x" * 10_000)
        assert await asyncio.wait_for(reader.read(), TIMEOUT) == b""
        writer.close()
        await asyncio.wait_for(server.wait_idle(), TIMEOUT)
        assert server.stats.aborted_before_headers == 1
        assert server.stats.sessions == 0


async def test_caller_hangup_during_a_prompt_raises_agi_hangup_in_the_handler() -> None:
    outcome: list[object] = []

    async def ivr(channel: AgiChannel) -> None:
        await channel.answer()
        try:
            await channel.wait_for_digit(10_000)
        except AgiHangup as exc:
            outcome.append(exc)
            outcome.append(channel.hungup)
            # Dead-channel commands still run; the rest raise AgiHangup (511).
            outcome.append(await channel.get_variable("CHANNEL"))
            with pytest.raises(AgiHangup) as dead:
                await channel.stream_file("goodbye")
            outcome.append(dead.value.reply)

    async with agi_server(ivr) as server:
        transcript = await asyncio.wait_for(
            run_fastagi(f"{server.url}/ivr", CALLER, hangup_after=2), TIMEOUT
        )
        await server.wait_idle()
    hangup, hungup, channel_name, dead_reply = outcome
    assert isinstance(hangup, AgiHangup)
    assert hangup.reply is not None and hangup.reply.text == "200 result=-1"
    assert hungup is True
    assert channel_name == "PJSIP/trunk-00000042"
    assert isinstance(dead_reply, AgiReply) and dead_reply.text == REPLY_DEAD
    # The -1 was checked with one NOOP: Asterisk's HANGUP line came before its reply.
    assert transcript.commands[:3] == ["ANSWER", "WAIT FOR DIGIT 10000", "NOOP"]
    assert server.stats.completed == 1


async def test_uncaught_hangup_ends_the_session_and_is_counted() -> None:
    async def ivr(channel: AgiChannel) -> None:
        await channel.answer()
        await channel.get_data("enter-account", 5000, 6)
        raise AssertionError("not reached: the caller hung up during GET DATA")

    async with agi_server(ivr) as server:
        transcript = await asyncio.wait_for(
            run_fastagi(f"{server.url}/ivr", CALLER, hangup_after=2), TIMEOUT
        )
        await server.wait_idle()
        assert transcript.closed_by == "server"
        assert (server.stats.hungup, server.stats.errors) == (1, 0)


async def test_raw_command_reports_the_hangup_line_once_with_its_reply() -> None:
    outcome: list[object] = []

    async def ivr(channel: AgiChannel) -> None:
        outcome.append(await channel.command("WAIT FOR DIGIT", "10000"))
        try:
            await channel.command("NOOP")
        except AgiHangup as exc:
            outcome.append(exc.reply)
        outcome.append(await channel.command("VERBOSE", "cleanup"))  # dead-channel ok

    async with agi_server(ivr) as server:
        await asyncio.wait_for(run_fastagi(f"{server.url}/ivr", CALLER, hangup_after=1), TIMEOUT)
        await server.wait_idle()
    assert [r.text for r in outcome] == ["200 result=-1", "200 result=0", "200 result=1"]  # type: ignore[attr-defined]


async def test_asterisk_closing_mid_command_is_a_hangup_not_a_value_error() -> None:
    outcome: list[BaseException] = []

    async def ivr(channel: AgiChannel) -> None:
        await channel.answer()
        try:
            await channel.wait_for_digit(10_000)
        except AgiHangup as exc:
            outcome.append(exc)
            raise

    async with agi_server(ivr) as server:
        transcript = await asyncio.wait_for(
            run_fastagi(
                f"{server.url}/ivr", CALLER, hangup_after=2, exit_on_hangup=True, sighup=False
            ),
            TIMEOUT,
        )
        await server.wait_idle()
        assert transcript.closed_by == "asterisk"
        assert len(outcome) == 1 and isinstance(outcome[0], AgiHangup)
        assert server.stats.hungup == 1


async def test_handler_exception_is_counted_and_the_server_goes_on() -> None:
    calls = 0

    async def ivr(channel: AgiChannel) -> None:
        nonlocal calls
        calls += 1
        await channel.answer()
        if calls == 1:
            raise RuntimeError("bug in the flow")
        await channel.verbose("second call fine")

    async with agi_server(ivr) as server:
        first = await asyncio.wait_for(run_fastagi(f"{server.url}/ivr", CALLER), TIMEOUT)
        second = await asyncio.wait_for(run_fastagi(f"{server.url}/ivr", CALLER), TIMEOUT)
        await server.wait_idle()
        assert first.commands == ["ANSWER"]
        assert first.closed_by == "server"  # the broken session's socket was closed
        assert second.commands == ["ANSWER", 'VERBOSE "second call fine" 1']
        assert (server.stats.errors, server.stats.completed) == (1, 1)
        assert finished(server) == server.stats.sessions == 2


async def test_plain_function_handler_is_accepted() -> None:
    seen: list[str] = []

    def ivr(channel: AgiChannel) -> None:
        seen.append(channel.request.uniqueid)

    async with agi_server(ivr) as server:
        transcript = await asyncio.wait_for(
            run_fastagi(f"{server.url}/ivr", {**CALLER, "uniqueid": "1.7"}), TIMEOUT
        )
        await server.wait_idle()
        assert seen == ["1.7"]
        assert transcript.closed_by == "server"
        assert server.stats.completed == 1


async def test_refused_argument_sends_nothing_and_counts_an_error() -> None:
    async def ivr(channel: AgiChannel) -> None:
        await channel.answer()
        with pytest.raises(LocalProtocolError):
            await channel.set_variable("X", "a\nHANGUP")
        await channel.set_variable("X", "a b")
        await channel.command("EXEC", "Set", "Y=1\r")

    async with agi_server(ivr) as server:
        transcript = await asyncio.wait_for(run_fastagi(f"{server.url}/ivr", CALLER), TIMEOUT)
        await server.wait_idle()
        assert transcript.commands == ["ANSWER", 'SET VARIABLE X "a b"']
        assert server.stats.errors == 1


async def test_failures_on_a_live_channel_raise_command_errors() -> None:
    outcome: list[object] = []

    async def ivr(channel: AgiChannel) -> None:
        for attempt in (
            channel.stream_file("no-such-sound-file"),
            channel.exec("NoSuchApplication", "foo"),
            channel.command("GET DATA"),
        ):
            try:
                outcome.append(await attempt)
            except AgiCommandError as exc:
                outcome.append((type(exc).__name__, exc.reply.text))
        outcome.append((await channel.command("FROBNICATE")).code)
        outcome.append(channel.hungup)

    async with agi_server(ivr) as server:
        await asyncio.wait_for(run_fastagi(f"{server.url}/ivr", CALLER, sounds=()), TIMEOUT)
        await server.wait_idle()
    assert outcome == [
        ("AgiCommandFailed", "200 result=-1 endpos=0"),
        ("AgiCommandFailed", "200 result=-2"),
        AgiReply(
            code=520,
            result=None,
            data=None,
            endpos=None,
            text="520 Invalid command syntax.  Proper usage not available.",
            hungup=False,
        ),
        510,
        False,
    ]
    assert issubclass(AgiCommandFailed, AgiCommandError)


async def test_command_timeout_closes_the_connection() -> None:
    outcome: list[BaseException] = []

    async def ivr(channel: AgiChannel) -> None:
        try:
            await channel.command("ANSWER", timeout=0.2)
        except AgiTimeout as exc:
            outcome.append(exc)
        with pytest.raises(AgiHangup):
            await channel.command("NOOP")

    async with agi_server(ivr) as server:
        reader, writer = await asyncio.open_connection(server.host, server.port)
        writer.write(env_block(f"{server.url}/ivr"))
        assert await asyncio.wait_for(reader.readline(), TIMEOUT) == b"ANSWER\n"
        # Asterisk (this fake) never answers; the server gives up and closes.
        assert await asyncio.wait_for(reader.read(), TIMEOUT) == b""
        writer.close()
        await server.wait_idle()
    assert len(outcome) == 1 and isinstance(outcome[0], TimeoutError)


async def test_garbage_reply_is_a_protocol_error_and_closes_the_session() -> None:
    outcome: list[BaseException] = []

    async def ivr(channel: AgiChannel) -> None:
        try:
            await channel.answer()
        except RemoteProtocolError as exc:
            outcome.append(exc)
            raise

    async with agi_server(ivr) as server:
        transcript = await asyncio.wait_for(
            run_fastagi(f"{server.url}/ivr", CALLER, respond=lambda line: "<html>oops</html>"),
            TIMEOUT,
        )
        await server.wait_idle()
        assert transcript.closed_by == "server"
        assert len(outcome) == 1
        assert server.stats.errors == 1


async def test_sessions_beyond_max_sessions_are_refused() -> None:
    release = asyncio.Event()
    entered = asyncio.Event()

    async def ivr(channel: AgiChannel) -> None:
        entered.set()
        await release.wait()
        await channel.answer()

    async with agi_server(ivr, max_sessions=1) as server:
        first = asyncio.create_task(run_fastagi(f"{server.url}/ivr", CALLER))
        await asyncio.wait_for(entered.wait(), TIMEOUT)
        refused = await asyncio.wait_for(run_fastagi(f"{server.url}/ivr", CALLER), TIMEOUT)
        assert refused.exchanges == [] and refused.closed_by == "server"
        release.set()
        assert (await asyncio.wait_for(first, TIMEOUT)).commands == ["ANSWER"]
        await server.wait_idle()
        assert (server.stats.rejected, server.stats.completed) == (1, 1)


async def test_stop_cancels_running_handlers_and_closes_their_calls() -> None:
    entered = asyncio.Event()

    async def ivr(channel: AgiChannel) -> None:
        await channel.answer()
        entered.set()
        await asyncio.Event().wait()  # a flow waiting on something that never comes

    server = AgiServer(ivr)
    await server.start()
    call = asyncio.create_task(run_fastagi(f"{server.url}/ivr", CALLER))
    await asyncio.wait_for(entered.wait(), TIMEOUT)
    await asyncio.wait_for(server.stop(), TIMEOUT)
    transcript = await asyncio.wait_for(call, TIMEOUT)
    assert transcript.closed_by == "server"
    assert server.stats.cancelled == 1
    assert server.stats.active == 0
    with pytest.raises(ConnectionError):
        await asyncio.open_connection(server.host, server.port)


async def test_hangup_is_a_no_op_once_the_caller_is_gone() -> None:
    outcome: list[object] = []

    async def ivr(channel: AgiChannel) -> None:
        try:
            await channel.stream_file("welcome")
        except AgiHangup:
            outcome.append("caller gone")
        finally:
            await channel.hangup()  # a flow's usual cleanup: must not raise
            await channel.hangup()
        outcome.append(channel.hungup)

    async with agi_server(ivr) as server:
        transcript = await asyncio.wait_for(
            run_fastagi(f"{server.url}/ivr", CALLER, hangup_after=1), TIMEOUT
        )
        await server.wait_idle()
        assert outcome == ["caller gone", True]
        assert transcript.commands == ['STREAM FILE welcome ""', "NOOP"]
        assert server.stats.completed == 1


async def test_many_calls_at_once_are_served_independently() -> None:
    async def ivr(channel: AgiChannel) -> None:
        await channel.answer()
        entry = await channel.get_data("enter-account", 5000, 4)
        await channel.set_variable("ACCOUNT", entry)

    async with agi_server(ivr) as server:
        calls = [
            run_fastagi(
                f"{server.url}/ivr",
                {**CALLER, "uniqueid": f"1.{n}"},
                digits=f"{n:04d}",
                hangup_after=3 if n % 5 == 0 else None,
            )
            for n in range(60)
        ]
        transcripts = await asyncio.wait_for(asyncio.gather(*calls), TIMEOUT * 3)
        await server.wait_idle()
    for n, transcript in enumerate(transcripts):
        assert transcript.commands[2] == f"SET VARIABLE ACCOUNT {n:04d}"
    assert (server.stats.completed, server.stats.hungup, server.stats.errors) == (60, 0, 0)
    assert server.stats.sessions == 60
