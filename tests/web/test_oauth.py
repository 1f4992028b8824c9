"""The OAuth consent layer over HTTP, driven by Authlib's own OAuth client and a signing-in browser."""

from __future__ import annotations

import datetime as dt

import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from sqlalchemy import select, update

from consent import events
from consent.clients import ClientService
from consent.models import Grant, OAuthToken
from pds.runtime import Runtime
from tests.conftest import record
from tests.web.conftest import SCOPE
from tests.web.live import REDIRECT_URI, Browser, Person, add_person, query_of


def oauth(base: str, client: dict[str, str], scope: str = SCOPE) -> OAuth2Session:
    return OAuth2Session(
        client["client_id"],
        client["client_secret"],
        scope=scope,
        redirect_uri=REDIRECT_URI,
        code_challenge_method="S256",
    )


def authorize(
    base: str, session: OAuth2Session, browser: Browser, *, categories: list[str] | None = None, **extra: str
) -> tuple[dict, str]:
    """Run the authorization code flow through the real consent form; return the token and verifier."""
    verifier = generate_token(48)
    url, state = session.create_authorization_url(base + "/oauth/authorize", code_verifier=verifier, **extra)
    page = browser.open(url)
    if page.status_code == 200:  # the consent screen
        answer = browser.decide(url, page, categories=categories)
        assert answer.status_code == 303, answer.text
        location = answer.headers["Location"]
    else:  # already granted: straight back to the app
        assert page.status_code == 302, page.text
        location = page.headers["Location"]
    params = query_of(location)
    assert params["state"] == state and params["iss"] == base  # RFC 9207
    token = session.fetch_token(
        base + "/oauth/token", authorization_response=location, code_verifier=verifier
    )
    return token, verifier


def connected(base: str, client: dict[str, str], person: Person) -> tuple[OAuth2Session, Browser]:
    """The usual start: the citizen signs in and allows the app everything it asks for."""
    browser = Browser(base)
    browser.sign_in(person)
    session = oauth(base, client)
    authorize(base, session, browser)
    return session, browser


def test_app_reads_records_after_the_citizen_allows(base: str, app_client: dict, alice: Person) -> None:
    browser = Browser(base)
    browser.sign_in(alice)
    session = oauth(base, app_client)
    token, _ = authorize(base, session, browser)
    assert token["token_type"] == "Bearer" and token["expires_in"] <= 600
    assert {"access_token", "refresh_token", "id_token"} <= set(token)
    listed = session.get(base + "/api/v1/records")
    assert listed.status_code == 200, listed.text
    records = listed.json()["records"]
    assert {r["source_record_id"] for r in records} == {"alice-hba1c", "alice-maths"}
    me = session.get(base + "/api/v1/me").json()
    assert me["sub"] == str(alice.citizen_id) and me["name"] == "Alice Example"
    one = session.get(base + f"/api/v1/records/{records[0]['id']}")
    assert one.status_code == 200 and one.json()["id"] == records[0]["id"]


def test_the_consent_screen_says_who_what_why_and_how_long(
    base: str, app_client: dict, alice: Person
) -> None:
    browser = Browser(base)
    browser.sign_in(alice)
    url, _ = oauth(base, app_client).create_authorization_url(
        base + "/oauth/authorize", code_verifier=generate_token(48)
    )
    page = browser.open(url)
    assert page.status_code == 200
    for text in (
        "Diabetes Diary",
        "Example Health Ltd",
        "Charts your HbA1c over time",
        "not checked",
        "Your GP health record",
        "School progress",
        "For how long",
        "Allow",
        "Deny",
    ):
        assert text in page.text
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]


def test_signing_in_is_asked_first(base: str, app_client: dict) -> None:
    url, _ = oauth(base, app_client).create_authorization_url(
        base + "/oauth/authorize", code_verifier=generate_token(48)
    )
    r = requests.get(url, allow_redirects=False, timeout=10)
    assert r.status_code == 303 and r.headers["Location"].startswith("/signin?next=")


