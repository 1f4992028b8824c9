"""The resource API under /api/v1: every read checks the token, then that its grant is live now."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable
from functools import wraps
from typing import Any

from authlib.oauth2 import OAuth2Error
from flask import Blueprint, Response, current_app, g, jsonify, request

from consent import events, scopes
from consent.events import Event
from consent.oauth.context import API_PATH
from consent.oauth.grants import user_info
from consent.oauth.resource import Access, GrantBoundValidator, InsufficientScope, PdsResourceProtector
from consent.services import GrantService
from pds.db import run_transaction
from pds.errors import NotFound, ValidationError
from pds.vault.models import CATEGORIES
from pds.vault.records import KIND
from pds.web import ledger, read_db, read_vault, runtime

bp = Blueprint("api", __name__, url_prefix=API_PATH)


def issuer() -> str:
    return runtime().settings.server.public_url


def _expire_if_due(grant_id: uuid.UUID) -> None:
    """A grant found past its end is marked expired, with its ledger entry, even though this request fails."""
    run_transaction(runtime().sessions, lambda s: GrantService(s).expire_due(grant_id=grant_id))


require_token = PdsResourceProtector()
require_token.register_token_validator(
    GrantBoundValidator(
        session=read_db, issuer=issuer, audience=lambda: issuer() + API_PATH, on_grant_not_live=_expire_if_due
    )
)


def protected(view: Callable[..., Any]) -> Callable[..., Any]:
    """Every API view: the token, then its grant, checked now; the Access lands on g.access."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            g.access = require_token.acquire_token()
        except OAuth2Error as error:
            require_token.raise_error_response(error)
        return view(*args, **kwargs)

    return wrapper


def _record_read(access: Access, record_ids: list[str], what: dict[str, Any]) -> None:
    """The read's ledger entry is committed before the response leaves: no read goes out unrecorded.

    Committed by the process's read log, many reads to a transaction (consent/readlog.py).
    """
    entry = Event(
        event_type=events.RECORDS_READ,
        actor=f"client:{access.claims.client_id}",
        citizen_id=access.citizen_id,
        grant_id=access.grant.id,
        details={"records": record_ids, "purpose": access.grant.purpose, **what},
    )
    # What the response holds has been read: end the read transaction before the entry commits. On
    # SQLite a reader left open across every commit keeps the WAL from ever being reset: it grew by
    # every entry (100 MB in 3,000 reads), and a read cost a third more.
    read_db().rollback()
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
    kinds: dict[str, int] = {}
    for r in page.items:
        kinds[r.kind] = kinds.get(r.kind, 0) + 1
    _record_read(access, ids, {"categories": wanted, "count": len(ids), "kinds": kinds})
    # Built from each record's stored payload JSON: parsing it only to serialise it again costs more
    # than the rest of the page.
    cursor = json.dumps(page.next_cursor).encode()
    body = (
        b'{"records":['
        + b",".join(r.to_json_bytes() for r in page.items)
        + b'],"next_cursor":'
        + cursor
        + b"}"
    )
    return Response(body, mimetype="application/json")


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
    _record_read(
        access, [str(record.id)], {"categories": [record.category], "count": 1, "kinds": {record.kind: 1}}
    )
    return Response(record.to_json_bytes(), mimetype="application/json")


@bp.route("/userinfo", methods=["GET", "POST"])
@protected
def userinfo() -> Response:
    """OIDC UserInfo, for tokens with the openid scope."""
    access: Access = g.access
    if "openid" not in access.claims.scopes:
        raise InsufficientScope("userinfo needs the openid scope")
    _record_read(access, [], {"what": "userinfo"})
    return jsonify(dict(user_info(read_db(), runtime().provider, access.citizen_id, access.claims.scope)))


@bp.get("/ledger")
@protected
def ledger_history() -> Response:
    """The citizen's own ledger entries, newest first, for an app with the ledger.read scope."""
    access: Access = g.access
    if scopes.LEDGER_SCOPE not in access.claims.scopes:
        raise InsufficientScope(f"the access history needs the {scopes.LEDGER_SCOPE} scope")
    before = request.args.get("before")
    if before is not None and not before.isdigit():
        raise ValidationError("must be a whole number (the next_before of the previous page)", field="before")
    limit_text = request.args.get("limit", "50")
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= 500:
        raise ValidationError("must be a whole number from 1 to 500", field="limit")
    body = ledger.history_json(
        access.citizen_id,
        after=int(before) if before is not None else -1,
        limit=int(limit_text),
        receipt_url=API_PATH + "/ledger/{index}/receipt",
    )
    _record_read(access, [], {"what": "access history", "count": len(body["entries"])})
    return jsonify(body)


@bp.get("/ledger/<index>/receipt")
@protected
def ledger_receipt(index: str) -> Response:
    """A consent receipt (a signed JWT) for one of the citizen's grant events."""
    access: Access = g.access
    if scopes.LEDGER_SCOPE not in access.claims.scopes:
        raise InsufficientScope(f"receipts need the {scopes.LEDGER_SCOPE} scope")
    if not index.isdigit() or len(index) > 19:
        raise NotFound("no grant event of yours at this index", field="index")
    token = ledger.receipt(access.citizen_id, int(index))
    _record_read(access, [], {"what": "consent receipt", "index": int(index)})
    return Response(token, mimetype="application/jwt")
