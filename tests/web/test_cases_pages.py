"""The cases and children pages over HTTP: a council case with its timeline, nobody else's case, and a
parent's view of a child's school records, limited by the guardian link and written in the child's ledger."""

from __future__ import annotations

import datetime as dt
import html
import re
import uuid
from pathlib import Path

import requests

from connectors.fhir import FhirParser
from connectors.ingest import deliver
from connectors.oneroster import OneRosterParser
from connectors.open311 import Open311Parser
from consent import events
from pds.runtime import Runtime
from tests.web.live import Browser, Person, add_person

SAMPLES = Path(__file__).resolve().parents[2] / "connectors" / "samples"
CASE_LINK = re.compile(r'href="/account/cases/([0-9a-f-]{36})"')


def give_alice_her_council_case(runtime: Runtime, person: Person) -> None:
    with runtime.vault() as v:
        v.citizens.add_identifier(person.citizen_id, "council_account", "EBC-100234")
        v.sources.ensure("demo-council", kind="open311", title="Council")
        items = Open311Parser().parse(
            (SAMPLES / "open311" / "council.json").read_bytes(), media_type="application/json"
        )
        deliver(v, "demo-council", items, actor="connector:demo-council")


def add_child(
    runtime: Runtime, parent: Person, categories: list[str], *, born: str = "2014-05-01", **link
) -> uuid.UUID:
    """Sam, with his school's records (and his GP's, so a health link has something to show)."""
    with runtime.vault() as v:
        sam = v.citizens.add(name="Sam Okafor", date_of_birth=born, nhs_number="9990000026").id
        v.citizens.add_identifier(sam, "upn", "F201200124001")
        v.sources.ensure("demo-school", kind="oneroster", title="School")
        v.sources.ensure("demo-gp", kind="fhir", title="GP")
        school = OneRosterParser().parse(
            (SAMPLES / "oneroster" / "sam.rest.json").read_bytes(), media_type="application/json"
        )
        deliver(v, "demo-school", school, actor="connector:demo-school")
        gp = FhirParser().parse(
            (SAMPLES / "fhir" / "sam.r4.json").read_bytes(), media_type="application/fhir+json"
        )
        deliver(v, "demo-gp", gp, actor="connector:demo-gp")
        v.guardians.link(parent.citizen_id, sam, categories, **link)
    return sam


