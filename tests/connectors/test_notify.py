"""Citizens are emailed when a case arrives or changes: queued with the delivery, sent over real SMTP."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from connectors.base import DeliveryInvalid
from connectors.ingest import deliver
from connectors.open311 import Open311Parser
from pds.notify import send_due
from pds.runtime import Runtime
from pds.vault.models import Notification
from tests.conftest import make_settings

SAMPLES = Path(__file__).resolve().parents[2] / "connectors" / "samples" / "open311"


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope)
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MailServer:
    """A real SMTP server (aiosmtpd) on a free port, that can be taken down and brought back."""

    def __init__(self) -> None:
        self.inbox, self.port = Inbox(), free_port()
        self.controller: Controller | None = None

    def up(self) -> None:
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def down(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def mail(runtime: Runtime, db_url: str, keys_dir: Path):  # type: ignore[no-untyped-def]
    server = MailServer()
    server.up()
    smtp = {"PDS_SMTP_HOST": "127.0.0.1", "PDS_SMTP_PORT": str(server.port)}
    sender = Runtime.build(make_settings(db_url, keys_dir, **smtp))
    yield server.inbox, sender, server
    server.down()
    sender.close()


def resident(runtime: Runtime):  # type: ignore[no-untyped-def]
    with runtime.vault() as v:
        v.sources.ensure("demo-council", kind="open311", title="Council")
        alice = v.citizens.add(name="Alice Example", date_of_birth="1985-04-02", email="alice@example.org").id
        v.citizens.add_identifier(alice, "council_account", "EBC-100234")
    return alice


def push(runtime: Runtime, doc: Any) -> None:
    items = Open311Parser().parse(json.dumps(doc).encode(), media_type="application/json")
    with runtime.vault() as v:
        deliver(v, "demo-council", items, actor="connector:demo-council")


def test_a_new_case_and_its_updates_are_emailed_once(runtime: Runtime, mail) -> None:  # type: ignore[no-untyped-def]
    inbox, sender, _ = mail
    resident(runtime)
    doc = json.loads((SAMPLES / "council.json").read_text())
    push(runtime, doc)
    assert send_due(sender) == (3, 0)
    assert {tuple(m.rcpt_tos) for m in inbox.messages} == {("alice@example.org",)}
    texts = [m.content.decode() for m in inbox.messages]
    assert any("Subject: We have your case PP-2026-004211: Residents' parking permit" in t for t in texts)
    assert any("Subject: Your case PP-2026-004211 is being looked into" in t for t in texts)
    assert any("Documents checked: proof of address accepted." in t for t in texts)
    assert send_due(sender) == (0, 0)  # each is sent once
    push(runtime, doc)  # a repeated delivery changes nothing, so tells nothing
    assert send_due(sender) == (0, 0) and len(inbox.messages) == 3
    with runtime.sessions() as s:  # at rest, the outbox holds no clear text
        stored = b"".join(s.scalars(select(Notification.message)))
    assert b"parking" not in stored and b"PP-2026" not in stored


def test_a_refused_delivery_tells_no_one(runtime: Runtime, mail) -> None:  # type: ignore[no-untyped-def]
    inbox, sender, _ = mail
    resident(runtime)
    doc = json.loads((SAMPLES / "council.json").read_text())
    doc["updates"][0]["status"] = "teleported"
    with pytest.raises(DeliveryInvalid):
        push(runtime, doc)
    assert send_due(sender) == (0, 0) and inbox.messages == []


def test_a_mail_server_that_is_down_is_tried_again(runtime: Runtime, mail) -> None:  # type: ignore[no-untyped-def]
    inbox, sender, server = mail
    resident(runtime)
    server.down()
    push(runtime, json.loads((SAMPLES / "council.json").read_text()))
    assert send_due(sender) == (0, 3)
    with runtime.sessions() as s:
        rows = s.scalars(select(Notification)).all()
    assert all(r.sent_at is None and r.attempts == 1 for r in rows)
    assert all(r.last_error.startswith("cannot reach the mail server") for r in rows)
    server.up()
    assert send_due(sender) == (3, 0) and len(inbox.messages) == 3


def test_without_a_mail_server_messages_wait(runtime: Runtime) -> None:
    resident(runtime)
    push(runtime, json.loads((SAMPLES / "council.json").read_text()))
    assert runtime.settings.smtp.host == ""
    assert send_due(runtime) == (0, 0)
    with runtime.sessions() as s:
        assert len(s.scalars(select(Notification).where(Notification.sent_at.is_(None))).all()) == 3
