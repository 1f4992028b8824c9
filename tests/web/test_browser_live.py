"""Live updates in a real browser (Chromium, under the pages' own strict CSP): a case update the council
pushes while the case page is open appears on it within seconds, without a reload; the home page says
what arrived and links to it; nothing breaks the page or the accessibility checks."""

from __future__ import annotations

import re
import time
from pathlib import Path

from playwright.sync_api import ConsoleMessage, Page, expect

from pds.runtime import Runtime
from tests.web.live import Person
from tests.web.test_browser_cases import serious_problems
from tests.web.test_cases_pages import give_alice_her_council_case
from tests.web.test_live import a_case_update
from tests.web.test_push import COUNCIL, push, system

SHOWN_WITHIN_MS = 5_000  # the goal is a second; a busy test machine gets some slack
DASH = "\N{EN DASH}"


def sign_in(page: Page, base: str, person: Person, path: str) -> None:
    page.goto(base + path)
    page.locator("#email").fill(person.email)
    page.locator("#password").fill(person.password)
    page.locator("#signin").click()
    expect(page).to_have_url(re.compile(re.escape(base + path) + "$"))


def watch_for_trouble(page: Page) -> list[str]:
    """Uncaught errors and console errors (a CSP violation is one) end up here."""
    trouble: list[str] = []
    page.on("pageerror", lambda e: trouble.append(f"uncaught: {e}"))

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            trouble.append(f"console: {message.text}")

    page.on("console", console)
    return trouble


def test_a_case_update_appears_on_the_open_case_page_without_a_reload(
    base: str, alice: Person, runtime: Runtime, page: Page, artifacts: Path
) -> None:
    give_alice_her_council_case(runtime, alice)
    trouble = watch_for_trouble(page)
    sign_in(page, base, alice, "/account/cases")
    with page.expect_response(lambda r: "/account/live" in r.url) as answer:
        page.locator(".pds-case").get_by_role("link", name=re.compile(r"^View case and updates")).click()
    assert answer.value.status == 200 and answer.value.headers["content-type"].startswith("text/event-stream")
    expect(page.locator("#timeline > li")).to_have_count(2)
    expect(page.locator("#case-summary .govuk-tag")).to_have_text("Being investigated")
    page.evaluate("window.stillTheSamePage = true")  # gone if the page reloads

    council = system(base, runtime, COUNCIL)
    answer = push(council, base, a_case_update("PP-2026-004211-u3", "fixed", "Permit approved."))
    assert answer.status_code == 200, answer.text
    pushed = time.monotonic()

    entries = page.locator("#timeline > li")
    expect(entries).to_have_count(3, timeout=SHOWN_WITHIN_MS)
    shown_after = time.monotonic() - pushed
    expect(entries.nth(0)).to_contain_text("24 November 2026")
    expect(entries.nth(0)).to_contain_text("Permit approved.")
    expect(page.locator("#case-summary .govuk-tag")).to_have_text("Fixed")
    banner = page.locator("#live-news .govuk-notification-banner")
    expect(banner).to_contain_text("This case has a new update")
    expect(banner).to_contain_text(f"24 November 2026 {DASH} Fixed {DASH} Permit approved.")
    assert page.evaluate("window.stillTheSamePage") is True  # updated in place, not reloaded
    assert shown_after < SHOWN_WITHIN_MS / 1000
    page.screenshot(path=str(artifacts / "case-live-update.png"), full_page=True)
    assert trouble == []


def test_the_home_page_says_what_arrived_and_links_to_it(
    base: str, alice: Person, runtime: Runtime, axe_page: Page, artifacts: Path
) -> None:
    page = axe_page
    trouble = watch_for_trouble(page)
    with page.expect_response(lambda r: "/account/live" in r.url):
        sign_in(page, base, alice, "/")
    expect(page.locator("#welcome")).to_be_visible()

    give_alice_her_council_case(runtime, alice)  # the council's connector, in-process: 3 case records

    banner = page.locator("#live-news .govuk-notification-banner")
    expect(banner).to_contain_text("3 new or updated case records", timeout=SHOWN_WITHIN_MS)
    expect(page.locator("#live-news")).to_have_attribute("aria-live", "polite")
    assert serious_problems(page) == []
    page.screenshot(path=str(artifacts / "home-live-notice.png"), full_page=True)
    banner.get_by_role("link", name="Show what's new").click()
    expect(page.locator("#count-case")).to_have_text("3")
    assert trouble == []
