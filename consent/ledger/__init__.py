"""The consent ledger: canonical leaves, an RFC 9162 Merkle tree, signed checkpoints and their verifier."""
