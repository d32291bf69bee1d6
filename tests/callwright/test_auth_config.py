"""[api] signing_key and session_seconds; no signing key, no server (the demo
makes its own)."""

from __future__ import annotations

from pathlib import Path

import pytest

from callwright.cli import main
from callwright.config import ApiConfig, Config, ConfigError, Secret, parse_config
from callwright.demo import DEMO_PASSWORD, demo_config
from callwright.runtime import Runtime

KEY = "k" * 32


def test_the_signing_key_comes_from_the_named_variable_and_never_shows() -> None:
    config = parse_config(
        {
            "ami": {"secret": "s"},
            "api": {"signing_key_env": "CW_SIGNING", "session_seconds": 3600},
        },
        env={"CW_SIGNING": KEY},
    )

    assert config.api.signing_key.reveal() == KEY
    assert config.api.session_seconds == 3600
    assert KEY not in repr(config)


@pytest.mark.parametrize(
    ("api", "message"),
    [
        (
            {"signing_key": "too-short"},
            "api.signing_key: expected at least 32 random characters, got 9",
        ),
        ({"session_seconds": 10}, "api.session_seconds: expected a number 60-604800, got 10"),
        ({"signing_kee": KEY}, "api.signing_kee: unknown key"),
    ],
)
def test_bad_api_settings_are_one_line_errors(api: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"ami": {"secret": "s"}, "api": api}, env={})
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_the_server_refuses_to_start_without_a_signing_key() -> None:
    config = Config(ami=Config().ami, api=ApiConfig(token=Secret("tok")))

    with pytest.raises(ConfigError, match=r"api\.signing_key"):
        Runtime(config)


def test_serve_without_a_signing_key_exits_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[ami]\nsecret = "s"\n[store]\ndata_dir = "data"\n')

    assert main(["serve", "--config", str(path)]) == 2

    err = capsys.readouterr().err.strip()
    assert err.startswith("callwright: api.signing_key: expected a secret")
    assert "\n" not in err


def test_the_demo_makes_a_signing_key_and_has_a_long_enough_demo_password() -> None:
    first = demo_config(None, port=0)
    second = demo_config(None, port=0)

    assert len(first.api.signing_key.reveal()) >= 32
    assert first.api.signing_key != second.api.signing_key
    assert len(DEMO_PASSWORD) >= 10
