"""Consent requests over the API, as a GP system uses them: a professional signs in through pds's OpenID
provider with a real OAuth client (code flow, PKCE S256, a second factor), asks, follows, reads what was
granted, and is stopped at once when the patient revokes or the practice revokes them."""

from __future__ import annotations

import dataclasses
import time
import uuid
from urllib.parse import urljoin

import pyotp
import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from sqlalchemy import func, select

from consent import events
from consent.clients import ClientService
from consent.models import ConsentRequest
from consent.professionals import StaffService
from consent.requests import RequestService
from consent.services import GrantService
from pds.runtime import Runtime
from tests.conftest import add_citizen, record
from tests.web.live import REDIRECT_URI, Person
from tests.web.portal_helpers import NHS, SECRET, Professional, add_org, add_professional, csrf
from tests.web.test_oauth import authorize, oauth
from tests.web.test_openapi import Contract

GP_SCOPE = "openid profile consent.requests"
UNKNOWN_NHS = "9434765870"  # valid, and nobody's here
REQUESTS = "/api/v1/consent-requests"
ONE = REQUESTS + "/{request_id}"
RECORDS = ONE + "/records"
ASK = {
    "nhs_number": NHS,
    "purpose": "Diabetes annual review",
    "categories": ["health"],
    "resource_types": ["Observation", "AllergyIntolerance"],
    "days": 90,
}


@pytest.fixture
def practices(runtime: Runtime) -> None:
    add_org(runtime, "gp_practice", "A81001", "Riverside Surgery")
    add_org(runtime, "gp_practice", "B82002", "Hilltop Medical Centre")


@pytest.fixture
def gp_system(runtime: Runtime) -> dict[str, str]:
    """A GP system the operator registered: `pds clients add --for staff --scope "openid profile ..."`."""
    return _register(runtime, GP_SCOPE)


def _register(runtime: Runtime, scope: str) -> dict[str, str]:
    with runtime.sessions() as s, s.begin():
        made = ClientService(s).add(
            name="Riverside GP System",
            operator="GP Systems Ltd",
            purpose="The practice's clinical system",
            redirect_uris=[REDIRECT_URI],
            scope=scope,
            users="staff",
        )
        return {"client_id": made.client.client_id, "client_secret": made.secret or ""}


@pytest.fixture
def patient(runtime: Runtime, source: str) -> uuid.UUID:
    citizen = add_citizen(runtime, "Pat Patient", nhs_number=NHS, email="pat@example.org")
    allergy = record(citizen, "allergy", when="2025-06-01T09:00:00+00:00")
    allergy = dataclasses.replace(
        allergy,
        kind="fhir:AllergyIntolerance",
        payload={"resourceType": "AllergyIntolerance", "id": "allergy", "code": {"text": "Penicillin"}},
    )
    hba1c = record(citizen, "hba1c", when="2025-09-01T09:00:00+00:00", code={"text": "HbA1c"})
    with runtime.vault() as v:
        v.records.put([allergy, hba1c])
    return citizen


@pytest.fixture
def contract(base: str) -> Contract:
    return Contract(requests.get(base + "/openapi.json", timeout=10).json())


def _walk(http: requests.Session, r: requests.Response) -> requests.Response:
    """Follow pds's redirects, but not the last one: back to the GP system, which the test plays."""
    while r.status_code in (302, 303) and not r.headers["Location"].startswith(REDIRECT_URI):
        r = http.get(urljoin(r.url, r.headers["Location"]), allow_redirects=False, timeout=30)
    return r


def _second_factor(http: requests.Session, page: requests.Response, who: Professional) -> requests.Response:
    if "/staff/signin/enrol" in page.url:  # the first sign-in: set up the authenticator app
        match = SECRET.search(page.text)
        assert match, "no key shown to type into an authenticator"
        who.totp = match.group(1).replace(" ", "")
    assert who.totp, page.url
    code = pyotp.TOTP(who.totp).now()
    r = http.post(page.url, data={"csrf_token": csrf(page.text), "code": code}, allow_redirects=False)
    if r.status_code == 400:  # this time step's code was used already: wait for the next
        time.sleep(31 - time.time() % 30)
        r = http.post(
            page.url,
            data={"csrf_token": csrf(r.text), "code": pyotp.TOTP(who.totp).now()},
            allow_redirects=False,
        )
    return r


