"""Malformed input to the professionals' pages gets a clear answer, never a 500."""

from __future__ import annotations

import pytest

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
        ({"records_from": "2025-13-45"}, "Not a valid date"),
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


def test_a_callback_not_started_here_is_refused(base: str, runtime: Runtime) -> None:
    browser = PortalBrowser(base)
    for query in ("", "?state=x&code=y", "?state=x&iss=evil&error=%00"):
        answer = browser.http.get(base + "/portal/callback" + query, timeout=30)
        assert answer.status_code == 400 and answer.headers["Content-Type"].startswith(
            "application/problem+json"
        )
