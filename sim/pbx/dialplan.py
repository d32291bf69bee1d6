"""Dialplans the simulator runs, as data, plus the bits of Asterisk's
expression language they use (``${VAR}``, ``${VAR:offset}``, ``${CHANNEL}``,
``${EXTEN}``, ``${UNIQUEID}``, ``${CALLERID(num|name|all)}``, ``$["a" = "b"]``).

``callwright`` is the dialplan of ``docs/asterisk/extensions.conf``; ``lab`` is
the one the transcripts in ``tests/fixtures/ami/`` were recorded with (see the
README there).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

__all__ = [
    "CALLWRIGHT",
    "DIALPLANS",
    "LAB",
    "REAL_LAB",
    "Dialplan",
    "Step",
    "agi_target",
    "evaluate",
    "pattern_matches",
]


@dataclass(frozen=True, slots=True)
class Step:
    app: str
    data: str = ""
    label: str | None = None


@dataclass(frozen=True, slots=True)
class Dialplan:
    name: str
    contexts: Mapping[str, tuple[tuple[str, tuple[Step, ...]], ...]]
    # endpoint context of PJSIP channels (pjsip.conf "context=")
    device_context: str = "callwright-outbound"
    trunk_context: str = "callwright-inbound"

    def extension(self, context: str, exten: str) -> tuple[Step, ...] | None:
        """The steps of the extension ``exten`` matches in ``context`` (an exact
        name wins over patterns, as in Asterisk)."""
        entries = self.contexts.get(context)
        if entries is None:
            return None
        for pattern, steps in entries:
            if pattern == exten:
                return steps
        for pattern, steps in entries:
            if pattern.startswith("_") and pattern_matches(pattern, exten):
                return steps
        return None

    def exists(self, context: str, exten: str, priority: int = 1) -> bool:
        steps = self.extension(context, exten)
        return steps is not None and 1 <= priority <= len(steps)

    def step(self, context: str, exten: str, priority: int) -> Step | None:
        steps = self.extension(context, exten)
        if steps is None or not 1 <= priority <= len(steps):
            return None
        return steps[priority - 1]

    def label(self, context: str, exten: str, label: str) -> int | None:
        steps = self.extension(context, exten)
        if steps is None:
            return None
        for i, step in enumerate(steps, start=1):
            if step.label == label:
                return i
        return None


_PATTERN_CHARS = {"X": "[0-9]", "Z": "[1-9]", "N": "[2-9]", ".": ".+", "!": ".*"}


def pattern_matches(pattern: str, exten: str) -> bool:
    """Asterisk extension patterns: ``_X.``, ``_+X.``, ``_age[n]t.``."""
    body = pattern[1:]
    regex = []
    i = 0
    while i < len(body):
        c = body[i]
        if c == "[":
            end = body.index("]", i)
            regex.append("[" + body[i + 1 : end] + "]")
            i = end + 1
            continue
        regex.append(_PATTERN_CHARS.get(c.upper() if c in "xzn" else c, re.escape(c)))
        i += 1
    return re.fullmatch("".join(regex), exten) is not None


_VAR = re.compile(r"\$\{([^{}]+)\}")
_EXPR = re.compile(r"\$\[([^\[\]]*)\]")


def evaluate(text: str, lookup: Callable[[str], str]) -> str:
    """Substitute ``${...}`` (innermost first) then evaluate ``$[...]``."""
    while True:
        new = _VAR.sub(lambda m: _variable(m.group(1), lookup), text)
        if new == text:
            break
        text = new
    return _EXPR.sub(lambda m: _expression(m.group(1)), text)


def _variable(expr: str, lookup: Callable[[str], str]) -> str:
    name, _, rest = expr.partition(":")
    value = lookup(name)
    if not rest:
        return value
    offset, _, length = rest.partition(":")
    try:
        start = int(offset)
    except ValueError:
        return value
    value = value[start:]
    if length:
        try:
            value = value[: int(length)]
        except ValueError:
            pass
    return value


def _expression(expr: str) -> str:
    for op in ("!=", "="):
        if op in expr:
            left, _, right = expr.partition(op)
            equal = _unquote(left) == _unquote(right)
            return "1" if equal == (op == "=") else "0"
    return _unquote(expr)


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1]
    return text


def agi_target(agi_url: str, data: str, *, inbound: bool) -> str:
    """Where a ``callwright`` AGI step connects when the simulator has an
    ``agi_url``: the inbound flow goes to ``agi_url`` itself (its path names the
    flow); any other AGI step (the post-call survey) keeps its own script on
    ``agi_url``'s host and port."""
    if inbound:
        return agi_url
    base = urlsplit(agi_url)
    step = urlsplit(data)
    return urlunsplit((base.scheme, base.netloc, step.path, step.query, ""))


def _ctx(*extens: tuple[str, tuple[Step, ...]]) -> tuple[tuple[str, tuple[Step, ...]], ...]:
    return extens


