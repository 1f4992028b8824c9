"""Migrations and models agree, and every revision goes up and down, on this run's database."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine, make_url
from sqlmodel import SQLModel

import pds.models  # noqa: F401
from pds import migrate
from pds.db import make_engine
from tests.conftest import postgres_url


@pytest.fixture
def blank_engine(tmp_path: Path) -> Iterator[Engine]:
    """An empty database of this run's kind: a new SQLite file, or a new PostgreSQL database."""
    base = postgres_url()
    if base is None:
        engine = make_engine(f"sqlite:///{tmp_path / 'blank.db'}")
        yield engine
        engine.dispose()
        return
    name = f"pds_mig_{uuid.uuid4().hex[:12]}"
    admin = make_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(make_url(base).set(database=name).render_as_string(hide_password=False))
    yield engine
    engine.dispose()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


def _drift(engine: Engine) -> list:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(context, SQLModel.metadata)


def test_models_and_migrations_agree(blank_engine: Engine) -> None:
    migrate.upgrade(blank_engine)
    assert _drift(blank_engine) == []
    assert migrate.current(blank_engine) == migrate.head()


def test_a_model_change_without_a_migration_would_be_caught(blank_engine: Engine) -> None:
    """The drift check can fail: an empty database differs from the models."""
    assert {d[0] for d in _drift(blank_engine)} == {"add_table", "add_index"}


def test_every_revision_goes_down_and_up_again(blank_engine: Engine) -> None:
    script = ScriptDirectory.from_config(migrate.alembic_config())
    revisions = [r.revision for r in script.walk_revisions()]  # newest first
    migrate.upgrade(blank_engine)
    for revision in revisions:
        migrate.downgrade(blank_engine, "-1")
        assert migrate.current(blank_engine) != revision
    assert set(inspect(blank_engine).get_table_names()) <= {"alembic_version"}
    migrate.upgrade(blank_engine)
    assert _drift(blank_engine) == []
