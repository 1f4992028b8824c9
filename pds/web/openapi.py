"""GET /openapi.json: the OpenAPI 3.1 document of the HTTP API, kept beside the code it describes."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

from pds.web import runtime

bp = Blueprint("openapi", __name__)

PROBLEM = {
    "type": "object",
    "description": "RFC 9457 problem details",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "field": {"type": "string", "description": "the input at fault, where one is"},
        "instance": {"type": "string"},
    },
    "required": ["type", "title", "status"],
}


def document(server_url: str) -> dict[str, Any]:
    problem_ref = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "pds",
            "version": "0.1.0",
            "description": "Personal data store with a consent ledger.",
        },
        "servers": [{"url": server_url}],
        "paths": {
            "/healthz": {
                "get": {
                    "summary": "Health of the database and the keys",
                    "responses": {
                        "200": {
                            "description": "Healthy",
                            "content": {
                                "application/json": {"schema": {"$ref": "#/components/schemas/Health"}}
                            },
                        },
                        "503": {"description": "A check failed", "content": problem_ref},
                    },
                }
            },
            "/openapi.json": {
                "get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3.1"}}}
            },
        },
        "components": {
            "schemas": {
                "Problem": PROBLEM,
                "Health": {
                    "type": "object",
                    "properties": {
                        "status": {"const": "ok"},
                        "checks": {"type": "object", "additionalProperties": {"type": "string"}},
                    },
                },
            }
        },
    }


@bp.get("/openapi.json")
def openapi() -> Response:
    return jsonify(document(runtime().settings.server.public_url))
