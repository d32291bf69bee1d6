"""[server] event_loop: the loop `callwright serve` and `demo` run on."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
import uvloop

from callwright.config import ConfigError, load_config, parse_config

ROOT = Path(__file__).resolve().parents[2]


async def test_this_test_runs_on_the_servers_loop() -> None:
    assert isinstance(asyncio.get_running_loop(), uvloop.Loop)


def test_run_event_loop_runs_on_the_loop_named() -> None:
    # In a fresh interpreter: pytest's own loop policy is not the server's.
    code = (
        "import asyncio, uvloop\n"
        "from callwright.cli import run_event_loop\n"
        "async def kind(): return type(asyncio.get_running_loop()).__module__\n"
        "print(run_event_loop(kind(), 'uvloop'), run_event_loop(kind(), 'asyncio'))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out[0].startswith("uvloop") and out[1].startswith("asyncio")


def test_the_server_section_names_the_loop_and_refuses_another() -> None:
    ami = {"secret": "s"}
    assert parse_config({"ami": ami}, env={}).server.event_loop == "uvloop"
    chosen = parse_config({"ami": ami, "server": {"event_loop": "asyncio"}}, env={})
    assert chosen.server.event_loop == "asyncio"
    assert load_config(ROOT / "config.toml", env={}).server.event_loop == "uvloop"
    with pytest.raises(ConfigError, match=r"server\.event_loop: expected one of 'uvloop'"):
        parse_config({"ami": ami, "server": {"event_loop": "trio"}}, env={})
