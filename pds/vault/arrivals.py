"""What arrived in a citizen's vault since a moment: counts per category and the newest few of each."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pds.errors import ValidationError
from pds.vault.models import CATEGORIES, Record

NEWEST_KEPT = 3  # how many of each category's arrivals a summary names


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
