"""The citizen's cases (council and police, from Open311) and, for a parent, their children's records.

A case reads like an order: what it is, who handles it, where it stands, what happens next and every
update so far. A parent sees each child linked to them by a live guardian link, only in the categories the
link covers and never what the source marked sensitive; each look is a read by a proxy, so it goes in the
child's ledger.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, redirect, render_template, request, url_for

from consent import events
from pds.errors import NotFound
from pds.vault import Vault
from pds.vault.guardians import GuardianView
from pds.vault.records import StoredRecord
from pds.web import db, read_vault, runtime, signed_in_citizen

bp = Blueprint("cases_pages", __name__, url_prefix="/account")

REQUEST_KIND, UPDATE_KIND = "open311:request", "open311:update"
RESULT_KIND, ATTENDANCE_KIND, BEHAVIOUR_KIND = "oneroster:result", "attendance:session", "behaviour:event"
IMMUNISATION_KIND = "fhir:Immunization"
BATCH = 500  # records per page read from the vault

# Open311 and FixMyStreet states in plain words, with the GOV.UK tag colour for each
STATUS_WORDS: dict[str, tuple[str, str]] = {
    "open": ("Open", "govuk-tag--blue"),
    "closed": ("Closed", "govuk-tag--grey"),
    "fixed": ("Fixed", "govuk-tag--green"),
    "in_progress": ("In progress", "govuk-tag--light-blue"),
    "planned": ("Planned", "govuk-tag--light-blue"),
    "action_scheduled": ("Action scheduled", "govuk-tag--light-blue"),
    "investigating": ("Being investigated", "govuk-tag--yellow"),
    "duplicate": ("Closed: already reported", "govuk-tag--grey"),
    "not_councils_responsibility": ("Passed on: not theirs to deal with", "govuk-tag--grey"),
    "no_further_action": ("Closed: no further action", "govuk-tag--grey"),
    "internal_referral": ("Passed to another team", "govuk-tag--purple"),
    "cancelled": ("Cancelled", "govuk-tag--grey"),
    "reopen": ("Reopened", "govuk-tag--orange"),
    "for_triage": ("Waiting to be looked at", "govuk-tag--yellow"),
    "unchanged": ("No change", "govuk-tag--grey"),
}
STILL_OPEN = ("open", "in_progress", "planned", "action_scheduled", "investigating", "reopen", "for_triage")

# what an attendance mark counts as (connectors/oneroster.py ATTENDANCE_CODES)
ATTENDED = ("present", "attending approved education")
ABSENT = ("authorised absence", "unauthorised absence")
CHILD_CATEGORIES = ("education", "health")


def status_words(status: str | None) -> dict[str, str]:
    words, colour = STATUS_WORDS.get(
        str(status), (str(status or "Unknown").replace("_", " ").capitalize(), "")
    )
    return {"text": words, "classes": colour}


def _when(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def day(value: dt.date | dt.datetime | None) -> str:
    return value.strftime("%-d %B %Y") if value else ""


def _sign_in_first() -> Response:
    return redirect(url_for("account.signin", next=request.full_path.rstrip("?")), code=303)  # type: ignore[return-value]


def _every(vault: Vault, citizen_id: uuid.UUID, **filters: Any) -> Iterator[StoredRecord]:
    """All the citizen's records that match, newest first, page by page."""
    limit = min(BATCH, vault.records.limits.max_page_size)
    cursor = None
    while True:
        page = vault.records.list(citizen_id, limit=limit, cursor=cursor, **filters)
        yield from page.items
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


# -- cases ---------------------------------------------------------------------------------------


def _updates_by_case(vault: Vault, citizen_id: uuid.UUID) -> dict[tuple[str, str], list[StoredRecord]]:
    """Each case's updates, newest first, keyed by (source, service request id)."""
    found: dict[tuple[str, str], list[StoredRecord]] = {}
    for r in _every(vault, citizen_id, categories=["case"], kind=UPDATE_KIND):
        found.setdefault((r.source, str(r.payload.get("service_request_id"))), []).append(r)
    for updates in found.values():
        updates.sort(key=lambda u: _when(u.payload.get("updated_datetime")) or u.occurred_at, reverse=True)
    return found


