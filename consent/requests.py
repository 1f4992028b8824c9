"""A professional asks a citizen for consent; the citizen decides; the professional reads what was granted.

Also emergency access (break-glass): a clinician opens a patient's health summary without consent, for at
most an hour, giving a reason; flagged in the ledger and told to the patient at once.

Every step lands in the ledger in the transaction of the step itself.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from consent import events, scopes
from consent.models import ConsentRequest, Grant, Organisation, StaffMember
from consent.professionals import CLINICIANS, ROLE_CATEGORIES, ROLE_WORDS, grantee_id
from consent.services import MAX_GRANT_DAYS, GrantService
from pds.db import utcnow
from pds.errors import NotFound, PdsError, ValidationError
from pds.vault import Vault, crypto
from pds.vault.identifiers import normalise
from pds.vault.records import StoredRecord

REQUEST_TTL = dt.timedelta(days=30)  # a request left unanswered this long expires
EMERGENCY_TTL = dt.timedelta(hours=1)
MIN_REASON = 10  # characters: a reason, not "x"
MAX_PURPOSE = 500
MAX_READ = 500  # records one view shows
# What a GP may ask for by type; records of other kinds in the health category are not covered by a
# grant that names types.
TYPE_WORDS = {  # each in plain words, for the patient and the professional alike
    "Condition": "Problems and diagnoses",
    "MedicationStatement": "Medicines",
    "MedicationRequest": "Prescriptions",
    "AllergyIntolerance": "Allergies",
    "Observation": "Test results",
    "Immunization": "Immunisations",
    "Encounter": "Visits and appointments",
}
FHIR_TYPES = tuple(TYPE_WORDS)
NO_SUCH_REQUEST = "no request of your organisation has this id"
STATUS_WORDS = {
    "pending": "Waiting for the patient",
    "approved": "Approved",
    "approved_with_changes": "Approved with changes",
    "refused": "Refused",
    "expired": "Expired",
    "revoked": "Revoked by the patient",
    "withdrawn": "Withdrawn",
}


class AccessRefused(PdsError):
    """The professional may not read this now: no live grant of theirs covers it."""

    status = 403
    slug = "access-refused"
    title = "Access refused"


@dataclass(frozen=True)
class Asked:
    """What a professional asks for (already checked against their role)."""

    purpose: str
    categories: list[str]
    resource_types: list[str]
    days: int
    records_from: dt.date | None = None
    records_until: dt.date | None = None
    callback_url: str | None = None


def check_ask(
    member: StaffMember,
    *,
    purpose: str,
    categories: Sequence[str],
    resource_types: Sequence[str] = (),
    days: int,
    records_from: dt.date | None = None,
    records_until: dt.date | None = None,
    callback_url: str | None = None,
) -> Asked:
    """The request as asked, or a ValidationError naming the field that is wrong."""
    purpose = _text(purpose, "purpose", f"say why you ask, in at most {MAX_PURPOSE} characters")
    allowed = ROLE_CATEGORIES[member.role]
    cats = list(dict.fromkeys(categories))
    if not cats:
        raise ValidationError("ask for at least one kind of record", field="categories")
    outside = [c for c in cats if c not in allowed]
    if outside:
        raise ValidationError(
            f"a {ROLE_WORDS[member.role].lower()} cannot ask for {', '.join(outside)} records",
            field="categories",
        )
    types = list(dict.fromkeys(resource_types))
    unknown = [t for t in types if t not in FHIR_TYPES]
    if unknown:
        raise ValidationError(f"must be some of {', '.join(FHIR_TYPES)}", field="resource_types")
    if types and "health" not in cats:
        raise ValidationError("record types narrow the health record only", field="resource_types")
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_GRANT_DAYS:
        raise ValidationError(f"must be a whole number of days from 1 to {MAX_GRANT_DAYS}", field="days")
    if records_from and records_until and records_from > records_until:
        raise ValidationError("must not be after records_until", field="records_from")
    if callback_url is not None:
        try:
            parts = urlsplit(callback_url)
            host = parts.hostname
        except ValueError:  # an unclosed [ipv6, a bad port: not a URL
            raise ValidationError("must be an https URL", field="callback_url") from None
        if (
            parts.scheme not in ("https", "http")
            or not host
            or len(callback_url) > 2000
            or any(c.isspace() or ord(c) < 0x20 for c in callback_url)
        ):
            raise ValidationError("must be an https URL", field="callback_url")
        if parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise ValidationError("must be an https URL (http only to this machine)", field="callback_url")
    return Asked(purpose, cats, types, days, records_from, records_until, callback_url)


def _text(value: str | None, field: str, problem: str) -> str:
    """Words a person will read: 1 to MAX_PURPOSE characters, no control characters (PostgreSQL refuses
    NUL, and nobody means one)."""
    text = (value or "").strip()
    if not 0 < len(text) <= MAX_PURPOSE:
        raise ValidationError(problem, field=field)
    if any(ord(c) < 0x20 and c not in "\n\r\t" for c in text):
        raise ValidationError("must not hold control characters", field=field)
    return text


class RequestService:
    def __init__(self, session: Session, *, vault: Vault) -> None:
        self.session = session
        self.vault = vault

    def make(self, member: StaffMember, nhs_number: str, asked: Asked) -> ConsentRequest:
        """A request for this NHS number. Known here or not, the asker is told the same: "request sent"."""
        digits = normalise("nhs_number", nhs_number, field="nhs_number")
        citizen_id = self.vault.citizens.find("nhs_number", digits)
        now = utcnow()
        req = ConsentRequest(
            org_id=member.org_id,
            staff_id=member.id,
            citizen_id=citizen_id,
            patient_blind=crypto.blind_index(
                self.vault.keys.provider.blind_index_key(), "nhs_number", digits
            ),
            patient_hint=digits[-3:],
            purpose=asked.purpose,
            categories=",".join(asked.categories),
            resource_types=",".join(asked.resource_types),
            days=asked.days,
            records_from=asked.records_from,
            records_until=asked.records_until,
            callback_url=asked.callback_url,
            created_at=now,
            expires_at=now + REQUEST_TTL,
        )
        self.session.add(req)
        self.session.flush()
        if citizen_id is not None:
            who = _who(self.session, member)
            events.append_event(
                self.session,
                events.REQUEST_MADE,
                actor=grantee_id(member.id),
                citizen_id=citizen_id,
                details={"request_id": str(req.id), **_describe(req)},
            )
            self.vault.notifications.queue(
                citizen_id,
                "consent_request",
                f"{who} asks to see your records",
                f"{who} asks to see {scopes.category_words(asked.categories)} for {asked.days} days.\n"
                f"Why: {asked.purpose}\n\n"
                "Nothing is shared until you say yes. Sign in to pds and open Requests to approve, "
                "approve less, or refuse.",
            )
        return req

    def get_for_org(self, request_id: uuid.UUID | str, org_id: uuid.UUID) -> ConsentRequest:
        """A request of this organisation; another organisation's is simply not found."""
        req = self._get(request_id)
        if req is None or req.org_id != org_id:
            raise NotFound(NO_SUCH_REQUEST, field="request_id")
        return req

    def get_for_citizen(self, request_id: uuid.UUID | str, citizen_id: uuid.UUID) -> ConsentRequest:
        req = self._get(request_id)
        if req is None or req.citizen_id != citizen_id:
            raise NotFound("no request to you has this id", field="request_id")
        return req

    def of_org(self, org_id: uuid.UUID, limit: int = 200) -> list[ConsentRequest]:
        return list(
            self.session.scalars(
                select(ConsentRequest)
                .where(ConsentRequest.org_id == org_id)
                .order_by(ConsentRequest.created_at.desc())
                .limit(limit)
            )
        )

    def of_citizen(self, citizen_id: uuid.UUID, limit: int = 200) -> list[ConsentRequest]:
        """Every request made to this citizen, answered or not, newest first."""
        return list(
            self.session.scalars(
                select(ConsentRequest)
                .where(ConsentRequest.citizen_id == citizen_id)
                .order_by(ConsentRequest.created_at.desc())
                .limit(limit)
            )
        )

    def pending_for(self, citizen_id: uuid.UUID) -> list[ConsentRequest]:
        now = utcnow()
        return [
            r
            for r in self.session.scalars(
                select(ConsentRequest)
                .where(ConsentRequest.citizen_id == citizen_id, ConsentRequest.status == "pending")
                .order_by(ConsentRequest.created_at.desc())
            )
            if r.expires_at > now
        ]

    def status(self, req: ConsentRequest) -> str:
        """What the request stands at now, the grant's fate included."""
        now = utcnow()
        if req.status == "pending":
            return "expired" if req.expires_at <= now else "pending"
        if req.grant_id is not None:
            grant = self.session.get(Grant, req.grant_id)
            if grant is not None and grant.status == "revoked":
                return "revoked"
            if grant is not None and not grant.is_live(now):
                return "expired"
        return req.status

    def approve(
        self,
        request_id: uuid.UUID | str,
        *,
        citizen_id: uuid.UUID,
        categories: Sequence[str] | None = None,
        resource_types: Sequence[str] | None = None,
        ends_at: dt.datetime | None = None,
    ) -> Grant:
        """Yes, perhaps to less: fewer categories or types, or an earlier end. Never to more."""
        req = self._pending(request_id, citizen_id)
        now = utcnow()
        asked_end = now + dt.timedelta(days=req.days)
        cats = list(req.category_list if categories is None else categories)
        if not cats:
            raise ValidationError("keep at least one, or refuse the request", field="categories")
        if not set(cats) <= set(req.category_list):
            raise ValidationError("you can give less than was asked, not more", field="categories")
        types = list(req.resource_type_list if resource_types is None else resource_types)
        if resource_types is not None and not types and "health" in cats:  # none left is not "all types"
            raise ValidationError(
                "keep at least one type, or untick the health record", field="resource_types"
            )
        if not set(types) <= set(req.resource_type_list or FHIR_TYPES):
            raise ValidationError("you can give less than was asked, not more", field="resource_types")
        if types == list(FHIR_TYPES) and not req.resource_type_list:
            types = []
        end = asked_end if ends_at is None or ends_at >= asked_end else ends_at
        changed = (
            set(cats) != set(req.category_list)
            or set(types) != set(req.resource_type_list)
            or end < asked_end - dt.timedelta(minutes=5)
        )
        grant = GrantService(self.session).create(
            citizen_id=citizen_id,
            client_id=grantee_id(req.staff_id),
            staff_id=req.staff_id,
            categories=cats,
            resource_types=types if "health" in cats else [],
            scope="",
            purpose=req.purpose,
            ends_at=end,
            records_from=req.records_from,
            records_until=req.records_until,
            actor=f"citizen:{citizen_id}",
        )
        req.status = "approved_with_changes" if changed else "approved"
        req.grant_id, req.decided_at = grant.id, now
        self._callback_due(req)
        return grant

    def refuse(self, request_id: uuid.UUID | str, *, citizen_id: uuid.UUID) -> ConsentRequest:
        req = self._pending(request_id, citizen_id)
        req.status, req.decided_at = "refused", utcnow()
        events.append_event(
            self.session,
            events.REQUEST_DENIED,
            actor=f"citizen:{citizen_id}",
            citizen_id=citizen_id,
            details={"request_id": str(req.id), "client_id": grantee_id(req.staff_id), **_describe(req)},
        )
        self._callback_due(req)
        return req

    def expire_due(self, now: dt.datetime | None = None) -> int:
        """Mark requests left unanswered past their time as expired."""
        now = now or utcnow()
        due = self.session.scalars(
            select(ConsentRequest).where(ConsentRequest.status == "pending", ConsentRequest.expires_at <= now)
        ).all()
        for req in due:
            req.status, req.decided_at = "expired", now
            self._callback_due(req)
        return len(due)

    def _pending(self, request_id: uuid.UUID | str, citizen_id: uuid.UUID) -> ConsentRequest:
        req = self.get_for_citizen(request_id, citizen_id)
        if req.status != "pending" or req.expires_at <= utcnow():
            raise ValidationError(f"this request is already {self.status(req)}", field="request_id")
        return req

    def _get(self, request_id: uuid.UUID | str) -> ConsentRequest | None:
        try:
            wanted = request_id if isinstance(request_id, uuid.UUID) else uuid.UUID(str(request_id))
        except ValueError:
            return None
        return self.session.get(ConsentRequest, wanted)

    def _callback_due(self, req: ConsentRequest) -> None:
        if req.callback_url:
            req.callback_due_at, req.callback_attempts, req.callback_error = utcnow(), 0, ""


