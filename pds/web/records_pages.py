"""The citizen's own records and data: their GP health record in plain words, their data to download (all
of it as JSON, or the health record as a FHIR Bundle), and deleting their vault after re-entering the
password.

Reading one's own record is not a third-party read, so the health page writes nothing to the ledger. A
download is an export, and is logged (records.exported, actor citizen:<id>) before a byte is sent, as
`pds citizens export` does. Erasure is done exactly as `pds citizens delete` does it.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, Response, redirect, render_template, request, session, url_for
from markupsafe import Markup, escape
from wtforms import BooleanField, PasswordField
from wtforms.validators import DataRequired, Length

from consent import events
from pds.accounts import verify_password
from pds.errors import NotFound
from pds.vault import StoredRecord, Vault
from pds.web import db, read_vault, runtime, signed_in_citizen, vault
from pds.web.forms import Form

bp = Blueprint("records_pages", __name__, url_prefix="/account")

FHIR_JSON = "application/fhir+json"
WRONG_PASSWORD = "The password is not right"  # noqa: S105 (a message, not a password)
MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
FHIR_DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?")
UNITS = {
    "mm[Hg]": "mmHg",
    "Cel": "°C",
    "[degF]": "°F",
    "/min": "per minute",
    "{beats}/min": "beats per minute",
}
SYSTOLIC = {"8480-6", "271649006", "72313002"}  # LOINC, SNOMED CT
DIASTOLIC = {"8462-4", "271650006", "1091811000000102"}
STATUS_WORDS = {
    "active": "Active",
    "recurrence": "Active (came back)",
    "relapse": "Active (came back)",
    "inactive": "Inactive",
    "remission": "In remission",
    "resolved": "Resolved",
    "completed": "Finished",
    "stopped": "Stopped",
    "on-hold": "On hold",
    "intended": "Planned",
    "not-taken": "Not taken",
    "cancelled": "Cancelled",
    "entered-in-error": "Entered in error",
    "finished": "Finished",
    "planned": "Booked",
    "arrived": "Arrived",
    "in-progress": "In progress",
    "not-done": "Not given",
}


class DeleteVaultForm(Form):
    password = PasswordField(
        "Your password", validators=[DataRequired("Enter your password"), Length(max=1024)]
    )
    confirm = BooleanField(
        "I understand that this deletes all my records and cannot be undone",
        validators=[DataRequired("Tick the box to confirm you want to delete your vault")],
    )


# -- plain words from FHIR R4 --------------------------------------------------------------------


def uk_date(value: object) -> str:
    """A FHIR date or dateTime as a UK reader writes it, at the date the source wrote: 3 November 2026,
    November 2026 or 2026 for partial dates; '' when there is none."""
    match = FHIR_DATE.match(value) if isinstance(value, str) else None
    if match is None:
        return ""
    year, month, day = match.groups()
    if month is None or not 1 <= int(month) <= 12:
        return year
    if day is None:
        return f"{MONTHS[int(month) - 1]} {year}"
    return f"{int(day)} {MONTHS[int(month) - 1]} {year}"


def concept(value: object) -> str:
    """A CodeableConcept's words: its text, else the first coding's display, else its code."""
    if not isinstance(value, dict):
        return ""
    if isinstance(value.get("text"), str) and value["text"]:
        return str(value["text"])
    for coding in value.get("coding") or []:
        if isinstance(coding, dict) and coding.get("display"):
            return str(coding["display"])
    for coding in value.get("coding") or []:
        if isinstance(coding, dict) and coding.get("code"):
            return str(coding["code"])
    return ""


def codes(value: object) -> set[str]:
    if not isinstance(value, dict):
        return set()
    return {str(c.get("code")) for c in value.get("coding") or [] if isinstance(c, dict)}


def status_word(value: object) -> str:
    code = value if isinstance(value, str) else next(iter(sorted(codes(value))), "")
    return STATUS_WORDS.get(code, code.replace("-", " ").capitalize())


def _number(value: dict[str, Any]) -> str:
    number = value.get("value")
    text = f"{number:g}" if isinstance(number, float) else str(number)
    return f"{value.get('comparator', '')}{text}"


def _unit(value: dict[str, Any]) -> str:
    unit = str(value.get("unit") or value.get("code") or "")
    return UNITS.get(unit, unit)


def quantity(value: object) -> str:
    if not isinstance(value, dict) or value.get("value") is None:
        return ""
    return f"{_number(value)} {_unit(value)}".strip()


def observation_value(payload: dict[str, Any]) -> str:
    """The value in words: a quantity with its unit, blood pressure as systolic/diastolic, else each part."""
    direct = _value(payload)
    if direct:
        return direct
    parts = [p for p in payload.get("component") or [] if isinstance(p, dict)]
    top = next((p for p in parts if codes(p.get("code")) & SYSTOLIC), None)
    bottom = next((p for p in parts if codes(p.get("code")) & DIASTOLIC), None)
    high, low = (p.get("valueQuantity") if p else None for p in (top, bottom))
    if isinstance(high, dict) and isinstance(low, dict) and high.get("value") is not None:
        return f"{_number(high)}/{_number(low)} {_unit(high)}".strip()
    described = [f"{concept(p.get('code'))}: {_value(p)}" for p in parts if _value(p)]
    return "; ".join(described) or "No value recorded"


def _value(node: dict[str, Any]) -> str:
    if "valueQuantity" in node:
        return quantity(node["valueQuantity"])
    if "valueCodeableConcept" in node:
        return concept(node["valueCodeableConcept"])
    for name in ("valueString", "valueInteger", "valueBoolean"):
        if name in node:
            value = node[name]
            return ("Yes" if value else "No") if isinstance(value, bool) else str(value)
    if "valueDateTime" in node:
        return uk_date(node["valueDateTime"])
    return ""


def _first(payload: dict[str, Any], *paths: str) -> object:
    for path in paths:
        node: object = payload
        for name in path.split("."):
            node = node.get(name) if isinstance(node, dict) else None
        if node:
            return node
    return None


RESTRICTED_TAG = Markup(' <strong class="govuk-tag govuk-tag--grey">Restricted</strong>')


def _sensitive(name: str, record: StoredRecord) -> Markup:
    """The name, escaped, and a tag when the source marked the record confidential."""
    return escape(name) + RESTRICTED_TAG if record.sensitive else escape(name)


@dataclass
class HealthRecord:
    """The health page's sections, each a list of table rows (cells as govukTable takes them)."""

    problems: list[list[dict[str, Any]]] = field(default_factory=list)
    medicines: list[list[dict[str, Any]]] = field(default_factory=list)
    allergies: list[list[dict[str, Any]]] = field(default_factory=list)
    results: list[list[dict[str, Any]]] = field(default_factory=list)
    immunisations: list[list[dict[str, Any]]] = field(default_factory=list)
    visits: list[list[dict[str, Any]]] = field(default_factory=list)
    restricted: int = 0


