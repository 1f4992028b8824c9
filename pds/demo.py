"""Demo data: a parent with a child, a patient with diabetes, and records in every category.

Every identifier is from a range that is never issued (NHS numbers 999...), every address
is example.org. Running it again changes nothing but the demo passwords it prints.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pds.accounts import generate_password, hash_password
from pds.vault import Vault


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


# The demo records arrive as the real systems would send them: sample deliveries in each source's own
# format, read by the connectors' parsers and stored through the same path as a push.
SAMPLES = Path(__file__).resolve().parent.parent / "connectors" / "samples"
DELIVERIES = (
    ("demo-gp", "fhir/gp-connect-bob.stu3.json"),
    ("demo-gp", "fhir/alice.r4.json"),
    ("demo-gp", "fhir/sam.r4.json"),
    ("demo-school", "oneroster/sam.rest.json"),
    ("demo-council", "open311/council.json"),
    ("demo-police", "open311/police.json"),
    ("demo-police", "open311/police-updates.json"),
)
IDENTIFIERS = {"alice": (("council_account", "EBC-100234"), ("crime_reference", "EC-26-118734"))}


def _parsers() -> dict[str, Any]:
    from connectors.fhir import FhirParser
    from connectors.oneroster import OneRosterParser
    from connectors.open311 import Open311Parser

    return {
        "demo-gp": (FhirParser(), "application/fhir+json"),
        "demo-school": (OneRosterParser(), "application/json"),
        "demo-council": (Open311Parser(identifier_kind="council_account"), "application/json"),
        "demo-police": (Open311Parser(identifier_kind="crime_reference"), "application/json"),
    }


def deliver_samples(vault: Vault) -> dict[str, int]:
    """Feed the demo vaults from the sample deliveries; returns how many records each source stored."""
    from connectors.ingest import deliver

    parsers = _parsers()
    stored: dict[str, int] = {}
    for source, sample in DELIVERIES:
        parser, media_type = parsers[source]
        items = parser.parse((SAMPLES / sample).read_bytes(), media_type=media_type)
        done = deliver(vault, source, items, actor=f"connector:{source}")
        stored[source] = stored.get(source, 0) + len(done.stored) + len(done.updated)
    return stored


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
            for kind, value in IDENTIFIERS.get(person.key, ()):
                vault.citizens.add_identifier(citizen_id, kind, value)
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
    deliver_samples(vault)
    return accounts


STAFF = (  # (org kind, code, org name, staff name, email, role)
    (
        "gp_practice",
        "Z99901",
        "Riverside Surgery",
        "Dr Asha Rahman",
        "asha.rahman@riverside.example.org",
        "gp",
    ),
    (
        "gp_practice",
        "Z99901",
        "Riverside Surgery",
        "Nia Evans",
        "practice.admin@riverside.example.org",
        "admin",
    ),
    (
        "school",
        "999001",
        "Hillview Primary School",
        "Tom Hughes",
        "tom.hughes@hillview.example.org",
        "teacher",
    ),
)


def ensure_demo_staff(session: Any, provider: Any) -> list[dict[str, Any]]:
    """A demo GP practice with a GP and its administrator, and a school with a teacher; each with a new
    password. Their authenticator app is set up at their first sign-in to /portal and kept after."""
    from sqlalchemy import select

    from consent.models import StaffMember
    from consent.professionals import StaffService
    from pds.errors import NotFound

    staff = StaffService(session, provider=provider)
    out = []
    for kind, code, org_name, name, email, role in STAFF:
        try:
            org = staff.org_by_code(code)
        except NotFound:
            org = staff.add_org(kind=kind, code=code, name=org_name)
        password = generate_password()
        member = session.scalar(select(StaffMember).where(StaffMember.email == email))
        if member is None:
            member = staff.add(org_id=org.id, name=name, email=email, role=role, password=password)
        else:
            member.password_hash = hash_password(password)
        out.append({"name": name, "email": email, "password": password, "role": role, "org": org_name})
    return out