class ProfessionalReads:
    """What a professional may read under a grant to them, each view in the ledger."""

    def __init__(self, session: Session, *, vault: Vault) -> None:
        self.session = session
        self.vault = vault

    def live_grant(self, member: StaffMember, grant_id: uuid.UUID | None) -> Grant:
        """The grant if it is theirs and live now; checked on every view, so a revocation bites at once."""
        if member.status != "active":
            raise AccessRefused("your access to pds has been revoked")
        grant = self.session.get(Grant, grant_id) if grant_id else None
        if grant is None or grant.staff_id != member.id:
            raise AccessRefused("you hold no permission to read this patient's records")
        if not grant.is_live(utcnow()):
            raise AccessRefused("the patient's permission has been revoked or has ended: nothing can be read")
        return grant

    def read(self, member: StaffMember, grant_id: uuid.UUID | None) -> tuple[Grant, list[StoredRecord]]:
        grant = self.live_grant(member, grant_id)
        records = self._within(grant)
        events.append_event(
            self.session,
            events.RECORDS_READ,
            actor=grantee_id(member.id),
            citizen_id=grant.citizen_id,
            grant_id=grant.id,
            details={
                "records": [str(r.id) for r in records],
                "count": len(records),
                "categories": grant.category_list,
                "purpose": grant.purpose,
                **({"emergency": True, "reason": grant.purpose} if grant.emergency else {}),
            },
        )
        return grant, records

    def _within(self, grant: Grant) -> list[StoredRecord]:
        since, until = grant.record_window()
        page = self.vault.records.list(
            grant.citizen_id, categories=grant.category_list, since=since, until=until, limit=MAX_READ
        )
        return [r for r in page.items if grant.covers_kind(r.kind)]

    def emergency(self, member: StaffMember, nhs_number: str, reason: str) -> Grant:
        """Break-glass: the health summary for an hour, without consent, with a reason; told at once."""
        if member.role not in CLINICIANS:
            raise AccessRefused("only a GP or practice nurse may use emergency access")
        problem = f"give the clinical reason, {MIN_REASON} to {MAX_PURPOSE} characters"
        reason = _text(reason, "reason", problem)
        if len(reason) < MIN_REASON:
            raise ValidationError(problem, field="reason")
        digits = normalise("nhs_number", nhs_number, field="nhs_number")
        citizen_id = self.vault.citizens.find("nhs_number", digits)
        if citizen_id is None:
            raise NotFound("pds holds no record for this NHS number", field="nhs_number")
        grant = GrantService(self.session).create(
            citizen_id=citizen_id,
            client_id=grantee_id(member.id),
            staff_id=member.id,
            categories=["health"],
            scope="",
            purpose=reason,
            ends_at=utcnow() + EMERGENCY_TTL,
            actor=grantee_id(member.id),
            emergency=True,
        )
        org = self.session.get(Organisation, member.org_id)
        who = _who(self.session, member)
        events.append_event(
            self.session,
            events.EMERGENCY_ACCESS,
            actor=grantee_id(member.id),
            citizen_id=citizen_id,
            grant_id=grant.id,
            details={"emergency": True, "reason": reason, "org": org.code if org else "", "for": "1 hour"},
        )
        self.vault.notifications.queue(
            citizen_id,
            "emergency_access",
            "Your health record was opened in an emergency",
            f"{who} opened your GP health record without your consent, using emergency access.\n"
            f"The reason they gave: {reason}\n"
            f"This access lasts at most one hour. It is marked in your access history in pds, and "
            f"the practice's administrator reviews every use.",
        )
        return grant

    def emergency_uses(self, org_id: uuid.UUID) -> list[dict[str, Any]]:
        """Every emergency access by this organisation's staff, newest first, for its administrator."""
        rows = self.session.execute(
            select(Grant, StaffMember)
            .join(StaffMember, StaffMember.id == Grant.staff_id)
            .where(Grant.emergency.is_(True), StaffMember.org_id == org_id)
            .order_by(Grant.created_at.desc())
        ).all()
        return [
            {
                "grant_id": str(g.id),
                "staff": m.name,
                "role": ROLE_WORDS[m.role],
                "reason": g.purpose,
                "at": g.created_at,
                "until": g.ends_at,
                "live": g.is_live(utcnow()),
            }
            for g, m in rows
        ]


def _who(session: Session, member: StaffMember) -> str:
    """How a citizen is told who acted: "Dr A Patel (GP) at Riverside Surgery"."""
    org = session.get(Organisation, member.org_id)
    return f"{member.name} ({ROLE_WORDS[member.role]}) at {org.name if org else 'an organisation'}"


def _describe(req: ConsentRequest) -> dict[str, Any]:
    return {
        "purpose": req.purpose,
        "categories": req.category_list,
        "resource_types": req.resource_type_list,
        "days": req.days,
        "records_from": req.records_from.isoformat() if req.records_from else None,
        "records_until": req.records_until.isoformat() if req.records_until else None,
    }
