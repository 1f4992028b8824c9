"""The citizen's health record and data pages over HTTP: the GP record in plain words, the two downloads
(logged as exports), deleting the vault after re-entering the password, and nothing for anyone else."""

from __future__ import annotations

import html as htmllib
import json
import re
from pathlib import Path

import pytest
import requests
from fhir.resources.R4B.bundle import Bundle
from sqlalchemy import func, select

from connectors.fhir import FhirParser
from connectors.ingest import deliver
from consent import events
from consent.ledger.models import LedgerDetail, LedgerEntry
from pds.runtime import Runtime
from pds.web.records_pages import observation_value, uk_date
from tests.web.live import Browser, Person, add_person
from tests.web.test_openapi import Contract

SAMPLES = Path(__file__).resolve().parents[2] / "connectors" / "samples" / "fhir"
ALICE_NHS, BOB_NHS = "9990000018", "9990000034"
TAGS = re.compile(r"<[^>]+>")


def push(runtime: Runtime, sample: str) -> None:
    """A GP delivery of a sample Bundle, through the FHIR connector, into the vaults."""
    body = (SAMPLES / sample).read_bytes()
    with runtime.vault() as v:
        v.sources.ensure("demo-gp", kind="fhir", title="GP")
        deliver(
            v,
            "demo-gp",
            FhirParser().parse(body, media_type="application/fhir+json"),
            actor="connector:demo-gp",
        )


def text_of(page: str) -> str:
    """The page's words, tags out and spaces squeezed, as a reader sees them."""
    return " ".join(htmllib.unescape(TAGS.sub(" ", page)).split())


def section(page: str, name: str) -> str:
    match = re.search(rf'<section aria-labelledby="{name}-heading" id="{name}">(.*?)</section>', page, re.S)
    assert match, f"no {name} section"
    return text_of(match.group(1))


@pytest.fixture
def alice_gp(runtime: Runtime, alice: Person) -> Person:
    with runtime.vault() as v:
        v.citizens.add_identifier(alice.citizen_id, "nhs_number", ALICE_NHS)
    push(runtime, "alice.r4.json")
    return alice


@pytest.fixture
def bob(runtime: Runtime) -> Person:
    person = add_person(runtime, "Bob Patel", "bob@example.org", nhs_number=BOB_NHS)
    push(runtime, "gp-connect-bob.stu3.json")
    return person


def signed_in(base: str, person: Person) -> Browser:
    browser = Browser(base)
    browser.sign_in(person)
    return browser


def test_the_pages_send_a_stranger_to_sign_in(base: str) -> None:
    for path in (
        "/account/health",
        "/account/my-data",
        "/account/my-data/export.json",
        "/account/my-data/health.json",
    ):
        r = requests.get(base + path, allow_redirects=False, timeout=10)
        assert r.status_code == 303 and r.headers["Location"] == "/signin?next=" + path, (
            path,
            r.headers.get("Location"),
        )
    r = requests.post(
        base + "/account/my-data/delete", data={"password": "x"}, allow_redirects=False, timeout=10
    )
    assert r.status_code == 303 and r.headers["Location"].startswith("/signin?next=")


def test_the_health_page_shows_the_gp_record_in_plain_words(base: str, alice_gp: Person) -> None:
    page = signed_in(base, alice_gp).open(base + "/account/health")
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    html = page.text
    assert '<h1 class="govuk-heading-xl">Your GP health record</h1>' in html
    nav = re.search(r'<li class="govuk-service-navigation__item[^"]*--active">(.*?)</li>', html, re.S)
    assert nav and 'href="/account/health"' in nav.group(1)  # in the navigation, marked current
    assert section(html, "problems") == "Problems Problem Since Status Asthma 10 September 2001 Active"
    medicines = section(html, "medicines")
    assert "Salbutamol 100 micrograms/dose inhaler" in medicines
    assert "Two puffs when needed for breathlessness, up to four times a day" in medicines
    assert "2 May 2019" in medicines
    assert "Seasonal influenza vaccine 14 September 2026 Given" in section(html, "immunisations")
    assert section(html, "allergies") == "Allergies None recorded."
    assert section(html, "visits") == "Appointments and visits None recorded."