def sign_in(base: str, client: dict[str, str], who: Professional, scope: str = GP_SCOPE) -> OAuth2Session:
    """The GP system's sign-in: authorization code with PKCE S256 through pds's staff sign-in."""
    system = OAuth2Session(
        client["client_id"],
        client["client_secret"],
        scope=scope,
        redirect_uri=REDIRECT_URI,
        code_challenge_method="S256",
    )
    verifier = generate_token(48)
    url, state = system.create_authorization_url(base + "/oauth/authorize", code_verifier=verifier)
    browser = requests.Session()
    page = _walk(browser, browser.get(url, allow_redirects=False, timeout=30))
    assert "/staff/signin" in page.url and page.status_code == 200, page.url
    sent = browser.post(
        page.url,
        data={"csrf_token": csrf(page.text), "email": who.email, "password": who.password},
        allow_redirects=False,
    )
    back = _walk(browser, _second_factor(browser, _walk(browser, sent), who))
    location = back.headers["Location"]
    assert location.startswith(REDIRECT_URI) and f"state={state}" in location, location
    token = system.fetch_token(base + "/oauth/token", authorization_response=location, code_verifier=verifier)
    assert token["token_type"] == "Bearer" and set(token["scope"].split()) == set(scope.split())
    return system


def _approve(runtime: Runtime, citizen: uuid.UUID, request_id: str, **narrower: object) -> None:
    with runtime.vault() as v:
        RequestService(v.session, vault=v).approve(request_id, citizen_id=citizen, **narrower)  # type: ignore[arg-type]


