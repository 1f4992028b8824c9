"""Flask blueprints: the only place, with pds/__init__.py and pds/cli.py, that imports Flask."""

from __future__ import annotations

import secrets
import uuid

from flask import Flask, Response, current_app, g, request, session
from sqlalchemy.orm import Session

from pds.runtime import Runtime
from pds.vault import Vault


def runtime() -> Runtime:
    return current_app.extensions["pds"]  # type: ignore[no-any-return]


def db() -> Session:
    """The request's database session: committed if the response is a success, else rolled back."""
    if "db" not in g:
        g.db = runtime().sessions()
    return g.db  # type: ignore[no-any-return]


def read_db() -> Session:
    """A session that only reads (the API's read path): never committed, and no SQLite write lock."""
    if "read_db" not in g:
        g.read_db = runtime().read_sessions()
    return g.read_db  # type: ignore[no-any-return]


def read_vault() -> Vault:
    if "read_vault" not in g:
        g.read_vault = runtime().open_vault(read_db())
    return g.read_vault  # type: ignore[no-any-return]


def vault() -> Vault:
    if "vault" not in g:
        g.vault = runtime().open_vault(db())
    return g.vault  # type: ignore[no-any-return]


def signed_in_citizen() -> uuid.UUID | None:
    """The citizen this browser is signed in as, if the session is still theirs: not erased, and not from
    before they signed out everywhere."""
    if "signed_in" in g:
        return g.signed_in  # type: ignore[no-any-return]
    value = session.get("citizen_id")
    try:
        citizen_id = uuid.UUID(value) if value else None
    except ValueError:
        citizen_id = None
    if citizen_id is not None:
        epoch = runtime().open_vault(read_db()).citizens.session_epoch(citizen_id)
        if epoch is None or epoch != session.get("epoch", 0):
            citizen_id = None
    g.signed_in = citizen_id
    return citizen_id


def csp_nonce() -> str:
    """This response's nonce for the few inline scripts a page may run."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(18)
    return g.csp_nonce  # type: ignore[no-any-return]


def page_policy(nonce: str) -> str:
    """A strict Content-Security-Policy for pages: our own files, and inline scripts only by nonce."""
    return (
        "default-src 'self'; "
        f"script-src 'self' 'nonce-{nonce}'; "
        "style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    )


def install_request_hooks(app: Flask) -> None:
    @app.after_request
    def _headers(response: Response) -> Response:
        """No page may be framed (RFC 9700 s4.16); OAuth and API answers are never cached."""
        response.headers.setdefault("X-Frame-Options", "DENY")
        if response.mimetype == "text/html":
            response.headers["Content-Security-Policy"] = page_policy(csp_nonce())
        response.headers.setdefault("Content-Security-Policy", "frame-ancestors 'none'")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        if request.path.startswith(("/oauth/", "/api/")):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.after_request
    def _finish(response: Response) -> Response:
        session_ = g.pop("db", None)
        if session_ is not None:
            try:
                if response.status_code < 400:
                    session_.commit()
                else:
                    session_.rollback()
            finally:
                session_.close()
        return response

    @app.teardown_request
    def _abandon(exc: BaseException | None) -> None:
        reader = g.pop("read_db", None)
        if reader is not None:
            reader.rollback()
            reader.close()
        session_ = g.pop("db", None)
        if session_ is not None:
            session_.rollback()
            session_.close()


NAVIGATION = (  # (path, words): the signed-in citizen's pages
    ("/account/access", "Who can see my data"),
    ("/account/requests", "Requests"),
    ("/account/access-history", "Who has seen my records"),
    ("/account/health", "Health record"),
    ("/account/my-data", "My data"),
    ("/account/cases", "Cases"),
    ("/account/children", "Children"),
    ("/account/security", "Security"),
)


def main_navigation(path: str) -> list[dict[str, object]]:
    if signed_in_citizen() is None:
        return []
    return [
        {"href": href, "text": text, "active": path == href or path.startswith(href + "/")}  # not a prefix
        for href, text in NAVIGATION
    ]


def install_templates(app: Flask) -> None:
    """Our templates first, then GOV.UK Frontend's Jinja port under its own prefix."""
    from flask_wtf.csrf import generate_csrf
    from jinja2 import ChoiceLoader, PackageLoader, PrefixLoader

    from pds.web.forms import example_day

    assert app.jinja_loader is not None
    app.jinja_loader = ChoiceLoader(
        [app.jinja_loader, PrefixLoader({"govuk_frontend_jinja": PackageLoader("govuk_frontend_jinja")})]
    )
    app.jinja_env.globals.update(
        csp_nonce=csp_nonce,
        main_navigation=main_navigation,
        signed_in=lambda: signed_in_citizen() is not None,
        csrf_token=generate_csrf,
        example_day=example_day,
    )
