"""The FHIR connector: GP Connect STU3 and R4 Bundles become R4 items, or the delivery is refused whole."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class

from connectors.base import DeliveryInvalid, Item, Problem
from connectors.fhir import FhirParser

SAMPLES = Path(__file__).resolve().parents[2] / "connectors" / "samples" / "fhir"
NOW = dt.datetime(2025, 3, 14, 12, 0, tzinfo=dt.UTC)
FHIR_JSON = "application/fhir+json;charset=utf-8"
BOB_NHS = "9990000034"
DIABETES = "a3d59e1c-4f27-4b80-9c6a-7e12d4b8f039"
DEPRESSION = "6e4a1d0b-8c35-47f2-b9e0-2d7a5c18f364"
FLU = "f6a2d81b-9e07-4c3f-b5d4-1c8e7a0b2f69"
SHINGLES = "3a8e0c5f-d1b7-4926-8f03-e5c4a9b6d712"
HBA1C_SEPT = "e4c0a59d-7f13-4b26-9d8e-3a1f6c2b0d57"
CONSULTATION = "b3f17a6e-5c20-4d89-9e4b-0a62d8c7f1e5"


def sample(name: str) -> dict[str, Any]:
    return json.loads((SAMPLES / name).read_text())


def parse(doc: object, media_type: str = FHIR_JSON) -> list[Item]:
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return FhirParser(clock=lambda: NOW).parse(body, media_type=media_type)


def refused(doc: object, media_type: str = FHIR_JSON) -> list[Problem]:
    with pytest.raises(DeliveryInvalid) as caught:
        parse(doc, media_type)
    return caught.value.problems


def by_id(items: list[Item]) -> dict[str, Item]:
    return {item.source_record_id: item for item in items}


def resource(bundle: dict[str, Any], rid: str) -> dict[str, Any]:
    return next(e["resource"] for e in bundle["entry"] if e["resource"].get("id") == rid)


def index_of(bundle: dict[str, Any], rid: str) -> int:
    return next(i for i, e in enumerate(bundle["entry"]) if e["resource"].get("id") == rid)


@pytest.fixture
def bob() -> dict[str, Any]:
    return sample("gp-connect-bob.stu3.json")


@pytest.fixture
def bob_items(bob: dict[str, Any]) -> dict[str, Item]:
    return by_id(parse(bob))


# GP Connect STU3 in, R4 out


def test_gp_connect_record_becomes_one_item_per_clinical_resource(bob_items: dict[str, Item]) -> None:
    kinds = sorted(item.kind for item in bob_items.values())
    assert kinds.count("fhir:Condition") == 3
    assert kinds.count("fhir:List") == 7
    clinical = "MedicationStatement MedicationRequest Medication AllergyIntolerance Immunization Observation"
    assert {f"fhir:{kind}" for kind in [*clinical.split(), "Encounter"]} <= set(kinds)
    assert not {"fhir:Patient", "fhir:Organization", "fhir:Practitioner", "fhir:PractitionerRole"} & set(
        kinds
    )
    for item in bob_items.values():
        assert (item.identifier_kind, item.identifier, item.category) == ("nhs_number", BOB_NHS, "health")
        assert item.kind == f"fhir:{item.payload['resourceType']}"
        assert item.source_record_id == item.payload["id"]


def test_every_payload_validates_as_r4(bob_items: dict[str, Item]) -> None:
    for item in bob_items.values():
        get_fhir_model_class(item.payload["resourceType"]).model_validate(item.payload)
        assert item.payload["meta"]["profile"] == [
            f"https://fhir.hl7.org.uk/StructureDefinition/UKCore-{item.payload['resourceType']}"
        ]


def test_condition_status_codes_become_codeable_concepts(bob_items: dict[str, Item]) -> None:
    diabetes = bob_items[DIABETES].payload
    assert diabetes["clinicalStatus"] == {
        "coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]
    }
    assert diabetes["verificationStatus"]["coding"][0] == {
        "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
        "code": "confirmed",
    }
    assert diabetes["code"]["coding"][0]["code"] == "44054006"
    assert diabetes["recordedDate"] == "2019-06-03T11:12:00+01:00" and "assertedDate" not in diabetes
    assert diabetes["category"][0]["coding"][0]["system"] == (
        "http://terminology.hl7.org/CodeSystem/condition-category"
    )
    assert diabetes["asserter"]["display"] == "Dr Aisha Rahman"


def test_allergy_follows_nhs_england_map(bob_items: dict[str, Item]) -> None:
    allergy = next(i.payload for i in bob_items.values() if i.kind == "fhir:AllergyIntolerance")
    assert allergy["clinicalStatus"]["coding"][0] == {
        "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
        "code": "active",
    }
    assert allergy["verificationStatus"]["coding"][0]["system"] == (
        "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
    )
    assert allergy["recordedDate"] == "2024-09-19T10:32:00+01:00" and "assertedDate" not in allergy
    assert allergy["encounter"] == {"reference": f"Encounter/{CONSULTATION}"}  # was associatedEncounter
    assert "extension" not in allergy
    assert (allergy["type"], allergy["category"]) == ("allergy", ["medication"])


def test_immunization_date_protocol_and_performer(bob_items: dict[str, Item]) -> None:
    flu = bob_items[FLU].payload
    assert flu["status"] == "completed"
    assert flu["occurrenceDateTime"] == "2024-10-08T09:40:00+01:00" and "date" not in flu
    assert "notGiven" not in flu and "vaccinationProtocol" not in flu and "practitioner" not in flu
    assert flu["protocolApplied"][0]["doseNumberPositiveInt"] == 1
    assert flu["protocolApplied"][0]["targetDisease"][0]["coding"][0]["code"] == "6142004"
    assert flu["protocolApplied"][0]["extension"][0]["url"].endswith(
        "Immunization.vaccinationProtocol.doseStatus"
    )
    assert flu["performer"][0]["actor"]["display"] == "Dr Aisha Rahman"
    assert (
        flu["performer"][0]["function"]["coding"][0]["system"]
        == "http://terminology.hl7.org/CodeSystem/v2-0443"
    )
    assert flu["reasonCode"] == [{"text": "Annual seasonal influenza programme"}]


def test_immunization_not_given_becomes_not_done(bob_items: dict[str, Item]) -> None:
    shingles = bob_items[SHINGLES].payload
    assert shingles["status"] == "not-done"
    assert shingles["statusReason"] == {"text": "Patient declined"}
    assert "explanation" not in shingles


def test_medication_statement_taken_and_dosage(bob_items: dict[str, Item]) -> None:
    statement = next(i.payload for i in bob_items.values() if i.kind == "fhir:MedicationStatement")
    assert statement["status"] == "active" and "taken" not in statement
    taken = "http://hl7.org/fhir/3.0/StructureDefinition/extension-MedicationStatement.taken"
    assert {"url": taken, "valueCode": "unk"} in statement["extension"]
    assert statement["dosage"][0]["doseAndRate"] == [{"doseQuantity": {"value": 1, "unit": "tablet"}}]
    assert "doseQuantity" not in statement["dosage"][0]


def test_medication_statement_not_taken(bob: dict[str, Any]) -> None:
    statement = next(
        e["resource"] for e in bob["entry"] if e["resource"]["resourceType"] == "MedicationStatement"
    )
    statement["taken"] = "n"
    statement["reasonNotTaken"] = [{"text": "Stomach upset"}]
    converted = by_id(parse(bob))[statement["id"]].payload
    assert converted["status"] == "not-taken"
    assert converted["statusReason"] == [{"text": "Stomach upset"}]


def test_medication_request_requester_and_context(bob_items: dict[str, Item]) -> None:
    plan = bob_items["1b6e9d30-7a52-4c8f-9e14-5d2c0a8b7f63"].payload
    assert plan["requester"]["reference"] == "Practitioner/c47e2a19-5d83-4b6f-a0e1-93b2f8d6a517"
    assert plan["extension"][-1]["url"].endswith("MedicationRequest.requester.onBehalfOf")
    assert plan["recorder"]["display"] == "Dr Aisha Rahman"  # a PractitionerRole, named by its practitioner
    assert plan["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] == 1


def test_observation_context_comment_and_interpretation(bob_items: dict[str, Item]) -> None:
    hba1c = bob_items[HBA1C_SEPT].payload
    assert hba1c["valueQuantity"] == {
        "value": 52,
        "unit": "mmol/mol",
        "system": "http://unitsofmeasure.org",
        "code": "mmol/mol",
    }
    assert hba1c["encounter"] == {"reference": f"Encounter/{CONSULTATION}"} and "context" not in hba1c
    assert hba1c["note"] == [{"text": "Improved since March; continue metformin."}]
    assert (
        hba1c["interpretation"][0]["coding"][0]["system"] == "http://terminology.hl7.org/CodeSystem/v2-0078"
    )


def test_encounter_class_system_and_reason(bob_items: dict[str, Item]) -> None:
    encounter = bob_items[CONSULTATION].payload
    assert encounter["class"]["system"] == "http://terminology.hl7.org/CodeSystem/v3-ActCode"
    assert encounter["reasonCode"][0]["coding"][0]["code"] == "44054006" and "reason" not in encounter


def test_encounter_without_class_gets_data_absent_reason(bob: dict[str, Any]) -> None:
    del resource(bob, CONSULTATION)["class"]
    encounter = by_id(parse(bob))[CONSULTATION].payload
    assert encounter["class"]["extension"][0]["valueCode"] == "unknown"


def test_medication_form_and_brand(bob: dict[str, Any]) -> None:
    medication = resource(bob, "47a0c3e8-9b16-4d25-8f7e-2c5b1a9d06f3")
    medication["isBrand"] = False
    medication["package"] = {"batch": [{"lotNumber": "MF2291", "expirationDate": "2026-01-31"}]}
    converted = by_id(parse(bob))[medication["id"]].payload
    assert converted["form"]["coding"][0]["code"] == "385055001"
    assert converted["batch"] == {"lotNumber": "MF2291", "expirationDate": "2026-01-31"}
    assert converted["extension"][0]["url"].endswith("Medication.isBrand")


def test_lists_say_which_areas_are_empty_or_withheld(bob_items: dict[str, Item]) -> None:
    lists = {
        i.payload["code"]["coding"][0]["code"]: i.payload for i in bob_items.values() if i.kind == "fhir:List"
    }
    referrals = lists["792931000000107"]
    assert referrals["emptyReason"]["coding"][0] == {
        "system": "http://terminology.hl7.org/CodeSystem/list-empty-reason",
        "code": "no-content-recorded",
        "display": "No Content Recorded",
    }
    assert lists["1149501000000101"]["extension"][0]["valueCode"] == "confidential-items"


def test_restricted_items_are_sensitive(bob_items: dict[str, Item]) -> None:
    assert bob_items[DEPRESSION].sensitive
    assert [i.source_record_id for i in bob_items.values() if i.sensitive] == [DEPRESSION]


def test_versions_come_from_numeric_version_ids(bob_items: dict[str, Item]) -> None:
    assert bob_items[DIABETES].version == 3
    assert bob_items[HBA1C_SEPT].version == 2
    assert bob_items[FLU].version == 1


def test_occurred_at_is_the_clinical_time_in_utc(bob_items: dict[str, Item]) -> None:
    assert bob_items[DIABETES].occurred_at == dt.datetime(2019, 6, 3, tzinfo=dt.UTC)  # onset
    assert bob_items[FLU].occurred_at == dt.datetime(2024, 10, 8, 8, 40, tzinfo=dt.UTC)  # date, BST
    assert bob_items[HBA1C_SEPT].occurred_at == dt.datetime(2024, 9, 19, 7, 50, tzinfo=dt.UTC)
    assert bob_items[CONSULTATION].occurred_at == dt.datetime(2024, 9, 19, 9, 20, tzinfo=dt.UTC)
    assert bob_items["47a0c3e8-9b16-4d25-8f7e-2c5b1a9d06f3"].occurred_at == NOW  # a Medication has no time


# R4 in, R4 out


def test_r4_bundle_passes_through() -> None:
    sam = sample("sam.r4.json")
    items = parse(sam, "application/fhir+json")
    assert [i.kind for i in items] == ["fhir:Immunization", "fhir:Immunization", "fhir:Observation"]
    assert {i.identifier for i in items} == {"9990000026"}
    originals = [e["resource"] for e in sam["entry"][2:]]
    assert [i.payload for i in items] == originals
    assert items[2].version == 4
    assert items[0].occurred_at == dt.datetime(2020, 2, 20, tzinfo=dt.UTC)


def test_version_parameter_overrides_detection() -> None:
    sam = sample("sam.r4.json")
    problems = refused(sam, "application/fhir+json; fhirVersion=3.0")
    assert any(p.field == "entry[2].resource.occurrenceDateTime" for p in problems)  # not STU3
    assert parse(sam, "application/json; fhirVersion=4.0")


def test_unsupported_fhir_version_is_refused() -> None:
    problems = refused(sample("sam.r4.json"), "application/fhir+json; fhirVersion=5.0")
    assert problems[0] == Problem(
        None, "media_type", "fhirVersion 5.0 is not supported: send 3.0 (STU3) or 4.0 (R4)"
    )


def test_version_found_by_fields_without_profiles(bob: dict[str, Any]) -> None:
    for doc in (bob, *(e["resource"] for e in bob["entry"])):
        doc.get("meta", {}).pop("profile", None)
    assert by_id(parse(bob))[DIABETES].payload["clinicalStatus"]["coding"][0]["code"] == "active"


def test_mixed_versions_are_refused(bob: dict[str, Any]) -> None:
    for doc in (bob, *(e["resource"] for e in bob["entry"])):
        doc.get("meta", {}).pop("profile", None)
    resource(bob, DIABETES)["recordedDate"] = "2019-06-03"
    problems = refused(bob)
    assert Problem(None, "entry", "mixes FHIR STU3 and R4 resources; send one version per Bundle") in problems


# Refused deliveries


def test_bad_bundle_lists_every_error_with_index_and_field() -> None:
    problems = refused(sample("bad.stu3.json"))
    found = {(p.index, p.field) for p in problems}
    assert found == {
        (0, "entry[0].resource.identifier[0].value"),  # Modulus 11
        (5, "entry[5].resource.clinicalStatus"),  # 'activ'
        (6, "entry[6].resource.id"),  # duplicate Condition id
        (14, "entry[14].resource.colour"),  # no such element
        (16, "entry[16].resource.date"),  # 2099
        (19, "entry[19].resource.valueQuantity.value"),  # 'fifty-eight'
        (20, "entry[20].resource.status"),  # 'done'
    }
    assert [p.index for p in problems] == sorted(p.index for p in problems)


def test_invalid_json_is_refused() -> None:
    problems = refused(b'{"resourceType": "Bundle", ')
    assert [(p.index, p.field) for p in problems] == [(None, "body")]
    assert problems[0].reason.startswith("not valid JSON")


def test_nan_is_not_json() -> None:
    assert refused(b'{"resourceType": "Bundle", "type": "collection", "total": NaN}')[0].field == "body"


def test_a_resource_that_is_not_a_bundle_is_refused(bob: dict[str, Any]) -> None:
    problems = refused(bob["entry"][0]["resource"])
    assert problems == [Problem(None, "resourceType", "expected a FHIR Bundle, found 'Patient'")]
    assert refused([bob])[0].reason == "expected a FHIR Bundle, found 'list'"


@pytest.mark.parametrize("kind", ["document", "message", "history", "batch-response", "colection"])
def test_wrong_bundle_type_is_refused(bob: dict[str, Any], kind: str) -> None:
    bob["type"] = kind
    problems = refused(bob)
    assert problems[0].index is None and problems[0].field == "type"


@pytest.mark.parametrize("kind", ["searchset", "collection"])
def test_searchset_and_collection_are_accepted(kind: str) -> None:
    sam = sample("sam.r4.json")
    sam["type"] = kind
    assert len(parse(sam)) == 3


def test_transaction_entries_need_requests() -> None:  # bdl-3
    sam = sample("sam.r4.json")
    sam["type"] = "transaction"
    problems = refused(sam)
    assert {p.field for p in problems} == {f"entry[{i}].request" for i in range(5)}
    for e in sam["entry"]:
        e["request"] = {"method": "PUT", "url": f"{e['resource']['resourceType']}/{e['resource']['id']}"}
    assert len(parse(sam)) == 3


def test_unknown_media_type_is_refused() -> None:
    assert refused(sample("sam.r4.json"), "text/plain")[0].field == "media_type"


@pytest.mark.parametrize(
    ("rid", "element", "value", "field"),
    [
        (DIABETES, "clinicalStatus", "cured", "clinicalStatus"),
        (DIABETES, "verificationStatus", "maybe", "verificationStatus"),
        (HBA1C_SEPT, "status", "done", "status"),
        (FLU, "status", "not-done", "status"),  # R4 only: STU3 says notGiven
        ("d82a4f17-5c6b-4e09-a3d1-9f70b2e5c418", "status", "taking", "status"),
        ("d82a4f17-5c6b-4e09-a3d1-9f70b2e5c418", "taken", "maybe", "taken"),
        ("58c1f0a7-3e92-4b6d-a8f5-d4e27c9b1036", "clinicalStatus", "current", "clinicalStatus"),
        ("58c1f0a7-3e92-4b6d-a8f5-d4e27c9b1036", "verificationStatus", "likely", "verificationStatus"),
        ("58c1f0a7-3e92-4b6d-a8f5-d4e27c9b1036", "category", ["drug"], "category[0]"),
        (CONSULTATION, "status", "done", "status"),
        ("1b6e9d30-7a52-4c8f-9e14-5d2c0a8b7f63", "intent", "option", "intent"),  # R4 only
    ],
)
def test_status_outside_its_value_set_is_refused(
    bob: dict[str, Any], rid: str, element: str, value: object, field: str
) -> None:
    resource(bob, rid)[element] = value
    i = index_of(bob, rid)
    assert [(p.index, p.field) for p in refused(bob)] == [(i, f"entry[{i}].resource.{field}")]


def test_r4_status_concepts_are_checked() -> None:
    sam = sample("sam.r4.json")
    sam["entry"].append(copy.deepcopy(sam["entry"][4]))
    condition = {
        "resourceType": "Condition",
        "id": "4f2e8a61-0b7d-4c39-a5e2-9d1c6b3f8e70",
        "clinicalStatus": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "cured"}
            ]
        },
        "code": {"text": "Chickenpox"},
        "subject": {"reference": sam["entry"][0]["fullUrl"]},
    }
    sam["entry"][5] = {"fullUrl": "urn:uuid:4f2e8a61-0b7d-4c39-a5e2-9d1c6b3f8e70", "resource": condition}
    assert [p.field for p in refused(sam)] == ["entry[5].resource.clinicalStatus.coding[0].code"]


def test_duplicate_id_is_refused(bob: dict[str, Any]) -> None:
    copy_of_flu = copy.deepcopy(resource(bob, FLU))
    bob["entry"].append({"resource": copy_of_flu})
    last = len(bob["entry"]) - 1
    problems = refused(bob)
    assert problems == [
        Problem(
            last,
            f"entry[{last}].resource.id",
            f"duplicate id Immunization/{FLU}: entry[{index_of(bob, FLU)}] has it too",
        )
    ]


def test_same_id_on_different_types_is_allowed(bob: dict[str, Any]) -> None:
    resource(bob, CONSULTATION)["id"] = DIABETES
    assert DIABETES in {i.source_record_id for i in parse(bob) if i.kind == "fhir:Encounter"}


def test_duplicate_full_url_is_refused() -> None:  # bdl-7
    sam = sample("sam.r4.json")
    sam["entry"][3]["fullUrl"] = sam["entry"][2]["fullUrl"]
    assert [p.field for p in refused(sam)] == ["entry[3].fullUrl"]


def test_future_dates_are_refused_but_clock_skew_is_allowed(bob: dict[str, Any]) -> None:
    hba1c = resource(bob, HBA1C_SEPT)
    hba1c["effectiveDateTime"] = (NOW + dt.timedelta(minutes=3)).isoformat()
    parse(bob)
    hba1c["effectiveDateTime"] = (NOW + dt.timedelta(hours=1)).isoformat()
    i = index_of(bob, HBA1C_SEPT)
    problems = refused(bob)
    assert [(p.index, p.field) for p in problems] == [(i, f"entry[{i}].resource.effectiveDateTime")]
    assert problems[0].reason.endswith("is in the future")


def test_a_date_is_future_only_once_it_has_begun_nowhere(bob: dict[str, Any]) -> None:
    resource(bob, FLU)["date"] = "2025-03-15"  # begins at UTC+14, 10:00 UTC on the 14th: already begun
    parse(bob)
    resource(bob, FLU)["date"] = "2025-03-16"
    assert refused(bob)[0].field == f"entry[{index_of(bob, FLU)}].resource.date"


def test_planned_encounter_may_be_in_the_future(bob: dict[str, Any]) -> None:
    encounter = resource(bob, CONSULTATION)
    encounter["status"] = "planned"
    encounter["period"] = {"start": "2025-04-02T09:00:00+01:00"}
    assert parse(bob)


def test_bad_nhs_number_is_refused(bob: dict[str, Any]) -> None:
    bob["entry"][0]["resource"]["identifier"][0]["value"] = "9990000035"
    assert refused(bob) == [
        Problem(
            0,
            "entry[0].resource.identifier[0].value",
            "not a valid NHS number: 10 digits passing the Modulus 11 check",
        )
    ]


def test_patient_without_nhs_number_is_refused(bob: dict[str, Any]) -> None:
    bob["entry"][0]["resource"]["identifier"][0]["system"] = "https://fhir.nhs.uk/Id/local-patient-identifier"
    assert [p.field for p in refused(bob)] == ["entry[0].resource.identifier"]


def test_missing_patient_is_refused(bob: dict[str, Any]) -> None:
    del bob["entry"][0]
    problems = refused(bob)
    assert problems[0] == Problem(None, "entry", "no Patient: the Bundle must say whose record it is")


def test_two_patients_are_refused(bob: dict[str, Any]) -> None:
    alice = copy.deepcopy(bob["entry"][0])
    alice["resource"].update(
        id="91c4e7a2-6d3f-4b08-8e5a-2f7c0d9b1e36", name=[{"family": "Okafor", "given": ["Alice"]}]
    )
    alice["resource"]["identifier"][0]["value"] = "9990000018"
    bob["entry"].append(alice)
    last = len(bob["entry"]) - 1
    assert refused(bob) == [
        Problem(last, f"entry[{last}].resource", "a second Patient: a Bundle carries one person's record")
    ]


def test_record_about_someone_else_is_refused(bob: dict[str, Any]) -> None:
    resource(bob, FLU)["patient"] = {"reference": "Patient/91c4e7a2-6d3f-4b08-8e5a-2f7c0d9b1e36"}
    assert [p.field for p in refused(bob)] == [f"entry[{index_of(bob, FLU)}].resource.patient.reference"]


def test_clinical_resource_without_id_is_refused(bob: dict[str, Any]) -> None:
    del resource(bob, FLU)["id"]
    i = next(i for i, e in enumerate(bob["entry"]) if "id" not in e["resource"])
    assert [p.field for p in refused(bob)] == [f"entry[{i}].resource.id"]


def test_conversion_result_is_validated_as_r4(bob: dict[str, Any]) -> None:
    del resource(bob, FLU)["date"]  # optional in STU3; R4 requires occurrence[x]
    i = index_of(bob, FLU)
    problems = refused(bob)
    assert [(p.index, p.field) for p in problems] == [(i, f"entry[{i}].resource")]
    assert problems[0].reason.startswith("after conversion to R4:")


def test_refusal_is_a_problem_json_listing_every_error() -> None:
    with pytest.raises(DeliveryInvalid) as caught:
        parse(sample("bad.stu3.json"))
    body = caught.value.problem()
    assert body["status"] == 422 and len(body["errors"]) == 7
    assert body["errors"][0] == {
        "index": 0,
        "field": "entry[0].resource.identifier[0].value",
        "reason": "not a valid NHS number: 10 digits passing the Modulus 11 check",
    }
