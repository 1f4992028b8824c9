"""Small helpers over resources as nested dicts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from connectors.fhir.vocabulary import FHIR_TIME, Resource

XVER = "http://hl7.org/fhir/3.0/StructureDefinition/extension-"  # HL7's cross-version extensions


# 5. Small helpers


def get_path(node: object, path: str) -> Any:
    for name in path.split("."):
        node = node.get(name) if isinstance(node, dict) else None
    return node


def walk(node: object) -> Iterator[Resource]:
    """Every JSON object inside a resource, the resource first."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def instant(value: object, date_zone: dt.tzinfo) -> dt.datetime | None:
    """The first moment a FHIR date, dateTime or instant denotes (a bare date starts in date_zone)."""
    match = FHIR_TIME.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        return None
    year, month, day, hour, minute, second, zone = match.groups()
    try:
        if hour is None:
            return dt.datetime(int(year), int(month or 1), int(day or 1), tzinfo=date_zone)
        tz: dt.tzinfo = dt.UTC
        if zone and zone != "Z":
            sign = -1 if zone[0] == "-" else 1
            tz = dt.timezone(sign * dt.timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
        return dt.datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second or 0), tzinfo=tz
        )
    except ValueError:
        return None


def move(node: Resource, old: str, new: str) -> None:
    if old in node:
        node[new] = node.pop(old)


def listify(node: Resource, name: str) -> None:
    if isinstance(node.get(name), dict):
        node[name] = [node[name]]


def code_to_concept(node: Resource, name: str, system: str) -> None:
    if isinstance(node.get(name), str):
        node[name] = {"coding": [{"system": system, "code": node[name]}]}


def xver(path: str, kind: str, value: object) -> Resource:
    return {"url": XVER + path, kind: value}


def extend(node: Resource, extension: Resource) -> None:
    node.setdefault("extension", []).append(extension)


def pop_extension(node: Resource, url: str) -> Resource | None:
    extensions = node.get("extension", [])
    for k, ext in enumerate(extensions):
        if ext.get("url") == url:
            del extensions[k]
            if not extensions:
                del node["extension"]
            return ext
    return None
