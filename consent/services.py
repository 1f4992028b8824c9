"""Grants: create, narrow, revoke, expire, and the live check every read goes through.

Every change is appended to the ledger in the same transaction as the change itself.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import fields

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from consent import events
from consent.models import Grant, LiveGrant, OAuthToken
from pds.db import utcnow
from pds.errors import NotFound, ValidationError
from pds.vault.models import CATEGORIES

MAX_GRANT_DAYS = 366  # a citizen renews a grant at least yearly
DEFAULT_GRANT_DAYS = 90


_T, _G = OAuthToken.__table__.c, Grant.__table__.c  # type: ignore[attr-defined]
# The read check's one query, built once: building it per read cost more than running it.
_TOKEN_AND_GRANT = (
    select(_T.revoked_at, *(_G[f.name] for f in fields(LiveGrant)))
    .select_from(OAuthToken.__table__)  # type: ignore[attr-defined]
    .join(Grant.__table__, _G.id == _T.grant_id)  # type: ignore[attr-defined]
    .where(_T.jti == bindparam("jti"), _G.id == bindparam("grant_id"))
)


class GrantNotLive(Exception):
    """The grant behind a token was revoked, has expired, or never covered this."""


class TokenRevoked(Exception):
    """The token is unknown here, or was revoked."""


class GrantService:
    def __init__(self, session: Session) -> None:
        self.session = session

    def create(
        self,
        *,
        citizen_id: uuid.UUID,
        client_id: str,
        categories: Sequence[str],
        scope: str,
        purpose: str,
        ends_at: dt.datetime,
        records_from: dt.date | None = None,
        records_until: dt.date | None = None,
        actor: str,
        staff_id: uuid.UUID | None = None,
        resource_types: Sequence[str] = (),
        emergency: bool = False,
    ) -> Grant:
        cats = _check_categories(categories)
        now = utcnow()
        if ends_at <= now or ends_at > now + dt.timedelta(days=MAX_GRANT_DAYS):
            raise ValidationError(f"must be after now and within {MAX_GRANT_DAYS} days", field="ends_at")
        if records_from and records_until and records_from > records_until:
            raise ValidationError("must not be after records_until", field="records_from")
        grant = Grant(
            citizen_id=citizen_id,
            client_id=client_id,
            categories=",".join(cats),
            scope=scope,
            purpose=purpose,
            starts_at=now,
            ends_at=ends_at,
            records_from=records_from,
            records_until=records_until,
            staff_id=staff_id,
            resource_types=",".join(resource_types),
            emergency=emergency,
        )
        self.session.add(grant)
        self.session.flush()
        events.append_event(
            self.session,
            events.GRANT_CREATED,
            actor=actor,
            citizen_id=citizen_id,
            grant_id=grant.id,
            details=_describe(grant),
        )
        return grant

    def get(self, grant_id: uuid.UUID) -> Grant:
        grant = self.session.get(Grant, grant_id)
        if grant is None:
            raise NotFound(f"no grant {grant_id}", field="grant_id")
        return grant

    def for_citizen(self, citizen_id: uuid.UUID) -> list[Grant]:
        return list(
            self.session.scalars(
                select(Grant).where(Grant.citizen_id == citizen_id).order_by(Grant.created_at.desc())
            )
        )

    def live_covering(self, citizen_id: uuid.UUID, client_id: str, categories: Sequence[str]) -> Grant | None:
        """A live grant to this client that already covers every category asked for."""
        now = utcnow()
        for grant in self.session.scalars(
            select(Grant).where(
                Grant.citizen_id == citizen_id, Grant.client_id == client_id, Grant.status == "active"
            )
        ):
            if grant.is_live(now) and set(categories) <= set(grant.category_list):
                return grant
        return None

    def narrow(
        self,
        grant_id: uuid.UUID,
        *,
        citizen_id: uuid.UUID,
        categories: Sequence[str] | None = None,
        ends_at: dt.datetime | None = None,
    ) -> Grant:
        """Take categories away or end sooner; a grant never widens (that needs a new consent)."""
        grant = self._own_live(grant_id, citizen_id)
        before = _describe(grant)
        if categories is not None:
            cats = _check_categories(categories)
            if not set(cats) <= set(grant.category_list):
                raise ValidationError("a grant can only be narrowed, not widened", field="categories")
            grant.categories = ",".join(cats)
        if ends_at is not None:
            if not utcnow() < ends_at <= grant.ends_at:
                raise ValidationError("must be between now and the current end", field="ends_at")
            grant.ends_at = ends_at
        grant.updated_at = utcnow()
        events.append_event(
            self.session,
            events.GRANT_NARROWED,
            actor=f"citizen:{citizen_id}",
            citizen_id=citizen_id,
            grant_id=grant.id,
            details={"before": before, "after": _describe(grant)},
        )
        return grant

    def revoke(self, grant_id: uuid.UUID, *, citizen_id: uuid.UUID, actor: str | None = None) -> Grant:
        """Revoke a grant and every token it carries; the next read fails."""
        grant = self._own_live(grant_id, citizen_id)
        now = utcnow()
        grant.status, grant.revoked_at, grant.updated_at = "revoked", now, now
        self._revoke_tokens(grant.id, now)
        events.append_event(
            self.session,
            events.GRANT_REVOKED,
            actor=actor or f"citizen:{citizen_id}",
            citizen_id=citizen_id,
            grant_id=grant.id,
            details=_describe(grant),
        )
        return grant

    def expire_due(self, now: dt.datetime | None = None, *, grant_id: uuid.UUID | None = None) -> int:
        """Mark grants past their end as expired (each in the ledger). Returns how many."""
        now = now or utcnow()
        stmt = select(Grant).where(Grant.status == "active", Grant.ends_at <= now)
        if grant_id is not None:
            stmt = stmt.where(Grant.id == grant_id)
        due = self.session.scalars(stmt).all()
        for grant in due:
            grant.status, grant.updated_at = "expired", now
            self._revoke_tokens(grant.id, now)
            events.append_event(
                self.session,
                events.GRANT_EXPIRED,
                actor="pds",
                citizen_id=grant.citizen_id,
                grant_id=grant.id,
                details=_describe(grant),
            )
        return len(due)

    def check_for_read(
        self, *, jti: str, grant_id: uuid.UUID, citizen_id: uuid.UUID, client_id: str
    ) -> LiveGrant:
        """What every read must hold: the token is not revoked, and its grant is live now and is this
        citizen's grant to this client. One query, as every read pays for it."""
        row = self.session.execute(_TOKEN_AND_GRANT, {"jti": jti, "grant_id": grant_id}).first()
        if row is None or row[0] is not None:
            raise TokenRevoked(jti)
        grant = LiveGrant(*row[1:])
        if grant.citizen_id != citizen_id or grant.client_id != client_id or not grant.is_live(utcnow()):
            raise GrantNotLive(str(grant_id))
        return grant

    def _own_live(self, grant_id: uuid.UUID, citizen_id: uuid.UUID) -> Grant:
        grant = self.get(grant_id)
        if grant.citizen_id != citizen_id:
            raise NotFound(f"no grant {grant_id}", field="grant_id")
        if grant.status != "active":
            raise ValidationError(f"the grant is already {grant.status}", field="grant_id")
        return grant

    def _revoke_tokens(self, grant_id: uuid.UUID, now: dt.datetime) -> None:
        self.session.execute(
            update(OAuthToken)
            .where(OAuthToken.grant_id == grant_id, OAuthToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )


def _check_categories(categories: Sequence[str]) -> list[str]:
    """Known categories in a stable order. None at all is allowed: an app may only ask who you are."""
    cats = [c for c in CATEGORIES if c in set(categories)]
    if len(cats) != len(set(categories)):
        raise ValidationError(f"must be one or more of {', '.join(CATEGORIES)}", field="categories")
    return cats


def _describe(grant: Grant) -> dict[str, object]:
    return {
        "client_id": grant.client_id,
        "categories": grant.category_list,
        "purpose": grant.purpose,
        "starts_at": grant.starts_at.isoformat(),
        "ends_at": grant.ends_at.isoformat(),
        "records_from": grant.records_from.isoformat() if grant.records_from else None,
        "records_until": grant.records_until.isoformat() if grant.records_until else None,
        "status": grant.status,
        **({"resource_types": grant.resource_type_list} if grant.resource_types else {}),
        **({"emergency": True} if grant.emergency else {}),
    }