def health_record(records: list[StoredRecord]) -> HealthRecord:
    """The rows of every section, newest first, from the citizen's health records (R4 payloads)."""
    by_kind: dict[str, list[StoredRecord]] = {}
    for r in sorted(records, key=lambda r: r.occurred_at, reverse=True):
        by_kind.setdefault(r.kind, []).append(r)
    out = HealthRecord(restricted=sum(r.sensitive for r in records))
    for r in by_kind.get("fhir:Condition", []):
        p = r.payload
        status = status_word(p.get("clinicalStatus")) or ("Resolved" if p.get("abatementDateTime") else "")
        since = uk_date(_first(p, "onsetDateTime", "onsetPeriod.start", "recordedDate"))
        ended = uk_date(_first(p, "abatementDateTime", "abatementPeriod.end"))
        out.problems.append(
            [
                {"html": _sensitive(concept(p.get("code")) or "Unnamed problem", r)},
                {"text": since or "Not recorded"},
                {"text": f"{status} ({ended})" if status and ended else status or "Not recorded"},
            ]
        )
    out.medicines = _medicines(by_kind)
    for r in by_kind.get("fhir:AllergyIntolerance", []):
        p = r.payload
        reactions = [
            concept(m)
            for reaction in p.get("reaction") or []
            for m in (reaction.get("manifestation") or [])
            if isinstance(reaction, dict)
        ]
        out.allergies.append(
            [
                {"html": _sensitive(concept(p.get("code")) or "Unnamed substance", r)},
                {"text": ", ".join(w for w in reactions if w) or "Not recorded"},
                {"text": uk_date(_first(p, "onsetDateTime", "recordedDate")) or "Not recorded"},
            ]
        )
    for r in by_kind.get("fhir:Observation", []):
        p = r.payload
        when = uk_date(_first(p, "effectiveDateTime", "effectivePeriod.start", "effectiveInstant", "issued"))
        when = when or uk_date(r.occurred_at.date().isoformat())
        out.results.append(
            [
                {"html": _sensitive(concept(p.get("code")) or "Unnamed test", r)},
                {"text": observation_value(p)},
                {"text": when or "Not recorded"},
            ]
        )
    for r in by_kind.get("fhir:Immunization", []):
        p = r.payload
        given = p.get("status") != "not-done"
        note = "" if given else f"Not given: {concept(p.get('statusReason')) or 'no reason recorded'}"
        out.immunisations.append(
            [
                {"html": _sensitive(concept(p.get("vaccineCode")) or "Unnamed vaccine", r)},
                {"text": uk_date(_first(p, "occurrenceDateTime", "recorded")) or "Not recorded"},
                {"text": note or "Given"},
            ]
        )
    for r in by_kind.get("fhir:Encounter", []):
        p = r.payload
        what = next((concept(t) for t in p.get("type") or [] if concept(t)), "") or concept(p.get("class"))
        who = [
            str(_first(part, "individual.display"))
            for part in p.get("participant") or []
            if _first(part, "individual.display")
        ]
        where = _first(p, "serviceProvider.display")
        with_whom = ", ".join([*who, *([str(where)] if where else [])])
        out.visits.append(
            [
                {"html": _sensitive(what.capitalize() if what.islower() else what or "Visit", r)},
                {"text": uk_date(_first(p, "period.start")) or "Not recorded"},
                {"text": with_whom or "Not recorded"},
                {"text": status_word(p.get("status"))},
            ]
        )
    return out


