"""``callwright demo``: the server, the PBX simulator, SQLite and demo data.

The simulator listens on a free loopback port and speaks real AMI; Callwright
connects to it exactly as it would to Asterisk. Simulated customers (some of
them known to the CRM) call in every ``demo.call_interval`` seconds, wait at
the holding point, and are routed to the demo agents Alice and Bob (signed in,
auto-accepting: their simulated phones answer), and hang up after
``demo.hold_seconds``.

Callers go through the sample IVR flow (flows/support.toml) over FastAGI, as
on a real Asterisk: the simulator's dialplan runs AGI() against Callwright's
FastAGI server (a free loopback port), the simulated callers press keys
(English, then billing, support or the operator; unknown callers type an
account number; when the line is closed they ask for a callback), so offers
carry the IVR's queue, priority and collected data, and the pop shows the
customer the IVR found. When a caller's ``demo.hold_seconds`` are over while
talking to an agent, the agent hangs up and the caller answers the post-call
survey (a 3 to 5). With ``--config``, the flows of that file are used.

The demo agents (alice, bob: agents; carol: supervisor) log in with the fixed
``DEMO_PASSWORD``, printed at start; session tokens are signed with a key
generated for the run.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from callwright.config import (
    DEFAULT_QUEUES,
    AmiConfig,
    Config,
    IvrConfig,
    RoutingConfig,
    Secret,
    ServerConfig,
    StoreConfig,
    load_config,
)
from ivr import Flow, load_flow, validate_flow
from ivr.model import HoursNode
from routing.model import QueueConfig

log = logging.getLogger(__name__)

DEMO_AMI_SECRET = "demo-" + secrets.token_hex(8)
# Fixed and printed at start: a demo on loopback, never a deployment.
DEMO_PASSWORD = "callwright-demo"
SAMPLE_FLOW = Path(__file__).resolve().parents[1] / "flows" / "support.toml"
# The sample flow routes to billing too (config.toml has the same queue).
DEMO_BILLING = QueueConfig(
    id="billing",
    name="Billing",
    target='"billing" in agent.skills',
    service_level_seconds=20.0,
    reservation_timeout_seconds=15.0,
    wrap_up_seconds=10.0,
)
UNKNOWN_CALLER = "+15559990000"  # not in the demo CRM: types an account number


def _demo_ivr(base: Config, path: Path | None) -> tuple[RoutingConfig, IvrConfig]:
    """The routing and IVR of the demo: a config file's own, else the support
    and billing queues with the sample flow; FastAGI on a free loopback port."""
    routing, ivr = base.routing, base.ivr
    if path is None:
        routing = dataclasses.replace(routing, queues=(*DEFAULT_QUEUES, DEMO_BILLING))
        flow = load_flow(SAMPLE_FLOW)
        validate_flow(flow, [q.id for q in routing.queues])
        ivr = dataclasses.replace(ivr, flow_files=(SAMPLE_FLOW,), flows={flow.name: flow})
    return routing, dataclasses.replace(ivr, agi_host="127.0.0.1", agi_port=0)


def _is_open(flow: Flow, now: datetime) -> bool:
    hours = [n for n in flow.nodes.values() if isinstance(n, HoursNode)]
    return all(n.schedule.status(now) == "open" for n in hours)


def ivr_keys(flow: Flow, rng: random.Random) -> Callable[[str], str]:
    """What a simulated caller presses in the sample flow: English, then a
    menu choice (an account number first when unknown), or a callback request
    when the line is closed."""

    def keys(number: str) -> str:
        if not _is_open(flow, datetime.now(UTC)):
            return "12"  # English; closed: call me back
        choice = rng.choice("1120")  # billing, support (twice as likely), operator
        account = "0000001#" if number == UNKNOWN_CALLER and choice != "0" else ""
        return "1" + choice + account

    return keys


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
    routing, ivr = _demo_ivr(base, path)
    return dataclasses.replace(
        base,
        routing=routing,
        ivr=ivr,
        server=server,
        store=store,
        recordings=recordings,
        ami=dataclasses.replace(base.ami, host="127.0.0.1", port=1, secret=Secret(DEMO_AMI_SECRET)),
        api=dataclasses.replace(base.api, token=token, signing_key=signing_key),
    )


async def run_demo(config: Config) -> None:
    from callwright.cli import _wait_for_signal, start_memory_policy
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
    keys: Callable[[str], str] | None = None
    survey: Callable[[str], str] | None = None
    if runtime.agi is not None and config.ivr.flows:
        # The simulator's dialplan reaches Callwright's FastAGI server.
        name = "support" if "support" in config.ivr.flows else next(iter(config.ivr.flows))
        sim.pbx.agi_url = f"{runtime.agi.url}/{name}"
        rng = random.Random()
        if name == "support":
            keys = ivr_keys(config.ivr.flows[name], rng)
        survey = lambda _number: rng.choice("345")  # noqa: E731
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
        keys=keys,
        survey_keys=survey,
    )
    load.start()
    memory = start_memory_policy(config)
    token = config.api.token.reveal()
    print(f"Callwright demo running at {runtime.url}", flush=True)
    print(f"  PBX simulator (AMI) on 127.0.0.1:{sim.port}", flush=True)
    if runtime.agi is not None:
        print(f"  IVR (FastAGI) at {sim.pbx.agi_url}", flush=True)
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
        memory.cancel()
        await load.stop()
        await runtime.stop()
        await sim.stop()
