"""API reads in one process: what a read holds open while its ledger entry commits."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from flask import g

from consent.clients import ClientService
from consent.events import Event
from consent.models import OAuthToken
from consent.services import GrantService
from consent.signing import SigningKeys
from consent.tokens import issue_access_token
from pds import create_app
from pds.runtime import Runtime
from tests.conftest import add_citizen, record


def _token_for_a_live_grant(runtime: Runtime, citizen_id: uuid.UUID) -> str:
    """An access token as the token endpoint issues it, for a grant of the citizen's health records."""
    issuer = runtime.settings.server.public_url
    with runtime.vault() as v:
        client = ClientService(v.session).add(
            name="Reader app", redirect_uris=["http://127.0.0.1:9/cb"], scope="health.read"
        )
        client_id = client.client.client_id
        grant = GrantService(v.session).create(
            citizen_id=citizen_id,
            client_id=client_id,
            categories=["health"],
            scope="health.read",
            purpose="a test",
            ends_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=1),
            actor="test",
        )
        key = SigningKeys(v.session, provider=runtime.provider).active()
        token, claims = issue_access_token(
            key,
            issuer=issuer,
            client_id=client_id,
            scope="health.read",
            audience=issuer + "/api/v1",
            citizen_id=citizen_id,
            grant_id=grant.id,
        )
        v.session.add(
            OAuthToken(
                jti=claims.jti,
                client_id=client_id,
                citizen_id=citizen_id,
                grant_id=grant.id,
                scope=claims.scope,
                audience=claims.audience,
                access_expires_at=claims.expires_at,
            )
        )
    return token


@pytest.mark.parametrize("path", ["/api/v1/records", "/api/v1/me"])
def test_a_read_ends_its_read_transaction_before_its_entry_commits(
    runtime: Runtime, source: str, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    # A reader open across every entry's commit kept SQLite's WAL from ever being reset.
    alice = add_citizen(runtime)
    with runtime.vault() as v:
        v.records.put([record(alice, "obs-1")])
    token = _token_for_a_live_grant(runtime, alice)
    app = create_app(runtime.settings, runtime=runtime)
    readlog = app.extensions["pds.readlog"]
    appended, reading = readlog.append, []

    def append(entry: Event) -> None:
        reading.append(g.read_db.in_transaction())
        appended(entry)

    monkeypatch.setattr(readlog, "append", append)
    answer = app.test_client().get(path, headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    assert reading == [False]
