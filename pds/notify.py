"""Emailing citizens what pds has queued for them (the vault's notification outbox), over SMTP.

Each server process runs a sender thread; `pds notify send` does one round by hand. A message that fails
is tried again, up to the outbox's limit; with no mail server configured, messages are kept unsent.
"""

from __future__ import annotations

import logging
import os
import smtplib
import threading
from email.message import EmailMessage
from typing import TYPE_CHECKING

from pds.db import session_scope
from pds.errors import PdsError
from pds.settings import SmtpSettings

if TYPE_CHECKING:
    from pds.runtime import Runtime

log = logging.getLogger(__name__)


def send_due(rt: Runtime) -> tuple[int, int]:
    """One round: send what is due. Returns (sent, failed)."""
    smtp = rt.settings.smtp
    if not smtp.host:
        return 0, 0
    sent = failed = 0
    with session_scope(rt.sessions) as session:
        vault = rt.open_vault(session)
        messages = vault.notifications.due()
        if not messages:
            return 0, 0
        try:
            server = _connect(smtp)
        except (OSError, smtplib.SMTPException) as exc:
            for m in messages:
                vault.notifications.failed(m.id, f"cannot reach the mail server: {exc}")
            return 0, len(messages)
        with server:
            for m in messages:
                try:
                    email = vault.citizens.get(m.citizen_id).email
                except PdsError as exc:
                    vault.notifications.give_up(m.id, exc.detail)
                    continue
                if not email:
                    vault.notifications.give_up(m.id, "the citizen has no email address")
                    continue
                try:
                    server.send_message(_email(smtp.sender, email, m.subject, m.body))
                except (OSError, smtplib.SMTPException) as exc:
                    vault.notifications.failed(m.id, str(exc))
                    failed += 1
                else:
                    vault.notifications.sent(m.id)
                    sent += 1
    return sent, failed


def _connect(smtp: SmtpSettings) -> smtplib.SMTP:
    server = smtplib.SMTP(smtp.host, smtp.port, timeout=10)
    if smtp.starttls:
        server.starttls()
    if smtp.username:
        server.login(smtp.username, os.environ.get(smtp.password_env, ""))
    return server


def _email(sender: str, to: str, subject: str, body: str) -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, to, subject
    message.set_content(body + "\n\nSign in to pds to see it: your records, your say.\n")
    return message


class Sender:
    """The sender thread of one server process."""

    def __init__(self, runtime: Runtime, *, interval_s: float) -> None:
        self.runtime = runtime
        self.interval_s = interval_s
        self._stop = threading.Event()

    def start(self) -> None:
        threading.Thread(target=self._run, name="pds-notify", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                send_due(self.runtime)
            except Exception:  # the next round tries again
                log.exception("could not send notifications")
