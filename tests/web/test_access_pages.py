"""The citizen's own pages over HTTP: who can see their data and stopping it, the home page's news since
the last visit, and sign-in (slowed after failures, a new session cookie, sign-out only with the token)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import requests
from sqlalchemy import select

from consent import events
from consent.models import Grant
from consent.scopes import PLAIN_WORDS
from pds.runtime import Runtime
from pds.vault.models import SignInFailure
from pds.web.access_pages import until
from pds.web.throttle import wait_after
from tests.conftest import record
from tests.web.live import Browser, Person, add_person, serve
from tests.web.test_oauth import connected

ACCESS = "/account/access"


def only_grant(runtime: Runtime, person: Person) -> Grant:
    with runtime.sessions() as s:
        (grant,) = s.scalars(select(Grant).where(Grant.citizen_id == person.citizen_id)).all()
        s.expunge(grant)
    return grant


def test_the_access_page_lists_the_app_what_it_sees_why_and_until_when(
    base: str, app_client: dict, alice: Person, runtime: Runtime
) -> None:
    _, browser = connected(base, app_client, alice)
    grant = only_grant(runtime, alice)
    page = browser.open(base + ACCESS)
    assert page.status_code == 200, page.text
    card = page.text[page.text.index(f'id="grant-{grant.id}"') :]
    for text in (
        "Diabetes Diary",
        "Example Health Ltd",
        "Charts your HbA1c over time",
        PLAIN_WORDS["health.read"],
        PLAIN_WORDS["education.read"],
        until(grant.ends_at),
    ):
        assert text in card, text
    assert f'href="{ACCESS}/{grant.id}/revoke"' in page.text
    assert 'id="ended"' not in page.text  # nothing has ended yet
    assert '"govuk-service-navigation__item govuk-service-navigation__item--active"' in page.text


def test_stopping_access_needs_the_token_then_cuts_the_app_off_at_once(
    base: str, app_client: dict, alice: Person, runtime: Runtime
) -> None:
    app, browser = connected(base, app_client, alice)
    grant = only_grant(runtime, alice)
    revoke_url = f"{base}{ACCESS}/{grant.id}/revoke"

    asked = browser.open(revoke_url)
    assert asked.status_code == 200
    assert "Are you sure?" in asked.text
    assert "Diabetes Diary will not be able to read your records from now on" in asked.text

    # 1. without the CSRF token (a page elsewhere posting the form): refused, nothing changed
    forged = browser.http.post(revoke_url, data={}, allow_redirects=False)
    assert forged.status_code == 400 and "Nothing was changed" in forged.text
    wrong = browser.http.post(revoke_url, data={"csrf_token": "x" * 40}, allow_redirects=False)
    assert wrong.status_code == 400
    assert only_grant(runtime, alice).status == "active"
    assert app.get(base + "/api/v1/records").status_code == 200

    # 2. with it: revoked, and back to the list with a banner
    stopped = browser.http.post(
        revoke_url, data={"csrf_token": browser.csrf(asked.text)}, allow_redirects=False
    )
    assert stopped.status_code == 303 and stopped.headers["Location"] == ACCESS
    listed = browser.open(base + ACCESS)
    assert "Diabetes Diary can no longer see your records" in listed.text
    assert "govuk-notification-banner--success" in listed.text
    assert f'id="grant-{grant.id}"' not in listed.text and "No app can see your data now" in listed.text
    ended = listed.text[listed.text.index('id="ended"') :]
    assert f'id="ended-{grant.id}"' in ended and "You stopped its access on" in ended
    assert 'id="revoked-banner"' in listed.text
    assert 'id="revoked-banner"' not in browser.open(base + ACCESS).text  # the banner shows once

    # 3. the app's next read fails, and the refresh token is dead too
    after = app.get(base + "/api/v1/records")
    assert after.status_code == 401
    assert only_grant(runtime, alice).status == "revoked"

    # 4. the ledger says who stopped it
    with runtime.sessions() as s:
        mine = events.history(s, alice.citizen_id)
    revoked = [h for h in mine if h.event == events.GRANT_REVOKED]
    assert len(revoked) == 1
    assert revoked[0].details["actor"] == f"citizen:{alice.citizen_id}"
    assert revoked[0].details["grant_id"] == str(grant.id)

    # 5. a second click changes nothing and says nothing went wrong
    again = browser.http.post(
        revoke_url, data={"csrf_token": browser.csrf(asked.text)}, allow_redirects=False
    )
    assert again.status_code == 303
    assert len([h for h in _history(runtime, alice) if h.event == events.GRANT_REVOKED]) == 1


def _history(runtime: Runtime, person: Person) -> list[events.HistoryItem]:
    with runtime.sessions() as s:
        return events.history(s, person.citizen_id)


def test_another_citizens_grant_is_not_found_and_not_said_to_exist(
    base: str, app_client: dict, alice: Person, runtime: Runtime
) -> None:
    connected(base, app_client, alice)
    grant = only_grant(runtime, alice)
    bob = add_person(runtime, "Bob Example", "bob@example.org")
    browser = Browser(base)
    browser.sign_in(bob)
    token = browser.csrf(browser.open(base + "/signin").text)
    answers = []
    for grant_id in (str(grant.id), str(uuid.uuid4()), "not-an-id", "1"):
        url = f"{base}{ACCESS}/{grant_id}/revoke"
        for r in (
            browser.open(url),
            browser.http.post(url, data={"csrf_token": token}, allow_redirects=False),
        ):
            assert r.status_code == 404 and r.headers["Content-Type"] == "application/problem+json"
            answers.append(r.json()["detail"])
    assert len(set(answers)) == 1 and str(grant.id) not in answers[0]
    assert only_grant(runtime, alice).status == "active"
    assert "Diabetes Diary" not in browser.open(base + ACCESS).text


def test_signed_out_the_pages_ask_to_sign_in(
    base: str, app_client: dict, alice: Person, runtime: Runtime
) -> None:
    connected(base, app_client, alice)
    grant = only_grant(runtime, alice)
    for path, back in (
        (ACCESS, f"/signin?next={ACCESS}"),
        (f"{ACCESS}/{grant.id}/revoke", f"/signin?next={ACCESS}/{grant.id}/revoke"),
        ("/", "/signin"),
    ):
        r = requests.get(base + path, allow_redirects=False, timeout=10)
        assert r.status_code == 303 and r.headers["Location"].replace("%2F", "/") == back, (path, r.headers)
    posted = requests.post(f"{base}{ACCESS}/{grant.id}/revoke", allow_redirects=False, timeout=10)
    assert posted.status_code == 303 and posted.headers["Location"].startswith("/signin")
    assert only_grant(runtime, alice).status == "active"


def test_home_shows_what_is_new_since_the_last_visit(base: str, alice: Person, runtime: Runtime) -> None:
    browser = Browser(base)
    browser.sign_in(alice)
    first = browser.open(base + "/")
    assert first.status_code == 200
    assert "Welcome, Alice Example" in first.text and "What's new" not in first.text
    assert 'id="count-health">1<' in first.text and 'id="count-education">1<' in first.text

    # a delivery: a new result, a newer version of a school mark, and a case update
    with runtime.vault() as v:
        v.sources.ensure("council", kind="open311", title="Council")
        v.records.put(
            [
                record(alice.citizen_id, "alice-hba1c-2", source="gp", note="HbA1c 48"),
                record(
                    alice.citizen_id,
                    "alice-maths",
                    source="school",
                    category="education",
                    version=2,
                    note="29/30",
                ),
                record(
                    alice.citizen_id, "alice-case-1", source="council", category="case", note="Pothole fixed"
                ),
            ]
        )
    news = browser.open(base + "/")
    assert "What's new" in news.text and "Welcome" not in news.text
    assert "3 new or updated records" in news.text
    for category, note in (("health", "HbA1c 48"), ("education", "29/30"), ("case", "Pothole fixed")):
        section = news.text[news.text.index(f'id="new-{category}"') :].split("</section>")[0]
        assert f'id="count-{category}">1<' in section and note in section, category
    assert "HbA1c 52" not in news.text  # the older result is not news

    quiet = browser.open(base + "/")
    assert "nothing new" in quiet.text and 'id="count-health">0<' in quiet.text


def test_repeated_failed_sign_ins_are_slowed_and_the_page_says_so(base: str, alice: Person) -> None:
    browser = Browser(base)
    form = browser.open(base + "/signin")
    token = browser.csrf(form.text)

    def attempt(password: str, email: str = alice.email) -> requests.Response:
        data = {"csrf_token": token, "email": email, "password": password}
        return browser.http.post(base + "/signin", data=data, allow_redirects=False)

    first = attempt("wrong")
    assert first.status_code == 400 and "The email address or password is not right" in first.text
    assert "Too many attempts" not in first.text and "govuk-error-summary" in first.text
    second = attempt("wrong again")
    assert second.status_code == 400 and "Too many attempts: wait 1 second" in second.text
    # even the right password waits its turn, and the refusal does not count as a failure
    waiting = attempt(alice.password)
    assert waiting.status_code == 429 and "Too many attempts: wait 1 second" in waiting.text
    assert waiting.headers["Retry-After"] == "1"
    # the same address in other letters is the same address; another address is not held up
    assert attempt(alice.password, alice.email.upper()).status_code == 429
    assert "Too many attempts" not in attempt("wrong", "someone@example.org").text
    time.sleep(wait_after(2) + 0.2)
    third = attempt("still wrong")
    assert third.status_code == 400 and "Too many attempts: wait 2 seconds" in third.text
    time.sleep(wait_after(3) + 0.2)
    assert attempt(alice.password).status_code == 303
    assert wait_after(1) == 0 and wait_after(5) == 8 and wait_after(50) == 30


def test_the_session_cookie_changes_at_sign_in(base: str, alice: Person) -> None:
    """Session fixation: a cookie planted before sign-in never becomes a signed-in session."""
    browser = Browser(base)
    browser.open(base + "/signin")
    before = browser.http.cookies.get("pds_session")
    assert before
    browser.sign_in(alice)
    after = browser.http.cookies.get("pds_session")
    assert after and after != before
    planted = requests.get(base + ACCESS, cookies={"pds_session": before}, allow_redirects=False, timeout=10)
    assert planted.status_code == 303 and planted.headers["Location"].startswith("/signin")
    assert browser.open(base + ACCESS).status_code == 200


def test_signing_out_needs_the_token(base: str, alice: Person) -> None:
    browser = Browser(base)
    browser.sign_in(alice)
    forged = browser.http.post(base + "/signout", allow_redirects=False)
    assert forged.status_code == 400 and forged.headers["Content-Type"] == "application/problem+json"
    page = browser.open(base + ACCESS)
    assert page.status_code == 200  # still signed in
    token = browser.csrf(browser.open(base + "/signin").text)
    out = browser.http.post(base + "/signout", data={"csrf_token": token}, allow_redirects=False)
    assert out.status_code == 303 and out.headers["Location"] == "/signin"
    assert browser.open(base + ACCESS).status_code == 303


def test_the_wait_is_shared_by_every_server_process(
    base: str, alice: Person, runtime: Runtime, db_url: str, keys_dir: Path
) -> None:
    """Two servers on one database (as gunicorn's workers are): failures at one slow the other."""
    with serve(runtime, db_url, keys_dir) as other:
        one, two = Browser(base), Browser(other)

        def attempt(browser: Browser, where: str, password: str) -> requests.Response:
            token = browser.csrf(browser.open(where + "/signin").text)
            data = {"csrf_token": token, "email": alice.email, "password": password}
            return browser.http.post(where + "/signin", data=data, allow_redirects=False)

        assert attempt(one, base, "wrong").status_code == 400
        assert attempt(two, other, "wrong again").status_code == 400  # the second failure, counted at two
        held = attempt(one, base, alice.password)  # and one knows it
        assert held.status_code == 429 and held.headers["Retry-After"] == "1"
    with runtime.sessions() as s:
        stored = s.scalars(select(SignInFailure)).all()
    assert len(stored) == 1 and alice.email.encode() not in stored[0].key  # a keyed hash, not the address


def test_the_last_visit_is_remembered_across_browsers(base: str, alice: Person, runtime: Runtime) -> None:
    laptop = Browser(base)
    laptop.sign_in(alice)
    assert "Welcome, Alice Example" in laptop.open(base + "/").text
    with runtime.vault() as v:
        v.records.put([record(alice.citizen_id, "alice-hba1c-2", source="gp", note="HbA1c 48")])
    phone = Browser(base)  # another device, signed in afresh: the visit on the laptop still counts
    phone.sign_in(alice)
    news = phone.open(base + "/").text
    assert "What's new" in news and "1 new or updated record" in news and "HbA1c 48" in news
    assert "HbA1c 52" not in news
