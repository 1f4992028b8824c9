"""Flask blueprints: the only place, with pds/__init__.py and pds/cli.py, that imports Flask."""

from __future__ import annotations

from flask import current_app

from pds.runtime import Runtime


def runtime() -> Runtime:
    return current_app.extensions["pds"]  # type: ignore[no-any-return]