S = Step

# docs/asterisk/extensions.conf, step for step. Every context a channel is
# *sent* to (Redirect, BlindTransfer, Originate) starts with a NoOp: Asterisk
# 22 resumes a blind-transferred channel that was running Dial() at priority 2
# of the target (transcript 06-transfers.txt, "bt-1"), so priority 1 must be
# something a channel may skip. Dial's t (callee) / T (caller) options give the
# agent's leg the transfer features the Atxfer action needs.
CALLWRIGHT = Dialplan(
    name="callwright",
    contexts={
        "callwright-inbound": _ctx(
            (
                "_X.",
                (
                    S("Answer"),
                    S("Set", "CALLWRIGHT_DID=${EXTEN}"),
                    S("AGI", "agi://callwright.example:4573/support"),
                    S("Goto", "callwright-hold,s,1"),
                ),
            ),
            (
                "_+X.",
                (
                    S("Answer"),
                    S("Set", "CALLWRIGHT_DID=${EXTEN}"),
                    S("AGI", "agi://callwright.example:4573/support"),
                    S("Goto", "callwright-hold,s,1"),
                ),
            ),
        ),
        "callwright-hold": _ctx(
            (
                "s",
                (
                    S("Answer"),
                    S("MusicOnHold", "default"),
                ),
            ),
        ),
        "callwright-agent": _ctx(
            (
                "_X.",
                (
                    S("NoOp", "Ring agent ${EXTEN}"),
                    # g: the caller goes on when the agent hangs up
                    S("Dial", "PJSIP/${EXTEN},30,tg"),
                    # after a conversation: the post-call survey
                    S("GotoIf", '$["${DIALSTATUS}" = "ANSWER"]?survey'),
                    # a failed Dial returns the caller to the holding point
                    S("Goto", "callwright-hold,s,1"),
                    S("AGI", "agi://callwright.example:4573/callwright-survey", label="survey"),
                    S("Hangup"),
                ),
            ),
        ),
        "callwright-ivr-transfer": _ctx(
            (
                "_X.",
                (
                    S("NoOp", "IVR transfer to ${EXTEN}"),
                    S("Dial", "PJSIP/${EXTEN}@trunk,${CALLWRIGHT_TRANSFER_TIMEOUT}"),
                    # not connected: back to the flow's failure branch
                    S("GotoIf", '$["${DIALSTATUS}" = "ANSWER"]?done'),
                    S("AGI", "agi://callwright.example:4573/callwright-transfer-failed"),
                    S("Goto", "callwright-hold,s,1"),
                    S("Hangup", label="done"),
                ),
            ),
            (
                "_+X.",
                (
                    S("NoOp", "IVR transfer to ${EXTEN}"),
                    S("Dial", "PJSIP/${EXTEN}@trunk,${CALLWRIGHT_TRANSFER_TIMEOUT}"),
                    # not connected: back to the flow's failure branch
                    S("GotoIf", '$["${DIALSTATUS}" = "ANSWER"]?done'),
                    S("AGI", "agi://callwright.example:4573/callwright-transfer-failed"),
                    S("Goto", "callwright-hold,s,1"),
                    S("Hangup", label="done"),
                ),
            ),
        ),
        "callwright-payment": _ctx(
            (
                "s",
                (
                    # an agent's BlindTransfer lands at priority 2
                    S("NoOp", "Card payment"),
                    S("AGI", "agi://callwright.example:4573/payment"),
                    S("Goto", "callwright-hold,s,1"),
                ),
            ),
        ),
        "callwright-outbound": _ctx(
            (
                "_X.",
                (
                    S("NoOp", "Outbound call to ${EXTEN}"),
                    S("Dial", "PJSIP/${EXTEN}@trunk,60,T"),
                    S("Hangup"),
                ),
            ),
            (
                "_+X.",
                (
                    S("NoOp", "Outbound call to ${EXTEN}"),
                    S("Dial", "PJSIP/${EXTEN}@trunk,60,T"),
                    S("Hangup"),
                ),
            ),
        ),
        "callwright-onhold": _ctx(
            (
                "s",
                (
                    S("NoOp", "Customer on hold"),
                    S("MusicOnHold", "default"),
                ),
            ),
        ),
        "callwright-agent-hold": _ctx(
            (
                "s",
                (
                    S("NoOp", "Agent waiting for the held customer"),
                    S("Wait", "3600"),
                ),
            ),
        ),
    },
)

