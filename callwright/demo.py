"""``callwright demo``: the server, the PBX simulator, SQLite and demo data.

The simulator listens on a free loopback port and speaks real AMI; Callwright
connects to it exactly as it would to Asterisk. Simulated customers (some of
them known to the CRM) call in every ``demo.call_interval`` seconds, wait at
the holding point, and are routed to the demo agents Alice and Bob (signed in,
auto-accepting: their simulated phones answer), and hang up after
``demo.hold_seconds``.

The demo agents (alice, bob: agents; carol: supervisor) log in with the fixed
``DEMO_PASSWORD``, printed at start; session tokens are signed with a key
generated for the run.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
from pathlib import Path

from callwright.config import AmiConfig, Config, Secret, ServerConfig, StoreConfig, load_config

log = logging.getLogger(__name__)

DEMO_AMI_SECRET = "demo-" + secrets.token_hex(8)
# Fixed and printed at start: a demo on loopback, never a deployment.
DEMO_PASSWORD = "callwright-demo"


def demo_config(path: Path | None, *, port: int | None) -> Config:
    base = (
        load_config(path)
        if path is not None
        else Config(ami=AmiConfig(secret=Secret(DEMO_AMI_SECRET)))
    )
    server = ServerConfig(host="127.0.0.1", port=port if port is not None else base.server.port)
    store = base.store if base.store.url else StoreConfig(data_dir=Path("data") / "demo")
    token = base.api.token if base.api.token else Secret(secrets.token_urlsafe(16))
    # A key for this run only: restarting the demo logs everyone out.
    signing_key = base.api.signing_key or Secret(secrets.token_urlsafe(32))
    # The simulator is the PBX: Callwright reads MixMonitor files from its
    # monitor/ folder. Without a config file, calls are recorded (policy all).
    recordings = dataclasses.replace(
        base.recordings,
        enabled=base.recordings.enabled or path is None,
        dir=base.recordings.dir if path is not None else store.data_dir / "recordings",
        spool_dir=store.data_dir / "pbx-spool" / "monitor",
    )
    return dataclasses.replace(
        base,
        server=server,
        store=store,
        recordings=recordings,
        ami=dataclasses.replace(base.ami, host="127.0.0.1", port=1, secret=Secret(DEMO_AMI_SECRET)),
        api=dataclasses.replace(base.api, token=token, signing_key=signing_key),
    )


async def run_demo(config: Config) -> None:
    from callwright.cli import _wait_for_signal
    from callwright.runtime import Runtime
    from crm.demo_data import seed_demo
    from sim.load import CallLoad
    from sim.pbx import AmiUser, PbxSimulator
    from store.migrate import upgrade

    sim = PbxSimulator(
        users={config.ami.username: AmiUser(secret=DEMO_AMI_SECRET)},
        agent_devices=("1001", "1002", "1003"),
        answer_delay=1.0,
        spool_dir=str(config.recordings.spool_dir.parent),
    )
    await sim.start()
    config = dataclasses.replace(config, ami=dataclasses.replace(config.ami, port=sim.port))
    runtime = Runtime(config)
    # The demo agents exist before routing starts, so the router knows them.
    await upgrade(config.store.effective_url)
    await seed_demo(runtime.engine)
    for agent in await runtime.agents.list():
        if not await runtime.agents.has_password(agent.id):
            await runtime.agents.set_password(agent.id, DEMO_PASSWORD)
    await runtime.start()
    assert runtime.routing is not None
    for agent in await runtime.agents.list():
        if agent.role == "agent":
            # Signed in and auto-accepting: calls reach their phones unattended.
            await runtime.routing.set_agent_state(str(agent.id), "available")
    numbers = ["+15550100001", "+15550100002", "+15550100003", "+15550100004", "+15559990000"]
    load = CallLoad(
        sim,
        rate_per_s=1.0 / config.demo.call_interval,
        hold_seconds=config.demo.hold_seconds,
        numbers=numbers,
    )
    load.start()
    token = config.api.token.reveal()
    print(f"Callwright demo running at {runtime.url}", flush=True)
    print(f"  PBX simulator (AMI) on 127.0.0.1:{sim.port}", flush=True)
    print(f"  API token for /api/: {token}", flush=True)
    print(f"  try: curl -H 'Authorization: Bearer {token}' {runtime.url}/api/calls", flush=True)
    print(f"  live calls page: {runtime.url}/#token={token}", flush=True)
    logins = ", ".join(f"{a.username} ({a.role})" for a in await runtime.agents.list())
    print(f"  log in as {logins} with the demo password {DEMO_PASSWORD!r}", flush=True)
    print(
        "    (a fixed password for this demo only; set real ones before any other use)", flush=True
    )
    try:
        await _wait_for_signal()
    finally:
        await load.stop()
        await runtime.stop()
        await sim.stop()
