"""Settings: config.toml, PDS_* overrides, and one clear line naming a bad key."""

from __future__ import annotations

from pathlib import Path

import pytest

from pds.settings import SettingsError, load_settings
from tests.conftest import CONFIG


def test_repository_config_loads_with_every_setting() -> None:
    s = load_settings(CONFIG, environ={})
    assert s.server.port == 5000
    assert s.guardians.end_age == 16 and s.guardians.review_age == 13
    assert s.database.is_sqlite


def test_relative_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "conf" / "pds.toml"
    config.parent.mkdir()
    config.write_text(CONFIG.read_text())
    s = load_settings(config, environ={})
    assert s.database.url == f"sqlite:///{tmp_path / 'conf' / 'var' / 'pds.db'}"
    assert s.keys.dir == str(tmp_path / "conf" / "var" / "keys")


def test_pds_config_names_the_file(tmp_path: Path) -> None:
    config = tmp_path / "other.toml"
    config.write_text(CONFIG.read_text().replace("port = 5000", "port = 6001"))
    assert load_settings(environ={"PDS_CONFIG": str(config)}).server.port == 6001


def test_environment_overrides_the_file() -> None:
    s = load_settings(
        CONFIG,
        environ={
            "PDS_DATABASE_URL": "postgresql+psycopg://pds@db.internal:5432/pds",
            "PDS_SERVER_ISSUER": "https://pds.example.org",
            "PDS_GUARDIANS_END_AGE": "18",
        },
    )
    assert s.database.url == "postgresql+psycopg://pds@db.internal:5432/pds"
    assert s.server.public_url == "https://pds.example.org"
    assert s.guardians.end_age == 18


def test_issuer_defaults_to_the_listening_address() -> None:
    assert load_settings(CONFIG, environ={}).server.public_url == "http://127.0.0.1:5000"


@pytest.mark.parametrize(
    ("environ", "key"),
    [
        ({"PDS_SERVER_PORT": "eighty"}, "server.port"),
        ({"PDS_SERVER_PORT": "70000"}, "server.port"),
        ({"PDS_DATABASE_URL": "mysql://x"}, "database.url"),
        ({"PDS_DATABASE_URL": "not a url"}, "database.url"),
        ({"PDS_KEYS_PROVIDER": "vault"}, "keys.provider"),
        ({"PDS_GUARDIANS_REVIEW_AGE": "17"}, "guardians.review_age"),
        ({"PDS_LOG_LEVEL": "LOUD"}, "log.level"),
        ({"PDS_SERVER_ISSUER": "ftp://x"}, "server.issuer"),
    ],
)
def test_a_wrong_setting_names_its_key(environ: dict[str, str], key: str) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(CONFIG, environ=environ)
    assert err.value.key == key
    assert key in str(err.value) and "\n" not in str(err.value)


def test_a_missing_setting_names_its_key(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(CONFIG.read_text().replace('url = "sqlite:///var/pds.db"', ""))
    with pytest.raises(SettingsError, match=r"database\.url: missing"):
        load_settings(config, environ={})


def test_an_unknown_setting_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(CONFIG.read_text().replace("port = 5000", "port = 5000\nprot = 1"))
    with pytest.raises(SettingsError, match=r"server\.prot: unknown"):
        load_settings(config, environ={})


def test_a_missing_config_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="not found"):
        load_settings(tmp_path / "nope.toml", environ={})


def test_every_setting_has_a_comment() -> None:
    for line in CONFIG.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            assert "#" in line, f"setting without a comment: {line}"
