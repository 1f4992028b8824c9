"""The ledger hook: every consent event and every read is appended here, in the caller's transaction.

One function, so the tamper-evident ledger can replace the plain table behind it.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy.orm import Session

from consent.models import LedgerEvent

GRANT_CREATED = "consent.grant.created"
GRANT_NARROWED = "consent.grant.narrowed"
GRANT_REVOKED = "consent.grant.revoked"
GRANT_EXPIRED = "consent.grant.expired"
REQUEST_DENIED = "consent.request.denied"
TOKEN_REUSE = "consent.token.reuse_detected"  # noqa: S105 (an event name, not a secret)
CODE_REPLAY = "consent.code.replayed"
RECORDS_READ = "records.read"
RECORDS_EXPORTED = "records.exported"
CITIZEN_ERASED = "citizen.erased"


def append_event(
    session: Session,
    event_type: str,
    *,
    actor: str,
    citizen_id: uuid.UUID | None = None,
    grant_id: uuid.UUID | None = None,
    details: dict[str, Any] | None = None,
) -> LedgerEvent:
    event = LedgerEvent(
        type=event_type,
        actor=actor,
        citizen_id=citizen_id,
        grant_id=grant_id,
        details=json.dumps(details or {}, sort_keys=True, separators=(",", ":"), default=str),
    )
    session.add(event)
    session.flush()
    return event
