"""Every consent event, read, delivery and erasure goes into the ledger here, in the caller's transaction.

This is where the ledger meets the vault. A leaf names its citizen only by a pseudonym, HMAC-SHA-256
under a key of that citizen's, and holds its details only as SHA-256(salt || details). The pseudonym key
and the salted details are sealed under the citizen's data key, so erasing the citizen (destroying that
key) leaves their leaves in the tree, verifiable, and linked to no one.

The key provider comes from the session (`session.info["pds.provider"]`, set by the Runtime's session
factory), so every caller that has a session can write to the ledger without passing keys around.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import json
import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, event, insert, select, text
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import TextClause

from consent.ledger import store
from consent.ledger.canonical import canonical_json
from consent.ledger.models import LedgerDetail, LedgerEntry, LedgerSubjectKey
from pds.db import utcnow
from pds.errors import Erased, KeyMissing
from pds.vault import crypto
from pds.vault.keys import DataKeys, KeyRow
from pds.vault.records import NewRecord

GRANT_CREATED = "consent.grant.created"
GRANT_NARROWED = "consent.grant.narrowed"
GRANT_REVOKED = "consent.grant.revoked"
GRANT_EXPIRED = "consent.grant.expired"
REQUEST_MADE = "consent.request.made"  # a professional asks (the GP portal)
REQUEST_DENIED = "consent.request.denied"
EMERGENCY_ACCESS = "consent.emergency_access"  # break-glass: details carry emergency=True and the reason
TOKEN_REUSE = "consent.token.reuse_detected"  # noqa: S105 (an event name, not a secret)
CODE_REPLAY = "consent.code.replayed"
RECORDS_READ = "records.read"
RECORDS_EXPORTED = "records.exported"
RECORDS_DELIVERED = "records.delivered"
CITIZEN_ERASED = "citizen.erased"
GRANT_EVENTS = (GRANT_CREATED, GRANT_NARROWED, GRANT_REVOKED, GRANT_EXPIRED)

PROVIDER_INFO_KEY = "pds.provider"
SALT_BYTES = 32
SUBJECT_KEY_CATEGORY = "ledger:subject-key"
DETAIL_CATEGORY = "ledger:detail"
PSEUDONYM_DOMAIN = b"pds/ledger/subject/v1:"

# Pseudonyms by citizen, with the data key id they were worked out under, once committed; used only
# while that key's row is read live in the using transaction (and so an erasure seen) every time.
# Those worked out in a transaction wait in session.info until it commits.
_PSEUDONYMS: dict[uuid.UUID, tuple[int, bytes]] = {}
_PENDING = "pds.pending_pseudonyms"
PSEUDONYM_CACHE_SIZE = 20_000
# Up to this many citizens in a batch (a read-log batch is one or two), their data keys, the log's
# state and their last leaves are read in one query after the lock; more go the general way.
ONE_QUERY_CITIZENS = store.FEW_SUBJECTS


@dataclass(frozen=True)
class Event:
    event_type: str
    actor: str
    citizen_id: uuid.UUID | None = None
    grant_id: uuid.UUID | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    at: dt.datetime | None = None


@dataclass(frozen=True)
class Recorded:
    position: int
    leaf: bytes
    leaf_hash: bytes


def commit(salt: bytes, details: bytes) -> bytes:
    """A leaf's commitment to its details (canonical JSON bytes): SHA-256 of the salt and the details."""
    return hashlib.sha256(salt + details).digest()


def append_event(
    session: Session,
    event_type: str,
    *,
    actor: str,
    citizen_id: uuid.UUID | None = None,
    grant_id: uuid.UUID | None = None,
    details: Mapping[str, Any] | None = None,
) -> Recorded:
    (recorded,) = append_events(session, [Event(event_type, actor, citizen_id, grant_id, details or {})])
    return recorded


