"""Consent receipts: a signed JWT per grant event, in the fields of the Kantara Consent Receipt 1.1
(which ISO/IEC TS 27560 builds on), carrying the ledger entry it records with its inclusion proof.

A receipt verifies offline twice over: its signature with pds's published JWKS, and its entry with the
ledger's verifier key (the checkpoint inside it) and the salt (the entry's commitment to the details).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import jwt

from consent import events
from consent.clients import ClientService
from consent.signing import ALG, SigningKeys

RECEIPT_TYPE = "consent-receipt+jwt"
CR_VERSION = "KI-CR-v1.1.0"
RECEIPT_NAMESPACE = uuid.UUID("5b0d1f4e-8c1a-4d0e-9a43-6f1f7c3b2a10")  # receipt ids: uuid5 of issuer + index
SENSITIVE = {"health": "Health"}


class NotAGrantEvent(ValueError):
    """Receipts are for grant events (made, narrowed, revoked, expired) only."""


def receipt_claims(
    item: events.HistoryItem,
    *,
    issuer: str,
    subject: bytes,
    client_name: str,
    proof: dict[str, Any],
    verifier_key: str,
) -> dict[str, Any]:
    if item.event not in events.GRANT_EVENTS:
        raise NotAGrantEvent(f"entry {item.position} is a {item.event}, not a grant event")
    d = item.details.get("after", item.details)  # a narrowing records before and after
    categories = list(d.get("categories") or [])
    now = int(dt.datetime.now(dt.UTC).timestamp())
    return {
        "iss": issuer,
        "iat": now,
        "jti": str(uuid.uuid5(RECEIPT_NAMESPACE, f"{issuer}#{item.position}")),
        "version": CR_VERSION,
        "jurisdiction": "GB",
        "consentTimestamp": int(item.time.timestamp()),
        "collectionMethod": "pds consent page, approved by the citizen signed in"
        if item.event == events.GRANT_CREATED
        else f"pds: {item.event}",
        "consentReceiptID": str(uuid.uuid5(RECEIPT_NAMESPACE, f"{issuer}#{item.position}")),
        "language": "en",
        "piiPrincipalId": subject.hex(),  # the ledger pseudonym: the receipt names no one by itself
        "piiControllers": [{"piiController": "pds", "url": issuer, "onBehalf": False}],
        "policyUrl": issuer + "/account/access",
        "services": [
            {
                "service": client_name,
                "serviceId": d.get("client_id"),
                "purposes": [
                    {
                        "purpose": d.get("purpose"),
                        "purposeCategory": ["Access to the citizen's own public-service records"],
                        "consentType": "EXPLICIT",
                        "piiCategory": categories,
                        "primaryPurpose": True,
                        "termination": d.get("ends_at"),
                        "thirdPartyDisclosure": False,
                    }
                ],
            }
        ],
        "sensitive": any(c in SENSITIVE for c in categories),
        "spiCat": [SENSITIVE[c] for c in categories if c in SENSITIVE],
        # pds's own fields: the event, the grant as it stands after it, how to withdraw, and the proof
        "event": item.event,
        "grant": {
            "id": item.details.get("grant_id"),
            "status": d.get("status"),
            "starts_at": d.get("starts_at"),
            "ends_at": d.get("ends_at"),
            "records_from": d.get("records_from"),
            "records_until": d.get("records_until"),
        },
        "withdrawal": {
            "how": "Revoke it at any time on your 'Who can see my data' page; it stops the next read.",
            "url": issuer + "/account/access",
        },
        "ledger": {
            **proof,
            "salt": item.salt.hex(),
            "details": item.details,
            "verifier_key": verifier_key,
        },
    }


def sign_receipt(signing: SigningKeys, claims: dict[str, Any]) -> str:
    key = signing.active()
    return jwt.encode(claims, key.private_key, algorithm=ALG, headers={"kid": key.kid, "typ": RECEIPT_TYPE})


def client_name(session: Any, client_id: str | None) -> str:
    if not client_id:
        return "unknown"
    client = ClientService(session).get(client_id)
    return client.name if client is not None else client_id
