"""The health record and data pages in a real browser (Chromium): signing in on the way, a test result with
its unit, no console errors under the real Content-Security-Policy, no serious or critical axe-core
violation, the JSON download, and the error summary when the password is wrong."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect

from pds.runtime import Runtime
from tests.web.browser import AXE, TIMEOUT_MS
from tests.web.live import Person, add_person
from tests.web.test_records_pages import BOB_NHS, push

WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]
BAD = ("serious", "critical")


@pytest.fixture
def bob(runtime: Runtime) -> Person:
    person = add_person(runtime, "Bob Patel", "bob@example.org", nhs_number=BOB_NHS)
    push(runtime, "gp-connect-bob.stu3.json")
    return person


def serious_violations(chromium: Browser, page: Page, url: str) -> list[str]:
    """axe-core on `url`, in a context that lets it be injected (bypass_csp), signed in as `page` is."""
    context = chromium.new_context(bypass_csp=True, locale="en-GB", timezone_id="UTC")
    context.set_default_timeout(TIMEOUT_MS)
    try:
        context.add_cookies(page.context.cookies())  # type: ignore[arg-type]
        checked = context.new_page()
        checked.goto(url)
        expect(checked).to_have_url(url)  # still signed in: not sent to sign in
        checked.add_script_tag(path=str(AXE))
        results = checked.evaluate(
            "(tags) => axe.run(document, {runOnly: {type: 'tag', values: tags}})", WCAG
        )
    finally:
        context.close()
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']]}"
        for v in results["violations"]
        if v["impact"] in BAD
    ]


def test_the_health_record_in_a_browser(
    base: str, bob: Person, page: Page, chromium: Browser, artifacts: Path
) -> None:
    assert AXE.is_file(), "axe-core is not installed: run `npm ci` (make setup does)"
    problems: list[str] = []
    page.on("console", lambda m: _note_error(problems, m))
    page.on("pageerror", lambda e: problems.append(f"uncaught: {e}"))

    health_url = base + "/account/health"
    page.goto(health_url)
    expect(page).to_have_url(re.compile(re.escape(base) + r"/signin\?next="))
    page.locator("#email").fill(bob.email)
    page.locator("#password").fill(bob.password)
    page.locator("#signin").click()
    expect(page).to_have_url(health_url)
    expect(page).to_have_title(re.compile(r"^Your GP health record\b"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Your GP health record")

    results = page.get_by_role("table", name="Test results")
    expect(results).to_be_visible()
    blood_pressure = results.get_by_role("row").filter(has_text="Blood pressure")
    expect(blood_pressure).to_contain_text("138/84 mmHg")
    expect(blood_pressure).to_contain_text("19 September 2024")
    hba1c = results.get_by_role("row").filter(has_text="52 mmol/mol")
    expect(hba1c).to_have_count(1)
    expect(hba1c.get_by_role("rowheader")).to_have_text("Haemoglobin A1c level - IFCC standardised")
    for heading in ("Problems", "Medicines", "Allergies", "Immunisations", "Appointments and visits"):
        expect(page.get_by_role("heading", level=2, name=heading)).to_be_visible()
    expect(page.get_by_role("table", name="Problems")).to_contain_text("Depressive disorder Restricted")
    page.screenshot(path=str(artifacts / "health.png"), full_page=True)
    assert (artifacts / "health.png").stat().st_size > 0

    assert serious_violations(chromium, page, health_url) == []
    assert problems == []


def test_my_data_in_a_browser(base: str, bob: Person, page: Page, chromium: Browser, artifacts: Path) -> None:
    problems: list[str] = []
    page.on("console", lambda m: _note_error(problems, m))
    page.on("pageerror", lambda e: problems.append(f"uncaught: {e}"))
    page.goto(base + "/signin?next=/account/my-data")
    page.locator("#email").fill(bob.email)
    page.locator("#password").fill(bob.password)
    page.locator("#signin").click()
    expect(page).to_have_url(base + "/account/my-data")

    with page.expect_download() as downloading:
        page.get_by_role("button", name="Download everything (JSON)").click()
    download = downloading.value
    assert download.failure() is None and download.suggested_filename.startswith("pds-export-")
    export = json.loads(Path(download.path()).read_text())
    assert export["citizen"]["name"] == "Bob Patel"
    assert {r["kind"] for r in export["records"]} >= {"fhir:Condition", "fhir:Observation", "fhir:Encounter"}

    # a wrong password: the error summary takes the focus and links to the field
    page.get_by_label("Enter your password to confirm it is you").fill("not-my-password")
    page.get_by_label("I understand that this deletes all my records").check()
    page.get_by_role("button", name="Delete my vault").click()
    expect(page).to_have_title(re.compile(r"^Error: Your data"))
    summary = page.locator(".govuk-error-summary")
    expect(summary).to_be_focused()
    summary.get_by_role("link", name="The password is not right").click()
    expect(page.locator("#password")).to_be_focused()
    page.screenshot(path=str(artifacts / "my-data-error.png"), full_page=True)
    assert serious_violations(chromium, page, base + "/account/my-data") == []

    page.locator("#password").fill(bob.password)
    page.get_by_label("I understand that this deletes all my records").check()
    page.get_by_role("button", name="Delete my vault").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your vault has been deleted")
    page.goto(base + "/account/health")
    expect(page).to_have_url(re.compile(re.escape(base) + r"/signin\?next="))
    # the one failed load was the refused form (400), as it should be
    assert [p for p in problems if "status of 400" not in p or "/account/my-data/delete" not in p] == []
    assert len(problems) == 1


def _note_error(problems: list[str], message: ConsoleMessage) -> None:
    # Chromium asks for /favicon.ico by itself and logs the 404: not the page's fault
    if message.type == "error" and not message.location.get("url", "").endswith("/favicon.ico"):
        problems.append(f"console: {message.text} at {message.location}")
