"""STU3 -> R4, per resource type (HL7's R3->R4 maps, NHS England's CareConnect->UK Core map)."""

from __future__ import annotations

import copy
from collections.abc import Callable

from connectors.fhir.tree import (
    XVER,
    code_to_concept,
    extend,
    listify,
    move,
    pop_extension,
    walk,
    xver,
)
from connectors.fhir.vocabulary import (
    ALLERGY_CLINICAL,
    ALLERGY_VERIFICATION,
    CONDITION_CLINICAL,
    CONDITION_VERIFICATION,
    THO,
    Resource,
)

# 4. STU3 -> R4, per resource type

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


def to_r4(resource: Resource) -> Resource:
    r4 = copy.deepcopy(resource)
    _stu3_common(r4)
    STU3_TO_R4[r4["resourceType"]](r4)
    return r4


def _stu3_common(r: Resource) -> None:
    """Profile, code systems and extensions: the same in every resource."""
    meta = r.get("meta")
    if isinstance(meta, dict) and "profile" in meta:
        meta["profile"] = [UKCORE_PROFILE + r["resourceType"]]
    for node in walk(r):
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
    code_to_concept(r, "clinicalStatus", CONDITION_CLINICAL)
    if r.get("verificationStatus") == "unknown":  # R4 has no 'unknown'; HL7's map leaves it out
        del r["verificationStatus"]
    code_to_concept(r, "verificationStatus", CONDITION_VERIFICATION)
    move(r, "assertedDate", "recordedDate")
    move(r, "context", "encounter")
    listify(r, "stage")
    if "abatementBoolean" in r:  # R4 abatement[x] has no boolean
        extend(r, xver("Condition.abatement", "valueBoolean", r.pop("abatementBoolean")))


def _allergy(r: Resource) -> None:
    code_to_concept(r, "clinicalStatus", ALLERGY_CLINICAL)
    code_to_concept(r, "verificationStatus", ALLERGY_VERIFICATION)
    move(r, "assertedDate", "recordedDate")
    encounter = pop_extension(r, ASSOCIATED_ENCOUNTER)
    if encounter and "valueReference" in encounter:
        r["encounter"] = encounter["valueReference"]


def _medication_statement(r: Resource) -> None:
    taken = r.pop("taken", None)
    if taken == "n":
        r["status"] = "not-taken"
    elif taken is not None:  # y, unk, na: R4 has no home for them
        extend(r, xver("MedicationStatement.taken", "valueCode", taken))
    move(r, "reasonNotTaken", "statusReason")
    for dosage in r.get("dosage", []):
        _dosage(dosage)


def _medication_request(r: Resource) -> None:
    r.setdefault("status", "unknown")  # optional in STU3, required in R4; 'unknown' claims nothing
    move(r, "context", "encounter")
    listify(r, "category")
    requester = r.pop("requester", None) or {}
    if "agent" in requester:
        r["requester"] = requester["agent"]
    if "onBehalfOf" in requester:
        extend(r, xver("MedicationRequest.requester.onBehalfOf", "valueReference", requester["onBehalfOf"]))
    for definition in r.pop("definition", []):
        extend(r, xver("MedicationRequest.definition", "valueReference", definition))
    move(r.get("substitution") or {}, "allowed", "allowedBoolean")
    for dosage in r.get("dosageInstruction", []):
        _dosage(dosage)


def _immunization(r: Resource) -> None:
    if r.pop("notGiven", False) is True:
        r["status"] = "not-done"
    move(r, "date", "occurrenceDateTime")
    for performer in r.get("practitioner", []):
        move(performer, "role", "function")
    move(r, "practitioner", "performer")
    explanation = r.pop("explanation", None) or {}
    if explanation.get("reason"):
        r["reasonCode"] = explanation["reason"]
    first, *more = explanation.get("reasonNotGiven") or [None]
    if first is not None:
        r["statusReason"] = first  # 0..1 in R4
    for reason in more:
        extend(r, xver("Immunization.explanation.reasonNotGiven", "valueCodeableConcept", reason))
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
            extend(applied, xver(f"Immunization.vaccinationProtocol.{name}", kind, protocol[name]))
    return applied


def _observation(r: Resource) -> None:
    move(r, "context", "encounter")
    if "comment" in r:
        r.setdefault("note", []).append({"text": r.pop("comment")})
    for part in (r, *r.get("component", [])):
        listify(part, "interpretation")
        if "valueAttachment" in part:  # R4 Observation values cannot be attachments
            extend(part, xver("Observation.value", "valueAttachment", part.pop("valueAttachment")))
    for related in r.pop("related", []):
        kind, target = related.get("type", "has-member"), related.get("target")
        if kind == "has-member":
            r.setdefault("hasMember", []).append(target)
        elif kind == "derived-from":
            r.setdefault("derivedFrom", []).append(target)
        else:
            parts = [{"url": "type", "valueCode": kind}, {"url": "target", "valueReference": target}]
            extend(r, {"url": XVER + "Observation.related", "extension": parts})


def _encounter(r: Resource) -> None:
    r.setdefault("class", {"extension": [{"url": DATA_ABSENT, "valueCode": "unknown"}]})  # 1..1 in R4
    move(r, "incomingReferral", "basedOn")
    listify(r, "appointment")
    move(r, "reason", "reasonCode")
    for diagnosis in r.get("diagnosis", []):
        move(diagnosis, "role", "use")


def _medication(r: Resource) -> None:
    for name in ("isBrand", "isOverTheCounter"):
        if name in r:
            extend(r, xver(f"Medication.{name}", "valueBoolean", r.pop(name)))
    for ingredient in r.get("ingredient", []):
        move(ingredient, "amount", "strength")
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
        extend(r, {"url": XVER + "Medication.package.batch", "extension": parts})
    if "container" in package:
        extend(r, xver("Medication.package.container", "valueCodeableConcept", package["container"]))
    for content in package.get("content", []):
        parts = [
            {"url": "item", k.replace("item", "value", 1): v}
            for k, v in content.items()
            if k.startswith("item")
        ]
        if "amount" in content:
            parts.append({"url": "amount", "valueQuantity": content["amount"]})
        extend(r, {"url": XVER + "Medication.package.content", "extension": parts})
    for image in r.pop("image", []):
        extend(r, xver("Medication.image", "valueAttachment", image))


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
