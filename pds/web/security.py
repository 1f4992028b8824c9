"""Account security: set up or turn off a second factor (an authenticator app, TOTP with a QR code), and
sign out everywhere. Each change asks for the password again."""

from __future__ import annotations

import base64
import io

import pyotp
import segno
from flask import Blueprint, Response, redirect, render_template, request, session, url_for

from pds.accounts import verify_password
from pds.web import signed_in_citizen, vault
from pds.web.account import code_ok
from pds.web.forms import PasswordCodeForm, PasswordForm

bp = Blueprint("security", __name__, url_prefix="/account/security")
ISSUER = "pds"
WRONG_PASSWORD = "The password is not right"  # noqa: S105 (a message)


@bp.get("")
def security() -> Response | str:
    me = signed_in_citizen()
    if me is None:
        return redirect(url_for("account.signin", next=request.path), code=303)  # type: ignore[return-value]
    on = vault().citizens.totp_secret(me) is not None
    done = session.pop("security_done", None)
    return render_template("security.html", two_step=on, done=done, form=PasswordForm())


@bp.route("/two-step", methods=["GET", "POST"])
def two_step() -> Response | str:
    """Set up: a new secret shown as a QR code and as text; saved only once a code from it checks out."""
    me = signed_in_citizen()
    if me is None:
        return redirect(url_for("account.signin", next=request.path), code=303)  # type: ignore[return-value]
    form = PasswordCodeForm()
    secret = session.get("totp_pending")
    if request.method == "GET" or not secret:
        secret = session["totp_pending"] = pyotp.random_base32()
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        if not form.validate_on_submit():
            errors["code"] = "Enter your password and the 6-digit code your app shows"
        elif not verify_password(vault().citizens.password_hash(me), form.password.data or ""):
            errors["password"] = WRONG_PASSWORD
        elif not pyotp.TOTP(secret).verify((form.code.data or "").strip(), valid_window=1):
            errors["code"] = "The code is not right: check the app shows pds and enter the code it shows now"
        else:
            vault().citizens.set_totp_secret(me, secret)
            session.pop("totp_pending", None)
            session["security_done"] = (
                "Two-step verification is on: you will be asked for a code when you sign in"
            )
            return redirect(url_for("security.security"), code=303)  # type: ignore[return-value]
        status = 400
    email = vault().citizens.get(me).email or "you"
    uri = pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=ISSUER)
    buffer = io.BytesIO()
    segno.make(uri, error="m").save(buffer, kind="svg", scale=5, title="QR code for your authenticator app")
    qr = "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode()
    grouped = " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
    page = render_template("security_two_step.html", form=form, qr=qr, secret=grouped, errors=errors)
    return Response(page, status=status)


@bp.post("/two-step/off")
def two_step_off() -> Response:
    me = signed_in_citizen()
    if me is None:
        return redirect(url_for("account.signin"), code=303)  # type: ignore[return-value]
    form = PasswordCodeForm()
    if (
        form.validate_on_submit()
        and verify_password(vault().citizens.password_hash(me), form.password.data or "")
        and code_ok(me, form.code.data or "")
    ):
        vault().citizens.set_totp_secret(me, None)
        session["security_done"] = "Two-step verification is off"
    else:
        session["security_done"] = "Nothing changed: the password or the code was not right"
    return redirect(url_for("security.security"), code=303)  # type: ignore[return-value]


@bp.post("/sign-out-everywhere")
def sign_out_everywhere() -> Response:
    me = signed_in_citizen()
    if me is None:
        return redirect(url_for("account.signin"), code=303)  # type: ignore[return-value]
    form = PasswordForm()
    if not form.validate_on_submit() or not verify_password(
        vault().citizens.password_hash(me), form.password.data or ""
    ):
        session["security_done"] = "Nothing changed: the password was not right"
        return redirect(url_for("security.security"), code=303)  # type: ignore[return-value]
    vault().citizens.end_all_sessions(me)
    session.clear()
    return redirect(url_for("account.signin"), code=303)  # type: ignore[return-value]
