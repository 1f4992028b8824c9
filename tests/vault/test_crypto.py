"""Envelope encryption: round trip, ciphertexts bound to their row and citizen, wrong keys refused."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select, update

from pds.errors import IntegrityFailure, KeyMissing
from pds.runtime import Runtime
from pds.vault import crypto
from pds.vault.models import Record
from tests.conftest import add_citizen, make_settings, record


def _key(citizen_id: uuid.UUID, key_id: int = 7) -> crypto.DataKey:
    return crypto.DataKey(key_id, citizen_id, crypto.AESGCM(crypto.new_data_key_material()))


def test_seal_and_open_round_trip() -> None:
    citizen, row = uuid.uuid4(), uuid.uuid4()
    key = _key(citizen)
    sealed = crypto.seal(key, b"HbA1c 52 mmol/mol", row_id=row, category="health")
    assert crypto.open_sealed(key, sealed, row_id=row, category="health") == b"HbA1c 52 mmol/mol"
    assert b"HbA1c" not in sealed


def test_header_carries_version_algorithm_key_id_and_a_fresh_nonce() -> None:
    key = _key(uuid.uuid4(), key_id=4242)
    a = crypto.seal(key, b"x", row_id=uuid.uuid4(), category="case")
    b = crypto.seal(key, b"x", row_id=uuid.uuid4(), category="case")
    version, alg, key_id, nonce_a = crypto.HEADER.unpack_from(a)
    assert (version, alg, key_id) == (crypto.FORMAT_VERSION, crypto.ALG_AES_256_GCM, 4242)
    assert nonce_a != crypto.HEADER.unpack_from(b)[3]
    assert crypto.data_key_id(a) == 4242


@pytest.mark.parametrize("what", ["row", "category", "citizen"])
def test_a_ciphertext_opened_as_another_row_category_or_citizen_fails(what: str) -> None:
    citizen, row = uuid.uuid4(), uuid.uuid4()
    key = _key(citizen)
    sealed = crypto.seal(key, b"secret", row_id=row, category="health")
    other_key = crypto.DataKey(key.id, uuid.uuid4(), key.aead)  # same key material, other citizen
    args = {
        "row": (key, uuid.uuid4(), "health"),
        "category": (key, row, "education"),
        "citizen": (other_key, row, "health"),
    }[what]
    with pytest.raises(IntegrityFailure, match="integrity check"):
        crypto.open_sealed(args[0], sealed, row_id=args[1], category=args[2])


def test_a_flipped_header_bit_fails_the_integrity_check() -> None:
    citizen, row = uuid.uuid4(), uuid.uuid4()
    key = _key(citizen)
    sealed = bytearray(crypto.seal(key, b"secret", row_id=row, category="health"))
    sealed[12] ^= 1  # inside the nonce, which only the associated data protects
    with pytest.raises(IntegrityFailure):
        crypto.open_sealed(key, bytes(sealed), row_id=row, category="health")


def test_garbage_is_refused_clearly() -> None:
    with pytest.raises(IntegrityFailure, match="too short"):
        crypto.data_key_id(b"abc")
    with pytest.raises(IntegrityFailure, match="unknown ciphertext format"):
        crypto.data_key_id(b"\x09" * 64)


def test_ciphertext_copied_to_another_row_fails_on_read(runtime: Runtime, source: str) -> None:
    alice, bob = add_citizen(runtime, "Alice"), add_citizen(runtime, "Bob")
    with runtime.vault() as v:
        a1, a2 = v.records.put([record(alice, "a1"), record(alice, "a2")]).stored
        (b1,) = v.records.put([record(bob, "b1")]).stored
    with runtime.sessions() as s, s.begin():
        stolen = s.scalar(select(Record.payload).where(Record.id == a1))
        s.execute(update(Record).where(Record.id.in_([a2, b1])).values(payload=stolen))
    with runtime.vault() as v:
        assert v.records.get(a1).payload["id"] == "a1"
        with pytest.raises(IntegrityFailure, match="copied from another row or citizen"):
            v.records.get(a2)  # same citizen, other row
        with pytest.raises(IntegrityFailure):
            v.records.get(b1)  # another citizen's row


def test_a_wrong_key_file_stops_start_up(runtime: Runtime, source: str, keys_dir: Path, db_url: str) -> None:
    alice = add_citizen(runtime)
    with runtime.vault() as v:
        v.records.put([record(alice, "a1")])
    (keys_dir / "kek-0001.key").write_text(base64.b64encode(b"\x01" * 32).decode())
    with pytest.raises(KeyMissing, match="kek-0001"):
        Runtime.build(make_settings(db_url, keys_dir)).check()


def test_a_missing_key_file_stops_start_up(runtime: Runtime, keys_dir: Path, db_url: str) -> None:
    add_citizen(runtime)
    (keys_dir / "kek-0001.key").unlink()
    with pytest.raises(KeyMissing, match="no key-encryption key"):
        Runtime.build(make_settings(db_url, keys_dir))


def test_a_wrong_blind_index_key_stops_start_up(runtime: Runtime, keys_dir: Path, db_url: str) -> None:
    (keys_dir / "blind-index.key").write_text(base64.b64encode(b"\x02" * 32).decode())
    with pytest.raises(KeyMissing, match="blind-index key does not match"):
        Runtime.build(make_settings(db_url, keys_dir)).check()


def test_key_files_are_private(keys_dir: Path) -> None:
    assert keys_dir.stat().st_mode & 0o777 == 0o700
    for path in keys_dir.iterdir():
        assert path.stat().st_mode & 0o777 == 0o600


def test_keys_can_come_from_the_environment(runtime: Runtime, db_url: str, tmp_path: Path) -> None:
    kek = base64.b64encode(b"\x05" * 32).decode()
    blind = base64.b64encode(b"\x06" * 32).decode()
    environ = {"PDS_KEYS_KEKS": f"kek-0001={kek}", "PDS_KEYS_BLIND_INDEX": blind}
    settings = make_settings(db_url, tmp_path / "unused", PDS_KEYS_PROVIDER="env")
    from sqlmodel import SQLModel

    with runtime.engine.begin() as conn:  # this database was checked with other keys: start afresh
        for table in reversed(SQLModel.metadata.sorted_tables):
            conn.execute(table.delete())
    rt = Runtime.build(settings, environ=environ)
    rt.check()
    with rt.vault() as v:
        cid = v.citizens.add(name="Env Key", date_of_birth="1990-02-03").id
    with rt.vault() as v:
        assert v.citizens.get(cid).name == "Env Key"
    rt.close()
    with pytest.raises(KeyMissing, match="PDS_KEYS_BLIND_INDEX"):
        Runtime.build(settings, environ={"PDS_KEYS_KEKS": f"kek-0001={kek}"})
