"""Records in vaults: batch put (idempotent, versioned, all or nothing), get, list, export."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import json
import os
import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import ARRAY, String, and_, bindparam, func, or_, select, true, update
from sqlalchemy.orm import Session

from pds.db import utcnow
from pds.errors import NotFound, ValidationError
from pds.settings import VaultSettings
from pds.vault import crypto
from pds.vault.bulk import insert_rows
from pds.vault.keys import DataKeys
from pds.vault.models import CATEGORIES, Record, Source

KIND = re.compile(r"^[a-z][a-z0-9]*:[A-Za-z][A-Za-z0-9._-]{0,54}$")
MAX_SOURCE_RECORD_ID = 255
MAX_VERSION = 2**63 - 1

_RECORDS = Record.__table__  # type: ignore[attr-defined]
# A source's id never changes its name (names are unique and never renamed), so every session of
# the process may share what it has looked up.
_SOURCE_NAMES: dict[int, str] = {}
# The escaper json.dumps uses for strings when ensure_ascii is off (the C one where there is one).
_json_string = json.encoder.encode_basestring
_UPDATED = ("category", "kind", "version", "occurred_at", "received_at", "sensitive", "payload")
# A newer version replaces the row in place; the version test makes a late, older write a no-op.
_UPDATE_IF_NEWER = (
    update(_RECORDS)
    .where(_RECORDS.c.id == bindparam("row_id"), _RECORDS.c.version < bindparam("new_version"))
    .values({name: bindparam(f"new_{name}") for name in _UPDATED})
)
# What put writes, in this order (its rows are tuples); columns most rows of a batch share come out
# of the driver conversion once (pds/vault/bulk.py).
_INSERT_COLUMNS = (
    "id",
    "citizen_id",
    "category",
    "kind",
    "source_id",
    "source_record_id",
    "version",
    "occurred_at",
    "received_at",
    "sensitive",
    "payload",
)
_REPEATING_COLUMNS = frozenset({"citizen_id", "category", "kind", "source_id", "received_at", "sensitive"})
_UPDATED_AT = [(name, _INSERT_COLUMNS.index(name)) for name in _UPDATED]

# Statements put runs for every batch, built once (building a select costs about as much as running it).
_SOURCES_NAMED = select(Source.name, Source.id).where(Source.name.in_(bindparam("names", expanding=True)))


@dataclass(frozen=True)
class NewRecord:
    """A record as a connector hands it to the vault."""

    citizen_id: uuid.UUID
    category: str
    kind: str
    source: str
    source_record_id: str
    version: int
    occurred_at: dt.datetime
    payload: Mapping[str, Any]
    sensitive: bool = False  # hidden from proxies (parents, carers)


@dataclass(frozen=True)
class StoredRecord:
    id: uuid.UUID
    citizen_id: uuid.UUID
    category: str
    kind: str
    source: str
    source_record_id: str
    version: int
    occurred_at: dt.datetime
    received_at: dt.datetime
    payload_json: bytes  # the payload as stored: compact JSON of an object
    sensitive: bool = False

    @functools.cached_property
    def payload(self) -> dict[str, Any]:
        return dict(json.loads(self.payload_json))

    def _meta(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "citizen_id": str(self.citizen_id),
            "category": self.category,
            "kind": self.kind,
            "source": self.source,
            "source_record_id": self.source_record_id,
            "version": self.version,
            "occurred_at": self.occurred_at.isoformat(),
            "received_at": self.received_at.isoformat(),
            "sensitive": self.sensitive,
        }

    def to_json(self) -> dict[str, Any]:
        return {**self._meta(), "payload": self.payload}

    def to_json_bytes(self) -> bytes:
        """The same object as to_json, serialised, with the stored payload spliced in unparsed.

        The bytes of json.dumps(self._meta(), separators=(",", ":"), ensure_ascii=False) with the payload
        added, written field by field with the string escaper json.dumps itself uses (tests/vault
        compare both): json.dumps makes an encoder per call, which cost a page more than decrypting it.
        Ids and times are written bare, as their text never holds a character JSON escapes."""
        text = _json_string
        return (
            (
                f'{{"id":"{self.id}","citizen_id":"{self.citizen_id}","category":{text(self.category)},'
                f'"kind":{text(self.kind)},"source":{text(self.source)},'
                f'"source_record_id":{text(self.source_record_id)},"version":{self.version:d},'
                f'"occurred_at":"{self.occurred_at.isoformat()}","received_at":"{self.received_at.isoformat()}",'
                f'"sensitive":{"true" if self.sensitive else "false"},"payload":'
            ).encode()
            + self.payload_json
            + b"}"
        )


@dataclass
class PutResult:
    stored: list[uuid.UUID] = field(default_factory=list)
    updated: list[uuid.UUID] = field(default_factory=list)
    unchanged: list[uuid.UUID] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {"stored": len(self.stored), "updated": len(self.updated), "unchanged": len(self.unchanged)}


@dataclass(frozen=True)
class Page:
    items: list[StoredRecord]
    next_cursor: str | None


class RecordService:
    def __init__(self, session: Session, *, keys: DataKeys, limits: VaultSettings) -> None:
        self.session = session
        self.keys = keys
        self.limits = limits
        self._source_names = _SOURCE_NAMES

    # -- writing -------------------------------------------------------------------------------

    def put(self, records: Sequence[NewRecord]) -> PutResult:
        """Store a batch in the caller's transaction. If any record is bad, raises with nothing of the
        batch written, and the transaction goes on.

        The same source id and version twice is stored once; an older version never replaces a
        newer one. If the caller's transaction fails, nothing of the batch remains.
        """
        if len(records) > self.limits.max_batch:
            raise ValidationError(f"a batch holds at most {self.limits.max_batch} records", field="records")
        _validate_all(records)
        sources = self._source_ids(records)
        self._check_citizens(records)
        latest = _latest_per_source_record(records)
        existing = self._existing(records, sources)

        # 1. decide every record's fate: one that cannot be stored raises before anything is written
        result = PutResult()
        new: list[int] = []
        newer: list[tuple[int, uuid.UUID]] = []
        for i, r in enumerate(records):
            if latest[(r.source, r.source_record_id)] != i:
                _payload_json(i, r)  # not stored, but a bad payload still refuses the batch
                continue  # a later record of this batch carries the newest version
            found = existing.get((sources[r.source], r.source_record_id))
            if found is None:
                new.append(i)
                continue
            row_id, citizen_id, version = found
            if citizen_id != r.citizen_id:
                raise ValidationError(
                    f"source record {r.source_record_id!r} belongs to another citizen",
                    field=f"records[{i}].citizen_id",
                )
            if r.version <= version:
                _payload_json(i, r)
                result.unchanged.append(row_id)
            else:
                newer.append((i, row_id))
                result.updated.append(row_id)
        result.stored = _new_ids(len(new))

        # 2. serialise, seal and write. New rows are made as the driver takes them: on PostgreSQL the
        # server stores the first while the rest are made; a payload that is not JSON raises from
        # there, and insert_rows then leaves nothing behind (pds/vault/bulk.py). Updates are made first.
        now = utcnow()
        connection = self.session.connection()
        updates = [
            {"row_id": row[0]} | {f"new_{n}": row[at] for n, at in _UPDATED_AT}
            for row in self._sealed_rows(records, newer, sources, now)
        ]
        rows = self._sealed_rows(records, zip(new, result.stored, strict=True), sources, now)
        insert_rows(connection, _RECORDS, _INSERT_COLUMNS, rows, repeating=_REPEATING_COLUMNS)
        if updates:
            connection.execute(_UPDATE_IF_NEWER, updates)
        return result

    def _sealed_rows(
        self,
        records: Sequence[NewRecord],
        todo: Iterable[tuple[int, uuid.UUID]],
        sources: dict[str, int],
        now: dt.datetime,
    ) -> Iterator[tuple[Any, ...]]:
        """(index in the batch, row id) -> the row's values in _INSERT_COLUMNS order, payload sealed."""
        active, seal = self.keys.active, crypto.seal
        for i, row_id in todo:
            r = records[i]
            yield (
                row_id,
                r.citizen_id,
                r.category,
                r.kind,
                sources[r.source],
                r.source_record_id,
                r.version,
                r.occurred_at,
                now,
                r.sensitive,
                seal(active(r.citizen_id), _payload_json(i, r), row_id=row_id, category=r.category),
            )

    def _source_ids(self, records: Sequence[NewRecord]) -> dict[str, int]:
        names = list({r.source for r in records})
        found = dict(self.session.execute(_SOURCES_NAMED, {"names": names}).all())
        for i, r in enumerate(records):
            if r.source not in found:
                raise ValidationError(f"unknown source {r.source!r}", field=f"records[{i}].source")
        self._source_names.update({v: k for k, v in found.items()})
        return found

    def _check_citizens(self, records: Sequence[NewRecord]) -> None:
        """Every record's citizen is live, and their key is opened for sealing (one query)."""
        live = self.keys.preload(r.citizen_id for r in records)
        for i, r in enumerate(records):
            if r.citizen_id not in live:
                raise ValidationError(f"no live citizen {r.citizen_id}", field=f"records[{i}].citizen_id")

    def _existing(
        self, records: Sequence[NewRecord], sources: dict[str, int]
    ) -> dict[tuple[int, str], tuple[uuid.UUID, uuid.UUID, int]]:
        by_source: dict[int, set[str]] = {}
        for r in records:
            by_source.setdefault(sources[r.source], set()).add(r.source_record_id)
        found = {}
        postgres = self._postgres()
        for source_id, ids in by_source.items():
            if postgres:
                rows = self.session.execute(_LOOKUP_EACH, {"source_id": source_id, "ids": list(ids)})
                for source_record_id, row_id, citizen_id, version in rows:
                    found[(source_id, source_record_id)] = (row_id, citizen_id, version)
                continue
            args = (source_id, json.dumps(list(ids)))
            for source_record_id, row_id, citizen_id, version in self.session.connection().exec_driver_sql(
                _LOOKUP_JSON, args
            ):  # as stored: UUIDs in 32 hex digits
                found[(source_id, source_record_id)] = (uuid.UUID(row_id), uuid.UUID(citizen_id), version)
        return found

    def _postgres(self) -> bool:
        return bool(self.session.get_bind().dialect.name == "postgresql")

    # -- reading -------------------------------------------------------------------------------

    def get(self, record_id: uuid.UUID) -> StoredRecord:
        row = self.session.execute(_GET, {"record_id": record_id}).first()
        if row is None:
            raise NotFound(f"no record {record_id}", field="record_id")
        return self._open(row)

    def list(
        self,
        citizen_id: uuid.UUID,
        *,
        category: str | None = None,
        categories: Sequence[str] | None = None,
        kind: str | None = None,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page:
        """Newest first. The cursor is a position, not an offset: new arrivals never shift a page."""
        limit = self.limits.page_size if limit is None else limit
        if not 1 <= limit <= self.limits.max_page_size:
            raise ValidationError(f"must be between 1 and {self.limits.max_page_size}", field="limit")
        if category is not None and category not in CATEGORIES:
            raise ValidationError(f"must be one of {', '.join(CATEGORIES)}", field="category")
        if categories is not None and not set(categories) <= set(CATEGORIES):
            raise ValidationError(f"must be some of {', '.join(CATEGORIES)}", field="categories")
        for name, value in (("since", since), ("until", until)):
            if value is not None and value.tzinfo is None:
                raise ValidationError("must carry a time zone", field=name)
        params: dict[str, Any] = {
            "citizen_id": citizen_id,
            "category": category or None,
            "categories": None if categories is None else list(categories),
            "kind": kind or None,
            "since": since or None,
            "until": until or None,
            "limit": limit + 1,
        }
        if cursor:
            params["at"], params["after_id"] = _decode_cursor(cursor)
        stmt = _list_statement(*(params.get(name) is not None for name in _LIST_FILTERS))
        rows = self.session.execute(stmt, params).all()
        items = [self._open(row) for row in rows[:limit]]
        next_cursor = _encode_cursor(rows[limit - 1]) if len(rows) > limit else None
        return Page(items=items, next_cursor=next_cursor)

    def export(self, citizen_id: uuid.UUID) -> Iterator[StoredRecord]:
        """Every record of a citizen, oldest first, streamed."""
        c = _RECORDS.c
        stmt = (
            select(*_READ_COLUMNS)
            .where(c.citizen_id == citizen_id)
            .order_by(c.occurred_at, c.id)
            .execution_options(yield_per=500)
        )
        for row in self.session.execute(stmt):
            yield self._open(row)

    def _open(self, row: Any) -> StoredRecord:
        """Decrypt one record row of _READ_COLUMNS."""
        (
            row_id,
            citizen_id,
            category,
            kind,
            source_id,
            source_record_id,
            version,
            occurred,
            received,
            sensitive,
            payload,
        ) = row
        key = self.keys.for_ciphertext(payload)
        return StoredRecord(
            id=row_id,
            citizen_id=citizen_id,
            category=category,
            kind=kind,
            source=self._source_name(source_id),
            source_record_id=source_record_id,
            version=version,
            occurred_at=occurred,
            received_at=received,
            payload_json=crypto.open_sealed(key, payload, row_id=row_id, category=category),
            sensitive=sensitive,
        )

    def _source_name(self, source_id: int) -> str:
        if source_id not in self._source_names:
            self._source_names[source_id] = self.session.scalar(
                select(Source.name).where(Source.id == source_id)
            )
        return self._source_names[source_id]


def _validate_all(records: Sequence[NewRecord]) -> None:
    """Check every record's fields; the payload's JSON is checked as it is serialised (_payload_json)."""
    kinds: set[str] = set()  # kinds already matched in this batch (a batch rarely has more than a few)
    for i, r in enumerate(records):
        if not isinstance(r.citizen_id, uuid.UUID):
            raise ValidationError("must be a citizen id", field=f"records[{i}].citizen_id")
        if r.category not in CATEGORIES:
            raise ValidationError(f"must be one of {', '.join(CATEGORIES)}", field=f"records[{i}].category")
        if r.kind not in kinds:
            if not isinstance(r.kind, str) or not KIND.match(r.kind):
                raise ValidationError(
                    "must look like format:Type, e.g. fhir:Observation", field=f"records[{i}].kind"
                )
            kinds.add(r.kind)
        sid = r.source_record_id
        if not isinstance(sid, str) or not 0 < len(sid) <= MAX_SOURCE_RECORD_ID:
            raise ValidationError(
                f"must be 1 to {MAX_SOURCE_RECORD_ID} characters", field=f"records[{i}].source_record_id"
            )
        v = r.version
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= MAX_VERSION:
            raise ValidationError("must be a whole number from 0", field=f"records[{i}].version")
        if not isinstance(r.occurred_at, dt.datetime) or r.occurred_at.tzinfo is None:
            raise ValidationError(
                "must be a date and time with a time zone", field=f"records[{i}].occurred_at"
            )
        if not isinstance(r.payload, Mapping):
            raise ValidationError("must be a JSON object", field=f"records[{i}].payload")


def _payload_json(i: int, r: NewRecord) -> bytes:
    """The payload as the bytes to seal: compact JSON, or a ValidationError naming the record."""
    try:
        return _compact_json(r.payload)
    except (TypeError, ValueError, RecursionError) as exc:
        raise ValidationError(f"is not JSON: {exc}", field=f"records[{i}].payload") from None


_ID_RANDOM_BITS = ~((0xF << 76) | (0x3 << 62))  # all but the version and variant fields
_ID_VARIANT = 0x2 << 62  # RFC 4122 variant


def _new_ids(n: int) -> list[uuid.UUID]:
    """n time-ordered UUIDs (RFC 9562 s5.7, as pds.db.uuid7) for one batch: one clock reading and one
    draw of randomness for all, which per id cost as much as the rest of making one."""
    stamp = ((time.time_ns() // 1_000_000) << 80) | (0x7 << 76)  # unix ms, version 7
    rand = os.urandom(10 * n)
    ids = []
    for at in range(0, 10 * n, 10):
        bits = (int.from_bytes(rand[at : at + 10], "big") & _ID_RANDOM_BITS) | _ID_VARIANT
        ids.append(uuid.UUID(int=stamp | bits))
    return ids


def _latest_per_source_record(records: Sequence[NewRecord]) -> dict[tuple[str, str], int]:
    """For each source record in the batch, the index of its highest version (first one on a tie)."""
    best: dict[tuple[str, str], int] = {}
    for i, r in enumerate(records):
        key = (r.source, r.source_record_id)
        if key not in best or r.version > records[best[key]].version:
            best[key] = i
    return best


def _lookup_each() -> Any:
    """PostgreSQL: one index probe per id (a LATERAL join over the array). Before the table is
    analysed the planner reads `source_id = ?` as a few hundred rows and filters a whole source's
    rows against the list, which costs more with every batch stored."""
    c = _RECORDS.c
    wanted = func.unnest(bindparam("ids", type_=ARRAY(String()))).table_valued("sid").render_derived("k")
    one = (
        select(c.source_record_id, c.id, c.citizen_id, c.version)
        .where(c.source_id == bindparam("source_id"), c.source_record_id == wanted.c.sid)
        .limit(1)
        .lateral("r")
    )
    return select(one).select_from(wanted).join(one, true())


_LOOKUP_EACH = _lookup_each()
_LOOKUP_JSON = (  # SQLite, as DataKeys.preload's: (source id, JSON array of source record ids)
    "SELECT source_record_id, id, citizen_id, version FROM record "
    "WHERE source_id = ? AND source_record_id IN (SELECT value FROM json_each(?))"
)

# What a read takes of a record row, in the order _open unpacks it: the columns put writes, in its order.
_READ_COLUMNS = tuple(_RECORDS.c[name] for name in _INSERT_COLUMNS)
_GET = select(*_READ_COLUMNS).where(_RECORDS.c.id == bindparam("record_id"))
_LIST_FILTERS = ("category", "categories", "kind", "since", "until", "at")


@functools.lru_cache(maxsize=64)
def _list_statement(
    category: bool, categories: bool, kind: bool, since: bool, until: bool, cursor: bool
) -> Any:
    """The list query with the filters asked for, their values as parameters: built once for each
    combination, as building a select costs about as much as running it."""
    c = _RECORDS.c
    stmt = select(*_READ_COLUMNS).where(c.citizen_id == bindparam("citizen_id"))
    if category:
        stmt = stmt.where(c.category == bindparam("category"))
    if categories:
        stmt = stmt.where(c.category.in_(bindparam("categories", expanding=True)))
    if kind:
        stmt = stmt.where(c.kind == bindparam("kind"))
    if since:
        stmt = stmt.where(c.occurred_at >= bindparam("since"))
    if until:
        stmt = stmt.where(c.occurred_at < bindparam("until"))
    if cursor:
        at = bindparam("at", type_=c.occurred_at.type)
        stmt = stmt.where(or_(c.occurred_at < at, and_(c.occurred_at == at, c.id < bindparam("after_id"))))
    return stmt.order_by(c.occurred_at.desc(), c.id.desc()).limit(bindparam("limit"))


def _refuse(value: Any) -> Any:
    raise TypeError(f"Object of type {value.__class__.__name__} is not JSON serializable")


def _make_stdlib_json() -> Callable[[Any], bytes]:
    """json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode(), with one
    encoder made once instead of one per call. Without the circular-reference markers (payloads are
    parsed JSON, so never circular): a cycle raises RecursionError instead."""
    encoder = json.encoder.c_make_encoder
    if encoder is None:  # a Python without the C accelerator
        slow = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        return lambda value: slow.encode(value).encode()

    # markers, default, encoder, indent, key_separator, item_separator, sort_keys, skipkeys, allow_nan
    fast = encoder(None, _refuse, json.encoder.encode_basestring, None, ":", ",", False, False, False)
    return lambda value: "".join(fast(value, 0)).encode()


_stdlib_json = _make_stdlib_json()
# dates and dataclasses are not JSON: orjson hands them to `default`, which refuses, as json.dumps does
_ORJSON_STRICT = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def _compact_json(value: Any) -> bytes:
    """Compact UTF-8 JSON of a payload, key order kept: orjson (a tenth of json.dumps' time on a 1 KB
    payload, the largest cost of an ingest), and the standard library wherever orjson answers otherwise.
    orjson writes NaN and Infinity as null, and refuses integer keys and integers beyond 64 bits, where
    json.dumps refuses the first and writes the others; so any output with a null in it, and anything
    orjson refuses, is written (or refused, with its reason) by json.dumps instead. The bytes may differ
    from json.dumps' only in how a float is spelt (1e16, not 1e+16), never in the value; and orjson also
    writes a UUID as its text, which json.dumps refuses."""
    try:
        out = orjson.dumps(value, default=_refuse, option=_ORJSON_STRICT)
    except orjson.JSONEncodeError:
        return _stdlib_json(value)
    if b"null" in out:
        return _stdlib_json(value)
    return out


def _encode_cursor(row: Any) -> str:
    raw = json.dumps([_micros(row.occurred_at), row.id.hex]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _micros(when: dt.datetime) -> int:
    delta = when - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _decode_cursor(cursor: str) -> tuple[dt.datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        micros, hex_id = json.loads(raw)
        at = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=int(micros))
        return at, uuid.UUID(hex=hex_id)
    except (ValueError, TypeError, binascii.Error, OverflowError):
        raise ValidationError("is not a cursor this service gave out", field="cursor") from None
