"""Signed callbacks to a GP system: when the patient decides or the request expires, pds POSTs a JWT the
receiver verifies against /oauth/jwks; a receiver that fails is tried again with backoff, then given up."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt
import pytest
import requests

from consent.models import ConsentRequest
from consent.professionals import StaffService
from consent.requests import RequestService, check_ask
from pds.callbacks import CALLBACK_TTL, JWT_TYPE, MAX_ATTEMPTS, send_due_callbacks
from pds.db import utcnow
from pds.runtime import Runtime
from tests.conftest import REPO, add_citizen
from tests.test_cli import PDS
from tests.web.portal_helpers import NHS, add_org, add_professional


@dataclass
class Receiver:
    """A GP system's callback endpoint: records what it is sent, answers with the statuses it is told."""

    url: str
    answers: list[int] = field(default_factory=list)  # then 204 for ever
    received: list[tuple[str, bytes]] = field(default_factory=list)  # (Content-Type, body)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    box = Receiver("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            box.received.append((self.headers.get("Content-Type", ""), body))
            self.send_response(box.answers.pop(0) if box.answers else 204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    box.url = f"http://127.0.0.1:{server.server_port}/pds/callback"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield box
    server.shutdown()
    thread.join(timeout=10)
    server.server_close()


@pytest.fixture
def gp(runtime: Runtime) -> uuid.UUID:
    add_org(runtime, "gp_practice", "A81001", "Riverside Surgery")
    return add_professional(runtime, org_code="A81001").staff_id


@pytest.fixture
def patient(runtime: Runtime) -> uuid.UUID:
    return add_citizen(runtime, "Pat Patient", nhs_number=NHS, email="pat@example.org")


def ask(runtime: Runtime, staff_id: uuid.UUID, callback_url: str) -> str:
    with runtime.vault() as v:
        member = StaffService(v.session).get(staff_id)
        asked = check_ask(
            member,
            purpose="Diabetes annual review",
            categories=["health"],
            resource_types=["Observation"],
            days=30,
            callback_url=callback_url,
        )
        return str(RequestService(v.session, vault=v).make(member, NHS, asked).id)


def row(runtime: Runtime, request_id: str) -> ConsentRequest:
    with runtime.sessions() as s:
        req = s.get(ConsentRequest, uuid.UUID(request_id))
        assert req is not None
        s.expunge(req)
        return req


def verified(base: str, runtime: Runtime, receiver: Receiver, token: bytes) -> dict:
    """What a GP system does: check the signature against pds's published keys, the audience and issuer."""
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "ES256" and header["typ"] == JWT_TYPE
    keys = requests.get(base + "/oauth/jwks", timeout=10).json()["keys"]
    (key,) = (k for k in keys if k["kid"] == header["kid"])
    claims = jwt.decode(
        token,
        jwt.PyJWK(key).key,
        algorithms=["ES256"],
        audience=receiver.url,
        issuer=runtime.settings.server.public_url,
        options={"require": ["iss", "aud", "iat", "exp", "jti"]},
    )
    assert 0 < claims["exp"] - claims["iat"] <= CALLBACK_TTL.total_seconds()  # short-lived
    return claims


def test_the_gp_system_is_told_of_an_approval_in_a_signed_jwt(
    runtime: Runtime, base: str, receiver: Receiver, gp: uuid.UUID, patient: uuid.UUID
) -> None:
    request_id = ask(runtime, gp, receiver.url)
    assert send_due_callbacks(runtime) == (0, 0)  # nothing decided, nothing to tell
    with runtime.vault() as v:
        grant = RequestService(v.session, vault=v).approve(request_id, citizen_id=patient)
        ends_at = grant.ends_at.isoformat()
    assert send_due_callbacks(runtime) == (1, 0)
    ((media, token),) = receiver.received
    assert media == "application/jwt"
    claims = verified(base, runtime, receiver, token)
    assert claims["request_id"] == request_id and claims["status"] == "approved"
    assert claims["grant"] == {
        "categories": ["health"],
        "resource_types": ["Observation"],
        "ends_at": ends_at,
    }
    sent = row(runtime, request_id)
    assert sent.callback_due_at is None and sent.callback_attempts == 1 and sent.callback_error == ""
    assert send_due_callbacks(runtime) == (0, 0)  # told once
    assert len(receiver.received) == 1


def test_a_refusal_and_an_expiry_are_told_without_a_grant(
    runtime: Runtime, base: str, receiver: Receiver, gp: uuid.UUID, patient: uuid.UUID
) -> None:
    refused = ask(runtime, gp, receiver.url)
    ignored = ask(runtime, gp, receiver.url)
    with runtime.vault() as v:
        service = RequestService(v.session, vault=v)
        service.refuse(refused, citizen_id=patient)
        assert service.expire_due(now=utcnow() + dt.timedelta(days=31)) == 1
    assert send_due_callbacks(runtime) == (2, 0)
    told = {c["request_id"]: c for c in (verified(base, runtime, receiver, t) for _, t in receiver.received)}
    assert told[refused]["status"] == "refused" and told[ignored]["status"] == "expired"
    assert "grant" not in told[refused] and "grant" not in told[ignored]
    assert told[refused]["jti"] != told[ignored]["jti"]


def test_a_failing_receiver_is_tried_again_later_and_its_error_kept(
    runtime: Runtime, base: str, receiver: Receiver, gp: uuid.UUID, patient: uuid.UUID
) -> None:
    request_id = ask(runtime, gp, receiver.url)
    with runtime.vault() as v:
        RequestService(v.session, vault=v).approve(request_id, citizen_id=patient)
    receiver.answers = [503]
    assert send_due_callbacks(runtime) == (0, 1)
    failed = row(runtime, request_id)
    assert failed.callback_attempts == 1 and "503" in failed.callback_error
    assert failed.callback_due_at is not None and failed.callback_due_at > utcnow()  # backs off
    assert send_due_callbacks(runtime) == (0, 0)  # not due yet
    later = failed.callback_due_at + dt.timedelta(seconds=1)
    assert send_due_callbacks(runtime, now=later) == (1, 0)  # the receiver is back
    done = row(runtime, request_id)
    assert done.callback_due_at is None and done.callback_error == "" and done.callback_attempts == 2
    assert len(receiver.received) == 2
    verified(base, runtime, receiver, receiver.received[1][1])  # a fresh JWT, signed again


def test_an_unreachable_receiver_is_given_up_after_the_last_attempt(
    runtime: Runtime, gp: uuid.UUID, patient: uuid.UUID
) -> None:
    closed = "http://127.0.0.1:9/pds/callback"  # the discard port: nothing listens
    request_id = ask(runtime, gp, closed)
    with runtime.vault() as v:
        RequestService(v.session, vault=v).approve(request_id, citizen_id=patient)
    when, waits = utcnow(), []
    for attempt in range(1, MAX_ATTEMPTS + 1):
        assert send_due_callbacks(runtime, now=when) == (0, 1)
        req = row(runtime, request_id)
        assert req.callback_attempts == attempt and "ConnectionError" in req.callback_error
        if req.callback_due_at is not None:
            waits.append(req.callback_due_at - when)
            when = req.callback_due_at
    assert waits == sorted(waits) and len(waits) == MAX_ATTEMPTS - 1  # each wait longer than the last
    assert req.callback_due_at is None and req.callback_error.startswith(
        f"gave up after {MAX_ATTEMPTS} attempts"
    )
    assert send_due_callbacks(runtime, now=when + dt.timedelta(days=1)) == (0, 0)


def test_the_cli_expires_requests_and_sends_their_callbacks(
    runtime: Runtime, db_url: str, keys_dir: Path, receiver: Receiver, gp: uuid.UUID, patient: uuid.UUID
) -> None:
    ask(runtime, gp, receiver.url)
    approved = ask(runtime, gp, receiver.url)
    with runtime.vault() as v:
        RequestService(v.session, vault=v).approve(approved, citizen_id=patient)
    env = {**os.environ, "PDS_DATABASE_URL": db_url, "PDS_KEYS_DIR": str(keys_dir)}
    env.pop("PDS_CONFIG", None)

    def pds(*args: str) -> str:
        done = subprocess.run([PDS, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert pds("requests", "expire").strip() == "expired 0 requests"  # thirty days are not up
    assert pds("requests", "callbacks").strip() == "sent 1, failed 0"
    assert len(receiver.received) == 1 and row(runtime, approved).callback_due_at is None
