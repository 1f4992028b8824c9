"""A delivery into the vaults: match each item to its citizen, store, and record it in the ledger, at once.

All in the caller's transaction: either every item is stored with its ledger entry, or nothing is. An
item whose identifier matches no citizen makes the whole delivery invalid, listed like any other bad item.
A delivery that changes nothing (a repeat) stores nothing and adds no ledger entry.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import select

from connectors.base import Item, Problems
from consent import events
from pds.errors import ValidationError
from pds.vault import NewRecord, Vault
from pds.vault.models import Record, Source

RECORD_LINK = "record"  # an item that belongs to whoever owns another record of this source (an update)


@dataclass
class Delivered:
    """What a delivery did: record ids stored new, updated, or already there unchanged."""

    stored: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    citizens: int = 0

    def to_json(self) -> dict[str, object]:
        return {
            "stored": self.stored,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "counts": {
                "stored": len(self.stored),
                "updated": len(self.updated),
                "unchanged": len(self.unchanged),
                "citizens": self.citizens,
            },
        }


def deliver(vault: Vault, source: str, items: Sequence[Item], *, actor: str) -> Delivered:
    """Store a parsed delivery from `source` (a connector name) in its citizens' vaults."""
    owners = _owners(vault, source, items)
    records = [
        NewRecord(
            citizen_id=owners[i],
            category=item.category,
            kind=item.kind,
            source=source,
            source_record_id=item.source_record_id,
            version=item.version,
            occurred_at=item.occurred_at,
            payload=item.payload,
            sensitive=item.sensitive,
        )
        for i, item in enumerate(items)
    ]
    result = vault.records.put(records)
    changed = set(result.stored) | set(result.updated)
    out = Delivered(
        stored=[str(r) for r in result.stored],
        updated=[str(r) for r in result.updated],
        unchanged=[str(r) for r in result.unchanged],
        citizens=len(set(owners.values())),
    )
    if changed:
        # one entry per citizen whose vault changed: how many records, of which kinds, and a digest
        touched = set(
            vault.session.scalars(select(Record.citizen_id).where(Record.id.in_(list(changed)))).all()
        )
        _tell_about_cases(vault, items, owners, set(result.stored))
        events.append_events(
            vault.session, events.deliveries([r for r in records if r.citizen_id in touched], actor=actor)
        )
    return out


def _owners(vault: Vault, source: str, items: Sequence[Item]) -> dict[int, uuid.UUID]:
    """Each item's citizen, or DeliveryInvalid listing every item that matches no one."""
    problems = Problems()
    owners: dict[int, uuid.UUID] = {}
    found: dict[tuple[str, str], uuid.UUID | None] = {}
    linked: list[int] = []
    for i, item in enumerate(items):
        if item.identifier_kind == RECORD_LINK:
            linked.append(i)
            continue
        key = (item.identifier_kind, item.identifier)
        if key not in found:
            try:
                found[key] = vault.citizens.find(*key)
            except ValidationError as exc:
                problems.add(i, item.identifier_kind, exc.detail)
                found[key] = None
                continue
        citizen = found[key]
        if citizen is None:
            problems.add(i, item.identifier_kind, "matches no citizen in pds")
        else:
            owners[i] = citizen
    if linked:
        # in the same delivery first, then among what the source delivered before
        in_delivery = {item.source_record_id: owners[i] for i, item in enumerate(items) if i in owners}
        wanted = {items[i].identifier for i in linked} - in_delivery.keys()
        stored = _stored_owners(vault, source, wanted) if wanted else {}
        for i in linked:
            target = items[i].identifier
            citizen = in_delivery.get(target) or stored.get(target)
            if citizen is None:
                problems.add(i, "service_request_id", f"names {target!r}, which pds has not received")
            else:
                owners[i] = citizen
    problems.raise_if_any()
    return owners


def _stored_owners(vault: Vault, source: str, record_ids: set[str]) -> dict[str, uuid.UUID]:
    rows = vault.session.execute(
        select(Record.source_record_id, Record.citizen_id)
        .join(Source, Source.id == Record.source_id)
        .where(Source.name == source, Record.source_record_id.in_(sorted(record_ids)))
    )
    return {rid: cid for rid, cid in rows.all()}  # noqa: C416 (rows, not pairs)


STATUS_WORDS = {  # Open311 and FixMyStreet states, as a citizen reads them
    "open": "open",
    "closed": "closed",
    "fixed": "done",
    "in_progress": "in progress",
    "planned": "planned",
    "action_scheduled": "action scheduled",
    "investigating": "being looked into",
    "duplicate": "closed as a duplicate",
    "not_councils_responsibility": "passed on: not the council's responsibility",
    "no_further_action": "closed with no further action",
    "internal_referral": "passed to another team",
    "cancelled": "cancelled",
    "reopen": "reopened",
    "for_triage": "waiting to be assessed",
    "unchanged": "unchanged",
}


def _tell_about_cases(
    vault: Vault, items: Sequence[Item], owners: dict[int, uuid.UUID], stored: set[uuid.UUID]
) -> None:
    """A new case, or a new update to one, is emailed to its citizen (queued with this transaction)."""
    new_ids = set(
        vault.session.scalars(select(Record.source_record_id).where(Record.id.in_(list(stored)))).all()
    )
    for i, item in enumerate(items):
        if item.source_record_id not in new_ids:
            continue
        p = item.payload
        if item.kind == "open311:request":
            subject = f"We have your case {p['service_request_id']}: {p.get('service_name', 'your case')}"
            lines = [
                f"{p.get('agency_responsible') or 'The service'} has your case {p['service_request_id']}.",
                f"Status: {STATUS_WORDS.get(p.get('status', ''), p.get('status', ''))}.",
            ]
            if p.get("expected_datetime"):
                lines.append(f"Expected by: {p['expected_datetime'][:10]}.")
            vault.notifications.queue(owners[i], "case.received", subject, "\n".join(lines))
        elif item.kind == "open311:update":
            status = STATUS_WORDS.get(p.get("status", ""), p.get("status", ""))
            subject = f"Your case {p['service_request_id']} is {status}"
            body = p.get("description") or f"Your case {p['service_request_id']} is now {status}."
            vault.notifications.queue(owners[i], "case.updated", subject, body)
