import requests
from tests.web.live import Browser
from tests.web.test_oauth import alice, app_client, authorize, base, oauth  # noqa: F401


def show(r):
    print(
        r.request.method,
        r.request.url,
        r.status_code,
        r.headers.get("Content-Type"),
        r.headers.get("WWW-Authenticate"),
        r.text[:400],
    )


def test_explore(base, app_client, alice, runtime):
    auth = (app_client["client_id"], app_client["client_secret"])
    show(requests.get(base + "/api/v1/me"))
    show(requests.get(base + "/api/v1/me", headers={"Authorization": "Bearer junk"}))
    show(requests.post(base + "/oauth/token", data={"grant_type": "client_credentials"}, auth=("x", "y")))
    show(requests.post(base + "/oauth/token", data={}, auth=auth))
    show(requests.post(base + "/oauth/revoke", data={"token": "zz"}, auth=auth))
    show(requests.post(base + "/oauth/revoke", data={}, auth=auth))
    show(requests.post(base + "/oauth/introspect", data={"token": "zz"}, auth=("x", "y")))
    show(requests.post(base + "/oauth/introspect", data={"token": "zz"}))
    show(requests.get(base + "/oauth/token"))
    show(requests.get(base + "/oauth/register"))
    show(requests.get(base + "/oauth/authorize"))
    b = Browser(base)
    b.sign_in(alice)
    s = oauth(base, app_client)
    tok, _ = authorize(base, s, b)
    print(tok)
    for q in (
        {"since": "2026-01-01"},
        {"since": "bad"},
        {"limit": "0"},
        {"limit": "x"},
        {"cursor": "bad"},
        {"category": "nope"},
        {"kind": "fhir:Observation", "limit": "1"},
    ):
        show(s.get(base + "/api/v1/records", params=q))
    show(s.get(base + "/api/v1/me"))
    show(s.get(base + "/api/v1/userinfo"))
    show(s.post(base + "/api/v1/userinfo"))
    show(s.get(base + "/api/v1/records/nope"))
    show(requests.post(base + "/oauth/introspect", data={"token": tok["access_token"]}, auth=auth))
    show(requests.post(base + "/oauth/introspect", data={"token": tok["refresh_token"]}, auth=auth))
    show(requests.get(base + "/oauth/jwks"))
    show(requests.get(base + "/signin"))