def _medicines(by_kind: dict[str, list[StoredRecord]]) -> list[list[dict[str, Any]]]:
    """Statements, and the prescriptions no statement already covers; one issue of a repeat prescription
    (a request based on another request) is not a medicine of its own."""
    names: dict[str, str] = {}
    for r in by_kind.get("fhir:Medication", []):
        name = concept(r.payload.get("code"))
        if name and r.payload.get("id"):
            names[f"Medication/{r.payload['id']}"] = name
            names[str(r.payload["id"])] = name
    statements = by_kind.get("fhir:MedicationStatement", [])
    requests = by_kind.get("fhir:MedicationRequest", [])
    covered = {
        str(ref.get("reference"))
        for r in statements
        for ref in r.payload.get("basedOn") or []
        if isinstance(ref, dict)
    }
    known = {f"MedicationRequest/{r.payload.get('id')}" for r in requests}
    rows = []
    for r in statements + requests:
        p = r.payload
        if p["resourceType"] == "MedicationRequest":
            based_on = {str(ref.get("reference")) for ref in p.get("basedOn") or [] if isinstance(ref, dict)}
            if f"MedicationRequest/{p.get('id')}" in covered or based_on & known:
                continue
        reference = _first(p, "medicationReference.reference")
        name = concept(p.get("medicationCodeableConcept")) or names.get(str(reference), "")
        name = name or str(_first(p, "medicationReference.display") or "Unnamed medicine")
        dosage = (p.get("dosage") or p.get("dosageInstruction") or [{}])[0]
        since = _first(p, "effectivePeriod.start", "effectiveDateTime", "authoredOn", "dateAsserted")
        rows.append(
            [
                {"html": _sensitive(name, r)},
                {"text": (dosage.get("text") if isinstance(dosage, dict) else "") or "Not recorded"},
                {"text": uk_date(since) or "Not recorded"},
                {"text": status_word(p.get("status"))},
            ]
        )
    return rows


# -- the pages -----------------------------------------------------------------------------------


def _signed_in(v: Vault) -> uuid.UUID | None:
    """The signed-in citizen, if they are still a live citizen; else the session is ended."""
    citizen_id = signed_in_citizen()
    if citizen_id is None:
        return None
    try:
        status = v.citizens.get(citizen_id).status
    except NotFound:
        status = "unknown"
    if status != "active":
        session.clear()
        return None
    return citizen_id


def _to_sign_in() -> Response:
    return redirect(url_for("account.signin", next=request.full_path.rstrip("?")), code=303)  # type: ignore[return-value]


def _health_records(v: Vault, citizen_id: uuid.UUID) -> Iterator[StoredRecord]:
    limit, cursor = runtime().settings.vault.max_page_size, None
    while True:
        page = v.records.list(citizen_id, categories=["health"], limit=limit, cursor=cursor)
        yield from page.items
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


