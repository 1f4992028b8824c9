"""Typed, frozen settings read from config.toml and PDS_* environment variables."""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

ENV_PREFIX = "PDS_"
CONFIG_ENV = "PDS_CONFIG"


class SettingsError(Exception):
    """A setting is missing or wrong; the message names the key."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"setting {key}: {problem}")
        self.key = key


@dataclass(frozen=True)
class ServerSettings:
    host: str
    port: int
    issuer: str
    workers: int
    threads: int

    @property
    def public_url(self) -> str:
        """The issuer if set, else the address pds listens on."""
        return (self.issuer or f"http://{self.host}:{self.port}").rstrip("/")


@dataclass(frozen=True)
class DatabaseSettings:
    url: str

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")


@dataclass(frozen=True)
class KeySettings:
    provider: str
    dir: str


@dataclass(frozen=True)
class VaultSettings:
    max_batch: int
    page_size: int
    max_page_size: int


@dataclass(frozen=True)
class GuardianSettings:
    review_age: int
    end_age: int


@dataclass(frozen=True)
class LedgerSettings:
    origin: str
    checkpoint_interval: int


@dataclass(frozen=True)
class ConnectorSettings:
    """One source system ([connectors.NAME]): its format, and where `pds connectors sync` pulls from."""

    name: str
    kind: str  # fhir | open311 | oneroster
    title: str  # how citizens see the source, e.g. "Riverside Surgery"
    url: str  # pull over HTTP from this base URL ("": not pulled over HTTP)
    folder: str  # or pull files from this drop folder ("": none)
    api_key_env: str  # the environment variable holding the pull API key, if the source needs one
    max_bytes: int  # a delivery larger than this is refused before parsing
    identifier: str  # Open311: the kind of identifier its account_id is (council_account, crime_reference)


CONNECTOR_KINDS = ("fhir", "open311", "oneroster")
CONNECTOR_DEFAULTS: dict[str, Any] = {
    "url": "",
    "folder": "",
    "api_key_env": "",
    "max_bytes": 10_000_000,
    "identifier": "",
}


@dataclass(frozen=True)
class SmtpSettings:
    host: str  # "" turns email off: messages are kept, marked as not sent
    port: int
    sender: str
    starttls: int  # 1: upgrade the connection with STARTTLS before sending
    username: str
    password_env: str  # the environment variable holding the password, if the server wants one
    interval: int  # seconds between sends by each server process


@dataclass(frozen=True)
class ProfessionalSettings:
    emergency: int  # 1: clinicians may open a health summary without consent, with a reason, for an hour

    @property
    def emergency_access(self) -> bool:
        return self.emergency == 1


@dataclass(frozen=True)
class LogSettings:
    level: str


@dataclass(frozen=True)
class Settings:
    server: ServerSettings
    database: DatabaseSettings
    keys: KeySettings
    vault: VaultSettings
    guardians: GuardianSettings
    ledger: LedgerSettings
    smtp: SmtpSettings
    professionals: ProfessionalSettings
    log: LogSettings
    config_path: Path = field(compare=False)
    connectors: dict[str, ConnectorSettings] = field(default_factory=dict, compare=False)


def ledger_origin(settings: Settings) -> str:
    """The log's name in its checkpoints: set, or the public URL without its scheme plus /ledger."""
    if settings.ledger.origin:
        return settings.ledger.origin
    return settings.server.public_url.split("://", 1)[1] + "/ledger"


_SECTIONS: dict[str, type] = {
    "server": ServerSettings,
    "database": DatabaseSettings,
    "keys": KeySettings,
    "vault": VaultSettings,
    "guardians": GuardianSettings,
    "ledger": LedgerSettings,
    "smtp": SmtpSettings,
    "professionals": ProfessionalSettings,
    "log": LogSettings,
}


