"""Signed callbacks to a GP system at the URL it gave: the patient decided, or the request expired.

The body is a JWT (application/jwt) signed with pds's current token key, so the receiver checks it against
/oauth/jwks and needs no shared secret. Each server process runs a sender thread (started in pds/serve.py,
like the email sender of pds/notify.py); `pds requests callbacks` does one round by hand.

A round claims what is due in one short transaction (moving its due time on by a lease, so another process
skips it, and counting the attempt), posts with no transaction open (a slow receiver must not hold the
database's write lock), then records each answer in another. A failure is tried again later, each wait
longer, and given up after MAX_ATTEMPTS, its last error kept on the request.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import jwt
import requests
from sqlalchemy import select
from sqlalchemy.orm import Session

from consent.models import ConsentRequest, Grant
from consent.requests import RequestService
from consent.services import GrantService
from consent.signing import ALG, MAX_SIGNED_LIFETIME, ActiveKey, SigningKeys
from pds.db import session_scope, tidy_sqlite_wal, utcnow
from pds.vault import Vault

if TYPE_CHECKING:
    from pds.runtime import Runtime

log = logging.getLogger(__name__)

CALLBACK_TTL = dt.timedelta(minutes=5)  # the JWT's lifetime: a receiver acts on it at once or not at all
assert CALLBACK_TTL <= MAX_SIGNED_LIFETIME  # its key stays in the JWKS at least this long after rotation
JWT_TYPE = "consent-request+jwt"  # RFC 8725 s3.11: explicit typing, never mistaken for an access token
TIMEOUT_S = (3.05, 5.0)  # connect, read: a receiver answers at once and does its work afterwards
MAX_ATTEMPTS = 5
FIRST_RETRY = dt.timedelta(seconds=30)  # then 2, 8 and 32 minutes
BACKOFF_FACTOR = 4
BATCH = 20  # callbacks claimed per round
LEASE = dt.timedelta(minutes=5)  # > BATCH * sum(TIMEOUT_S): a claim outlives its round's posts
MAX_ERROR = 500  # characters of a receiver's error kept
INTERVAL_S = 10.0  # between a sender thread's rounds
EXPIRE_EVERY = 6  # rounds between marking requests and grants past their time expired (a minute)
SENT_STATUSES = ("approved", "approved_with_changes")  # a grant goes with these


@dataclass(frozen=True)
class Due:
    """A claimed callback: where it goes, the signed body, and which attempt this is."""

    request_id: uuid.UUID
    url: str
    body: str
    attempt: int


def signed_callback(
    key: ActiveKey, *, issuer: str, req: ConsentRequest, status: str, grant: Grant | None
) -> str:
    """The callback's body: who sends it, for which receiver, which request, what was decided."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": req.callback_url,
        "iat": int(now.timestamp()),
        "exp": int((now + CALLBACK_TTL).timestamp()),
        "jti": secrets.token_urlsafe(16),
        "request_id": str(req.id),
        "status": status,
    }
    if grant is not None and status in SENT_STATUSES:
        claims["grant"] = {
            "categories": grant.category_list,
            "resource_types": grant.resource_type_list,  # empty: every type of the granted categories
            "ends_at": grant.ends_at.isoformat(),
        }
    return jwt.encode(claims, key.private_key, algorithm=ALG, headers={"kid": key.kid, "typ": JWT_TYPE})


