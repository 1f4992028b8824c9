"""Open311 GeoReport v2 deliveries (with the FixMyStreet updates extension) into normalised items."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from connectors.base import DeliveryInvalid
from connectors.open311 import Open311Parser

SAMPLES = Path(__file__).resolve().parents[2] / "connectors" / "samples" / "open311"


def parse(doc: object, identifier_kind: str = "council_account"):  # type: ignore[no-untyped-def]
    return Open311Parser(identifier_kind=identifier_kind).parse(
        json.dumps(doc).encode(), media_type="application/json"
    )


def test_a_council_delivery_becomes_a_case_and_its_timeline() -> None:
    items = Open311Parser().parse((SAMPLES / "council.json").read_bytes(), media_type="application/json")
    request, *updates = items
    assert (request.kind, request.category, request.source_record_id) == (
        "open311:request",
        "case",
        "PP-2026-004211",
    )
    assert (request.identifier_kind, request.identifier) == ("council_account", "EBC-100234")
    assert request.payload["status_notes"].startswith("Proof of address received")
    assert request.payload["expected_datetime"] == "2026-12-02T17:00:00+00:00"
    assert request.occurred_at.isoformat() == "2026-11-18T14:02:00+00:00"
    assert [u.kind for u in updates] == ["open311:update", "open311:update"]
    assert [u.payload["status"] for u in updates] == ["open", "investigating"]
    assert all((u.identifier_kind, u.identifier) == ("record", "PP-2026-004211") for u in updates)
    assert updates[1].version > updates[0].version  # later update, higher version


def test_bare_arrays_of_requests_or_of_updates_are_read_as_the_api_returns_them() -> None:
    (crime,) = Open311Parser(identifier_kind="crime_reference").parse(
        (SAMPLES / "police.json").read_bytes(), media_type="application/json"
    )
    assert (crime.identifier_kind, crime.identifier) == ("crime_reference", "EC-26-118734")
    updates = Open311Parser().parse(
        (SAMPLES / "police-updates.json").read_bytes(), media_type="application/json"
    )
    assert [u.source_record_id for u in updates] == ["EC-26-118734-1", "EC-26-118734-2"]


def test_ids_sent_as_numbers_and_positions_as_strings_are_normalised() -> None:
    (item,) = parse(
        [
            {
                "service_request_id": 4519307,
                "status": "open",
                "service_code": "POT",
                "requested_datetime": "2025-03-10T08:42:11Z",
                "lat": "52.2031",
                "long": "0.1384",
                "account_id": 77,
            }
        ]
    )
    assert item.source_record_id == "4519307" and item.identifier == "77"
    assert item.payload["lat"] == 52.2031 and item.payload["long"] == 0.1384


GOOD = {
    "service_request_id": "R1",
    "status": "open",
    "service_code": "POT",
    "requested_datetime": "2025-03-10T08:42:11+00:00",
    "updated_datetime": "2025-03-11T08:42:11+00:00",
    "account_id": "A1",
}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"status": "pending"}, "status"),
        ({"service_request_id": ""}, "service_request_id"),
        ({"service_code": None}, "service_code"),
        ({"requested_datetime": "2025-03-10 08:42"}, "requested_datetime"),
        ({"requested_datetime": "2025-03-10T08:42:11"}, "requested_datetime"),  # no time zone
        ({"requested_datetime": "2025-02-30T08:42:11Z"}, "requested_datetime"),
        ({"requested_datetime": "2999-01-01T00:00:00Z", "updated_datetime": None}, "requested_datetime"),
        ({"updated_datetime": "2025-03-09T08:42:11+00:00"}, "updated_datetime"),
        ({"account_id": None}, "account_id"),
        ({"lat": 91, "long": 0}, "lat"),
        ({"lat": 52.1}, "long"),
        ({"description": "x" * 4001}, "description"),
        ({"media_url": "ftp://example.org/a.jpg"}, "media_url"),
    ],
)
def test_each_bad_request_field_is_named(change: dict, field: str) -> None:
    with pytest.raises(DeliveryInvalid) as failure:
        parse([GOOD, {**GOOD, "service_request_id": "R2", **change}])
    problems = failure.value.problems
    assert [(p.index, p.field) for p in problems] == [(1, field)]
    assert failure.value.problem()["errors"][0]["index"] == 1


def test_every_problem_in_a_delivery_is_reported_at_once() -> None:
    bad_update = {"update_id": "U1", "service_request_id": "R1", "status": "wibble", "updated_datetime": "x"}
    with pytest.raises(DeliveryInvalid) as failure:
        parse({"service_requests": [GOOD, {**GOOD, "status": "?"}], "updates": [bad_update]})
    assert [(p.index, p.field) for p in failure.value.problems] == [
        (1, "status"),
        (2, "status"),
        (2, "updated_datetime"),
    ]
    assert failure.value.status == 422


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"not json", "body"),
        (b'"a string"', "body"),
        (b'{"service_requests": {}}', "service_requests"),
        (b'{"requests": []}', "requests"),
        (b"[1, 2]", "service_request"),
    ],
)
def test_a_delivery_that_is_not_open311_is_refused(body: bytes, field: str) -> None:
    with pytest.raises(DeliveryInvalid) as failure:
        Open311Parser().parse(body, media_type="application/json")
    assert failure.value.problems[0].field == field
