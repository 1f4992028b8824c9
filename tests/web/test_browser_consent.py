"""The consent screen in a real browser (Chromium): an app asks, the citizen signs in on the way, sees who
is asking, why, what and for how long, is warned that nobody checked the app, picks a date too far off and
is told so, then shares less than was asked for a shorter time; the app gets its code, and the grant holds
exactly what she chose. No console errors, nothing axe-core calls serious."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from authlib.common.security import generate_token
from playwright.sync_api import Page, Route, expect
from sqlalchemy import select

from consent.models import Grant
from pds.runtime import Runtime
from tests.web.browser import check_accessibility
from tests.web.live import REDIRECT_URI, Person, query_of
from tests.web.test_browser_history import _note_error
from tests.web.test_oauth import oauth


def test_sharing_less_than_an_app_asks_in_a_browser(
    base: str, app_client: dict, alice: Person, runtime: Runtime, axe_page: Page, artifacts: Path
) -> None:
    page = axe_page
    problems: list[str] = []
    page.on("console", lambda m: _note_error(problems, m))
    page.on("pageerror", lambda e: problems.append(f"uncaught: {e}"))
    back_at_app: list[str] = []

    def app_callback(route: Route) -> None:  # the app's redirect URI: note where the browser was sent
        back_at_app.append(route.request.url)
        route.fulfill(status=200, content_type="text/plain", body="back at the app")

    page.route(REDIRECT_URI + "*", app_callback)
    url, state = oauth(base, app_client).create_authorization_url(
        base + "/oauth/authorize", code_verifier=generate_token(48)
    )

    # signed out: sign in first, then straight on to the question
    page.goto(url)
    expect(page).to_have_url(re.compile(re.escape(base) + r"/signin\?next="))
    page.locator("#email").fill(alice.email)
    page.locator("#password").fill(alice.password)
    page.locator("#signin").click()
    expect(page).to_have_title(re.compile(r"^Diabetes Diary wants to see your records\b"))

    # who, why, a warning that nobody checked the app, what, for how long
    heading = page.get_by_role("heading", level=1)
    expect(heading).to_have_text("Diabetes Diary wants to see some of your records")
    expect(page.locator("#client-name")).to_have_text("Diabetes Diary")
    expect(page.locator("#client-operator")).to_have_text("Example Health Ltd")
    expect(page.locator("#purpose")).to_have_text("Charts your HbA1c over time")
    expect(page.locator("#not-verified")).to_contain_text("pds has not checked this app")
    expect(page.locator("#verified")).to_have_count(0)
    health = page.get_by_role("checkbox", name=re.compile(r"^Your GP health record"))
    school = page.get_by_role("checkbox", name=re.compile(r"^School progress"))
    expect(health).to_be_checked()
    expect(school).to_be_checked()
    expect(page.locator("#scope-offline_access")).to_be_visible()
    duration = page.get_by_label("For how long")
    expect(duration).to_have_value("90")
    check_accessibility(page)
    page.screenshot(path=str(artifacts / "consent.png"), full_page=True)

    # a last day more than a year off: told why, on the same page, and nothing is shared
    too_late = dt.date.today() + dt.timedelta(days=400)
    page.get_by_label("Day").fill(str(too_late.day))
    page.get_by_label("Month").fill(str(too_late.month))
    page.get_by_label("Year").fill(str(too_late.year))
    page.get_by_role("button", name="Allow").click()
    expect(page).to_have_title(re.compile(r"^Error: Diabetes Diary wants to see your records\b"))
    summary = page.locator(".govuk-error-summary")
    expect(summary).to_contain_text("Choose a date from today and within a year")
    expect(summary).to_be_focused()
    expect(page.locator("#ends_on-date-error")).to_contain_text("Choose a date from today and within a year")
    expect(page.get_by_label("Year")).to_have_value(str(too_late.year))  # what she typed is kept
    check_accessibility(page)

    # a date without its month: told which part is missing, and the summary's link takes her to the date
    page.get_by_label("Month").fill("")
    page.get_by_role("button", name="Allow").click()
    expect(page.locator("#ends_on-date-error")).to_contain_text("The date must include a month")
    summary.get_by_role("link", name="The date must include a month").click()
    expect(page.get_by_label("Day")).to_be_focused()
    with runtime.sessions() as s:
        assert s.scalars(select(Grant)).all() == []
    assert back_at_app == []

    # her school reports stay hers; 30 days, no date
    for part in ("Day", "Month", "Year"):
        page.get_by_label(part).fill("")
    school.uncheck()
    duration.select_option("30")
    before = dt.datetime.now(dt.UTC)
    page.get_by_role("button", name="Allow").click()
    expect(page.locator("body")).to_have_text("back at the app")

    assert len(back_at_app) == 1
    answer = query_of(back_at_app[0])
    assert answer["state"] == state and answer["iss"] == base and answer["code"]
    with runtime.sessions() as s:
        grant = s.scalars(select(Grant)).one()
    assert grant.citizen_id == alice.citizen_id and grant.client_id == app_client["client_id"]
    assert grant.category_list == ["health"]
    assert "education.read" not in grant.scope.split()
    assert dt.timedelta(days=30) <= grant.ends_at - before <= dt.timedelta(days=30, minutes=1)
    # the two refused dates: too far off, then without its month
    refused = "status of 400 (BAD REQUEST) at {'url': '" + base + "/oauth/authorize?"
    assert len([p for p in problems if refused in p]) == 2
    assert [p for p in problems if refused not in p] == []
