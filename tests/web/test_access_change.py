"""Narrowing a permission on the web page: fewer categories or an earlier end, never wider; the app's next
read sees the change at once, and the change is in the ledger."""

from __future__ import annotations

import datetime as dt

from consent import events
from consent.models import Grant
from pds.runtime import Runtime
from tests.web.live import Browser, Person, add_person, date_parts
from tests.web.test_oauth import connected


def grant_of(runtime: Runtime, person: Person) -> Grant:
    from consent.services import GrantService

    with runtime.sessions() as s:
        (grant,) = GrantService(s).for_citizen(person.citizen_id)
        return grant


def change(browser: Browser, grant: Grant, **form: object):  # type: ignore[no-untyped-def]
    path = f"{browser.base}/account/access/{grant.id}/change"
    page = browser.http.get(path)
    assert page.status_code == 200, page.text
    return browser.http.post(
        path, data={"csrf_token": browser.csrf(page.text), **form}, allow_redirects=False
    )


def test_taking_a_category_away_stops_the_app_reading_it(
    base: str, app_client: dict, alice: Person, runtime: Runtime
) -> None:
    app, browser = connected(base, app_client, alice)
    assert app.get(base + "/api/v1/records", params={"category": "education"}).status_code == 200
    grant = grant_of(runtime, alice)
    assert set(grant.category_list) == {"health", "education"}
    page = browser.http.get(f"{base}/account/access/{grant.id}/change").text
    assert 'value="health" checked' in page and 'value="education" checked' in page

    answer = change(browser, grant, categories=["health"])
    assert answer.status_code == 303
    listing = browser.http.get(base + "/account/access").text
    assert "You changed what Diabetes Diary can see" in listing
    assert "School progress" not in listing and "Your GP health record" in listing
    refused = app.get(base + "/api/v1/records", params={"category": "education"})
    assert refused.status_code == 403  # the same unexpired token: the grant decides
    assert app.get(base + "/api/v1/records", params={"category": "health"}).status_code == 200
    with runtime.sessions() as s:
        narrowed = [h for h in events.history(s, alice.citizen_id) if h.event == events.GRANT_NARROWED]
    assert narrowed and narrowed[-1].details["after"]["categories"] == ["health"]


def test_ending_sooner_and_never_wider(base: str, app_client: dict, alice: Person, runtime: Runtime) -> None:
    _, browser = connected(base, app_client, alice)
    grant = grant_of(runtime, alice)
    last_day = (dt.datetime.now(dt.UTC) + dt.timedelta(days=3)).date()
    assert (
        change(browser, grant, categories=["health", "education"], ends_on=date_parts(last_day)).status_code
        == 303
    )
    sooner = grant_of(runtime, alice)
    assert sooner.ends_at == dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time(), dt.UTC)

    wider = change(browser, sooner, categories=["health", "education", "case"])
    assert wider.status_code == 400 and "Nothing was changed" in wider.text
    none_left = change(browser, sooner, categories=[])
    assert none_left.status_code == 400 and "stop Diabetes Diary&#39;s access instead" in none_left.text
    past = change(browser, sooner, categories=["health"], ends_on=date_parts(dt.date(2001, 1, 1)))
    assert past.status_code == 400
    assert set(grant_of(runtime, alice).category_list) == {"health", "education"}  # nothing changed


def test_only_the_citizens_own_permission_can_be_changed(
    base: str, app_client: dict, alice: Person, runtime: Runtime
) -> None:
    connected(base, app_client, alice)
    grant = grant_of(runtime, alice)
    bob = add_person(runtime, "Bob Example", "bob@example.org")
    other = Browser(base)
    other.sign_in(bob)
    assert other.http.get(f"{base}/account/access/{grant.id}/change").status_code == 404
    assert other.http.get(f"{base}/account/access/not-an-id/change").status_code == 404
    stranger = Browser(base)
    assert (
        stranger.http.get(f"{base}/account/access/{grant.id}/change", allow_redirects=False).status_code
        == 303
    )
    no_token = Browser(base)
    no_token.sign_in(alice)
    posted = no_token.http.post(f"{base}/account/access/{grant.id}/change", data={"categories": "health"})
    assert posted.status_code == 400 and set(grant_of(runtime, alice).category_list) == {
        "health",
        "education",
    }