# The lab dialplan of tests/fixtures/ami/README.md, reconstructed from the
# Newexten events of the transcripts.
LAB = Dialplan(
    name="lab",
    device_context="default",
    trunk_context="inbound",
    contexts={
        "inbound": _ctx(
            (
                "100",
                (
                    S("NoOp", "Inbound call, ROUTE=${ROUTE}"),
                    S("Answer"),
                    S("Set", 'CALLERID(all)="Test Caller" <5551234>'),
                    S("GotoIf", '$["${ROUTE}" = "queue"]?queue'),
                    S("GotoIf", '$["${ROUTE}" = "agi"]?agi'),
                    S("Goto", "inbound,hold,1"),
                    S("Queue", "support", label="queue"),
                    S("AGI", "agi://127.0.0.1:4573/ivr?lang=en", label="agi"),
                ),
            ),
            (
                "102",
                (
                    S("Answer"),
                    S("Set", 'CALLERID(all)="IVR Caller" <5553000>'),
                    S("AGI", "agi://127.0.0.1:4573/ivr?lang=en"),
                    S("Hangup"),
                ),
            ),
            (
                "hold",
                (
                    S("NoOp", "Holding ${CHANNEL} for CTI router"),
                    S("Answer"),
                    S("MusicOnHold", "default,600"),
                ),
            ),
        ),
        "caller": _ctx(
            (
                "s",
                (
                    S("NoOp", "External caller leg"),
                    S("Wait", "600"),
                ),
            ),
        ),
        "connect": _ctx(
            (
                "_age[n]t.",
                (
                    S("NoOp", "Connecting ${CHANNEL} to ${EXTEN}"),
                    S("Dial", "Local/${EXTEN}@agents/n,30,tT"),
                ),
            ),
        ),
        "agents": _ctx(
            (
                "_age[n]t.",
                (
                    S("NoOp", "Agent phone ${EXTEN} auto-answer"),
                    S("Answer"),
                    S("Wait", "600"),
                ),
            ),
        ),
        "transfer": _ctx(
            (
                "_age[n]t.",
                (
                    S("NoOp", "Transfer target ${EXTEN}"),
                    S("Dial", "Local/${EXTEN}@agents/n,30,tT"),
                ),
            ),
            (
                "_2XX",
                (
                    S("NoOp", "Transfer target agent${EXTEN:1}"),
                    S("Dial", "Local/agent${EXTEN:1}@agents/n,30,tT"),
                ),
            ),
        ),
        "recording": _ctx(
            (
                "solo",
                (
                    S("Answer"),
                    S("MixMonitor", "solo-${UNIQUEID}.wav"),
                    S("Wait", "3"),
                    S("StopMixMonitor"),
                    S("Hangup"),
                ),
            ),
        ),
    },
)

# The lab of tests/fixtures/ami-real/README.md (a real Asterisk 22.10.1 driven
# by Callwright itself): docs/asterisk/extensions.conf with Local channels in
# place of PJSIP. An inbound call is ``Originate Local/<DID>@trunk`` (its ;2
# half is the trunk channel); agents' and customers' phones auto-answer.


def _phone(who: str) -> tuple[Step, ...]:
    return (S("NoOp", f"{who} phone ${{EXTEN}} answers"), S("Answer"), S("Wait", "3600"))


_LAB_INBOUND = (
    S("Answer"),
    S("Set", "CALLWRIGHT_DID=${EXTEN}"),
    S("NoOp", "AGI skipped in the lab"),
    S("Goto", "callwright-hold,s,1"),
)
_LAB_OUTBOUND = (
    S("NoOp", "Outbound call to ${EXTEN}"),
    S("Dial", "Local/${EXTEN}@customers/n,60,T"),
    S("Hangup"),
)
REAL_LAB = Dialplan(
    name="real-lab",
    device_context="agents",
    trunk_context="trunk",
    contexts={
        "trunk": _ctx(
            ("_X.", (S("Goto", "callwright-inbound,${EXTEN},1"),)),
            ("_+X.", (S("Goto", "callwright-inbound,${EXTEN},1"),)),
        ),
        "agents": _ctx(
            ("_X.", _phone("Agent")),
        ),
        "customers": _ctx(
            ("_X.", _phone("Customer")),
            ("_+X.", _phone("Customer")),
        ),
        "callwright-inbound": _ctx(("_X.", _LAB_INBOUND), ("_+X.", _LAB_INBOUND)),
        "callwright-hold": CALLWRIGHT.contexts["callwright-hold"],
        "callwright-agent": _ctx(
            (
                "_X.",
                (
                    S("NoOp", "Ring agent ${EXTEN}"),
                    S("Dial", "Local/${EXTEN}@agents/n,30,t"),
                    S("Hangup"),
                ),
            ),
        ),
        "callwright-outbound": _ctx(("_X.", _LAB_OUTBOUND), ("_+X.", _LAB_OUTBOUND)),
        "callwright-onhold": CALLWRIGHT.contexts["callwright-onhold"],
        "callwright-agent-hold": CALLWRIGHT.contexts["callwright-agent-hold"],
    },
)

DIALPLANS: dict[str, Dialplan] = {"callwright": CALLWRIGHT, "lab": LAB, "real-lab": REAL_LAB}
