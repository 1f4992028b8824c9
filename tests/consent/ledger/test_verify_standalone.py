"""verify.py is what a third party runs alone: standard library and `cryptography` only, nothing of ours."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import consent.ledger.verify
from consent.ledger.checkpoint import make_signer, sign_checkpoint, verifier_key_string
from consent.ledger.subtrees import MemorySubtreeStore

VERIFY_PY = Path(consent.ledger.verify.__file__)
ALLOWED_THIRD_PARTY = {"cryptography"}

# Run isolated (-I: no PYTHONPATH, no current directory on the path) beside a lone copy of verify.py.
CLIENT = """
import json, sys
sys.path.insert(0, ".")
import verify
args = json.loads(sys.stdin.read())
cp = verify.verify_checkpoint(args["note"], args["vkey"])
verify.verify_inclusion(leaf_index=args["index"], tree_size=cp.size, leaf_hash=verify.leaf_hash(b"leaf 5"),
                        proof=[bytes.fromhex(p) for p in args["proof"]], root=cp.root)
ours = sorted(
    m for m in sys.modules
    if m.split(".")[0] in {"flask", "sqlalchemy", "sqlmodel", "pds", "consent"}
)
print(json.dumps({"size": cp.size, "ours": ours}))
"""


def test_verify_imports_only_the_standard_library_and_cryptography() -> None:
    tree = ast.parse(VERIFY_PY.read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "verify.py must not use relative imports"
            imported.add((node.module or "").split(".")[0])
    outside = imported - set(sys.stdlib_module_names) - ALLOWED_THIRD_PARTY
    assert not outside, f"verify.py imports {sorted(outside)}"


def test_a_client_with_only_verify_py_and_the_key_checks_a_proof(tmp_path: Path) -> None:
    shutil.copy(VERIFY_PY, tmp_path / "verify.py")
    key = Ed25519PrivateKey.from_private_bytes(b"\x05" * 32)
    store = MemorySubtreeStore()
    for i in range(12):
        store.append_leaf(f"leaf {i}".encode())
    args = {
        "note": sign_checkpoint("pds.example/log", 12, store.root(), make_signer("pds.example/log", key)),
        "vkey": verifier_key_string("pds.example/log", key.public_key()),
        "index": 5,
        "proof": [p.hex() for p in store.inclusion_proof(5)],
    }
    result = subprocess.run(
        [sys.executable, "-I", "-c", CLIENT],
        input=json.dumps(args),
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"size": 12, "ours": []}
