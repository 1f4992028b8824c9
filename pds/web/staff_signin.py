"""Professionals sign in to pds's own OpenID provider: a password, then always a second factor.

A professional without an authenticator app sets one up here, at their first sign-in, before anything
else. What this sign-in opens is the authorization endpoint (for the portal or a GP system), never the
portal directly: the portal is an OpenID Connect client like any other.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import time
import uuid

import pyotp
import segno
from flask import Blueprint, Response, redirect, render_template, request, session, url_for

from consent.models import StaffMember
from consent.professionals import StaffService
from pds.accounts import totp_step
from pds.web import db, runtime
from pds.web.account import CODE_WRONG, SIGN_IN_FAILED, count_failure, held_back, safe_next, throttle
from pds.web.forms import CodeForm, SignInForm

bp = Blueprint("staff_signin", __name__, url_prefix="/staff")
ISSUER = "pds (professionals)"
PENDING = ("op_pending_staff", "op_pending_next")


def staff_service() -> StaffService:
    return StaffService(db(), provider=runtime().provider)


def signed_in_staff() -> StaffMember | None:
    """The professional signed in to the provider in this browser, if they may still act."""
    value = session.get("op_staff")
    try:
        staff_id = uuid.UUID(value) if value else None
    except ValueError:
        return None
    if staff_id is None:
        return None
    return staff_service().active(staff_id, session.get("op_staff_epoch", -1))


def _pending() -> StaffMember | None:
    value = session.get("op_pending_staff")
    try:
        return staff_service().active(uuid.UUID(value)) if value else None
    except ValueError:
        return None


def _finish(member: StaffMember) -> Response:
    next_url = safe_next(session.get("op_pending_next"))
    for key in PENDING:
        session.pop(key, None)
    # The portal's login state (state, nonce, verifier) must survive; a citizen's sign-in must not.
    for key in ("citizen_id", "epoch", "auth_time", "pending_citizen", "pending_next", "totp_pending"):
        session.pop(key, None)
    session["op_staff"] = str(member.id)
    session["op_staff_epoch"] = member.session_epoch
    session["op_staff_auth_time"] = int(time.time())
    return redirect(next_url, code=303)  # type: ignore[return-value]


@bp.route("/signin", methods=["GET", "POST"])
def signin() -> Response | str:
    form = SignInForm()
    errors: list[str] = []
    status, headers = 200, {}
    if form.validate_on_submit():
        email = f"staff:{(form.email.data or '').strip().lower()}"
        if held_back(email, errors, headers):
            status = 429
        else:
            member = staff_service().authenticate(form.email.data or "", form.password.data or "")
            if member is not None:
                throttle().succeeded(email)
                session["op_pending_staff"] = str(member.id)
                session["op_pending_next"] = safe_next(request.args.get("next"))
                step = "staff_signin.code" if member.totp_secret else "staff_signin.enrol"
                return redirect(url_for(step), code=303)  # type: ignore[return-value]
            errors.append(SIGN_IN_FAILED)
            count_failure(email, errors)
            status = 400
    elif request.method == "POST":
        errors.append("Enter your work email address and password")
        status = 400
    page = render_template("staff_signin.html", form=form, errors=errors, next=request.args.get("next"))
    return Response(page, status=status, headers=headers)


def _code_ok(member: StaffMember, code: str) -> bool:
    """A current code of the professional's authenticator, never one used before."""
    secret = staff_service().totp_secret(member)
    step = totp_step(secret, code) if secret is not None else None
    return step is not None and staff_service().use_totp_step(member, step)


@bp.route("/signin/code", methods=["GET", "POST"])
def code() -> Response | str:
    member = _pending()
    if member is None or member.totp_secret is None:
        return redirect(url_for("staff_signin.signin"), code=303)  # type: ignore[return-value]
    form = CodeForm()
    errors: list[str] = []
    status, headers = 200, {}
    if form.validate_on_submit():
        key = f"staff-code:{member.id}"
        if held_back(key, errors, headers):
            status = 429
        elif _code_ok(member, form.code.data or ""):
            throttle().succeeded(key)
            return _finish(member)
        else:
            errors.append(CODE_WRONG)
            count_failure(key, errors)
            status = 400
    elif request.method == "POST":
        errors.append("Enter the 6-digit code from your authenticator app")
        status = 400
    page = render_template(
        "signin_code.html",
        form=form,
        errors=errors,
        action=url_for("staff_signin.code"),
        layout="portal/base.html",
    )
    return Response(page, status=status, headers=headers)


@bp.route("/signin/enrol", methods=["GET", "POST"])
def enrol() -> Response | str:
    """The first sign-in: set up the second factor, which every professional must have."""
    member = _pending()
    if member is None:
        return redirect(url_for("staff_signin.signin"), code=303)  # type: ignore[return-value]
    if member.totp_secret is not None:
        return redirect(url_for("staff_signin.code"), code=303)  # type: ignore[return-value]
    secret = session.get("op_totp_pending")
    if request.method == "GET" or not secret:
        secret = session["op_totp_pending"] = pyotp.random_base32()
    form = CodeForm()
    errors: list[str] = []
    status = 200
    if request.method == "POST":
        if form.validate_on_submit() and pyotp.TOTP(secret).verify(
            (form.code.data or "").strip(), valid_window=1
        ):
            staff_service().set_totp_secret(member, secret)
            staff_service().use_totp_step(member, pyotp.TOTP(secret).timecode(dt.datetime.now(dt.UTC)))
            session.pop("op_totp_pending", None)
            return _finish(member)
        errors.append("The code is not right: check the app shows pds and enter the code it shows now")
        status = 400
    uri = pyotp.TOTP(secret).provisioning_uri(name=member.email, issuer_name=ISSUER)
    buffer = io.BytesIO()
    segno.make(uri, error="m").save(buffer, kind="svg", scale=5, title="QR code for your authenticator app")
    qr = "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode()
    grouped = " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
    page = render_template("staff_enrol.html", form=form, qr=qr, secret=grouped, errors=errors)
    return Response(page, status=status)
