"""Erasing a citizen destroys their data key: any copy of their ciphertexts is unreadable."""

from __future__ import annotations

import pytest
from sqlalchemy import insert, select

from pds.errors import Erased, ValidationError
from pds.runtime import Runtime
from pds.vault import crypto
from pds.vault.models import Citizen, DataKeyRow, Identifier, Record
from tests.conftest import add_citizen, record


def test_erased_citizens_ciphertexts_cannot_be_opened_even_from_a_backup(
    runtime: Runtime, source: str
) -> None:
    alice = add_citizen(runtime, "Alice", nhs_number="9990000018")
    bob = add_citizen(runtime, "Bob")
    with runtime.vault() as v:
        v.records.put([record(alice, "a1", note="private"), record(bob, "b1")])
    with runtime.sessions() as s:  # a "backup" of Alice's record rows, taken before erasure
        backup = [
            dict(row._mapping)
            for row in s.execute(select(Record.__table__).where(Record.citizen_id == alice))
        ]
    assert backup

    with runtime.vault() as v:
        erased = v.citizens.erase(alice)
    assert (erased.records, erased.identifiers, erased.data_keys) == (1, 1, 1)

    with runtime.sessions() as s:
        assert s.scalar(select(DataKeyRow.wrapped).where(DataKeyRow.citizen_id == alice)) is None
        assert s.scalars(select(Identifier).where(Identifier.citizen_id == alice)).all() == []
        citizen = s.get(Citizen, alice)
        assert citizen is not None and citizen.status == "erased" and citizen.profile is None
    with runtime.sessions() as s, s.begin():  # restore the backup rows: still unreadable
        s.execute(insert(Record.__table__), backup)
    with runtime.vault() as v:
        with pytest.raises(Erased, match="destroyed"):
            v.records.get(backup[0]["id"])
        with pytest.raises(Erased, match="destroyed"):
            v.keys.for_ciphertext(backup[0]["payload"])
        assert v.records.list(bob).items[0].source_record_id == "b1"  # others untouched
        assert v.citizens.find("nhs_number", "9990000018") is None
        assert v.citizens.get(alice).name is None


def test_an_erased_citizen_receives_no_more_records(runtime: Runtime, source: str) -> None:
    alice = add_citizen(runtime)
    with runtime.vault() as v:
        v.citizens.erase(alice)
    with pytest.raises(ValidationError, match="no live citizen"), runtime.vault() as v:
        v.records.put([record(alice, "late")])


def test_erasing_twice_is_refused(runtime: Runtime) -> None:
    alice = add_citizen(runtime)
    with runtime.vault() as v:
        v.citizens.erase(alice)
    with pytest.raises(Erased), runtime.vault() as v:
        v.citizens.erase(alice)


def test_the_wrapped_key_alone_cannot_be_moved_to_another_citizen(runtime: Runtime, source: str) -> None:
    alice, bob = add_citizen(runtime, "Alice"), add_citizen(runtime, "Bob")
    with runtime.sessions() as s:
        alice_key = s.scalars(select(DataKeyRow).where(DataKeyRow.citizen_id == alice)).one()
    with pytest.raises(Exception, match="does not open"):
        crypto.open_data_key(
            runtime.provider,
            key_id=1,
            citizen_id=bob,
            kek_id=alice_key.kek_id,
            wrapped=alice_key.wrapped or b"",
        )
