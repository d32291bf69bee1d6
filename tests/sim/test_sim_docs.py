"""docs/asterisk/ and the simulator describe the same PBX."""

from __future__ import annotations

import re
from pathlib import Path

from sim.pbx.dialplan import CALLWRIGHT
from sim.pbx.server import DEFAULT_USERS

DOCS = Path(__file__).resolve().parents[2] / "docs" / "asterisk"


def parse_extensions(text: str) -> dict[str, list[tuple[str, list[tuple[str, str]]]]]:
    contexts: dict[str, list[tuple[str, list[tuple[str, str]]]]] = {}
    current: list[tuple[str, list[tuple[str, str]]]] = []
    for raw in text.splitlines():
        line = raw.split(";", 1)[0].strip()
        if not line:
            continue
        if line.startswith("["):
            current = contexts.setdefault(line.strip("[]"), [])
            continue
        kind, _, rest = line.partition("=>")
        if kind.strip() == "exten":
            pattern, _, step = rest.strip().partition(",")
            current.append((pattern, []))
            step = step.split(",", 1)[1]  # drop the priority
        else:
            step = rest.strip().split(",", 1)[1]
        match = re.fullmatch(r"(\w+)\((.*)\)", step.strip())
        assert match, raw
        current[-1][1].append((match.group(1), match.group(2)))
    return contexts


def test_extensions_conf_is_the_simulated_dialplan() -> None:
    documented = parse_extensions((DOCS / "extensions.conf").read_text())
    simulated = {
        context: [(pattern, [(s.app, s.data) for s in steps]) for pattern, steps in extens]
        for context, extens in CALLWRIGHT.contexts.items()
    }
    assert documented == simulated


def test_manager_conf_grants_the_simulators_default_user_classes() -> None:
    text = (DOCS / "manager.conf").read_text()
    section = text.split("[callwright]", 1)[1]
    settings = dict(
        (k.strip(), v.strip())
        for k, _, v in (line.partition("=") for line in section.splitlines())
        if k.strip() in ("read", "write") and not k.strip().startswith(";")
    )
    user = DEFAULT_USERS["callwright"]
    assert set(settings["read"].split(",")) == set(user.read)
    assert set(settings["write"].split(",")) == set(user.write)


def test_features_conf_sets_the_atxfer_code() -> None:
    text = (DOCS / "features.conf").read_text()
    assert re.search(r"^atxfer => \*2$", text, re.M)


def test_features_conf_has_no_transfer_prompt_and_a_short_digit_timeout() -> None:
    text = (DOCS / "features.conf").read_text()
    # Without the pbx-transfer sound Asterisk 22.10.1 drops every Atxfer.
    assert re.search(r"^transferannouncesound =\s*$", text, re.M)
    assert re.search(r"^transferdigittimeout = 1$", text, re.M)


def test_musiconhold_conf_defines_the_default_class_from_files() -> None:
    text = (DOCS / "musiconhold.conf").read_text()
    section = text.split("[default]", 1)[1]
    settings = {
        k.strip(): v.split(";", 1)[0].strip()
        for k, _, v in (line.partition("=") for line in section.splitlines())
        if v and not k.strip().startswith(";")
    }
    assert settings["mode"] == "files" and settings["directory"]


def test_a_failed_agent_dial_returns_the_caller_to_the_holding_point() -> None:
    documented = parse_extensions((DOCS / "extensions.conf").read_text())
    [(_, steps)] = documented["callwright-agent"]
    assert steps[0][0] == "NoOp"
    assert steps[1] == ("Dial", "PJSIP/${EXTEN},30,tg")
    assert steps[2] == ("GotoIf", '$["${DIALSTATUS}" = "ANSWER"]?survey')
    assert steps[3] == ("Goto", "callwright-hold,s,1")
