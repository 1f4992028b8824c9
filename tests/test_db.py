"""pds.db.UTCDateTime on SQLite writes and reads exactly the text SQLAlchemy's own DATETIME does."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from sqlalchemy import DateTime
from sqlalchemy.dialects import sqlite

from pds.db import UTCDateTime

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