def describe_case(case: StoredRecord, updates: list[StoredRecord]) -> dict[str, Any]:
    """A case as its pages show it; `updates` are its own, newest first."""
    p = case.payload
    latest = next((u for u in updates if u.payload.get("status") not in (None, "unchanged")), None)
    status = str(latest.payload["status"]) if latest else str(p.get("status", "open"))
    if p.get("status") == "closed" and status in STILL_OPEN:
        status = "closed"  # the case itself says it is closed, whatever its last update said
    last = _when(updates[0].payload.get("updated_datetime")) if updates else None
    last = last or _when(p.get("updated_datetime")) or _when(p.get("requested_datetime")) or case.occurred_at
    return {
        "id": str(case.id),
        "reference": case.source_record_id,
        "service": p.get("service_name") or p.get("service_code") or "Case",
        "agency": p.get("agency_responsible") or "Not said",
        "description": p.get("description"),
        "notice": p.get("service_notice"),
        "address": p.get("address"),
        "status": status_words(status),
        "next": p.get("status_notes"),
        "requested": day(_when(p.get("requested_datetime")) or case.occurred_at),
        "last_update": day(last),
        "last_update_at": last,
        "last_note": updates[0].payload.get("description") if updates else None,
        "expected": day(_when(p.get("expected_datetime"))),
        "timeline": [
            {
                "when": day(_when(u.payload.get("updated_datetime")) or u.occurred_at),
                "status": status_words(u.payload.get("status")),
                "note": u.payload.get("description") or "",
            }
            for u in updates
        ],
    }


@bp.get("/cases")
def cases() -> Response | str:
    citizen_id = signed_in_citizen()
    if citizen_id is None:
        return _sign_in_first()
    vault = read_vault()
    updates = _updates_by_case(vault, citizen_id)
    shown = [
        describe_case(c, updates.get((c.source, c.source_record_id), []))
        for c in _every(vault, citizen_id, categories=["case"], kind=REQUEST_KIND)
    ]
    shown.sort(key=lambda c: c["last_update_at"], reverse=True)
    return render_template("cases_pages/cases.html", cases=shown)


@bp.get("/cases/<record_id>")
def case(record_id: str) -> Response | str:
    citizen_id = signed_in_citizen()
    if citizen_id is None:
        return _sign_in_first()
    missing = NotFound("no case of yours with this id", field="record_id")
    try:
        wanted = uuid.UUID(record_id)
    except ValueError:
        raise missing from None
    vault = read_vault()
    try:
        found = vault.records.get(wanted)
    except NotFound:
        raise missing from None
    if found.citizen_id != citizen_id or found.kind != REQUEST_KIND:
        raise missing  # the same answer as for no record at all: never say someone else's exists
    updates = _updates_by_case(vault, citizen_id).get((found.source, found.source_record_id), [])
    return render_template("cases_pages/case.html", case=describe_case(found, updates))


# -- children ------------------------------------------------------------------------------------


def _education(records: list[StoredRecord]) -> dict[str, Any]:
    marks = sorted(
        (r for r in records if r.kind == ATTENDANCE_KIND),
        key=lambda r: (str(r.payload.get("date", "")), r.payload.get("session") != "AM"),
    )
    attended = sum(1 for m in marks if m.payload.get("countsAs") in ATTENDED)
    possible = sum(1 for m in marks if m.payload.get("countsAs") in ATTENDED + ABSENT)
    results = []
    for r in records:
        if r.kind != RESULT_KIND:
            continue
        p, item = r.payload, r.payload.get("lineItem") or {}
        score, most = p.get("score"), item.get("resultValueMax")
        if score is None:
            shown = "Not marked yet" if p.get("scoreStatus") != "exempt" else "Exempt"
        else:
            shown = f"{_number(score)} out of {_number(most)}" if most is not None else _number(score)
        results.append(
            {
                "title": item.get("title") or "Assessment",
                "class": (p.get("class") or {}).get("title") or "",
                "score": shown,
                "date": day(_date(p.get("scoreDate")) or r.occurred_at),
                "comment": p.get("comment") or "",
            }
        )
    behaviour = [
        {
            "type": "Achievement" if r.payload.get("type") == "achievement" else "Behaviour",
            "category": r.payload.get("category") or "",
            "points": r.payload.get("points", ""),
            "date": day(_date(r.payload.get("date")) or r.occurred_at),
            "by": r.payload.get("recordedBy") or "",
            "comment": r.payload.get("comment") or "",
        }
        for r in records
        if r.kind == BEHAVIOUR_KIND
    ]
    return {
        "attended": attended,
        "possible": possible,
        "percent": round(100 * attended / possible, 1) if possible else None,
        "marks": [
            {
                "date": day(_date(m.payload.get("date")) or m.occurred_at),
                "session": m.payload.get("session", ""),
                "code": m.payload.get("code", ""),
                "meaning": m.payload.get("meaning", ""),
                "counts_as": m.payload.get("countsAs", ""),
                "late": m.payload.get("minutesLate"),
            }
            for m in marks
        ],
        "results": results,
        "behaviour": behaviour,
    }


