"""Batch ingest's fast path keeps every guarantee of a put: the stored format, validation, atomicity."""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from typing import Any
from unittest import mock

import pytest
from sqlalchemy import text

from pds.errors import ValidationError
from pds.runtime import Runtime
from pds.vault import NewRecord, crypto
from tests.conftest import add_citizen, record, record_count

# Sealed by the implementation before the fast path (key bytes 0..31, nonce bytes 100..111, key id
# 41): today's seal must write the very same bytes, so every stored ciphertext still opens.
GOLDEN_KEY = bytes(range(32))
GOLDEN_NONCE = bytes(range(100, 112))
GOLDEN_CITIZEN = uuid.UUID("0190a000-0000-7000-8000-000000000001")
GOLDEN_ROW = uuid.UUID("0190a000-0000-7000-8000-0000000000aa")
GOLDEN_PLAINTEXT = b'{"resourceType":"Observation"}'
GOLDEN_SEALED = bytes.fromhex(
    "010100000000000000296465666768696a6b6c6d6e6f3339ac030a8623ec5d070b91aa0048c7608d6479ee1e8513"
    "d3b8c326d9de4d7ad983c0b484268b1474bf94601e8a"
)


def test_a_record_sealed_today_has_the_format_of_before() -> None:
    key = crypto.DataKey(41, GOLDEN_CITIZEN, crypto.AESGCM(GOLDEN_KEY))
    with mock.patch("os.urandom", return_value=GOLDEN_NONCE):
        sealed = crypto.seal(key, GOLDEN_PLAINTEXT, row_id=GOLDEN_ROW, category="health")
    assert sealed == GOLDEN_SEALED
    assert crypto.open_sealed(key, GOLDEN_SEALED, row_id=GOLDEN_ROW, category="health") == GOLDEN_PLAINTEXT


def test_seal_binds_the_associated_data_record_aad_defines() -> None:
    key = crypto.DataKey(3, uuid.uuid4(), crypto.AESGCM(crypto.new_data_key_material()))
    row = uuid.uuid4()
    for category in ("health", "education", "case", "profile", "é" * 300):
        sealed = crypto.seal(key, b"x", row_id=row, category=category)
        header = sealed[: crypto.HEADER.size]
        # the format's definition, written out here: domain, header, then each part with its 2-byte length
        parts = (key.citizen_id.bytes, row.bytes, category.encode())
        aad = crypto.AAD_DOMAIN + header + b"".join(len(p).to_bytes(2, "big") + p for p in parts)
        assert crypto.record_aad(header, key.citizen_id, row, category) == aad
        assert key.aead.decrypt(header[-crypto.NONCE_BYTES :], sealed[crypto.HEADER.size :], aad) == b"x"


PAYLOADS: list[dict[str, Any]] = [
    {"text": 'Zoë\'s café ☕ \u2028 \x00 "quoted" \\ back', "emoji": "🩺"},
    {"value": 0.1, "big": 1e16, "small": 1.5e-7, "int": 12345678901234567890, "neg": -0.0},
    {"nested": {"list": [1, [2, [3, {"deep": None}]], True, False]}, "empty": {}, "none": []},
    {"1": "string key", "unicode ключ": "значение"},
    {"resourceType": "Observation", "note": "no null anywhere: orjson's own bytes", "value": 5.5},
    {"text": "the word null in a string"},
]


