"""Malformed input to the professionals' pages gets a clear answer, never a 500."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from consent.models import ConsentRequest
from pds.runtime import Runtime
from tests.web.portal_helpers import PortalBrowser, add_org, add_professional, csrf

BAD_IDS = ("nope", "%00", "1" * 300, "00000000-0000-0000-0000-000000000000", "..%2F..%2Fetc")


@pytest.fixture
def signed_in_gp(runtime: Runtime, base: str) -> PortalBrowser:
    add_org(runtime, "gp_practice", "A81001", "Riverside Surgery")
    browser = PortalBrowser(base)
    browser.sign_in(add_professional(runtime, org_code="A81001"))
    return browser


def test_bad_ids_are_not_found_or_refused(base: str, signed_in_gp: PortalBrowser) -> None:
    http = signed_in_gp.http
    for bad in BAD_IDS:
        for path in (
            f"/portal/requests/{bad}",
            f"/portal/requests/{bad}/status",
            f"/portal/requests/{bad}/records",
        ):
            assert http.get(base + path, timeout=30).status_code == 404, path
        assert http.get(base + f"/portal/emergency/{bad}", timeout=30).status_code in (403, 404)


def test_bad_forms_name_what_to_fix(base: str, signed_in_gp: PortalBrowser) -> None:
    http = signed_in_gp.http
    for fields, words in (
        ({"nhs_number": "943\x00476 5919"}, "not a valid NHS number"),
        ({"purpose": "review\x00"}, "control characters"),
        ({"days": "forever"}, "Not a valid choice"),
        ({"records_from": ["45", "13", "2025"]}, "The date must be a real date"),
        ({"records_from": ["31", "2", "2025"]}, "The date must be a real date"),
        ({"records_from": ["", "3", "2025"]}, "The date must include a day"),
        ({"records_until": ["1", "", ""]}, "The date must include a month and a year"),
        ({"records_until": ["1", "3", "25"]}, "The year must have 4 numbers"),
        ({"records_until": ["first", "3", "2025"]}, "in numbers, like"),
        ({"records_until": ["1", "3"]}, "Enter a day, a month and a year"),
        ({"categories": ["health", "case"]}, "Not a valid choice"),
        ({"resource_types": ["Patient"]}, "Not a valid choice"),
    ):
        answer = signed_in_gp.ask(**fields)
        assert answer.status_code == 400 and words.lower() in answer.text.lower(), (
            fields,
            answer.status_code,
        )
    page = http.get(base + "/portal/emergency", timeout=30)
    for fields, words in (
        ({"nhs_number": "9434765919", "reason": "x"}, "clinical reason"),
        ({"nhs_number": "9434765870", "reason": "Unconscious in A&E, no history"}, "holds no record"),
        ({"nhs_number": "", "reason": ""}, "Enter the patient"),
    ):
        answer = http.post(
            base + "/portal/emergency", data={"csrf_token": csrf(page.text), **fields}, timeout=30
        )
        assert answer.status_code == 400 and words in answer.text, (fields, answer.status_code)
    no_token = http.post(base + "/portal/requests/new", data={"nhs_number": "9434765919"}, timeout=30)
    assert no_token.status_code == 400


def test_a_records_window_is_typed_as_day_month_and_year(
    base: str, signed_in_gp: PortalBrowser, runtime: Runtime
) -> None:
    form = signed_in_gp.http.get(base + "/portal/requests/new", timeout=30).text
    for box in ("records_from", "records_from-month", "records_from-year"):
        assert f'id="{box}"' in form
    assert 'type="date"' not in form
    sent = signed_in_gp.ask(records_from=[" 1", "4", "2024 "], records_until=["31", "03", "2025"])
    assert sent.status_code == 303, sent.text
    with runtime.sessions() as s:
        (asked,) = s.scalars(select(ConsentRequest)).all()
    assert (asked.records_from, asked.records_until) == (dt.date(2024, 4, 1), dt.date(2025, 3, 31))


def test_a_callback_not_started_here_is_refused(base: str, runtime: Runtime) -> None:
    browser = PortalBrowser(base)
    for query in ("", "?state=x&code=y", "?state=x&iss=evil&error=%00"):
        answer = browser.http.get(base + "/portal/callback" + query, timeout=30)
        assert answer.status_code == 400 and answer.headers["Content-Type"].startswith(
            "application/problem+json"
        )
