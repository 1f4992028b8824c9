"""Where each connector's pulls have got to: its cursor, and how the last run went."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Column, String, Text
from sqlmodel import Field, SQLModel

from pds.db import UTCDateTime


class ConnectorState(SQLModel, table=True):
    __tablename__ = "connector_state"

    name: str = Field(primary_key=True, sa_type=String(63))
    cursor: str = Field(
        default="", sa_type=Text
    )  # e.g. the last updated_datetime seen; meaning is the kind's
    last_run_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    last_success_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    last_error: str = Field(default="", sa_type=Text)
    last_counts: str = Field(default="{}", sa_type=Text)  # JSON: stored, updated, unchanged, citizens