def test_unticked_categories_are_not_granted(base: str, app_client: dict, alice: Person) -> None:
    browser = Browser(base)
    browser.sign_in(alice)
    session = oauth(base, app_client)
    token, _ = authorize(base, session, browser, categories=["education"])
    assert "health.read" not in token["scope"].split() and "education.read" in token["scope"].split()
    records = session.get(base + "/api/v1/records").json()["records"]
    assert [r["category"] for r in records] == ["education"]
    health = session.get(base + "/api/v1/records", params={"category": "health"})
    assert health.status_code == 403
    assert 'error="insufficient_scope"' in health.headers["WWW-Authenticate"]
    assert health.headers["Content-Type"] == "application/problem+json"


def test_an_education_token_cannot_read_health(base: str, app_client: dict, alice: Person) -> None:
    browser = Browser(base)
    browser.sign_in(alice)
    session = oauth(base, app_client, scope="education.read")
    authorize(base, session, browser)
    listed = session.get(base + "/api/v1/records").json()["records"]
    assert {r["category"] for r in listed} == {"education"}
    with_health = session.get(base + "/api/v1/records", params={"category": "health"})
    assert with_health.status_code == 403


def test_an_already_granted_app_is_not_asked_again(base: str, app_client: dict, alice: Person) -> None:
    browser = Browser(base)
    browser.sign_in(alice)
    authorize(base, oauth(base, app_client), browser)
    url, _ = oauth(base, app_client).create_authorization_url(
        base + "/oauth/authorize", code_verifier=generate_token(48)
    )
    again = browser.open(url)
    assert again.status_code == 302 and "code=" in again.headers["Location"]


def test_deny_sends_access_denied(base: str, app_client: dict, alice: Person, runtime: Runtime) -> None:
    browser = Browser(base)
    browser.sign_in(alice)
    url, state = oauth(base, app_client).create_authorization_url(
        base + "/oauth/authorize", code_verifier=generate_token(48)
    )
    answer = browser.decide(url, browser.open(url), allow=False)
    assert answer.status_code == 303
    params = query_of(answer.headers["Location"])
    assert params["error"] == "access_denied" and params["state"] == state
    with runtime.sessions() as s:
        assert [h.event for h in events.history(s, alice.citizen_id)] == ["consent.request.denied"]


def test_refresh_rotates_and_reuse_revokes_the_family(base: str, app_client: dict, alice: Person) -> None:
    browser = Browser(base)
    browser.sign_in(alice)
    session = oauth(base, app_client)
    first, _ = authorize(base, session, browser)
    second = session.refresh_token(base + "/oauth/token", refresh_token=first["refresh_token"])
    assert second["refresh_token"] != first["refresh_token"]
    assert session.get(base + "/api/v1/records").status_code == 200
    # the old refresh token is replayed (stolen?): refused, and the whole family dies
    replay = requests.post(
        base + "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        auth=(app_client["client_id"], app_client["client_secret"]),
        timeout=10,
    )
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    assert session.get(base + "/api/v1/records").status_code == 401
    newer = requests.post(
        base + "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": second["refresh_token"]},
        auth=(app_client["client_id"], app_client["client_secret"]),
        timeout=10,
    )
    assert newer.status_code == 400


def test_a_replayed_code_is_refused_and_revokes_what_it_issued(
    base: str, app_client: dict, alice: Person
) -> None:
    browser = Browser(base)
    browser.sign_in(alice)
    session = oauth(base, app_client)
    verifier = generate_token(48)
    url, _ = session.create_authorization_url(base + "/oauth/authorize", code_verifier=verifier)
    location = browser.decide(url, browser.open(url)).headers["Location"]
    session.fetch_token(base + "/oauth/token", authorization_response=location, code_verifier=verifier)
    assert session.get(base + "/api/v1/records").status_code == 200
    code = query_of(location)["code"]
    replay = requests.post(
        base + "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
        },
        auth=(app_client["client_id"], app_client["client_secret"]),
        timeout=10,
    )
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    assert session.get(base + "/api/v1/records").status_code == 401