@bp.get("/health")
def health() -> Response | str:
    citizen_id = _signed_in(read_vault())
    if citizen_id is None:
        return _to_sign_in()
    record = health_record(list(_health_records(read_vault(), citizen_id)))
    return render_template("health.html", record=record)


@bp.get("/my-data")
def my_data() -> Response | str:
    if _signed_in(read_vault()) is None:
        return _to_sign_in()
    return render_template("my_data.html", form=DeleteVaultForm(), errors=[])


def _exported(citizen_id: uuid.UUID, what: str) -> None:
    """In the ledger, and committed, before the download starts."""
    events.append_event(
        db(),
        events.RECORDS_EXPORTED,
        actor=f"citizen:{citizen_id}",
        citizen_id=citizen_id,
        details={"what": what},
    )
    db().commit()


def _attachment(name: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"}


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


@bp.get("/my-data/export.json")
def export_json() -> Response:
    citizen_id = _signed_in(vault())
    if citizen_id is None:
        return _to_sign_in()
    _exported(citizen_id, "everything in your vault")
    profile = vault().citizens.get(citizen_id).to_json()
    head = {
        "citizen": profile,
        "identifiers": vault().citizens.identifiers(citizen_id),
        "exported_at": _now(),
    }
    opened = runtime()

    def body() -> Iterator[bytes]:  # streamed, as the CLI does: a vault may not fit in memory
        yield json.dumps(head, ensure_ascii=False)[:-1].encode() + b', "records": ['
        with opened.read_sessions() as reader:
            for n, record in enumerate(opened.open_vault(reader).records.export(citizen_id)):
                yield (b"," if n else b"") + record.to_json_bytes()
            reader.rollback()
        yield b"]}"

    day = dt.datetime.now(dt.UTC).date().isoformat()
    return Response(body(), mimetype="application/json", headers=_attachment(f"pds-export-{day}.json"))


@bp.get("/my-data/health.json")
def export_fhir() -> Response:
    citizen_id = _signed_in(vault())
    if citizen_id is None:
        return _to_sign_in()
    _exported(citizen_id, "your health record (FHIR Bundle)")
    opened = runtime()
    head = {"resourceType": "Bundle", "type": "collection", "timestamp": _now()}

    def body() -> Iterator[bytes]:
        yield json.dumps(head)[:-1].encode() + b', "entry": ['
        with opened.read_sessions() as reader:
            n = 0
            for record in opened.open_vault(reader).records.export(citizen_id):
                if record.category != "health" or not record.kind.startswith("fhir:"):
                    continue
                yield b'%s{"fullUrl":"urn:uuid:%s","resource":%s}' % (
                    b"," if n else b"",
                    str(record.id).encode(),
                    record.payload_json,
                )
                n += 1
            reader.rollback()
        yield b"]}"

    day = dt.datetime.now(dt.UTC).date().isoformat()
    return Response(body(), mimetype=FHIR_JSON, headers=_attachment(f"health-record-{day}.json"))


@bp.post("/my-data/delete")
def delete_vault() -> Response | tuple[str, int] | str:
    citizen_id = _signed_in(vault())
    if citizen_id is None:
        return _to_sign_in()
    form = DeleteVaultForm()
    if not form.validate_on_submit():
        return render_template("my_data.html", form=form, errors=_errors(form)), 400
    if not verify_password(vault().citizens.password_hash(citizen_id), form.password.data or ""):
        form.password.errors = [WRONG_PASSWORD]
        return render_template("my_data.html", form=form, errors=_errors(form)), 400
    v = vault()  # the erasure and its ledger entry commit together, as `pds citizens delete` does
    v.citizens.live(citizen_id)
    events.append_event(
        v.session, events.CITIZEN_ERASED, actor=f"citizen:{citizen_id}", citizen_id=citizen_id
    )
    erased = v.citizens.erase(citizen_id)
    events.forget(v.session, citizen_id)
    db().commit()
    session.clear()
    return render_template("my_data_deleted.html", erased=erased)


def _errors(form: DeleteVaultForm) -> list[dict[str, str]]:
    """For govukErrorSummary: each message linking to its field. A form without a good CSRF token
    (an old page, or not from this site) is told to try again."""
    out = [{"text": str(form.password.errors[0]), "href": "#password"}] if form.password.errors else []
    if form.confirm.errors:
        out.append({"text": str(form.confirm.errors[0]), "href": "#confirm"})
    if form.csrf_token.errors:
        out.append({"text": "This form has expired: try again", "href": "#password"})
    return out
