"""Database engine, sessions, and the column types every model shares."""

from __future__ import annotations

import datetime as dt
import os
import random
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import DateTime, event
from sqlalchemy.engine import Engine, create_engine
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.types import TypeDecorator
from sqlmodel import SQLModel

# Stable constraint names, so migrations can name what they alter on every database.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SQLITE_BUSY_TIMEOUT_MS = 30_000  # writers queue rather than fail when another process holds the lock
# Waiting for the write lock at BEGIN IMMEDIATE: first pause and longest pause between tries. SQLite's
# own busy handler sleeps 1, 2, 5, 10, 15, 20, 25 ... 100 ms between tries, so with four processes each
# committing a read-log batch every millisecond or two, a waiter could sleep through dozens of them
# (p99 of a read 320 ms). A try costs microseconds.
SQLITE_LOCK_PAUSE_FIRST_S = 0.00005
SQLITE_LOCK_PAUSE_MAX_S = 0.001


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware datetimes, stored in UTC; SQLite keeps no zone, so it is put back on read."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is dt.UTC:  # the common case, and astimezone() is not free per row
            return value
        if value.tzinfo is None:
            raise ValueError("naive datetime: pds stores only timezone-aware times")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)

    # SQLite stores the time as text. SQLAlchemy writes it with a %-format of seven named fields and reads
    # it back with a regular expression; the same text formatted by position and read by
    # datetime.fromisoformat takes half the time, per value of every row (tests/test_db.py holds both to
    # SQLAlchemy's).
    def bind_processor(self, dialect: Any) -> Callable[[Any], Any] | None:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)
        return _sqlite_text

    def result_processor(self, dialect: Any, coltype: Any) -> Callable[[Any], Any] | None:
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)
        fallback = super().result_processor(dialect, coltype)
        assert fallback is not None

        def read(value: Any) -> dt.datetime | None:
            if value is None:
                return None
            try:
                when = dt.datetime.fromisoformat(value)
            except (TypeError, ValueError):  # text some other writer left: SQLAlchemy's own reading
                return fallback(value)  # type: ignore[no-any-return]
            return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)

        return read


def _sqlite_text(value: dt.datetime | None) -> str | None:
    """SQLAlchemy's SQLite DATETIME text ('2026-01-31 09:05:00.000000') of the time in UTC."""
    if value is None:
        return None
    if value.tzinfo is not dt.UTC:
        if value.tzinfo is None:
            raise ValueError("naive datetime: pds stores only timezone-aware times")
        value = value.astimezone(dt.UTC)
    return _SQLITE_TEXT % (
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
        value.microsecond,
    )


_SQLITE_TEXT = "%04d-%02d-%02d %02d:%02d:%02d.%06d"  # SQLAlchemy's storage format, by position


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine with the pragmas pds relies on: SQLite in WAL with foreign keys enforced."""
    if url.startswith("sqlite"):
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        # Take the write lock when the transaction starts. A deferred transaction that reads and then
        # writes (every API read appends to the ledger) fails at once with SQLITE_BUSY if another
        # connection committed in between; an immediate one waits its turn (busy_timeout) instead.
        # Pure reads opt out with the execution option sqlite_write=False (Runtime.read_sessions).
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    # Plan every statement for its actual values. A generic plan is made once a statement has run
    # a few times and then kept until the table is next analysed: made while `record` was small it
    # scans the whole table for every batch, and ingest slowed fifty-fold as the table grew.
    kwargs.setdefault("connect_args", {"options": "-c plan_cache_mode=force_custom_plan"})
    return create_engine(url, **kwargs)


def _sqlite_begin(conn: Any) -> None:
    if not conn.get_execution_options().get("sqlite_write", True):
        conn.exec_driver_sql("BEGIN")
        return
    raw = conn.connection.dbapi_connection
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    pause = SQLITE_LOCK_PAUSE_FIRST_S
    raw.execute("PRAGMA busy_timeout=0")  # for these tries only: we wait here, in short steps
    try:
        while time.monotonic() < deadline:
            try:
                raw.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode & 0xFF not in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                    break  # not the lock: the last try below raises it as SQLAlchemy does
            time.sleep(pause * (0.5 + random.random()))  # noqa: S311 (jitter, not a secret)
            pause = min(pause * 2, SQLITE_LOCK_PAUSE_MAX_S)
        conn.exec_driver_sql("BEGIN IMMEDIATE")  # the last try, raised as SQLAlchemy's OperationalError
    finally:
        raw.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # autocommit at the driver; SQLAlchemy issues BEGIN itself
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cur.close()


WAL_TIDY_BYTES = 32 * 1024 * 1024  # a SQLite WAL larger than this is checkpointed back to empty
WAL_TIDY_WAIT_MS = 250  # how long that waits for readers; new writers wait meanwhile


def tidy_sqlite_wal(engine: Engine, *, above: int = WAL_TIDY_BYTES) -> bool:
    """Checkpoint a SQLite WAL larger than `above` back to empty; True if it was emptied.

    SQLite starts its WAL afresh only when a checkpoint finds no reader on an older snapshot. Several
    server processes under steady API reads nearly always have one, and the WAL grew by tens of MB a
    minute, each read slower for it. This waits at most WAL_TIDY_WAIT_MS for the readers to finish; if
    they do not, nothing is lost and the next call tries again.
    """
    if engine.dialect.name != "sqlite":
        return False
    raw = engine.raw_connection()
    try:
        files = [row[2] for row in raw.execute("PRAGMA database_list") if row[1] == "main" and row[2]]
        wal = Path(files[0] + "-wal") if files else None
        if wal is None or not wal.exists() or wal.stat().st_size <= above:
            return False
        raw.execute(f"PRAGMA busy_timeout={WAL_TIDY_WAIT_MS}")
        try:
            busy, _, _ = raw.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        finally:
            raw.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        return not busy
    finally:
        raw.close()


def session_factory(engine: Engine, info: dict[str, Any] | None = None) -> sessionmaker[Session]:
    """Sessions over engine; `info` rides on every session (the ledger finds the key provider there)."""
    return sessionmaker(engine, expire_on_commit=False, info=info or {})


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit if the block ends normally, roll back if it raises."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def uuid7() -> uuid.UUID:
    """A time-ordered UUID (RFC 9562 s5.7): new rows land at the end of the primary-key index."""
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    return uuid.UUID(int=value)


T = TypeVar("T")
RETRY_ATTEMPTS = 6
RETRY_BASE_DELAY_S = 0.02


def run_transaction(factory: sessionmaker[Session], work: Callable[[Session], T]) -> T:
    """Run work in one transaction, again from the start if it lost a race to a concurrent writer.

    A batch is all or nothing, so replaying it whole is safe; the replay sees what the winner wrote.
    """
    for attempt in range(RETRY_ATTEMPTS):
        try:
            with session_scope(factory) as session:
                return work(session)
        except (IntegrityError, OperationalError) as exc:
            if attempt == RETRY_ATTEMPTS - 1 or not _lost_race(exc):
                raise
            time.sleep(RETRY_BASE_DELAY_S * 2**attempt * (1 + random.random()))  # noqa: S311
    raise AssertionError("unreachable")


def _lost_race(exc: DBAPIError) -> bool:
    code = getattr(exc.orig, "sqlstate", None)
    if code is not None:  # PostgreSQL: unique violation, serialization failure, deadlock
        return code in ("23505", "40001", "40P01")
    message = str(exc.orig)
    return "UNIQUE constraint failed" in message or "database is locked" in message
