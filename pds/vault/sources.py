"""Sources: the systems that feed vaults."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from pds.errors import ValidationError
from pds.vault.models import Source

NAME = re.compile(r"^[a-z][a-z0-9-]{0,63}$")
SOURCE_KINDS = ("fhir", "oneroster", "open311")


class SourceService:
    def __init__(self, session: Session) -> None:
        self.session = session

    def ensure(self, name: str, *, kind: str, title: str) -> Source:
        """The source of this name, created if new. Its kind never changes once set."""
        if not NAME.match(name):
            raise ValidationError(
                "must be lowercase letters, digits and -, starting with a letter", field="name"
            )
        if kind not in SOURCE_KINDS:
            raise ValidationError(f"must be one of {', '.join(SOURCE_KINDS)}", field="kind")
        source = self.session.scalar(select(Source).where(Source.name == name))
        if source is None:
            source = Source(name=name, kind=kind, title=title.strip() or name)
            self.session.add(source)
            self.session.flush()
        elif source.kind != kind:
            raise ValidationError(f"source {name!r} is of kind {source.kind}, not {kind}", field="kind")
        return source

    def all(self) -> list[Source]:
        return list(self.session.scalars(select(Source).order_by(Source.name)))