@pytest.mark.parametrize("tamper", ["wrong_verifier", "no_verifier", "wrong_redirect"])
def test_pkce_and_redirect_mismatches_are_refused(
    base: str, app_client: dict, alice: Person, tamper: str
) -> None:
    browser = Browser(base)
    browser.sign_in(alice)
    verifier = generate_token(48)
    url, _ = oauth(base, app_client).create_authorization_url(
        base + "/oauth/authorize", code_verifier=verifier
    )
    code = query_of(browser.decide(url, browser.open(url)).headers["Location"])["code"]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier,
    }
    if tamper == "wrong_verifier":
        form["code_verifier"] = generate_token(48)
    elif tamper == "no_verifier":
        del form["code_verifier"]
    else:
        form["redirect_uri"] = REDIRECT_URI + "/"
    r = requests.post(
        base + "/oauth/token",
        data=form,
        auth=(app_client["client_id"], app_client["client_secret"]),
        timeout=10,
    )
    assert r.status_code == 400
    assert r.json()["error"] in ("invalid_grant", "invalid_request")
    assert "error_description" in r.json()


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge": None}, "invalid_request"),
        ({"state": None}, "invalid_request"),
        ({"scope": "health.read admin"}, "invalid_scope"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"resource": "https://evil.example/api"}, "invalid_target"),
    ],
)
def test_bad_authorization_requests_are_sent_back_with_an_error(
    base: str, app_client: dict, alice: Person, change: dict, error: str
) -> None:
    browser = Browser(base)
    browser.sign_in(alice)
    params = {
        "response_type": "code",
        "client_id": app_client["client_id"],
        "redirect_uri": REDIRECT_URI,
        "scope": "health.read",
        "state": "s1",
        "code_challenge": create_s256_code_challenge(generate_token(48)),
        "code_challenge_method": "S256",
    }
    params.update(change)
    r = browser.http.get(
        base + "/oauth/authorize",
        params={k: v for k, v in params.items() if v is not None},
        allow_redirects=False,
    )
    assert r.status_code == 302, r.text
    assert r.headers["Location"].startswith(REDIRECT_URI)
    assert query_of(r.headers["Location"])["error"] == error


@pytest.mark.parametrize(
    "redirect", [REDIRECT_URI + "/", REDIRECT_URI + "?x=1", "https://evil.example/cb", REDIRECT_URI.upper()]
)
def test_an_unregistered_redirect_is_never_followed(
    base: str, app_client: dict, alice: Person, redirect: str
) -> None:
    browser = Browser(base)
    browser.sign_in(alice)
    r = browser.http.get(
        base + "/oauth/authorize",
        params={
            "response_type": "code",
            "client_id": app_client["client_id"],
            "redirect_uri": redirect,
            "scope": "health.read",
            "state": "s",
            "code_challenge": create_s256_code_challenge(generate_token(48)),
            "code_challenge_method": "S256",
        },
        allow_redirects=False,
    )
    assert r.status_code == 400 and "Location" not in r.headers
    assert r.json()["error"] == "invalid_request"


def test_unknown_client_is_refused(base: str) -> None:
    r = requests.get(
        base + "/oauth/authorize",
        params={"response_type": "code", "client_id": "nobody", "redirect_uri": REDIRECT_URI, "state": "s"},
        allow_redirects=False,
        timeout=10,
    )
    assert r.status_code == 400 and r.json()["error"] == "invalid_client"
    t = requests.post(
        base + "/oauth/token", data={"grant_type": "client_credentials"}, auth=("nobody", "x"), timeout=10
    )
    assert t.status_code == 401 and t.json()["error"] == "invalid_client"


def test_password_and_implicit_grants_do_not_exist(base: str, app_client: dict) -> None:
    r = requests.post(
        base + "/oauth/token",
        data={"grant_type": "password", "username": "a", "password": "b"},
        auth=(app_client["client_id"], app_client["client_secret"]),
        timeout=10,
    )
    assert r.status_code == 400 and r.json()["error"] == "unsupported_grant_type"


