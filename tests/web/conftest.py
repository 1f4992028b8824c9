"""Fixtures the web tests share: pds served over HTTP, a registered app, and a citizen with records."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from consent.clients import ClientService
from pds.runtime import Runtime
from tests.conftest import record
from tests.web.browser import artifacts, axe_page, chromium, page, playwright  # noqa: F401  (real-browser fixtures)
from tests.web.live import REDIRECT_URI, Person, add_person, serve

SCOPE = "openid profile health.read education.read offline_access"


@pytest.fixture
def base(runtime: Runtime, db_url: str, keys_dir: Path) -> Iterator[str]:
    with serve(runtime, db_url, keys_dir) as url:
        yield url


@pytest.fixture
def app_client(runtime: Runtime) -> dict[str, str]:
    with runtime.sessions() as s, s.begin():
        made = ClientService(s).add(
            name="Diabetes Diary",
            operator="Example Health Ltd",
            purpose="Charts your HbA1c over time",
            redirect_uris=[REDIRECT_URI],
            scope=SCOPE,
        )
        return {"client_id": made.client.client_id, "client_secret": made.secret or ""}


@pytest.fixture
def alice(runtime: Runtime) -> Person:
    person = add_person(runtime, "Alice Example", "alice@example.org")
    with runtime.vault() as v:
        v.sources.ensure("gp", kind="fhir", title="GP")
        v.sources.ensure("school", kind="oneroster", title="School")
        v.records.put(
            [
                record(person.citizen_id, "alice-hba1c", source="gp", note="HbA1c 52"),
                record(person.citizen_id, "alice-maths", source="school", category="education", note="27/30"),
            ]
        )
    return person
