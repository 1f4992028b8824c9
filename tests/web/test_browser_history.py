"""The citizen's access history page in a real browser (Chromium): signing in on the way, the rows in
plain words and newest first, an emergency read flagged, the consent receipt downloaded, the proof one
click away, no console errors, and the receipt link reachable from the keyboard."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jwt
from playwright.sync_api import ConsoleMessage, Page, expect

from consent import events
from consent.ledger.verify import check_entry_document
from pds.runtime import Runtime
from tests.web.browser import check_accessibility
from tests.web.live import Browser, Person
from tests.web.test_oauth import authorize, oauth

MAX_TABS = 40  # more than the page's links and fields: a link further away than this is unreachable


def test_the_history_page_in_a_browser(
    base: str, app_client: dict, alice: Person, runtime: Runtime, axe_page: Page, artifacts: Path
) -> None:
    page = axe_page
    # Alice allows the app her health record over HTTP, and it reads them; then an emergency read by staff
    consenting = Browser(base)
    consenting.sign_in(alice)
    app = oauth(base, app_client)
    authorize(base, app, consenting, categories=["health"])
    assert app.get(base + "/api/v1/records").status_code == 200
    with runtime.sessions() as s, s.begin():
        events.append_event(
            s,
            events.RECORDS_READ,
            actor="staff:dr-jones",
            citizen_id=alice.citizen_id,
            details={"emergency": True, "what": "your health summary", "purpose": "Unconscious in A&E"},
        )
    with runtime.sessions() as s:
        mine = events.history(s, alice.citizen_id)
    granted = next(h.position for h in mine if h.event == events.GRANT_CREATED)
    emergency = next(h.position for h in mine if h.details.get("emergency"))

    problems: list[str] = []
    page.on("console", lambda m: _note_error(problems, m))
    page.on("pageerror", lambda e: problems.append(f"uncaught: {e}"))

    # not signed in: the page sends her to sign in, then back
    history_url = base + "/account/access-history"
    page.goto(history_url)
    expect(page).to_have_url(re.compile(re.escape(base) + r"/signin\?next="))
    page.locator("#email").fill(alice.email)
    page.locator("#password").fill(alice.password)
    page.locator("#signin").click()
    expect(page).to_have_url(history_url)
    expect(page).to_have_title(re.compile(r"^Who has seen your records\b"))

    # the rows, newest first: the emergency read, the app's read, then the grant
    table = page.locator("#history")
    expect(table).to_be_visible()
    rows = table.locator("tbody tr").all_inner_texts()
    flagged = _row_of(rows, "Staff member dr-jones read your health summary")
    assert rows[flagged].split("\t")[1].startswith("Emergency access"), rows[flagged]
    read = _row_of(rows, "Diabetes Diary read 1 record (your GP health record)")
    allowed = _row_of(rows, "You allowed Diabetes Diary to see your GP health record")
    assert flagged < read < allowed, rows
    assert "Unconscious in A&E" in rows[flagged]

    flag = page.locator(f"#entry-{emergency} .emergency-flag")
    expect(flag).to_be_visible()
    expect(flag).to_have_text(re.compile(r"^Emergency access"))
    expect(page.locator(f"#entry-{emergency}")).to_have_class(re.compile(r"\bemergency\b"))
    check_accessibility(page)
    page.screenshot(path=str(artifacts / "history.png"), full_page=True)

    # the keyboard reaches the receipt link (Tab from the top of the page)
    receipt = page.locator(f"#entry-{granted}").get_by_role("link", name="Download consent receipt")
    expect(receipt).to_have_count(1)
    receipt_href = f"/account/access-history/{granted}/receipt"
    expect(receipt).to_have_attribute("href", receipt_href)
    focused = []
    for _ in range(MAX_TABS):
        page.keyboard.press("Tab")
        focused.append(page.evaluate("() => document.activeElement.getAttribute('href')"))
        if focused[-1] == receipt_href:
            break
    assert focused[-1] == receipt_href, f"Tab never reached the receipt link; it visited {focused}"
    expect(receipt).to_be_focused()

    # the receipt downloads as a file holding a JWT about that grant
    with page.expect_download() as downloading:
        receipt.click()
    download = downloading.value
    assert download.failure() is None
    assert download.suggested_filename == f"consent-receipt-{granted}.jwt"
    token = Path(download.path()).read_text().strip()
    assert len(token.split(".")) == 3 and all(token.split(".")), token[:80]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["ledger"]["index"] == granted
    assert claims["services"][0]["service"] == "Diabetes Diary"

    # nothing went wrong on the page so far
    assert problems == []

    # the entry link opens its page: the proof checked, what the entry says, and how to check it again
    page.locator(f"#entry-{granted}").get_by_role("link", name=f"Entry {granted}", exact=True).click()
    expect(page).to_have_url(f"{base}/account/access-history/{granted}")
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Entry {granted} in the ledger")
    expect(page.locator("#entry")).to_contain_text("You allowed Diabetes Diary to see your GP health record")
    expect(page.locator("#proof-checked")).to_contain_text(f"this entry is entry {granted} of")
    expect(page.locator("#commitment-holds")).to_be_visible()
    expect(page.locator("#leaf")).not_to_contain_text(alice.email)  # the ledger names no one
    check_accessibility(page)
    page.screenshot(path=str(artifacts / "history-entry.png"), full_page=True)

    # the proof downloads, and checks out with the ledger's key alone, as `pds ledger check-proof` does it
    with page.expect_download() as downloading:
        page.locator("#proof-download").click()
    download = downloading.value
    assert download.suggested_filename == f"ledger-entry-{granted}.json"
    proof = json.loads(Path(download.path()).read_text())
    key = page.locator("#verifier-key").inner_text()
    checkpoint = check_entry_document(proof, key)
    assert proof["index"] == granted and checkpoint.size > granted
    assert problems == []


def _row_of(rows: list[str], text: str) -> int:
    matches = [i for i, row in enumerate(rows) if text in " ".join(row.split())]
    assert len(matches) == 1, f"{text!r} is in {len(matches)} rows of {rows}"
    return matches[0]


def _note_error(problems: list[str], message: ConsoleMessage) -> None:
    # pds serves no /favicon.ico, and Chromium asks for one by itself and logs the 404: not the page's fault
    if message.type == "error" and not message.location.get("url", "").endswith("/favicon.ico"):
        problems.append(f"console: {message.text} at {message.location}")
