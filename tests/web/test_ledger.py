"""The ledger over HTTP: an app acting for the citizen reads their entries, each proved against a signed
checkpoint with nothing but the verifier key; consent receipts verify with only the JWKS."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import jwt
import pytest
import requests

from consent.clients import ClientService
from consent.ledger.canonical import canonical_json
from consent.ledger.verify import (
    VerificationError,
    check_consistency_document,
    check_entry_document,
    verify_checkpoint,
)
from pds.runtime import Runtime
from tests.web.live import REDIRECT_URI, Browser, Person
from tests.web.test_oauth import authorize, oauth

SCOPE = "openid health.read ledger.read"
PDS = str(Path(sys.executable).with_name("pds"))


@pytest.fixture
def history_app(runtime: Runtime) -> dict[str, str]:
    with runtime.sessions() as s, s.begin():
        made = ClientService(s).add(
            name="My Access Log",
            operator="Example Civic Ltd",
            purpose="Shows you who has looked at your records",
            redirect_uris=[REDIRECT_URI],
            scope=SCOPE,
        )
        return {"client_id": made.client.client_id, "client_secret": made.secret or ""}


def _connect(base: str, client: dict[str, str], person: Person, scope: str = SCOPE):  # type: ignore[no-untyped-def]
    browser = Browser(base)
    browser.sign_in(person)
    session = oauth(base, client, scope=scope)
    authorize(base, session, browser)
    return session


def test_the_citizens_entries_are_proved_against_a_signed_checkpoint(
    base: str, history_app: dict, alice: Person, tmp_path: Path
) -> None:
    app = _connect(base, history_app, alice)
    assert app.get(base + "/api/v1/records").status_code == 200
    page = app.get(base + "/api/v1/ledger")
    assert page.status_code == 200, page.text
    entries = page.json()["entries"]
    # newest first: the read of the records, then the grant that allowed it
    assert [e["event"] for e in entries] == ["records.read", "consent.grant.created"]
    grant_entry = entries[-1]
    assert grant_entry["details"]["purpose"] == "Shows you who has looked at your records"
    assert grant_entry["details"]["categories"] == ["health"]
    assert grant_entry["receipt"] == f"/api/v1/ledger/{grant_entry['index']}/receipt"
    assert [e["seq"] for e in entries] == sorted((e["seq"] for e in entries), reverse=True)

    vkey = requests.get(base + "/ledger/key", timeout=10).text.strip()
    assert vkey.split("+")[0] == base.removeprefix("http://") + "/ledger"
    for e in entries:
        leaf = json.loads(e["leaf"])
        # the leaf names no one, and commits to exactly the details the citizen is shown
        assert str(alice.citizen_id) not in e["leaf"] and "alice" not in e["leaf"].lower()
        salted = bytes.fromhex(e["salt"]) + canonical_json(e["details"])
        assert leaf["commitment"] == hashlib.sha256(salted).hexdigest()
        doc = requests.get(base + e["proof"], timeout=10).json()
        assert doc["leaf"] == e["leaf"]
        checkpoint = check_entry_document(doc, vkey)
        assert checkpoint.size > e["index"]

    # the same check offline, by the command a third party runs with only the key
    doc = requests.get(base + grant_entry["proof"], timeout=10).json()
    (tmp_path / "proof.json").write_text(json.dumps(doc))
    checked = subprocess.run(
        [PDS, "ledger", "check-proof", "--key", vkey, str(tmp_path / "proof.json")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.startswith(f"ok: entry {grant_entry['index']} is in tree ")
    doc["leaf"] = doc["leaf"].replace("consent.grant.created", "consent.grant.revoked")
    (tmp_path / "forged.json").write_text(json.dumps(doc))
    forged = subprocess.run(
        [PDS, "ledger", "check-proof", "--key", vkey, str(tmp_path / "forged.json")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert forged.returncode == 1
    assert forged.stderr.startswith("error: proof does not verify: inclusion proof for leaf")


def test_a_kept_checkpoint_is_extended_by_a_consistency_proof(
    base: str, history_app: dict, alice: Person, runtime: Runtime
) -> None:
    app = _connect(base, history_app, alice)
    first = app.get(base + "/api/v1/ledger").json()["entries"][0]
    requests.get(base + first["proof"], timeout=10)  # makes a checkpoint covering it
    kept = requests.get(base + "/ledger/checkpoint", timeout=10)
    assert kept.status_code == 200 and kept.headers["Content-Type"].startswith("text/plain")
    vkey = requests.get(base + "/ledger/key", timeout=10).text.strip()
    old = verify_checkpoint(kept.text, vkey)

    for _ in range(3):  # the log grows, and a later checkpoint is signed
        app.get(base + "/api/v1/records")
    with runtime.sessions() as s, s.begin():
        new = runtime.checkpoints(s).make()
    assert new is not None and new.tree_size > old.size

    proof = requests.get(base + f"/ledger/consistency?from={old.size}", timeout=10).json()
    assert proof["to"] == new.tree_size and proof["from_checkpoint"] == kept.text
    first_cp, second_cp = check_consistency_document(proof, vkey, old=kept.text)
    assert (first_cp.size, second_cp.root) == (old.size, new.root)
    # an old checkpoint stays served, and a proof against a forged old root fails
    assert requests.get(base + f"/ledger/checkpoints/{old.size}", timeout=10).text == kept.text
    proof["proof"] = proof["proof"][1:] or ["AAAA"]
    with pytest.raises(VerificationError):
        check_consistency_document(proof, vkey, old=kept.text)


def test_a_consent_receipt_verifies_with_only_the_jwks(base: str, history_app: dict, alice: Person) -> None:
    app = _connect(base, history_app, alice)
    grant_entry = app.get(base + "/api/v1/ledger").json()["entries"][-1]
    answer = app.get(base + grant_entry["receipt"])
    assert answer.status_code == 200 and answer.headers["Content-Type"] == "application/jwt"

    jwks = jwt.PyJWKSet.from_dict(requests.get(base + "/oauth/jwks", timeout=10).json())
    header = jwt.get_unverified_header(answer.text)
    assert header["typ"] == "consent-receipt+jwt"
    key = next(k for k in jwks.keys if k.key_id == header["kid"])
    claims = jwt.decode(answer.text, key.key, algorithms=["ES256"], options={"verify_aud": False})
    assert claims["iss"] == base and claims["version"] == "KI-CR-v1.1.0"
    assert (
        claims["consentReceiptID"] and claims["piiPrincipalId"] == json.loads(grant_entry["leaf"])["subject"]
    )
    (service,) = claims["services"]
    assert service["service"] == "My Access Log"
    (purpose,) = service["purposes"]
    assert purpose["purpose"] == "Shows you who has looked at your records"
    assert purpose["piiCategory"] == ["health"] and purpose["consentType"] == "EXPLICIT"
    assert claims["sensitive"] is True and claims["spiCat"] == ["Health"]
    assert claims["withdrawal"]["url"].endswith("/account/access")
    # the ledger entry inside proves itself against the checkpoint with the ledger's key
    proof = claims["ledger"]
    checkpoint = check_entry_document(proof, proof["verifier_key"])
    assert checkpoint.size > proof["index"] == grant_entry["index"]
    salted = bytes.fromhex(proof["salt"]) + canonical_json(proof["details"])
    assert json.loads(proof["leaf"])["commitment"] == hashlib.sha256(salted).hexdigest()
    # a receipt edited after signing does not verify
    head, _body, sig = answer.text.split(".")
    tampered = jwt.utils.base64url_encode(json.dumps({**claims, "spiCat": []}).encode()).decode()
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(f"{head}.{tampered}.{sig}", key.key, algorithms=["ES256"], options={"verify_aud": False})


def test_history_needs_its_scope_and_receipts_are_for_grant_events(
    base: str, history_app: dict, alice: Person
) -> None:
    narrow = _connect(base, history_app, alice, scope="openid health.read")
    refused = narrow.get(base + "/api/v1/ledger")
    assert refused.status_code == 403
    assert refused.headers["Content-Type"] == "application/problem+json"

    app = _connect(base, history_app, alice)
    app.get(base + "/api/v1/records")
    entries = app.get(base + "/api/v1/ledger").json()["entries"]
    read = next(e for e in entries if e["event"] == "records.read")
    assert "receipt" not in read
    missing = app.get(base + f"/api/v1/ledger/{read['index']}/receipt")
    assert missing.status_code == 404 and missing.json()["field"] == "index"
    bad = app.get(base + "/api/v1/ledger?limit=0")
    assert bad.status_code == 422 and bad.json()["field"] == "limit"


@pytest.mark.parametrize(
    ("path", "status", "field"),
    [
        ("/ledger/entries/abc", 422, "index"),
        ("/ledger/entries/-1", 422, "index"),
        ("/ledger/entries/99999999", 404, "index"),
        ("/ledger/entries/99999999999999999999999", 422, "index"),
        ("/ledger/consistency", 422, "from"),
        ("/ledger/consistency?from=0&to=1", 422, "from"),
        ("/ledger/consistency?from=x", 422, "from"),
        ("/ledger/consistency?from=1&to=99999999", 422, "to"),
        ("/ledger/checkpoints/1x", 422, "size"),
        ("/ledger/checkpoints/123456", 404, "size"),
    ],
)
def test_bad_ledger_requests_get_problem_json(
    base: str, alice: Person, runtime: Runtime, path: str, status: int, field: str
) -> None:
    from consent import events

    with runtime.sessions() as s, s.begin():
        events.append_event(s, events.RECORDS_EXPORTED, actor="operator:test", citizen_id=alice.citizen_id)
        runtime.checkpoints(s).make()
    answer = requests.get(base + path, timeout=10)
    assert answer.status_code == status, answer.text
    assert answer.headers["Content-Type"] == "application/problem+json"
    assert answer.json()["field"] == field
