"""Key rotation rewraps data keys only; after it the old key-encryption key can go."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from pds.errors import KeyMissing
from pds.runtime import Runtime
from pds.vault.crypto import LocalKeyProvider
from pds.vault.keys import kek_usage, retire_kek, rewrap_data_keys
from pds.vault.models import DataKeyRow, Record
from tests.conftest import add_citizen, make_settings, record


def test_rotation_keeps_every_record_readable_with_the_old_key_removed(
    runtime: Runtime, source: str, keys_dir: Path, db_url: str
) -> None:
    people = [add_citizen(runtime, f"Person {i}") for i in range(12)]
    with runtime.vault() as v:
        v.records.put([record(p, f"obs-{i}-{j}", n=j) for i, p in enumerate(people) for j in range(3)])
    with runtime.sessions() as s:
        payloads_before = dict(s.execute(select(Record.id, Record.payload)).all())

    provider = runtime.provider
    assert isinstance(provider, LocalKeyProvider)
    new_kek = provider.add_kek()
    done = rewrap_data_keys(runtime.sessions, provider)
    assert (new_kek, done) == ("kek-0002", 12)
    with runtime.vault() as v:
        assert kek_usage(v.session) == {"kek-0002": 12}
        retire_kek(v.session, provider, "kek-0001")
    assert not (keys_dir / "kek-0001.key").exists()

    fresh = Runtime.build(make_settings(db_url, keys_dir))  # a new process: only kek-0002 on disk
    fresh.check()
    with fresh.vault() as v:
        for i, p in enumerate(people):
            got = sorted(r.payload["n"] for r in v.records.list(p).items)
            assert got == [0, 1, 2], f"person {i}"
    with fresh.sessions() as s:  # records were not rewritten, only their keys rewrapped
        assert dict(s.execute(select(Record.id, Record.payload)).all()) == payloads_before
        assert set(s.scalars(select(DataKeyRow.kek_id))) == {"kek-0002"}
    fresh.close()


def test_a_key_still_in_use_cannot_be_retired(runtime: Runtime) -> None:
    add_citizen(runtime)
    provider = runtime.provider
    assert isinstance(provider, LocalKeyProvider)
    provider.add_kek()
    with pytest.raises(KeyMissing, match="still wraps 1 data keys"), runtime.vault() as v:
        retire_kek(v.session, provider, "kek-0001")
    with pytest.raises(KeyMissing, match="active key"), runtime.vault() as v:
        retire_kek(v.session, provider, "kek-0002")


def test_removing_a_key_that_is_still_needed_stops_start_up(
    runtime: Runtime, keys_dir: Path, db_url: str
) -> None:
    add_citizen(runtime)
    assert isinstance(runtime.provider, LocalKeyProvider)
    runtime.provider.add_kek()  # a new key, but nothing rewrapped yet
    (keys_dir / "kek-0001.key").unlink()
    with pytest.raises(KeyMissing, match="kek-0001 wraps data keys but is missing"):
        Runtime.build(make_settings(db_url, keys_dir)).check()


def test_new_citizens_get_the_active_key(runtime: Runtime) -> None:
    assert isinstance(runtime.provider, LocalKeyProvider)
    add_citizen(runtime, "Before")
    runtime.provider.add_kek()
    add_citizen(runtime, "After")
    with runtime.vault() as v:
        assert kek_usage(v.session) == {"kek-0001": 1, "kek-0002": 1}
