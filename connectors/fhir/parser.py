"""The FHIR parser: the delivery as a whole, each resource as it came, and the R4 item it becomes."""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
from collections.abc import Callable
from typing import ClassVar

from pydantic import ValidationError as ModelError

from connectors.base import DeliveryInvalid, Item, Problems
from connectors.fhir.stu3 import to_r4
from connectors.fhir.tree import get_path, instant, walk
from connectors.fhir.vocabulary import (
    ACCEPTED_TYPES,
    CLOCK_SKEW,
    CODE_RULES,
    CONFIDENTIALITY,
    EARLIEST_ZONE,
    ITEM_TYPES,
    MODELS,
    NHS_NUMBER_SYSTEM,
    OCCURRED_AT,
    PAST_ONLY,
    R4,
    R4_ONLY,
    R4_PROFILES,
    REFUSED_TYPES,
    RESTRICTED,
    SHARED_RULES,
    STU3,
    STU3_ONLY,
    STU3_PROFILES,
    SUBJECT,
    CodeRule,
    Entry,
    Found,
    Resource,
    utc_now,
)
from pds.vault.identifiers import nhs_number_ok


class FhirParser:
    """GP Connect STU3 structured records and R4 Bundles; see the module docstring for the rules."""

    kind: ClassVar[str] = "fhir"
    media_types: ClassVar[tuple[str, ...]] = ("application/fhir+json", "application/json")

    def __init__(self, *, clock: Callable[[], dt.datetime] = utc_now) -> None:
        self._clock = clock

    def parse(self, body: bytes, *, media_type: str) -> list[Item]:
        problems = Problems()
        hint = self._version_hint(media_type, problems)
        bundle = _load(body, problems)
        if bundle is None:
            raise DeliveryInvalid(problems.found)
        entries = _entries(bundle, problems)
        version = hint or _detect_version(bundle, entries, problems)
        now = self._clock()
        _check_bundle(bundle, entries, version, now, problems)
        patient, nhs_number = _patient(entries, problems)
        _check_duplicates(entries, problems)
        for entry in entries:
            for path, reason in _entry_problems(entry, version, patient, nhs_number, now):
                problems.add(entry.index, entry.field(path), reason)
        fallback = instant(bundle.get("timestamp"), dt.UTC) or now
        names = _display_names(entries)
        bad = {p.index for p in problems.found}
        items = [
            item
            for entry in entries
            if entry.type in ITEM_TYPES and entry.index not in bad
            if (item := _item(entry, version, nhs_number or "", names, fallback, problems))
        ]
        problems.found.sort(key=lambda p: -1 if p.index is None else p.index)  # stable: entry by entry
        problems.raise_if_any()
        return items

    def _version_hint(self, media_type: str, problems: Problems) -> str | None:
        """The `fhirVersion` media-type parameter (FHIR R4 http.html#version-parameter), if any."""
        base, *params = (part.strip() for part in media_type.split(";"))
        if base.lower() not in self.media_types:
            problems.add(None, "media_type", f"{base!r} is not one of {', '.join(self.media_types)}")
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() != "fhirversion":
                continue
            version = value.strip().strip('"')
            if version.split(".")[:2] == ["3", "0"]:
                return STU3
            if version.split(".")[:2] == ["4", "0"]:
                return R4
            problems.add(
                None, "media_type", f"fhirVersion {version} is not supported: send 3.0 (STU3) or 4.0 (R4)"
            )
        return None


# 1. The delivery as a whole


def _load(body: bytes, problems: Problems) -> Resource | None:
    try:
        doc = json.loads(body, parse_constant=_no_constant)
    except ValueError as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        problems.add(None, "body", f"not valid JSON: {e}")
        return None
    if not isinstance(doc, dict) or doc.get("resourceType") != "Bundle":
        found = doc.get("resourceType") if isinstance(doc, dict) else type(doc).__name__
        problems.add(None, "resourceType", f"expected a FHIR Bundle, found {found!r}")
        return None
    return doc


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def _entries(bundle: Resource, problems: Problems) -> list[Entry]:
    raw = bundle.get("entry", [])
    if not isinstance(raw, list):
        problems.add(None, "entry", "must be a list of entries")
        return []
    entries = []
    for i, entry in enumerate(raw):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            problems.add(i, f"entry[{i}].resource", "every entry must hold a resource with a resourceType")
            continue
        full_url = entry.get("fullUrl")
        entries.append(Entry(i, resource, full_url if isinstance(full_url, str) else None, entry))
    return entries


