"""GP records as FHIR: a GP Connect STU3 or an R4 Bundle in, one R4 (UK Core) item per clinical resource out.

GP Connect Access Record: Structured answers with a FHIR STU3 `collection` Bundle; other senders use R4.
The vault keeps R4 only, so STU3 resources are converted the way HL7's R3->R4 maps and NHS England's
CareConnect->UK Core map (`NHSDigital/fhir-mapping-stu3-careconnect-to-r4-ukcore`) do: one function per
resource type in STU3_TO_R4, after the steps every resource shares (`_stu3_common`).

Rules a sender can rely on:
- Version: the media type's `fhirVersion` parameter (3.0 or 4.0) when given; else `meta.profile` on the
  Bundle or any resource (STU3_PROFILES versus R4_PROFILES); else fields only one version has (STU3_ONLY,
  R4_ONLY, or a `clinicalStatus` that is a bare code); else R4. Evidence for both is refused, not guessed.
- Bundle.type: collection, searchset, transaction and batch carry resources and are accepted; document,
  message, history and the response types are refused (REFUSED_TYPES says why).
- Checks: structure by fhir.resources (STU3 or R4B models), then CODE_RULES, duplicate ids, PAST_ONLY times
  not after now + CLOCK_SKEW, one Patient with a valid NHS number, subjects that are that Patient, and the
  Bundle invariants bdl-1/2/3/4/7. Every problem is collected; the delivery is refused whole.
- Items: one per ITEM_TYPES resource, its payload the R4 form, itself validated by the R4B models and the R4
  code rules. Patient, Organization, Practitioner and PractitionerRole lend their names to references
  (`display`); other resource types are checked but not stored.
- Sensitive: meta.security carries v3 Confidentiality R or V. GP Connect withholds confidential items (the
  List says `confidential-items`), so a label on the resource is the only mark a sender can give.
- occurred_at: the first OCCURRED_AT time of the R4 form, else meta.lastUpdated, else Bundle.timestamp, else
  the time of parsing. A date without a time counts from midnight UTC.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

from fhir.resources.R4B import get_fhir_model_class as r4b_model
from fhir.resources.STU3 import get_fhir_model_class as stu3_model
from pydantic import ValidationError as ModelError

from connectors.base import DeliveryInvalid, Item, Problems
from pds.vault.identifiers import nhs_number_ok

Resource = dict[str, Any]
Found = Iterator[tuple[str, str]]  # (path inside the resource, reason)

STU3, R4 = "STU3", "R4"
MODELS: dict[str, Callable[[str], Any]] = {STU3: stu3_model, R4: r4b_model}  # R4B = R4 for these types
NHS_NUMBER_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
CLOCK_SKEW = dt.timedelta(minutes=5)  # a GP system's clock may run a little ahead of ours
EARLIEST_ZONE = dt.timezone(dt.timedelta(hours=14))  # a bare date has begun somewhere once it began here
ACCEPTED_TYPES = ("collection", "searchset", "transaction", "batch")
REFUSED_TYPES = {
    "document": "a document Bundle is a signed Composition; send its resources as a collection",
    "message": "a message Bundle is for messaging; send its resources as a collection",
    "history": "a history Bundle carries versions and deletes; send the current resources",
    "transaction-response": "a response Bundle carries outcomes, not records",
    "batch-response": "a response Bundle carries outcomes, not records",
}
ITEM_TYPES = (
    "Condition", "MedicationStatement", "MedicationRequest", "Medication", "AllergyIntolerance",
    "Immunization", "Observation", "Encounter", "List",
)  # fmt: skip
SUBJECT = {"AllergyIntolerance": "patient", "Immunization": "patient"}  # else `subject`
CONFIDENTIALITY = (
    "http://hl7.org/fhir/v3/Confidentiality",
    "http://terminology.hl7.org/CodeSystem/v3-Confidentiality",
)
RESTRICTED = ("R", "V")  # restricted, very restricted

STU3_PROFILES = ("https://fhir.nhs.uk/STU3/", "https://fhir.hl7.org.uk/STU3/")
R4_PROFILES = ("https://fhir.hl7.org.uk/StructureDefinition/UKCore-", "http://hl7.org/fhir/us/core/")
STU3_ONLY = {
    "Condition": ("assertedDate", "context"),
    "AllergyIntolerance": ("assertedDate",),
    "Immunization": ("notGiven", "date", "practitioner", "explanation", "vaccinationProtocol"),
    "MedicationStatement": ("taken", "reasonNotTaken"),
    "Observation": ("comment", "related", "context"),
    "Encounter": ("reason", "incomingReferral"),
}
R4_ONLY = {
    "Condition": ("recordedDate", "encounter"),
    "AllergyIntolerance": ("recordedDate", "encounter"),
    "Immunization": (
        "occurrenceDateTime",
        "occurrenceString",
        "performer",
        "statusReason",
        "protocolApplied",
    ),
    "MedicationStatement": ("statusReason",),
    "Observation": ("note", "hasMember", "derivedFrom", "encounter"),
    "Encounter": ("reasonCode", "basedOn"),
}

THO = "http://terminology.hl7.org/CodeSystem/"
CONDITION_CLINICAL = THO + "condition-clinical"
CONDITION_VERIFICATION = THO + "condition-ver-status"
ALLERGY_CLINICAL = THO + "allergyintolerance-clinical"
ALLERGY_VERIFICATION = THO + "allergyintolerance-verification"


@dataclass(frozen=True)
class CodeRule:
    """An element whose codes are bound: a code (or list of codes), or a CodeableConcept from `system`."""

    element: str
    allowed: frozenset[str]
    system: str | None = None


def _rule(element: str, codes: str, system: str | None = None) -> CodeRule:
    return CodeRule(element, frozenset(codes.split()), system)


OBSERVATION_STATUS = "registered preliminary final amended corrected cancelled entered-in-error unknown"
ENCOUNTER_STATUS = "planned arrived triaged in-progress onleave finished cancelled entered-in-error unknown"
REQUEST_STATUS = "active on-hold cancelled completed entered-in-error stopped draft unknown"
SHARED_RULES = {
    "AllergyIntolerance": (
        _rule("type", "allergy intolerance"),
        _rule("category", "food medication environment biologic"),
        _rule("criticality", "low high unable-to-assess"),
    ),
    "Medication": (_rule("status", "active inactive entered-in-error"),),
    "Observation": (_rule("status", OBSERVATION_STATUS),),
    "Encounter": (_rule("status", ENCOUNTER_STATUS),),
    "List": (_rule("status", "current retired entered-in-error"), _rule("mode", "working snapshot changes")),
    "Patient": (_rule("gender", "male female other unknown"),),
}
CODE_RULES: dict[str, dict[str, tuple[CodeRule, ...]]] = {  # value sets of FHIR 3.0.2 and 4.0.1
    STU3: {
        "Condition": (
            _rule("clinicalStatus", "active recurrence inactive remission resolved"),
            _rule(
                "verificationStatus", "provisional differential confirmed refuted entered-in-error unknown"
            ),
        ),
        "AllergyIntolerance": (
            _rule("clinicalStatus", "active inactive resolved"),
            _rule("verificationStatus", "unconfirmed confirmed refuted entered-in-error"),
        ),
        "MedicationStatement": (
            _rule("status", "active completed entered-in-error intended stopped on-hold"),
            _rule("taken", "y n unk na"),
        ),
        "MedicationRequest": (
            _rule("status", REQUEST_STATUS),
            _rule("intent", "proposal plan order instance-order"),
        ),
        "Immunization": (_rule("status", "completed entered-in-error"),),
    },
    R4: {
        "Condition": (
            _rule(
                "clinicalStatus", "active recurrence relapse inactive remission resolved", CONDITION_CLINICAL
            ),
            _rule(
                "verificationStatus",
                "unconfirmed provisional differential confirmed refuted entered-in-error",
                CONDITION_VERIFICATION,
            ),
        ),
        "AllergyIntolerance": (
            _rule("clinicalStatus", "active inactive resolved", ALLERGY_CLINICAL),
            _rule(
                "verificationStatus", "unconfirmed confirmed refuted entered-in-error", ALLERGY_VERIFICATION
            ),
        ),
        "MedicationStatement": (
            _rule("status", "active completed entered-in-error intended stopped on-hold unknown not-taken"),
        ),
        "MedicationRequest": (
            _rule("status", REQUEST_STATUS),
            _rule(
                "intent", "proposal plan order original-order reflex-order filler-order instance-order option"
            ),
        ),
        "Immunization": (_rule("status", "completed entered-in-error not-done"),),
    },
}
PAST_ONLY = {  # when something happened or was recorded: never after now (a course's end may be)
    "Patient": ("birthDate",),
    "Condition": ("onsetDateTime", "onsetPeriod.start", "abatementDateTime", "assertedDate", "recordedDate"),
    "AllergyIntolerance": (
        "onsetDateTime",
        "onsetPeriod.start",
        "assertedDate",
        "recordedDate",
        "lastOccurrence",
    ),
    "MedicationStatement": ("effectiveDateTime", "effectivePeriod.start", "dateAsserted"),
    "MedicationRequest": ("authoredOn",),
    "Immunization": ("date", "occurrenceDateTime", "recorded"),
    "Observation": ("effectiveDateTime", "effectivePeriod.start", "effectiveInstant", "issued"),
    "Encounter": ("period.start",),  # unless status is planned
    "List": ("date",),
}
OCCURRED_AT = {  # on the R4 form, first found wins
    "Condition": ("onsetDateTime", "onsetPeriod.start", "recordedDate"),
    "AllergyIntolerance": ("onsetDateTime", "onsetPeriod.start", "recordedDate"),
    "MedicationStatement": ("effectiveDateTime", "effectivePeriod.start", "dateAsserted"),
    "MedicationRequest": ("authoredOn", "dispenseRequest.validityPeriod.start"),
    "Immunization": ("occurrenceDateTime", "recorded"),
    "Observation": ("effectiveDateTime", "effectivePeriod.start", "effectiveInstant", "issued"),
    "Encounter": ("period.start",),
    "List": ("date",),
}
FHIR_TIME = re.compile(
    r"(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?)?)?"
)


@dataclass(frozen=True)
class Entry:
    """One Bundle.entry that holds a resource."""

    index: int
    resource: Resource
    full_url: str | None
    raw: Resource

    @property
    def type(self) -> str:
        return self.resource["resourceType"]

    def field(self, path: str = "") -> str:
        return f"entry[{self.index}].resource" + (f".{path}" if path else "")

    def aliases(self) -> set[str]:
        """What a reference to this resource may say."""
        found = {self.full_url} if self.full_url else set()
        if isinstance(self.resource.get("id"), str):
            found.add(f"{self.type}/{self.resource['id']}")
        return found


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class FhirParser:
    """GP Connect STU3 structured records and R4 Bundles; see the module docstring for the rules."""

    kind: ClassVar[str] = "fhir"
    media_types: ClassVar[tuple[str, ...]] = ("application/fhir+json", "application/json")

    def __init__(self, *, clock: Callable[[], dt.datetime] = _utc_now) -> None:
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
        fallback = _instant(bundle.get("timestamp"), dt.UTC) or now
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
    declared = [_get(r, "meta.profile") for r in resources]
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
        value = _get(resource, path)
        when = _instant(value, EARLIEST_ZONE)
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
    payload = _to_r4(entry.resource) if version == STU3 else copy.deepcopy(entry.resource)
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
        when = _instant(_get(payload, path), dt.UTC)
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
        practitioner = _get(e.resource, "practitioner.reference") if e.type == "PractitionerRole" else None
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
    for node in _nodes(payload):
        target = node.get("reference")
        if isinstance(target, str) and target in names and "display" not in node:
            node["display"] = names[target]


# 4. STU3 -> R4, per resource type

XVER = "http://hl7.org/fhir/3.0/StructureDefinition/extension-"  # HL7's cross-version extensions
UKCORE_PROFILE = "https://fhir.hl7.org.uk/StructureDefinition/UKCore-"
DATA_ABSENT = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
ASSOCIATED_ENCOUNTER = "http://hl7.org/fhir/StructureDefinition/encounter-associatedEncounter"
SCT_DESCRIPTION_IDS = (
    "https://fhir.hl7.org.uk/STU3/StructureDefinition/Extension-coding-sctdescid",
    "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-coding-sctdescid",
)
UKCORE_SCT_DESCRIPTION_ID = "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-CodingSCTDescId"
RENAMED_EXTENSIONS = {  # NHS England's CareConnect -> UK Core map
    "https://fhir.hl7.org.uk/STU3/StructureDefinition/Extension-CareConnect-AllergyIntoleranceEnd-1": (
        "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-AllergyIntoleranceEnd"
    ),
    "https://fhir.hl7.org.uk/STU3/StructureDefinition/Extension-CareConnect-Evidence-1": (
        "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-Evidence"
    ),
}
MOVED_SYSTEMS = {  # R4 moved HL7's own code systems to terminology.hl7.org
    "http://hl7.org/fhir/condition-category": THO + "condition-category",
    "http://hl7.org/fhir/observation-category": THO + "observation-category",
    "http://hl7.org/fhir/list-empty-reason": THO + "list-empty-reason",
    "http://hl7.org/fhir/list-order": THO + "list-order",
    "http://hl7.org/fhir/medication-statement-category": THO + "medication-statement-category",
    "http://hl7.org/fhir/medication-request-category": THO + "medicationrequest-category",
    "http://hl7.org/fhir/immunization-origin": THO + "immunization-origin",
    "http://hl7.org/fhir/data-absent-reason": THO + "data-absent-reason",
}
DOSE_AND_RATE = ("doseRange", "doseQuantity", "rateRatio", "rateRange", "rateQuantity")
BATCH = ("lotNumber", "expirationDate")
PROTOCOL_EXTRAS = (  # STU3 vaccinationProtocol elements R4 protocolApplied has no home for
    ("description", "valueString"),
    ("doseStatus", "valueCodeableConcept"),
    ("doseStatusReason", "valueCodeableConcept"),
)


def _to_r4(resource: Resource) -> Resource:
    r4 = copy.deepcopy(resource)
    _stu3_common(r4)
    STU3_TO_R4[r4["resourceType"]](r4)
    return r4


def _stu3_common(r: Resource) -> None:
    """Profile, code systems and extensions: the same in every resource."""
    meta = r.get("meta")
    if isinstance(meta, dict) and "profile" in meta:
        meta["profile"] = [UKCORE_PROFILE + r["resourceType"]]
    for node in _nodes(r):
        system = node.get("system")
        if "code" in node and isinstance(system, str):
            node["system"] = _r4_system(system)
        url = node.get("url")
        if url in RENAMED_EXTENSIONS:
            node["url"] = RENAMED_EXTENSIONS[url]
        elif url in SCT_DESCRIPTION_IDS:
            _sct_description_id(node)


def _r4_system(system: str) -> str:
    for old, new in (("http://hl7.org/fhir/v3/", THO + "v3-"), ("http://hl7.org/fhir/v2/", THO + "v2-")):
        if system.startswith(old):
            return new + system.removeprefix(old)
    return MOVED_SYSTEMS.get(system, system)


def _sct_description_id(ext: Resource) -> None:
    ext["url"] = UKCORE_SCT_DESCRIPTION_ID
    for part in ext.get("extension", []):
        if part.get("url") == "descriptionId" and "valueId" in part:
            part["valueIdentifier"] = {"system": "http://snomed.info/sct", "value": part.pop("valueId")}


def _condition(r: Resource) -> None:
    _code_to_concept(r, "clinicalStatus", CONDITION_CLINICAL)
    if r.get("verificationStatus") == "unknown":  # R4 has no 'unknown'; HL7's map leaves it out
        del r["verificationStatus"]
    _code_to_concept(r, "verificationStatus", CONDITION_VERIFICATION)
    _move(r, "assertedDate", "recordedDate")
    _move(r, "context", "encounter")
    _listify(r, "stage")
    if "abatementBoolean" in r:  # R4 abatement[x] has no boolean
        _extend(r, _xver("Condition.abatement", "valueBoolean", r.pop("abatementBoolean")))


def _allergy(r: Resource) -> None:
    _code_to_concept(r, "clinicalStatus", ALLERGY_CLINICAL)
    _code_to_concept(r, "verificationStatus", ALLERGY_VERIFICATION)
    _move(r, "assertedDate", "recordedDate")
    encounter = _pop_extension(r, ASSOCIATED_ENCOUNTER)
    if encounter and "valueReference" in encounter:
        r["encounter"] = encounter["valueReference"]


def _medication_statement(r: Resource) -> None:
    taken = r.pop("taken", None)
    if taken == "n":
        r["status"] = "not-taken"
    elif taken is not None:  # y, unk, na: R4 has no home for them
        _extend(r, _xver("MedicationStatement.taken", "valueCode", taken))
    _move(r, "reasonNotTaken", "statusReason")
    for dosage in r.get("dosage", []):
        _dosage(dosage)


def _medication_request(r: Resource) -> None:
    r.setdefault("status", "unknown")  # optional in STU3, required in R4; 'unknown' claims nothing
    _move(r, "context", "encounter")
    _listify(r, "category")
    requester = r.pop("requester", None) or {}
    if "agent" in requester:
        r["requester"] = requester["agent"]
    if "onBehalfOf" in requester:
        _extend(r, _xver("MedicationRequest.requester.onBehalfOf", "valueReference", requester["onBehalfOf"]))
    for definition in r.pop("definition", []):
        _extend(r, _xver("MedicationRequest.definition", "valueReference", definition))
    _move(r.get("substitution") or {}, "allowed", "allowedBoolean")
    for dosage in r.get("dosageInstruction", []):
        _dosage(dosage)


def _immunization(r: Resource) -> None:
    if r.pop("notGiven", False) is True:
        r["status"] = "not-done"
    _move(r, "date", "occurrenceDateTime")
    for performer in r.get("practitioner", []):
        _move(performer, "role", "function")
    _move(r, "practitioner", "performer")
    explanation = r.pop("explanation", None) or {}
    if explanation.get("reason"):
        r["reasonCode"] = explanation["reason"]
    first, *more = explanation.get("reasonNotGiven") or [None]
    if first is not None:
        r["statusReason"] = first  # 0..1 in R4
    for reason in more:
        _extend(r, _xver("Immunization.explanation.reasonNotGiven", "valueCodeableConcept", reason))
    if "vaccinationProtocol" in r:
        r["protocolApplied"] = [_protocol_applied(p) for p in r.pop("vaccinationProtocol")]


def _protocol_applied(protocol: Resource) -> Resource:
    applied = {
        k: protocol[k] for k in ("id", "extension", "series", "authority", "targetDisease") if k in protocol
    }
    if "doseSequence" in protocol:
        applied["doseNumberPositiveInt"] = protocol["doseSequence"]
    else:
        applied["doseNumberString"] = "unknown"  # required in R4, optional in STU3
    if "seriesDoses" in protocol:
        applied["seriesDosesPositiveInt"] = protocol["seriesDoses"]
    for name, kind in PROTOCOL_EXTRAS:
        if name in protocol:
            _extend(applied, _xver(f"Immunization.vaccinationProtocol.{name}", kind, protocol[name]))
    return applied


def _observation(r: Resource) -> None:
    _move(r, "context", "encounter")
    if "comment" in r:
        r.setdefault("note", []).append({"text": r.pop("comment")})
    for part in (r, *r.get("component", [])):
        _listify(part, "interpretation")
        if "valueAttachment" in part:  # R4 Observation values cannot be attachments
            _extend(part, _xver("Observation.value", "valueAttachment", part.pop("valueAttachment")))
    for related in r.pop("related", []):
        kind, target = related.get("type", "has-member"), related.get("target")
        if kind == "has-member":
            r.setdefault("hasMember", []).append(target)
        elif kind == "derived-from":
            r.setdefault("derivedFrom", []).append(target)
        else:
            parts = [{"url": "type", "valueCode": kind}, {"url": "target", "valueReference": target}]
            _extend(r, {"url": XVER + "Observation.related", "extension": parts})


def _encounter(r: Resource) -> None:
    r.setdefault("class", {"extension": [{"url": DATA_ABSENT, "valueCode": "unknown"}]})  # 1..1 in R4
    _move(r, "incomingReferral", "basedOn")
    _listify(r, "appointment")
    _move(r, "reason", "reasonCode")
    for diagnosis in r.get("diagnosis", []):
        _move(diagnosis, "role", "use")


def _medication(r: Resource) -> None:
    for name in ("isBrand", "isOverTheCounter"):
        if name in r:
            _extend(r, _xver(f"Medication.{name}", "valueBoolean", r.pop(name)))
    for ingredient in r.get("ingredient", []):
        _move(ingredient, "amount", "strength")
    package = r.pop("package", None) or {}
    first, *more = package.get("batch") or [None]
    if first is not None:
        r["batch"] = first
    for batch in more:  # R4 keeps one batch
        parts = [
            {"url": k, "valueString" if k == "lotNumber" else "valueDateTime": batch[k]}
            for k in BATCH
            if k in batch
        ]
        _extend(r, {"url": XVER + "Medication.package.batch", "extension": parts})
    if "container" in package:
        _extend(r, _xver("Medication.package.container", "valueCodeableConcept", package["container"]))
    for content in package.get("content", []):
        parts = [
            {"url": "item", k.replace("item", "value", 1): v}
            for k, v in content.items()
            if k.startswith("item")
        ]
        if "amount" in content:
            parts.append({"url": "amount", "valueQuantity": content["amount"]})
        _extend(r, {"url": XVER + "Medication.package.content", "extension": parts})
    for image in r.pop("image", []):
        _extend(r, _xver("Medication.image", "valueAttachment", image))


def _list(r: Resource) -> None:
    """List did not change between STU3 and R4 beyond what _stu3_common does."""


STU3_TO_R4: dict[str, Callable[[Resource], None]] = {
    "Condition": _condition,
    "AllergyIntolerance": _allergy,
    "MedicationStatement": _medication_statement,
    "MedicationRequest": _medication_request,
    "Medication": _medication,
    "Immunization": _immunization,
    "Observation": _observation,
    "Encounter": _encounter,
    "List": _list,
}


def _dosage(dosage: Resource) -> None:
    """STU3 dose[x] and rate[x] sit in R4's doseAndRate."""
    moved = {name: dosage.pop(name) for name in DOSE_AND_RATE if name in dosage}
    if moved:
        dosage["doseAndRate"] = [moved]


