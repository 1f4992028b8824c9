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
    ConsentRequest,
    Grant,
    InitialAccessToken,
    OAuthClient,
    OAuthToken,
    Organisation,
    SigningKey,
    StaffMember,
)
from pds.vault.models import (
    Citizen,
    DataKeyRow,
    GuardianLink,
    Identifier,
    KeyCheck,
    Notification,
    Record,
    SignInFailure,
    Source,
)

__all__ = [
    "AuthorizationCode",
    "Citizen",
    "ConnectorState",
    "ConsentRequest",
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
    "Organisation",
    "Record",
    "SignInFailure",
    "SigningKey",
    "Source",
    "StaffMember",
]