def load_settings(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read the config file (PDS_CONFIG or ./config.toml), apply PDS_* overrides, validate."""
    environ = os.environ if environ is None else environ
    config_path = Path(path or environ.get(CONFIG_ENV) or "config.toml").resolve()
    raw = _read_toml(config_path)
    for section in raw:
        if section not in _SECTIONS and section != "connectors":
            raise SettingsError(section, f"unknown section in {config_path}")
    sections: dict[str, Any] = {}
    for name, cls in _SECTIONS.items():
        table = raw.get(name, {})
        if not isinstance(table, dict):
            raise SettingsError(name, "must be a table")
        known = {f.name for f in dataclasses.fields(cls)}
        for key in table:
            if key not in known:
                raise SettingsError(f"{name}.{key}", f"unknown setting in {config_path}")
        values = {}
        for f in dataclasses.fields(cls):
            key = f"{name}.{f.name}"
            env_name = f"{ENV_PREFIX}{name}_{f.name}".upper()
            if env_name in environ:
                value: Any = environ[env_name]
            elif f.name in table:
                value = table[f.name]
            else:
                raise SettingsError(key, f"missing (set it in {config_path.name} or {env_name})")
            values[f.name] = _coerce(key, value, f.type)
        sections[name] = cls(**values)
    connectors = _connectors(raw.get("connectors", {}), environ, config_path)
    settings = Settings(**sections, config_path=config_path, connectors=connectors)
    _validate(settings)
    return _resolve_paths(settings, config_path.parent)


def _connectors(raw: Any, environ: Mapping[str, str], config_path: Path) -> dict[str, ConnectorSettings]:
    """[connectors.NAME] tables; PDS_CONNECTORS_<NAME>_<KEY> overrides (NAME upper-cased, '-' as '_')."""
    if not isinstance(raw, dict):
        raise SettingsError("connectors", "must be a table of [connectors.NAME] tables")
    out = {}
    fields_ = [f for f in dataclasses.fields(ConnectorSettings) if f.name != "name"]
    for name, table in raw.items():
        where = f"connectors.{name}"
        if not isinstance(table, dict):
            raise SettingsError(where, "must be a table")
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}", name):
            raise SettingsError(where, "names are lower-case letters, digits and '-'")
        for key in table:
            if key not in {f.name for f in fields_}:
                raise SettingsError(f"{where}.{key}", f"unknown setting in {config_path}")
        values: dict[str, Any] = {"name": name}
        for f in fields_:
            env_name = f"{ENV_PREFIX}CONNECTORS_{name}_{f.name}".upper().replace("-", "_")
            if env_name in environ:
                value: Any = environ[env_name]
            elif f.name in table:
                value = table[f.name]
            elif f.name in CONNECTOR_DEFAULTS:
                value = CONNECTOR_DEFAULTS[f.name]
            else:
                raise SettingsError(
                    f"{where}.{f.name}", f"missing (set it in {config_path.name} or {env_name})"
                )
            values[f.name] = _coerce(f"{where}.{f.name}", value, f.type)
        connector = ConnectorSettings(**values)
        if connector.kind not in CONNECTOR_KINDS:
            raise SettingsError(f"{where}.kind", f"must be one of {', '.join(CONNECTOR_KINDS)}")
        if connector.url and not connector.url.startswith(("http://", "https://")):
            raise SettingsError(f"{where}.url", "must be an http(s) URL or empty")
        if connector.max_bytes < 1:
            raise SettingsError(f"{where}.max_bytes", "must be at least 1")
        folder = connector.folder
        if folder and not Path(folder).is_absolute():
            connector = dataclasses.replace(connector, folder=str(config_path.parent / folder))
        out[name] = connector
    return out


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise SettingsError(CONFIG_ENV, f"config file {path} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(CONFIG_ENV, f"{path} is not valid TOML: {exc}") from None


def _coerce(key: str, value: Any, kind: Any) -> Any:
    if kind in (int, "int"):
        if isinstance(value, bool):
            raise SettingsError(key, f"must be a whole number, not {value!r}")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise SettingsError(key, f"must be a whole number, not {value!r}") from None
    if not isinstance(value, str):
        raise SettingsError(key, f"must be text, not {value!r}")
    return value


def _validate(s: Settings) -> None:
    if not s.server.host:
        raise SettingsError("server.host", "must not be empty")
    if not 0 < s.server.port < 65536:
        raise SettingsError("server.port", f"must be between 1 and 65535, not {s.server.port}")
    if s.server.issuer and not s.server.issuer.startswith(("https://", "http://")):
        raise SettingsError("server.issuer", "must be an http(s) URL or empty")
    if s.ledger.origin and any(c.isspace() or c == "+" or ord(c) < 0x20 for c in s.ledger.origin):
        raise SettingsError("ledger.origin", "must be non-empty text without spaces or '+'")
    if s.ledger.checkpoint_interval < 1:
        interval = s.ledger.checkpoint_interval
        raise SettingsError("ledger.checkpoint_interval", f"must be at least 1, not {interval}")
    for key, value in (("server.workers", s.server.workers), ("server.threads", s.server.threads)):
        if value < 1:
            raise SettingsError(key, f"must be at least 1, not {value}")
    try:
        url = make_url(s.database.url)
    except ArgumentError:
        raise SettingsError("database.url", f"is not a database URL: {s.database.url!r}") from None
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise SettingsError("database.url", "must be a sqlite:// or postgresql+psycopg:// URL")
    if s.keys.provider not in ("local", "env"):
        raise SettingsError("keys.provider", f"must be 'local' or 'env', not {s.keys.provider!r}")
    if s.keys.provider == "local" and not s.keys.dir:
        raise SettingsError("keys.dir", "must name a folder when keys.provider is 'local'")
    for key, value in (
        ("vault.max_batch", s.vault.max_batch),
        ("vault.page_size", s.vault.page_size),
        ("vault.max_page_size", s.vault.max_page_size),
    ):
        if value < 1:
            raise SettingsError(key, f"must be at least 1, not {value}")
    if s.vault.page_size > s.vault.max_page_size:
        raise SettingsError("vault.page_size", "must not exceed vault.max_page_size")
    if not 0 < s.guardians.review_age < s.guardians.end_age:
        raise SettingsError("guardians.review_age", "must be above 0 and below guardians.end_age")
    if s.professionals.emergency not in (0, 1):
        raise SettingsError("professionals.emergency", f"must be 0 or 1, not {s.professionals.emergency}")
    if s.log.level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise SettingsError("log.level", f"must be DEBUG, INFO, WARNING or ERROR, not {s.log.level!r}")


def _resolve_paths(s: Settings, base: Path) -> Settings:
    """Relative paths in the file are relative to the file, not to the working folder."""
    url = make_url(s.database.url)
    database = s.database
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        db_path = Path(url.database)
        if not db_path.is_absolute():
            db_path = base / db_path
            database = DatabaseSettings(
                url=url.set(database=str(db_path)).render_as_string(hide_password=False)
            )
    keys = s.keys
    if keys.dir and not Path(keys.dir).is_absolute():
        keys = KeySettings(provider=keys.provider, dir=str(base / keys.dir))
    return dataclasses.replace(s, database=database, keys=keys)
