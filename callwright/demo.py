"""``callwright demo``: the server, the PBX simulator, SQLite and demo data.

The simulator listens on a free loopback port and speaks real AMI; Callwright
connects to it exactly as it would to Asterisk. Simulated customers (some of
them known to the CRM) call in every ``demo.call_interval`` seconds, wait at
the holding point, and hang up after ``demo.hold_seconds``.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from callwright.config import AmiConfig, Config, Secret, ServerConfig, StoreConfig, load_config
from cti.calls.model import CallEvent
from cti.errors import CtiError

if TYPE_CHECKING:
    from callwright.runtime import Runtime

log = logging.getLogger(__name__)

DEMO_AMI_SECRET = "demo-" + secrets.token_hex(8)


def demo_config(path: Path | None, *, port: int | None) -> Config:
    base = (
        load_config(path)
        if path is not None
        else Config(ami=AmiConfig(secret=Secret(DEMO_AMI_SECRET)))
    )
    server = ServerConfig(host="127.0.0.1", port=port if port is not None else base.server.port)
    store = base.store if base.store.url else StoreConfig(data_dir=Path("data") / "demo")
    token = base.api.token if base.api.token else Secret(secrets.token_urlsafe(16))
    return dataclasses.replace(
        base,
        server=server,
        store=store,
        ami=dataclasses.replace(base.ami, host="127.0.0.1", port=1, secret=Secret(DEMO_AMI_SECRET)),
        api=dataclasses.replace(base.api, token=token),
    )


async def run_demo(config: Config) -> None:
    from callwright.cli import _wait_for_signal
    from callwright.runtime import Runtime
    from crm.demo_data import seed_demo
    from sim.load import CallLoad
    from sim.pbx import AmiUser, PbxSimulator

    sim = PbxSimulator(
        users={config.ami.username: AmiUser(secret=DEMO_AMI_SECRET)},
        agent_devices=("1001", "1002", "1003"),
        answer_delay=1.0,
    )
    await sim.start()
    config = dataclasses.replace(config, ami=dataclasses.replace(config.ami, port=sim.port))
    runtime = Runtime(config)
    await runtime.start()
    await seed_demo(runtime.engine)
    numbers = ["+15550100001", "+15550100002", "+15550100003", "+15550100004", "+15559990000"]
    load = CallLoad(
        sim,
        rate_per_s=1.0 / config.demo.call_interval,
        hold_seconds=config.demo.hold_seconds,
        numbers=numbers,
    )
    load.start()
    connector = DemoConnector(runtime, devices=("1001", "1002"))
    runtime.calls.subscribe(connector.on_call_event)
    token = config.api.token.reveal()
    print(f"Callwright demo running at {runtime.url}", flush=True)
    print(f"  PBX simulator (AMI) on 127.0.0.1:{sim.port}", flush=True)
    print(f"  API token for /api/: {token}", flush=True)
    print(f"  try: curl -H 'Authorization: Bearer {token}' {runtime.url}/api/calls", flush=True)
    print(f"  live calls page: {runtime.url}/#token={token}", flush=True)
    try:
        await _wait_for_signal()
    finally:
        await load.stop()
        await runtime.stop()
        await sim.stop()


class DemoConnector:
    """The demo's stand-in for the router (the routing issue replaces it):
    a caller waiting at the holding point is sent to the first demo agent
    device with no call, through the same call-control service the API uses."""

    def __init__(self, runtime: Runtime, devices: tuple[str, ...]) -> None:
        self.runtime = runtime
        self.devices = devices
        self.hold_context = runtime.config.pbx.holding_context
        self.agent_context = runtime.config.pbx.agent_context

    def _free_device(self) -> str | None:
        busy = {ch.device for call in self.runtime.calls.calls() for ch in call.channels}
        for device in self.devices:
            if f"PJSIP/{device}" not in busy:
                return device
        return None

    async def on_call_event(self, event: CallEvent) -> None:
        waiting = [
            call
            for call in self.runtime.calls.calls()
            if call.context == self.hold_context and not call.bridged and len(call.channels) == 1
        ]
        for call in waiting:
            device = self._free_device()
            if device is None:
                return
            try:
                await self.runtime.calls.redirect(call.id, self.agent_context, device)
            except CtiError as exc:
                log.info("demo: could not connect %s to %s: %s", call.id, device, exc)
                return
