"""The professionals' portal: ask a patient for consent, follow the request, read what was granted.

The portal signs professionals in through pds's own OpenID Connect provider, as any relying party would:
authorization code with PKCE, the code exchanged at the token endpoint over HTTP with Authlib's client,
and the id_token checked against the provider's keys. Every view then checks the professional is still
active (a revoked member of staff is out at once) and, for records, that the patient's grant is live.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Callable
from functools import wraps
from typing import Any

import jwt
from authlib.integrations.requests_client import OAuth2Session
from flask import Blueprint, Response, flash, g, jsonify, redirect, render_template, request, session, url_for
from jwt.algorithms import ECAlgorithm
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from consent import scopes
from consent.clients import ClientService
from consent.models import ConsentRequest, OAuthClient, SigningKey, StaffMember
from consent.professionals import CLINICIANS, ORG_WORDS, ROLE_CATEGORIES, ROLE_WORDS
from consent.requests import (
    STATUS_WORDS,
    TYPE_WORDS,
    AccessRefused,
    ProfessionalReads,
    RequestService,
    check_ask,
)
from consent.scopes import STAFF_CATEGORY_WORDS
from consent.signing import ALG
from pds.accounts import generate_password
from pds.errors import NotFound, PdsError, ValidationError
from pds.vault.records import StoredRecord
from pds.web import db, runtime, vault
from pds.web.access_pages import _summary, day
from pds.web.account import safe_next
from pds.web.portal_forms import EmergencyForm, NewStaffForm, RequestForm, role_choices
from pds.web.records_pages import health_record
from pds.web.staff_signin import staff_service

bp = Blueprint("portal", __name__, url_prefix="/portal")
PORTAL_CLIENT = "pds-portal"
PORTAL_SCOPE = "openid profile " + scopes.STAFF_SCOPE
CALLBACK = "/portal/callback"
EXCHANGE_TIMEOUT_S = 10
TAG_COLOURS = {
    "pending": "blue",
    "approved": "green",
    "approved_with_changes": "turquoise",
    "refused": "red",
    "expired": "grey",
    "revoked": "orange",
    "withdrawn": "grey",
}


def issuer() -> str:
    return runtime().settings.server.public_url


def emergency_enabled() -> bool:
    return runtime().settings.professionals.emergency_access


# -- signing in, as an OpenID Connect relying party ---------------------------------------------------


def _ensure_portal_client(redirect_uri: str) -> None:
    """The portal is a public client of the provider; its redirect URI follows the configured issuer."""
    with runtime().sessions() as s:
        row = s.scalar(select(OAuthClient).where(OAuthClient.client_id == PORTAL_CLIENT))
        try:
            if row is None:
                ClientService(s).add(
                    name="pds for professionals",
                    operator="pds",
                    purpose="Sign professionals in to the portal",
                    verified=True,
                    client_id=PORTAL_CLIENT,
                    public=True,
                    redirect_uris=[redirect_uri],
                    scope=PORTAL_SCOPE,
                    grant_types=["authorization_code"],
                    users="staff",
                )
            elif redirect_uri not in row.redirect_uri_list:
                row.redirect_uris = json.dumps([*row.redirect_uri_list, redirect_uri])
            s.commit()
        except IntegrityError:  # another worker registered it first
            s.rollback()


def _client() -> OAuth2Session:
    return OAuth2Session(
        client_id=PORTAL_CLIENT,
        scope=PORTAL_SCOPE,
        redirect_uri=issuer() + CALLBACK,
        code_challenge_method="S256",
        token_endpoint_auth_method="none",  # noqa: S106 (a method name: a public client, PKCE only)
    )


@bp.get("/login")
def login() -> Response:
    _ensure_portal_client(issuer() + CALLBACK)
    state, nonce, verifier = secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_urlsafe(48)
    session["portal_login"] = {
        "state": state,
        "nonce": nonce,
        "verifier": verifier,
        "next": safe_next(request.args.get("next") or "/portal"),
    }
    url, _ = _client().create_authorization_url(
        issuer() + "/oauth/authorize", state=state, nonce=nonce, code_verifier=verifier
    )
    return redirect(url, code=303)  # type: ignore[return-value]


class SignInFailed(PdsError):
    status = 400
    slug = "sign-in-failed"
    title = "Sign-in failed"


@bp.get("/callback")
def callback() -> Response:
    pending = session.pop("portal_login", None)
    if not pending or request.args.get("state") != pending["state"]:
        raise SignInFailed("this sign-in was not started here, or has already finished: start again")
    if request.args.get("iss") != issuer():  # RFC 9207: the answer comes from our own provider
        raise SignInFailed("the sign-in answer did not come from this pds")
    if "error" in request.args:
        raise SignInFailed(
            f"the provider refused: {request.args.get('error_description') or request.args['error']}"
        )
    try:
        token = _client().fetch_token(
            issuer() + "/oauth/token",
            grant_type="authorization_code",
            code=request.args.get("code", ""),
            code_verifier=pending["verifier"],
            timeout=EXCHANGE_TIMEOUT_S,
        )
    except Exception as exc:  # Authlib's OAuthError, or the network: either way, no sign-in
        raise SignInFailed(f"the code could not be exchanged: {exc}") from None
    claims = _check_id_token(str(token.get("id_token", "")), pending["nonce"])
    member = staff_service().active(uuid.UUID(claims["sub"]))
    if member is None:
        raise SignInFailed("this member of staff's access has been revoked")
    for key in ("portal_staff", "portal_epoch"):
        session.pop(key, None)
    session["portal_staff"] = str(member.id)
    session["portal_epoch"] = member.session_epoch
    return redirect(pending["next"], code=303)  # type: ignore[return-value]


def _check_id_token(id_token: str, nonce: str) -> dict[str, Any]:
    """OIDC Core s3.1.3.7: signed by the provider's key, for this client, from this issuer, this nonce."""
    try:
        kid = jwt.get_unverified_header(id_token).get("kid")
        row = db().scalar(select(SigningKey).where(SigningKey.kid == kid))
        if row is None:
            raise SignInFailed("the id_token was signed with an unknown key")
        claims = jwt.decode(
            id_token,
            ECAlgorithm.from_jwk(row.public_jwk),
            algorithms=[ALG],
            audience=PORTAL_CLIENT,
            issuer=issuer(),
            options={"require": ["sub", "exp", "iat", "aud", "iss"]},
        )
    except jwt.PyJWTError as exc:
        raise SignInFailed(f"the id_token does not verify: {exc}") from None
    if claims.get("nonce") != nonce:
        raise SignInFailed("the id_token is not for this sign-in (nonce)")
    return claims


