"""Every HTTP error as application/problem+json (RFC 9457); nothing leaks a stack trace."""

from __future__ import annotations

import logging

from flask import Flask, Response, json, request
from werkzeug.exceptions import HTTPException

from pds.errors import PROBLEM_JSON, PdsError, problem_from_http

log = logging.getLogger(__name__)


def problem_response(body: dict, status: int) -> Response:
    return Response(json.dumps(body), status=status, mimetype=PROBLEM_JSON)


def register(app: Flask) -> None:
    @app.errorhandler(PdsError)
    def _pds_error(exc: PdsError) -> Response:
        if exc.status >= 500:
            log.error("%s on %s: %s", type(exc).__name__, request.path, exc.detail)
        response = problem_response(exc.problem(instance=request.path), exc.status)
        response.headers.update(exc.headers())
        return response

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        body = problem_from_http(status, exc.name, exc.description or exc.name)
        response = problem_response(body, status)
        if status == 405 and exc.valid_methods:  # type: ignore[attr-defined]
            response.headers["Allow"] = ", ".join(exc.valid_methods)  # type: ignore[attr-defined]
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error on %s", request.path)
        body = problem_from_http(
            500, "Internal Server Error", "pds met an unexpected error; it has been logged"
        )
        return problem_response(body, 500)
