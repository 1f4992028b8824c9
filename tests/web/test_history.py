"""The citizen's access history page over HTTP: who read what and when, emergencies flagged, proofs and
receipts one click away, and nothing for anyone not signed in as that citizen."""

from __future__ import annotations

import re

import jwt
import requests
from sqlalchemy import text

from consent import events
from consent.ledger.verify import leaf_hash
from pds.runtime import Runtime
from tests.consent.ledger.test_audit import tampering
from tests.web.live import Browser, Person, add_person
from tests.web.test_oauth import authorize, oauth


def test_the_history_page_shows_reads_grants_and_emergencies(
    base: str, app_client: dict, alice: Person, runtime: Runtime
) -> None:
    browser = Browser(base)
    browser.sign_in(alice)
    app = oauth(base, app_client)
    authorize(base, app, browser, categories=["health"])
    assert app.get(base + "/api/v1/records").status_code == 200
    with runtime.sessions() as s, s.begin():
        events.append_event(
            s,
            events.RECORDS_READ,
            actor="staff:dr-jones",
            citizen_id=alice.citizen_id,
            details={"emergency": True, "what": "your health summary", "purpose": "Unconscious in A&E"},
        )
    page = browser.open(base + "/account/access-history")
    assert page.status_code == 200
    html = page.text
    assert "You allowed Diabetes Diary to see your GP health record" in html
    assert "Diabetes Diary read 1 record (your GP health record)" in html
    words = re.sub(r"<[^>]+>", "", html)  # the page's text, as a screen reader reads the row
    assert (
        'class="govuk-table__row emergency"' in html
        and "Emergency access: Staff member dr-jones read your health summary" in words
    )
    assert "Unconscious in A&amp;E" in html
    # newest first: the emergency read is above the app's read, which is above the grant
    assert html.index("Emergency access") < html.index("Diabetes Diary read") < html.index("You allowed")

    with runtime.sessions() as s:
        grant_event = next(h for h in events.history(s, alice.citizen_id) if h.event == events.GRANT_CREATED)
    link = f"/account/access-history/{grant_event.position}/receipt"
    assert link in html and f'href="/account/access-history/{grant_event.position}"' in html
    download = browser.open(base + link)
    assert download.status_code == 200
    assert (
        download.headers["Content-Disposition"]
        == f'attachment; filename="consent-receipt-{grant_event.position}.jwt"'
    )
    claims = jwt.decode(download.text, options={"verify_signature": False})
    assert (
        claims["ledger"]["index"] == grant_event.position
        and claims["services"][0]["service"] == "Diabetes Diary"
    )


def allowed(
    base: str, app_client: dict, alice: Person, runtime: Runtime
) -> tuple[Browser, events.HistoryItem]:
    """Alice, signed in, has allowed the app through the consent screen: her browser, and that entry."""
    browser = Browser(base)
    browser.sign_in(alice)
    authorize(base, oauth(base, app_client), browser)
    with runtime.sessions() as s:
        return browser, next(
            h for h in events.history(s, alice.citizen_id) if h.event == events.GRANT_CREATED
        )


def test_the_history_is_only_for_the_citizen_signed_in(
    base: str, app_client: dict, alice: Person, runtime: Runtime
) -> None:
    _, grant_event = allowed(base, app_client, alice, runtime)

    stranger = requests.get(base + "/account/access-history", allow_redirects=False, timeout=10)
    assert stranger.status_code == 303 and stranger.headers["Location"].startswith("/signin?next=")
    bob = add_person(runtime, "Bob Example", "bob@example.org")
    other = Browser(base)
    other.sign_in(bob)
    page = other.open(base + "/account/access-history")
    assert page.status_code == 200 and 'id="empty"' in page.text and "Diabetes Diary" not in page.text
    refused = other.open(base + f"/account/access-history/{grant_event.position}/receipt")
    assert refused.status_code == 404 and refused.json()["field"] == "index"
    assert other.open(base + "/account/access-history?before=x").status_code == 422
    for index in (str(grant_event.position), "x", "9" * 25):  # hers, not his; and no entry at all
        page = other.open(base + f"/account/access-history/{index}")
        assert page.status_code == 404 and page.json()["field"] == "index", index
    entry_url = base + f"/account/access-history/{grant_event.position}"
    signed_out = requests.get(entry_url, allow_redirects=False, timeout=10)
    assert signed_out.status_code == 303 and signed_out.headers["Location"].startswith("/signin?next=")


def test_an_entry_whose_proof_fails_says_so(
    base: str, app_client: dict, alice: Person, runtime: Runtime
) -> None:
    browser, granted = allowed(base, app_client, alice, runtime)
    page = browser.open(base + f"/account/access-history/{granted.position}")
    assert (
        page.status_code == 200 and 'id="proof-checked"' in page.text and 'id="commitment-holds"' in page.text
    )

    # someone with the database rewrites the entry's time, and its stored hash to match
    leaf = granted.leaf.replace(b'"time_us":', b'"time_us":1', 1)
    with tampering(runtime) as conn:
        conn.execute(
            text("UPDATE ledger_entry SET leaf = :leaf, leaf_hash = :hash WHERE position = :p"),
            {"leaf": leaf, "hash": leaf_hash(leaf), "p": granted.position},
        )
    page = browser.open(base + f"/account/access-history/{granted.position}")
    assert page.status_code == 200
    assert 'id="proof-failed"' in page.text and 'id="proof-checked"' not in page.text
    assert "does not check out" in page.text


def test_reads_other_than_records_are_named_in_plain_words() -> None:
    import datetime as dt

    from pds.web.history import describe

    def read(actor: str, what: str) -> str:
        item = events.HistoryItem(
            position=7,
            seq=0,
            leaf=b"{}",
            event=events.RECORDS_READ,
            time=dt.datetime(2026, 11, 26, tzinfo=dt.UTC),
            details={"actor": actor, "what": what},
            salt=b"",
        )
        return str(describe(item, {"app-1": "Diabetes Diary"})["what"])

    assert read("oauth:id_token", "profile") == "An app you signed in to read your name and email address"
    assert read("client:app-1", "identity") == "Diabetes Diary read who you are"
    assert read("client:app-1", "access history") == "Diabetes Diary read your access history"
    # what pds does not know is shown as it was written (an emergency read says what was opened)
    assert read("staff:dr-jones", "your health summary") == "Staff member dr-jones read your health summary"