def text_of(page: str) -> str:
    """The page's words, tags stripped and spaces collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def test_a_case_reads_like_an_order_with_its_timeline(base: str, alice: Person, runtime: Runtime) -> None:
    give_alice_her_council_case(runtime, alice)
    browser = Browser(base)
    browser.sign_in(alice)

    listing = browser.open(base + "/account/cases")
    assert listing.status_code == 200
    words = text_of(listing.text)
    assert "Residents' parking permit" in words
    assert "Handled by Example Borough Council parking services" in words
    assert "Status Being investigated" in words  # the newest update's state, in plain words
    assert "Last update 20 November 2026" in words and "Expected by 2 December 2026" in words
    assert 'class="govuk-tag govuk-tag--yellow"' in listing.text
    (case_id,) = set(CASE_LINK.findall(listing.text))

    page = browser.open(base + f"/account/cases/{case_id}")
    assert page.status_code == 200
    words = text_of(page.text)
    assert "Status Being investigated" in words and "Expected by 2 December 2026" in words
    assert "Proof of address received; checking your vehicle documents." in words  # what happens next
    timeline = text_of(page.text.split('id="timeline"', 1)[1].split("</ol>", 1)[0])
    newest = "20 November 2026 Being investigated Documents checked: proof of address accepted."
    oldest = "18 November 2026 Open Application received."
    assert newest in timeline and oldest in timeline
    assert timeline.index(newest) < timeline.index(oldest)


def test_nobody_else_sees_a_case(base: str, alice: Person, runtime: Runtime) -> None:
    give_alice_her_council_case(runtime, alice)
    with runtime.vault() as v:
        (case,) = v.records.list(alice.citizen_id, kind="open311:request").items
        (maths,) = [r for r in v.records.list(alice.citizen_id).items if r.category == "education"]

    stranger = requests.get(base + f"/account/cases/{case.id}", allow_redirects=False, timeout=10)
    assert stranger.status_code == 303 and stranger.headers["Location"].startswith("/signin?next=")
    for path in ("/account/cases", "/account/children"):
        signed_out = requests.get(base + path, allow_redirects=False, timeout=10)
        assert signed_out.status_code == 303 and signed_out.headers["Location"] == f"/signin?next={path}"

    bob = add_person(runtime, "Bob Example", "bob@example.org")
    other = Browser(base)
    other.sign_in(bob)
    assert 'id="no-cases"' in other.open(base + "/account/cases").text
    refused = other.open(base + f"/account/cases/{case.id}")
    unknown = other.open(base + f"/account/cases/{uuid.uuid4()}")
    assert refused.status_code == unknown.status_code == 404
    assert refused.headers["Content-Type"].startswith("application/problem+json")
    assert refused.json()["detail"] == unknown.json()["detail"]  # the same words: no hint that it exists
    assert other.open(base + "/account/cases/not-an-id").status_code == 404

    # Alice's own record that is not a case is no case either
    mine = Browser(base)
    mine.sign_in(alice)
    assert mine.open(base + f"/account/cases/{maths.id}").status_code == 404


def test_a_parent_sees_the_school_records_the_link_covers(base: str, alice: Person, runtime: Runtime) -> None:
    sam = add_child(runtime, alice, ["education"])
    browser = Browser(base)
    browser.sign_in(alice)
    page = browser.open(base + "/account/children")
    assert page.status_code == 200
    words = text_of(page.text)
    assert "Sam Okafor" in words
    # 10 marks: 8 present (one of them late), 2 illness: 80%
    assert "80% Sam attended 8 of the 10 sessions" in words
    marks = text_of(page.text.split(f'id="marks-{sam}"', 1)[1].split("</table>", 1)[0])
    assert "11 March 2025 AM L: Late, arrived before the register closed (present) 10 minutes" in marks
    assert "13 March 2025 AM I: Illness (authorised absence)" in marks
    assert "Fractions test Year 7 Maths 27 out of 30 12 March 2025" in words
    assert "Ratio homework Year 7 Maths Not marked yet" in words
    assert "Helped two classmates through the fractions starter." in words
    # the event the school marked sensitive is kept from the parent
    assert "Quiet and withdrawn" not in page.text and "Wellbeing" not in page.text
    assert "Measles" not in page.text and "Immunisations" not in page.text  # no health in this link

    with runtime.sessions() as s:
        reads = [h for h in events.history(s, sam) if h.event == events.RECORDS_READ]
    assert len(reads) == 1
    assert reads[0].details["actor"] == f"guardian:{alice.citizen_id}"
    assert reads[0].details["what"] == "child's school progress"
    assert reads[0].details["categories"] == ["education"]
    assert reads[0].details["count"] == 13  # 2 results, 10 marks, 1 event: not the sensitive one
    # each look is another read
    browser.open(base + "/account/children")
    with runtime.sessions() as s:
        assert sum(h.event == events.RECORDS_READ for h in events.history(s, sam)) == 2


def test_a_health_only_link_shows_no_school_records(base: str, alice: Person, runtime: Runtime) -> None:
    sam = add_child(runtime, alice, ["health"])
    browser = Browser(base)
    browser.sign_in(alice)
    page = browser.open(base + "/account/children")
    words = text_of(page.text)
    assert "Your link does not cover Sam's school records, so none are shown." in words
    assert "27 out of 30" not in words and "attended" not in words and f'id="marks-{sam}"' not in page.text
    assert "Measles, mumps and rubella vaccine 1" in words and "Measles, mumps and rubella vaccine 2" in words
    with runtime.sessions() as s:
        (read,) = [h for h in events.history(s, sam) if h.event == events.RECORDS_READ]
    assert read.details["categories"] == ["health"] and read.details["count"] == 2


def test_a_link_under_review_says_so_and_an_ended_one_shows_nothing(
    base: str, alice: Person, runtime: Runtime
) -> None:
    today = dt.date.today()
    teen = add_child(runtime, alice, ["education"], born=f"{today.year - 14}-01-01")
    with runtime.vault() as v:
        grown = v.citizens.add(name="Jo Okafor", date_of_birth=f"{today.year - 17}-01-01").id
        v.guardians.link(alice.citizen_id, grown, ["education"], today=dt.date(today.year - 3, 1, 1))
    browser = Browser(base)
    browser.sign_in(alice)
    words = text_of(browser.open(base + "/account/children").text)
    assert f"Sam turned 13 on 1 January {today.year - 1}, so your link is due for review" in words
    assert "27 out of 30" in words  # still shown while under review
    assert "Your access ended when Jo turned 16." in words
    with runtime.sessions() as s:
        assert [h.event for h in events.history(s, grown)] == []  # nothing read, nothing logged
        assert any(h.event == events.RECORDS_READ for h in events.history(s, teen))


def test_no_children(base: str, alice: Person) -> None:
    browser = Browser(base)
    browser.sign_in(alice)
    page = browser.open(base + "/account/children")
    assert page.status_code == 200 and 'id="no-children"' in page.text
