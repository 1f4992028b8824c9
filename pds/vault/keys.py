"""Citizen data keys: create, open, destroy, rewrap; and the start-up check that keys match the data."""

from __future__ import annotations

import hmac
import json
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from sqlalchemy import ARRAY, any_, bindparam, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from pds.db import utcnow
from pds.errors import Erased, KeyMissing
from pds.vault import crypto
from pds.vault.models import Citizen, DataKeyRow, KeyCheck

BLIND_INDEX_CHECK_ID = "blind-index"
REWRAP_BATCH = 500
UNWRAPPED_CACHE_SIZE = 20_000  # opened data keys a process keeps, least recently used dropped first


class KeyRow(NamedTuple):
    """A data key row as read from the database, by DataKeys or by a caller's own query."""

    id: int
    citizen_id: uuid.UUID
    kek_id: str
    wrapped: bytes | None


# Opened keys, by everything their row says: a key is used from here only once its row has been
# read in the caller's transaction and still holds these very bytes (so a destroyed, rewrapped or,
# on SQLite, re-issued id never finds an old entry).
_UNWRAPPED: OrderedDict[tuple[int, uuid.UUID, str, bytes], crypto.DataKey] = OrderedDict()
_UNWRAPPED_LOCK = threading.Lock()
_K, _C = DataKeyRow.__table__.c, Citizen.__table__.c  # type: ignore[attr-defined]
# Built once: every API read opens its citizen's key by id, every batch the keys of its citizens, and
# building a select cost more than running it.
_KEY_ROW = select(_K.id, _K.citizen_id, _K.kek_id, _K.wrapped).where(_K.id == bindparam("key_id"))
# PostgreSQL: = ANY(one array), the same statement whatever the count, so its plan is cached
_LIVE_KEYS_ANY = (
    select(_K.id, _K.citizen_id, _K.kek_id, _K.wrapped)
    .join(Citizen.__table__, _C.id == _K.citizen_id)  # type: ignore[attr-defined]
    .where(_C.status == "active", _K.wrapped.is_not(None))
    .where(_K.citizen_id == any_(bindparam("ids", type_=ARRAY(_K.citizen_id.type))))
)
# SQLite: the ids as one JSON array, so the text is the same whatever the count. Run as written (through
# SQLAlchemy, with an IN list made for each call, it cost twice what SQLite takes to answer); ids come
# back as the 32 hex digits SQLAlchemy stores a UUID as.
_LIVE_KEYS_JSON = (
    "SELECT k.id, k.citizen_id, k.kek_id, k.wrapped FROM data_key AS k "
    "JOIN citizen AS c ON c.id = k.citizen_id "
    "WHERE c.status = 'active' AND k.wrapped IS NOT NULL "
    "AND k.citizen_id IN (SELECT value FROM json_each(?))"
)