def test_revoking_the_grant_stops_the_very_next_request(
    base: str, app_client: dict, alice: Person, runtime: Runtime
) -> None:
    from consent.services import GrantService

    session, _ = connected(base, app_client, alice)
    assert session.get(base + "/api/v1/records").status_code == 200
    with runtime.sessions() as s, s.begin():
        (grant,) = GrantService(s).for_citizen(alice.citizen_id)
        GrantService(s).revoke(grant.id, citizen_id=alice.citizen_id)
    after = session.get(base + "/api/v1/records")  # the JWT itself is still unexpired
    assert after.status_code == 401 and 'error="invalid_token"' in after.headers["WWW-Authenticate"]
    with runtime.sessions() as s:
        types = [h.event for h in events.history(s, alice.citizen_id)]
    assert (
        types[0] == "consent.grant.created"
        and "records.read" in types
        and types[-1] == "consent.grant.revoked"
    )


def test_an_expired_grant_stops_reads(base: str, app_client: dict, alice: Person, runtime: Runtime) -> None:
    session, _ = connected(base, app_client, alice)
    with runtime.sessions() as s, s.begin():
        s.execute(update(Grant).values(ends_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
    assert session.get(base + "/api/v1/records").status_code == 401
    with runtime.sessions() as s:
        assert s.scalar(select(Grant.status)) == "expired"
        assert "consent.grant.expired" in [h.event for h in events.history(s, alice.citizen_id)]


def test_one_citizens_token_never_reaches_another_citizens_records(
    base: str, app_client: dict, alice: Person, runtime: Runtime
) -> None:
    bob = add_person(runtime, "Bob Example", "bob@example.org")
    with runtime.vault() as v:
        (bobs,) = v.records.put([record(bob.citizen_id, "bob-secret", source="gp")]).stored
    session, _ = connected(base, app_client, alice)
    assert "bob-secret" not in session.get(base + "/api/v1/records").text
    assert session.get(base + f"/api/v1/records/{bobs}").status_code == 404


def test_revocation_and_introspection_endpoints(base: str, app_client: dict, alice: Person) -> None:
    browser = Browser(base)
    browser.sign_in(alice)
    session = oauth(base, app_client)
    token, _ = authorize(base, session, browser)
    auth = (app_client["client_id"], app_client["client_secret"])
    info = requests.post(
        base + "/oauth/introspect", data={"token": token["access_token"]}, auth=auth, timeout=10
    )
    assert info.json()["active"] is True and info.json()["sub"] == str(alice.citizen_id)
    r = requests.post(base + "/oauth/revoke", data={"token": token["refresh_token"]}, auth=auth, timeout=10)
    assert r.status_code == 200
    info = requests.post(
        base + "/oauth/introspect", data={"token": token["access_token"]}, auth=auth, timeout=10
    )
    assert info.json() == {"active": False}
    assert session.get(base + "/api/v1/records").status_code == 401


def test_a_token_for_another_audience_is_refused(base: str, app_client: dict, alice: Person) -> None:
    browser = Browser(base)
    browser.sign_in(alice)
    session = oauth(base, app_client)
    authorize(base, session, browser, resource=base + "/fhir")
    r = session.get(base + "/api/v1/records")
    assert r.status_code == 401 and "not for" in r.json()["detail"]


def test_client_credentials_tokens_read_no_citizen(base: str, runtime: Runtime) -> None:
    with runtime.sessions() as s, s.begin():
        made = ClientService(s).add(
            name="GP system", redirect_uris=[], scope="health.read", grant_types=["client_credentials"]
        )
        cid, secret = made.client.client_id, made.secret
    session = OAuth2Session(cid, secret, scope="health.read")
    token = session.fetch_token(base + "/oauth/token", grant_type="client_credentials")
    assert "refresh_token" not in token
    r = session.get(base + "/api/v1/records")
    assert r.status_code == 403


def test_metadata_and_jwks_describe_the_server(base: str) -> None:
    meta = requests.get(base + "/.well-known/oauth-authorization-server", timeout=10).json()
    assert meta["issuer"] == base and meta["code_challenge_methods_supported"] == ["S256"]
    assert "password" not in meta["grant_types_supported"] and meta["response_types_supported"] == ["code"]
    oidc = requests.get(base + "/.well-known/openid-configuration", timeout=10).json()
    assert oidc["jwks_uri"] == base + "/oauth/jwks" and oidc["userinfo_endpoint"]
    keys = requests.get(meta["jwks_uri"], timeout=10).json()["keys"]
    assert keys and all(k["kty"] == "EC" and "d" not in k for k in keys)


def test_tokens_are_stored_only_as_hashes(
    base: str, app_client: dict, alice: Person, runtime: Runtime
) -> None:
    browser = Browser(base)
    browser.sign_in(alice)
    token, _ = authorize(base, oauth(base, app_client), browser)
    with runtime.sessions() as s:
        row = s.scalars(select(OAuthToken)).one()
    assert token["refresh_token"] not in str(row.model_dump()) and token["access_token"] not in str(
        row.model_dump()
    )


def test_dynamic_registration_needs_an_initial_access_token(
    base: str, runtime: Runtime, alice: Person
) -> None:
    metadata = {
        "client_name": "Sugar Tracker",
        "redirect_uris": [REDIRECT_URI],
        "scope": "health.read",
        "grant_types": ["authorization_code"],
        "token_endpoint_auth_method": "none",
    }
    refused = requests.post(base + "/oauth/register", json=metadata, timeout=10)
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_token"
    with runtime.sessions() as s, s.begin():
        iat, _ = ClientService(s).issue_initial_access_token("test")
    made = requests.post(
        base + "/oauth/register", json=metadata, headers={"Authorization": f"Bearer {iat}"}, timeout=10
    )
    assert made.status_code == 201, made.text
    client = made.json()
    assert client["client_name"] == "Sugar Tracker" and "client_secret" not in client
    again = requests.post(
        base + "/oauth/register", json=metadata, headers={"Authorization": f"Bearer {iat}"}, timeout=10
    )
    assert again.status_code == 401  # the token registers one client only
    # the new public client can now run the flow, with PKCE and no secret
    browser = Browser(base)
    browser.sign_in(alice)
    session = OAuth2Session(
        client["client_id"],
        None,
        scope="health.read",
        redirect_uri=REDIRECT_URI,
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
    )
    authorize(base, session, browser)
    assert session.get(base + "/api/v1/records").status_code == 200


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"redirect_uris": ["http://evil.example/cb"]}, "invalid_redirect_uri"),
        ({"scope": "health.read admin"}, "invalid_client_metadata"),
        ({"grant_types": ["password"]}, "invalid_client_metadata"),
    ],
)
def test_bad_registrations_are_refused(base: str, runtime: Runtime, change: dict, error: str) -> None:
    with runtime.sessions() as s, s.begin():
        iat, _ = ClientService(s).issue_initial_access_token("test")
    metadata = {"client_name": "X", "redirect_uris": [REDIRECT_URI], "scope": "health.read", **change}
    r = requests.post(
        base + "/oauth/register", json=metadata, headers={"Authorization": f"Bearer {iat}"}, timeout=10
    )
    assert r.status_code == 400 and r.json()["error"] == error