def append_events(session: Session, batch: Sequence[Event]) -> list[Recorded]:
    """Append events in order; all or nothing, with the caller's transaction.

    Raises Erased if an event is about a citizen whose keys are destroyed: nothing can be said of
    them that they could read, so nothing is written.
    """
    if not batch:
        return []
    provider = _provider(session)
    # Each entry's salted commitment needs nothing from the log: made before the lock, it is not
    # time other appenders wait through.
    salted = [_salted(e) for e in batch]
    store.lock(session)  # before the subject keys: two first events of one citizen must not race
    keys = DataKeys(session, provider=provider)
    citizens = {e.citizen_id for e in batch if e.citizen_id is not None}
    state = None
    if len(citizens) <= ONE_QUERY_CITIZENS:
        live, state = _keys_and_state(session, keys, citizens)
    else:
        live = keys.preload(citizens)
    if citizens - live:
        gone = sorted(citizens - live)[0]
        raise Erased(f"citizen {gone} has been erased: nothing more is recorded about them")
    pseudonyms = {cid: _pseudonym(session, keys, cid) for cid in citizens}

    now = utcnow()
    pending = []
    for e, (_, commitment) in zip(batch, salted, strict=True):
        subject = pseudonyms[e.citizen_id] if e.citizen_id is not None else None
        pending.append(store.PendingLeaf(e.event_type, store.time_us(e.at or now), subject, commitment))
    appended = store.append(session, pending, locked=True, state=state)

    rows = []
    for e, a, (body, _) in zip(batch, appended, salted, strict=True):
        if e.citizen_id is not None:
            body = crypto.seal(
                keys.active(e.citizen_id), body, row_id=uuid.UUID(int=a.position), category=DETAIL_CATEGORY
            )
        rows.append({"position": a.position, "citizen_id": e.citizen_id, "body": body})
    session.execute(insert(LedgerDetail.__table__), rows)
    return [Recorded(a.position, a.leaf, a.leaf_hash) for a in appended]


def _salted(event: Event) -> tuple[bytes, bytes]:
    """An entry's salt and canonical details (what its citizen's vault keeps), and its commitment."""
    salt = os.urandom(SALT_BYTES)
    details = canonical_json(_plain(_describe(event)))
    return salt + details, commit(salt, details)


# The batch's citizens' live data keys (as DataKeys.preload reads them), after the log's state:
# rows in the shape of store.STATE_SQL, one query after the append lock.
_KEYS_SQL = {
    "postgresql": (
        " UNION ALL SELECT 'k', k.id, NULL, k.wrapped, CAST(k.citizen_id AS text), k.kek_id "
        "FROM data_key AS k JOIN citizen AS c ON c.id = k.citizen_id "
        "WHERE k.citizen_id = ANY(CAST(:citizens AS uuid[])) "
        "AND c.status = 'active' AND k.wrapped IS NOT NULL"
    ),
    "sqlite": (
        " UNION ALL SELECT 'k', k.id, NULL, k.wrapped, k.citizen_id, k.kek_id "
        "FROM data_key AS k JOIN citizen AS c ON c.id = k.citizen_id "
        "WHERE k.citizen_id IN ({citizens}) AND c.status = 'active' AND k.wrapped IS NOT NULL"
    ),
}


@functools.lru_cache(maxsize=64)
def _keys_and_state_sql(dialect: str, citizens: int, subjects: int) -> TextClause:
    keys = _KEYS_SQL.get(dialect, _KEYS_SQL["sqlite"])
    if dialect != "postgresql":
        keys = keys.format(citizens=", ".join(f":c{i}" for i in range(citizens)))
    return text(store.state_sql(dialect, subjects) + keys)


