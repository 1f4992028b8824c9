"""What the FHIR connector knows: versions, the codes each status may take, which times matter."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from fhir.resources.R4B import get_fhir_model_class as r4b_model
from fhir.resources.STU3 import get_fhir_model_class as stu3_model

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


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
