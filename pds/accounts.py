"""Password hashing with argon2id (the one place that chooses its cost) and the second factor's code check."""

from __future__ import annotations

import contextlib
import datetime as dt
import hmac
import secrets
import time

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# argon2-cffi's defaults are RFC 9106's second recommended profile: argon2id, t=3, m=64 MiB, p=4.
HASHER = PasswordHasher()
MIN_PASSWORD = 12  # NCSC guidance: length over complexity rules


def hash_password(password: str) -> str:
    return HASHER.hash(password)


_DUMMY_HASH: list[str] = []


def verify_password(password_hash: str | None, password: str) -> bool:
    """Check a password. With no account, still spend the same time, so timing tells nothing."""
    if password_hash is None:
        if not _DUMMY_HASH:
            _DUMMY_HASH.append(HASHER.hash(secrets.token_hex(16)))
        password_hash, password = _DUMMY_HASH[0], password + "\x00never"
        with contextlib.suppress(VerificationError, InvalidHashError):
            HASHER.verify(password_hash, password)
        return False
    try:
        return HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def generate_password() -> str:
    """Four random words' worth of entropy in a form people can type: 20 base32 characters."""
    return "-".join(secrets.token_hex(3) for _ in range(4))


def totp_step(secret: str, code: str) -> int | None:
    """The time step a code is current for (RFC 6238, one step either side), or None if it is not. The
    caller accepts each step once, so a code cannot be replayed."""
    totp = pyotp.TOTP(secret)
    typed = code.strip().replace(" ", "")
    now = time.time()
    for drift in (-1, 0, 1):
        at = now + drift * totp.interval
        if hmac.compare_digest(totp.at(at), typed):
            return int(totp.timecode(dt.datetime.fromtimestamp(at, dt.UTC)))
    return None
