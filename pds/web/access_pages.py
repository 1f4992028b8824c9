"""The signed-in citizen's home page (what is new since the last visit, requests waiting for an answer)
and "Who can see your data": every app or professional a citizen has let in, what they see, why and until
when, and a way to stop it."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from sqlalchemy.orm import Session

from consent import scopes
from consent.clients import ClientService
from consent.models import ConsentRequest, Grant
from consent.professionals import STAFF_PREFIX, StaffService
from consent.requests import TYPE_WORDS, RequestService
from consent.services import GrantService
from pds.db import run_transaction, utcnow
from pds.errors import NotFound, ValidationError
from pds.vault.arrivals import arrived_since
from pds.vault.records import StoredRecord
from pds.web import NAVIGATION, db, read_db, read_vault, runtime, signed_in_citizen
from pds.web.forms import Form, NarrowForm

bp = Blueprint("access_pages", __name__)

NO_SUCH_GRANT = "no permission of yours has this id"  # the same words whether it exists or not
SECTIONS = {  # category: (heading, link words, where its page may be: the first the app serves is linked)
    "health": ("Health results and your GP record", "See your health record", ("/account/health",)),
    "case": ("Case updates", "See your cases", ("/account/cases",)),
    "education": (
        "School marks and attendance",
        "See your school records",
        ("/account/school", "/account/education"),
    ),
}


def _sign_in_first() -> Response:
    return redirect(url_for("account.signin", next=request.full_path.rstrip("?")), code=303)  # type: ignore[return-value]


def day(when: dt.datetime | dt.date) -> str:
    return when.strftime("%-d %B %Y")


def until(ends_at: dt.datetime) -> str:
    """A grant to a chosen day ends at the midnight after it: say that day, not the next one."""
    if ends_at.time() == dt.time(0, 0):
        return f"the end of {day(ends_at - dt.timedelta(days=1))}"
    return f"{day(ends_at)}, {ends_at.strftime('%H:%M')} UTC"


def type_words(resource_type: str) -> str:
    """ "Test results (Observation)": what a FHIR type holds, then its name as the record shows it."""
    return f"{TYPE_WORDS[resource_type]} ({resource_type})" if resource_type in TYPE_WORDS else resource_type


def record_range(grant: Grant | ConsentRequest) -> str | None:
    if grant.records_from and grant.records_until:
        return f"Only records from {day(grant.records_from)} to {day(grant.records_until)}"
    if grant.records_from:
        return f"Only records from {day(grant.records_from)} on"
    if grant.records_until:
        return f"Only records up to {day(grant.records_until)}"
    return None


def covers(grant: Grant) -> list[str]:
    """What the grant lets the app see, in the words of the consent screen."""
    approved = scopes.split(grant.scope) or scopes.scopes_for_categories(grant.category_list)
    kept = set(grant.category_list)  # a narrowed grant keeps its scope; its categories say what is left
    approved = [s for s in approved if s not in scopes.CATEGORY_SCOPES or scopes.CATEGORY_SCOPES[s] in kept]
    return [scopes.PLAIN_WORDS[s] for s in approved if s in scopes.PLAIN_WORDS]


def ended(grant: Grant) -> str:
    if grant.status == "revoked" and grant.revoked_at is not None:
        return f"You stopped its access on {day(grant.revoked_at)}"
    return f"Its access ended on {day(min(grant.ends_at, grant.updated_at))}"


@dataclass(frozen=True)
class Grantee:
    """Who a grant lets in, as the citizen sees them: an app and who runs it, or a professional
    ("Dr Asha Patel (GP), Riverside Surgery") and their organisation."""

    name: str
    operator: str = ""
    purpose: str = ""
    professional: bool = False


def grantees(session: Session, client_ids: Iterable[str]) -> dict[str, Grantee]:
    """Each grantee by its grant's client_id: "staff:<id>" for a professional, else an app's client_id."""
    wanted = set(client_ids)
    found = {
        c.client_id: Grantee(c.name, c.operator, c.purpose)
        for c in ClientService(session).all()
        if c.client_id in wanted
    }
    staff_ids = [sid for sid in map(staff_id_of, wanted) if sid is not None]
    if staff_ids:
        service = StaffService(session)
        names = service.names(staff_ids)
        for sid, name in names.items():
            org = service.org(service.get(sid).org_id)
            found[f"{STAFF_PREFIX}{sid}"] = Grantee(name, org.name, professional=True)
    return found


def staff_id_of(client_id: str) -> uuid.UUID | None:
    """The professional a "staff:<id>" grantee names, if it names one."""
    if not client_id.startswith(STAFF_PREFIX):
        return None
    try:
        return uuid.UUID(client_id[len(STAFF_PREFIX) :])
    except ValueError:
        return None


def grantee_name(session: Session, client_id: str) -> str:
    who = grantees(session, [client_id]).get(client_id)
    return who.name if who else client_id


def describe(grant: Grant, known: dict[str, Grantee]) -> dict[str, Any]:
    who = known.get(grant.client_id)
    return {
        "id": str(grant.id),
        "name": who.name if who else grant.client_id,
        "operator": who.operator if who else "",
        "covers": covers(grant),
        "types": [type_words(t) for t in grant.resource_type_list],
        "purpose": grant.purpose or (who.purpose if who else ""),
        "since": day(grant.starts_at),
        "until": until(grant.ends_at),
        "records": record_range(grant),
        "emergency": grant.emergency,
        "professional": bool(who and who.professional),
        "ended": None if grant.is_live(utcnow()) else ended(grant),
    }


@bp.get("/account/access")
def access() -> Response | str:
    me = signed_in_citizen()
    if me is None:
        return _sign_in_first()
    grants = GrantService(read_db()).for_citizen(me)
    known = grantees(read_db(), {g.client_id for g in grants})
    rows = [describe(g, known) for g in grants]
    return render_template(
        "access.html",
        live=[r for r in rows if r["ended"] is None],
        ended=[r for r in rows if r["ended"] is not None],
    )


def _own_grant(me: uuid.UUID, grant_id: str) -> Grant:
    """The citizen's own grant; anything else, malformed or someone else's, is simply not found."""
    try:
        wanted = uuid.UUID(grant_id)
    except ValueError:
        raise NotFound(NO_SUCH_GRANT, field="grant_id") from None
    try:
        grant = GrantService(db()).get(wanted)
    except NotFound:
        grant = None
    if grant is None or grant.citizen_id != me:
        raise NotFound(NO_SUCH_GRANT, field="grant_id")
    return grant


@bp.route("/account/access/<grant_id>/revoke", methods=["GET", "POST"])
def revoke(grant_id: str) -> Response | str:
    me = signed_in_citizen()
    if me is None:
        return _sign_in_first()
    grant = _own_grant(me, grant_id)
    name = grantee_name(db(), grant.client_id)
    if grant.status != "active":  # already stopped (a second click, another tab): nothing left to do
        return redirect(url_for("access_pages.access"), code=303)  # type: ignore[return-value]
    form = Form()
    error = None
    if request.method == "POST":
        if form.validate_on_submit():
            GrantService(db()).revoke(grant.id, citizen_id=me, actor=f"citizen:{me}")
            flash(f"{name} can no longer see your records", "revoked")
            return redirect(url_for("access_pages.access"), code=303)  # type: ignore[return-value]
        error = "This form had expired or did not come from pds. Nothing was changed: try again."
    page = render_template("access_revoke.html", form=form, name=name, grant_id=str(grant.id), error=error)
    return Response(page, status=400 if error else 200)


@bp.route("/account/access/<grant_id>/change", methods=["GET", "POST"])
def change(grant_id: str) -> Response | str:
    """Narrow a grant: fewer categories, or an earlier end. Never wider: that takes a new consent."""
    me = signed_in_citizen()
    if me is None:
        return _sign_in_first()
    grant = _own_grant(me, grant_id)
    name = grantee_name(db(), grant.client_id)
    if not grant.is_live(utcnow()):
        return redirect(url_for("access_pages.access"), code=303)  # type: ignore[return-value]
    form = NarrowForm()
    form.categories.choices = [(c, scopes.category_label(c)) for c in grant.category_list]
    if request.method == "GET":
        form.categories.data = list(grant.category_list)
    errors: list[tuple[str, str]] = []
    if request.method == "POST":
        if not form.validate_on_submit():
            for field, messages in form.errors.items():
                errors.extend((field, m) for m in messages)
            if not errors:
                errors.append(("categories", "This form had expired or did not come from pds: try again"))
        elif not form.categories.data:
            errors.append(("categories", f"Keep at least one, or stop {name}'s access instead"))
        else:
            ends_at = None
            if form.ends_on.data is not None:
                ends_at = dt.datetime.combine(form.ends_on.data + dt.timedelta(days=1), dt.time(), dt.UTC)
                if ends_at >= grant.ends_at:
                    ends_at = None  # not earlier: the end stays as it is
            try:
                GrantService(db()).narrow(
                    grant.id, citizen_id=me, categories=form.categories.data, ends_at=ends_at
                )
            except ValidationError as exc:
                errors.append((exc.field or "categories", exc.detail))
            else:
                flash(f"You changed what {name} can see", "revoked")
                return redirect(url_for("access_pages.access"), code=303)  # type: ignore[return-value]
    page = render_template(
        "access_change.html",
        form=form,
        name=name,
        grant_id=str(grant.id),
        until=until(grant.ends_at),
        errors=errors,
    )
    return Response(page, status=400 if errors else 200)


def _summary(record: StoredRecord) -> str:
    """A few words about one record, from the fields its source most often fills."""
    p = record.payload
    code = p.get("code") if isinstance(p.get("code"), dict) else {}
    codings = code.get("coding") if isinstance(code.get("coding"), list) else []
    for value in (
        code.get("text"),
        codings[0].get("display") if codings and isinstance(codings[0], dict) else None,
        p.get("title"),
        p.get("service_name"),
        p.get("description"),
        p.get("status_notes"),
        p.get("note"),
    ):
        if isinstance(value, str) and value.strip():
            return value.strip()[:120]
    return record.kind.partition(":")[2] or record.kind


def _section_link(paths: tuple[str, ...]) -> str | None:
    served = {rule.rule for rule in current_app.url_map.iter_rules()}
    return next((p for p in paths if p in served), None)


@bp.get("/")
def home() -> Response | str:
    me = signed_in_citizen()
    if me is None:
        return redirect(url_for("account.signin"), code=303)  # type: ignore[return-value]
    last_seen = read_vault().citizens.last_seen(me)
    now = utcnow()
    run_transaction(runtime().sessions, lambda s: runtime().open_vault(s).citizens.seen_now(me, now))
    vault = read_vault()
    arrivals = arrived_since(read_db(), me, last_seen)
    sections = []
    for category, (heading, link_text, paths) in SECTIONS.items():
        newest = [vault.records.get(i) for i in arrivals.newest.get(category, [])]
        sections.append(
            {
                "category": category,
                "heading": heading,
                "count": arrivals.counts.get(category, 0),
                "items": [{"what": _summary(r), "when": day(r.occurred_at)} for r in newest],
                "link": _section_link(paths),
                "link_text": link_text,
            }
        )
    pending = RequestService(read_db(), vault=vault).pending_for(me)
    return render_template(
        "home.html",
        name=vault.citizens.get(me).name,
        pending=len(pending),
        last_seen=last_seen,
        last_seen_words=f"{day(last_seen)}, {last_seen.strftime('%H:%M')} UTC" if last_seen else None,
        total=arrivals.total,
        sections=sections,
        pages=[{"href": href, "text": text} for href, text in NAVIGATION if href != "/"],
    )
