"""Small readers of OneRoster values: times, versions, flags, references."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from connectors.oneroster.vocabulary import EPOCH, SCHOOL_TZ


def version_of(date_last_modified: str) -> int:
    """dateLastModified as whole microseconds since the Unix epoch: later modification, larger version."""
    return (utc(date_last_modified) - EPOCH) // dt.timedelta(microseconds=1)


def utc(value: str) -> dt.datetime:
    when = parse_when(value)
    if when is None:
        raise ValueError(f"not an ISO 8601 date and time with a zone: {value!r}")
    return when.astimezone(dt.UTC)


def parse_when(value: Any) -> dt.datetime | None:
    """An ISO 8601 date (midnight, Europe/London) or date-time with a zone; None for anything else."""
    if not isinstance(value, str):
        return None
    try:
        if len(value) == 10:
            return dt.datetime.combine(dt.date.fromisoformat(value), dt.time(), SCHOOL_TZ)
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return when if when.tzinfo is not None else None


def sensitive_flag(event: dict[str, Any]) -> Any:
    """The school's confidentiality mark: `sensitive`, or OneRoster's own extension point `metadata`."""
    if "sensitive" in event:
        return event["sensitive"]
    metadata = event.get("metadata")
    return metadata.get("sensitive") if isinstance(metadata, dict) else None


def has_role(user: dict[str, Any], role: str) -> bool:
    roles = user.get("roles")
    return isinstance(roles, list) and any(isinstance(r, dict) and r.get("role") == role for r in roles)


def ref_id(value: Any) -> str | None:
    sid = value.get("sourcedId") if isinstance(value, dict) else None
    return sid if is_text(sid) else None


def is_text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def bool_flag(value: Any) -> bool | None:
    """OneRoster booleans travel as true/false or as the strings "true"/"false"."""
    if isinstance(value, bool):
        return value
    return {"true": True, "false": False}.get(value) if isinstance(value, str) else None


def drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}
