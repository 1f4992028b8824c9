"""What the benchmarks share: a throwaway database (SQLite file or PostgreSQL database) with its own keys,
migrated and removed afterwards; progress on stderr; and the load note every report ends with."""

from __future__ import annotations

import os
import secrets
import sqlite3
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from pds import migrate
from pds.db import SQLITE_BUSY_TIMEOUT_MS
from pds.runtime import Runtime
from pds.settings import load_settings
from pds.vault.crypto import LocalKeyProvider

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "config.toml"
PG_SERVER = "postgresql://postgres@127.0.0.1:5432"
SQLITE_PRAGMAS = (  # what pds.db.make_engine sets on every SQLite connection
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
)
_STARTED = time.perf_counter()
_LOADS: list[float] = []


def log(message: str) -> None:
    _LOADS.append(os.getloadavg()[0])
    print(f"[{time.perf_counter() - _STARTED:5.0f}s] {message}", file=sys.stderr, flush=True)


def load_note() -> str:
    cpus = os.cpu_count() or 1
    peak = max(_LOADS, default=0.0)
    warning = "  OTHER WORK WAS RUNNING: rerun on a quiet machine" if peak > cpus + 3 else ""
    return f"load: 1-minute load average peaked at {peak:.1f} on {cpus} vCPU.{warning}"


@dataclass(frozen=True)
class Db:
    """One throwaway database: pds's URL for it, and how to reach it with the bare driver."""

    kind: str  # sqlite | postgres
    url: str
    keys: Path
    raw: str  # sqlite file path or psycopg conninfo

    def connect(self) -> Any:
        if self.kind == "sqlite":
            conn = sqlite3.connect(self.raw)
            for pragma in SQLITE_PRAGMAS:
                conn.execute(pragma)
            return conn
        return psycopg.connect(self.raw)

    @property
    def param(self) -> str:
        return "?" if self.kind == "sqlite" else "%s"


def open_runtime(db: Db) -> Runtime:
    environ = {**os.environ, "PDS_DATABASE_URL": db.url, "PDS_KEYS_DIR": str(db.keys)}
    return Runtime.build(load_settings(path=CONFIG, environ=environ))


@contextmanager
def database(kind: str, folder: Path, label: str, *, bench: str) -> Iterator[Db]:
    """A migrated database with its own keys and ledger signer; removed afterwards."""
    keys = folder / f"keys-{label}"
    LocalKeyProvider.create(keys)
    name = f"pds_bench_{bench}_{os.getpid()}_{label}_{secrets.token_hex(2)}".replace("-", "_")
    if kind == "sqlite":
        path = folder / f"{label}.db"
        db = Db(kind, f"sqlite:///{path}", keys, str(path))
    else:
        with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        db = Db(kind, f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}", keys, f"{PG_SERVER}/{name}")
    try:
        runtime = open_runtime(db)
        try:
            migrate.upgrade(runtime.engine)
            runtime.check()  # keys fit the database; makes the ledger's signing key
        finally:
            runtime.close()
        yield db
    finally:
        if kind == "postgres":
            with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as admin:
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def server_version(db: Db) -> str:
    if db.kind == "sqlite":
        return f"SQLite {sqlite3.sqlite_version}"
    with psycopg.connect(db.raw) as conn:
        return f"PostgreSQL {conn.execute('SHOW server_version').fetchone()[0]}"  # type: ignore[index]
