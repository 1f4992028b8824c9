"""Sign in and out (a minimal sign-in; the citizen's web pages issue finishes it)."""

from __future__ import annotations

import contextlib
import time
import uuid

from flask import Blueprint, Response, current_app, g, redirect, render_template, request, session, url_for

from pds.accounts import totp_step, verify_password
from pds.errors import PdsError, ValidationError
from pds.web import runtime, vault
from pds.web.forms import CodeForm, Form, SignInForm
from pds.web.throttle import SignInThrottle

bp = Blueprint("account", __name__)

SIGN_IN_FAILED = "The email address or password is not right"
CODE_WRONG = "The code is not right: enter the 6 digits your authenticator app shows now"


def safe_next(target: str | None) -> str:
    """Only a path on this site: never an open redirect."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def throttle() -> SignInThrottle:
    """Failed sign-ins per account, shared by every server process through the database."""
    found = current_app.extensions.get("pds.signin_throttle")
    if found is None:
        rt = runtime()
        found = current_app.extensions["pds.signin_throttle"] = SignInThrottle(
            rt.sessions,
            rt.read_sessions,
            rt.provider.blind_index_key(),
            before_write=_release_request_session,
        )
    return found  # type: ignore[no-any-return]


def _release_request_session() -> None:
    """End the sign-in's transaction before the throttle writes its own (committed even when the sign-in
    fails), which would otherwise wait for this request's write lock on SQLite. Committed, not rolled
    back: a code's time step, marked used just before, must stay used."""
    session_ = g.get("db")
    if session_ is not None:
        session_.commit()


def too_many(seconds: int) -> str:
    return f"Too many attempts: wait {seconds} second{'s' if seconds != 1 else ''} before you try again"


def held_back(key: str, errors: list[str], headers: dict[str, str]) -> bool:
    """Whether this account must wait before it may try again; if so, says for how long (the message and
    Retry-After). A refused attempt is not checked, right or wrong, and not counted: the wait is the point."""
    wait = throttle().wait(key)
    if wait:
        errors.append(too_many(wait))
        headers["Retry-After"] = str(wait)
    return bool(wait)


def count_failure(key: str, errors: list[str]) -> None:
    """Count a failed attempt; say so if it now imposes a wait."""
    wait = throttle().failed(key)
    if wait:
        errors.append(too_many(wait))


@bp.route("/signin", methods=["GET", "POST"])
def signin() -> Response | str:
    form = SignInForm()
    next_url = safe_next(request.args.get("next"))
    errors: list[str] = []
    status = 200
    headers: dict[str, str] = {}
    if form.validate_on_submit():
        email = form.email.data or ""
        if held_back(email, errors, headers):
            status = 429
        else:
            citizen_id = None
            with contextlib.suppress(ValidationError):  # a malformed address is just a failed sign-in
                citizen_id = vault().citizens.find("email", email)
            stored = vault().citizens.password_hash(citizen_id) if citizen_id else None
            if verify_password(stored, form.password.data or "") and citizen_id:
                throttle().succeeded(email)
                if vault().citizens.totp_secret(citizen_id) is not None:
                    session.clear()  # half signed in: the second factor is still to come
                    session["pending_citizen"] = str(citizen_id)
                    session["pending_next"] = next_url
                    return redirect(url_for("account.signin_code"), code=303)
                start_session(citizen_id)
                return redirect(next_url, code=303)  # RFC 9700 s4.12: never 307 after a credential POST
            errors.append(SIGN_IN_FAILED)
            count_failure(email, errors)
            status = 400
    elif request.method == "POST":
        errors.append("Enter your email address and password")
        status = 400
    page = render_template("signin.html", form=form, errors=errors, next=next_url)
    return Response(page, status=status, headers=headers)


def start_session(citizen_id: uuid.UUID) -> None:
    session.clear()  # a new session: nothing set before signing in carries over (fixation)
    session["citizen_id"] = str(citizen_id)
    session["auth_time"] = int(time.time())
    session["epoch"] = vault().citizens.session_epoch(citizen_id) or 0


def code_ok(citizen_id: uuid.UUID, code: str) -> bool:
    """A current code of the citizen's authenticator, not used before."""
    secret = vault().citizens.totp_secret(citizen_id)
    step = totp_step(secret, code) if secret is not None else None
    return step is not None and vault().citizens.use_totp_step(citizen_id, step)


@bp.route("/signin/code", methods=["GET", "POST"])
def signin_code() -> Response | str:
    """The second step of signing in, for a citizen who has set up an authenticator app."""
    pending = session.get("pending_citizen")
    if not pending:
        return redirect(url_for("account.signin"), code=303)  # type: ignore[return-value]
    citizen_id = uuid.UUID(pending)
    form = CodeForm()
    errors: list[str] = []
    status, headers = 200, {}
    if form.validate_on_submit():
        key = f"code:{citizen_id}"
        if held_back(key, errors, headers):
            status = 429
        elif code_ok(citizen_id, form.code.data or ""):
            throttle().succeeded(key)
            next_url = safe_next(session.get("pending_next"))
            start_session(citizen_id)
            return redirect(next_url, code=303)
        else:
            errors.append(CODE_WRONG)
            count_failure(key, errors)
            status = 400
    elif request.method == "POST":
        errors.append("Enter the 6-digit code from your authenticator app")
        status = 400
    return Response(
        render_template("signin_code.html", form=form, errors=errors, action=url_for("account.signin_code")),
        status=status,
        headers=headers,
    )


@bp.post("/signout")
def signout() -> Response:
    if not Form().validate_on_submit():  # a page elsewhere must not sign the citizen out
        raise PdsError("the sign-out form's CSRF token is missing or wrong: reload the page and try again")
    session.clear()
    return redirect(url_for("account.signin"), code=303)