class DataKeys:
    """Data keys for one unit of work. Opened keys are cached for the life of the object only."""

    def __init__(self, session: Session, *, provider: crypto.KeyProvider) -> None:
        self.session = session
        self.provider = provider
        self._by_id: dict[int, crypto.DataKey] = {}
        self._active: dict[uuid.UUID, crypto.DataKey] = {}

    def create(self, citizen_id: uuid.UUID) -> crypto.DataKey:
        material = crypto.new_data_key_material()
        kek_id, wrapped = crypto.wrap_data_key(self.provider, citizen_id, material)
        row = DataKeyRow(citizen_id=citizen_id, kek_id=kek_id, wrapped=wrapped)
        self.session.add(row)
        self.session.flush()
        assert row.id is not None
        key = crypto.open_data_key(
            self.provider, key_id=row.id, citizen_id=citizen_id, kek_id=kek_id, wrapped=wrapped
        )
        self._by_id[key.id] = self._active[citizen_id] = key
        return key

    def for_ciphertext(self, ciphertext: bytes) -> crypto.DataKey:
        return self.by_id(crypto.data_key_id(ciphertext))

    def by_id(self, key_id: int) -> crypto.DataKey:
        key = self._by_id.get(key_id)
        if key is None:
            row = self.session.execute(_KEY_ROW, {"key_id": key_id}).first()
            if row is None:
                raise KeyMissing(f"data key {key_id} does not exist")
            key = self._open(row)
        return key

    def active(self, citizen_id: uuid.UUID) -> crypto.DataKey:
        """The key new ciphertexts of this citizen are sealed with (the newest)."""
        key = self._active.get(citizen_id)
        if key is None:
            row = self.session.scalars(
                select(DataKeyRow).where(DataKeyRow.citizen_id == citizen_id).order_by(DataKeyRow.id.desc())
            ).first()
            if row is None:
                raise KeyMissing(f"citizen {citizen_id} has no data key")
            key = self._active[citizen_id] = self._open(row)
        return key

    def preload(self, citizen_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
        """Open the active keys of many citizens in one query (batch ingest, the ledger).

        Returns those of them who are live (not erased) and so can receive records. The key rows are
        read here, in the caller's transaction, so an erased citizen is refused even if this process
        opened their key before.
        """
        wanted = set(citizen_ids)
        todo = [c for c in wanted if c not in self._active]
        if todo:
            self.adopt(self._live_rows(todo))
        return {c for c in wanted if c in self._active}

    def _live_rows(self, citizen_ids: list[uuid.UUID]) -> list[KeyRow]:
        """The live key rows of these citizens: the citizen is active and the key not destroyed."""
        if self.session.get_bind().dialect.name == "postgresql":
            return [KeyRow(*row) for row in self.session.execute(_LIVE_KEYS_ANY, {"ids": citizen_ids})]
        by_hex = {c.hex: c for c in citizen_ids}
        found = self.session.connection().exec_driver_sql(_LIVE_KEYS_JSON, (json.dumps(list(by_hex)),))
        return [KeyRow(key, by_hex[cid], kek, wrapped) for key, cid, kek, wrapped in found]

    def adopt(self, rows: Iterable[KeyRow]) -> set[uuid.UUID]:
        """Take the live key rows a caller read in this transaction (its own query, as preload's:
        citizen active, key not destroyed) as the citizens' active keys. Returns those citizens."""
        found = set()
        for row in sorted(rows, key=lambda r: r.id):  # the newest key of each citizen wins
            self._active[row.citizen_id] = self._open(row)
            found.add(row.citizen_id)
        return found

    def destroy(self, citizen_id: uuid.UUID) -> int:
        """Crypto-shred: forget every data key of the citizen. Returns how many were destroyed."""
        result = self.session.execute(
            update(DataKeyRow)
            .where(DataKeyRow.citizen_id == citizen_id, DataKeyRow.wrapped.is_not(None))
            .values(wrapped=None, destroyed_at=utcnow())
        )
        self._active.pop(citizen_id, None)
        self._by_id = {k: v for k, v in self._by_id.items() if v.citizen_id != citizen_id}
        return int(result.rowcount or 0)

    def _open(self, row: Any) -> crypto.DataKey:
        """Unwrap a data key row (an ORM object or a Core row).

        The row is always read first, so a destroyed key is refused even if this process opened it
        before. What was unwrapped is remembered by the row's id, citizen, KEK and wrapped bytes, in
        memory only: the process holds the key-encryption keys anyway, so this widens nothing a
        memory dump shows.
        """
        assert row.id is not None
        if row.wrapped is None:
            raise Erased(f"the data key of citizen {row.citizen_id} was destroyed: their data is erased")
        cache_key = (row.id, row.citizen_id, row.kek_id, bytes(row.wrapped))
        with _UNWRAPPED_LOCK:
            key = _UNWRAPPED.get(cache_key)
            if key is not None:
                _UNWRAPPED.move_to_end(cache_key)
        if key is None:
            key = crypto.open_data_key(
                self.provider,
                key_id=row.id,
                citizen_id=row.citizen_id,
                kek_id=row.kek_id,
                wrapped=row.wrapped,
            )
            with _UNWRAPPED_LOCK:
                _UNWRAPPED[cache_key] = key
                while len(_UNWRAPPED) > UNWRAPPED_CACHE_SIZE:
                    _UNWRAPPED.popitem(last=False)
        self._by_id[key.id] = key
        return key


def check_keys(session: Session, provider: crypto.KeyProvider) -> None:
    """Refuse to run with a missing or wrong key. Records a check value for keys seen the first time.

    1. every KEK that wraps a live data key must be present;
    2. every present KEK with a stored check value must reproduce it;
    3. the blind-index key must match its stored fingerprint.
    """
    in_use = set(session.scalars(select(DataKeyRow.kek_id).where(DataKeyRow.wrapped.is_not(None)).distinct()))
    present = set(provider.kek_ids())
    missing = sorted(in_use - present)
    if missing:
        raise KeyMissing(f"key-encryption key {missing[0]} wraps data keys but is missing")
    checks = {row.key_id: row.check_value for row in session.scalars(select(KeyCheck))}
    for kek_id in sorted(present):
        if kek_id in checks:
            crypto.check_canary(provider, kek_id, checks[kek_id])
    active = provider.active_kek_id()
    if active not in checks:
        kek_id, wrapped = crypto.canary(provider)
        session.add(KeyCheck(key_id=kek_id, check_value=wrapped))
    fingerprint = crypto.blind_index_fingerprint(provider.blind_index_key())
    stored = checks.get(BLIND_INDEX_CHECK_ID)
    if stored is None:
        session.add(KeyCheck(key_id=BLIND_INDEX_CHECK_ID, check_value=fingerprint))
    elif not hmac.compare_digest(stored, fingerprint):
        raise KeyMissing("the blind-index key does not match this database: wrong key file?")
    session.flush()


def kek_usage(session: Session) -> dict[str, int]:
    """How many live data keys each KEK wraps."""
    rows = session.execute(
        select(DataKeyRow.kek_id, func.count())
        .where(DataKeyRow.wrapped.is_not(None))
        .group_by(DataKeyRow.kek_id)
    )
    return {kek_id: int(n) for kek_id, n in rows}


def rewrap_data_keys(
    factory: sessionmaker[Session],
    provider: crypto.KeyProvider,
    *,
    progress: Callable[[int], None] = lambda n: None,
) -> int:
    """Rewrap every live data key not under the active KEK; records are not touched.

    Commits in batches: each rewrap stands alone, so an interrupted run loses nothing and can rerun.
    """
    active = provider.active_kek_id()
    done = 0
    while True:
        with factory() as session, session.begin():
            rows = session.scalars(
                select(DataKeyRow)
                .where(DataKeyRow.kek_id != active, DataKeyRow.wrapped.is_not(None))
                .order_by(DataKeyRow.id)
                .limit(REWRAP_BATCH)
            ).all()
            for row in rows:
                assert row.wrapped is not None
                material = provider.unwrap(row.kek_id, row.wrapped, crypto.wrap_context(row.citizen_id))
                row.kek_id, row.wrapped = crypto.wrap_data_key(provider, row.citizen_id, material)
        done += len(rows)
        progress(len(rows))
        if len(rows) < REWRAP_BATCH:
            return done


def retire_kek(session: Session, provider: crypto.LocalKeyProvider, kek_id: str) -> None:
    """Delete a KEK file once no data key needs it."""
    if kek_id == provider.active_kek_id():
        raise KeyMissing(f"{kek_id} is the active key and cannot be retired")
    still = kek_usage(session).get(kek_id, 0)
    if still:
        raise KeyMissing(f"{kek_id} still wraps {still} data keys: run `pds keys rotate` first")
    provider.remove_kek(kek_id)
    session.execute(KeyCheck.__table__.delete().where(KeyCheck.key_id == kek_id))  # type: ignore[attr-defined]
