"""Sign in and out (a minimal sign-in; the citizen's web pages issue finishes it)."""

from __future__ import annotations

import contextlib
import time

from flask import Blueprint, Response, redirect, render_template, request, session, url_for

from pds.accounts import verify_password
from pds.errors import ValidationError
from pds.web import vault
from pds.web.forms import SignInForm

bp = Blueprint("account", __name__)

SIGN_IN_FAILED = "The email address or password is not right"


def safe_next(target: str | None) -> str:
    """Only a path on this site: never an open redirect."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


@bp.route("/signin", methods=["GET", "POST"])
def signin() -> Response | str:
    form = SignInForm()
    next_url = safe_next(request.args.get("next"))
    error = None
    if form.validate_on_submit():
        citizen_id = None
        with contextlib.suppress(ValidationError):  # a malformed address is just a failed sign-in
            citizen_id = vault().citizens.find("email", form.email.data or "")
        stored = vault().citizens.password_hash(citizen_id) if citizen_id else None
        if verify_password(stored, form.password.data or "") and citizen_id:
            session.clear()
            session["citizen_id"] = str(citizen_id)
            session["auth_time"] = int(time.time())
            return redirect(next_url, code=303)  # RFC 9700 s4.12: never 307 after a credential POST
        error = SIGN_IN_FAILED
    elif request.method == "POST":
        error = "Enter your email address and password"
    status = 400 if error else 200
    return Response(render_template("signin.html", form=form, error=error, next=next_url), status=status)


@bp.post("/signout")
def signout() -> Response:
    session.clear()
    return redirect(url_for("account.signin"), code=303)