def test_id_token_verifies_with_the_published_keys(
    base: str, app_client: dict, alice: Person, runtime: Runtime
) -> None:
    from joserfc import jwt as jose_jwt
    from joserfc.jwk import KeySet

    browser = Browser(base)
    browser.sign_in(alice)
    session = oauth(base, app_client)
    token, _ = authorize(base, session, browser, nonce="n-0S6_WzA2Mj")
    keys = KeySet.import_key_set(requests.get(base + "/oauth/jwks", timeout=10).json())
    claims = jose_jwt.decode(token["id_token"], keys, algorithms=["ES256"]).claims
    assert claims["iss"] == base and claims["aud"] == [app_client["client_id"]]
    assert claims["sub"] == str(alice.citizen_id) and claims["nonce"] == "n-0S6_WzA2Mj"
    assert claims["name"] == "Alice Example"
    with runtime.sessions() as s:  # the name and email it carried are in the ledger
        reads = [h.details["actor"] for h in events.history(s, alice.citizen_id) if h.event == "records.read"]
    assert "oauth:id_token" in reads
    info = session.get(base + "/api/v1/userinfo").json()
    assert info == {"sub": str(alice.citizen_id), "name": "Alice Example", "email": "alice@example.org"}


def test_rotated_signing_keys_stay_published_until_their_tokens_expire(
    base: str, app_client: dict, alice: Person, runtime: Runtime
) -> None:
    from consent.signing import SigningKeys

    session, browser = connected(base, app_client, alice)
    old_kid = requests.get(base + "/oauth/jwks", timeout=10).json()["keys"][0]["kid"]
    with runtime.sessions() as s, s.begin():
        new_kid, retired = SigningKeys(s, provider=runtime.provider).rotate()
    assert retired == old_kid
    kids = [k["kid"] for k in requests.get(base + "/oauth/jwks", timeout=10).json()["keys"]]
    assert kids == [new_kid, old_kid]
    assert session.get(base + "/api/v1/records").status_code == 200  # signed by the old key, still valid
    fresh = oauth(base, app_client)
    authorize(base, fresh, browser)
    import jwt as pyjwt

    assert pyjwt.get_unverified_header(fresh.token["access_token"])["kid"] == new_kid