def _detect_version(bundle: Resource, entries: list[Entry], problems: Problems) -> str:
    resources = [bundle, *(e.resource for e in entries)]
    declared = [get_path(r, "meta.profile") for r in resources]
    profiles = [p for found in declared if isinstance(found, list) for p in found if isinstance(p, str)]
    stu3 = any(p.startswith(STU3_PROFILES) for p in profiles)
    r4 = any(p.startswith(R4_PROFILES) for p in profiles)
    if not (stu3 or r4):
        stu3 = any(_has_any(e.resource, STU3_ONLY) or _bare_status(e.resource) for e in entries)
        r4 = any(_has_any(e.resource, R4_ONLY) for e in entries)
    if stu3 and r4:
        problems.add(None, "entry", "mixes FHIR STU3 and R4 resources; send one version per Bundle")
    return STU3 if stu3 else R4


def _has_any(resource: Resource, fields: dict[str, tuple[str, ...]]) -> bool:
    return any(name in resource for name in fields.get(resource["resourceType"], ()))


def _bare_status(resource: Resource) -> bool:
    """STU3 clinicalStatus is a code; R4 made it a CodeableConcept."""
    return isinstance(resource.get("clinicalStatus"), str)


def _check_bundle(
    bundle: Resource, entries: list[Entry], version: str, now: dt.datetime, problems: Problems
) -> None:
    kind = bundle.get("type")
    if kind in REFUSED_TYPES:
        problems.add(None, "type", f"{kind!r} is refused: {REFUSED_TYPES[kind]}")
    elif kind not in ACCEPTED_TYPES:
        problems.add(None, "type", f"{kind!r} is not accepted: use one of {', '.join(ACCEPTED_TYPES)}")
    shell = {k: v for k, v in bundle.items() if k != "entry"}
    for path, reason in _structure(shell, version):
        problems.add(None, path or "Bundle", reason)
    if "total" in bundle and kind != "searchset":
        problems.add(None, "total", "only a searchset has a total (bdl-1)")
    for path, reason in _future(bundle, ("timestamp",), now):
        problems.add(None, path, reason)
    for e in entries:
        if "search" in e.raw and kind != "searchset":
            problems.add(e.index, f"entry[{e.index}].search", "only a searchset entry has search (bdl-2)")
        if ("request" in e.raw) != (kind in ("transaction", "batch")):
            problems.add(
                e.index, f"entry[{e.index}].request", "a request belongs to batch and transaction (bdl-3)"
            )
        if "response" in e.raw:
            problems.add(
                e.index, f"entry[{e.index}].response", "only a response Bundle has responses (bdl-4)"
            )


def _patient(entries: list[Entry], problems: Problems) -> tuple[Entry | None, str | None]:
    patients = [e for e in entries if e.type == "Patient"]
    if not patients:
        problems.add(None, "entry", "no Patient: the Bundle must say whose record it is")
        return None, None
    for extra in patients[1:]:
        problems.add(extra.index, extra.field(), "a second Patient: a Bundle carries one person's record")
    return patients[0], _nhs_number(patients[0], problems)


def _nhs_number(patient: Entry, problems: Problems) -> str | None:
    identifiers = patient.resource.get("identifier")
    found = [
        (k, ident)
        for k, ident in enumerate(identifiers if isinstance(identifiers, list) else [])
        if isinstance(ident, dict) and ident.get("system") == NHS_NUMBER_SYSTEM
    ]
    if not found:
        problems.add(
            patient.index, patient.field("identifier"), f"no NHS number (system {NHS_NUMBER_SYSTEM})"
        )
        return None
    if len({_digits(ident.get("value")) for _, ident in found}) > 1:
        problems.add(patient.index, patient.field("identifier"), "more than one NHS number")
    k, ident = found[0]
    if not nhs_number_ok(_digits(ident.get("value"))):
        reason = "not a valid NHS number: 10 digits passing the Modulus 11 check"
        problems.add(patient.index, patient.field(f"identifier[{k}].value"), reason)
        return None
    return ident["value"]


