"""Opened data keys are remembered between transactions, but used only once their row is read live."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from pds.errors import Erased
from pds.runtime import Runtime
from pds.vault import keys as keys_module
from pds.vault.crypto import LocalKeyProvider
from pds.vault.keys import DataKeys, rewrap_data_keys
from pds.vault.models import DataKeyRow
from tests.conftest import add_citizen


def test_a_destroyed_key_is_refused_though_this_process_opened_it(runtime: Runtime) -> None:
    alice = add_citizen(runtime, "Alice")
    with runtime.vault() as v:
        assert DataKeys(v.session, provider=runtime.provider).preload([alice]) == {alice}
    with runtime.vault() as v:
        v.citizens.erase(alice)
    with runtime.vault() as v:
        keys = DataKeys(v.session, provider=runtime.provider)
        assert keys.preload([alice]) == set()
        with pytest.raises(Erased):
            keys.active(alice)


def test_a_key_row_that_changed_is_opened_afresh(runtime: Runtime) -> None:
    alice = add_citizen(runtime, "Alice")
    with runtime.vault() as v:
        before = DataKeys(v.session, provider=runtime.provider).active(alice)
    provider = runtime.provider
    assert isinstance(provider, LocalKeyProvider)
    provider.add_kek()
    assert rewrap_data_keys(runtime.sessions, provider) == 1
    with runtime.vault() as v:
        after = DataKeys(v.session, provider=runtime.provider).active(alice)
    assert after.id == before.id and after is not before  # another cache entry: the row says other bytes
    with runtime.vault() as v:  # wrapped bytes that no longer open are refused, not served from memory
        v.session.execute(
            update(DataKeyRow).where(DataKeyRow.citizen_id == alice).values(wrapped=b"\x00" * 60)
        )
        with pytest.raises(Exception):  # noqa: B017, PT011 (whatever the unwrap raises)
            DataKeys(v.session, provider=runtime.provider).active(alice)
        v.session.rollback()


def test_the_cache_is_bounded_and_drops_the_least_recently_used(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    people = [add_citizen(runtime, f"Person {i}") for i in range(4)]
    monkeypatch.setattr(keys_module, "UNWRAPPED_CACHE_SIZE", 2)
    keys_module._UNWRAPPED.clear()
    with runtime.vault() as v:
        for p in people:
            DataKeys(v.session, provider=runtime.provider).active(p)
            DataKeys(v.session, provider=runtime.provider).active(people[0])  # kept in use
    cached = {k[1] for k in keys_module._UNWRAPPED}
    assert len(keys_module._UNWRAPPED) == 2 and people[0] in cached and people[3] in cached