def _health(records: list[StoredRecord]) -> dict[str, Any]:
    immunisations = []
    for r in records:
        if r.kind != IMMUNISATION_KIND or r.payload.get("status") == "entered-in-error":
            continue
        p = r.payload
        code = p.get("vaccineCode") or {}
        name = code.get("text") or next(
            (c.get("display") for c in code.get("coding", []) if c.get("display")), ""
        )
        doses = [
            a.get("doseNumberPositiveInt")
            for a in p.get("protocolApplied", [])
            if a.get("doseNumberPositiveInt")
        ]
        immunisations.append(
            {
                "vaccine": name or "Vaccine",
                "date": day(
                    _when(p.get("occurrenceDateTime")) or _date(p.get("occurrenceDateTime")) or r.occurred_at
                ),
                "dose": str(doses[0]) if doses else "",
                "status": "Not given" if p.get("status") == "not-done" else "Given",
            }
        )
    return {"immunisations": immunisations}


def _date(value: Any) -> dt.date | None:
    if not isinstance(value, str):
        return None
    try:
        return dt.date.fromisoformat(value[:10])
    except ValueError:
        return None


def _number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _child(vault: Vault, link: GuardianView, parent_id: uuid.UUID, end_age: int) -> dict[str, Any]:
    name = link.child_name or "your child"
    first = name.split()[0] if link.child_name else name
    shown: dict[str, Any] = {
        "id": str(link.child_id),
        "name": name,
        "first": first,
        "status": link.status,
        "review_from": day(link.review_from),
        "ends_on": day(link.ends_on),
        "covers_education": "education" in link.categories,
        "covers_health": "health" in link.categories,
        "education": None,
        "health": None,
        "ended_by_age": False,
        "end_reason": link.end_reason,
    }
    if link.status == "ended":
        shown["ended_by_age"] = link.ends_on is not None and dt.date.today() >= link.ends_on
        shown["end_age"] = end_age
        return shown
    wanted = [c for c in CHILD_CATEGORIES if c in link.categories]
    if not wanted:
        return shown
    # a proxy never sees what the source marked sensitive
    records = [r for r in _every(vault, link.child_id, categories=wanted) if not r.sensitive]
    if "education" in wanted:
        shown["education"] = _education([r for r in records if r.category == "education"])
    if "health" in wanted:
        shown["health"] = _health([r for r in records if r.category == "health"])
    count = sum(
        1
        for r in records
        if r.kind in (RESULT_KIND, ATTENDANCE_KIND, BEHAVIOUR_KIND)
        or (r.kind == IMMUNISATION_KIND and r.payload.get("status") != "entered-in-error")
    )
    what = " and ".join(
        w for c, w in (("education", "school progress"), ("health", "immunisations")) if c in wanted
    )
    events.append_event(
        db(),
        events.RECORDS_READ,
        actor=f"guardian:{parent_id}",
        citizen_id=link.child_id,
        details={"what": f"child's {what}", "count": count, "categories": wanted},
    )
    return shown


@bp.get("/children")
def children() -> Response | str:
    parent_id = signed_in_citizen()
    if parent_id is None:
        return _sign_in_first()
    vault = read_vault()
    end_age = runtime().settings.guardians.end_age
    shown = [_child(vault, link, parent_id, end_age) for link in vault.guardians.of_parent(parent_id)]
    return render_template("cases_pages/children.html", children=shown)
