"""Sign in and out (a minimal sign-in; the citizen's web pages issue finishes it)."""

from __future__ import annotations

import contextlib
import time

from flask import Blueprint, Response, current_app, redirect, render_template, request, session, url_for

from pds.accounts import verify_password
from pds.errors import PdsError, ValidationError
from pds.web import vault
from pds.web.forms import Form, SignInForm
from pds.web.throttle import SignInThrottle

bp = Blueprint("account", __name__)

SIGN_IN_FAILED = "The email address or password is not right"


def safe_next(target: str | None) -> str:
    """Only a path on this site: never an open redirect."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def throttle() -> SignInThrottle:
    """This app's count of failed sign-ins per email address."""
    return current_app.extensions.setdefault("pds.signin_throttle", SignInThrottle())  # type: ignore[no-any-return]


def too_many(seconds: int) -> str:
    return f"Too many attempts: wait {seconds} second{'s' if seconds != 1 else ''} before you try again"


@bp.route("/signin", methods=["GET", "POST"])
def signin() -> Response | str:
    form = SignInForm()
    next_url = safe_next(request.args.get("next"))
    errors: list[str] = []
    status = 200
    headers: dict[str, str] = {}
    if form.validate_on_submit():
        email = form.email.data or ""
        wait = throttle().wait(email)
        if wait:  # refused unchecked, right or wrong, and not counted: the wait is the point
            errors.append(too_many(wait))
            status, headers["Retry-After"] = 429, str(wait)
        else:
            citizen_id = None
            with contextlib.suppress(ValidationError):  # a malformed address is just a failed sign-in
                citizen_id = vault().citizens.find("email", email)
            stored = vault().citizens.password_hash(citizen_id) if citizen_id else None
            if verify_password(stored, form.password.data or "") and citizen_id:
                throttle().succeeded(email)
                session.clear()  # a new session: nothing set before signing in carries over (fixation)
                session["citizen_id"] = str(citizen_id)
                session["auth_time"] = int(time.time())
                return redirect(next_url, code=303)  # RFC 9700 s4.12: never 307 after a credential POST
            errors.append(SIGN_IN_FAILED)
            wait = throttle().failed(email)
            if wait:
                errors.append(too_many(wait))
            status = 400
    elif request.method == "POST":
        errors.append("Enter your email address and password")
        status = 400
    page = render_template("signin.html", form=form, errors=errors, next=next_url)
    return Response(page, status=status, headers=headers)


@bp.post("/signout")
def signout() -> Response:
    if not Form().validate_on_submit():  # a page elsewhere must not sign the citizen out
        raise PdsError("the sign-out form's CSRF token is missing or wrong: reload the page and try again")
    session.clear()
    return redirect(url_for("account.signin"), code=303)