def _problem(r: requests.Response, status: int, field: str | None = None) -> dict:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["Content-Type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == status and body["detail"]
    if field is not None:
        assert body.get("field") == field, body
    return body


def test_gp_system_asks_then_reads_only_what_was_granted_until_the_patient_revokes(
    runtime: Runtime, base: str, practices: None, gp_system: dict, patient: uuid.UUID, contract: Contract
) -> None:
    gp = add_professional(runtime, org_code="A81001")
    system = sign_in(base, gp_system, gp)

    made = system.post(base + REQUESTS, json=ASK)
    assert made.status_code == 201, made.text
    asked = contract.check(REQUESTS, "post", made)
    assert made.headers["Location"] == f"{base}{REQUESTS}/{asked['id']}"
    assert asked["status"] == "pending" and asked["patient"] == {"nhs_number_ends": "919"}
    assert NHS not in made.text  # the number itself is never echoed back
    assert asked["categories"] == ["health"] and asked["days"] == 90 and asked["grant"] is None
    path = ONE.format(request_id=asked["id"])
    records = RECORDS.format(request_id=asked["id"])
    assert contract.check(ONE, "get", system.get(base + path))["status"] == "pending"
    waiting = system.get(base + records)
    assert _problem(waiting, 403)["detail"] == "nothing has been granted: the request is pending"
    contract.check(RECORDS, "get", waiting)

    _approve(runtime, patient, asked["id"], resource_types=["AllergyIntolerance"])  # the patient gives less
    now = contract.check(ONE, "get", system.get(base + path))
    assert now["status"] == "approved_with_changes" and now["decided_at"]
    assert now["grant"]["categories"] == ["health"] and now["grant"]["resource_types"] == [
        "AllergyIntolerance"
    ]
    read = system.get(base + records)
    assert read.status_code == 200, read.text
    shown = contract.check(RECORDS, "get", read)
    assert [r["kind"] for r in shown["records"]] == ["fhir:AllergyIntolerance"]  # not the HbA1c
    assert shown["records"][0]["payload"]["code"] == {"text": "Penicillin"} and shown["total"] == 1
    assert shown["records"][0]["occurred_at"].startswith("2025-06-01T09:00:00")

    with runtime.vault() as v:
        grant_id = RequestService(v.session, vault=v).get_for_citizen(asked["id"], patient).grant_id
        GrantService(v.session).revoke(grant_id, citizen_id=patient)  # type: ignore[arg-type]
    refused = system.get(base + records)
    assert "revoked" in _problem(refused, 403)["detail"]
    assert system.get(base + path).json()["status"] == "revoked"
    with runtime.vault() as v:
        entries = events.history(v.session, patient)
    reads = [e for e in entries if e.event == events.RECORDS_READ]
    assert len(reads) == 1  # the one read allowed, committed with its response, and no more
    assert reads[0].details["count"] == 1
    assert {events.REQUEST_MADE, events.GRANT_CREATED, events.GRANT_REVOKED} <= {e.event for e in entries}


def test_an_unknown_number_gets_the_same_answer(
    runtime: Runtime, base: str, practices: None, gp_system: dict, patient: uuid.UUID
) -> None:
    system = sign_in(base, gp_system, add_professional(runtime, org_code="A81001"))
    known = system.post(base + REQUESTS, json=ASK)
    unknown = system.post(base + REQUESTS, json={**ASK, "nhs_number": UNKNOWN_NHS})
    assert known.status_code == unknown.status_code == 201
    a, b = known.json(), unknown.json()
    differ = {k for k in a if a[k] != b[k]}
    assert differ == {"id", "created_at", "expires_at", "patient"}, differ
    assert b["status"] == "pending" and b["patient"] == {"nhs_number_ends": "870"}
    assert system.get(unknown.headers["Location"]).json()["status"] == "pending"


def test_revoked_staff_are_refused_at_once(
    runtime: Runtime, base: str, practices: None, gp_system: dict, patient: uuid.UUID
) -> None:
    gp = add_professional(runtime, org_code="A81001")
    system = sign_in(base, gp_system, gp)
    made = system.post(base + REQUESTS, json=ASK).json()
    _approve(runtime, patient, made["id"])
    assert system.get(base + RECORDS.format(request_id=made["id"])).status_code == 200
    with runtime.sessions() as s, s.begin():
        StaffService(s).revoke(gp.staff_id)
    for r in (
        system.get(base + RECORDS.format(request_id=made["id"])),
        system.get(base + ONE.format(request_id=made["id"])),
        system.post(base + REQUESTS, json=ASK),
    ):
        _problem(r, 401)
        assert 'error="invalid_token"' in r.headers["WWW-Authenticate"]


def test_another_organisations_professional_finds_nothing(
    runtime: Runtime, base: str, practices: None, gp_system: dict, patient: uuid.UUID
) -> None:
    ours = sign_in(base, gp_system, add_professional(runtime, org_code="A81001"))
    made = ours.post(base + REQUESTS, json=ASK).json()
    _approve(runtime, patient, made["id"])
    theirs = sign_in(base, gp_system, add_professional(runtime, org_code="B82002", name="Dr Other"))
    for path in (ONE, RECORDS):
        _problem(theirs.get(base + path.format(request_id=made["id"])), 404, "request_id")
        _problem(theirs.get(base + path.format(request_id="not-a-uuid")), 404, "request_id")
        _problem(theirs.get(base + path.format(request_id=uuid.uuid4())), 404, "request_id")
    # a colleague at the same practice may follow the request, but the grant is to the one who asked
    colleague = sign_in(base, gp_system, add_professional(runtime, org_code="A81001", name="Dr Colleague"))
    assert colleague.get(base + ONE.format(request_id=made["id"])).json()["status"] == "approved"
    _problem(colleague.get(base + RECORDS.format(request_id=made["id"])), 403)


def test_a_citizens_app_token_is_refused(
    runtime: Runtime, base: str, app_client: dict, alice: Person, practices: None
) -> None:
    from tests.web.live import Browser

    browser = Browser(base)
    browser.sign_in(alice)
    app = oauth(base, app_client)
    authorize(base, app, browser)
    assert app.get(base + "/api/v1/me").status_code == 200  # a good token, for the citizen's API
    for r in (app.post(base + REQUESTS, json=ASK), app.get(base + ONE.format(request_id=uuid.uuid4()))):
        body = _problem(r, 403)
        assert "not a professional" in body["detail"]
        assert 'error="insufficient_scope"' in r.headers["WWW-Authenticate"]
    _problem(requests.post(base + REQUESTS, json=ASK, timeout=10), 401)  # no token at all
    garbage = requests.get(base + REQUESTS + "/x", headers={"Authorization": "Bearer x.y.z"}, timeout=10)
    _problem(garbage, 401)


def test_a_token_without_the_consent_requests_scope_is_refused(
    runtime: Runtime, base: str, practices: None
) -> None:
    sign_in_only = _register(runtime, "openid profile")
    system = sign_in(base, sign_in_only, add_professional(runtime, org_code="A81001"), scope="openid profile")
    r = system.post(base + REQUESTS, json=ASK)
    assert "consent.requests" in _problem(r, 403)["detail"]
    assert 'error="insufficient_scope"' in r.headers["WWW-Authenticate"]


MALFORMED: list[tuple[bytes | dict, str]] = [
    (b"{", "body"),
    (b"", "body"),
    (b"[]", "body"),
    (b'"a request"', "body"),
    (b"\xff\xfe\x00", "body"),
    (b"[" * 10_000, "body"),  # deeper than the parser's stack
    (b'{"days": NaN}', "body"),
    (b'{"days": ' + b"9" * 5000 + b"}", "body"),  # more digits than Python converts
    (b'{"purpose": "a", "purpose": "b"}', "purpose"),
    ({**ASK, "colour": "blue"}, "colour"),
    ({k: v for k, v in ASK.items() if k != "purpose"}, "purpose"),
    ({**ASK, "nhs_number": 9434765919}, "nhs_number"),
    ({**ASK, "nhs_number": "1234567890"}, "nhs_number"),
    ({**ASK, "days": "90"}, "days"),
    ({**ASK, "days": True}, "days"),
    ({**ASK, "days": 90.5}, "days"),
    ({**ASK, "days": 0}, "days"),
    ({**ASK, "categories": "health"}, "categories"),
    ({**ASK, "categories": [1]}, "categories"),
    ({**ASK, "categories": []}, "categories"),
    ({**ASK, "categories": ["education"]}, "categories"),  # not a GP's to ask for
    ({**ASK, "resource_types": ["Patient"]}, "resource_types"),
    ({**ASK, "resource_types": {"a": 1}}, "resource_types"),
    ({**ASK, "purpose": ""}, "purpose"),
    ({**ASK, "purpose": "x" * 501}, "purpose"),
    ({**ASK, "purpose": "nul\x00inside"}, "purpose"),
    (b'{"nhs_number": "9434765919", "purpose": "\\ud800", "categories": ["health"], "days": 9}', "purpose"),
    ({**ASK, "records_from": "2025-02-30"}, "records_from"),
    ({**ASK, "records_from": 20250101}, "records_from"),
    ({**ASK, "records_from": "2025-06-01", "records_until": "2025-01-01"}, "records_from"),
    ({**ASK, "callback_url": "http://[::1"}, "callback_url"),
    ({**ASK, "callback_url": "http://example.org/cb"}, "callback_url"),
    ({**ASK, "callback_url": "ftp://example.org/cb"}, "callback_url"),
    ({**ASK, "callback_url": ["https://example.org"]}, "callback_url"),
]


def test_malformed_bodies_are_refused_naming_the_field(
    runtime: Runtime, base: str, practices: None, gp_system: dict, patient: uuid.UUID, contract: Contract
) -> None:
    system = sign_in(base, gp_system, add_professional(runtime, org_code="A81001"))
    for sent, field in MALFORMED:
        if isinstance(sent, dict):
            r = system.post(base + REQUESTS, json=sent)
        else:
            r = system.post(base + REQUESTS, data=sent, headers={"Content-Type": "application/json"})
        assert r.status_code == 422, (sent if isinstance(sent, dict) else sent[:40], r.status_code, r.text)
        _problem(r, 422, field)
        contract.check(REQUESTS, "post", r)
    as_form = system.post(base + REQUESTS, data={"nhs_number": NHS})
    _problem(as_form, 415, "Content-Type")
    contract.check(REQUESTS, "post", as_form)
    too_big = system.post(base + REQUESTS, json={**ASK, "purpose": "x" * 20_000})
    _problem(too_big, 413, "body")
    with runtime.sessions() as s:
        assert s.scalar(select(func.count()).select_from(ConsentRequest)) == 0  # none was made
