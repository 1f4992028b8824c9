"""Demo data: a parent with a child, a patient with diabetes, and records in every category.

Every identifier is from a range that is never issued (NHS numbers 999...), every address
is example.org. Running it again changes nothing but the demo passwords it prints.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from consent import events
from pds.accounts import generate_password, hash_password
from pds.vault import NewRecord, Vault


@dataclass(frozen=True)
class DemoPerson:
    key: str
    name: str
    email: str | None
    nhs_number: str
    date_of_birth: str
    upn: str | None = None
    role: str = ""


PEOPLE = (
    DemoPerson(
        "alice", "Alice Okafor", "alice@example.org", "9990000018", "1984-06-02", role="parent of Sam"
    ),
    DemoPerson("sam", "Sam Okafor", None, "9990000026", "2015-03-14", upn="F201200124001", role="child, 11"),
    DemoPerson(
        "bob", "Bob Patel", "bob@example.org", "9990000034", "1957-11-20", role="lives with type 2 diabetes"
    ),
)

SOURCES = (
    ("demo-gp", "fhir", "Riverside Surgery (demo GP system)"),
    ("demo-school", "oneroster", "Hillview Primary School (demo MIS)"),
    ("demo-council", "open311", "Example Borough Council (demo)"),
    ("demo-police", "open311", "Example Constabulary (demo)"),
)


def _at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).astimezone(dt.UTC)


def _observation(rid: str, code: str, display: str, value: float, unit: str, when: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": rid,
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "laboratory",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": code, "display": display}]},
        "effectiveDateTime": when,
        "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit},
    }


def _condition(rid: str, code: str, display: str, onset: str) -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "id": rid,
        "clinicalStatus": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}
            ]
        },
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": code, "display": display}]},
        "onsetDateTime": onset,
    }


def _case(rid: str, service: str, status: str, description: str, when: str, agency: str) -> dict[str, Any]:
    return {
        "service_request_id": rid,
        "service_name": service,
        "status": status,
        "description": description,
        "agency_responsible": agency,
        "requested_datetime": when,
        "updated_datetime": when,
    }


def _records(ids: dict[str, uuid.UUID]) -> list[NewRecord]:
    def rec(who: str, category: str, kind: str, source: str, sid: str, when: str, payload: dict) -> NewRecord:
        return NewRecord(ids[who], category, kind, source, sid, 1, _at(when), payload)

    return [
        rec(
            "bob",
            "health",
            "fhir:Condition",
            "demo-gp",
            "cond-bob-t2dm",
            "2015-04-01T09:00:00+00:00",
            _condition("cond-bob-t2dm", "44054006", "Type 2 diabetes mellitus", "2015-04-01"),
        ),
        rec(
            "bob",
            "health",
            "fhir:Observation",
            "demo-gp",
            "obs-bob-hba1c-1",
            "2026-05-12T09:30:00+01:00",
            _observation(
                "obs-bob-hba1c-1",
                "1019431000000105",
                "HbA1c level",
                58,
                "mmol/mol",
                "2026-05-12T09:30:00+01:00",
            ),
        ),
        rec(
            "bob",
            "health",
            "fhir:Observation",
            "demo-gp",
            "obs-bob-hba1c-2",
            "2026-11-03T10:15:00+00:00",
            _observation(
                "obs-bob-hba1c-2",
                "1019431000000105",
                "HbA1c level",
                52,
                "mmol/mol",
                "2026-11-03T10:15:00+00:00",
            ),
        ),
        rec(
            "alice",
            "health",
            "fhir:Condition",
            "demo-gp",
            "cond-alice-asthma",
            "2001-09-10T09:00:00+00:00",
            _condition("cond-alice-asthma", "195967001", "Asthma", "2001-09-10"),
        ),
        rec(
            "alice",
            "case",
            "open311:request",
            "demo-council",
            "PP-2026-004211",
            "2026-11-18T14:02:00+00:00",
            _case(
                "PP-2026-004211",
                "Residents' parking permit",
                "open",
                "Application for a residents' parking permit, zone C",
                "2026-11-18T14:02:00+00:00",
                "Example Borough Council parking services",
            ),
        ),
        rec(
            "alice",
            "case",
            "open311:request",
            "demo-police",
            "EC-26-118734",
            "2026-10-30T19:45:00+00:00",
            _case(
                "EC-26-118734",
                "Report a crime: theft of a bicycle",
                "open",
                "Bicycle taken from outside the library",
                "2026-10-30T19:45:00+00:00",
                "Example Constabulary",
            ),
        ),
        rec(
            "sam",
            "education",
            "oneroster:result",
            "demo-school",
            "res-sam-maths-aut1",
            "2026-10-17T15:00:00+01:00",
            {
                "sourcedId": "res-sam-maths-aut1",
                "status": "active",
                "scoreStatus": "fully graded",
                "score": 27,
                "textScore": "27/30",
                "scoreDate": "2026-10-17",
                "lineItem": {
                    "sourcedId": "li-maths-aut1",
                    "type": "lineItem",
                    "title": "Maths: fractions check",
                },
            },
        ),
        rec(
            "sam",
            "education",
            "ukattendance:session",
            "demo-school",
            "att-sam-2026-11-23-am",
            "2026-11-23T08:50:00+00:00",
            {"date": "2026-11-23", "session": "AM", "mark": "/", "meaning": "Present (AM)"},
        ),
        rec(
            "sam",
            "health",
            "fhir:Immunization",
            "demo-gp",
            "imm-sam-mmr2",
            "2018-09-20T10:00:00+01:00",
            {
                "resourceType": "Immunization",
                "id": "imm-sam-mmr2",
                "status": "completed",
                "vaccineCode": {
                    "coding": [
                        {
                            "system": "http://snomed.info/sct",
                            "code": "38598009",
                            "display": "Measles, mumps and rubella vaccine",
                        }
                    ]
                },
                "occurrenceDateTime": "2018-09-20",
            },
        ),
    ]


DEMO_CLIENT_ID = "pds-demo-app"
DEMO_REDIRECT_URI = "http://127.0.0.1:8765/callback"


def ensure_demo_client(session: Any) -> dict[str, Any]:
    """A public app (PKCE, no secret) that developers can try the OAuth flow with."""
    from consent.clients import ClientService

    clients = ClientService(session)
    if clients.get(DEMO_CLIENT_ID) is None:
        clients.add(
            name="pds demo app",
            operator="the pds demo",
            purpose="Shows what an app sees when you let it read your records",
            redirect_uris=[DEMO_REDIRECT_URI],
            scope="openid profile health.read education.read cases.read offline_access",
            public=True,
            verified=True,
            client_id=DEMO_CLIENT_ID,
        )
    return {"client_id": DEMO_CLIENT_ID, "redirect_uri": DEMO_REDIRECT_URI, "public": True}


def load_demo(vault: Vault) -> list[dict[str, Any]]:
    """Create (or find) the demo people and their records; return each account with a fresh password."""
    for name, kind, title in SOURCES:
        vault.sources.ensure(name, kind=kind, title=title)
    ids: dict[str, uuid.UUID] = {}
    accounts = []
    for person in PEOPLE:
        citizen_id = vault.citizens.find("nhs_number", person.nhs_number)
        if citizen_id is None:
            citizen_id = vault.citizens.add(
                name=person.name,
                date_of_birth=person.date_of_birth,
                email=person.email,
                nhs_number=person.nhs_number,
            ).id
            if person.upn:
                vault.citizens.add_identifier(citizen_id, "upn", person.upn)
        ids[person.key] = citizen_id
        password = None
        if person.email:
            password = generate_password()
            vault.citizens.set_password_hash(citizen_id, hash_password(password))
        accounts.append(
            {
                "name": person.name,
                "email": person.email,
                "password": password,
                "citizen_id": str(citizen_id),
                "nhs_number": person.nhs_number,
                "about": person.role,
            }
        )
    if not any(
        v.child_id == ids["sam"] and v.status != "ended" for v in vault.guardians.of_parent(ids["alice"])
    ):
        vault.guardians.link(ids["alice"], ids["sam"], ["education", "health"])
    records = _records(ids)
    vault.records.put(records)
    events.append_events(vault.session, events.deliveries(records, actor="connector:demo"))
    return accounts
