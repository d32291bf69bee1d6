from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from callwright.config import ConfigError, Secret, load_config, parse_config

ROOT = Path(__file__).resolve().parents[2]


def test_the_shipped_sample_config_loads() -> None:
    config = load_config(ROOT / "config.toml", env={"CALLWRIGHT_AMI_SECRET": "from-env"})
    assert config.ami.secret.reveal() == "from-env"
    assert config.ami.port == 5038
    assert config.store.effective_url.startswith("sqlite+aiosqlite:///")
    assert config.store.data_dir == ROOT / "data"


def test_the_payment_line_is_on_by_default_and_can_be_turned_off() -> None:
    config = load_config(ROOT / "config.toml", env={})
    assert config.pbx.payment_context == "callwright-payment"
    off = parse_config({"ami": {"secret": "s"}, "pbx": {"payment_context": ""}}, env={})
    assert off.pbx.payment_context == ""


def test_the_file_secret_is_used_when_the_variable_is_unset() -> None:
    config = load_config(ROOT / "config.toml", env={})
    assert config.ami.secret.reveal() == "change-me"


def test_secrets_never_show_in_repr() -> None:
    config = parse_config({"ami": {"secret": "hunter2"}, "api": {"token": "tok-123"}}, env={})
    text = repr(config) + str(config)
    assert "hunter2" not in text and "tok-123" not in text
    assert repr(Secret("x")) == "Secret('***')"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"ami": {"secret": "s", "port": "abc"}},
            "ami.port: expected an integer 1-65535, got 'abc'",
        ),
        (
            {"ami": {"secret": "s", "port": 70000}},
            "ami.port: expected an integer 1-65535, got 70000",
        ),
        ({"ami": {"secret": "s", "hots": "x"}}, "ami.hots: unknown key"),
        ({"ami": {"secret": "s"}, "amy": {}}, "amy: unknown section"),
        ({"ami": {}}, "ami.secret: expected the AMI secret"),
        (
            {"ami": {"secret_env": "NOPE_NOT_SET"}},
            "ami.secret: expected the AMI secret; the environment variable NOPE_NOT_SET is not set",
        ),
        ({"ami": {"secret": "s", "auth": "sha1"}}, "ami.auth: expected one of 'md5', 'plain'"),
        ({"ami": {"secret": "s"}, "store": {"url": "mysql://x"}}, "store.url: expected a sqlite"),
        ({"ami": {"secret": "s"}, "server": "oops"}, "[server]: expected a table"),
        ({"ami": {"secret": "s", "ping_timeout": True}}, "ami.ping_timeout: expected a number"),
        (
            {"ami": {"secret": "s", "reconnect_min": 5, "reconnect_max": 1}},
            "ami.reconnect_max: expected a number >= ami.reconnect_min",
        ),
        ({"ami": {"secret": "s"}, "pbx": {"payment_context": 4}}, "pbx.payment_context: expected"),
        (
            {"ami": {"secret": "s"}, "email": {"outbound": {"max_attempts": 0}}},
            "email.outbound.max_attempts: expected an integer 1-1000, got 0",
        ),
    ],
)
def test_bad_values_name_the_key_and_what_was_expected(data: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(data, env={})
    text = str(info.value)
    assert message in text
    assert "\n" not in text


def test_a_secret_never_appears_in_a_config_error() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"ami": {"secret": "hunter2", "port": "x"}}, env={})
    assert "hunter2" not in str(info.value)


def test_the_store_url_can_come_from_the_environment() -> None:
    url = "postgresql+asyncpg://cw@db/cw"
    config = parse_config({"ami": {"secret": "s"}}, env={"CALLWRIGHT_STORE_URL": url})
    assert config.store.effective_url == url


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "callwright", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin"},
    )


def test_serve_with_a_bad_config_exits_nonzero_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "config.toml"
    bad.write_text('[ami]\nsecret = "hunter2"\nport = "five"\n')
    result = run_cli("serve", "--config", str(bad))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [f"callwright: {bad}: ami.port: expected an integer 1-65535, got 'five'"]
    assert "hunter2" not in result.stderr + result.stdout


def test_serve_with_a_missing_file_says_so(tmp_path: Path) -> None:
    result = run_cli("serve", "--config", str(tmp_path / "nope.toml"))
    assert result.returncode == 2
    assert "cannot read the configuration file" in result.stderr


def test_invalid_toml_is_reported_with_its_position(tmp_path: Path) -> None:
    bad = tmp_path / "config.toml"
    bad.write_text("[ami\n")
    result = run_cli("db", "upgrade", "--config", str(bad))
    assert result.returncode == 2
    assert "not valid TOML" in result.stderr and "line 1" in result.stderr


@pytest.mark.parametrize(
    ("routing", "message"),
    [
        (
            {"queues": [{"id": "billing", "target": "agent.skills.billing >= "}]},
            "routing.queues: queue 'billing': expression: expected a value after '>='",
        ),
        (
            {"queues": [{"id": "b", "target": "true", "steps": [{"after": 9, "overflow": "x"}]}]},
            "routing.queues: queue 'b': step 1 (overflow after 9 s): unknown queue 'x'",
        ),
        (
            {"queues": [{"id": "b", "target": "true", "steps": [{"after": 9}]}]},
            "routing.queues[b].steps[0]: expected exactly one of widen, overflow, callback",
        ),
        (
            {"queues": [{"id": "b", "target": "true"}], "voice_queue": "sales"},
            "routing.voice_queue: expected one of the queues (b), got 'sales'",
        ),
        ({"queues": [{"id": "b"}]}, "routing.queues[b].target: expected a non-empty string"),
        (
            {"queues": [{"id": "b", "target": "true", "strategy": "random"}]},
            "routing.queues[b].strategy: expected one of 'longest_idle'",
        ),
    ],
)
def test_bad_queues_are_refused_naming_the_queue(routing: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"ami": {"secret": "s"}, "routing": routing}, env={})
    assert message in str(info.value)


def test_queues_with_steps_load() -> None:
    config = parse_config(
        {
            "ami": {"secret": "s"},
            "routing": {
                "voice_queue": "billing",
                "queues": [
                    {
                        "id": "billing",
                        "target": '"billing" in agent.skills and agent.skills.billing >= 5',
                        "steps": [
                            {"after": 30, "widen": "agent.skills.billing >= 3"},
                            {"after": 120, "overflow": "general"},
                        ],
                    },
                    {
                        "id": "general",
                        "target": "true",
                        "steps": [{"after": 300, "callback": True}],
                    },
                ],
            },
        },
        env={},
    )
    billing = config.routing.queues[0]
    assert [type(s).__name__ for s in billing.steps] == ["Widen", "Overflow"]
    assert config.routing.voice_queue == "billing" and config.routing.email_queue == "billing"
