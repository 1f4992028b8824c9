"""A professional's browser for the portal tests: signs in through pds's OpenID provider with a TOTP code."""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass

import pyotp
import requests

from consent.professionals import StaffService
from pds.runtime import Runtime

SECRET = re.compile(r'id="secret">([A-Z2-7 ]+)<')
CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
NHS = "9434765919"


@dataclass
class Professional:
    staff_id: uuid.UUID
    email: str
    password: str
    totp: str | None = None  # the authenticator's secret, once enrolled


def add_professional(
    runtime: Runtime,
    *,
    org_code: str,
    role: str = "gp",
    name: str = "Dr Asha Patel",
    email: str | None = None,
) -> Professional:
    email = email or f"{uuid.uuid4().hex[:8]}@{org_code.lower()}.example"
    password = f"pw-{uuid.uuid4().hex}"
    with runtime.sessions() as s, s.begin():
        staff = StaffService(s, provider=runtime.provider)
        org = staff.org_by_code(org_code)
        member = staff.add(org_id=org.id, name=name, email=email, role=role, password=password)
        return Professional(member.id, email, password)


def add_org(runtime: Runtime, kind: str, code: str, name: str) -> None:
    with runtime.sessions() as s, s.begin():
        StaffService(s).add_org(kind=kind, code=code, name=name)


def csrf(html: str) -> str:
    match = CSRF.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1)


class PortalBrowser:
    def __init__(self, base: str) -> None:
        self.base = base
        self.http = requests.Session()

    def sign_in(self, who: Professional) -> requests.Response:
        """From /portal through the provider's sign-in (enrolling a second factor the first time) and back."""
        page = self.http.get(self.base + "/portal", timeout=30)
        assert "/staff/signin" in page.url, page.url
        r = self.http.post(
            page.url,
            data={"csrf_token": csrf(page.text), "email": who.email, "password": who.password},
            timeout=30,
        )
        if "/staff/signin/enrol" in r.url:
            match = SECRET.search(r.text)
            assert match, "no key shown to type into an authenticator"
            who.totp = match.group(1).replace(" ", "")
            return self.http.post(
                r.url, data={"csrf_token": csrf(r.text), "code": pyotp.TOTP(who.totp).now()}, timeout=30
            )
        assert "/staff/signin/code" in r.url, r.url
        assert who.totp
        code = pyotp.TOTP(who.totp).now()
        answer = self.http.post(r.url, data={"csrf_token": csrf(r.text), "code": code}, timeout=30)
        if "/staff/signin/code" in answer.url:  # this time step's code was used already: wait for the next
            time.sleep(31 - time.time() % 30)
            answer = self.http.post(
                r.url, data={"csrf_token": csrf(answer.text), "code": pyotp.TOTP(who.totp).now()}, timeout=30
            )
        return answer

    def ask(self, nhs_number: str = NHS, **fields: object) -> requests.Response:
        page = self.http.get(self.base + "/portal/requests/new", timeout=30)
        data: dict[str, object] = {
            "csrf_token": csrf(page.text),
            "nhs_number": nhs_number,
            "purpose": "Diabetes annual review",
            "categories": ["health"],
            "days": "90",
        }
        data.update(fields)
        return self.http.post(
            self.base + "/portal/requests/new", data=data, timeout=30, allow_redirects=False
        )
