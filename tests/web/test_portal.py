"""The professionals' portal over real HTTP: OpenID sign-in with a second factor, a request, its answer,
reading only what was granted, revocation, emergency access and the boundaries between organisations."""

from __future__ import annotations

import dataclasses
import re

import pytest

from consent import events
from consent.requests import RequestService
from consent.services import GrantService
from pds.runtime import Runtime
from tests.conftest import add_citizen, record
from tests.web.portal_helpers import NHS, PortalBrowser, add_org, add_professional, csrf

REQUEST_URL = re.compile(r"/portal/requests/([0-9a-f-]{36})$")


@pytest.fixture
def practices(runtime: Runtime) -> None:
    add_org(runtime, "gp_practice", "A81001", "Riverside Surgery")
    add_org(runtime, "gp_practice", "B82002", "Hilltop Medical Centre")
    add_org(runtime, "school", "100001", "Hillview Academy")


@pytest.fixture
def patient(runtime: Runtime, source: str):  # type: ignore[no-untyped-def]
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


def _decide(runtime: Runtime, citizen, request_id: str, **narrower: object) -> None:  # type: ignore[no-untyped-def]
    with runtime.vault() as v:
        RequestService(v.session, vault=v).approve(request_id, citizen_id=citizen, **narrower)  # type: ignore[arg-type]


def test_signin_requires_a_second_factor_and_goes_through_the_provider(
    runtime: Runtime, base: str, practices: None
) -> None:
    gp = add_professional(runtime, org_code="A81001")
    browser = PortalBrowser(base)
    landed = browser.sign_in(gp)
    assert landed.url == base + "/portal" and "Requests for consent" in landed.text
    assert any("/oauth/authorize" in h.url for h in landed.history)  # a real code flow, not a shortcut
    assert gp.totp  # enrolled at the first sign-in
    # the second time, the code is asked for, and a wrong one does not sign in
    again = PortalBrowser(base)
    page = again.http.get(base + "/portal", timeout=30)
    r = again.http.post(
        page.url, data={"csrf_token": csrf(page.text), "email": gp.email, "password": gp.password}
    )
    assert r.url.endswith("/staff/signin/code")
    wrong = again.http.post(r.url, data={"csrf_token": csrf(r.text), "code": "000000"})
    assert wrong.status_code == 400 and "not right" in wrong.text
    assert again.http.get(base + "/portal", timeout=30).url.startswith(base + "/staff/signin")


def test_request_approved_narrower_read_then_revoked(
    runtime: Runtime, base: str, practices: None, patient
) -> None:  # type: ignore[no-untyped-def]
    gp = add_professional(runtime, org_code="A81001")
    browser = PortalBrowser(base)
    browser.sign_in(gp)
    sent = browser.ask(resource_types=["Observation", "AllergyIntolerance"])
    assert sent.status_code == 303, sent.text
    request_id = REQUEST_URL.search(sent.headers["Location"]).group(1)  # type: ignore[union-attr]
    page = browser.http.get(base + f"/portal/requests/{request_id}", timeout=30)
    assert "Request sent" in page.text and "Waiting for the patient" in page.text
    assert browser.http.get(base + f"/portal/requests/{request_id}/status").json()["status"] == "pending"
    assert browser.http.get(base + f"/portal/requests/{request_id}/records").status_code == 403

    _decide(runtime, patient, request_id, resource_types=["AllergyIntolerance"])  # the patient gives less
    status = browser.http.get(base + f"/portal/requests/{request_id}/status").json()
    assert status["status"] == "approved_with_changes" and status["readable"]
    shown = browser.http.get(base + f"/portal/requests/{request_id}/records", timeout=30)
    assert shown.status_code == 200 and "Penicillin" in shown.text and "HbA1c" not in shown.text

    with runtime.vault() as v:
        grant_id = RequestService(v.session, vault=v).get_for_citizen(request_id, patient).grant_id
        GrantService(v.session).revoke(grant_id, citizen_id=patient)  # type: ignore[arg-type]
    refused = browser.http.get(base + f"/portal/requests/{request_id}/records", timeout=30)
    assert refused.status_code == 403 and "revoked" in refused.text
    assert browser.http.get(base + f"/portal/requests/{request_id}/status").json()["status"] == "revoked"
    with runtime.vault() as v:
        kinds = [i.event for i in events.history(v.session, patient)]
    assert kinds.count(events.RECORDS_READ) == 1  # the one view allowed, and no more
    assert {events.REQUEST_MADE, events.GRANT_CREATED, events.GRANT_REVOKED} <= set(kinds)


