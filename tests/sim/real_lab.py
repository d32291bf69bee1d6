"""Replaying Callwright's own AMI sessions against a real Asterisk 22.10.1
(tests/fixtures/ami-real/, and the probes in tests/sim/fixtures/) on the
simulator with the same lab dialplan ("real-lab"). The lab user that played
the customers is not recorded: ``replay_real`` starts the inbound call it
originated once the recorded connection's resync (CoreShowChannels) is done."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from pathlib import Path

from cti.ami.messages import AmiEvent, AmiMessage
from sim.pbx import PbxSimulator
from sim.pbx.server import DEFAULT_USERS
from sim.replay import Replay, ReplayResult

TESTS = Path(__file__).resolve().parents[1]
REAL = TESTS / "fixtures" / "ami-real"
PROBES = Path(__file__).resolve().parent / "fixtures"
SECRETS = {"callwright": "callwright-secret"}

_ORIGINATE = re.compile(
    r"<<< Event: OriginateResponse\n(?:<<< .*\n)*?<<< ActionID: (?P<aid>\S+)\n"
    r"(?:<<< .*\n)*?<<< Channel: Local/(?P<did>[^@]+)@trunk-.*\n"
    r"(?:<<< .*\n)*?<<< CallerIDNum: (?P<num>.*)\n<<< CallerIDName: (?P<name>.*)\n"
)


def real_lab_simulator() -> PbxSimulator:
    return PbxSimulator(dialplan="real-lab", users=DEFAULT_USERS, login_failure_delay=0.0)


def lab_user(sim: PbxSimulator, path: Path) -> dict[str, Callable[[], Awaitable[None]]]:
    """What the lab user did, as ``Replay.run(after=...)`` hooks: an inbound
    call (``Originate Local/<DID>@trunk Application=Wait Data=3600
    CallerID=...``, Async, its own ActionID, as recorded in the
    OriginateResponse the callwright user saw) right after the resync."""
    found = _ORIGINATE.search(path.read_text())
    if found is None:
        return {}

    async def start() -> None:
        sim.pbx.spawn(
            sim.pbx.originate(
                tech="Local",
                resource=f"{found['did']}@trunk",
                context="",
                exten="",
                priority=1,
                application="Wait",
                app_data="3600",
                cid_num=found["num"],
                cid_name=found["name"],
                variables=[],
                timeout=30.0,
                ids=(None, None),
                action_id=found["aid"],
                emit_response=True,
            )
        )

    return {"cw1-3": start}


async def replay_real(sim: PbxSimulator, path: Path) -> ReplayResult:
    """Replay a recorded session; an inbound call the lab user placed came
    in right after the resync."""
    hooks = lab_user(sim, path)
    return await Replay(sim, secrets=SECRETS).run(path, after=hooks)


_PHONE_WAIT = re.compile(
    r"^\S+ events about Local/\w+@agents-[0-9a-f]{8};2 #\d+: (missing|unexpected) Newexten "
    r"[^\n]* Application=Wait$"
)


def without_phone_answer_delay(problems: list[str]) -> list[str]:
    """Drop the lab's phone-side Wait() Newexten differences: on the lab's
    Local channels (no media) Answer() waits 500 ms for a first frame, so
    that Newexten lands in a later window than on the simulator."""
    return [p for p in problems if not _PHONE_WAIT.match(p)]


def variable_problems(
    result: ReplayResult, variables: tuple[str, ...], skip: tuple[str, ...] = ()
) -> list[str]:
    """Per channel, the VarSet events of ``variables`` (name and value, in
    order) that differ between the recording and the simulator."""

    def per_channel(messages: list[AmiMessage]) -> dict[str, list[tuple[str, str]]]:
        out: dict[str, list[tuple[str, str]]] = {}
        for msg in messages:
            if isinstance(msg, AmiEvent) and msg.name == "VarSet":
                name = msg.get("Variable") or ""
                if name in variables:
                    channel = msg.get("Channel") or ""
                    out.setdefault(channel, []).append((name, msg.get("Value") or ""))
        return out

    want, got = per_channel(result.recorded[0]), per_channel(result.received[0])
    return [
        f"{channel}:\n  want {want.get(channel)}\n  got  {got.get(channel)}"
        for channel in sorted(set(want) | set(got))
        if channel not in skip and want.get(channel) != got.get(channel)
    ]
