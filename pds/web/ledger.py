"""The public face of the ledger: checkpoints, the verifier key, entries with inclusion proofs, and
consistency proofs. Leaves name no one, so anyone may fetch and check them."""

from __future__ import annotations

import base64
import uuid
from typing import Any

from flask import Blueprint, Response, jsonify, request

from consent import events, receipts
from consent.ledger import store
from consent.ledger.checkpoints import Head
from consent.ledger.models import LedgerEntry
from consent.signing import SigningKeys
from pds.db import run_transaction
from pds.errors import NotFound, ValidationError
from pds.web import read_db, runtime

bp = Blueprint("ledger", __name__, url_prefix="/ledger")
NOTE_TYPE = "text/plain; charset=utf-8"


def b64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def _whole(name: str, value: str | None, *, required: bool = True) -> int | None:
    if value is None or value == "":
        if required:
            raise ValidationError("is required", field=name)
        return None
    if not value.isdigit() or len(value) > 19:
        raise ValidationError("must be a whole number from 0", field=name)
    return int(value)


def _note(head: Head) -> Response:
    return Response(head.note, content_type=NOTE_TYPE, headers={"Cache-Control": "no-cache"})


@bp.get("/checkpoint")
def checkpoint() -> Response:
    """The latest signed tree head (C2SP tlog-checkpoint)."""
    head = runtime().checkpoints(read_db()).latest()
    if head is None:
        raise NotFound("the ledger has no checkpoint yet")
    return _note(head)


@bp.get("/checkpoints/<size>")
def checkpoint_at(size: str) -> Response:
    """An earlier checkpoint, by tree size: every one is kept."""
    n = _whole("size", size)
    head = runtime().checkpoints(read_db()).at(n)  # type: ignore[arg-type]
    if head is None:
        raise NotFound(f"no checkpoint was made at tree size {n}", field="size")
    return Response(head.note, content_type=NOTE_TYPE, headers={"Cache-Control": "public, max-age=31536000"})


@bp.get("/key")
def key() -> Response:
    """The verifier key for checkpoints, as `pds ledger key` prints it."""
    return Response(runtime().checkpoints(read_db()).verifier_key() + "\n", content_type=NOTE_TYPE)


def entry_document(session: Any, position: int, head: Head) -> dict[str, Any]:
    """An entry with its inclusion proof against `head`: what `pds ledger check-proof` checks."""
    row = session.get(LedgerEntry, position)
    if row is None:
        raise NotFound(f"the ledger has no entry {position}", field="index")
    return {
        "index": position,
        "leaf": bytes(row.leaf).decode(),
        "leaf_hash": b64(bytes(row.leaf_hash)),
        "tree_size": head.tree_size,
        "inclusion_proof": [b64(h) for h in store.prove_inclusion(session, position, head.tree_size)],
        "checkpoint": head.note,
    }


def covering_head(position: int) -> Head:
    """The latest checkpoint, or a new one when none yet includes the entry (so every entry is provable)."""
    rt = runtime()
    head = rt.checkpoints(read_db()).latest()
    if head is None or head.tree_size <= position:
        read_db().rollback()  # release the read before the write transaction (SQLite's lock)
        head = run_transaction(rt.sessions, lambda s: rt.checkpoints(s).covering(position))
    if head is None or head.tree_size <= position:
        raise NotFound(f"the ledger has no entry {position}", field="index")
    return head


@bp.get("/entries/<index>")
def entry(index: str) -> Response:
    position = _whole("index", index)
    assert position is not None
    if read_db().get(LedgerEntry, position) is None:
        raise NotFound(f"the ledger has no entry {position}", field="index")
    head = covering_head(position)
    return jsonify(entry_document(read_db(), position, head))


@bp.get("/consistency")
def consistency() -> Response:
    """A proof that the tree of size `to` (default: the latest checkpoint) extends the tree of size `from`."""
    first = _whole("from", request.args.get("from"))
    cps = runtime().checkpoints(read_db())
    latest = cps.latest()
    second = _whole("to", request.args.get("to"), required=False)
    if second is None:
        if latest is None:
            raise NotFound("the ledger has no checkpoint yet")
        second = latest.tree_size
    assert first is not None
    size = store.tree_size(read_db())
    if second > size:
        raise ValidationError(f"is beyond the log, which holds {size} entries", field="to")
    if first < 1:
        raise ValidationError("must be at least 1: nothing is proved about an empty tree", field="from")
    if first > second:
        raise ValidationError("must not be larger than 'to'", field="from")
    old, new = cps.at(first), cps.at(second)
    return jsonify(
        {
            "from": first,
            "to": second,
            "proof": [b64(h) for h in store.prove_consistency(read_db(), first, second)],
            "from_checkpoint": old.note if old else None,
            "to_checkpoint": new.note if new else None,
        }
    )


# -- a citizen's own entries (the API for apps acting for them, and their web page) --------------------


def history_json(citizen_id: uuid.UUID, *, after: int, limit: int, receipt_url: str) -> dict[str, Any]:
    """Newest first. Each entry with what the leaf commits to (details and salt) and where its proof is."""
    items = events.history(read_db(), citizen_id, after=after, limit=limit, newest_first=True)
    out = []
    for item in items:
        body = item.to_json()
        body["emergency"] = bool(item.details.get("emergency"))
        body["proof"] = f"/ledger/entries/{item.position}"
        if item.event in events.GRANT_EVENTS:
            body["receipt"] = receipt_url.format(index=item.position)
        out.append(body)
    last = items[-1].seq if len(items) == limit and items[-1].seq > 0 else None
    return {"entries": out, "next_before": last}


def receipt(citizen_id: uuid.UUID, position: int) -> str:
    """A consent receipt for one of the citizen's grant events, with the entry's proof inside."""
    session = read_db()
    found = events.history(session, citizen_id, position=position, limit=1)
    if not found or found[0].event not in events.GRANT_EVENTS:
        raise NotFound("no grant event of yours at this index", field="index")
    item = found[0]
    head = covering_head(position)
    session = read_db()
    rt = runtime()
    subject = events.pseudonym(session, citizen_id)
    assert subject is not None
    claims = receipts.receipt_claims(
        item,
        issuer=rt.settings.server.public_url,
        subject=subject,
        client_name=receipts.client_name(session, item.details.get("after", item.details).get("client_id")),
        proof=entry_document(session, position, head),
        verifier_key=rt.checkpoints(session).verifier_key(),
    )
    return receipts.sign_receipt(SigningKeys(session, provider=rt.provider), claims)
