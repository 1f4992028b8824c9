"""Who can see your data, in a real browser (Chromium): a failed then a good sign-in, the app listed, access
stopped through the confirmation page, the banner; and axe-core finds no serious or critical problem on
the sign-in, access and home pages. Screenshots go to $PDS_TEST_ARTIFACTS (or the test's tmp folder)."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Page, expect
from sqlalchemy import select

from consent.models import Grant
from pds.runtime import Runtime
from tests.web.browser import check_accessibility
from tests.web.live import Person
from tests.web.test_browser_history import _note_error
from tests.web.test_oauth import connected


def test_stopping_an_apps_access_in_a_browser(
    base: str, app_client: dict, alice: Person, runtime: Runtime, axe_page: Page, artifacts: Path
) -> None:
    page = axe_page
    connected(base, app_client, alice)  # over HTTP: Alice allows the Diabetes Diary everything it asks
    with runtime.sessions() as s:
        grant_id = s.scalars(select(Grant.id).where(Grant.citizen_id == alice.citizen_id)).one()
    problems: list[str] = []
    page.on("console", lambda m: _note_error(problems, m))
    page.on("pageerror", lambda e: problems.append(f"uncaught: {e}"))

    # signed out: the page asks her to sign in; a wrong password first, then the right one
    access_url = base + "/account/access"
    page.goto(access_url)
    expect(page).to_have_url(re.compile(re.escape(base) + r"/signin\?next="))
    page.locator("#email").fill(alice.email)
    page.locator("#password").fill("not her password")
    page.locator("#signin").click()
    expect(page).to_have_title(re.compile(r"^Error: Sign in\b"))
    summary = page.locator(".govuk-error-summary")
    expect(summary).to_contain_text("The email address or password is not right")
    expect(summary).to_be_focused()  # GOV.UK Frontend's script moves focus to the summary
    expect(page.locator("#email")).to_have_value(alice.email)
    check_accessibility(page)
    page.screenshot(path=str(artifacts / "signin.png"), full_page=True)
    page.locator("#password").fill(alice.password)
    page.locator("#signin").click()
    expect(page).to_have_url(access_url)

    # the app, what it sees, and why
    expect(page).to_have_title(re.compile(r"^Who can see your data\b"))
    card = page.locator(f"#grant-{grant_id}")
    expect(card).to_contain_text("Diabetes Diary")
    expect(card).to_contain_text("Example Health Ltd")
    expect(card).to_contain_text("Charts your HbA1c over time")
    expect(page.locator(".govuk-service-navigation__item--active")).to_have_text("Who can see my data")
    check_accessibility(page)
    page.screenshot(path=str(artifacts / "access.png"), full_page=True)

    # stop it: a confirmation first, then the banner
    page.get_by_role("button", name="Stop access for Diabetes Diary").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Are you sure?")
    expect(page.locator("#revoke-question")).to_have_text(
        "Diabetes Diary will not be able to read your records from now on."
    )
    page.get_by_role("button", name="Yes, stop access").click()
    expect(page).to_have_url(access_url)
    banner = page.locator("#revoked-banner")
    expect(banner).to_contain_text("Diabetes Diary can no longer see your records")
    expect(page.locator(f"#grant-{grant_id}")).to_have_count(0)
    expect(page.locator("#no-live")).to_be_visible()

    # ended grants are folded away until asked for
    ended = page.locator(f"#ended-{grant_id}")
    expect(ended).to_be_hidden()
    page.locator("#ended summary").click()
    expect(ended).to_be_visible()
    expect(ended).to_contain_text("You stopped its access on")
    check_accessibility(page)

    # home: her first visit in this session
    page.goto(base + "/")
    expect(page.locator("#welcome")).to_have_text("Welcome, Alice Example")
    expect(page.locator("#count-health")).to_have_text("1")
    check_accessibility(page)
    page.screenshot(path=str(artifacts / "home.png"), full_page=True)
    page.reload()
    expect(page.locator("#whats-new")).to_have_text("What's new")
    expect(page.locator("#count-health")).to_have_text("0")

    # signing out from the layout's button (it carries the CSRF token)
    page.locator("#signout").click()
    expect(page).to_have_url(base + "/signin")
    page.goto(access_url)
    expect(page).to_have_url(re.compile(re.escape(base) + r"/signin\?next="))
    refused = "status of 400 (BAD REQUEST) at {'url': '" + base + "/signin?next="  # the wrong password
    assert [p for p in problems if refused not in p] == []
    for name in ("signin.png", "access.png", "home.png"):
        assert (artifacts / name).stat().st_size > 0