@bp.post("/signout")
def signout() -> Response:
    from pds.web.forms import Form

    if not Form().validate_on_submit():
        raise PdsError("the sign-out form's CSRF token is missing or wrong: reload the page and try again")
    for key in ("portal_staff", "portal_epoch", "op_staff", "op_staff_epoch", "op_staff_auth_time"):
        session.pop(key, None)
    return redirect(url_for("portal.signed_out"), code=303)  # type: ignore[return-value]


@bp.get("/signed-out")
def signed_out() -> str:
    return render_template("portal/signed_out.html")


def portal_member() -> StaffMember | None:
    if "portal_member" in g:
        return g.portal_member  # type: ignore[no-any-return]
    value = session.get("portal_staff")
    member = None
    try:
        if value:
            member = staff_service().active(uuid.UUID(value), session.get("portal_epoch", -1))
    except ValueError:
        member = None
    g.portal_member = member
    return member


def staff_only(view: Callable[..., Any]) -> Callable[..., Any]:
    """Every portal page: a professional signed in through the provider, still active now."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if portal_member() is None:
            return redirect(url_for("portal.login", next=request.full_path.rstrip("?")), code=303)
        return view(*args, **kwargs)

    return wrapper


def _render(template: str, status: int = 200, **context: Any) -> Response:
    member = portal_member()
    org = staff_service().org(member.org_id) if member else None
    page = render_template(
        template, portal_member=member, org=org, role_words=ROLE_WORDS, org_words=ORG_WORDS, **context
    )
    return Response(page, status=status)


@bp.app_context_processor
def _navigation() -> dict[str, Any]:
    def portal_navigation(path: str) -> list[dict[str, Any]]:
        member = portal_member() if path.startswith("/portal") else None
        if member is None:
            return []
        items = [("/portal", "Requests")]
        if ROLE_CATEGORIES[member.role]:
            items.append(("/portal/requests/new", "Ask a patient"))
        if member.role in CLINICIANS and emergency_enabled():
            items.append(("/portal/emergency", "Emergency access"))
        if member.role == "admin":
            items.append(("/portal/admin", "Staff and reviews"))
        return [{"href": h, "text": t, "active": path == h} for h, t in items]

    return {"portal_navigation": portal_navigation}


# -- requests ------------------------------------------------------------------------------------------


def _requests() -> RequestService:
    return RequestService(db(), vault=vault())


def _row(req: ConsentRequest, names: dict[uuid.UUID, str]) -> dict[str, Any]:
    status = _requests().status(req)
    return {
        "id": str(req.id),
        "patient": f"NHS number ending {req.patient_hint}",
        "purpose": req.purpose,
        "asked_by": names.get(req.staff_id, ""),
        "what": ", ".join(STAFF_CATEGORY_WORDS.get(c, c) for c in req.category_list),
        "types": ", ".join(TYPE_WORDS.get(t, t) for t in req.resource_type_list),
        "days": req.days,
        "sent": day(req.created_at),
        "status": status,
        "status_words": STATUS_WORDS[status],
        "colour": TAG_COLOURS[status],
        "readable": status in ("approved", "approved_with_changes"),
    }


@bp.get("")
@staff_only
def home() -> Response:
    member = portal_member()
    assert member is not None
    reqs = _requests().of_org(member.org_id)
    names = staff_service().names([r.staff_id for r in reqs])
    return _render(
        "portal/home.html", rows=[_row(r, names) for r in reqs], can_ask=bool(ROLE_CATEGORIES[member.role])
    )


@bp.route("/requests/new", methods=["GET", "POST"])
@staff_only
def new_request() -> Response:
    member = portal_member()
    assert member is not None
    form = RequestForm()
    form.categories.choices = [(c, STAFF_CATEGORY_WORDS[c]) for c in ROLE_CATEGORIES[member.role]]
    form.resource_types.choices = list(TYPE_WORDS.items()) if "health" in ROLE_CATEGORIES[member.role] else []
    if not form.categories.choices:
        raise AccessRefused(f"a {ROLE_WORDS[member.role].lower()} does not ask patients for records")
    errors: list[dict[str, str]] = []
    if request.method == "POST":
        if form.validate_on_submit():
            try:
                asked = check_ask(
                    member,
                    purpose=form.purpose.data or "",
                    categories=form.categories.data or [],
                    resource_types=form.resource_types.data or [],
                    days=int(form.days.data or 0),
                    records_from=form.records_from.data,
                    records_until=form.records_until.data,
                )
                req = _requests().make(member, form.nhs_number.data or "", asked)
            except ValidationError as exc:
                errors.append({"text": exc.detail, "href": f"#{exc.field or 'nhs_number'}"})
            else:
                flash("Request sent. You will see here when the patient answers.", "sent")
                return redirect(url_for("portal.request_page", request_id=req.id), code=303)  # type: ignore[return-value]
        else:
            errors = [{"text": m, "href": f"#{f}"} for f, ms in form.errors.items() for m in ms]
    return _render("portal/new_request.html", status=400 if errors else 200, form=form, errors=errors)


def _own_request(request_id: str) -> ConsentRequest:
    member = portal_member()
    assert member is not None
    return _requests().get_for_org(request_id, member.org_id)


@bp.get("/requests/<request_id>")
@staff_only
def request_page(request_id: str) -> Response:
    req = _own_request(request_id)
    names = staff_service().names([req.staff_id])
    return _render("portal/request.html", row=_row(req, names), req=req)


@bp.get("/requests/<request_id>/status")
@staff_only
def request_status(request_id: str) -> Response:
    """For the request page's script: the status as it stands now (the page shows it live)."""
    row = _row(_own_request(request_id), {})
    return jsonify(
        status=row["status"], words=row["status_words"], colour=row["colour"], readable=row["readable"]
    )


