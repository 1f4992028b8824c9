"""The outbox of messages to citizens. A message is queued in the transaction of the change it tells of,
so a rolled-back change sends nothing, and sealed with the citizen's data key (it says what changed)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from pds.db import utcnow
from pds.errors import Erased, KeyMissing
from pds.vault import crypto
from pds.vault.keys import DataKeys
from pds.vault.models import Notification

CATEGORY = "notification"
MAX_ATTEMPTS = 5


@dataclass(frozen=True)
class Message:
    id: uuid.UUID
    citizen_id: uuid.UUID
    kind: str
    subject: str
    body: str


class NotificationService:
    def __init__(self, session: Session, *, keys: DataKeys) -> None:
        self.session = session
        self.keys = keys

    def queue(self, citizen_id: uuid.UUID, kind: str, subject: str, body: str) -> None:
        row = Notification(citizen_id=citizen_id, kind=kind, message=b"")
        text = json.dumps({"subject": subject, "body": body}).encode()
        row.message = crypto.seal(self.keys.active(citizen_id), text, row_id=row.id, category=CATEGORY)
        self.session.add(row)

    def due(self, limit: int = 50) -> list[Message]:
        """Messages not yet sent nor given up on, oldest first, opened; unreadable ones are given up."""
        rows = self.session.scalars(
            select(Notification)
            .where(Notification.sent_at.is_(None), Notification.attempts < MAX_ATTEMPTS)
            .order_by(Notification.created_at)
            .limit(limit)
        ).all()
        out = []
        for row in rows:
            try:
                key = self.keys.for_ciphertext(row.message)
                text = json.loads(crypto.open_sealed(key, row.message, row_id=row.id, category=CATEGORY))
            except (Erased, KeyMissing) as exc:  # erased since: nobody to tell, nothing to read
                self.give_up(row.id, f"cannot be read: {exc.detail}")
                continue
            out.append(Message(row.id, row.citizen_id, row.kind, text["subject"], text["body"]))
        return out

    def sent(self, message_id: uuid.UUID) -> None:
        row = self.session.get(Notification, message_id)
        if row is not None:
            row.sent_at, row.attempts, row.last_error = utcnow(), row.attempts + 1, ""

    def failed(self, message_id: uuid.UUID, reason: str) -> None:
        row = self.session.get(Notification, message_id)
        if row is not None:
            row.attempts, row.last_error = row.attempts + 1, reason[:500]

    def give_up(self, message_id: uuid.UUID, reason: str) -> None:
        row = self.session.get(Notification, message_id)
        if row is not None:
            row.attempts, row.last_error = MAX_ATTEMPTS, reason[:500]
