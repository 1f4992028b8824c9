"""Citizens: create with sealed profile and identifiers, look up by blind index, list, erase."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pds.db import utcnow
from pds.errors import Conflict, Erased, NotFound, ValidationError
from pds.vault import crypto
from pds.vault.identifiers import normalise
from pds.vault.keys import DataKeys
from pds.vault.models import Citizen, GuardianLink, Identifier, Record

PROFILE_CATEGORY = "profile"
MAX_NAME = 200


TOTP_CATEGORY = "citizen:totp"


@dataclass(frozen=True)
class CitizenProfile:
    id: uuid.UUID
    status: str
    name: str | None
    email: str | None
    date_of_birth: dt.date | None
    created_at: dt.datetime

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["id"] = str(self.id)
        data["date_of_birth"] = self.date_of_birth.isoformat() if self.date_of_birth else None
        data["created_at"] = self.created_at.isoformat()
        return data


@dataclass(frozen=True)
class Erasure:
    citizen_id: uuid.UUID
    records: int
    identifiers: int
    data_keys: int
    guardian_links: int


def parse_date_of_birth(value: str | dt.date, *, today: dt.date | None = None) -> dt.date:
    if isinstance(value, str):
        try:
            value = dt.date.fromisoformat(value)
        except ValueError:
            raise ValidationError("must be a date as YYYY-MM-DD", field="date_of_birth") from None
    today = today or dt.date.today()
    if value > today or value.year < today.year - 130:
        raise ValidationError("must be a real birth date, not in the future", field="date_of_birth")
    return value


class CitizenService:
    def __init__(self, session: Session, *, keys: DataKeys) -> None:
        self.session = session
        self.keys = keys

    def add(
        self,
        *,
        name: str,
        date_of_birth: str | dt.date,
        email: str | None = None,
        nhs_number: str | None = None,
        password_hash: str | None = None,
    ) -> CitizenProfile:
        name = (name or "").strip()
        if not name or len(name) > MAX_NAME:
            raise ValidationError(f"must be 1 to {MAX_NAME} characters", field="name")
        born = parse_date_of_birth(date_of_birth)
        wanted = [(k, normalise(k, v)) for k, v in (("email", email), ("nhs_number", nhs_number)) if v]
        citizen = Citizen(password_hash=password_hash)
        self.session.add(citizen)
        self.session.flush()
        key = self.keys.create(citizen.id)
        profile = {"name": name, "email": dict(wanted).get("email"), "date_of_birth": born.isoformat()}
        citizen.profile = crypto.seal(key, _dumps(profile), row_id=citizen.id, category=PROFILE_CATEGORY)
        for kind, value in wanted:
            self._add_identifier(citizen.id, kind, value)
        self.session.flush()
        return self._profile(citizen)

    def add_identifier(self, citizen_id: uuid.UUID, kind: str, value: str) -> None:
        self.live(citizen_id)
        self._add_identifier(citizen_id, kind, normalise(kind, value))
        self.session.flush()

    def _add_identifier(self, citizen_id: uuid.UUID, kind: str, value: str) -> None:
        index = crypto.blind_index(self.keys.provider.blind_index_key(), kind, value)
        taken = self.session.scalar(
            select(Identifier.id).where(Identifier.kind == kind, Identifier.blind_index == index)
        )
        if taken is not None:
            raise Conflict(f"this {kind.replace('_', ' ')} already belongs to a citizen", field=kind)
        row = Identifier(citizen_id=citizen_id, kind=kind, blind_index=index, value=b"")
        row.value = crypto.seal(
            self.keys.active(citizen_id), value.encode(), row_id=row.id, category=f"identifier:{kind}"
        )
        self.session.add(row)
        try:
            with self.session.begin_nested():
                self.session.flush()
        except IntegrityError:  # another writer took it between our check and our insert
            raise Conflict(
                f"this {kind.replace('_', ' ')} already belongs to a citizen", field=kind
            ) from None

    def find(self, kind: str, value: str) -> uuid.UUID | None:
        """The live citizen an identifier belongs to, by blind index; None if nobody."""
        index = crypto.blind_index(self.keys.provider.blind_index_key(), kind, normalise(kind, value))
        return self.session.scalar(
            select(Identifier.citizen_id).where(Identifier.kind == kind, Identifier.blind_index == index)
        )

    def identifiers(self, citizen_id: uuid.UUID) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        rows = self.session.scalars(
            select(Identifier).where(Identifier.citizen_id == citizen_id).order_by(Identifier.created_at)
        )
        for row in rows:
            key = self.keys.for_ciphertext(row.value)
            clear = crypto.open_sealed(key, row.value, row_id=row.id, category=f"identifier:{row.kind}")
            found.setdefault(row.kind, []).append(clear.decode())
        return found

    def get(self, citizen_id: uuid.UUID) -> CitizenProfile:
        citizen = self.session.get(Citizen, citizen_id)
        if citizen is None:
            raise NotFound(f"no citizen {citizen_id}", field="citizen_id")
        return self._profile(citizen)

    def password_hash(self, citizen_id: uuid.UUID) -> str | None:
        return self.live(citizen_id).password_hash

    def set_password_hash(self, citizen_id: uuid.UUID, password_hash: str) -> None:
        self.live(citizen_id).password_hash = password_hash

    def totp_secret(self, citizen_id: uuid.UUID) -> str | None:
        """The citizen's second-factor secret, or None if they have not set one up."""
        citizen = self.live(citizen_id)
        if citizen.totp_secret is None:
            return None
        key = self.keys.for_ciphertext(citizen.totp_secret)
        return crypto.open_sealed(
            key, citizen.totp_secret, row_id=citizen_id, category=TOTP_CATEGORY
        ).decode()

    def set_totp_secret(self, citizen_id: uuid.UUID, secret: str | None) -> None:
        citizen = self.live(citizen_id)
        citizen.totp_last_step = None
        citizen.totp_secret = (
            None
            if secret is None
            else crypto.seal(
                self.keys.active(citizen_id), secret.encode(), row_id=citizen_id, category=TOTP_CATEGORY
            )
        )

    def use_totp_step(self, citizen_id: uuid.UUID, step: int) -> bool:
        """Accept a code's time step once: a code seen before (or an older one) is refused."""
        citizen = self.live(citizen_id)
        if citizen.totp_last_step is not None and step <= citizen.totp_last_step:
            return False
        citizen.totp_last_step = step
        return True

    def session_epoch(self, citizen_id: uuid.UUID) -> int | None:
        citizen = self.session.get(Citizen, citizen_id)
        return None if citizen is None or citizen.status != "active" else citizen.session_epoch

    def last_seen(self, citizen_id: uuid.UUID) -> dt.datetime | None:
        """When the citizen last opened their home page (None: never)."""
        return self.live(citizen_id).last_seen_at

    def seen_now(self, citizen_id: uuid.UUID, now: dt.datetime) -> None:
        self.live(citizen_id).last_seen_at = now

    def end_all_sessions(self, citizen_id: uuid.UUID) -> int:
        """Sign out everywhere: every browser session from before now stops being signed in."""
        citizen = self.live(citizen_id)
        citizen.session_epoch += 1
        return citizen.session_epoch

    def all(self) -> Iterator[CitizenProfile]:
        stmt = select(Citizen).order_by(Citizen.created_at, Citizen.id).execution_options(yield_per=200)
        for citizen in self.session.scalars(stmt):
            yield self._profile(citizen)

    def erase(self, citizen_id: uuid.UUID) -> Erasure:
        """Crypto-shred a citizen: destroy their data keys, delete their records and identifiers.

        Any copy of their ciphertexts left elsewhere can no longer be opened. A row stays behind
        with no personal data, so what referred to the citizen still resolves (as erased).
        """
        citizen = self.live(citizen_id)
        records = self.session.execute(delete(Record).where(Record.citizen_id == citizen_id)).rowcount
        identifiers = self.session.execute(
            delete(Identifier).where(Identifier.citizen_id == citizen_id)
        ).rowcount
        links = self.session.execute(
            update(GuardianLink)
            .where(
                or_(GuardianLink.parent_id == citizen_id, GuardianLink.child_id == citizen_id),
                GuardianLink.ended_at.is_(None),
            )
            .values(ended_at=utcnow(), end_reason="erased")
        ).rowcount
        data_keys = self.keys.destroy(citizen_id)
        citizen.profile = None
        citizen.password_hash = None
        citizen.status = "erased"
        citizen.erased_at = utcnow()
        self.session.flush()
        return Erasure(citizen_id, int(records or 0), int(identifiers or 0), data_keys, int(links or 0))

    def live(self, citizen_id: uuid.UUID) -> Citizen:
        citizen = self.session.get(Citizen, citizen_id)
        if citizen is None:
            raise NotFound(f"no citizen {citizen_id}", field="citizen_id")
        if citizen.status != "active":
            raise Erased(f"citizen {citizen_id} has been erased", field="citizen_id")
        return citizen

    def _profile(self, citizen: Citizen) -> CitizenProfile:
        data: dict[str, Any] = {}
        if citizen.profile is not None:
            key = self.keys.for_ciphertext(citizen.profile)
            data = json.loads(
                crypto.open_sealed(key, citizen.profile, row_id=citizen.id, category=PROFILE_CATEGORY)
            )
        born = data.get("date_of_birth")
        return CitizenProfile(
            id=citizen.id,
            status=citizen.status,
            name=data.get("name"),
            email=data.get("email"),
            date_of_birth=dt.date.fromisoformat(born) if born else None,
            created_at=citizen.created_at,
        )


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True).encode()