# 5. Small helpers


def _get(node: object, path: str) -> Any:
    for name in path.split("."):
        node = node.get(name) if isinstance(node, dict) else None
    return node


def _nodes(node: object) -> Iterator[Resource]:
    """Every JSON object inside a resource, the resource first."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _nodes(value)
    elif isinstance(node, list):
        for value in node:
            yield from _nodes(value)


def _instant(value: object, date_zone: dt.tzinfo) -> dt.datetime | None:
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


def _move(node: Resource, old: str, new: str) -> None:
    if old in node:
        node[new] = node.pop(old)


def _listify(node: Resource, name: str) -> None:
    if isinstance(node.get(name), dict):
        node[name] = [node[name]]


def _code_to_concept(node: Resource, name: str, system: str) -> None:
    if isinstance(node.get(name), str):
        node[name] = {"coding": [{"system": system, "code": node[name]}]}


def _xver(path: str, kind: str, value: object) -> Resource:
    return {"url": XVER + path, kind: value}


def _extend(node: Resource, extension: Resource) -> None:
    node.setdefault("extension", []).append(extension)


def _pop_extension(node: Resource, url: str) -> Resource | None:
    extensions = node.get("extension", [])
    for k, ext in enumerate(extensions):
        if ext.get("url") == url:
            del extensions[k]
            if not extensions:
                del node["extension"]
            return ext
    return None
