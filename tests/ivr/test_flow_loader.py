"""Flow files refused value by value: each message names the flow, the node and
the key; and the IVR section of config.toml refusing a bad flow at start."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from callwright.cli import main
from callwright.config import ConfigError, load_config
from ivr import FlowError, load_flow, parse_flow

ROOT = Path(__file__).resolve().parents[2]

HEAD = """
[flow]
name = "line"
start = "s"
language = "en"
languages = { en = "en-GB", fr = "fr-FR" }
timezone = "Europe/Paris"
"""
OK_MENU = """
[nodes.s]
kind = "menu"
prompt = { en = "One.", fr = "Un." }
choices = { 1 = "end" }
failure = "end"
[nodes.end]
kind = "hangup"
"""


def load(text: str) -> str:
    with pytest.raises(FlowError) as info:
        parse_flow(tomllib.loads(text))
    return str(info.value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ('kind = "menu"', 'kind = "menus"'),
            "flow line, node s: kind: expected one of 'say', 'menu', 'collect'",
        ),
        (
            ("failure = ", "retry = 1\nfailure = "),
            "flow line, node s: retry: unknown key (known keys: choices, failure, invalid, kind",
        ),
        (
            ('fr = "Un." }', 'de = "Eins." }'),
            "flow line, node s: prompt: no text for language 'fr'",
        ),
        (
            ('fr = "Un." }', 'fr = "Un.\\r\\nAction: Hangup" }'),
            "flow line, node s: prompt.fr: expected a text of 1-2000 characters without control",
        ),
        (
            ('fr = "Un." }', 'fr = "Un.", sound = "../../etc/passwd" }'),
            "flow line, node s: prompt.sound: expected an Asterisk sound name",
        ),
        (
            ("failure = ", "retries = 11\nfailure = "),
            "flow line, node s: retries: expected an integer 0-10, got 11",
        ),
        (
            ("failure = ", "retries = -1\nfailure = "),
            "flow line, node s: retries: expected an integer 0-10, got -1",
        ),
        (
            ("failure = ", "timeout = 0\nfailure = "),
            "flow line, node s: timeout: expected a number 1-60, got 0",
        ),
        (
            ('{ 1 = "end" }', '{ 12 = "end" }'),
            "flow line, node s: choices.12: expected a single key of 0123456789*#",
        ),
        (
            ('{ 1 = "end" }', '{ a = "end" }'),
            "flow line, node s: choices.a: expected a single key of 0123456789*#",
        ),
        (('{ 1 = "end" }', "{}"), "flow line, node s: choices: expected a table of key = node"),
        (
            ('failure = "end"', ""),
            "flow line, node s: failure: missing (expected a node id",
        ),
        (
            ("failure = ", 'var = "caller_id"\nfailure = '),
            "flow line, node s: var: 'caller_id' is set by the interpreter on every task",
        ),
    ],
)
def test_bad_menu_values_are_refused_naming_node_and_key(
    change: tuple[str, str], message: str
) -> None:
    old, new = change
    assert old in OK_MENU
    assert load(HEAD + OK_MENU.replace(old, new, 1)).startswith(message)


def node(body: str) -> str:
    return f'{HEAD}\n[nodes.s]\n{body}\n[nodes.end]\nkind = "hangup"\n'


P = 'prompt = { en = "x", fr = "x" }'


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("", "flow line, node s: kind: missing (expected one of say, menu"),
        (
            f'kind = "collect"\n{P}\nvar = "n"\nmin_digits = 9\nmax_digits = 4\n'
            'next = "end"\nfailure = "end"',
            "flow line, node s: min_digits: expected at most max_digits (4), got 9",
        ),
        (
            f'kind = "collect"\n{P}\nvar = "n"\nmax_digits = 0\nnext = "end"\nfailure = "end"',
            "flow line, node s: max_digits: expected an integer 1-32, got 0",
        ),
        (
            f'kind = "collect"\n{P}\nvar = "n"\nformat = "date"\nmax_digits = 6\n'
            'next = "end"\nfailure = "end"',
            "flow line, node s: max_digits: expected an integer 8-8, got 6",
        ),
        (
            f'kind = "collect"\n{P}\nvar = "1n"\nnext = "end"\nfailure = "end"',
            "flow line, node s: var: expected an attribute name",
        ),
        (
            f'kind = "collect"\n{P}\nvar = "n"\nfinish_on_key = "5"\nnext = "end"\nfailure = "end"',
            "flow line, node s: finish_on_key: expected one of '#', '*', ''",
        ),
        (
            f'kind = "survey"\n{P}\nscale = 10\nnext = "end"\nfailure = "end"',
            "flow line, node s: scale: expected an integer 2-9, got 10",
        ),
        (
            'kind = "branch"\ncases = [{ when = "agent.skills.vip", next = "end" }]\n'
            'otherwise = "end"',
            "flow line, node s: cases[0].when: a branch reads only task.*",
        ),
        (
            'kind = "branch"\ncases = [{ when = "task.priority >", next = "end" }]\n'
            'otherwise = "end"',
            "flow line, node s: cases[0].when: expected a value after '>' at column 16",
        ),
        (
            'kind = "branch"\ncases = [{ when = "task.vip", next = "end" }]\notherwise = "end"',
            "flow line, node s: cases[0].when: unknown attribute 'task.vip'",
        ),
        (
            'kind = "hours"\ntimezone = "Mars/Olympus"\nweek = []\nopen = "end"\nclosed = "end"',
            "flow line, node s: timezone: expected an IANA time zone",
        ),
        (
            'kind = "hours"\nweek = ["mon-fri 18:00-08:00"]\nopen = "end"\nclosed = "end"',
            "flow line, node s: week[0]: '18:00-08:00' is not a range within one day",
        ),
        (
            'kind = "hours"\nweek = ["mon-fry 08:00-18:00"]\nopen = "end"\nclosed = "end"',
            "flow line, node s: week[0]: 'mon-fry' is not a day or a range of days",
        ),
        (
            'kind = "hours"\nweek = ["weekdays"]\nopen = "end"\nclosed = "end"',
            "flow line, node s: week[0]: expected a rule such as 'mon-fri 08:00-18:00'",
        ),
        (
            'kind = "hours"\nweek = []\nholidays = ["25/12"]\nopen = "end"\nclosed = "end"',
            "flow line, node s: holidays[0]: expected a date such as 2026-12-25, got '25/12'",
        ),
        ('kind = "set"\nnext = "end"', "flow line, node s: sets nothing"),
        (
            'kind = "set"\nlanguage = "de"\nnext = "end"',
            "flow line, node s: language: expected one of the flow's languages (en, fr), got 'de'",
        ),
        (
            'kind = "set"\nskills = { billing = 11 }\nnext = "end"',
            "flow line, node s: skills.billing: expected a skill level 1-10, got 11",
        ),
        (
            'kind = "set"\nattributes = { x = nan }\nnext = "end"',
            "flow line, node s: attributes.x: expected a string, a number or true/false",
        ),
        (
            'kind = "transfer"\nnumber = "call-me"',
            "flow line, node s: number: expected a phone number",
        ),
        (
            'kind = "lookup"\nby = "account_number"\nfound = "end"\nnot_found = "end"',
            "flow line, node s: var: missing (expected an attribute name)",
        ),
        (
            'kind = "lookup"\nby = "email"\nfound = "end"\nnot_found = "end"',
            "flow line, node s: by: expected 'caller_id' or 'account_number', got 'email'",
        ),
        (
            'kind = "voicemail"\nqueue = "support"\nprompt = "only one language"',
            "flow line, node s: prompt: expected a table of texts by language (en, fr), got a "
            "string",
        ),
    ],
)
def test_bad_node_values_are_refused_naming_node_and_key(body: str, message: str) -> None:
    assert load(node(body)).startswith(message)


@pytest.mark.parametrize(
    ("head", "message"),
    [
        ('name = "line"\nlanguage = "en"\ntimezone = "UTC"', "flow line: start: missing"),
        ('name = "a b"\nstart = "s"', "name: expected a flow name (letters, digits, - and _)"),
        (
            'name = "line"\nstart = "s"\nlanguage = "fr"\ntimezone = "UTC"\n'
            'languages = { en = "en-US" }',
            "flow line: language: 'fr' is not one of languages (en)",
        ),
        (
            'name = "line"\nstart = "s"\nlanguage = "en"\ntimezone = "UTC"\nmax_steps = 1',
            "flow line: max_steps: expected an integer 5-1000, got 1",
        ),
    ],
)
def test_bad_flow_heads_are_refused(head: str, message: str) -> None:
    text = f'[flow]\n{head}\n[nodes.s]\nkind = "hangup"\n'
    assert message in load(text)


def test_unreadable_and_non_toml_files_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(FlowError, match=r"missing\.toml: cannot read the flow file"):
        load_flow(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[flow\n")
    with pytest.raises(FlowError, match=r"bad\.toml: not valid TOML: .*line 1"):
        load_flow(bad)


# -- config.toml [ivr] -------------------------------------------------------------

CONFIG = """
[ami]
secret = "s"
[api]
signing_key = "0123456789abcdef0123456789abcdef"
[ivr]
flows = ["flows/line.toml"]
"""


def write_setup(tmp_path: Path, flow_text: str) -> Path:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "line.toml").write_text(flow_text)
    config = tmp_path / "config.toml"
    config.write_text(CONFIG)
    return config


def test_the_shipped_config_loads_the_sample_flows() -> None:
    config = load_config(ROOT / "config.toml", env={})
    assert config.ivr.flow_files == (
        ROOT / "flows" / "support.toml",
        ROOT / "flows" / "payment.toml",
    )
    assert set(config.ivr.flows) == {"support", "payment"}
    assert config.ivr.flows["support"].survey == "survey"
    assert config.ivr.flows["payment"].survey is None


def test_a_flow_routing_to_an_unknown_queue_stops_the_config(tmp_path: Path) -> None:
    text = HEAD + '[nodes.s]\nkind = "queue"\nqueue = "sales"\n'
    config = write_setup(tmp_path, text)

    with pytest.raises(ConfigError) as info:
        load_config(config, env={})

    assert str(info.value) == (
        f"{config}: ivr.flows[0] (flows/line.toml): flow line, node s: queue: unknown queue "
        "'sales' (configured: support)"
    )


def test_serve_exits_2_with_one_line_naming_the_flow_and_node(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = HEAD + OK_MENU.replace('choices = { 1 = "end" }', 'choices = { 1 = "ned" }')
    config = write_setup(tmp_path, text)

    assert main(["serve", "--config", str(config)]) == 2

    err = capsys.readouterr().err.strip()
    assert err == (
        f"callwright: {config}: ivr.flows[0] (flows/line.toml): flow line, node s: "
        "choices.1: names the node 'ned', which does not exist"
    )


def test_a_missing_flow_file_and_a_bad_flows_key_are_refused(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(CONFIG)
    with pytest.raises(ConfigError, match=r"ivr.flows\[0\] \(flows/line.toml\): .*cannot read"):
        load_config(config, env={})
    config.write_text(CONFIG.replace('flows = ["flows/line.toml"]', 'flows = "x.toml"'))
    with pytest.raises(ConfigError, match=r"ivr.flows: expected a list of flow file paths"):
        load_config(config, env={})
