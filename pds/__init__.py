"""pds: a personal data store with a consent ledger. `create_app` is the composition root."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # importing pds must stay cheap and cycle-free: the app is built only on demand
    from flask import Flask

    from pds.runtime import Runtime
    from pds.settings import Settings

MAX_REQUEST_BYTES = 16 * 1024 * 1024  # the largest delivery or form pds accepts


def create_app(settings: Settings | None = None, *, runtime: Runtime | None = None) -> Flask:
    """Build the web app. Refuses to start if the database or keys are not right."""
    from flask import Flask

    from consent.oauth.context import OAuthContext
    from consent.oauth.server import build_server
    from consent.readlog import ReadLog
    from pds.runtime import Runtime
    from pds.settings import load_settings
    from pds.web import (
        access_pages,
        account,
        api,
        api_requests,
        assets,
        cases_pages,
        connectors,
        db,
        errors,
        health,
        history,
        install_request_hooks,
        install_templates,
        ledger,
        live,
        oauth,
        openapi,
        portal,
        records_pages,
        requests_pages,
        security,
        staff_signin,
    )

    settings = settings or load_settings()
    logging.basicConfig(
        level=settings.log.level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    runtime = runtime or Runtime.build(settings)
    runtime.check()

    app = Flask(__name__, template_folder="web/templates", static_folder=None)
    install_templates(app)
    issuer = settings.server.public_url
    app.config.update(
        MAX_CONTENT_LENGTH=MAX_REQUEST_BYTES,
        SECRET_KEY=runtime.session_secret(),
        SESSION_COOKIE_NAME="pds_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=issuer.startswith("https://"),
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session
    )
    app.extensions["pds"] = runtime
    app.extensions["pds.readlog"] = ReadLog(runtime.sessions)
    app.json.sort_keys = False  # type: ignore[attr-defined]  # sorting keys of every API answer costs time
    ctx = OAuthContext(issuer=issuer, session=db, sessions=runtime.sessions, provider=runtime.provider)
    app.extensions["pds.oauth"] = build_server(app, ctx, oauth.metadata(issuer))
    install_request_hooks(app)
    errors.register(app)
    for blueprint in (
        assets.bp,
        health.bp,
        openapi.bp,
        account.bp,
        access_pages.bp,
        oauth.bp,
        api.bp,
        api_requests.bp,
        ledger.bp,
        history.bp,
        connectors.bp,
        records_pages.bp,
        cases_pages.bp,
        security.bp,
        requests_pages.bp,
        live.bp,
        staff_signin.bp,
        portal.bp,
    ):
        app.register_blueprint(blueprint)
    return app
