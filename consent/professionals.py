"""Organisations and their staff: who they are, what each role may ever ask for, how they sign in.

A professional signs in with a password (argon2id) and, always, a second factor (TOTP). The TOTP secret
is sealed under the key-encryption key, as signing keys are: staff are not citizens and have no vault.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from consent.models import ORG_KINDS, ROLES, OAuthToken, Organisation, StaffMember
from pds.accounts import MIN_PASSWORD, hash_password, verify_password
from pds.db import utcnow
from pds.errors import Conflict, NotFound, ValidationError
from pds.vault.crypto import KeyProvider
from pds.vault.identifiers import normalise

# What each role may ever ask a citizen for, and at which kind of organisation it exists.
ROLE_CATEGORIES: dict[str, tuple[str, ...]] = {
    "gp": ("health",),
    "nurse": ("health",),
    "teacher": ("education",),
    "caseworker": ("case",),
    "officer": ("case",),
    "admin": (),  # runs the organisation's staff list and reviews emergency access; reads no records
}
ROLE_ORGS: dict[str, tuple[str, ...]] = {
    "gp": ("gp_practice",),
    "nurse": ("gp_practice",),
    "teacher": ("school",),
    "caseworker": ("council",),
    "officer": ("police",),
    "admin": ORG_KINDS,
}
CLINICIANS = ("gp", "nurse")  # who may use emergency access
ROLE_WORDS = {
    "gp": "GP",
    "nurse": "Practice nurse",
    "teacher": "Teacher",
    "caseworker": "Caseworker",
    "officer": "Police officer",
    "admin": "Administrator",
}
ORG_WORDS = {"gp_practice": "GP practice", "school": "School", "council": "Council", "police": "Police force"}
ODS_PRACTICE = re.compile(r"^[A-Z]\d{5}$")  # an ODS code of a GP practice: a letter and five digits
ORG_CODE = re.compile(r"^[A-Z0-9][A-Z0-9-]{0,31}$")
TOTP_CONTEXT = b"pds/staff-totp/v1:"
STAFF_PREFIX = "staff:"  # a grant to a professional has client_id "staff:<id>"


def grantee_id(staff_id: uuid.UUID) -> str:
    return f"{STAFF_PREFIX}{staff_id}"


class StaffService:
    def __init__(self, session: Session, *, provider: KeyProvider | None = None) -> None:
        self.session = session
        self.provider = provider

    # organisations
    def add_org(self, *, kind: str, code: str, name: str) -> Organisation:
        if kind not in ORG_KINDS:
            raise ValidationError(f"must be one of {', '.join(ORG_KINDS)}", field="kind")
        code = code.strip().upper()
        if kind == "gp_practice" and not ODS_PRACTICE.match(code):
            raise ValidationError(
                "a GP practice's ODS code is a letter and five digits, like A81001", field="code"
            )
        if not ORG_CODE.match(code):
            raise ValidationError("must be letters, digits and '-', at most 32", field="code")
        name = _plain(name, "name")
        if self.session.scalar(
            select(Organisation).where(Organisation.kind == kind, Organisation.code == code)
        ):
            raise Conflict(f"there is already a {ORG_WORDS[kind].lower()} with code {code}", field="code")
        org = Organisation(kind=kind, code=code, name=name)
        self.session.add(org)
        self.session.flush()
        return org

    def org(self, org_id: uuid.UUID) -> Organisation:
        org = self.session.get(Organisation, org_id)
        if org is None:
            raise NotFound(f"no organisation {org_id}", field="org")
        return org

    def org_by_code(self, code: str) -> Organisation:
        org = self.session.scalar(select(Organisation).where(Organisation.code == code.strip().upper()))
        if org is None:
            raise NotFound(f"no organisation with code {code.strip().upper()}", field="org")
        return org

    def orgs(self) -> list[Organisation]:
        return list(self.session.scalars(select(Organisation).order_by(Organisation.name)))

    # staff
    def add(self, *, org_id: uuid.UUID, name: str, email: str, role: str, password: str) -> StaffMember:
        org = self.org(org_id)
        if role not in ROLES:
            raise ValidationError(f"must be one of {', '.join(ROLES)}", field="role")
        if org.kind not in ROLE_ORGS[role]:
            raise ValidationError(
                f"a {ROLE_WORDS[role].lower()} cannot belong to a {ORG_WORDS[org.kind].lower()}", field="role"
            )
        name = _plain(name, "name")
        address = normalise("email", _plain(email, "email"), field="email")
        if len(password) < MIN_PASSWORD:
            raise ValidationError(f"must be at least {MIN_PASSWORD} characters", field="password")
        member = StaffMember(
            org_id=org.id, name=name, email=address, role=role, password_hash=hash_password(password)
        )
        self.session.add(member)
        try:
            with self.session.begin_nested():
                self.session.flush()
        except IntegrityError:
            raise Conflict(
                "there is already a member of staff with this email address", field="email"
            ) from None
        return member

    def get(self, staff_id: uuid.UUID) -> StaffMember:
        member = self.session.get(StaffMember, staff_id)
        if member is None:
            raise NotFound(f"no member of staff {staff_id}", field="staff")
        return member

    def of_org(self, org_id: uuid.UUID) -> list[StaffMember]:
        return list(
            self.session.scalars(
                select(StaffMember).where(StaffMember.org_id == org_id).order_by(StaffMember.name)
            )
        )

    def active(self, staff_id: uuid.UUID, epoch: int | None = None) -> StaffMember | None:
        """The member of staff if they may still act now (not revoked; the session not ended)."""
        member = self.session.get(StaffMember, staff_id)
        if member is None or member.status != "active":
            return None
        if epoch is not None and epoch != member.session_epoch:
            return None
        return member

    def authenticate(self, email: str, password: str) -> StaffMember | None:
        """The active member of staff with this email and password; the same time spent either way."""
        try:
            address = normalise("email", email, field="email")
        except ValidationError:
            address = ""
        member = (
            self.session.scalar(select(StaffMember).where(StaffMember.email == address)) if address else None
        )
        ok = verify_password(member.password_hash if member else None, password)
        return member if ok and member is not None and member.status == "active" else None

    def revoke(self, staff_id: uuid.UUID) -> StaffMember:
        """Takes effect at once: portal sessions end, tokens stop, and grants to them stop being read."""
        member = self.get(staff_id)
        now = utcnow()
        member.status, member.revoked_at = "revoked", now
        member.session_epoch += 1
        self.session.execute(
            update(OAuthToken)
            .where(OAuthToken.staff_id == staff_id, OAuthToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        return member

    # the second factor
    def totp_secret(self, member: StaffMember) -> str | None:
        if member.totp_secret is None or member.totp_kek_id is None:
            return None
        return self._provider().unwrap(member.totp_kek_id, member.totp_secret, _context(member.id)).decode()

    def set_totp_secret(self, member: StaffMember, secret: str) -> None:
        member.totp_kek_id, member.totp_secret = self._provider().wrap(secret.encode(), _context(member.id))
        member.totp_last_step = None

    def use_totp_step(self, member: StaffMember, step: int) -> bool:
        """Accept a code's time step once: a code seen before (or an older one) is refused."""
        if member.totp_last_step is not None and step <= member.totp_last_step:
            return False
        member.totp_last_step = step
        return True

    def rewrap_totp(self) -> int:
        """After a key-encryption key rotation: seal every staff secret under the active key."""
        provider = self._provider()
        active = provider.active_kek_id()
        rows = self.session.scalars(
            select(StaffMember).where(StaffMember.totp_secret.is_not(None), StaffMember.totp_kek_id != active)
        ).all()
        for m in rows:
            assert m.totp_kek_id is not None and m.totp_secret is not None
            clear = provider.unwrap(m.totp_kek_id, m.totp_secret, _context(m.id))
            m.totp_kek_id, m.totp_secret = provider.wrap(clear, _context(m.id))
        return len(rows)

    def totp_kek_usage(self) -> dict[str, int]:
        usage: dict[str, int] = {}
        for kek_id in self.session.scalars(
            select(StaffMember.totp_kek_id).where(StaffMember.totp_kek_id.is_not(None))
        ):
            usage[kek_id] = usage.get(kek_id, 0) + 1
        return usage

    def _provider(self) -> KeyProvider:
        if self.provider is None:
            raise ValidationError("the key provider is needed for a second factor", field="provider")
        return self.provider

    def names(self, staff_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
        """ "Dr A Patel (GP), Riverside Surgery" for each, as citizens see who asked or read."""
        if not staff_ids:
            return {}
        rows = self.session.execute(
            select(StaffMember.id, StaffMember.name, StaffMember.role, Organisation.name)
            .join(Organisation, Organisation.id == StaffMember.org_id)
            .where(StaffMember.id.in_(list(set(staff_ids))))
        ).all()
        return {sid: f"{name} ({ROLE_WORDS[role]}), {org}" for sid, name, role, org in rows}


def _plain(value: str, field: str) -> str:
    """A name or address: 1 to 200 characters, none of them control characters (PostgreSQL refuses NUL)."""
    text = (value or "").strip()
    if not 0 < len(text) <= 200:
        raise ValidationError("must be 1 to 200 characters", field=field)
    if any(ord(c) < 0x20 or c == "\x7f" for c in text):
        raise ValidationError("must not hold control characters", field=field)
    return text


def _context(staff_id: uuid.UUID) -> bytes:
    return TOTP_CONTEXT + staff_id.bytes
