"""What arrived in a citizen's vault since a moment: counts per category and the newest few of each (the
"new since you last looked" summary), and each arrival in order after a position (live updates). The index
(citizen_id, received_at, id) answers both without reading the citizen's other records."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from pds.errors import ValidationError
from pds.vault.models import CATEGORIES, Record

NEWEST_KEPT = 3  # how many of each category's arrivals a summary names
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_NO_RECORD = uuid.UUID(int=0)  # sorts before every record id
_CURSOR = re.compile(r"(\d{1,19})(?:\.([0-9a-f]{32}))?")


@dataclass
class Arrivals:
    """Per category: how many records arrived (new, or a new version), and the ids of the newest."""

    counts: dict[str, int] = field(default_factory=dict)
    newest: dict[str, list[uuid.UUID]] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def arrived_since(
    session: Session, citizen_id: uuid.UUID, since: dt.datetime | None, *, keep: int = NEWEST_KEPT
) -> Arrivals:
    """Records received after `since` (every record if None), newest arrival first."""
    if since is not None and since.tzinfo is None:
        raise ValidationError("must carry a time zone", field="since")
    mine = [Record.citizen_id == citizen_id]
    if since is not None:
        mine.append(Record.received_at > since)
    found = Arrivals()
    for category, count in session.execute(
        select(Record.category, func.count()).where(*mine).group_by(Record.category)
    ):
        found.counts[category] = int(count)
    for category in CATEGORIES:
        if found.counts.get(category):
            found.newest[category] = list(
                session.scalars(
                    select(Record.id)
                    .where(*mine, Record.category == category)
                    .order_by(Record.received_at.desc(), Record.id.desc())
                    .limit(keep)
                )
            )
    return found


# -- each arrival, in order after a position (live updates) --------------------------------------------


@dataclass(frozen=True, order=True)
class Cursor:
    """A place in a citizen's arrivals: everything received at or before `at`, up to `record_id`."""

    at: dt.datetime
    record_id: uuid.UUID = _NO_RECORD

    def __str__(self) -> str:
        return f"{(self.at - _EPOCH) // dt.timedelta(microseconds=1)}.{self.record_id.hex}"

    @classmethod
    def parse(cls, value: str | None) -> Cursor | None:
        """None for anything malformed: a stream then starts from now, as if it had no position."""
        match = _CURSOR.fullmatch((value or "").strip())
        if match is None:
            return None
        try:
            at = _EPOCH + dt.timedelta(microseconds=int(match.group(1)))
        except OverflowError:
            return None
        return cls(at, uuid.UUID(hex=match.group(2)) if match.group(2) else _NO_RECORD)


@dataclass(frozen=True)
class Arrival:
    """A record that arrived, or a new version of one: which, whose, and when. Never its content."""

    record_id: uuid.UUID
    citizen_id: uuid.UUID
    category: str
    version: int
    received_at: dt.datetime

    @property
    def key(self) -> tuple[uuid.UUID, int, dt.datetime]:
        return (self.record_id, self.version, self.received_at)

    @property
    def cursor(self) -> Cursor:
        return Cursor(self.received_at, self.record_id)


_COLUMNS = (Record.id, Record.citizen_id, Record.category, Record.version, Record.received_at)


def arrivals_since(session: Session, citizens: Iterable[uuid.UUID], floor: dt.datetime) -> list[Arrival]:
    """Arrivals received after `floor` for these citizens, oldest first (the citizen index narrows it)."""
    rows = session.execute(
        select(*_COLUMNS)
        .where(Record.citizen_id.in_(list(citizens)), Record.received_at > floor)
        .order_by(Record.received_at, Record.id)
    )
    return [Arrival(*row) for row in rows]


def arrivals_after(session: Session, citizen_id: uuid.UUID, cursor: Cursor, limit: int) -> list[Arrival]:
    """The newest `limit` of one citizen's arrivals after `cursor`, oldest first."""
    after = or_(
        Record.received_at > cursor.at,
        and_(Record.received_at == cursor.at, Record.id > cursor.record_id),
    )
    rows = session.execute(
        select(*_COLUMNS)
        .where(Record.citizen_id == citizen_id, after)
        .order_by(Record.received_at.desc(), Record.id.desc())
        .limit(limit)
    )
    return [Arrival(*row) for row in reversed(rows.all())]
