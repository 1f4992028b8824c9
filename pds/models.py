"""Every table pds has, imported in one place so migrations and tests see the whole schema."""

from connectors.models import ConnectorState
from consent.ledger.models import (
    LedgerCheckpoint,
    LedgerDetail,
    LedgerEntry,
    LedgerNode,
    LedgerSigner,
    LedgerSubjectKey,
)
from consent.models import (
    AuthorizationCode,
    Grant,
    InitialAccessToken,
    OAuthClient,
    OAuthToken,
    SigningKey,
)
from pds.vault.models import (
    Citizen,
    DataKeyRow,
    GuardianLink,
    Identifier,
    KeyCheck,
    Notification,
    Record,
    Source,
)

__all__ = [
    "AuthorizationCode",
    "Citizen",
    "ConnectorState",
    "DataKeyRow",
    "Grant",
    "GuardianLink",
    "Identifier",
    "InitialAccessToken",
    "KeyCheck",
    "LedgerCheckpoint",
    "LedgerDetail",
    "LedgerEntry",
    "LedgerNode",
    "LedgerSigner",
    "LedgerSubjectKey",
    "Notification",
    "OAuthClient",
    "OAuthToken",
    "Record",
    "SigningKey",
    "Source",
]