class CallbackOutbox:
    """The requests with a callback due: ConsentRequest.callback_due_at set (by a decision or expiry)."""

    def __init__(self, session: Session, *, vault: Vault, signing: SigningKeys, issuer: str) -> None:
        self.session = session
        self.requests = RequestService(session, vault=vault)
        self.signing = signing
        self.issuer = issuer

    def any_due(self, now: dt.datetime) -> bool:
        return self.session.scalar(self._due(now).with_only_columns(ConsentRequest.id).limit(1)) is not None

    def claim(self, now: dt.datetime, limit: int = BATCH) -> list[Due]:
        """Sign what is due and move it on by the lease: another process, or the next round, skips it."""
        rows = self.session.scalars(
            self._due(now)
            .order_by(ConsentRequest.callback_due_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        if not rows:
            return []
        key = self.signing.active()
        claimed = []
        for req in rows:
            assert req.callback_url is not None
            grant = self.session.get(Grant, req.grant_id) if req.grant_id else None
            body = signed_callback(
                key, issuer=self.issuer, req=req, status=self.requests.status(req), grant=grant
            )
            req.callback_attempts += 1
            req.callback_due_at = now + LEASE
            claimed.append(Due(req.id, req.callback_url, body, req.callback_attempts))
        return claimed

    def delivered(self, due: Due) -> None:
        req = self._still_claimed(due)
        if req is not None:
            req.callback_due_at, req.callback_error = None, ""

    def failed(self, due: Due, error: str, now: dt.datetime) -> None:
        """Try again later, each wait longer; after MAX_ATTEMPTS, give up and keep the error."""
        req = self._still_claimed(due)
        if req is None:
            return
        if due.attempt >= MAX_ATTEMPTS:
            req.callback_due_at = None
            error = f"gave up after {due.attempt} attempts: {error}"
        else:
            req.callback_due_at = now + FIRST_RETRY * BACKOFF_FACTOR ** (due.attempt - 1)
        req.callback_error = error[:MAX_ERROR]

    def _due(self, now: dt.datetime) -> Any:
        return select(ConsentRequest).where(
            ConsentRequest.callback_due_at.is_not(None), ConsentRequest.callback_due_at <= now
        )

    def _still_claimed(self, due: Due) -> ConsentRequest | None:
        """The row, unless another process has claimed it since (its lease ran out): then it is theirs."""
        req = self.session.get(ConsentRequest, due.request_id)
        return req if req is not None and req.callback_attempts == due.attempt else None


def post(due: Due) -> str | None:
    """POST the signed body; None on a 2xx, else what went wrong. Redirects are not followed."""
    try:
        with requests.post(
            due.url,
            data=due.body.encode(),
            headers={"Content-Type": "application/jwt", "User-Agent": "pds-callbacks"},
            timeout=TIMEOUT_S,
            allow_redirects=False,
            stream=True,  # the answer's body is never read
        ) as answer:
            if 200 <= answer.status_code < 300:
                return None
            return f"HTTP {answer.status_code} {answer.reason or ''}".strip()
    except Exception as exc:  # whatever the receiver or its URL does, the round goes on
        return f"{type(exc).__name__}: {exc}"


def send_due_callbacks(
    rt: Runtime, *, now: dt.datetime | None = None, send: Callable[[Due], str | None] = post
) -> tuple[int, int]:
    """One round: post what is due. Returns (sent, failed)."""
    now = now or utcnow()
    with session_scope(rt.read_sessions) as session:
        if not _outbox(rt, session).any_due(now):  # the usual case, and no write lock taken for it
            return 0, 0
    with session_scope(rt.sessions) as session:
        claimed = _outbox(rt, session).claim(now)
    results = [(due, send(due)) for due in claimed]
    with session_scope(rt.sessions) as session:
        outbox = _outbox(rt, session)
        for due, error in results:
            if error is None:
                outbox.delivered(due)
            else:
                log.warning(
                    "callback for request %s failed (attempt %d): %s", due.request_id, due.attempt, error
                )
                outbox.failed(due, error, now)
    failed = sum(1 for _, error in results if error is not None)
    return len(results) - failed, failed


def expire_requests(rt: Runtime) -> int:
    """Mark unanswered requests past their time expired (their callbacks then fall due)."""
    with session_scope(rt.sessions) as session:
        return RequestService(session, vault=rt.open_vault(session)).expire_due()


def expire_grants(rt: Runtime) -> int:
    """Mark grants past their end expired, each with its ledger entry: the citizen's history says so when
    it happens, not only when an app next tries to read (or cron runs `pds grants expire`)."""
    with session_scope(rt.sessions) as session:
        return GrantService(session).expire_due()


def _outbox(rt: Runtime, session: Session) -> CallbackOutbox:
    return CallbackOutbox(
        session,
        vault=rt.open_vault(session),
        signing=SigningKeys(session, provider=rt.provider),
        issuer=rt.settings.server.public_url,
    )


class CallbackSender:
    """The upkeep thread of one server process: posts the callbacks that are due, expires requests and
    grants now and then, and keeps a SQLite WAL from growing without end (pds.db.tidy_sqlite_wal)."""

    def __init__(self, runtime: Runtime, *, interval_s: float = INTERVAL_S) -> None:
        self.runtime = runtime
        self.interval_s = interval_s
        self._stop = threading.Event()

    def start(self) -> None:
        threading.Thread(target=self._run, name="pds-callbacks", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        rounds = 0
        while not self._stop.wait(self.interval_s):
            try:
                if rounds % EXPIRE_EVERY == 0:
                    expire_requests(self.runtime)
                    expire_grants(self.runtime)
                rounds += 1
                send_due_callbacks(self.runtime)
            except Exception:  # the next round tries again
                log.exception("could not send consent request callbacks")
            try:
                tidy_sqlite_wal(self.runtime.engine)
            except Exception:
                log.exception("could not checkpoint the SQLite WAL")