@pytest.mark.parametrize(
    "header",
    [
        "Bearer",
        "Bearer not.a.jwt",
        "Basic abc",
        "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
        "Bearer " + "A" * 5000,
    ],
)
def test_malformed_tokens_get_a_clear_401(base: str, header: str) -> None:
    r = requests.get(base + "/api/v1/records", headers={"Authorization": header}, timeout=10)
    assert r.status_code == 401
    assert r.headers["Content-Type"] == "application/problem+json"
    if header in ("Bearer", "Basic abc"):  # no bearer token at all: a bare challenge (RFC 6750 s3.1)
        assert r.headers["WWW-Authenticate"] == 'Bearer realm="pds"'
    else:
        assert r.headers["WWW-Authenticate"].startswith('Bearer realm="pds", error="invalid_token"')


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/oauth/token", {"grant_type": "authorization_code", "code": "\x00" * 3}),
        ("/oauth/token", {"grant_type": "refresh_token", "refresh_token": "x" * 10000}),
        ("/oauth/token", {}),
        ("/oauth/revoke", {"token_type_hint": "access_token"}),  # no token at all
        ("/oauth/introspect", {"token": "%%%", "token_type_hint": "bogus"}),
        ("/oauth/register", {"not": "json"}),
    ],
)
def test_malformed_oauth_requests_never_get_a_500(base: str, app_client: dict, path: str, data: dict) -> None:
    r = requests.post(
        base + path, data=data, auth=(app_client["client_id"], app_client["client_secret"]), timeout=10
    )
    assert 400 <= r.status_code < 500, r.text
    assert "error" in r.json()


@pytest.mark.parametrize(
    "query",
    [
        "since=yesterday",
        "until=2026-01-01T00:00:00",
        "limit=-1",
        "limit=99999",
        "cursor=%ff",
        "category=gossip",
        "kind=" + "x" * 300,
    ],
)
def test_bad_record_queries_name_the_field(base: str, app_client: dict, alice: Person, query: str) -> None:
    session, _ = connected(base, app_client, alice)
    r = session.get(base + "/api/v1/records?" + query)
    assert r.status_code == 422, r.text
    assert r.headers["Content-Type"] == "application/problem+json"
    assert r.json()["field"] == query.split("=")[0]


def test_asking_for_more_than_was_granted_asks_again(base: str, app_client: dict, alice: Person) -> None:
    browser = Browser(base)
    browser.sign_in(alice)
    authorize(base, oauth(base, app_client, scope="health.read"), browser)
    url, _ = oauth(base, app_client, scope="health.read profile").create_authorization_url(
        base + "/oauth/authorize", code_verifier=generate_token(48)
    )
    page = browser.open(url)
    assert page.status_code == 200 and "Your name and email address" in page.text


