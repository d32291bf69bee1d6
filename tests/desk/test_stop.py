"""Stopping the server with its desk: every connection closed, nothing logged as an error
whether clients are connected, gone, refused or never came."""

from __future__ import annotations

import asyncio
import logging

import pytest
import socketio

from tests.desk.conftest import DeskStack


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        f"{r.name}: {r.getMessage()} {r.exc_info[1]!r}" if r.exc_info else r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.ERROR or r.exc_info
    ]


@pytest.mark.parametrize("clients", ["none", "gone", "refused", "connected"])
async def test_stopping_the_desk_logs_no_error(
    desk: DeskStack, caplog: pytest.LogCaptureFixture, clients: str
) -> None:
    caplog.set_level(logging.DEBUG)
    connected = None
    if clients in ("gone", "connected"):
        connected = await desk.connect("alice")
    if clients == "gone":
        assert connected is not None
        await connected.close()
        await connected.wait(lambda: connected.disconnects)
    if clients == "refused":
        client = desk.client()
        with pytest.raises(socketio.exceptions.ConnectionError):
            await client.connect({"token": "forged"})
    await desk.runtime.stop()  # the desk first, then the web server and the rest
    if connected is not None and clients == "connected":
        await connected.wait(lambda: connected.disconnects)
    assert desk.runtime.sio.eio.sockets == {}
    await asyncio.sleep(0.1)  # let closing sockets finish their tasks
    assert errors(caplog) == []
