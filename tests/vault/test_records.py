"""Putting records: idempotent, versioned, all or nothing; getting and listing them back."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from pds.db import run_transaction
from pds.errors import NotFound, ValidationError
from pds.runtime import Runtime
from pds.vault import NewRecord, StoredRecord
from pds.vault.models import Citizen
from tests.conftest import add_citizen, record, record_count


def test_put_then_get_returns_the_payload(runtime: Runtime, source: str) -> None:
    alice = add_citizen(runtime)
    with runtime.vault() as v:
        (rid,) = v.records.put(
            [record(alice, "obs-1", valueQuantity={"value": 52, "unit": "mmol/mol"})]
        ).stored
    with runtime.vault() as v:
        got = v.records.get(rid)
    assert got.citizen_id == alice and got.source == "test-gp" and got.source_record_id == "obs-1"
    assert got.payload["valueQuantity"] == {"value": 52, "unit": "mmol/mol"}
    assert got.occurred_at == dt.datetime(2026, 1, 1, 10, tzinfo=dt.UTC)
    assert got.received_at.tzinfo is not None


def test_the_same_source_id_and_version_twice_is_stored_once(
    runtime: Runtime, source: str, db_url: str
) -> None:
    alice = add_citizen(runtime)
    with runtime.vault() as v:
        first = v.records.put([record(alice, "obs-1")])
    with runtime.vault() as v:
        again = v.records.put([record(alice, "obs-1")])
    assert first.counts() == {"stored": 1, "updated": 0, "unchanged": 0}
    assert again.counts() == {"stored": 0, "updated": 0, "unchanged": 1}
    assert again.unchanged == first.stored
    assert record_count(db_url) == 1


def test_a_newer_version_replaces_and_an_older_one_never_does(runtime: Runtime, source: str) -> None:
    alice = add_citizen(runtime)
    with runtime.vault() as v:
        (rid,) = v.records.put([record(alice, "obs-1", version=2, note="v2")]).stored
    with runtime.vault() as v:
        assert v.records.put([record(alice, "obs-1", version=1, note="v1")]).unchanged == [rid]
    with runtime.vault() as v:
        assert v.records.get(rid).payload["note"] == "v2"
        assert v.records.put([record(alice, "obs-1", version=3, note="v3")]).updated == [rid]
    with runtime.vault() as v:
        got = v.records.get(rid)
    assert (got.version, got.payload["note"]) == (3, "v3")


def test_versions_out_of_order_in_one_batch_keep_the_newest(runtime: Runtime, source: str) -> None:
    alice = add_citizen(runtime)
    batch = [record(alice, "obs-1", version=v, note=f"v{v}") for v in (2, 5, 1, 4)]
    with runtime.vault() as v:
        (rid,) = v.records.put(batch).stored
    with runtime.vault() as v:
        assert v.records.get(rid).payload["note"] == "v5"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"category": "gossip"}, "records[2].category"),
        ({"kind": "Observation"}, "records[2].kind"),
        ({"version": -1}, "records[2].version"),
        ({"version": "7"}, "records[2].version"),
        ({"source_record_id": ""}, "records[2].source_record_id"),
        ({"occurred_at": dt.datetime(2026, 1, 1)}, "records[2].occurred_at"),  # no time zone
        ({"payload": {"x": float("nan")}}, "records[2].payload"),
        ({"payload": ["not", "an", "object"]}, "records[2].payload"),
        ({"source": "unknown-source"}, "records[2].source"),
        ({"citizen_id": uuid.UUID(int=7)}, "records[2].citizen_id"),
    ],
)
def test_a_batch_with_one_bad_record_stores_nothing(
    runtime: Runtime, source: str, db_url: str, change: dict, field: str
) -> None:
    alice = add_citizen(runtime)
    batch = [record(alice, f"obs-{i}") for i in range(4)]
    bad = batch[2]
    batch[2] = NewRecord(**{**bad.__dict__, **change})
    with pytest.raises(ValidationError) as err, runtime.vault() as v:
        v.records.put(batch)
    assert err.value.field == field
    assert record_count(db_url) == 0


def test_a_batch_failing_in_the_database_leaves_nothing(runtime: Runtime, source: str, db_url: str) -> None:
    """Atomic even past validation: a database failure on the second statement undoes the first."""
    alice = add_citizen(runtime)
    with runtime.vault() as v:
        v.records.put([record(alice, "old", version=1)])

    def put_then_fail(session):  # type: ignore[no-untyped-def]
        vault = runtime.open_vault(session)
        vault.records.put([record(alice, "new-1"), record(alice, "new-2"), record(alice, "old", version=2)])
        session.execute(
            insert(Citizen).values(id=uuid.uuid4(), status="bogus", created_at=dt.datetime.now(dt.UTC))
        )

    with pytest.raises(IntegrityError):
        run_transaction(runtime.sessions, put_then_fail)
    assert record_count(db_url) == 1
    with runtime.vault() as v:
        assert v.records.list(alice).items[0].version == 1


def test_a_source_record_cannot_move_to_another_citizen(runtime: Runtime, source: str) -> None:
    alice, bob = add_citizen(runtime, "Alice"), add_citizen(runtime, "Bob")
    with runtime.vault() as v:
        v.records.put([record(alice, "obs-1")])
    with pytest.raises(ValidationError, match="another citizen") as err, runtime.vault() as v:
        v.records.put([record(bob, "obs-1", version=2)])
    assert err.value.field == "records[0].citizen_id"


def test_a_batch_over_the_limit_is_refused(runtime: Runtime, source: str) -> None:
    alice = add_citizen(runtime)
    too_many = [record(alice, f"o{i}") for i in range(runtime.settings.vault.max_batch + 1)]
    with pytest.raises(ValidationError, match="at most") as err, runtime.vault() as v:
        v.records.put(too_many)
    assert err.value.field == "records"


def test_get_of_an_unknown_record_is_not_found(runtime: Runtime) -> None:
    with pytest.raises(NotFound), runtime.vault() as v:
        v.records.get(uuid.uuid4())


def _day(n: int) -> str:
    return (dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(days=n)).isoformat()


def test_list_filters_by_category_kind_and_time(runtime: Runtime, source: str) -> None:
    alice = add_citizen(runtime)
    with runtime.vault() as v:
        v.sources.ensure("test-school", kind="oneroster", title="School")
        v.records.put([record(alice, f"h{i}", when=_day(i)) for i in range(5)])
        v.records.put(
            [
                record(alice, f"e{i}", when=_day(i), category="education", source="test-school")
                for i in range(3)
            ]
        )
    with runtime.vault() as v:
        assert len(v.records.list(alice).items) == 8
        assert {r.category for r in v.records.list(alice, category="education").items} == {"education"}
        assert len(v.records.list(alice, kind="fhir:Observation").items) == 8
        window = v.records.list(
            alice,
            category="health",
            since=dt.datetime.fromisoformat(_day(1)),
            until=dt.datetime.fromisoformat(_day(3)),
        )
        assert [r.source_record_id for r in window.items] == ["h2", "h1"]
        with pytest.raises(ValidationError) as err:
            v.records.list(alice, category="gossip")
        assert err.value.field == "category"


def test_pagination_is_stable_while_records_arrive(runtime: Runtime, source: str) -> None:
    alice = add_citizen(runtime)
    with runtime.vault() as v:
        # several records share a time, so the order must fall back on the id
        v.records.put([record(alice, f"r{i:02d}", when=_day(i // 3)) for i in range(25)])
    seen: list[str] = []
    cursor = None
    with runtime.vault() as v:
        page = v.records.list(alice, limit=10)
    seen += [r.source_record_id for r in page.items]
    with runtime.vault() as v:  # a newer record arrives between pages; it must not shift them
        v.records.put([record(alice, "late", when=_day(100))])
    cursor = page.next_cursor
    while cursor:
        with runtime.vault() as v:
            page = v.records.list(alice, limit=10, cursor=cursor)
        seen += [r.source_record_id for r in page.items]
        cursor = page.next_cursor
    assert len(seen) == 25 and len(set(seen)) == 25
    assert "late" not in seen


def test_a_forged_cursor_is_refused(runtime: Runtime) -> None:
    alice = add_citizen(runtime)
    with pytest.raises(ValidationError) as err, runtime.vault() as v:
        v.records.list(alice, cursor="not-a-cursor!")
    assert err.value.field == "cursor"


def test_page_size_is_bounded(runtime: Runtime) -> None:
    alice = add_citizen(runtime)
    with pytest.raises(ValidationError) as err, runtime.vault() as v:
        v.records.list(alice, limit=runtime.settings.vault.max_page_size + 1)
    assert err.value.field == "limit"


def test_export_streams_every_record_oldest_first(runtime: Runtime, source: str) -> None:
    alice, bob = add_citizen(runtime, "Alice"), add_citizen(runtime, "Bob")
    with runtime.vault() as v:
        v.records.put([record(alice, f"a{i}", when=_day(10 - i)) for i in range(7)] + [record(bob, "b0")])
    with runtime.vault() as v:
        exported = [r.source_record_id for r in v.records.export(alice)]
    assert exported == [f"a{i}" for i in reversed(range(7))]


def _json_dumps_bytes(r: StoredRecord) -> bytes:
    """How to_json_bytes used to write a record: json.dumps of its fields, the stored payload spliced in."""
    meta = json.dumps(r._meta(), separators=(",", ":"), ensure_ascii=False).encode()
    return meta[:-1] + b',"payload":' + r.payload_json + b"}"


TRICKY_TEXT = [
    "obs-1",
    "",
    'say "hi"',
    "back\\slash",
    "".join(map(chr, range(0x20))),  # every control JSON escapes
    "\x7f del, \x80 and \x9f (not escaped by JSON)",
    "café, Zoë, 日本語",
    "\u2028 line and \u2029 paragraph separators",
    "astral 😀 𝄞",
    "\ufeff bom \ufffe",
    "</script>",
]


@pytest.mark.parametrize("text", TRICKY_TEXT)
def test_record_json_bytes_are_the_bytes_json_dumps_writes(text: str) -> None:
    zones = [dt.UTC, dt.timezone(dt.timedelta(hours=5, minutes=30)), dt.timezone(-dt.timedelta(hours=8))]
    for i, (version, sensitive, zone) in enumerate(
        [(0, False, zones[0]), (2**63 - 1, True, zones[1]), (7, False, zones[2])]
    ):
        r = StoredRecord(
            id=uuid.uuid4(),
            citizen_id=uuid.uuid4(),
            category=text or "health",
            kind=f"fhir:{text}",
            source=text,
            source_record_id=text,
            version=version,
            occurred_at=dt.datetime(2026, 1, 1, 10, 0, 0, i * 1234, tzinfo=zone),
            received_at=dt.datetime(1999, 12, 31, 23, 59, 59, tzinfo=zone),
            payload_json=json.dumps({"note": text}, separators=(",", ":"), ensure_ascii=False).encode(),
            sensitive=sensitive,
        )
        assert r.to_json_bytes() == _json_dumps_bytes(r)
        assert json.loads(r.to_json_bytes()) == r.to_json()


def test_record_json_refuses_a_lone_surrogate_as_json_dumps_did() -> None:
    r = StoredRecord(
        uuid.uuid4(),
        uuid.uuid4(),
        "health",
        "fhir:Observation",
        "gp",
        "\ud800",
        1,
        dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        b"{}",
    )
    with pytest.raises(UnicodeEncodeError):
        _json_dumps_bytes(r)
    with pytest.raises(UnicodeEncodeError):
        r.to_json_bytes()


def test_records_read_back_write_the_bytes_json_dumps_writes(runtime: Runtime, source: str) -> None:
    alice = add_citizen(runtime)
    with runtime.vault() as v:
        # PostgreSQL keeps no NUL in text: the other controls go through the database
        texts = [text.replace("\x00", "") or "empty" for text in TRICKY_TEXT]
        v.records.put([record(alice, text, when=_day(i)) for i, text in enumerate(texts)])
    with runtime.vault() as v:
        listed = v.records.list(alice, categories=["health"], kind="fhir:Observation").items
        got = v.records.get(listed[0].id)
        exported = list(v.records.export(alice))
    assert len(listed) == len(exported) == len(TRICKY_TEXT)
    for r in [*listed, got, *exported]:
        assert r.to_json_bytes() == _json_dumps_bytes(r)


def test_listing_no_category_at_all_finds_nothing(runtime: Runtime, source: str) -> None:
    alice = add_citizen(runtime)
    with runtime.vault() as v:
        v.records.put([record(alice, "obs-1")])
    with runtime.vault() as v:
        assert v.records.list(alice, categories=[]).items == []
        assert len(v.records.list(alice, categories=["health", "education"]).items) == 1