@bp.get("/requests/<request_id>/records")
@staff_only
def request_records(request_id: str) -> Response:
    member = portal_member()
    assert member is not None
    req = _own_request(request_id)
    if req.staff_id != member.id:  # a colleague's request: the grant is theirs, not the organisation's
        raise AccessRefused("the patient granted this to the colleague who asked, not to you")
    return _records_view(member, req.grant_id, back=url_for("portal.request_page", request_id=req.id))


def _records_view(member: StaffMember, grant_id: uuid.UUID | None, *, back: str) -> Response:
    grant, records = ProfessionalReads(db(), vault=vault()).read(member, grant_id)
    health = [r for r in records if r.category == "health"]
    others = [r for r in records if r.category != "health"]
    return _render(
        "portal/records.html",
        grant=grant,
        record=health_record(health) if "health" in grant.category_list else None,
        others=[_other(r) for r in others],
        covers=", ".join(STAFF_CATEGORY_WORDS.get(c, c) for c in grant.category_list),
        types=", ".join(TYPE_WORDS.get(t, t) for t in grant.resource_type_list),
        until=f"{day(grant.ends_at)}, {grant.ends_at.strftime('%H:%M')} UTC",
        back=back,
    )


def _other(r: StoredRecord) -> list[dict[str, str]]:
    return [
        {"text": _summary(r)},
        {"text": r.kind.partition(":")[2] or r.kind},
        {"text": day(r.occurred_at)},
    ]


