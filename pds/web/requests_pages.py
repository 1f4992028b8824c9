"""Requests (/account/requests): what professionals ask the signed-in citizen to see, and the citizen's
answer to each: approve, approve less, or refuse. An approval becomes a grant on "Who can see my data"."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from markupsafe import Markup
from wtforms.fields import SelectChoice

from consent import scopes
from consent.models import ConsentRequest
from consent.professionals import StaffService
from consent.requests import FHIR_TYPES, RequestService
from pds.errors import ValidationError
from pds.web import db, read_db, read_vault, signed_in_citizen, vault
from pds.web.access_pages import day, record_range, type_words, until
from pds.web.forms import RequestDecisionForm

bp = Blueprint("requests_pages", __name__, url_prefix="/account")

# What became of a request, as the citizen who answered it reads it: (words, GOV.UK tag colour)
OUTCOME_WORDS = {
    "approved": ("You approved", "govuk-tag--green"),
    "approved_with_changes": ("You approved with changes", "govuk-tag--green"),
    "refused": ("You refused", "govuk-tag--red"),
    "expired": ("Ended", "govuk-tag--grey"),
    "revoked": ("You approved, then stopped access", "govuk-tag--grey"),
    "withdrawn": ("Withdrawn by the asker", "govuk-tag--grey"),
}
FORGED = "This form had expired or did not come from pds. Nothing was decided: try again."


def _sign_in_first() -> Response:
    return redirect(url_for("account.signin", next=request.full_path.rstrip("?")), code=303)  # type: ignore[return-value]


def _back_to_list() -> Response:
    return redirect(url_for("requests_pages.requests"), code=303)  # type: ignore[return-value]


def asked_types(req: ConsentRequest) -> list[str]:
    """The record types a citizen may keep: those asked for, or, when none were named, every type a
    health request could cover (so the citizen can still share less)."""
    if req.resource_type_list:
        return [t for t in FHIR_TYPES if t in req.resource_type_list]
    return list(FHIR_TYPES) if "health" in req.category_list else []


def describe(req: ConsentRequest, names: dict[uuid.UUID, str], status: str) -> dict[str, Any]:
    """One request as the citizen reads it: who, what, why, for how long, which records."""
    decided = req.decided_at or req.expires_at
    return {
        "id": str(req.id),
        "who": names.get(req.staff_id, "A professional who no longer uses pds"),
        "categories": [scopes.category_label(c) for c in req.category_list],
        "types": [type_words(t) for t in req.resource_type_list],
        "purpose": req.purpose,
        "days": f"{req.days} day{'s' if req.days != 1 else ''}",
        "records": record_range(req) or "All your records, whatever their date",
        "asked_on": day(req.created_at),
        "answer_by": day(req.expires_at),
        "status": status,
        "outcome": OUTCOME_WORDS.get(status, (status, "govuk-tag--grey")),
        "decided_on": day(decided),
    }


@bp.get("/requests")
def requests() -> Response | str:
    me = signed_in_citizen()
    if me is None:
        return _sign_in_first()
    service = RequestService(read_db(), vault=read_vault())
    mine = [(r, service.status(r)) for r in service.of_citizen(me)]
    names = StaffService(read_db()).names([r.staff_id for r, _ in mine])
    rows = [describe(r, names, status) for r, status in mine]
    return render_template(
        "requests.html",
        pending=[r for r in rows if r["status"] == "pending"],
        past=[r for r in rows if r["status"] != "pending"],
    )


@bp.route("/requests/<request_id>", methods=["GET", "POST"])
def decide(request_id: str) -> Response | str:
    """Approve as asked, approve with less (untick, or end sooner), or refuse. Never more than asked."""
    me = signed_in_citizen()
    if me is None:
        return _sign_in_first()
    service = RequestService(db(), vault=vault())
    req = service.get_for_citizen(request_id, me)  # someone else's, or no such id: the same 404
    status = service.status(req)
    if status != "pending":  # answered already (a second click, another tab): nothing left to do
        return _back_to_list()
    shown = describe(req, StaffService(db()).names([req.staff_id]), status)
    asked_end = dt.datetime.now(dt.UTC) + dt.timedelta(days=req.days)
    form = RequestDecisionForm()
    form.categories.choices = [SelectChoice(c, scopes.category_label(c)) for c in req.category_list]
    form.resource_types.choices = [SelectChoice(t, type_words(t)) for t in asked_types(req)]
    if request.method == "GET":
        form.categories.data = list(req.category_list)
        form.resource_types.data = asked_types(req)
    errors: list[tuple[str, str]] = []
    if request.method == "POST":
        errors = _errors(form) if not form.validate_on_submit() else _answer(service, req, form, me, shown)
        if not errors:
            return _back_to_list()
    page = render_template(
        "request_decide.html",
        form=form,
        req=shown,
        asked_until=until(asked_end),
        errors=errors,
    )
    return Response(page, status=400 if errors else 200)


def _errors(form: RequestDecisionForm) -> list[tuple[str, str]]:
    """The form's errors for the GOV.UK error summary: (the field's id, the words)."""
    out: list[tuple[str, str]] = []
    for field, messages in form.errors.items():
        if field == "csrf_token":
            out.append(("decision", FORGED))
        else:
            out.extend((field, m) for m in messages)
    return out or [("decision", FORGED)]


def _answer(
    service: RequestService,
    req: ConsentRequest,
    form: RequestDecisionForm,
    me: uuid.UUID,
    shown: dict[str, Any],
) -> list[tuple[str, str]]:
    """Record the answer and flash what it did; or the errors that stopped it (nothing decided)."""
    who = shown["who"]
    try:
        if form.decision.data == "refuse":
            service.refuse(req.id, citizen_id=me)
            flash(Markup("You refused the request from {}. Nothing was shared.").format(who), "decided")
            return []
        if form.decision.data == "change":
            ends_at = None
            if form.ends_on.data is not None:
                ends_at = dt.datetime.combine(form.ends_on.data + dt.timedelta(days=1), dt.time(), dt.UTC)
            types = [t for t in FHIR_TYPES if t in (form.resource_types.data or [])]
            grant = service.approve(
                req.id,
                citizen_id=me,
                categories=form.categories.data or [],
                resource_types=types if asked_types(req) else None,
                ends_at=ends_at,
            )
        else:
            grant = service.approve(req.id, citizen_id=me)
    except ValidationError as exc:
        return [(_FIELDS.get(exc.field or "", "decision"), exc.detail[:1].upper() + exc.detail[1:])]
    flash(
        Markup(
            '{} can now see your records until {}. <a class="govuk-notification-banner__link" href="{}">'
            "See who can see your data</a>"
        ).format(who, until(grant.ends_at), url_for("access_pages.access")),
        "decided",
    )
    return []


_FIELDS = {"categories": "categories", "resource_types": "resource_types", "ends_at": "ends_on"}
