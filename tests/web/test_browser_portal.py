"""Issue 7's whole loop in a real browser (Chromium), two people at once: a GP signs in through pds's
OpenID provider with a second factor and asks for consent; the patient approves less than was asked; the
GP's open request page changes without a reload; the GP reads only what was granted; the patient revokes;
the GP is refused; every step is in the patient's ledger. axe-core checks the portal's main pages."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
from playwright.sync_api import Browser as Chromium
from playwright.sync_api import Page, expect

from consent import events
from pds.runtime import Runtime
from tests.conftest import add_citizen, record
from tests.web.browser import TIMEOUT_MS, check_accessibility
from tests.web.live import Person
from tests.web.portal_helpers import NHS, add_org, add_professional

PASSWORD = "a long patient password"


@pytest.fixture
def two_pages(chromium: Chromium) -> Iterator[tuple[Page, Page]]:
    """The GP's browser and the patient's: separate contexts, so separate cookies. The CSP is bypassed
    only so that axe-core can be injected."""
    contexts = [chromium.new_context(locale="en-GB", timezone_id="UTC", bypass_csp=True) for _ in range(2)]
    for c in contexts:
        c.set_default_timeout(TIMEOUT_MS)
    try:
        yield contexts[0].new_page(), contexts[1].new_page()
    finally:
        for c in contexts:
            c.close()


@pytest.fixture
def patient(runtime: Runtime, source: str) -> Person:
    from pds.accounts import hash_password

    citizen = add_citizen(runtime, "Bob Example", nhs_number=NHS, email="bob@example.org")
    allergy = dataclasses.replace(
        record(citizen, "allergy", when="2025-06-01T09:00:00+00:00"),
        kind="fhir:AllergyIntolerance",
        payload={"resourceType": "AllergyIntolerance", "id": "allergy", "code": {"text": "Penicillin"}},
    )
    hba1c = record(citizen, "hba1c", when="2025-09-01T09:00:00+00:00", code={"text": "HbA1c"})
    with runtime.vault() as v:
        v.records.put([allergy, hba1c])
        v.citizens.set_password_hash(citizen, hash_password(PASSWORD))
    return Person(citizen, "bob@example.org", PASSWORD)


def test_gp_asks_patient_approves_less_gp_reads_patient_revokes(
    runtime: Runtime,
    base: str,
    patient: Person,
    two_pages: tuple[Page, Page],
    artifacts: Path,
) -> None:
    gp_page, bob_page = two_pages
    add_org(runtime, "gp_practice", "A81001", "Riverside Surgery")
    gp = add_professional(runtime, org_code="A81001", name="Dr Asha Patel")

    # the GP signs in: password, then setting up the authenticator the first time
    gp_page.goto(base + "/portal")
    expect(gp_page).to_have_url(re.compile(re.escape(base) + r"/staff/signin\?next=.*oauth"))
    check_accessibility(gp_page)
    gp_page.locator("#email").fill(gp.email)
    gp_page.locator("#password").fill(gp.password)
    gp_page.locator("#signin").click()
    expect(gp_page).to_have_url(base + "/staff/signin/enrol")
    secret = gp_page.locator("#secret").inner_text().replace(" ", "")
    gp_page.locator("#code").fill(pyotp.TOTP(secret).now())
    gp_page.locator("#turn-on").click()
    expect(gp_page).to_have_url(base + "/portal")
    expect(gp_page.locator("h1")).to_have_text("Requests for consent")
    check_accessibility(gp_page)
    gp_page.screenshot(path=str(artifacts / "portal-home.png"), full_page=True)

    # ... and asks for test results and allergies
    gp_page.locator("#new-request").click()
    check_accessibility(gp_page)
    gp_page.locator("#nhs_number").fill("943 476 5919")
    gp_page.locator("#purpose").fill("Diabetes annual review")
    gp_page.check("input[name=categories][value=health]")
    gp_page.check("input[name=resource_types][value=Observation]")
    gp_page.check("input[name=resource_types][value=AllergyIntolerance]")
    gp_page.screenshot(path=str(artifacts / "portal-new-request.png"), full_page=True)
    gp_page.locator("#send").click()
    status = gp_page.locator("#request-status")
    expect(status).to_have_text("Waiting for the patient")
    expect(gp_page.locator("#records-link")).to_be_hidden()
    check_accessibility(gp_page)
    gp_page.screenshot(path=str(artifacts / "portal-request.png"), full_page=True)

    # the patient signs in, finds the request, and shares the allergies but not the test results
    bob_page.goto(base + "/signin")
    bob_page.locator("#email").fill(patient.email)
    bob_page.locator("#password").fill(patient.password)
    bob_page.locator("#signin").click()
    bob_page.goto(base + "/account/requests")
    expect(bob_page.locator("main")).to_contain_text("Dr Asha Patel")
    expect(bob_page.locator("main")).to_contain_text("Diabetes annual review")
    bob_page.locator("[id^=answer-]").first.click()
    bob_page.check("#decision-change")
    bob_page.uncheck("input[name=resource_types][value=Observation]")
    bob_page.locator("#send-answer").click()
    expect(bob_page.locator("#decided-banner")).to_be_visible()

    # the GP's page, left open, changes by itself
    expect(status).to_have_text("Approved with changes", timeout=15_000)
    expect(gp_page.locator("#records-link")).to_be_visible()
    gp_page.locator("#view-records").click()
    main = gp_page.locator("main")
    expect(main).to_contain_text("Penicillin")
    expect(main).not_to_contain_text("HbA1c")
    check_accessibility(gp_page)
    gp_page.screenshot(path=str(artifacts / "portal-records.png"), full_page=True)
    records_url = gp_page.url

    # the patient stops it; the GP's next view is refused
    bob_page.goto(base + "/account/access")
    expect(bob_page.locator("main")).to_contain_text("Dr Asha Patel")
    bob_page.locator("a[href$='/revoke']").first.click()
    bob_page.locator("#confirm-revoke").click()
    expect(bob_page.locator("#revoked-banner")).to_be_visible()
    answer = gp_page.goto(records_url)
    assert answer is not None and answer.status == 403
    expect(gp_page.locator("body")).to_contain_text("revoked")

    with runtime.vault() as v:
        kinds = [i.event for i in events.history(v.session, patient.citizen_id)]
    assert kinds.count(events.REQUEST_MADE) == 1
    assert kinds.count(events.GRANT_CREATED) == 1 and kinds.count(events.GRANT_REVOKED) == 1
    assert kinds.count(events.RECORDS_READ) == 1  # the one view, and the refused one left no read