# -- emergency access ------------------------------------------------------------------------------------


@bp.route("/emergency", methods=["GET", "POST"])
@staff_only
def emergency() -> Response:
    member = portal_member()
    assert member is not None
    if not emergency_enabled():
        raise NotFound("emergency access is not enabled on this pds", field="emergency")
    if member.role not in CLINICIANS:
        raise AccessRefused("only a GP or practice nurse may use emergency access")
    form = EmergencyForm()
    errors: list[dict[str, str]] = []
    if request.method == "POST":
        if form.validate_on_submit():
            try:
                grant = ProfessionalReads(db(), vault=vault()).emergency(
                    member, form.nhs_number.data or "", form.reason.data or ""
                )
            except (ValidationError, NotFound) as exc:
                errors.append({"text": exc.detail, "href": f"#{exc.field or 'nhs_number'}"})
            else:
                return redirect(url_for("portal.emergency_records", grant_id=grant.id), code=303)  # type: ignore[return-value]
        else:
            errors = [{"text": m, "href": f"#{f}"} for f, ms in form.errors.items() for m in ms]
    return _render("portal/emergency.html", status=400 if errors else 200, form=form, errors=errors)


@bp.get("/emergency/<grant_id>")
@staff_only
def emergency_records(grant_id: str) -> Response:
    member = portal_member()
    assert member is not None
    try:
        wanted = uuid.UUID(grant_id)
    except ValueError:
        raise AccessRefused("you hold no permission to read this patient's records") from None
    return _records_view(member, wanted, back=url_for("portal.home"))


# -- the organisation's administrator -------------------------------------------------------------------


def _admin() -> StaffMember:
    member = portal_member()
    assert member is not None
    if member.role != "admin":
        raise AccessRefused("only your organisation's administrator manages staff")
    return member


@bp.route("/admin", methods=["GET", "POST"])
@staff_only
def admin() -> Response:
    member = _admin()
    org = staff_service().org(member.org_id)
    form = NewStaffForm()
    form.role.choices = role_choices(org.kind)
    errors: list[dict[str, str]] = []
    created = None
    if request.method == "POST":
        if form.validate_on_submit():
            password = generate_password()
            try:
                new = staff_service().add(
                    org_id=org.id,
                    name=form.name.data or "",
                    email=form.email.data or "",
                    role=form.role.data or "",
                    password=password,
                )
            except PdsError as exc:
                errors.append({"text": exc.detail, "href": f"#{exc.field or 'name'}"})
            else:
                created = {"name": new.name, "email": new.email, "password": password}
        else:
            errors = [{"text": m, "href": f"#{f}"} for f, ms in form.errors.items() for m in ms]
    staff = staff_service().of_org(org.id)
    uses = ProfessionalReads(db(), vault=vault()).emergency_uses(org.id)
    return _render(
        "portal/admin.html",
        status=400 if errors else 200,
        form=form,
        errors=errors,
        created=created,
        staff=staff,
        uses=[{**u, "at": f"{day(u['at'])}, {u['at'].strftime('%H:%M')}"} for u in uses],
        me=member.id,
    )


@bp.post("/admin/staff/<staff_id>/revoke")
@staff_only
def revoke_staff(staff_id: str) -> Response:
    member = _admin()
    from pds.web.forms import Form

    if not Form().validate_on_submit():
        raise PdsError("the form's CSRF token is missing or wrong: reload the page and try again")
    try:
        target = staff_service().get(uuid.UUID(staff_id))
    except (ValueError, NotFound):
        target = None
    if target is None or target.org_id != member.org_id or target.id == member.id:
        raise NotFound("no member of your staff has this id", field="staff_id")
    staff_service().revoke(target.id)
    flash(f"{target.name} can no longer sign in or read any record", "revoked")
    return redirect(url_for("portal.admin"), code=303)  # type: ignore[return-value]
