"""The [recordings] section: defaults, per-queue policies, the key from the environment,
and bad values named in one line without showing a secret."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from callwright.config import ConfigError, RecordingPolicy, load_config, parse_config

ROOT = Path(__file__).resolve().parents[2]
BASE: dict[str, Any] = {"ami": {"secret": "x"}}


def parse(recordings: dict[str, Any], env: dict[str, str] | None = None) -> Any:
    data = {**BASE, "recordings": recordings}
    return parse_config(data, env=env or {}, base_dir=Path("/srv/cw")).recordings


def test_defaults_keep_files_under_the_data_directory_unencrypted() -> None:
    config = parse({})

    assert not config.enabled
    assert config.dir == Path("/srv/cw/data/recordings")
    assert config.spool_dir == Path("/srv/cw/data/recordings-spool")
    assert config.key_bytes() is None
    assert (config.playback_seconds, config.agent_may_play) == (300, False)
    assert config.policy_for("support") == RecordingPolicy("all", 100, None)


def test_the_shipped_config_records_billing_for_90_days() -> None:
    config = load_config(ROOT / "config.toml", env={}).recordings

    assert config.enabled
    assert config.retention_days("billing") == 90
    assert config.retention_days("support") is None
    assert config.retention_days(None) is None


def test_queue_policies_override_the_default() -> None:
    config = parse(
        {
            "default": {"record": "none"},
            "queues": {
                "support": {"record": "percent", "percent": 25, "retention_days": 30},
            },
        }
    )

    assert config.policy_for("support") == RecordingPolicy("percent", 25, 30)
    assert config.policy_for("billing") == RecordingPolicy("none", 100, None)


def test_the_key_comes_from_the_environment_first() -> None:
    raw = os.urandom(32)
    config = parse(
        {"encryption_key_env": "CW_KEY", "encryption_key": "00" * 32}, {"CW_KEY": raw.hex()}
    )

    assert config.key_bytes() == raw
    assert raw.hex() not in repr(config)


@pytest.mark.parametrize(
    ("recordings", "message"),
    [
        ({"enabled": "yes"}, "recordings.enabled: expected true or false"),
        ({"playback_seconds": 0}, "recordings.playback_seconds: expected an integer 10-86400"),
        ({"queues": {"nope": {}}}, "recordings.queues.nope: expected one of the routing queues"),
        ({"queues": {"support": {"record": "some"}}}, "recordings.queues.support.record"),
        ({"default": {"retention_days": 0}}, "recordings.default.retention_days"),
        ({"default": {"percent": 50}}, 'percent: only with record = "percent"'),
        ({"default": {"colour": 1}}, "recordings.default.colour: unknown key"),
        ({"spool_dir": "recordings"}, "recordings.spool_dir: expected a directory other"),
        ({"bogus": 1}, "recordings.bogus: unknown key"),
    ],
)
def test_bad_values_name_the_key(recordings: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=r"^config\.toml: ") as caught:
        parse(recordings)
    assert message in str(caught.value)


def test_a_bad_key_is_refused_without_showing_it() -> None:
    secret = "not-a-real-key-but-secret-text"
    with pytest.raises(ConfigError, match=r"encryption_key: expected a 32-byte") as e:
        parse({"encryption_key": secret})
    assert secret not in str(e.value)
