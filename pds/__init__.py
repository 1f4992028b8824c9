"""pds: a personal data store with a consent ledger. `create_app` is the composition root."""

from __future__ import annotations

import logging

from flask import Flask

from pds.runtime import Runtime
from pds.settings import Settings, load_settings

MAX_REQUEST_BYTES = 16 * 1024 * 1024  # the largest delivery or form pds accepts


def create_app(settings: Settings | None = None, *, runtime: Runtime | None = None) -> Flask:
    """Build the web app. Refuses to start if the database or keys are not right."""
    from pds.web import errors, health, openapi

    settings = settings or load_settings()
    logging.basicConfig(
        level=settings.log.level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    runtime = runtime or Runtime.build(settings)
    runtime.check()

    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
    app.extensions["pds"] = runtime
    errors.register(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(openapi.bp)
    return app
