"""Nothing personal is stored in clear: read the raw database file and a PostgreSQL dump."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from pds.runtime import Runtime
from tests.conftest import record

MARKER = "ZEBRA-MARKER-7f3a9c"
NHS = "9990000042"
NAME = "Quentin Marker-Person"
EMAIL = "quentin.marker@example.org"
UPN = "V201200124002"


def _store_distinctive_data(runtime: Runtime) -> None:
    with runtime.vault() as v:
        v.sources.ensure("test-gp", kind="fhir", title="GP")
        cid = v.citizens.add(name=NAME, date_of_birth="1970-05-05", email=EMAIL, nhs_number=NHS).id
        v.citizens.add_identifier(cid, "upn", UPN)
        v.records.put([record(cid, "obs-marker", note=MARKER, subject={"identifier": NHS})])


def _forbidden() -> list[bytes]:
    needles = [MARKER, NHS, "999 000 0042", NAME, EMAIL, UPN]
    found = []
    for n in needles:
        found += [n.encode(), n.encode("utf-16-le")]
    return found


def test_no_plaintext_in_the_sqlite_file(runtime: Runtime, on_postgres: bool) -> None:
    if on_postgres:
        pytest.skip("this run's database is PostgreSQL: see the dump test")
    _store_distinctive_data(runtime)
    with runtime.engine.execution_options(sqlite_write=False).connect() as conn:  # no write lock held
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    path = Path(make_url(runtime.settings.database.url).database or "")
    # Read by another process: closing a file this process opened drops every POSIX lock the process
    # holds on it, SQLite's included, and can corrupt the database for connections still open.
    files = [str(p) for p in path.parent.glob(path.name + "*")]  # the file, its WAL and shm
    raw = subprocess.run(["cat", *files], check=True, capture_output=True).stdout
    assert len(raw) > 10_000
    for needle in _forbidden():
        assert needle not in raw, f"{needle!r} found in clear in {path}"
    with runtime.vault() as v:  # and it is all still there, readable through the vault
        assert v.citizens.find("nhs_number", NHS) is not None


def test_no_plaintext_in_a_postgres_dump(runtime: Runtime, on_postgres: bool) -> None:
    if not on_postgres:
        pytest.skip("needs PDS_TEST_DATABASE_URL to name a PostgreSQL database")
    _store_distinctive_data(runtime)
    url = make_url(runtime.settings.database.url)
    dump = subprocess.run(
        [
            "pg_dump",
            "--data-only",
            "-h",
            url.host or "127.0.0.1",
            "-p",
            str(url.port or 5432),
            "-U",
            url.username or "postgres",
            "-t",
            "record",
            "-t",
            "citizen",
            "-t",
            "identifier",
            "-t",
            "data_key",
            url.database or "",
        ],
        check=True,
        capture_output=True,
    ).stdout
    assert b"COPY public.record" in dump and b"COPY public.identifier" in dump
    for needle in _forbidden():
        assert needle not in dump, f"{needle!r} found in clear in the dump"
    # the bytea columns really hold data: the dump is not empty of payloads
    with runtime.engine.connect() as conn:
        assert conn.execute(text("SELECT octet_length(payload) FROM record")).scalar_one() > len(MARKER)