def test_an_unknown_number_gets_the_same_answer(runtime: Runtime, base: str, practices: None) -> None:
    gp = add_professional(runtime, org_code="A81001")
    browser = PortalBrowser(base)
    browser.sign_in(gp)
    unknown = browser.ask("9434765870")
    assert unknown.status_code == 303
    page = browser.http.get(base + unknown.headers["Location"], timeout=30)
    assert "Request sent" in page.text and "Waiting for the patient" in page.text
    bad = browser.ask("1234567890")
    assert bad.status_code == 400 and "not a valid NHS number" in bad.text


def test_other_organisations_and_roles_are_refused(
    runtime: Runtime, base: str, practices: None, patient
) -> None:  # type: ignore[no-untyped-def]
    gp = add_professional(runtime, org_code="A81001")
    other = add_professional(runtime, org_code="B82002", name="Dr Other")
    teacher = add_professional(runtime, org_code="100001", role="teacher", name="Mr Teacher")
    ours = PortalBrowser(base)
    ours.sign_in(gp)
    request_id = REQUEST_URL.search(ours.ask().headers["Location"]).group(1)  # type: ignore[union-attr]
    _decide(runtime, patient, request_id)

    theirs = PortalBrowser(base)
    theirs.sign_in(other)
    for path in ("", "/status", "/records"):
        assert theirs.http.get(base + f"/portal/requests/{request_id}{path}", timeout=30).status_code == 404
    assert request_id not in theirs.http.get(base + "/portal", timeout=30).text

    school = PortalBrowser(base)
    school.sign_in(teacher)
    asked = school.ask(categories=["health"])
    assert asked.status_code == 400 and "not a valid choice" in asked.text.lower()
    assert school.http.get(base + "/portal/emergency", timeout=30).status_code == 403


def test_revoked_staff_lose_access_at_once(runtime: Runtime, base: str, practices: None, patient) -> None:  # type: ignore[no-untyped-def]
    gp = add_professional(runtime, org_code="A81001")
    admin = add_professional(runtime, org_code="A81001", role="admin", name="Ms Admin")
    browser = PortalBrowser(base)
    browser.sign_in(gp)
    request_id = REQUEST_URL.search(browser.ask().headers["Location"]).group(1)  # type: ignore[union-attr]
    _decide(runtime, patient, request_id)
    assert browser.http.get(base + f"/portal/requests/{request_id}/records", timeout=30).status_code == 200

    office = PortalBrowser(base)
    office.sign_in(admin)
    page = office.http.get(base + "/portal/admin", timeout=30)
    assert "Dr Asha Patel" in page.text
    done = office.http.post(
        base + f"/portal/admin/staff/{gp.staff_id}/revoke", data={"csrf_token": csrf(page.text)}, timeout=30
    )
    assert done.status_code == 200 and "can no longer sign in" in done.text
    after = browser.http.get(
        base + f"/portal/requests/{request_id}/records", timeout=30, allow_redirects=False
    )
    assert after.status_code == 303  # signed out at once: back to sign-in, and no record shown


def test_emergency_access_is_flagged_told_and_reviewed(
    runtime: Runtime, base: str, practices: None, patient
) -> None:  # type: ignore[no-untyped-def]
    gp = add_professional(runtime, org_code="A81001")
    admin = add_professional(runtime, org_code="A81001", role="admin", name="Ms Admin")
    browser = PortalBrowser(base)
    browser.sign_in(gp)
    form = browser.http.get(base + "/portal/emergency", timeout=30)
    no_reason = browser.http.post(
        base + "/portal/emergency",
        data={"csrf_token": csrf(form.text), "nhs_number": NHS, "reason": ""},
        timeout=30,
    )
    assert no_reason.status_code == 400 and "reason" in no_reason.text
    opened = browser.http.post(
        base + "/portal/emergency",
        data={
            "csrf_token": csrf(form.text),
            "nhs_number": NHS,
            "reason": "Unconscious in A&E, allergies needed",
        },
        timeout=30,
    )
    assert opened.status_code == 200 and "Penicillin" in opened.text and "Emergency access" in opened.text
    with runtime.vault() as v:
        told = v.notifications.due()
        entries = events.history(v.session, patient)
    assert [m.kind for m in told] == ["emergency_access"]
    assert any(e.event == events.EMERGENCY_ACCESS and e.details.get("emergency") for e in entries)
    assert any(e.event == events.RECORDS_READ and e.details.get("emergency") for e in entries)
    office = PortalBrowser(base)
    office.sign_in(admin)
    review = office.http.get(base + "/portal/admin", timeout=30)
    assert "Unconscious in A&amp;E, allergies needed" in review.text
