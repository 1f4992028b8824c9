"""The base error of pds and its RFC 9457 problem+json form."""

from __future__ import annotations

from typing import Any

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "/problems/"  # a relative URI reference, which RFC 9457 s3.1.1 allows


class PdsError(Exception):
    """An error a caller can act on. Carries an HTTP status and, where one input is at fault, its name."""

    status = 400
    slug = "bad-request"
    title = "Bad request"

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field

    def headers(self) -> dict[str, str]:
        """Extra response headers this error calls for (WWW-Authenticate, say)."""
        return {}

    def problem(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": PROBLEM_BASE + self.slug,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.field:
            body["field"] = self.field
        if instance:
            body["instance"] = instance
        return body


class ValidationError(PdsError):
    status = 422
    slug = "invalid-input"
    title = "Invalid input"


class NotFound(PdsError):
    status = 404
    slug = "not-found"
    title = "Not found"


class Conflict(PdsError):
    status = 409
    slug = "conflict"
    title = "Conflict"


class IntegrityFailure(PdsError):
    """A ciphertext failed authentication: tampered, moved to another row, or the wrong key."""

    status = 500
    slug = "integrity-failure"
    title = "Stored data failed its integrity check"


class KeyMissing(PdsError):
    """A key needed to read data is absent or does not match the data."""

    status = 503
    slug = "key-unavailable"
    title = "Encryption key unavailable"


class Erased(PdsError):
    """The citizen's data key was destroyed: their data can never be read again."""

    status = 410
    slug = "erased"
    title = "Erased"


def problem_from_http(status: int, title: str, detail: str) -> dict[str, Any]:
    """A problem body for errors raised by the web framework itself (404, 405, 413...)."""
    slug = title.lower().replace(" ", "-")
    return {"type": PROBLEM_BASE + slug, "title": title, "status": status, "detail": detail}
