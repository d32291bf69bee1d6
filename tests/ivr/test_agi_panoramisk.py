"""Each FastAGI defect of panoramisk 1.4 (../shared/PITFALLS.md), shown on the real
library, next to Callwright's server passing the same scenario.

panoramisk's server runs in a subprocess where it could freeze (so its freeze
cannot hang this test run), or in this loop where it cannot. Never import
``panoramisk.testing`` here: it switches the line ending process-wide.
"""

from __future__ import annotations

import asyncio
import sys
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from panoramisk.fast_agi import Application

from ivr.agi import AgiChannel, AgiHandler, AgiHangup, AgiServer
from sim.agi_driver import run_fastagi

TIMEOUT = 10
CALLER = {"channel": "PJSIP/trunk-00000042", "callerid": "5551234"}

PANORAMISK_SERVER = """
import asyncio
from panoramisk.fast_agi import Application

async def ivr(request):
    await request.send_command("ANSWER")

async def main():
    app = Application()
    app.add_route("ivr", ivr)
    server = await asyncio.start_server(app.handler, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


@asynccontextmanager
async def panoramisk_in_subprocess() -> AsyncIterator[int]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        PANORAMISK_SERVER,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        port = int(await asyncio.wait_for(proc.stdout.readline(), 30))
        yield port
    finally:
        proc.kill()
        await proc.wait()


@asynccontextmanager
async def panoramisk_here(route: Any) -> AsyncIterator[int]:
    app = Application()  # inside the running loop: no stray loop here
    app.add_route("ivr", route)
    server = await asyncio.start_server(app.handler, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


@asynccontextmanager
async def callwright(handler: AgiHandler) -> AsyncIterator[AgiServer]:
    server = AgiServer(handler)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def early_close(port: int, payload: bytes) -> None:
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(payload)
    writer.close()
    await writer.wait_closed()


EARLY_CLOSES = pytest.mark.parametrize(
    "payload",
    [b"", b"agi_network: yes\nagi_network_script: ivr\nagi_chan"],
    ids=["port-scan", "half-header"],
)


# -- 1. a client closing before its headers end freezes the whole server ----------


@EARLY_CLOSES
async def test_panoramisk_defect_early_close_freezes_the_server(payload: bytes) -> None:
    async with panoramisk_in_subprocess() as port:
        url = f"agi://127.0.0.1:{port}/ivr"
        before = await asyncio.wait_for(run_fastagi(url, CALLER), TIMEOUT)
        assert before.commands == ["ANSWER"]  # it works...

        await early_close(port, payload)
        # ... until one client closes early: its header loop spins on b"" forever
        # without yielding. A call already under way may get a command out before
        # the spin starts, but never completes (its socket is never closed); the
        # next call never gets a command. (The freeze is permanent: any idle
        # timeout shows it.)
        during = await asyncio.wait_for(run_fastagi(url, CALLER, idle_timeout=1), TIMEOUT)
        assert during.closed_by == "idle_timeout"
        later = await asyncio.wait_for(run_fastagi(url, CALLER, idle_timeout=1), TIMEOUT)
        assert later.closed_by == "idle_timeout"
        assert later.commands == []


@EARLY_CLOSES
async def test_callwright_survives_an_early_close(payload: bytes) -> None:
    async def ivr(channel: AgiChannel) -> None:
        await channel.answer()

    async with callwright(ivr) as server:
        url = f"{server.url}/ivr"
        before = await asyncio.wait_for(run_fastagi(url, CALLER), TIMEOUT)
        await early_close(server.port, payload)
        after = await asyncio.wait_for(run_fastagi(url, CALLER, idle_timeout=TIMEOUT), TIMEOUT)
        await server.wait_idle()
        assert before.commands == after.commands == ["ANSWER"]
        assert after.closed_by == "server"
        assert server.stats.aborted_before_headers == 1
        assert server.stats.completed == 2


# -- 2. a hangup mid-command raises ValueError; a HANGUP line shifts every reply ---


async def test_panoramisk_defect_hangup_mid_command_raises_value_error() -> None:
    outcome: list[object] = []

    async def ivr(request: Any) -> None:
        try:
            await request.send_command("ANSWER")
            outcome.append(await request.send_command("WAIT FOR DIGIT 10000"))
            outcome.append(await request.send_command("NOOP"))
        except Exception as exc:
            outcome.append(exc)

    async with panoramisk_here(ivr) as port:
        # The caller hangs up during WAIT FOR DIGIT; Asterisk (AGIEXITONHANGUP=yes,
        # AGISIGHUP=no) answers it and closes.
        await asyncio.wait_for(
            run_fastagi(
                f"agi://127.0.0.1:{port}/ivr",
                CALLER,
                hangup_after=2,
                exit_on_hangup=True,
                sighup=False,
            ),
            TIMEOUT,
        )
    wait_result, noop = outcome
    assert wait_result == {"error": "AGIAppError", "msg": "Error executing application, or hangup"}
    assert isinstance(noop, ValueError)


async def test_callwright_hangup_mid_command_raises_agi_hangup() -> None:
    outcome: list[object] = []

    async def ivr(channel: AgiChannel) -> None:
        await channel.command("ANSWER")
        outcome.append((await channel.command("WAIT FOR DIGIT", "10000")).text)
        try:
            await channel.command("NOOP")
        except AgiHangup as exc:
            outcome.append(exc)

    async with callwright(ivr) as server:
        await asyncio.wait_for(
            run_fastagi(
                f"{server.url}/ivr", CALLER, hangup_after=2, exit_on_hangup=True, sighup=False
            ),
            TIMEOUT,
        )
        await server.wait_idle()
    wait_text, noop = outcome
    assert wait_text == "200 result=-1"
    assert isinstance(noop, AgiHangup)
    assert server.stats.errors == 0


async def test_panoramisk_defect_hangup_line_shifts_every_later_reply() -> None:
    outcome: list[Any] = []

    async def ivr(request: Any) -> None:
        for command in ("ANSWER", "WAIT FOR DIGIT 10000", "NOOP", "GET VARIABLE CHANNEL"):
            outcome.append(await request.send_command(command))

    async with panoramisk_here(ivr) as port:
        # Asterisk 22 defaults, as recorded (11-fastagi.txt session 2).
        await asyncio.wait_for(
            run_fastagi(f"agi://127.0.0.1:{port}/ivr", CALLER, hangup_after=2), TIMEOUT
        )
    _, _, noop, channel = outcome
    assert noop["error"] == "AGIResultHangup"  # the HANGUP line taken for NOOP's reply
    assert channel["result"] == ("0", "")  # NOOP's reply taken for GET VARIABLE's
    assert "PJSIP/trunk-00000042" not in str(channel)


async def test_callwright_keeps_replies_in_step_after_a_hangup_line() -> None:
    outcome: list[object] = []

    async def ivr(channel: AgiChannel) -> None:
        await channel.command("ANSWER")
        await channel.command("WAIT FOR DIGIT", "10000")
        try:
            await channel.command("NOOP")
        except AgiHangup as exc:
            assert exc.reply is not None
            outcome.append(exc.reply.text)
        outcome.append(await channel.get_variable("CHANNEL"))

    async with callwright(ivr) as server:
        await asyncio.wait_for(run_fastagi(f"{server.url}/ivr", CALLER, hangup_after=2), TIMEOUT)
        await server.wait_idle()
    assert outcome == ["200 result=0", "PJSIP/trunk-00000042"]


# -- 3. add_route with a plain function fails on Python 3.11 ----------------------


async def test_panoramisk_defect_add_route_with_plain_function_fails() -> None:
    def ivr(request: Any) -> None:
        pass

    app = Application()
    with pytest.raises(AttributeError, match="coroutine"):
        app.add_route("ivr", ivr)


async def test_callwright_accepts_a_plain_function_handler() -> None:
    seen: list[str] = []

    def ivr(channel: AgiChannel) -> None:
        seen.append(channel.request.script)

    async with callwright(ivr) as server:
        await asyncio.wait_for(run_fastagi(f"{server.url}/ivr", CALLER), TIMEOUT)
        await server.wait_idle()
        assert seen == ["ivr"]
        assert server.stats.completed == 1


# -- 4. Application() made outside a running loop makes a stray loop --------------

STRAY_LOOP = """
import asyncio, warnings
warnings.simplefilter("ignore")
from panoramisk.fast_agi import Application

app = Application()

async def main():
    return app.loop is asyncio.get_running_loop()

print(asyncio.run(main()), app.loop.is_running(), app.loop.is_closed())
"""


async def test_panoramisk_defect_application_outside_a_loop_makes_a_stray_loop() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        STRAY_LOOP,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    # Its loop is not the one that serves, never runs and is never closed.
    assert out.split() == [b"False", b"False", b"False"]


def test_callwright_server_made_outside_a_loop_serves_in_a_later_one() -> None:
    async def ivr(channel: AgiChannel) -> None:
        await channel.answer()

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        server = AgiServer(ivr)  # no running loop here: none is made or grabbed
    assert not any(isinstance(v, asyncio.AbstractEventLoop) for v in vars(server).values())

    async def scenario() -> list[str]:
        await server.start()
        try:
            transcript = await asyncio.wait_for(run_fastagi(f"{server.url}/ivr", CALLER), TIMEOUT)
            return transcript.commands
        finally:
            await server.stop()

    assert asyncio.run(scenario()) == ["ANSWER"]
