"""The cases and children pages in a real browser (Chromium): signing in on the way, a case's timeline
reached from the list, a child's attendance and results without what the school keeps private, no
serious or critical accessibility problem (axe-core), and a screenshot of each page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from pds.runtime import Runtime
from tests.web.browser import AXE
from tests.web.live import Person
from tests.web.test_cases_pages import add_child, give_alice_her_council_case

WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]


def serious_problems(page: Page) -> list[str]:
    if not AXE.exists():
        pytest.fail(f"no axe-core at {AXE}: `make setup` installs it (npm ci)")
    page.add_script_tag(path=str(AXE))
    results = page.evaluate("(tags) => axe.run(document, {runOnly: {type: 'tag', values: tags}})", WCAG)
    return [
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']]}"
        for v in results["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def test_cases_and_children_in_a_browser(
    base: str, alice: Person, runtime: Runtime, axe_page: Page, artifacts: Path
) -> None:
    give_alice_her_council_case(runtime, alice)
    sam = add_child(runtime, alice, ["education"])
    page = axe_page
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))

    # not signed in: the list sends her to sign in, then back
    cases_url = base + "/account/cases"
    page.goto(cases_url)
    expect(page).to_have_url(re.compile(re.escape(base) + r"/signin\?next="))
    page.locator("#email").fill(alice.email)
    page.locator("#password").fill(alice.password)
    page.locator("#signin").click()
    expect(page).to_have_url(cases_url)
    expect(page).to_have_title(re.compile(r"^Your cases\b"))
    expect(page.get_by_role("link", name="Cases", exact=True)).to_have_attribute("aria-current", "true")

    card = page.locator(".pds-case").filter(has_text="PP-2026-004211")
    expect(card).to_contain_text("Residents' parking permit")
    expect(card.locator(".govuk-tag")).to_have_text("Being investigated")
    expect(card).to_contain_text("2 December 2026")
    assert serious_problems(page) == []
    page.screenshot(path=str(artifacts / "cases.png"), full_page=True)

    # the case's timeline, one click from the list
    card.get_by_role("link", name=re.compile(r"^View case and updates")).click()
    expect(page).to_have_url(re.compile(re.escape(base) + r"/account/cases/[0-9a-f-]{36}$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Residents' parking permit")
    entries = page.locator("#timeline > li")
    expect(entries).to_have_count(2)
    expect(entries.nth(0)).to_contain_text("20 November 2026")
    expect(entries.nth(0)).to_contain_text("Being investigated")
    expect(entries.nth(1)).to_contain_text("Application received.")
    assert serious_problems(page) == []
    page.get_by_role("link", name="Your cases").click()
    expect(page).to_have_url(cases_url)

    # the children page, from the service navigation
    page.get_by_role("link", name="Children", exact=True).click()
    expect(page).to_have_url(base + "/account/children")
    expect(page.get_by_role("heading", level=2, name="Sam Okafor")).to_be_visible()
    expect(page.locator(".pds-attendance")).to_contain_text("80%")
    late = page.locator(f"#marks-{sam} tbody tr").filter(has_text="Late, arrived before the register closed")
    expect(late).to_contain_text("10 minutes")
    expect(page.locator(f"#results-{sam}")).to_contain_text("27 out of 30")
    expect(page.locator(f"#behaviour-{sam} tbody tr")).to_have_count(1)
    expect(page.locator("body")).not_to_contain_text("Quiet and withdrawn")
    page.get_by_text("How this is worked out").click()
    expect(page.get_by_text("Authorised absences (such as illness)", exact=False)).to_be_visible()
    assert serious_problems(page) == []
    page.screenshot(path=str(artifacts / "children.png"), full_page=True)
    assert errors == []