def _digits(value: object) -> str:
    return re.sub(r"[\s-]", "", value) if isinstance(value, str) else ""


def _check_duplicates(entries: list[Entry], problems: Problems) -> None:
    """Ids are unique per type (Patient/1 and Practitioner/1 may both exist); fullUrls are unique (bdl-7)."""
    ids: dict[tuple[str, str], int] = {}
    urls: dict[str, int] = {}
    for e in entries:
        rid = e.resource.get("id")
        if isinstance(rid, str):
            if (e.type, rid) in ids:
                where = ids[(e.type, rid)]
                problems.add(
                    e.index, e.field("id"), f"duplicate id {e.type}/{rid}: entry[{where}] has it too"
                )
            ids.setdefault((e.type, rid), e.index)
        if e.full_url:
            if e.full_url in urls:
                reason = f"duplicate fullUrl: entry[{urls[e.full_url]}] has it too (bdl-7)"
                problems.add(e.index, f"entry[{e.index}].fullUrl", reason)
            urls.setdefault(e.full_url, e.index)


# 2. Each resource as it came


def _entry_problems(
    entry: Entry, version: str, patient: Entry | None, nhs: str | None, now: dt.datetime
) -> Found:
    resource = entry.resource
    yield from _structure(resource, version)
    yield from _codes(resource, version)
    yield from _future(resource, _past_only(resource), now)
    if entry.type in ITEM_TYPES:
        if not (resource.get("id") or entry.full_url):
            yield "id", "needs an id or a fullUrl: the vault keys each record by it"
        if patient is not None:
            yield from _subject(resource, patient, nhs)


def _structure(resource: Resource, version: str) -> Found:
    """Shape, types and cardinality, by the fhir.resources model of that version."""
    try:
        model = MODELS[version](resource["resourceType"])
    except (KeyError, ValueError):
        yield "resourceType", f"{resource.get('resourceType')!r} is not a FHIR {version} resource type"
        return
    try:
        model.model_validate(resource)
    except ModelError as e:
        for error in e.errors():
            yield _path(error["loc"]), error["msg"]


def _path(loc: tuple[int | str, ...]) -> str:
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc).lstrip(".")


def _codes(resource: Resource, version: str) -> Found:
    """Bound codes the models accept whatever they say: statuses, types, categories."""
    kind = resource["resourceType"]
    for rule in (*SHARED_RULES.get(kind, ()), *CODE_RULES[version].get(kind, ())):
        value = resource.get(rule.element)
        if value is None:
            continue
        if rule.system is not None:
            yield from _concept_codes(rule, value)
        elif isinstance(value, list):
            for k, code in enumerate(value):
                if isinstance(code, str) and code not in rule.allowed:
                    yield f"{rule.element}[{k}]", _not_allowed(code, rule)
        elif isinstance(value, str) and value not in rule.allowed:
            yield rule.element, _not_allowed(value, rule)


def _concept_codes(rule: CodeRule, concept: object) -> Found:
    codings = concept.get("coding") if isinstance(concept, dict) else None
    ours = [
        (k, c)
        for k, c in enumerate(codings if isinstance(codings, list) else [])
        if isinstance(c, dict) and c.get("system") == rule.system
    ]
    if not ours:
        yield f"{rule.element}.coding", f"needs a coding from {rule.system}"
    for k, coding in ours:
        if coding.get("code") not in rule.allowed:
            yield f"{rule.element}.coding[{k}].code", _not_allowed(coding.get("code"), rule)


def _not_allowed(code: object, rule: CodeRule) -> str:
    return f"{code!r} is not one of {', '.join(sorted(rule.allowed))}"


def _past_only(resource: Resource) -> tuple[str, ...]:
    paths = PAST_ONLY.get(resource["resourceType"], ())
    if resource["resourceType"] == "Encounter" and resource.get("status") == "planned":
        paths = ()
    return ("meta.lastUpdated", *paths)


