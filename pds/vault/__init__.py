"""The encrypted citizen vault: one object per unit of work, sharing its opened data keys."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from pds.settings import Settings
from pds.vault.citizens import CitizenService
from pds.vault.crypto import KeyProvider
from pds.vault.guardians import GuardianService
from pds.vault.keys import DataKeys
from pds.vault.notifications import NotificationService
from pds.vault.records import NewRecord, PutResult, RecordService, StoredRecord
from pds.vault.sources import SourceService

__all__ = ["NewRecord", "PutResult", "StoredRecord", "Vault"]


@dataclass(frozen=True)
class Vault:
    session: Session
    keys: DataKeys
    citizens: CitizenService
    records: RecordService
    guardians: GuardianService
    sources: SourceService
    notifications: NotificationService

    @classmethod
    def open(cls, session: Session, *, provider: KeyProvider, settings: Settings) -> Vault:
        keys = DataKeys(session, provider=provider)
        citizens = CitizenService(session, keys=keys)
        return cls(
            session=session,
            keys=keys,
            citizens=citizens,
            records=RecordService(session, keys=keys, limits=settings.vault),
            guardians=GuardianService(session, citizens=citizens, ages=settings.guardians),
            sources=SourceService(session),
            notifications=NotificationService(session, keys=keys),
        )
