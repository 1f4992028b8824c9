"""Guardian links: a parent acting for a child, limited by category and by the child's age."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from pds.db import utcnow
from pds.errors import Conflict, NotFound, ValidationError
from pds.settings import GuardianSettings
from pds.vault.citizens import CitizenService
from pds.vault.models import CATEGORIES, GuardianLink


@dataclass(frozen=True)
class GuardianView:
    id: uuid.UUID
    parent_id: uuid.UUID
    child_id: uuid.UUID
    child_name: str | None
    categories: tuple[str, ...]
    status: str  # active, review (the child reached review age and nobody has reviewed since), ended
    review_from: dt.date | None
    ends_on: dt.date | None
    end_reason: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "parent_id": str(self.parent_id),
            "child_id": str(self.child_id),
            "child_name": self.child_name,
            "categories": list(self.categories),
            "status": self.status,
            "review_from": self.review_from.isoformat() if self.review_from else None,
            "ends_on": self.ends_on.isoformat() if self.ends_on else None,
            "end_reason": self.end_reason,
        }


def birthday(born: dt.date, age: int) -> dt.date:
    """The day someone reaches an age; 29 February birthdays fall on 1 March in other years."""
    try:
        return born.replace(year=born.year + age)
    except ValueError:
        return dt.date(born.year + age, 3, 1)


class GuardianService:
    def __init__(self, session: Session, *, citizens: CitizenService, ages: GuardianSettings) -> None:
        self.session = session
        self.citizens = citizens
        self.ages = ages

    def link(
        self,
        parent_id: uuid.UUID,
        child_id: uuid.UUID,
        categories: list[str],
        *,
        today: dt.date | None = None,
    ) -> GuardianView:
        today = today or dt.date.today()
        if parent_id == child_id:
            raise ValidationError("a citizen cannot be their own guardian", field="child_id")
        cats = tuple(sorted(set(categories)))
        if not cats or any(c not in CATEGORIES for c in cats):
            raise ValidationError(f"must be one or more of {', '.join(CATEGORIES)}", field="categories")
        self.citizens.live(parent_id)
        self.citizens.live(child_id)
        child = self.citizens.get(child_id)
        assert child.date_of_birth is not None
        if today >= birthday(child.date_of_birth, self.ages.end_age):
            raise ValidationError(
                f"the child is {self.ages.end_age} or older: a guardian link would end at once",
                field="child_id",
            )
        existing = self.session.scalar(
            select(GuardianLink).where(GuardianLink.parent_id == parent_id, GuardianLink.child_id == child_id)
        )
        if existing is not None and existing.ended_at is None:
            raise Conflict("this parent is already linked to this child", field="child_id")
        if existing is not None:  # a link ended early (by a review, say) may be made again
            self.session.delete(existing)
            self.session.flush()
        link = GuardianLink(parent_id=parent_id, child_id=child_id, categories=",".join(cats))
        self.session.add(link)
        self.session.flush()
        return self._view(link, today)

    def of_parent(self, parent_id: uuid.UUID, *, today: dt.date | None = None) -> list[GuardianView]:
        today = today or dt.date.today()
        links = self.session.scalars(
            select(GuardianLink).where(GuardianLink.parent_id == parent_id).order_by(GuardianLink.created_at)
        )
        return [self._view(link, today) for link in links]

    def all(self, *, today: dt.date | None = None) -> list[GuardianView]:
        today = today or dt.date.today()
        links = self.session.scalars(select(GuardianLink).order_by(GuardianLink.created_at))
        return [self._view(link, today) for link in links]

    def covers(
        self, parent_id: uuid.UUID, child_id: uuid.UUID, category: str, *, today: dt.date | None = None
    ) -> bool:
        """Whether the parent may act for the child in this category today."""
        link = self.session.scalar(
            select(GuardianLink).where(GuardianLink.parent_id == parent_id, GuardianLink.child_id == child_id)
        )
        if link is None:
            return False
        view = self._view(link, today or dt.date.today())
        return view.status != "ended" and category in view.categories

    def mark_reviewed(self, link_id: uuid.UUID, *, at: dt.datetime | None = None) -> None:
        """Record that someone checked the link is still right; clears the review flag."""
        self._get(link_id).reviewed_at = at or utcnow()

    def end(self, link_id: uuid.UUID, reason: str) -> None:
        link = self._get(link_id)
        if link.ended_at is None:
            link.ended_at, link.end_reason = utcnow(), reason

    def _get(self, link_id: uuid.UUID) -> GuardianLink:
        link = self.session.get(GuardianLink, link_id)
        if link is None:
            raise NotFound(f"no guardian link {link_id}", field="link_id")
        return link

    def _view(self, link: GuardianLink, today: dt.date) -> GuardianView:
        child = self.citizens.get(link.child_id)
        review_from = ends_on = None
        status, reason = "active", link.end_reason
        if child.date_of_birth is not None:
            review_from = birthday(child.date_of_birth, self.ages.review_age)
            ends_on = birthday(child.date_of_birth, self.ages.end_age)
        if link.ended_at is not None:
            status = "ended"
        elif ends_on is not None and today >= ends_on:
            status, reason = "ended", f"child turned {self.ages.end_age}"
        elif (
            review_from is not None
            and today >= review_from
            and (link.reviewed_at is None or link.reviewed_at.date() < review_from)
        ):
            status = "review"
        return GuardianView(
            id=link.id,
            parent_id=link.parent_id,
            child_id=link.child_id,
            child_name=child.name,
            categories=tuple(link.categories.split(",")),
            status=status,
            review_from=review_from,
            ends_on=ends_on,
            end_reason=reason,
        )
