"""Alembic environment: the pds models, and the engine pds hands over (or the configured database)."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import pds.models  # noqa: F401  (registers every table on SQLModel.metadata)
from pds.db import make_engine
from pds.settings import load_settings

target_metadata = SQLModel.metadata


def run_migrations_online() -> None:
    engine = context.config.attributes.get("engine")
    if engine is None:  # run by the alembic command itself: use the configured database
        engine = make_engine(load_settings().database.url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


if context.is_offline_mode():
    raise SystemExit("pds migrations run against a live database only")
run_migrations_online()
