"""Consent requests over the API, for professionals' systems (a GP system): ask, follow, read the grant.

Every call carries a professional's access token (consent/oauth/staff.py), checked now: a member of
staff revoked a moment ago is refused on their next call. What they may read is the patient's grant to
them, checked on each read and written to the ledger in the transaction the response waits for.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

from authlib.oauth2 import OAuth2Error
from flask import Blueprint, Response, g, jsonify, request

from consent.models import ConsentRequest, Grant, StaffMember
from consent.oauth.context import API_PATH
from consent.oauth.resource import PdsResourceProtector
from consent.oauth.staff import StaffAccess, StaffTokenValidator
from consent.professionals import ROLE_CATEGORIES, ROLE_WORDS
from consent.requests import AccessRefused, ProfessionalReads, RequestService, check_ask
from pds.errors import PdsError, ValidationError
from pds.vault.records import StoredRecord
from pds.web import db, read_db, read_vault, runtime, vault

bp = Blueprint("api_requests", __name__, url_prefix=API_PATH)
COLLECTION = "/consent-requests"
MAX_ASK_BYTES = 16 * 1024  # a request for consent is a few hundred bytes
MAX_LIST = 20  # items in categories or resource_types
REQUIRED = ("nhs_number", "purpose", "categories", "days")
OPTIONAL = ("resource_types", "records_from", "records_until", "callback_url")


class UnsupportedMediaType(PdsError):
    status = 415
    slug = "unsupported-media-type"
    title = "Unsupported media type"


class BodyTooLarge(PdsError):
    status = 413
    slug = "request-entity-too-large"
    title = "Request entity too large"


def issuer() -> str:
    return runtime().settings.server.public_url


require_staff_token = PdsResourceProtector()
require_staff_token.register_token_validator(
    StaffTokenValidator(session=read_db, issuer=issuer, audience=lambda: issuer() + API_PATH)
)


def staff_protected(view: Callable[..., Any]) -> Callable[..., Any]:
    """Every view here: a professional's token, checked now; the member of staff lands on g.staff."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            access: StaffAccess = require_staff_token.acquire_token()
        except OAuth2Error as error:
            require_staff_token.raise_error_response(error)
        g.staff = access.staff
        return view(*args, **kwargs)

    return wrapper


# -- the request body ---------------------------------------------------------------------------


