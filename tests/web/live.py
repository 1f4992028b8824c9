"""A pds served over real HTTP in a thread, a browser that signs in and answers the consent form."""

from __future__ import annotations

import datetime as dt
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import requests
from werkzeug.serving import make_server

from pds import create_app
from pds.accounts import hash_password
from pds.runtime import Runtime
from tests.conftest import make_settings

CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
# a ticked category box, whatever order its attributes come in
CHECKED = re.compile(
    r'<input(?=[^>]*\bname="categories")(?=[^>]*\btype="checkbox")(?=[^>]*\schecked\b)[^>]*\bvalue="([a-z]+)"'
)
REDIRECT_URI = "http://127.0.0.1:9/callback"  # never contacted: the test reads the Location header


@contextmanager
def serve(runtime: Runtime, db_url: str, keys_dir) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """Serve pds on a free port; the issuer is that address."""
    probe = make_server("127.0.0.1", 0, lambda e, s: [])
    port = probe.server_port
    probe.server_close()
    base = f"http://127.0.0.1:{port}"
    settings = make_settings(db_url, keys_dir, PDS_SERVER_ISSUER=base)
    app = create_app(settings, runtime=Runtime.build(settings))
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield base
    finally:
        server.shutdown()
        thread.join(timeout=10)
        app.extensions["pds"].close()  # no connection of this server outlives it


@dataclass
class Person:
    citizen_id: uuid.UUID
    email: str
    password: str


def add_person(runtime: Runtime, name: str, email: str, nhs_number: str | None = None) -> Person:
    password = f"pw-{uuid.uuid4().hex[:12]}"
    with runtime.vault() as v:
        cid = v.citizens.add(name=name, date_of_birth="1980-02-02", email=email, nhs_number=nhs_number).id
        v.citizens.set_password_hash(cid, hash_password(password))
    return Person(cid, email, password)


class Browser:
    """A citizen's browser: a cookie jar that signs in and answers the consent screen."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = requests.Session()

    def csrf(self, html: str) -> str:
        match = CSRF.search(html)
        assert match, "no CSRF token on the page"
        return match.group(1)

    def sign_in(self, person: Person) -> None:
        page = self.http.get(self.base + "/signin")
        r = self.http.post(
            self.base + "/signin",
            data={"csrf_token": self.csrf(page.text), "email": person.email, "password": person.password},
            allow_redirects=False,
        )
        assert r.status_code == 303, r.text

    def open(self, url: str) -> requests.Response:
        return self.http.get(url, allow_redirects=False)

    def decide(
        self,
        consent_url: str,
        page: requests.Response,
        *,
        allow: bool = True,
        categories: list[str] | None = None,
        duration: str = "90",
        ends_on: dt.date | None = None,
    ) -> requests.Response:
        data: dict[str, object] = {
            "csrf_token": self.csrf(page.text),
            "duration": duration,
            "ends_on": date_parts(ends_on),
            "decision": "allow" if allow else "deny",
        }
        # as a browser would: the boxes stay ticked unless the citizen unticks them
        data["categories"] = categories if categories is not None else CHECKED.findall(page.text)
        return self.http.post(consent_url, data=data, allow_redirects=False)


def date_parts(day: dt.date | None) -> list[str]:
    """A day as GOV.UK's date input posts it: the day, month and year boxes, under one name."""
    return ["", "", ""] if day is None else [str(day.day), str(day.month), str(day.year)]


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