def _keys_and_state(
    session: Session, keys: DataKeys, citizens: set[uuid.UUID]
) -> tuple[set[uuid.UUID], store.LogState]:
    """Open the citizens' live keys and read the log's state, in one query.

    The heads read are those of the pseudonyms this process has cached; a cached pseudonym is
    used only if the data key it was made under is the one read live here (see _pseudonym), and the
    head of any other is read by store.append.
    """
    dialect = session.get_bind().dialect.name
    order = list(citizens)
    subjects = [c[1] for c in map(_PSEUDONYMS.get, order) if c is not None]
    params = store.state_params(dialect, subjects)
    if dialect == "postgresql":
        params["citizens"] = order
    else:
        params.update({f"c{i}": cid.hex for i, cid in enumerate(order)})
    rows = session.execute(_keys_and_state_sql(dialect, len(order), len(subjects)), params).all()
    found = [KeyRow(int(r[1]), uuid.UUID(r[4]), r[5], r[3]) for r in rows if r[0] == "k"]
    return keys.adopt(found), store.parse_state(rows, subjects)


def deliveries(records: Sequence[NewRecord], *, actor: str) -> list[Event]:
    """One delivery entry per citizen and source in a batch: how many records, and a digest of them."""
    groups: dict[tuple[uuid.UUID, str], list[NewRecord]] = {}
    for r in records:
        groups.setdefault((r.citizen_id, r.source), []).append(r)
    out = []
    for (citizen_id, source), items in groups.items():
        digest = hashlib.sha256()
        for r in items:
            line = [r.source_record_id, r.version, r.kind, r.occurred_at.isoformat(), r.payload]
            digest.update(
                json.dumps(line, sort_keys=True, separators=(",", ":"), default=str).encode() + b"\n"
            )
        kinds: dict[str, int] = {}
        for r in items:
            kinds[r.kind] = kinds.get(r.kind, 0) + 1
        details = {"source": source, "count": len(items), "kinds": kinds, "digest": digest.hexdigest()}
        out.append(Event(RECORDS_DELIVERED, actor, citizen_id, details=details))
    return out


def pseudonym(session: Session, citizen_id: uuid.UUID, keys: DataKeys | None = None) -> bytes | None:
    """The citizen's pseudonym in the ledger, or None if nothing has been recorded about them yet."""
    keys = keys or DataKeys(session, provider=_provider(session))
    return _pseudonym(session, keys, citizen_id, create=False)


def open_details(
    session: Session, citizen_id: uuid.UUID | None, position: int, body: bytes, keys: DataKeys | None = None
) -> tuple[bytes, dict[str, Any]]:
    """The salt and details of one entry (unsealed with the citizen's data key when it names one)."""
    if citizen_id is not None:
        keys = keys or DataKeys(session, provider=_provider(session))
        body = crypto.open_sealed(
            keys.for_ciphertext(body), body, row_id=uuid.UUID(int=position), category=DETAIL_CATEGORY
        )
    return body[:SALT_BYTES], json.loads(body[SALT_BYTES:])


@dataclass(frozen=True)
class HistoryItem:
    """One entry about a citizen, opened: what happened, and the salt that proves the leaf says so."""

    position: int
    seq: int
    leaf: bytes
    event: str
    time: dt.datetime
    details: dict[str, Any]
    salt: bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.position,
            "seq": self.seq,
            "event": self.event,
            "time": self.time.isoformat(),
            "details": self.details,
            "leaf": self.leaf.decode(),
            "salt": self.salt.hex(),
        }


