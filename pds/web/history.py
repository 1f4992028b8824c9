"""The citizen's access history: every entry about them in the ledger, in plain words, each with its proof
and, for a change to a grant, a consent receipt to download."""

from __future__ import annotations

import json
import uuid
from typing import Any

from flask import Blueprint, Response, redirect, render_template, request, url_for

from consent import events, scopes
from consent.ledger.canonical import canonical_json
from consent.ledger.verify import VerificationError, check_entry_document
from pds.errors import NotFound, ValidationError
from pds.web import ledger, read_db, runtime, signed_in_citizen
from pds.web.access_pages import grantees, type_words

bp = Blueprint("history", __name__, url_prefix="/account")
PAGE_SIZE = 50


def _categories(values: Any) -> str:
    return scopes.category_words([str(v) for v in values]) if values else "nothing"


def _who(actor: str, names: dict[str, str]) -> str:
    kind, _, ident = actor.partition(":")
    if kind == "client":
        return names.get(ident, ident)
    if kind == "citizen":
        return "You"
    if kind == "operator":
        return "The pds operator"
    if kind == "connector":
        return f"Your {ident} records service" if ident else "A records service"
    if kind == "guardian":
        return "Your parent or carer"
    if kind == "staff":  # named when pds knows them: "Dr Asha Patel (GP), Riverside Surgery"
        return names.get(actor, f"Staff member {ident}")
    if actor == "oauth:id_token":
        return "An app you signed in to"
    return "pds"


# What the API's reads other than records name themselves in the ledger, in the citizen's words
_THINGS_READ = {
    "profile": "your name and email address",
    "identity": "who you are",
    "userinfo": "your sign-in details",
    "access history": "your access history",
    "consent receipt": "a consent receipt",
}


def describe(item: events.HistoryItem, names: dict[str, str]) -> dict[str, Any]:
    """One entry as the page shows it: when, who, what, under which grant."""
    d = item.details
    who = _who(str(d.get("actor", "")), names)
    grant = d.get("after", d)
    app = names.get(str(grant.get("client_id", "")), str(grant.get("client_id", "an app")))
    seen = _categories(grant.get("categories"))
    if grant.get("resource_types"):
        seen += f" (only {', '.join(type_words(str(t)) for t in grant['resource_types'])})"
    allowed = f"You allowed {app} to see {seen}"
    if item.event == events.GRANT_CREATED and grant.get("emergency"):
        allowed = f"{app} was given emergency access to {seen}, without your consent, for at most one hour"
    what = {
        events.GRANT_CREATED: allowed,
        events.GRANT_NARROWED: f"You narrowed what {app} may see to {_categories(grant.get('categories'))}",
        events.GRANT_REVOKED: f"{app} may no longer see your records (revoked)",
        events.GRANT_EXPIRED: f"{app}'s access ended",
        events.REQUEST_DENIED: f"You refused a request from {app}",
        events.REQUEST_MADE: f"{who} asked to see {_categories(d.get('categories'))}",
        events.EMERGENCY_ACCESS: f"{who} opened your records in an emergency: {d.get('reason', 'no reason')}",
        events.RECORDS_EXPORTED: f"{who} exported your records",
        events.RECORDS_DELIVERED: f"{d.get('count', 0)} records arrived from {d.get('source', 'a source')}",
        events.CODE_REPLAY: "A stolen sign-in code was refused and its access cut off",
        events.TOKEN_REUSE: "An old access key was reused, so that app's access was cut off",
    }.get(item.event)
    if item.event == events.RECORDS_READ:
        count = d.get("count")
        thing = _THINGS_READ.get(str(d.get("what")), d.get("what")) or (
            f"{count} record{'s' if count != 1 else ''}" if count is not None else "records"
        )
        what = f"{who} read {thing}"
        if d.get("categories"):
            what += f" ({_categories(d.get('categories'))})"
    return {
        "index": item.position,
        "time": item.time,
        "what": what or item.event,
        "purpose": d.get("purpose") or grant.get("purpose"),
        "grant_id": d.get("grant_id"),
        "emergency": bool(d.get("emergency")) or item.event == events.EMERGENCY_ACCESS,
        "receipt": item.event in events.GRANT_EVENTS,
    }


