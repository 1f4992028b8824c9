"""Every table pds has, imported in one place so migrations and tests see the whole schema."""

from consent.models import (
    AuthorizationCode,
    Grant,
    InitialAccessToken,
    LedgerEvent,
    OAuthClient,
    OAuthToken,
    SigningKey,
)
from pds.vault.models import Citizen, DataKeyRow, GuardianLink, Identifier, KeyCheck, Record, Source

__all__ = [
    "AuthorizationCode",
    "Citizen",
    "DataKeyRow",
    "Grant",
    "GuardianLink",
    "Identifier",
    "InitialAccessToken",
    "KeyCheck",
    "LedgerEvent",
    "OAuthClient",
    "OAuthToken",
    "Record",
    "SigningKey",
    "Source",
]