def _compact(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def test_a_payload_is_stored_as_compact_json_of_the_same_value(runtime: Runtime, source: str) -> None:
    alice = add_citizen(runtime)
    with runtime.vault() as v:
        batch = [record(alice, f"obs-{i}", **p) for i, p in enumerate(PAYLOADS)]
        ids = v.records.put(batch).stored
    with runtime.vault() as v:
        for rid, r in zip(ids, batch, strict=True):
            stored = v.records.get(rid).payload_json
            # the same value, keys in the same order, every float to the bit, and nothing between tokens
            assert _compact(json.loads(stored)) == _compact(r.payload)
            assert len(stored) <= len(_compact(r.payload))


def _circular() -> dict[str, Any]:
    loop: dict[str, Any] = {"resourceType": "Observation"}
    loop["self"] = loop
    return loop


@pytest.mark.parametrize(
    "payload",
    [
        {"x": float("nan")},
        {"x": float("inf")},
        {"when": dt.date(2026, 1, 1)},
        {(1, 2): "tuple key"},
        _circular(),
    ],
    ids=["nan", "infinity", "a date", "a tuple key", "circular"],
)
def test_a_payload_that_is_not_json_refuses_the_batch_and_the_transaction_goes_on(
    runtime: Runtime, source: str, db_url: str, payload: dict[str, Any]
) -> None:
    alice = add_citizen(runtime)
    batch = [record(alice, f"obs-{i}") for i in range(300)]
    bad = batch[250]
    batch[250] = NewRecord(**{**bad.__dict__, "payload": payload})
    with runtime.vault() as v:
        with pytest.raises(ValidationError, match="is not JSON") as err:
            v.records.put(batch)
        assert err.value.field == "records[250].payload"
        # nothing of the refused batch is there, and the same transaction can still store
        assert v.session.execute(text("SELECT count(*) FROM record")).scalar_one() == 0
        v.records.put([record(alice, "after")])
    assert record_count(db_url) == 1


def test_a_bad_payload_refuses_the_batch_even_in_a_version_not_stored(
    runtime: Runtime, source: str, db_url: str
) -> None:
    alice = add_citizen(runtime)
    older = NewRecord(**{**record(alice, "obs-1", version=1).__dict__, "payload": {"x": float("nan")}})
    with pytest.raises(ValidationError) as err, runtime.vault() as v:
        v.records.put([older, record(alice, "obs-1", version=2)])
    assert err.value.field == "records[0].payload"
    with runtime.vault() as v:
        v.records.put([record(alice, "obs-2", version=5)])
    repeat = NewRecord(**{**record(alice, "obs-2", version=5).__dict__, "payload": {"x": float("nan")}})
    with pytest.raises(ValidationError) as err, runtime.vault() as v:
        v.records.put([repeat])  # the same version again: unchanged, but not JSON all the same
    assert err.value.field == "records[0].payload"
    assert record_count(db_url) == 1


def test_a_mixed_batch_stores_updates_and_keeps_in_one_go(runtime: Runtime, source: str) -> None:
    alice, bob = add_citizen(runtime, "Alice"), add_citizen(runtime, "Bob")
    with runtime.vault() as v:
        first = v.records.put(
            [record(alice, "a", version=1, note="a1"), record(bob, "b", version=3, note="b3")]
        )
    batch = [
        record(alice, "a", version=2, note="a2"),  # newer: updated
        record(bob, "b", version=3, note="b3 again"),  # same version: unchanged
        *(record(c, f"new-{i}", note=f"n{i}") for i, c in enumerate([alice, bob] * 3)),
    ]
    with runtime.vault() as v:
        result = v.records.put(batch)
    assert (result.updated, result.unchanged) == (first.stored[:1], first.stored[1:])
    assert len(result.stored) == 6
    with runtime.vault() as v:
        got = [v.records.get(rid) for rid in [*result.updated, *result.unchanged, *result.stored]]
    assert [g.payload["note"] for g in got] == ["a2", "b3", *(f"n{i}" for i in range(6))]
    assert [g.citizen_id for g in got[2:]] == [alice, bob] * 3


def test_new_records_get_time_ordered_ids(runtime: Runtime, source: str) -> None:
    alice = add_citizen(runtime)
    with runtime.vault() as v:
        first = v.records.put([record(alice, f"a-{i}") for i in range(50)]).stored
    time.sleep(0.002)
    with runtime.vault() as v:
        second = v.records.put([record(alice, f"b-{i}") for i in range(50)]).stored
    ids = first + second
    assert len(set(ids)) == 100
    assert {(i.version, i.variant) for i in ids} == {(7, uuid.RFC_4122)}
    assert max(first) < min(second)  # RFC 9562 s5.7: the time comes first


def test_a_key_opened_before_erasure_is_not_used_after_it(runtime: Runtime, source: str) -> None:
    alice, bob = add_citizen(runtime, "Alice"), add_citizen(runtime, "Bob")
    with runtime.vault() as v:
        v.records.put([record(alice, "a-1"), record(bob, "b-1")])  # both keys now opened and cached
    with runtime.vault() as v:
        v.citizens.erase(alice)
    with pytest.raises(ValidationError, match="no live citizen") as err, runtime.vault() as v:
        v.records.put([record(bob, "b-2"), record(alice, "a-2")])
    assert err.value.field == "records[1].citizen_id"


def test_put_leaves_the_sessions_planner_setting_as_it_was(
    runtime: Runtime, source: str, on_postgres: bool
) -> None:
    if not on_postgres:
        pytest.skip("PostgreSQL only: the COPY's foreign-key checks use cached plans")
    alice = add_citizen(runtime)
    with runtime.vault() as v:
        before = v.session.execute(text("SHOW plan_cache_mode")).scalar_one()
        v.records.put([record(alice, f"obs-{i}") for i in range(10)])
        assert v.session.execute(text("SHOW plan_cache_mode")).scalar_one() == before == "force_custom_plan"
