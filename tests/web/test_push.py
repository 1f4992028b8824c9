"""A source system pushes deliveries over HTTP with its own client-credentials token."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session

from consent import events
from consent.clients import ClientService
from consent.ledger.models import LedgerEntry
from consent.scopes import connector_scope
from pds.runtime import Runtime
from tests.web.live import Person, add_person

SAMPLES = Path(__file__).resolve().parents[2] / "connectors" / "samples" / "open311"
COUNCIL = "demo-council"


def system(base: str, runtime: Runtime, connector: str) -> OAuth2Session:
    """What `pds connectors credentials NAME` issues, used as a source system would: a real OAuth client."""
    with runtime.sessions() as s, s.begin():
        made = ClientService(s).add(
            name=f"{connector} MIS",
            redirect_uris=[],
            scope=connector_scope(connector),
            grant_types=["client_credentials"],
        )
    client = OAuth2Session(made.client.client_id, made.secret, scope=connector_scope(connector))
    client.fetch_token(base + "/oauth/token", grant_type="client_credentials")
    return client


@pytest.fixture
def resident(runtime: Runtime) -> Person:
    person = add_person(runtime, "Alice Example", "alice@example.org")
    with runtime.vault() as v:
        v.citizens.add_identifier(person.citizen_id, "council_account", "EBC-100234")
    return person


def push(session: OAuth2Session, base: str, body: bytes, connector: str = COUNCIL, **headers: str):  # type: ignore[no-untyped-def]
    return session.post(
        f"{base}/connectors/{connector}/deliveries",
        data=body,
        headers={"Content-Type": "application/json", **headers},
    )


def deliveries_in_ledger(runtime: Runtime, person: Person) -> list[dict]:
    with runtime.sessions() as s:
        return [
            h.details for h in events.history(s, person.citizen_id) if h.event == events.RECORDS_DELIVERED
        ]


def test_a_pushed_case_is_stored_encrypted_in_the_right_vault_and_in_the_ledger(
    base: str, runtime: Runtime, resident: Person
) -> None:
    council = system(base, runtime, COUNCIL)
    answer = push(council, base, (SAMPLES / "council.json").read_bytes())
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["counts"] == {"stored": 3, "updated": 0, "unchanged": 0, "citizens": 1}
    with runtime.vault() as v:  # at once: the response leaves after the commit
        page = v.records.list(resident.citizen_id, categories=["case"])
        kinds = sorted(r.kind for r in page.items)
        stored = {r.source_record_id: r.payload for r in page.items}
    assert kinds == ["open311:request", "open311:update", "open311:update"]
    assert stored["PP-2026-004211-u2"]["status"] == "investigating"
    (entry,) = deliveries_in_ledger(runtime, resident)
    assert entry["source"] == COUNCIL and entry["count"] == 3 and len(entry["digest"]) == 64
    assert entry["kinds"] == {"open311:request": 1, "open311:update": 2}
    with runtime.sessions() as s:  # the ledger leaf names no one and says nothing of the case
        leaves = b"".join(s.scalars(LedgerEntry.__table__.select().with_only_columns(LedgerEntry.leaf)))
    assert b"EBC-100234" not in leaves and b"parking" not in leaves

    again = push(council, base, (SAMPLES / "council.json").read_bytes())
    assert again.json()["counts"] == {"stored": 0, "updated": 0, "unchanged": 3, "citizens": 1}
    assert len(deliveries_in_ledger(runtime, resident)) == 1  # a repeat adds no ledger entry


def test_a_newer_version_updates_and_an_older_one_never_overwrites(
    base: str, runtime: Runtime, resident: Person
) -> None:
    council = system(base, runtime, COUNCIL)
    doc = json.loads((SAMPLES / "council.json").read_bytes())
    push(council, base, json.dumps(doc).encode())
    newer = {
        **doc["service_requests"][0],
        "status": "closed",
        "updated_datetime": "2026-11-24T10:00:00+00:00",
    }
    assert push(council, base, json.dumps([newer]).encode()).json()["counts"]["updated"] == 1
    older = {
        **doc["service_requests"][0],
        "status_notes": "stale",
        "updated_datetime": "2026-11-19T10:00:00+00:00",
    }
    assert push(council, base, json.dumps([older]).encode()).json()["counts"]["unchanged"] == 1
    with runtime.vault() as v:
        (case,) = v.records.list(resident.citizen_id, kind="open311:request").items
    assert case.payload["status"] == "closed"


def test_a_delivery_with_any_bad_item_is_refused_whole(base: str, runtime: Runtime, resident: Person) -> None:
    council = system(base, runtime, COUNCIL)
    doc = json.loads((SAMPLES / "council.json").read_bytes())
    doc["updates"][1]["status"] = "teleported"
    stranger = {**doc["service_requests"][0], "service_request_id": "PP-9", "account_id": "EBC-999999"}
    doc["service_requests"].append(stranger)
    answer = push(council, base, json.dumps(doc).encode())
    assert answer.status_code == 422 and answer.headers["Content-Type"] == "application/problem+json"
    assert [(e["index"], e["field"]) for e in answer.json()["errors"]] == [(3, "status")]
    doc["updates"][1]["status"] = "investigating"
    answer = push(council, base, json.dumps(doc).encode())  # now only the unknown account is wrong
    assert answer.status_code == 422
    assert answer.json()["errors"] == [
        {"index": 1, "field": "council_account", "reason": "matches no citizen in pds"}
    ]
    with runtime.vault() as v:
        assert v.records.list(resident.citizen_id).items == []  # nothing of either delivery was kept
    assert deliveries_in_ledger(runtime, resident) == []


def test_updates_for_a_case_pds_never_received_are_refused(
    base: str, runtime: Runtime, resident: Person
) -> None:
    police = system(base, runtime, "demo-police")
    answer = push(police, base, (SAMPLES / "police-updates.json").read_bytes(), connector="demo-police")
    assert answer.status_code == 422
    assert {e["field"] for e in answer.json()["errors"]} == {"service_request_id"}


def test_only_this_connectors_token_may_push(base: str, runtime: Runtime, resident: Person) -> None:
    body = (SAMPLES / "council.json").read_bytes()
    police = system(base, runtime, "demo-police")
    refused = push(police, base, body)  # a token for another connector
    assert refused.status_code == 403 and refused.json()["title"] == "Insufficient scope"
    anonymous = requests.post(f"{base}/connectors/{COUNCIL}/deliveries", data=body, timeout=10)
    assert anonymous.status_code == 401 and anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    council = system(base, runtime, COUNCIL)
    assert push(council, base, body, connector="nowhere").status_code == 404
    wrong_type = push(council, base, body, **{"Content-Type": "text/csv"})
    assert wrong_type.status_code == 415 and wrong_type.json()["field"] == "Content-Type"
    too_big = push(council, base, b"[" + b" " * 10_000_000 + b"]")
    assert too_big.status_code == 413 and too_big.json()["field"] == "body"
    council.post(
        base + "/oauth/revoke",
        data={"token": council.token["access_token"]},
        auth=(council.client_id, council.client_secret),
    )
    revoked = push(council, base, body)
    assert revoked.status_code == 401


FHIR = Path(__file__).resolve().parents[2] / "connectors" / "samples" / "fhir"
ONEROSTER = Path(__file__).resolve().parents[2] / "connectors" / "samples" / "oneroster"


def test_a_gp_connect_stu3_record_is_stored_as_r4_in_the_patients_vault(base: str, runtime: Runtime) -> None:
    from fhir.resources.R4B.condition import Condition

    bob = add_person(runtime, "Bob Example", "bob@example.org", nhs_number="9990000034")
    gp = system(base, runtime, "demo-gp")
    answer = gp.post(
        f"{base}/connectors/demo-gp/deliveries",
        data=(FHIR / "gp-connect-bob.stu3.json").read_bytes(),
        headers={"Content-Type": "application/fhir+json"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["counts"]["stored"] > 5
    with runtime.vault() as v:
        records = v.records.list(bob.citizen_id, categories=["health"], limit=100).items
    conditions = [r.payload for r in records if r.kind == "fhir:Condition"]
    assert conditions, [r.kind for r in records]
    for payload in conditions:
        Condition.model_validate(payload)  # R4, not STU3: clinicalStatus is a CodeableConcept
        assert payload["clinicalStatus"]["coding"][0]["system"] == (
            "http://terminology.hl7.org/CodeSystem/condition-clinical"
        )
    (entry,) = deliveries_in_ledger(runtime, bob)
    assert entry["source"] == "demo-gp" and entry["count"] == len(records)

    bad = gp.post(
        f"{base}/connectors/demo-gp/deliveries",
        data=(FHIR / "bad.stu3.json").read_bytes(),
        headers={"Content-Type": "application/fhir+json"},
    )
    assert bad.status_code == 422 and len(bad.json()["errors"]) > 1


def test_school_progress_arrives_as_json_or_as_a_csv_zip(base: str, runtime: Runtime, tmp_path: Path) -> None:
    from connectors.oneroster import zip_csv_folder

    sam = add_person(runtime, "Sam Example", "sam@example.org")
    with runtime.vault() as v:
        v.citizens.add_identifier(sam.citizen_id, "upn", "F201200124001")
    school = system(base, runtime, "demo-school")
    answer = school.post(
        f"{base}/connectors/demo-school/deliveries",
        data=(ONEROSTER / "sam.rest.json").read_bytes(),
        headers={"Content-Type": "application/json"},
    )
    assert answer.status_code == 200, answer.text
    stored = answer.json()["counts"]["stored"]
    with runtime.vault() as v:
        kinds = sorted({r.kind for r in v.records.list(sam.citizen_id, limit=100).items})
    assert kinds == ["attendance:session", "behaviour:event", "oneroster:result"]
    zipped = school.post(
        f"{base}/connectors/demo-school/deliveries",
        data=zip_csv_folder(ONEROSTER / "csv"),
        headers={"Content-Type": "application/zip"},
    )
    assert zipped.status_code == 200, zipped.text
    assert zipped.json()["counts"] == {"stored": 0, "updated": 0, "unchanged": stored, "citizens": 1}


def test_what_the_gp_marks_confidential_is_kept_and_flagged_sensitive(base: str, runtime: Runtime) -> None:
    bob = add_person(runtime, "Bob Example", "bob@example.org", nhs_number="9990000034")
    gp = system(base, runtime, "demo-gp")
    answer = gp.post(
        f"{base}/connectors/demo-gp/deliveries",
        data=(FHIR / "gp-connect-bob.stu3.json").read_bytes(),
        headers={"Content-Type": "application/fhir+json"},
    )
    assert answer.status_code == 200, answer.text
    with runtime.vault() as v:
        records = v.records.list(bob.citizen_id, categories=["health"], limit=100).items
    sensitive = [r for r in records if r.sensitive]
    assert len(sensitive) == 1 and sensitive[0].kind == "fhir:Condition"
    codes = {c["code"] for s in sensitive[0].payload["meta"]["security"] for c in [s]}
    assert "R" in codes and sensitive[0].to_json()["sensitive"] is True
    assert all(r.to_json()["sensitive"] is False for r in records if r is not sensitive[0])
