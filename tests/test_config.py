"""Configuration: the example loads, the environment overrides, bad input fails naming the field."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from pydantic import BaseModel

from bot.cli import main
from bot.config import load_settings
from bot.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "deploy" / "config.example.toml"


def test_example_config_loads_and_documents_every_option() -> None:
    settings = load_settings(EXAMPLE, {})
    assert settings.server.url == "https://chat.example.org"
    assert settings.http.port == 8787
    text = EXAMPLE.read_text()

    # every option of every section is mentioned (commented or set) in the example
    def documented(name: str, section: BaseModel) -> None:
        assert f"[{name}]" in text, f"[{name}] is missing from the example config"
        for key in type(section).model_fields:
            value = getattr(section, key)
            if isinstance(value, BaseModel):  # a sub-table: [protections.flood]
                documented(f"{name}.{key}", value)
            else:
                assert f"{key} =" in text, f"{name}.{key} is not documented in the example config"

    for section_name, section in settings:
        documented(section_name, section)


def test_environment_overrides_file(tmp_path: Path) -> None:
    settings = load_settings(
        EXAMPLE,
        {
            "RCMOD_SERVER_URL": "http://127.0.0.1:3000/",
            "RCMOD_WORDLISTS": "a.txt:lists",
            "RCMOD_MODERATORS": "mod1, @mod2",
            "RCMOD_HTTP_PORT": "9100",
            "RCMOD_DATA_DIR": str(tmp_path),
        },
    )
    assert settings.server.url == "http://127.0.0.1:3000"
    assert settings.moderation.moderators == ["mod1", "mod2"]
    assert settings.http.port == 9100
    assert settings.storage.data_dir == tmp_path
    # relative paths are relative to the config file
    assert settings.moderation.wordlists == [EXAMPLE.parent / "a.txt", EXAMPLE.parent / "lists"]


@pytest.mark.parametrize(
    ("toml", "env", "field"),
    [
        ("[server]\nurl = 'ftp://x'\n", {}, "server.url"),
        ("[http]\nport = 70000\n", {}, "http.port"),
        ("[http]\nprot = 1\n", {}, "http.prot"),
        ("[moderation]\nautojoin = 'maybe'\n", {}, "moderation.autojoin"),
        ("[server]\nurl = 'http://x'\n", {"RCMOD_HTTP_PORT": "eighty"}, "http.port"),
        ("not toml at all [", {}, "not valid TOML"),
    ],
)
def test_bad_config_names_the_field(tmp_path: Path, toml: str, env: dict[str, str], field: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as info:
        load_settings(path, env)
    assert field in str(info.value)


@pytest.mark.parametrize(
    ("env", "field"),
    [
        ({"RCMOD_SERVER_URL": "http://x"}, "server.auth_token"),
        ({"RCMOD_SERVER_URL": "http://x", "RCMOD_USER_ID": "u"}, "server.auth_token"),
        ({"RCMOD_SERVER_URL": "http://x", "RCMOD_AUTH_TOKEN": "t0ps3cret"}, "server.user_id"),
        ({"RCMOD_SERVER_URL": "http://x", "RCMOD_USERNAME": "bot"}, "server.password"),
        ({"RCMOD_SERVER_URL": "http://x", "RCMOD_PASSWORD": "t0ps3cret"}, "server.username"),
    ],
)
def test_missing_secret_is_a_config_error_without_the_secret(env: dict[str, str], field: str) -> None:
    settings = load_settings(None, env)
    with pytest.raises(ConfigError) as info:
        settings.credentials()
    assert field in str(info.value)
    assert "t0ps3cret" not in str(info.value)


def test_secret_never_in_repr_or_validation_error(tmp_path: Path) -> None:
    settings = load_settings(
        None, {"RCMOD_SERVER_URL": "http://x", "RCMOD_USER_ID": "u", "RCMOD_AUTH_TOKEN": "t0ps3cret"}
    )
    assert "t0ps3cret" not in repr(settings)
    assert "t0ps3cret" not in repr(settings.credentials())
    path = tmp_path / "c.toml"
    path.write_text("[server]\nauth_token = ['t0ps3cret']\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path, {})
    assert "server.auth_token" in str(info.value)
    assert "t0ps3cret" not in str(info.value)


def test_cli_exits_2_on_bad_config_before_connecting(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("RCMOD_SERVER_URL", "http://127.0.0.1:9")  # discard port: nothing listens
    monkeypatch.setenv("RCMOD_USER_ID", "bot")
    monkeypatch.delenv("RCMOD_AUTH_TOKEN", raising=False)
    monkeypatch.setenv("RCMOD_DATA_DIR", str(tmp_path))
    caplog.set_level(logging.DEBUG)
    assert main(["run"]) == 2
    err = capsys.readouterr().err
    assert "server.auth_token" in err
    assert not (tmp_path / "rcmod.sqlite3").exists()  # failed before opening anything


def test_cli_missing_config_file_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--config", "/nonexistent/rcmod.toml"]) == 2
    assert "--config" in capsys.readouterr().err


def test_cli_unknown_command_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["frobnicate"])
    assert info.value.code == 2


def test_the_store_url_comes_from_the_environment_and_stays_secret(tmp_path: Path) -> None:
    url = "postgresql://rcmod:s3cret@db.example/rcmod"
    settings = load_settings(None, {"RCMOD_STORAGE_URL": url})
    assert settings.storage.url is not None and settings.storage.url.get_secret_value() == url
    assert "s3cret" not in repr(settings)
    assert load_settings(None, {}).storage.url is None  # absent: SQLite in storage.data_dir


def test_a_store_url_that_is_not_postgresql_is_refused_without_echoing_it() -> None:
    with pytest.raises(ConfigError, match=r"storage\.url: .*postgresql://") as caught:
        load_settings(None, {"RCMOD_STORAGE_URL": "mysql://u:s3cret@h/db"})
    assert "s3cret" not in str(caught.value)
