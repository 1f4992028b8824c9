"""The resource API under /api/v1: every read checks the token, then that its grant is live now."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request
from sqlalchemy import select

from consent import events, scopes
from consent.models import Grant, OAuthToken
from consent.oauth.context import API_PATH
from consent.oauth.grants import user_info
from consent.readlog import Entry
from consent.services import GrantNotLive, GrantService
from consent.tokens import AccessClaims, InvalidToken, TokenVerifier
from pds.db import run_transaction
from pds.errors import NotFound, PdsError, ValidationError
from pds.vault.models import CATEGORIES
from pds.vault.records import KIND
from pds.web import read_db, read_vault, runtime

bp = Blueprint("api", __name__, url_prefix=API_PATH)


class BearerError(PdsError):
    """RFC 6750 s3.1: the error also goes in WWW-Authenticate."""

    status = 401
    slug = "invalid-token"
    title = "Invalid token"
    error = "invalid_token"

    def headers(self) -> dict[str, str]:
        description = self.detail.replace('"', "'")
        return {
            "WWW-Authenticate": f'Bearer realm="pds", error="{self.error}", error_description="{description}"'
        }


class NoCredentials(BearerError):
    """RFC 6750 s3.1: a request with no token at all gets a challenge without an error code."""

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer realm="pds"'}


class InsufficientScope(BearerError):
    status = 403
    slug = "insufficient-scope"
    title = "Insufficient scope"
    error = "insufficient_scope"


@dataclass(frozen=True)
class Access:
    claims: AccessClaims
    grant: Grant
    categories: list[str]  # what the token's scope and the grant both allow

    @property
    def citizen_id(self) -> uuid.UUID:
        return self.grant.citizen_id

    def window(self) -> tuple[dt.datetime | None, dt.datetime | None]:
        """The record dates the grant covers, as [since, until)."""
        g_ = self.grant
        since = dt.datetime.combine(g_.records_from, dt.time(), dt.UTC) if g_.records_from else None
        until = (
            dt.datetime.combine(g_.records_until, dt.time(), dt.UTC) + dt.timedelta(days=1)
            if g_.records_until
            else None
        )
        return since, until


def issuer() -> str:
    return runtime().settings.server.public_url


def authorise(audiences: tuple[str, ...] | None = None) -> Access:
    header = request.headers.get("Authorization", "")
    kind, _, token = header.partition(" ")
    if kind.lower() != "bearer" or not token.strip():
        raise NoCredentials("send an access token: Authorization: Bearer <token>")
    session = read_db()
    verifier = TokenVerifier(session, issuer=issuer())
    claims = None
    for audience in audiences or (issuer() + API_PATH,):
        try:
            claims = verifier.verify(token.strip(), audience=audience)
            break
        except InvalidToken as exc:
            failure = str(exc)
    if claims is None:
        raise BearerError(failure)
    revoked = session.execute(select(OAuthToken.revoked_at).where(OAuthToken.jti == claims.jti)).first()
    if revoked is None or revoked[0] is not None:
        raise BearerError("the token has been revoked")
    if claims.grant_id is None or claims.citizen_id is None:
        raise InsufficientScope("this token was issued to a system and reads no citizen's records")
    try:
        grant = GrantService(session).check_live(
            claims.grant_id, citizen_id=claims.citizen_id, client_id=claims.client_id
        )
    except GrantNotLive:
        _expire_if_due(claims.grant_id)
        raise BearerError("the consent behind this token was revoked or has ended") from None
    allowed = [c for c in scopes.categories_of(claims.scope) if c in grant.category_list]
    return Access(claims, grant, allowed)


def _expire_if_due(grant_id: uuid.UUID) -> None:
    """A grant found past its end is marked expired, with its ledger entry, even though this request fails."""
    run_transaction(runtime().sessions, lambda s: GrantService(s).expire_due(grant_id=grant_id))


def protected(view: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        g.access = authorise()
        return view(*args, **kwargs)

    return wrapper


def _record_read(access: Access, record_ids: list[str], what: dict[str, Any]) -> None:
    """The read's ledger entry is committed before the response leaves: no read goes out unrecorded.

    Committed by the process's read log, many reads to a transaction (consent/readlog.py).
    """
    entry = Entry(
        event_type=events.RECORDS_READ,
        actor=f"client:{access.claims.client_id}",
        citizen_id=access.citizen_id,
        grant_id=access.grant.id,
        details={"records": record_ids, "purpose": access.grant.purpose, **what},
    )
    current_app.extensions["pds.readlog"].append(entry)


def _when(name: str) -> dt.datetime | None:
    value = request.args.get(name)
    if value is None:
        return None
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValidationError("must be an ISO 8601 date-time with a time zone", field=name) from None
    if when.tzinfo is None:
        raise ValidationError("must carry a time zone, e.g. 2026-01-01T00:00:00Z", field=name)
    return when


@bp.get("/me")
@protected
def me() -> Response:
    access: Access = g.access
    grant = access.grant
    body = dict(user_info(read_db(), runtime().provider, access.citizen_id, access.claims.scope))
    body["grant"] = {
        "id": str(grant.id),
        "categories": access.categories,
        "purpose": grant.purpose,
        "ends_at": grant.ends_at.isoformat(),
        "records_from": grant.records_from.isoformat() if grant.records_from else None,
        "records_until": grant.records_until.isoformat() if grant.records_until else None,
    }
    body["scope"] = access.claims.scope
    _record_read(access, [], {"what": "profile" if "name" in body else "identity"})
    return jsonify(body)


@bp.get("/records")
@protected
def list_records() -> Response:
    access: Access = g.access
    category = request.args.get("category")
    if category is not None and category not in CATEGORIES:
        raise ValidationError(f"must be one of {', '.join(CATEGORIES)}", field="category")
    kind = request.args.get("kind")
    if kind is not None and not KIND.match(kind):
        raise ValidationError("must look like format:Type, e.g. fhir:Observation", field="kind")
    if category is not None and category not in access.categories:
        raise InsufficientScope(f"this token may not read {category!r} records", field="category")
    wanted = [category] if category else access.categories
    if not wanted:
        raise InsufficientScope("this token may read no record category")
    limit_text = request.args.get("limit")
    if limit_text is not None and not limit_text.isdigit():
        raise ValidationError("must be a whole number", field="limit")
    since, until = _when("since"), _when("until")
    g_since, g_until = access.window()
    since = max(filter(None, (since, g_since)), default=None)
    until = min(filter(None, (until, g_until)), default=None)
    page = read_vault().records.list(
        access.citizen_id,
        categories=wanted,
        kind=kind,
        since=since,
        until=until,
        limit=int(limit_text) if limit_text else None,
        cursor=request.args.get("cursor"),
    )
    ids = [str(r.id) for r in page.items]
    _record_read(access, ids, {"categories": wanted, "count": len(ids)})
    return jsonify({"records": [r.to_json() for r in page.items], "next_cursor": page.next_cursor})


@bp.get("/records/<record_id>")
@protected
def get_record(record_id: str) -> Response:
    access: Access = g.access
    try:
        rid = uuid.UUID(record_id)
        record = read_vault().records.get(rid)
    except (ValueError, NotFound):
        raise NotFound("no such record", field="record_id") from None
    since, until = access.window()
    if (
        record.citizen_id != access.citizen_id
        or record.category not in access.categories
        or (since and record.occurred_at < since)
        or (until and record.occurred_at >= until)
    ):
        raise NotFound("no such record", field="record_id")  # never say it exists
    _record_read(access, [str(record.id)], {"categories": [record.category], "count": 1})
    return jsonify(record.to_json())


@bp.route("/userinfo", methods=["GET", "POST"])
def userinfo() -> Response:
    """OIDC UserInfo, for tokens with the openid scope."""
    access = authorise()
    if "openid" not in access.claims.scopes:
        raise InsufficientScope("userinfo needs the openid scope")
    _record_read(access, [], {"what": "userinfo"})
    return jsonify(dict(user_info(read_db(), runtime().provider, access.citizen_id, access.claims.scope)))
