"""GP records as FHIR: a GP Connect STU3 or an R4 Bundle in, one R4 (UK Core) item per clinical resource out.

GP Connect Access Record: Structured answers with a FHIR STU3 `collection` Bundle; other senders use R4.
The vault keeps R4 only, so STU3 resources are converted the way HL7's R3->R4 maps and NHS England's
CareConnect->UK Core map (`NHSDigital/fhir-mapping-stu3-careconnect-to-r4-ukcore`) do: one function per
resource type in `stu3.STU3_TO_R4`, after the steps every resource shares (`stu3._stu3_common`).

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

from connectors.fhir.parser import FhirParser

__all__ = ["FhirParser"]
