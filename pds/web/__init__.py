"""Flask blueprints: the only place, with pds/__init__.py and pds/cli.py, that imports Flask."""

from __future__ import annotations

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
    value = session.get("citizen_id")
    try:
        return uuid.UUID(value) if value else None
    except ValueError:
        return None


def install_request_hooks(app: Flask) -> None:
    @app.after_request
    def _headers(response: Response) -> Response:
        """No page may be framed (RFC 9700 s4.16); OAuth and API answers are never cached."""
        response.headers.setdefault("X-Frame-Options", "DENY")
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
