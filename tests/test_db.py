"""pds.db on SQLite: UTCDateTime writes and reads exactly the text SQLAlchemy's own DATETIME does, and a WAL
that grew large is emptied once no reader needs it."""

from __future__ import annotations

import datetime as dt
import random
import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy import DateTime
from sqlalchemy.dialects import sqlite

from pds.db import UTCDateTime, make_engine, tidy_sqlite_wal

DIALECT = sqlite.dialect()
OURS = UTCDateTime().dialect_impl(DIALECT)
THEIRS = DateTime(timezone=True).dialect_impl(DIALECT)
WRITE, READ = OURS.bind_processor(DIALECT), OURS.result_processor(DIALECT, None)
SQLA_WRITE, SQLA_READ = THEIRS.bind_processor(DIALECT), THEIRS.result_processor(DIALECT, None)


def _times() -> list[dt.datetime]:
    rng = random.Random(5)
    zones = [dt.UTC, dt.timezone(dt.timedelta(hours=5, minutes=30)), dt.timezone(dt.timedelta(hours=-8))]
    edges = [
        dt.datetime(1, 1, 1, tzinfo=dt.UTC),
        dt.datetime(999, 12, 31, 23, 59, 59, 999_999, tzinfo=dt.UTC),
        dt.datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=dt.UTC),
        dt.datetime(2026, 3, 29, 1, 0, tzinfo=dt.UTC),  # microsecond 0: still six digits
    ]
    spread = [
        dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
        + dt.timedelta(microseconds=rng.randrange(4_000_000_000_000_000))
        for _ in range(500)
    ]
    return edges + [t.astimezone(rng.choice(zones)) for t in spread]


@pytest.mark.parametrize("when", _times()[:40] + _times()[-5:])
def test_a_time_is_written_as_sqlalchemy_writes_it_in_utc(when: dt.datetime) -> None:
    assert WRITE(when) == SQLA_WRITE(when.astimezone(dt.UTC))


def test_every_time_is_written_and_read_back_as_sqlalchemy_does() -> None:
    for when in _times():
        text = WRITE(when)
        assert text == SQLA_WRITE(when.astimezone(dt.UTC))
        back = READ(text)
        assert back == when and back.tzinfo is dt.UTC
        assert back == SQLA_READ(text).replace(tzinfo=dt.UTC)


def test_a_naive_time_is_refused_and_none_stays_none() -> None:
    with pytest.raises(ValueError, match="naive datetime"):
        WRITE(dt.datetime(2026, 1, 1))
    assert WRITE(None) is None and READ(None) is None


@pytest.mark.parametrize(
    "text",
    ["2026-01-31 09:05:00", "2026-01-31", "2026-01-31 09:05:00.123456"],
    ids=["no fraction", "a date", "ours"],
)
def test_text_other_writers_left_is_read_as_sqlalchemy_reads_it(text: str) -> None:
    assert READ(text) == SQLA_READ(text).replace(tzinfo=dt.UTC)


def test_a_large_wal_is_emptied_once_no_reader_holds_an_old_snapshot(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'tidy.db'}")
    wal = tmp_path / "tidy.db-wal"
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE blob (id INTEGER PRIMARY KEY, body BLOB)")
    reader = sqlite3.connect(tmp_path / "tidy.db", isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM blob").fetchone()  # holds the snapshot from before the writes
    for _ in range(4):
        with engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO blob (body) VALUES (randomblob(500000))")
    assert wal.stat().st_size > 1_000_000

    assert not tidy_sqlite_wal(engine, above=10_000_000)  # small enough: left alone
    started = time.monotonic()
    assert not tidy_sqlite_wal(engine, above=1_000_000)  # the reader still needs the old frames
    assert time.monotonic() - started < 5  # it waited a moment for the reader, then gave up
    assert wal.stat().st_size > 1_000_000

    reader.execute("COMMIT")
    reader.close()
    assert tidy_sqlite_wal(engine, above=1_000_000)
    assert wal.stat().st_size == 0
    with engine.connect() as conn:  # nothing lost, and the WAL fills again from the start
        assert conn.exec_driver_sql("SELECT count(*) FROM blob").scalar_one() == 4
    engine.dispose()


def test_tidying_a_wal_is_for_sqlite_only(db_url: str, on_postgres: bool) -> None:
    if not on_postgres:
        pytest.skip("needs PDS_TEST_DATABASE_URL to name a PostgreSQL database")
    engine = make_engine(db_url)
    try:
        assert not tidy_sqlite_wal(engine, above=0)
    finally:
        engine.dispose()