def test_the_health_page_reads_a_gp_connect_record_newest_first(base: str, bob: Person) -> None:
    html = signed_in(base, bob).open(base + "/account/health").text
    results = section(html, "results")
    # newest first; blood pressure from its components; UCUM's mm[Hg] in plain words
    assert results.index("Blood pressure 138/84 mmHg 19 September 2024") < results.index(
        "Haemoglobin A1c level - IFCC standardised 52 mmol/mol 19 September 2024"
    )
    assert results.index("52 mmol/mol") < results.index("58 mmol/mol 14 March 2024")
    problems = section(html, "problems")
    assert "Type 2 diabetes mellitus 3 June 2019 Active" in problems
    # the citizen sees their own restricted record, marked as such
    assert "Depressive disorder Restricted 7 February 2012 Resolved (30 May 2013)" in problems
    assert "govuk-tag" in html and "Anyone who acts for you" in html
    medicines = section(html, "medicines")
    # the medicine's name from the Medication it refers to; the repeat prescription behind it not twice
    assert medicines.count("Metformin 500mg tablets") == 1
    assert "Metformin 500mg tablets Take one tablet twice a day with meals 3 June 2019 Active" in medicines
    assert "Allergy to penicillin Urticaria May 1984" in section(html, "allergies")
    immunisations = section(html, "immunisations")
    assert "Shingles vaccine 14 November 2023 Not given: Patient declined" in immunisations
    assert "Diabetes annual review 19 September 2024 Dr Aisha Rahman, Kiln Row Medical Practice Finished" in (
        section(html, "visits")
    )


def test_plain_words_for_dates_and_values() -> None:
    assert uk_date("2026-11-03") == "3 November 2026"
    assert uk_date("2026-11-03T23:30:00-05:00") == "3 November 2026"  # the date as the source wrote it
    assert (uk_date("1984-05"), uk_date("1984"), uk_date(None), uk_date("soon")) == (
        "May 1984",
        "1984",
        "",
        "",
    )
    assert observation_value({"valueQuantity": {"value": 18.2, "unit": "kg"}}) == "18.2 kg"
    assert (
        observation_value({"valueQuantity": {"value": 5, "comparator": "<", "code": "mmol/L"}}) == "<5 mmol/L"
    )
    assert observation_value({"valueString": "Negative"}) == "Negative"
    assert observation_value({}) == "No value recorded"


def test_the_export_holds_everything_and_is_in_the_ledger(
    base: str, alice_gp: Person, runtime: Runtime
) -> None:
    browser = signed_in(base, alice_gp)
    page = browser.open(base + "/account/my-data")
    assert page.status_code == 200
    for words in (
        "Download everything (JSON)",
        "Download your health record (FHIR Bundle)",
        "Delete my vault",
    ):
        assert words in page.text
    r = browser.open(base + "/account/my-data/export.json")
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json"
    assert re.fullmatch(
        r'attachment; filename="pds-export-\d{4}-\d\d-\d\d\.json"', r.headers["Content-Disposition"]
    )
    contract = Contract(requests.get(base + "/openapi.json", timeout=10).json())
    export = contract.check("/account/my-data/export.json", "GET", r)
    assert (
        export["citizen"]["id"] == str(alice_gp.citizen_id) and export["citizen"]["name"] == "Alice Example"
    )
    assert export["identifiers"] == {"email": [alice_gp.email], "nhs_number": [ALICE_NHS]}
    kinds = sorted(record["kind"] for record in export["records"])
    assert (
        kinds
        == ["fhir:Condition", "fhir:Immunization", "fhir:MedicationStatement"] + ["fhir:Observation"] * 2
    )
    assert {r["source"] for r in export["records"]} == {"gp", "school", "demo-gp"}
    assert any(r["payload"].get("code", {}).get("text") == "Asthma" for r in export["records"])

    with runtime.sessions() as s:
        exported = [h for h in events.history(s, alice_gp.citizen_id) if h.event == events.RECORDS_EXPORTED]
    assert len(exported) == 1 and exported[0].details["actor"] == f"citizen:{alice_gp.citizen_id}"
    assert "You exported your records" in browser.open(base + "/account/access-history").text
    # reading the health page is not a third party's read: nothing more in the ledger
    with runtime.sessions() as s:
        before = len(events.history(s, alice_gp.citizen_id))
    assert browser.open(base + "/account/health").status_code == 200
    with runtime.sessions() as s:
        assert len(events.history(s, alice_gp.citizen_id)) == before


def test_the_health_download_is_a_valid_fhir_r4_bundle(base: str, bob: Person, runtime: Runtime) -> None:
    browser = signed_in(base, bob)
    r = browser.open(base + "/account/my-data/health.json")
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/fhir+json"
    assert r.headers["Content-Disposition"].startswith('attachment; filename="health-record-')
    Contract(requests.get(base + "/openapi.json", timeout=10).json()).check(
        "/account/my-data/health.json", "GET", r
    )
    bundle = Bundle.model_validate_json(r.content)
    assert bundle.type == "collection"
    types = sorted(type(e.resource).__name__ for e in bundle.entry or [])
    assert types.count("Observation") == 3 and "Patient" not in types
    assert {"Condition", "Encounter", "Medication", "MedicationRequest", "List"} <= set(types)
    assert len({e.fullUrl for e in bundle.entry or []}) == len(types)
    with runtime.sessions() as s:
        exported = [h for h in events.history(s, bob.citizen_id) if h.event == events.RECORDS_EXPORTED]
    assert len(exported) == 1


