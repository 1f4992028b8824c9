"""The connector interface: a delivery in a source system's own format becomes normalised items.

A parser knows one format (FHIR, Open311, OneRoster) and nothing of citizens, keys or the database: it
checks a delivery and turns each record in it into an `Item` naming the identifier the source holds for
the person (NHS number, unique pupil number, council account, crime reference). `connectors.ingest`
matches identifiers to citizens and stores the items in their vaults, with the ledger entry, in one
transaction. A delivery with any bad item is refused whole: the parser collects every problem it finds
(item index, field, reason) and raises them together.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from pds.errors import ValidationError

IDENTIFIER_KINDS = ("nhs_number", "upn", "council_account", "crime_reference")
CATEGORIES = ("health", "education", "case")


@dataclass(frozen=True)
class Item:
    """One record of a delivery, normalised, before it is matched to a citizen."""

    identifier_kind: str  # one of IDENTIFIER_KINDS
    identifier: str  # as the source sent it; checked and normalised when matched
    category: str  # one of CATEGORIES
    kind: str  # "format:Type", e.g. "fhir:Observation", "open311:request", "oneroster:result"
    source_record_id: str  # the record's id at the source: with the source, what makes it unique
    version: int  # a newer version replaces an older one; an older one never replaces a newer
    occurred_at: dt.datetime  # when it happened (time-zone aware)
    payload: dict[str, Any]  # the record in its stored form (FHIR R4 for health, the source's JSON else)
    sensitive: bool = False  # marked confidential by the source: kept, but hidden from proxies


@dataclass(frozen=True)
class Problem:
    """What is wrong with one item of a delivery (index None: the delivery as a whole)."""

    index: int | None
    field: str
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "field": self.field, "reason": self.reason}


class DeliveryInvalid(ValidationError):
    """A delivery with at least one bad item: 422 problem+json listing every problem; nothing stored."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        first = self.problems[0] if self.problems else Problem(None, "body", "empty")
        where = f"item {first.index}: " if first.index is not None else ""
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        super().__init__(f"{where}{first.field}: {first.reason}{more}", field=first.field)

    def problem(self, instance: str | None = None) -> dict[str, Any]:
        return {**super().problem(instance), "errors": [p.to_json() for p in self.problems]}


@dataclass
class Problems:
    """Collects problems while a parser walks a delivery, so every one is reported at once."""

    found: list[Problem] = field(default_factory=list)

    def add(self, index: int | None, field_: str, reason: str) -> None:
        self.found.append(Problem(index, field_, reason))

    def raise_if_any(self) -> None:
        if self.found:
            raise DeliveryInvalid(self.found)


class Parser(Protocol):
    """One wire format. `parse` returns every item, or raises DeliveryInvalid naming every bad one."""

    kind: ClassVar[str]  # the connector kind in config.toml: "fhir", "open311", "oneroster"
    media_types: ClassVar[tuple[str, ...]]  # what a push may be sent as

    def parse(self, body: bytes, *, media_type: str) -> list[Item]: ...
