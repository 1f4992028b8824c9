"""Requests in a real browser (Chromium): the citizen signs in, sees the waiting request on the home page,
opens Requests, approves with less (a record type unticked, behind GOV.UK's conditional radio), finds the
GP on "Who can see my data", stops that access with one confirmation, and reads both in the access
history; axe-core finds no serious or critical problem on the pages; screenshots go to
$PDS_TEST_ARTIFACTS (or the test's tmp folder)."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Page, expect

from pds.runtime import Runtime
from tests.web.browser import check_accessibility
from tests.web.live import Person, add_person
from tests.web.test_browser_history import _note_error
from tests.web.test_requests_pages import GP_NAME, NHS, Asking, add_surgery, ask, request_row


def test_approving_less_then_stopping_a_gps_access_in_a_browser(
    base: str, runtime: Runtime, axe_page: Page, artifacts: Path
) -> None:
    page = axe_page
    surgery: Asking = add_surgery(runtime)
    alice: Person = add_person(runtime, "Alice Example", "alice@example.org", nhs_number=NHS)
    request_id = ask(runtime, surgery.gp)  # the GP asks for test results and allergies, for 30 days
    problems: list[str] = []
    page.on("console", lambda m: _note_error(problems, m))
    page.on("pageerror", lambda e: problems.append(f"uncaught: {e}"))

    # she signs in; home tells her a request is waiting
    page.goto(base + "/")
    expect(page).to_have_url(re.compile(re.escape(base) + r"/signin"))
    page.locator("#email").fill(alice.email)
    page.locator("#password").fill(alice.password)
    page.locator("#signin").click()
    expect(page).to_have_url(base + "/")
    expect(page.locator("#pending-requests")).to_contain_text("1 request waiting for your answer")
    check_accessibility(page)

    # Requests: who asks, for what, why, for how long
    page.get_by_role("navigation", name="Menu").get_by_role("link", name="Requests", exact=True).click()
    expect(page).to_have_url(base + "/account/requests")
    expect(page).to_have_title(re.compile(r"^Requests\b"))
    card = page.locator(f"#request-{request_id}")
    for text in (GP_NAME, "Test results (Observation)", "Allergies (AllergyIntolerance)", "30 days"):
        expect(card).to_contain_text(text)
    expect(card).to_contain_text("Diabetes annual review")
    expect(page.locator(".govuk-service-navigation__item--active")).to_have_text("Requests")
    check_accessibility(page)
    page.screenshot(path=str(artifacts / "requests.png"), full_page=True)

    # approve with changes: untick allergies
    page.get_by_role("button", name=f"Answer the request from {GP_NAME}").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"{GP_NAME} asks to see your records")
    allergies = page.get_by_label("Allergies (AllergyIntolerance)")
    page.get_by_label("Approve with changes: share less, or for less time (choose below)").check()
    expect(allergies).to_be_checked()
    allergies.uncheck()
    expect(page.get_by_label("Test results (Observation)")).to_be_checked()
    check_accessibility(page)
    page.screenshot(path=str(artifacts / "request-decide.png"), full_page=True)
    page.get_by_role("button", name="Send my answer").click()

    # back on Requests: the banner, nothing waiting, the answer listed below
    expect(page).to_have_url(base + "/account/requests")
    expect(page.locator("#decided-banner")).to_contain_text(f"{GP_NAME} can now see your records")
    expect(page.locator("#no-pending")).to_be_visible()
    expect(page.locator(f"#past-{request_id}")).to_contain_text("You approved with changes")
    check_accessibility(page)
    status, grant = request_row(runtime, request_id)
    assert status == "approved_with_changes" and grant is not None
    assert grant.resource_type_list == ["Observation"]

    # Who can see my data: the GP, the practice, only test results
    page.get_by_role("link", name="See who can see your data").click()
    expect(page).to_have_url(base + "/account/access")
    gp_card = page.locator(f"#grant-{grant.id}")
    expect(gp_card).to_contain_text(GP_NAME)
    expect(gp_card).to_contain_text("Riverside Surgery")
    expect(gp_card).to_contain_text("Test results (Observation)")
    expect(gp_card).not_to_contain_text("Allergies")
    check_accessibility(page)
    page.screenshot(path=str(artifacts / "access-gp.png"), full_page=True)

    # stop it, with one confirmation
    page.get_by_role("button", name=f"Stop access for {GP_NAME}").click()
    expect(page.locator("#revoke-question")).to_have_text(
        f"{GP_NAME} will not be able to read your records from now on."
    )
    page.get_by_role("button", name="Yes, stop access").click()
    expect(page).to_have_url(base + "/account/access")
    expect(page.locator("#revoked-banner")).to_contain_text(f"{GP_NAME} can no longer see your records")
    expect(page.locator(f"#grant-{grant.id}")).to_have_count(0)
    assert request_row(runtime, request_id)[0] == "revoked"

    # the access history: asked, allowed (less), revoked, each under the GP's name
    menu = page.get_by_role("navigation", name="Menu")
    menu.get_by_role("link", name="Who has seen my records", exact=True).click()
    expect(page).to_have_url(base + "/account/access-history")
    rows = page.locator("#history tbody tr")
    expect(rows.filter(has_text=f"{GP_NAME} asked to see your GP health record")).to_have_count(1)
    expect(
        rows.filter(
            has_text=f"You allowed {GP_NAME} to see your GP health record (only Test results (Observation))"
        )
    ).to_have_count(1)
    expect(rows.filter(has_text=f"{GP_NAME} may no longer see your records (revoked)")).to_have_count(1)
    page.screenshot(path=str(artifacts / "history-gp.png"), full_page=True)

    assert problems == []
    for name in ("requests.png", "request-decide.png", "access-gp.png", "history-gp.png"):
        assert (artifacts / name).stat().st_size > 0
