"""The `pds` command as an operator uses it: a real process, a real config file, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import create_engine, text

from consent.ledger.checkpoint import verifier_key_string
from tests.conftest import CONFIG, empty_database

PDS = str(Path(sys.executable).with_name("pds"))


@pytest.fixture
def workdir(tmp_path: Path, db_url: str) -> Path:
    """A folder with its own config.toml, as a newcomer would have; keys under its var/."""
    empty_database(db_url)
    (tmp_path / "config.toml").write_text(CONFIG.read_text())
    return tmp_path


def pds(
    workdir: Path, db_url: str, *args: str, input_: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PDS_DATABASE_URL": db_url}
    env.pop("PDS_CONFIG", None)
    return subprocess.run(
        [PDS, *args], cwd=workdir, env=env, capture_output=True, text=True, input=input_, timeout=120
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_init_demo_list_export_and_delete(workdir: Path, db_url: str) -> None:
    out = ok(pds(workdir, db_url, "init"))
    assert "wrote key" in out and "database ready" in out
    assert (workdir / "var" / "keys" / "kek-0001.key").stat().st_mode & 0o777 == 0o600
    assert "wrote key" not in ok(pds(workdir, db_url, "init"))  # a second init keeps the keys

    demo_out = json.loads(ok(pds(workdir, db_url, "demo", "--json")))
    accounts = demo_out["accounts"]
    assert demo_out["oauth_client"]["client_id"] == "pds-demo-app"
    by_name = {a["name"]: a for a in accounts}
    assert {"Alice Okafor", "Sam Okafor", "Bob Patel"} <= set(by_name)
    assert by_name["Alice Okafor"]["password"] and by_name["Sam Okafor"]["password"] is None
    again = json.loads(ok(pds(workdir, db_url, "demo", "--json")))["accounts"]
    assert [a["citizen_id"] for a in again] == [a["citizen_id"] for a in accounts]  # idempotent

    listed = json.loads(ok(pds(workdir, db_url, "citizens", "list", "--json")))
    assert len(listed) == 3
    links = json.loads(ok(pds(workdir, db_url, "guardians", "list", "--json")))
    assert links[0]["child_name"] == "Sam Okafor" and links[0]["categories"] == ["education", "health"]

    bob = by_name["Bob Patel"]["citizen_id"]
    export = json.loads(ok(pds(workdir, db_url, "citizens", "export", bob)))
    assert export["citizen"]["name"] == "Bob Patel"
    assert export["identifiers"]["nhs_number"] == ["9990000034"]
    kinds = {r["kind"] for r in export["records"]}
    assert {"fhir:Condition", "fhir:Observation"} <= kinds
    # the GP sent a GP Connect STU3 record; the vault holds it as R4
    hba1c = sorted(
        (r for r in export["records"] if r["payload"].get("valueQuantity", {}).get("unit") == "mmol/mol"),
        key=lambda r: r["occurred_at"],
    )
    assert [r["payload"]["valueQuantity"]["value"] for r in hba1c] == [58, 52]
    assert {r["source"] for r in export["records"]} == {"demo-gp"}

    assert "erased" in ok(pds(workdir, db_url, "citizens", "delete", bob, "--yes"))
    engine = create_engine(db_url)
    with engine.connect() as conn:  # the export and the erasure are both in the ledger, under one pseudonym
        leaves = [
            json.loads(r[0]) for r in conn.execute(text("SELECT leaf FROM ledger_entry ORDER BY position"))
        ]
    engine.dispose()
    export_leaf, erased_leaf = (x for x in leaves if x["event"] in ("records.exported", "citizen.erased"))
    assert (export_leaf["event"], erased_leaf["event"]) == ("records.exported", "citizen.erased")
    assert export_leaf["subject"] == erased_leaf["subject"] and len(export_leaf["subject"]) == 64
    assert erased_leaf["subject_seq"] == export_leaf["subject_seq"] + 1
    again = pds(workdir, db_url, "citizens", "export", bob)
    assert again.returncode == 1 and "has been erased" in again.stderr and again.stdout == ""
    assert ok(pds(workdir, db_url, "ledger", "verify")).startswith(f"ok: {len(leaves)} entries, root ")
    # pinned to the published key, checkpoints by any other key are refused
    note = ok(pds(workdir, db_url, "ledger", "checkpoint"))
    assert note.splitlines()[1] == str(len(leaves))
    vkey = ok(pds(workdir, db_url, "ledger", "key")).strip()
    assert ok(pds(workdir, db_url, "ledger", "verify", "--key", vkey)).startswith(
        f"ok: {len(leaves)} entries"
    )
    other = verifier_key_string(vkey.split("+")[0], Ed25519PrivateKey.generate().public_key())
    refused = pds(workdir, db_url, "ledger", "verify", "--key", other)
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines()[-1] == (
        f"error: ledger verify failed: checkpoint {len(leaves)}: "
        "its signature does not verify (forged or altered)"
    )


def test_citizens_add_checks_its_input(workdir: Path, db_url: str) -> None:
    ok(pds(workdir, db_url, "init"))
    added = json.loads(
        ok(
            pds(
                workdir,
                db_url,
                "citizens",
                "add",
                "--name",
                "Nia Jones",
                "--email",
                "nia@example.org",
                "--nhs-number",
                "999 000 0050",
                "--date-of-birth",
                "1991-04-30",
                "--json",
            )
        )
    )
    assert added["name"] == "Nia Jones" and added["date_of_birth"] == "1991-04-30"
    bad = pds(
        workdir,
        db_url,
        "citizens",
        "add",
        "--name",
        "X",
        "--date-of-birth",
        "1990-01-01",
        "--nhs-number",
        "9990000051",
    )
    assert bad.returncode == 1
    assert bad.stderr.strip().count("\n") == 0 and "NHS number" in bad.stderr and "nhs_number" in bad.stderr
    dup = pds(
        workdir,
        db_url,
        "citizens",
        "add",
        "--name",
        "Y",
        "--date-of-birth",
        "1990-01-01",
        "--email",
        "NIA@example.org",
    )
    assert dup.returncode == 1 and "already belongs" in dup.stderr


def test_keys_rotate_then_retire_the_old_key(workdir: Path, db_url: str) -> None:
    ok(pds(workdir, db_url, "init"))
    ok(pds(workdir, db_url, "demo"))
    out = ok(pds(workdir, db_url, "keys", "rotate"))
    assert "kek-0002 is now active" in out and "rewrapped 3 data keys" in out
    keys = json.loads(ok(pds(workdir, db_url, "keys", "list", "--json")))
    assert keys == [
        {"kek_id": "kek-0001", "active": False, "data_keys": 0},
        {"kek_id": "kek-0002", "active": True, "data_keys": 3},
    ]
    ok(pds(workdir, db_url, "keys", "retire", "kek-0001"))
    assert not (workdir / "var" / "keys" / "kek-0001.key").exists()
    listed = json.loads(ok(pds(workdir, db_url, "citizens", "list", "--json")))
    export = json.loads(ok(pds(workdir, db_url, "citizens", "export", listed[0]["id"])))
    assert export["records"]  # still readable with only the new key


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (("citizens", "list"), {"PDS_SERVER_PORT": "eighty"}, "setting server.port"),
        (("citizens", "export", "not-an-id"), {}, "not a citizen id"),
        (("citizens", "export", "00000000-0000-0000-0000-000000000000"), {}, "no citizen"),
        (("frobnicate",), {}, "No such command"),
        (("citizens", "add", "--name", "X"), {}, "--date-of-birth"),
    ],
)
def test_errors_are_one_plain_line_and_a_non_zero_exit(
    workdir: Path, db_url: str, args: tuple[str, ...], env: dict[str, str], message: str
) -> None:
    ok(pds(workdir, db_url, "init"))
    result = subprocess.run(
        [PDS, *args],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PDS_DATABASE_URL": db_url, **env},
    )
    assert result.returncode != 0
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr


def test_without_keys_commands_say_to_run_init(workdir: Path, db_url: str) -> None:
    result = pds(workdir, db_url, "citizens", "list")
    assert result.returncode == 1
    assert (
        result.stderr.strip()
        == f"error: key folder {workdir / 'var' / 'keys'} does not exist: run `pds init`"
    )


def test_every_command_has_help(workdir: Path, db_url: str) -> None:
    for args in (
        ["--help"],
        ["citizens", "add", "--help"],
        ["keys", "rotate", "--help"],
        ["serve", "--help"],
        ["db", "upgrade", "--help"],
        ["demo", "--help"],
        ["guardians", "add", "--help"],
    ):
        out = ok(pds(workdir, db_url, *args))
        assert "Usage: pds" in out