def test_reads_stay_within_the_grants_record_dates(
    base: str, app_client: dict, alice: Person, runtime: Runtime
) -> None:
    session, _ = connected(base, app_client, alice)
    listed = session.get(base + "/api/v1/records").json()["records"]
    assert listed  # the demo records are dated 2026-01-01
    with runtime.sessions() as s, s.begin():  # the citizen limited the grant to records of 2025
        s.execute(update(Grant).values(records_from=dt.date(2025, 1, 1), records_until=dt.date(2025, 12, 31)))
    assert session.get(base + "/api/v1/records").json()["records"] == []
    assert session.get(base + f"/api/v1/records/{listed[0]['id']}").status_code == 404


@pytest.mark.parametrize(
    "header", ["null", "Basic", "Basic \u2603", "Basic bm90IGJhc2U2NA", "Basic " + "gICA"]
)
@pytest.mark.parametrize("path", ["/oauth/token", "/oauth/revoke", "/oauth/introspect"])
def test_an_unreadable_client_authorization_is_invalid_client_not_a_crash(
    base: str, header: str, path: str
) -> None:
    """Found by fuzzing: Authlib's Basic parser raises on these (no space, bad base64, not UTF-8)."""
    r = requests.post(
        base + path,
        data={"grant_type": "client_credentials", "token": "x"},
        headers={"Authorization": header.encode("utf-8").decode("latin-1")},
        timeout=10,
    )
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/oauth/authorize", {"response_type": "\x00", "client_id": "x"}),
        ("/oauth/token", {"grant_type": "\x00"}),
    ],
)
def test_forbidden_characters_in_oauth_parameters_are_a_bad_request(
    base: str, path: str, params: dict
) -> None:
    """Found by fuzzing: Authlib refuses to echo a NUL into its error and raised ValueError."""
    if path == "/oauth/authorize":
        r = requests.get(base + path, params=params, allow_redirects=False, timeout=10)
    else:
        r = requests.post(base + path, data=params, timeout=10)
    assert r.status_code in (400, 401) and "error" in r.json()


@pytest.mark.parametrize("body", [[1, 2], "x", None, {"email": 3}])
def test_a_json_body_on_a_form_page_is_a_clear_error(base: str, body: object) -> None:
    r = requests.post(base + "/signin", json=body, timeout=10)
    assert r.status_code == 400 and "Sign in" in r.text


def test_the_citizen_chooses_when_the_grant_ends(
    base: str, app_client: dict, alice: Person, runtime: Runtime
) -> None:
    browser = Browser(base)
    browser.sign_in(alice)
    url, _ = oauth(base, app_client).create_authorization_url(
        base + "/oauth/authorize", code_verifier=generate_token(48)
    )
    last_day = dt.date.today() + dt.timedelta(days=10)
    too_late = browser.decide(url, browser.open(url), ends_on=dt.date.today() + dt.timedelta(days=400))
    assert too_late.status_code == 400 and "within a year" in too_late.text
    with runtime.sessions() as s:
        assert s.scalars(select(Grant)).all() == []  # nothing granted by the refused form
    answer = browser.decide(url, browser.open(url), ends_on=last_day)
    assert answer.status_code == 303
    with runtime.sessions() as s:
        grant = s.scalars(select(Grant)).one()
    assert grant.ends_at == dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time(), dt.UTC)


def test_only_authlibs_refusal_of_forbidden_characters_is_called_the_clients_fault() -> None:
    from authlib.oauth2.rfc6749 import errors

    from pds.web.oauth import _raised_in_authlib

    with pytest.raises(ValueError, match="forbidden characters") as refused:
        errors.InvalidRequestError(description="\x00").get_body()
    assert _raised_in_authlib(refused.value)
    with pytest.raises(ValueError, match="invalid literal") as ours:
        int("not a number")  # as a bug of ours in the view or its template would
    assert not _raised_in_authlib(ours.value)
