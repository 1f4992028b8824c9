"""The citizen's Requests page over HTTP: who asks, for what, why and for how long; approving as asked,
approving less (never more), refusing; the grant then on "Who can see my data" and in the access history
under the professional's name; nobody else's request, no answer without the CSRF token."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import uuid

import pytest
from sqlalchemy import select

from consent import events
from consent.models import ConsentRequest, Grant, StaffMember
from consent.professionals import StaffService
from consent.requests import AccessRefused, ProfessionalReads, RequestService, check_ask
from pds.runtime import Runtime
from tests.web.live import Browser, Person, add_person, date_parts

NHS = "9434765919"
GP_NAME = "Dr Asha Patel (GP), Riverside Surgery"
REQUESTS = "/account/requests"
SIGN_OUT_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclasses.dataclass
class Asking:
    """A GP practice and its GP, who asks patients for consent."""

    gp: uuid.UUID
    org: str = "Riverside Surgery"


@pytest.fixture
def surgery(runtime: Runtime) -> Asking:
    return add_surgery(runtime)


@pytest.fixture
def patient(runtime: Runtime) -> Person:
    return add_person(runtime, "Alice Example", "alice@example.org", nhs_number=NHS)


def add_surgery(runtime: Runtime) -> Asking:
    with runtime.sessions() as s, s.begin():
        staff = StaffService(s, provider=runtime.provider)
        org = staff.add_org(kind="gp_practice", code="A81001", name="Riverside Surgery")
        gp = staff.add(
            org_id=org.id, name="Dr Asha Patel", email="asha@a.example", role="gp", password="x" * 16
        )
        return Asking(gp.id)


def ask(runtime: Runtime, staff_id: uuid.UUID, nhs: str = NHS, **kw: object) -> uuid.UUID:
    """The GP asks, as the portal would: through check_ask and RequestService.make."""
    args: dict[str, object] = {
        "purpose": "Diabetes annual review",
        "categories": ["health"],
        "resource_types": ["Observation", "AllergyIntolerance"],
        "days": 30,
        "records_from": dt.date(2025, 1, 1),
    }
    args.update(kw)
    with runtime.vault() as v:
        gp = v.session.get(StaffMember, staff_id)
        req = RequestService(v.session, vault=v).make(gp, nhs, check_ask(gp, **args))  # type: ignore[arg-type]
        return req.id


def request_row(runtime: Runtime, request_id: uuid.UUID) -> tuple[str, Grant | None]:
    with runtime.vault() as v:
        service = RequestService(v.session, vault=v)
        req = v.session.get(ConsentRequest, request_id)
        assert req is not None
        grant = v.session.get(Grant, req.grant_id) if req.grant_id else None
        if grant is not None:
            v.session.expunge(grant)
        return service.status(req), grant


def signed_in(base: str, person: Person) -> Browser:
    browser = Browser(base)
    browser.sign_in(person)
    return browser


def answer(browser: Browser, request_id: uuid.UUID, **form: object):  # type: ignore[no-untyped-def]
    path = f"{browser.base}{REQUESTS}/{request_id}"
    page = browser.http.get(path, allow_redirects=False)
    assert page.status_code == 200, page.text
    return browser.http.post(
        path, data={"csrf_token": browser.csrf(page.text), **form}, allow_redirects=False
    )


def test_the_list_says_who_asks_what_why_and_for_how_long(
    base: str, runtime: Runtime, surgery: Asking, patient: Person
) -> None:
    request_id = ask(runtime, surgery.gp)
    browser = signed_in(base, patient)
    page = browser.open(base + REQUESTS)
    assert page.status_code == 200, page.text
    card = page.text[page.text.index(f'id="request-{request_id}"') :]
    for text in (
        GP_NAME,
        "Your GP health record",
        "Test results (Observation)",
        "Allergies (AllergyIntolerance)",
        "Diabetes annual review",
        "30 days",
        "Only records from 1 January 2025 on",
    ):
        assert text in card, text
    assert f'href="{REQUESTS}/{request_id}"' in page.text
    assert 'href="/account/requests" aria-current="true"' in page.text

    home = browser.open(base + "/")
    assert "1 request waiting for your answer" in home.text and f'href="{REQUESTS}"' in home.text
    decide = browser.open(f"{base}{REQUESTS}/{request_id}")
    assert f"{GP_NAME} asks to see your records" in decide.text
    assert 'value="Observation" checked' in decide.text and 'value="Condition"' not in decide.text


def test_approving_as_asked_lets_the_gp_read_and_is_listed(
    base: str, runtime: Runtime, surgery: Asking, patient: Person
) -> None:
    request_id = ask(runtime, surgery.gp)
    browser = signed_in(base, patient)
    done = answer(browser, request_id, decision="approve")
    assert done.status_code == 303 and done.headers["Location"] == REQUESTS
    status, grant = request_row(runtime, request_id)
    assert status == "approved" and grant is not None
    assert grant.resource_type_list == ["Observation", "AllergyIntolerance"]
    assert abs(grant.ends_at - grant.starts_at - dt.timedelta(days=30)) < dt.timedelta(seconds=5)

    listed = browser.open(base + REQUESTS).text
    assert f"{GP_NAME} can now see your records" in listed  # the banner, once
    assert f'id="request-{request_id}"' not in listed and f'id="past-{request_id}"' in listed
    assert "You approved" in listed and "No requests are waiting for your answer" in listed
    assert "waiting for your answer" not in browser.open(base + "/").text.replace(
        "No requests are waiting", ""
    )

    access = browser.open(base + "/account/access").text
    card = access[access.index(f'id="grant-{grant.id}"') :]
    for text in (GP_NAME, "Riverside Surgery", "Test results (Observation)", "Diabetes annual review"):
        assert text in card, text
    with runtime.vault() as v:
        gp = v.session.get(StaffMember, surgery.gp)
        ProfessionalReads(v.session, vault=v).read(gp, grant.id)  # the GP may read now


def test_approving_with_less_narrows_the_grant_never_widens_it(
    base: str, runtime: Runtime, surgery: Asking, patient: Person
) -> None:
    request_id = ask(runtime, surgery.gp)
    browser = signed_in(base, patient)
    wider = answer(browser, request_id, decision="change", categories="health", resource_types="Condition")
    assert wider.status_code == 400 and "Nothing was decided" in wider.text
    none_left = answer(browser, request_id, decision="change", categories="health")
    assert none_left.status_code == 400 and "Keep at least one type" in none_left.text
    nothing = answer(browser, request_id, decision="change")
    assert nothing.status_code == 400 and "Keep at least one, or refuse the request" in nothing.text
    long_ago = date_parts(dt.date(2001, 1, 1))
    past = answer(browser, request_id, decision="change", categories="health", ends_on=long_ago)
    assert past.status_code == 400 and "Choose today or a later day" in past.text
    assert request_row(runtime, request_id) == ("pending", None)

    last_day = (dt.datetime.now(dt.UTC) + dt.timedelta(days=5)).date()
    done = answer(
        browser,
        request_id,
        decision="change",
        categories="health",
        resource_types="Observation",
        ends_on=date_parts(last_day),
    )
    assert done.status_code == 303, done.text
    status, grant = request_row(runtime, request_id)
    assert status == "approved_with_changes" and grant is not None
    assert grant.resource_type_list == ["Observation"]
    assert grant.ends_at == dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time(), dt.UTC)
    listed = browser.open(base + REQUESTS).text
    assert "You approved with changes" in listed
    access = browser.open(base + "/account/access").text
    assert "Test results (Observation)" in access and "Allergies (AllergyIntolerance)" not in access
    assert f"the end of {last_day.strftime('%-d %B %Y')}" in access


def test_a_request_without_types_can_be_narrowed_to_some(
    base: str, runtime: Runtime, surgery: Asking, patient: Person
) -> None:
    request_id = ask(runtime, surgery.gp, resource_types=[])
    browser = signed_in(base, patient)
    page = browser.open(f"{base}{REQUESTS}/{request_id}").text
    assert 'value="Condition" checked' in page and 'value="Encounter" checked' in page
    all_unticked = answer(browser, request_id, decision="change", categories="health")
    assert all_unticked.status_code == 400  # none left is not "everything"
    done = answer(browser, request_id, decision="change", categories="health", resource_types="Immunization")
    assert done.status_code == 303
    status, grant = request_row(runtime, request_id)
    assert status == "approved_with_changes" and grant is not None
    assert grant.resource_type_list == ["Immunization"]


def test_refusing_shares_nothing_and_is_in_the_ledger(
    base: str, runtime: Runtime, surgery: Asking, patient: Person
) -> None:
    request_id = ask(runtime, surgery.gp)
    browser = signed_in(base, patient)
    done = answer(browser, request_id, decision="refuse")
    assert done.status_code == 303
    assert request_row(runtime, request_id) == ("refused", None)
    listed = browser.open(base + REQUESTS).text
    assert f"You refused the request from {GP_NAME}" in listed and "You refused" in listed
    with runtime.sessions() as s:
        assert s.scalars(select(Grant).where(Grant.citizen_id == patient.citizen_id)).all() == []
        denied = [h for h in events.history(s, patient.citizen_id) if h.event == events.REQUEST_DENIED]
    assert len(denied) == 1 and denied[0].details["request_id"] == str(request_id)
    history = browser.open(base + "/account/access-history").text
    assert f"You refused a request from {GP_NAME}" in history
    assert f"{GP_NAME} asked to see your GP health record" in history
    again = browser.open(f"{base}{REQUESTS}/{request_id}")  # answered: back to the list
    assert again.status_code == 303 and again.headers["Location"] == REQUESTS


def test_no_answer_without_choosing(base: str, runtime: Runtime, surgery: Asking, patient: Person) -> None:
    request_id = ask(runtime, surgery.gp)
    browser = signed_in(base, patient)
    blank = answer(browser, request_id)
    assert blank.status_code == 400
    assert (
        "Choose to approve, approve with changes, or refuse" in blank.text
        and 'href="#decision"' in blank.text
    )
    assert request_row(runtime, request_id) == ("pending", None)


def test_another_citizens_request_or_a_malformed_id_is_not_found(
    base: str, runtime: Runtime, surgery: Asking, patient: Person
) -> None:
    request_id = ask(runtime, surgery.gp)
    bob = add_person(runtime, "Bob Example", "bob@example.org", nhs_number="9434765870")
    other = signed_in(base, bob)
    seen = other.open(f"{base}{REQUESTS}/{request_id}")
    malformed = other.open(f"{base}{REQUESTS}/not-an-id")
    unknown = other.open(f"{base}{REQUESTS}/{uuid.uuid4()}")
    for answered in (seen, malformed, unknown):
        assert answered.status_code == 404
        assert answered.headers["Content-Type"] == "application/problem+json"
    assert seen.json()["detail"] == malformed.json()["detail"] == unknown.json()["detail"]
    token = SIGN_OUT_TOKEN.findall(other.open(base + REQUESTS).text)[0]  # any page's token is his
    posted = other.http.post(
        f"{base}{REQUESTS}/{request_id}",
        data={"csrf_token": token, "decision": "approve"},
        allow_redirects=False,
    )
    assert posted.status_code == 404
    assert str(request_id) not in other.open(base + REQUESTS).text
    assert request_row(runtime, request_id) == ("pending", None)


def test_without_the_csrf_token_nothing_is_decided(
    base: str, runtime: Runtime, surgery: Asking, patient: Person
) -> None:
    request_id = ask(runtime, surgery.gp)
    browser = signed_in(base, patient)
    url = f"{base}{REQUESTS}/{request_id}"
    forged = browser.http.post(url, data={"decision": "approve"}, allow_redirects=False)
    assert forged.status_code == 400 and "did not come from pds" in forged.text
    wrong = browser.http.post(url, data={"decision": "refuse", "csrf_token": "x" * 40}, allow_redirects=False)
    assert wrong.status_code == 400
    assert request_row(runtime, request_id) == ("pending", None)


def test_signed_out_the_pages_ask_to_sign_in(base: str, runtime: Runtime, surgery: Asking) -> None:
    request_id = ask(runtime, surgery.gp)
    stranger = Browser(base)
    for path in (REQUESTS, f"{REQUESTS}/{request_id}"):
        sent = stranger.open(base + path)
        assert sent.status_code == 303 and sent.headers["Location"].startswith("/signin?next=")
    posted = stranger.http.post(
        f"{base}{REQUESTS}/{request_id}", data={"decision": "approve"}, allow_redirects=False
    )
    assert posted.status_code == 303 and posted.headers["Location"].startswith("/signin?next=")


def test_a_professionals_grant_is_named_and_can_be_stopped(
    base: str, runtime: Runtime, surgery: Asking, patient: Person
) -> None:
    request_id = ask(runtime, surgery.gp, resource_types=["Observation"])
    browser = signed_in(base, patient)
    assert answer(browser, request_id, decision="approve").status_code == 303
    _, grant = request_row(runtime, request_id)
    assert grant is not None
    revoke_url = f"{base}/account/access/{grant.id}/revoke"
    asked = browser.open(revoke_url)
    assert f"{GP_NAME} will not be able to read your records from now on" in asked.text
    stopped = browser.http.post(
        revoke_url, data={"csrf_token": browser.csrf(asked.text)}, allow_redirects=False
    )
    assert stopped.status_code == 303
    assert f"{GP_NAME} can no longer see your records" in browser.open(base + "/account/access").text
    with runtime.vault() as v, pytest.raises(AccessRefused):
        ProfessionalReads(v.session, vault=v).read(v.session.get(StaffMember, surgery.gp), grant.id)
    assert "You approved, then stopped access" in browser.open(base + REQUESTS).text
    history = browser.open(base + "/account/access-history").text
    assert f"You allowed {GP_NAME} to see your GP health record (only Test results (Observation))" in history
    assert f"{GP_NAME} may no longer see your records (revoked)" in history


def test_emergency_access_is_marked_on_both_pages(
    base: str, runtime: Runtime, surgery: Asking, patient: Person
) -> None:
    with runtime.vault() as v:
        gp = v.session.get(StaffMember, surgery.gp)
        grant = ProfessionalReads(v.session, vault=v).emergency(
            gp, NHS, "Unconscious in A&E, allergies needed"
        )
        grant_id = grant.id
    with runtime.vault() as v:
        ProfessionalReads(v.session, vault=v).read(v.session.get(StaffMember, surgery.gp), grant_id)
    browser = signed_in(base, patient)
    access = browser.open(base + "/account/access").text
    card = access[access.index(f'id="grant-{grant_id}"') :]
    assert f"Emergency access: {GP_NAME}" in card and "Opened without your consent" in card
    assert "Unconscious in A&amp;E, allergies needed" in card
    history = re.sub(r"<[^>]+>", "", browser.open(base + "/account/access-history").text)  # its words
    assert f"Emergency access: {GP_NAME} opened your records in an emergency" in history
    assert f"Emergency access: {GP_NAME} read " in history
    assert "Staff member" not in history