def _future(resource: Resource, paths: tuple[str, ...], now: dt.datetime) -> Found:
    for path in paths:
        value = get_path(resource, path)
        when = instant(value, EARLIEST_ZONE)
        if when is not None and when > now + CLOCK_SKEW:
            yield path, f"{value} is in the future"


def _subject(resource: Resource, patient: Entry, nhs: str | None) -> Found:
    element = SUBJECT.get(resource["resourceType"], "subject")
    ref = resource.get(element)
    if not isinstance(ref, dict):
        return
    target = ref.get("reference")
    pid = patient.resource.get("id")
    if isinstance(target, str) and not (
        target in patient.aliases() or (pid and target.endswith(f"/Patient/{pid}"))
    ):
        yield f"{element}.reference", f"{target!r} is not the Bundle's Patient"
    ident = ref.get("identifier")
    named = (
        _digits(ident.get("value"))
        if isinstance(ident, dict) and ident.get("system") == NHS_NUMBER_SYSTEM
        else None
    )
    if nhs and named is not None and named != _digits(nhs):
        yield f"{element}.identifier.value", "names another NHS number than the Bundle's Patient"


# 3. The item: the R4 form, checked again


def _item(
    entry: Entry, version: str, nhs: str, names: dict[str, str], fallback: dt.datetime, problems: Problems
) -> Item | None:
    payload = to_r4(entry.resource) if version == STU3 else copy.deepcopy(entry.resource)
    _inline_names(payload, names)
    found = [*_structure(payload, R4), *_codes(payload, R4)]
    for path, reason in found:  # a conversion bug must not pass silently
        problems.add(entry.index, entry.field(path), f"after conversion to R4: {reason}")
    if found:
        return None
    meta = payload.get("meta") or {}
    version_id = meta.get("versionId")
    return Item(
        identifier_kind="nhs_number",
        identifier=nhs,
        category="health",
        kind=f"fhir:{entry.type}",
        source_record_id=payload.get("id") or entry.full_url or "",
        version=int(version_id) if isinstance(version_id, str) and version_id.isdigit() else 1,
        occurred_at=_occurred_at(payload, fallback),
        payload=payload,
        sensitive=_restricted(meta),
    )


def _occurred_at(payload: Resource, fallback: dt.datetime) -> dt.datetime:
    for path in (*OCCURRED_AT.get(payload["resourceType"], ()), "meta.lastUpdated"):
        when = instant(get_path(payload, path), dt.UTC)
        if when is not None:
            return when.astimezone(dt.UTC)
    return fallback.astimezone(dt.UTC)


def _restricted(meta: Resource) -> bool:
    labels = meta.get("security") or []
    return any(
        isinstance(c, dict) and c.get("system") in CONFIDENTIALITY and c.get("code") in RESTRICTED
        for c in labels
    )


def _display_names(entries: list[Entry]) -> dict[str, str]:
    """Reference -> name, for the people and organisations a record points at."""
    names: dict[str, str] = {}
    for e in entries:
        name = _human_name(e.resource.get("name")) if e.type == "Practitioner" else None
        name = e.resource.get("name") if e.type == "Organization" else name
        if isinstance(name, str) and name:
            names.update(dict.fromkeys(e.aliases(), name))
    for e in entries:
        practitioner = (
            get_path(e.resource, "practitioner.reference") if e.type == "PractitionerRole" else None
        )
        if practitioner in names:
            names.update(dict.fromkeys(e.aliases(), names[practitioner]))
    return names


def _human_name(names: object) -> str | None:
    if not isinstance(names, list) or not names or not isinstance(names[0], dict):
        return None
    name = names[0]
    if isinstance(name.get("text"), str):
        return name["text"]
    parts = [*name.get("prefix", []), *name.get("given", []), name.get("family")]
    return " ".join(p for p in parts if isinstance(p, str)) or None


def _inline_names(payload: Resource, names: dict[str, str]) -> None:
    for node in walk(payload):
        target = node.get("reference")
        if isinstance(target, str) and target in names and "display" not in node:
            node["display"] = names[target]