class _Duplicate(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A member named twice is refused: parsers disagree on which one wins (RFC 8259 s4)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Duplicate(key)
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def json_object() -> dict[str, Any]:
    """The body as a JSON object, or a problem naming what is wrong with it. Never a 500."""
    if request.mimetype != "application/json":
        raise UnsupportedMediaType("send the body as application/json", field="Content-Type")
    if (request.content_length or 0) > MAX_ASK_BYTES:
        raise BodyTooLarge(f"the body may be at most {MAX_ASK_BYTES} bytes", field="body")
    data = request.get_data(cache=False)
    if len(data) > MAX_ASK_BYTES:
        raise BodyTooLarge(f"the body may be at most {MAX_ASK_BYTES} bytes", field="body")
    try:
        body = json.loads(data, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except _Duplicate as dup:
        raise ValidationError("is given twice", field=dup.key[:100]) from None
    except (ValueError, RecursionError):  # RecursionError: nested too deep for the parser
        raise ValidationError("the body is not well-formed JSON", field="body") from None
    if not isinstance(body, dict):
        raise ValidationError("the body must be a JSON object", field="body")
    unknown = sorted(set(body) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        known = ", ".join((*REQUIRED, *OPTIONAL))
        raise ValidationError(
            f"is not a field of a consent request (those are {known})", field=unknown[0][:100]
        )
    missing = [name for name in REQUIRED if body.get(name) is None]
    if missing:
        raise ValidationError("is required", field=missing[0])
    return body


def _text(body: dict[str, Any], name: str) -> str | None:
    """A string that can be stored as it is: no NUL or other control characters, no lone surrogates."""
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationError("must be a string", field=name)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError("must be valid Unicode text", field=name) from None
    if any((ord(c) < 32 and c not in "\t\n\r") or ord(c) == 127 for c in value):
        raise ValidationError("must not contain control characters", field=name)
    return value


def _texts(body: dict[str, Any], name: str) -> list[str]:
    value = body.get(name)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValidationError("must be a list of strings", field=name)
    if len(value) > MAX_LIST:
        raise ValidationError(f"may list at most {MAX_LIST}", field=name)
    return value


def _date(body: dict[str, Any], name: str) -> dt.date | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) != len("2026-01-31"):
        raise ValidationError("must be a date, YYYY-MM-DD", field=name)
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ValidationError("must be a date, YYYY-MM-DD", field=name) from None


def _callback_url(body: dict[str, Any]) -> str | None:
    url = _text(body, "callback_url")
    if url is None:
        return None
    try:
        urlsplit(url).hostname  # noqa: B018 (raises on a malformed host, e.g. "http://[::1")
    except ValueError:
        raise ValidationError("must be an https URL", field="callback_url") from None
    if any(c.isspace() for c in url):
        raise ValidationError("must be an https URL (no spaces)", field="callback_url")
    return url


def _days(body: dict[str, Any]) -> int:
    days = body["days"]
    if isinstance(days, bool) or not isinstance(days, int):
        raise ValidationError("must be a whole number of days", field="days")
    return days


# -- answers ------------------------------------------------------------------------------------


def _day(value: dt.date | None) -> str | None:
    return value.isoformat() if value else None


def request_json(req: ConsentRequest, status: str, grant: Grant | None) -> dict[str, Any]:
    """The request as its asker sees it: the NHS number only as its last three digits."""
    return {
        "id": str(req.id),
        "status": status,
        "purpose": req.purpose,
        "categories": req.category_list,
        "resource_types": req.resource_type_list,
        "days": req.days,
        "records_from": _day(req.records_from),
        "records_until": _day(req.records_until),
        "callback_url": req.callback_url,
        "created_at": req.created_at.isoformat(),
        "expires_at": req.expires_at.isoformat(),
        "decided_at": req.decided_at.isoformat() if req.decided_at else None,
        "patient": {"nhs_number_ends": req.patient_hint},
        "grant": grant_json(grant) if grant is not None else None,
    }


def grant_json(grant: Grant) -> dict[str, Any]:
    return {
        "categories": grant.category_list,
        "resource_types": grant.resource_type_list,  # empty: every type of the granted categories
        "ends_at": grant.ends_at.isoformat(),
        "records_from": _day(grant.records_from),
        "records_until": _day(grant.records_until),
    }


def record_json(r: StoredRecord) -> dict[str, Any]:
    return {
        "id": str(r.id),
        "category": r.category,
        "kind": r.kind,
        "occurred_at": r.occurred_at.isoformat(),
        "payload": r.payload,
    }


def location(req: ConsentRequest) -> str:
    return f"{issuer()}{API_PATH}{COLLECTION}/{req.id}"


# -- endpoints ----------------------------------------------------------------------------------


@bp.post(COLLECTION)
@staff_protected
def create_request() -> Response:
    """Ask a patient, by NHS number. Known here or not, the answer is the same: the request, pending."""
    member: StaffMember = g.staff
    if not ROLE_CATEGORIES[member.role]:
        raise AccessRefused(f"a {ROLE_WORDS[member.role].lower()} does not ask patients for records")
    body = json_object()
    nhs_number = _text(body, "nhs_number") or ""
    asked = check_ask(
        member,
        purpose=_text(body, "purpose") or "",
        categories=_texts(body, "categories"),
        resource_types=_texts(body, "resource_types"),
        days=_days(body),
        records_from=_date(body, "records_from"),
        records_until=_date(body, "records_until"),
        callback_url=_callback_url(body),
    )
    service = RequestService(db(), vault=vault())
    req = service.make(member, nhs_number, asked)
    response = jsonify(request_json(req, service.status(req), None))
    response.status_code = 201
    response.headers["Location"] = location(req)
    return response


def _own(request_id: str, service: RequestService) -> ConsentRequest:
    """A request of the professional's organisation; another's, or a malformed id, is simply not found."""
    member: StaffMember = g.staff
    return service.get_for_org(request_id, member.org_id)


@bp.get(COLLECTION + "/<request_id>")
@staff_protected
def get_request(request_id: str) -> Response:
    service = RequestService(read_db(), vault=read_vault())
    req = _own(request_id, service)
    grant = read_db().get(Grant, req.grant_id) if req.grant_id else None
    return jsonify(request_json(req, service.status(req), grant))


@bp.get(COLLECTION + "/<request_id>/records")
@staff_protected
def request_records(request_id: str) -> Response:
    """The records the patient granted, read now under the live grant; the read is in the ledger."""
    member: StaffMember = g.staff
    service = RequestService(db(), vault=vault())
    req = _own(request_id, service)
    if req.staff_id != member.id:  # a colleague's request: the grant is theirs, not the organisation's
        raise AccessRefused("the patient granted this to the colleague who asked, not to you")
    if req.grant_id is None:
        raise AccessRefused(f"nothing has been granted: the request is {service.status(req)}")
    grant, records = ProfessionalReads(db(), vault=vault()).read(member, req.grant_id)
    return jsonify(
        {
            "request_id": str(req.id),
            "grant": grant_json(grant),
            "total": len(records),
            "records": [record_json(r) for r in records],
        }
    )
