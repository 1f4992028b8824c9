"""A professional's request reaches the citizen by email: queued with the request, sent over real SMTP
(aiosmtpd) by the notification sender; a request for an NHS number pds does not hold tells no one."""

from __future__ import annotations

from collections.abc import Iterator
from email import message_from_bytes
from email.policy import default
from pathlib import Path
from typing import Any

import pytest

from pds.notify import send_due
from pds.runtime import Runtime
from tests.conftest import make_settings
from tests.connectors.test_notify import Inbox, MailServer
from tests.web.live import Person, add_person
from tests.web.test_requests_pages import GP_NAME, NHS, Asking, add_surgery, ask


@pytest.fixture
def surgery(runtime: Runtime) -> Asking:
    return add_surgery(runtime)


@pytest.fixture
def patient(runtime: Runtime) -> Person:
    return add_person(runtime, "Alice Example", "alice@example.org", nhs_number=NHS)


@pytest.fixture
def mail(runtime: Runtime, db_url: str, keys_dir: Path) -> Iterator[tuple[Inbox, Runtime]]:
    server = MailServer()
    server.up()
    sender = Runtime.build(
        make_settings(db_url, keys_dir, PDS_SMTP_HOST="127.0.0.1", PDS_SMTP_PORT=str(server.port))
    )
    try:
        yield server.inbox, sender
    finally:
        server.down()
        sender.close()


def test_the_request_arrives_by_email(
    runtime: Runtime, surgery: Asking, patient: Person, mail: tuple[Inbox, Any]
) -> None:
    inbox, sender = mail
    ask(runtime, surgery.gp)
    assert send_due(sender) == (1, 0)
    (message,) = inbox.messages
    assert message.rcpt_tos == [patient.email]
    email = message_from_bytes(message.content, policy=default)
    who = GP_NAME.replace("), ", ") at ")  # the email's own words: "Dr Asha Patel (GP) at Riverside Surgery"
    assert email["Subject"] == f"{who} asks to see your records"
    text = email.get_content()
    assert "your GP health record for 30 days" in text and "Why: Diabetes annual review" in text
    assert "open Requests to approve" in text
    assert send_due(sender) == (0, 0)  # once


def test_a_request_for_a_number_pds_does_not_hold_tells_no_one(
    runtime: Runtime, surgery: Asking, patient: Person, mail: tuple[Inbox, Any]
) -> None:
    inbox, sender = mail
    ask(runtime, surgery.gp, nhs="9434765870")
    assert send_due(sender) == (0, 0) and inbox.messages == []