@bp.get("/access-history")
def access_history() -> Response | str:
    citizen_id = signed_in_citizen()
    if citizen_id is None:
        return redirect(url_for("account.signin", next=request.full_path.rstrip("?")), code=303)
    before_text = request.args.get("before")
    if before_text is not None and not before_text.isdigit():
        raise ValidationError("must be a whole number", field="before")
    before = int(before_text) if before_text is not None else -1
    items = events.history(read_db(), citizen_id, after=before, limit=PAGE_SIZE, newest_first=True)
    names = _names(items)
    rows = [describe(i, names) for i in items]
    older = items[-1].seq if len(items) == PAGE_SIZE and items[-1].seq > 0 else None
    return render_template("history.html", rows=rows, older=older, ledger_scope=scopes.LEDGER_SCOPE)


def _names(items: list[events.HistoryItem]) -> dict[str, str]:
    """The names of the apps and professionals these entries mention: apps by client_id, professionals
    by "staff:<id>" (as both their grants and their actions name them)."""
    mentioned: set[str] = set()
    for i in items:
        mentioned.add(str(i.details.get("after", i.details).get("client_id") or ""))
        kind, _, ident = str(i.details.get("actor", "")).partition(":")
        mentioned.add(f"{kind}:{ident}" if kind == "staff" else ident)
    return {client_id: who.name for client_id, who in grantees(read_db(), mentioned - {""}).items()}


@bp.get("/access-history/<index>/receipt")
def download_receipt(index: str) -> Response:
    citizen_id: uuid.UUID | None = signed_in_citizen()
    if citizen_id is None:
        return redirect(url_for("account.signin", next=request.path), code=303)  # type: ignore[return-value]
    if not index.isdigit() or len(index) > 19:
        raise NotFound("no grant event of yours at this index", field="index")
    token = ledger.receipt(citizen_id, int(index))
    return Response(
        token,
        mimetype="application/jwt",
        headers={"Content-Disposition": f'attachment; filename="consent-receipt-{index}.jwt"'},
    )


@bp.get("/access-history/<index>")
def entry_page(index: str) -> Response | str:
    """One of the citizen's entries with its proof: checked here as their own software would check it,
    with what they need to check it again themselves."""
    citizen_id = signed_in_citizen()
    if citizen_id is None:
        return redirect(url_for("account.signin", next=request.path), code=303)
    if not index.isdigit() or len(index) > 19:
        raise NotFound("no entry of yours at this index", field="index")
    position = int(index)
    found = events.history(read_db(), citizen_id, position=position, limit=1)
    if not found:
        raise NotFound("no entry of yours at this index", field="index")
    item = found[0]
    head = ledger.covering_head(position)
    proof = ledger.entry_document(read_db(), position, head)
    key = runtime().checkpoints(read_db()).verifier_key()
    try:
        checkpoint, problem = check_entry_document(proof, key), None
    except VerificationError as exc:  # shown, not hidden: the page exists to say whether it checks out
        checkpoint, problem = None, str(exc)
    leaf = json.loads(item.leaf)
    commitment = events.commit(item.salt, canonical_json(item.details)).hex()
    return render_template(
        "history_entry.html",
        row=describe(item, _names(found)),
        checkpoint=checkpoint,
        problem=problem,
        key=key,
        leaf=json.dumps(leaf, indent=2),
        details=json.dumps(item.details, indent=2, ensure_ascii=False),
        salt=item.salt.hex(),
        commitment=commitment,
        commitment_holds=leaf.get("commitment") == commitment,
    )