def _delete(browser: Browser, base: str, **form: str) -> requests.Response:
    page = browser.open(base + "/account/my-data")
    data = {"csrf_token": browser.csrf(page.text), **form}
    return browser.http.post(base + "/account/my-data/delete", data=data, allow_redirects=False)


def _status(runtime: Runtime, person: Person) -> tuple[str, int]:
    with runtime.vault() as v:
        status = v.citizens.get(person.citizen_id).status
        count = 0 if status != "active" else len(v.records.list(person.citizen_id).items)
    return status, count


def test_deleting_needs_the_password_and_the_box_ticked(
    base: str, alice_gp: Person, runtime: Runtime
) -> None:
    browser = signed_in(base, alice_gp)
    before = _status(runtime, alice_gp)
    assert before[0] == "active" and before[1] == 5

    wrong = _delete(browser, base, password="not-it", confirm="y")
    assert wrong.status_code == 400
    assert (
        "govuk-error-summary" in wrong.text and 'href="#password">The password is not right</a>' in wrong.text
    )
    assert '<p id="password-error" class="govuk-error-message">' in wrong.text
    assert "<title>Error: Your data" in wrong.text

    unticked = _delete(browser, base, password=alice_gp.password)
    assert unticked.status_code == 400 and 'href="#confirm">Tick the box' in unticked.text

    empty = _delete(browser, base, confirm="y")
    assert empty.status_code == 400 and 'href="#password">Enter your password</a>' in empty.text

    no_csrf = browser.http.post(
        base + "/account/my-data/delete",
        data={"password": alice_gp.password, "confirm": "y"},
        allow_redirects=False,
    )
    assert no_csrf.status_code == 400 and "This form has expired" in no_csrf.text
    assert _status(runtime, alice_gp) == before
    assert browser.open(base + "/account/health").status_code == 200  # still signed in, still there


def test_deleting_erases_the_vault_as_the_cli_does(base: str, alice_gp: Person, runtime: Runtime) -> None:
    browser = signed_in(base, alice_gp)
    with runtime.sessions() as s:
        subject = events.pseudonym(s, alice_gp.citizen_id)
    assert subject is not None  # the delivery is in the ledger under her pseudonym
    done = _delete(browser, base, password=alice_gp.password, confirm="y")
    assert done.status_code == 200, done.text
    assert "govuk-panel--confirmation" in done.text and "Your vault has been deleted" in done.text
    assert "5 records deleted" in text_of(done.text)
    assert _status(runtime, alice_gp) == ("erased", 0)
    with runtime.vault() as v:
        assert v.citizens.find("email", alice_gp.email) is None
        assert v.citizens.find("nhs_number", ALICE_NHS) is None
        # the erasure is in the ledger, under her pseudonym, as the last entry about her; its details and
        # her pseudonym key are gone with her data key
        leaves = v.session.scalars(
            select(LedgerEntry.leaf).where(LedgerEntry.subject == subject).order_by(LedgerEntry.position)
        ).all()
        assert json.loads(leaves[-1])["event"] == events.CITIZEN_ERASED
        assert (
            v.session.scalar(
                select(func.count())
                .select_from(LedgerDetail)
                .where(LedgerDetail.citizen_id == alice_gp.citizen_id)
            )
            == 0
        )
    # signed out: the pages send her to sign in, and she cannot sign in again
    r = browser.open(base + "/account/health")
    assert r.status_code == 303 and r.headers["Location"].startswith("/signin")
    again = Browser(base)
    page = again.http.get(base + "/signin")
    refused = again.http.post(
        base + "/signin",
        data={"csrf_token": again.csrf(page.text), "email": alice_gp.email, "password": alice_gp.password},
        allow_redirects=False,
    )
    assert refused.status_code == 400


def test_a_citizen_sees_only_their_own_data(
    base: str, alice_gp: Person, bob: Person, runtime: Runtime
) -> None:
    as_bob = signed_in(base, bob)
    health = as_bob.open(base + "/account/health").text
    assert "Asthma" not in health and "Salbutamol" not in health and "Metformin" in health
    export = as_bob.open(base + "/account/my-data/export.json").json()
    assert export["citizen"]["id"] == str(bob.citizen_id)
    assert {r["citizen_id"] for r in export["records"]} == {str(bob.citizen_id)}
    bundle = as_bob.open(base + "/account/my-data/health.json").text
    assert "Asthma" not in bundle and "Salbutamol" not in bundle
    # Bob's session cannot erase Alice: the form acts only on whoever is signed in, with their password
    wrong = _delete(as_bob, base, password=alice_gp.password, confirm="y")
    assert wrong.status_code == 400
    assert _status(runtime, alice_gp)[0] == "active" and _status(runtime, bob)[0] == "active"
    with runtime.sessions() as s:
        assert not [h for h in events.history(s, alice_gp.citizen_id) if h.event == events.RECORDS_EXPORTED]