def history(
    session: Session,
    citizen_id: uuid.UUID,
    *,
    after: int = -1,
    limit: int = 100,
    newest_first: bool = False,
    position: int | None = None,
) -> list[HistoryItem]:
    """The citizen's own entries, opened: in sequence after `after`, newest first below `after`
    (when given), or just the one at `position`."""
    keys = DataKeys(session, provider=_provider(session))  # one for every entry: keys opened once
    subject = pseudonym(session, citizen_id, keys)
    if subject is None:
        return []
    e, d = LedgerEntry.__table__.c, LedgerDetail.__table__.c  # type: ignore[attr-defined]
    query = (
        select(e.position, e.subject_seq, e.leaf, d.body)
        .join(LedgerDetail.__table__, d.position == e.position)  # type: ignore[attr-defined]
        .where(e.subject == subject)
    )
    if position is not None:
        query = query.where(e.position == position)
    elif newest_first:
        query = query.where(e.subject_seq < after) if after >= 0 else query
        query = query.order_by(e.subject_seq.desc())
    else:
        query = query.where(e.subject_seq > after).order_by(e.subject_seq)
    rows = session.execute(query.limit(limit)).all()
    items = []
    for at, seq, leaf, body in rows:
        salt, details = open_details(session, citizen_id, at, body, keys)
        parsed = json.loads(leaf)
        when = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=parsed["time_us"])
        items.append(HistoryItem(at, seq, leaf, parsed["event"], when, details, salt))
    return items


def forget(session: Session, citizen_id: uuid.UUID) -> None:
    """At erasure, after the data key is destroyed: drop what is now unreadable anyway."""
    session.execute(delete(LedgerSubjectKey).where(LedgerSubjectKey.citizen_id == citizen_id))
    session.execute(delete(LedgerDetail).where(LedgerDetail.citizen_id == citizen_id))


def _provider(session: Session) -> crypto.KeyProvider:
    provider = session.info.get(PROVIDER_INFO_KEY)
    if provider is None:
        raise KeyMissing("this session has no key provider: the ledger cannot seal what it records")
    return provider  # type: ignore[no-any-return]


def _pseudonym(session: Session, keys: DataKeys, cid: uuid.UUID, *, create: bool = True) -> bytes:
    key = keys.active(cid)  # the key row, read in this transaction: an erased citizen stops here
    for cached in (_PSEUDONYMS.get(cid), session.info.get(_PENDING, {}).get(cid)):
        if cached is not None and cached[0] == key.id:
            return cached[1]  # type: ignore[no-any-return]
    row = session.get(LedgerSubjectKey, cid)
    if row is None:
        if not create:
            return None  # type: ignore[return-value]
        material = os.urandom(32)
        row = LedgerSubjectKey(
            citizen_id=cid, sealed=crypto.seal(key, material, row_id=cid, category=SUBJECT_KEY_CATEGORY)
        )
        session.add(row)
        session.flush()
    else:
        material = crypto.open_sealed(
            keys.for_ciphertext(row.sealed), row.sealed, row_id=cid, category=SUBJECT_KEY_CATEGORY
        )
    value = hmac.new(material, PSEUDONYM_DOMAIN + cid.bytes, hashlib.sha256).digest()
    # Shared with other sessions only once this transaction commits: a key row that is rolled back
    # (and, on SQLite, a data key id handed out again) must not leave its pseudonym behind.
    session.info.setdefault(_PENDING, {})[cid] = (key.id, value)
    return value


@event.listens_for(Session, "after_commit")
def _publish_pseudonyms(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    if pending:
        if len(_PSEUDONYMS) > PSEUDONYM_CACHE_SIZE:
            _PSEUDONYMS.clear()  # bounded; a miss costs one unseal
        _PSEUDONYMS.update(pending)


@event.listens_for(Session, "after_rollback")
def _drop_pseudonyms(session: Session) -> None:
    session.info.pop(_PENDING, None)


def _describe(e: Event) -> dict[str, Any]:
    body: dict[str, Any] = {"actor": e.actor}
    if e.grant_id is not None:
        body["grant_id"] = e.grant_id
    body.update(e.details)
    return body


def _plain(value: Any) -> Any:
    """Details as canonical JSON can hold them: no floats, no UUIDs or dates as objects."""
    # Strings, the most of every read's details, are kept without a call each.
    if isinstance(value, Mapping):
        return {k if type(k) is str else str(k): v if type(v) is str else _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [v if type(v) is str else _plain(v) for v in value]
        return sorted(items, key=str) if isinstance(value, set | frozenset) else items
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value)  # UUIDs, floats, enums: their text
