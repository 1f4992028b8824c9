"""Fixtures every test shares: a real database (SQLite, or PostgreSQL when PDS_TEST_DATABASE_URL
names one), real key files, and the vault built through its services."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

import pds.models  # noqa: F401  (all tables)
from pds import migrate
from pds.db import make_engine
from pds.runtime import Runtime
from pds.settings import Settings, load_settings
from pds.vault import NewRecord, Vault
from pds.vault.crypto import LocalKeyProvider

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "config.toml"
TEST_DB_ENV = "PDS_TEST_DATABASE_URL"


def postgres_url() -> str | None:
    url = os.environ.get(TEST_DB_ENV, "")
    return url if url.startswith("postgresql") else None


@pytest.fixture(scope="session")
def db_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = postgres_url() or f"sqlite:///{tmp_path_factory.mktemp('db') / 'pds.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    return url


@pytest.fixture
def on_postgres(db_url: str) -> bool:
    return db_url.startswith("postgresql")


@pytest.fixture
def keys_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "keys"
    LocalKeyProvider.create(folder)
    return folder


def make_settings(db_url: str, keys_dir: Path, **overrides: str) -> Settings:
    environ = {"PDS_DATABASE_URL": db_url, "PDS_KEYS_DIR": str(keys_dir), **overrides}
    return load_settings(CONFIG, environ=environ)


@pytest.fixture
def settings(db_url: str, keys_dir: Path) -> Settings:
    return make_settings(db_url, keys_dir)


def empty_database(url: str) -> None:
    """Every test starts from empty tables (the schema is migrated once per session)."""
    engine = make_engine(url)
    with engine.begin() as conn:
        if url.startswith("postgresql"):  # the ledger's tables refuse DELETE; tests reset them all the same
            conn.execute(text("SET LOCAL session_replication_role = replica"))
        for table in reversed(SQLModel.metadata.sorted_tables):
            conn.execute(table.delete())
    engine.dispose()


@pytest.fixture
def runtime(settings: Settings, db_url: str) -> Iterator[Runtime]:
    empty_database(db_url)
    rt = Runtime.build(settings)
    rt.check()
    yield rt
    rt.close()


@pytest.fixture
def vault(runtime: Runtime) -> Iterator[Vault]:
    """A vault over one open session; tests commit explicitly when they mean to."""
    with runtime.sessions() as session:
        yield runtime.open_vault(session)
        session.rollback()


@pytest.fixture
def source(runtime: Runtime) -> str:
    with runtime.vault() as v:
        v.sources.ensure("test-gp", kind="fhir", title="Test GP system")
    return "test-gp"


def add_citizen(
    runtime: Runtime, name: str = "Ada Test", nhs_number: str | None = None, **kw: str
) -> uuid.UUID:
    with runtime.vault() as v:
        return v.citizens.add(
            name=name, date_of_birth=kw.pop("date_of_birth", "1980-01-01"), nhs_number=nhs_number, **kw
        ).id


def record(
    citizen_id: uuid.UUID,
    sid: str,
    *,
    version: int = 1,
    source: str = "test-gp",
    category: str = "health",
    when: str = "2026-01-01T10:00:00+00:00",
    **payload: object,
) -> NewRecord:
    body = {"resourceType": "Observation", "id": sid, **payload}
    return NewRecord(
        citizen_id, category, "fhir:Observation", source, sid, version, dt.datetime.fromisoformat(when), body
    )


def record_count(url: str) -> int:
    engine = create_engine(make_url(url))
    with engine.connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM record")).scalar_one()
    engine.dispose()
    return int(n)
