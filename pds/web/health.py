"""GET /healthz: is the database reachable, and do the keys fit the data."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from pds.db import session_scope
from pds.errors import PdsError
from pds.vault.keys import check_keys
from pds.web import runtime
from pds.web.errors import problem_response

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    rt = runtime()
    checks = {"database": "ok", "keys": "ok"}
    try:
        rt.ping()
    except Exception as exc:  # any failure to reach the database is the answer, not an error
        checks["database"] = f"fail: {type(exc).__name__}"
        checks["keys"] = "unknown"
    else:
        try:
            with session_scope(rt.sessions) as session:
                check_keys(session, rt.provider)
        except PdsError as exc:
            checks["keys"] = f"fail: {exc.detail}"
    if all(v == "ok" for v in checks.values()):
        return jsonify(status="ok", checks=checks)
    body = {
        "type": "/problems/unhealthy",
        "title": "Unhealthy",
        "status": 503,
        "detail": "; ".join(f"{k} {v}" for k, v in checks.items() if v != "ok"),
        "checks": checks,
    }
    return problem_response(body, 503)
