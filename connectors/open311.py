"""Cases to track: Open311 GeoReport v2 service requests, with the FixMyStreet update extension.

A delivery is what the source's API returns: a bare JSON array of service requests (`requests.json`), a
bare array of updates (`servicerequestupdates.json`, recognised by `update_id`), or an object holding
both, `{"service_requests": [...], "updates": [...]}`. The same model serves a council (a parking-permit
application) and the police (a reported crime).

A request is matched to its citizen by the `account_id` the council or police holds for them (the
identifier kind is the connector's `identifier` setting). An update names only its request: it goes to
whoever that request belongs to, found in the same delivery or in the vault. Each update becomes an
entry in the case's timeline.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any, ClassVar
from urllib.parse import urlsplit

from connectors.base import Item, Problems

REQUEST_STATUSES = ("open", "closed")
# FixMyStreet's update states (mysociety/open311-adapter Service/Request/Update/mySociety.pm), lower case
UPDATE_STATUSES = (
    "open",
    "closed",
    "fixed",
    "in_progress",
    "planned",
    "action_scheduled",
    "investigating",
    "duplicate",
    "not_councils_responsibility",
    "no_further_action",
    "internal_referral",
    "cancelled",
    "reopen",
    "for_triage",
    "unchanged",
)
DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$")
MAX_DESCRIPTION = 4000
MAX_ID = 255
FUTURE_SKEW = dt.timedelta(minutes=5)
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
# what an update's timeline entry keeps, besides its ids and times
UPDATE_FIELDS = ("status", "description", "media_url", "external_status_code")
REQUEST_FIELDS = (
    "status",
    "status_notes",
    "service_name",
    "service_code",
    "description",
    "agency_responsible",
    "service_notice",
    "expected_datetime",
    "address",
    "address_id",
    "zipcode",
    "lat",
    "long",
    "media_url",
)


class Open311Parser:
    kind: ClassVar[str] = "open311"
    media_types: ClassVar[tuple[str, ...]] = ("application/json",)

    def __init__(self, *, identifier_kind: str = "council_account") -> None:
        self.identifier_kind = identifier_kind

    def parse(self, body: bytes, *, media_type: str) -> list[Item]:
        problems = Problems()
        try:
            doc = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            problems.add(None, "body", f"is not JSON: {exc}")
            problems.raise_if_any()
        requests, updates = _split(doc, problems)
        problems.raise_if_any()
        now = dt.datetime.now(dt.UTC)
        items: list[Item] = []
        for i, raw in enumerate(requests):
            item = self._request(i, raw, problems, now)
            if item is not None:
                items.append(item)
        offset = len(requests)  # updates are numbered after the requests, in the order they came
        for j, raw in enumerate(updates):
            item = _update(offset + j, raw, problems, now)
            if item is not None:
                items.append(item)
        problems.raise_if_any()
        return items

    def _request(self, i: int, raw: Any, problems: Problems, now: dt.datetime) -> Item | None:
        if not isinstance(raw, dict):
            problems.add(i, "service_request", "must be an object")
            return None
        before = len(problems.found)
        rid = _id(i, raw, "service_request_id", problems)
        status = raw.get("status")
        if status not in REQUEST_STATUSES:
            problems.add(i, "status", f"must be one of {', '.join(REQUEST_STATUSES)}")
        code = raw.get("service_code")
        if not isinstance(code, str | int) or isinstance(code, bool) or not str(code).strip():
            problems.add(i, "service_code", "is required")
        requested = _when(i, raw, "requested_datetime", problems, now, required=True)
        updated = _when(i, raw, "updated_datetime", problems, now, required=False)
        if requested and updated and updated < requested:
            problems.add(i, "updated_datetime", "is before requested_datetime")
        _when(i, raw, "expected_datetime", problems, now, required=False, future_ok=True)
        account = raw.get("account_id")
        if not isinstance(account, str | int) or isinstance(account, bool) or not str(account).strip():
            problems.add(i, "account_id", "is required: it says whose case this is")
        _text(i, raw, "description", problems)
        _media(i, raw, problems)
        _position(i, raw, problems)
        if len(problems.found) > before or rid is None or requested is None:
            return None
        payload = {"service_request_id": rid}
        for key in REQUEST_FIELDS:
            if raw.get(key) not in (None, ""):
                payload[key] = _plain_number(raw[key]) if key in ("lat", "long") else raw[key]
        payload["service_code"] = str(code)
        payload["requested_datetime"] = raw["requested_datetime"]
        if updated is not None:
            payload["updated_datetime"] = raw["updated_datetime"]
        return Item(
            identifier_kind=self.identifier_kind,
            identifier=str(account).strip(),
            category="case",
            kind="open311:request",
            source_record_id=rid,
            version=_micros(updated or requested),
            occurred_at=requested,
            payload=payload,
        )


def _split(doc: Any, problems: Problems) -> tuple[list[Any], list[Any]]:
    if isinstance(doc, list):
        if doc and all(isinstance(x, dict) and "update_id" in x for x in doc):
            return [], doc
        return doc, []
    if isinstance(doc, dict):
        unknown = set(doc) - {"service_requests", "updates"}
        if unknown:
            problems.add(None, sorted(unknown)[0], "is not part of an Open311 delivery")
        requests, updates = doc.get("service_requests", []), doc.get("updates", [])
        if not isinstance(requests, list):
            problems.add(None, "service_requests", "must be an array")
            requests = []
        if not isinstance(updates, list):
            problems.add(None, "updates", "must be an array")
            updates = []
        return requests, updates
    problems.add(None, "body", "must be an array of service requests or updates, or an object holding them")
    return [], []


def _update(i: int, raw: Any, problems: Problems, now: dt.datetime) -> Item | None:
    if not isinstance(raw, dict):
        problems.add(i, "update", "must be an object")
        return None
    before = len(problems.found)
    uid = _id(i, raw, "update_id", problems)
    rid = _id(i, raw, "service_request_id", problems)
    status = raw.get("status")
    if not isinstance(status, str) or status.lower() not in UPDATE_STATUSES:
        problems.add(i, "status", f"must be one of {', '.join(UPDATE_STATUSES)}")
    updated = _when(i, raw, "updated_datetime", problems, now, required=True)
    _text(i, raw, "description", problems)
    _media(i, raw, problems)
    if len(problems.found) > before or uid is None or rid is None or updated is None:
        return None
    payload: dict[str, Any] = {"update_id": uid, "service_request_id": rid}
    for key in UPDATE_FIELDS:
        if raw.get(key) not in (None, ""):
            payload[key] = raw[key].lower() if key == "status" else raw[key]
    payload["updated_datetime"] = raw["updated_datetime"]
    return Item(
        identifier_kind="record",  # whoever the request belongs to
        identifier=rid,
        category="case",
        kind="open311:update",
        source_record_id=uid,
        version=_micros(updated),
        occurred_at=updated,
        payload=payload,
    )


def _id(i: int, raw: dict[str, Any], key: str, problems: Problems) -> str | None:
    value = raw.get(key)
    if isinstance(value, bool) or not isinstance(value, str | int):
        problems.add(i, key, "is required (text or a whole number)")
        return None
    text = str(value).strip()
    if not text or len(text) > MAX_ID:
        problems.add(i, key, f"must be 1 to {MAX_ID} characters")
        return None
    return text


def _when(
    i: int,
    raw: dict[str, Any],
    key: str,
    problems: Problems,
    now: dt.datetime,
    *,
    required: bool,
    future_ok: bool = False,
) -> dt.datetime | None:
    value = raw.get(key)
    if value in (None, ""):
        if required:
            problems.add(i, key, "is required")
        return None
    if not isinstance(value, str) or not DATETIME.match(value):
        problems.add(i, key, "must be a W3C date-time with its time zone, e.g. 2026-03-10T08:42:11+00:00")
        return None
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        problems.add(i, key, "is not a real date and time")
        return None
    if not future_ok and when > now + FUTURE_SKEW:
        problems.add(i, key, "is in the future")
        return None
    return when


def _text(i: int, raw: dict[str, Any], key: str, problems: Problems) -> None:
    value = raw.get(key)
    if value is None:
        return
    if not isinstance(value, str):
        problems.add(i, key, "must be text")
    elif len(value) > MAX_DESCRIPTION:
        problems.add(i, key, f"must be at most {MAX_DESCRIPTION} characters")


def _media(i: int, raw: dict[str, Any], problems: Problems) -> None:
    value = raw.get("media_url")
    if value in (None, ""):
        return
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        problems.add(i, "media_url", "must be an absolute http(s) URL, empty or null")


def _position(i: int, raw: dict[str, Any], problems: Problems) -> None:
    lat, long = raw.get("lat"), raw.get("long")
    if lat in (None, "") and long in (None, ""):
        return
    if lat in (None, "") or long in (None, ""):
        problems.add(i, "lat" if lat in (None, "") else "long", "lat and long come together")
        return
    for key, value, limit in (("lat", lat, 90), ("long", long, 180)):
        number = _plain_number(value)
        if number is None or not -limit <= number <= limit:
            problems.add(i, key, f"must be a number from -{limit} to {limit}")


def _plain_number(value: Any) -> float | None:
    """Numbers, or numeric strings as some servers send them (SeeClickFix)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _micros(when: dt.datetime) -> int:
    """The version of a case or update: its last-updated time in microseconds (later wins)."""
    return (when - EPOCH) // dt.timedelta(microseconds=1)
