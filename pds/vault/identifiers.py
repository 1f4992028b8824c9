"""Identifiers citizens are looked up by: how each is checked and normalised before blind indexing."""

from __future__ import annotations

import re

from pds.errors import ValidationError

NHS_WEIGHTS = range(10, 1, -1)  # NHS Data Dictionary, NHS number: weights 10..2 over digits 1..9
UPN_LETTERS = "ABCDEFGHJKLMNPQRTUVWXYZ"  # DfE UPN check letters: A-Z without I, O and S
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
REFERENCE = re.compile(r"^[A-Z0-9][A-Z0-9/\-]{0,63}$")


def nhs_number_ok(digits: str) -> bool:
    """Modulus 11: check = 11 - (weighted sum mod 11); 11 means 0; 10 is never issued."""
    if len(digits) != 10 or not digits.isascii() or not digits.isdigit():
        return False
    check = 11 - sum(int(d) * w for d, w in zip(digits[:9], NHS_WEIGHTS, strict=True)) % 11
    check = 0 if check == 11 else check
    return check != 10 and check == int(digits[9])


def upn_ok(upn: str) -> bool:
    """DfE UPN: check letter, then 12 characters weighted 2..13 (a final letter counts as its index)."""
    if not re.fullmatch(r"[A-Z]\d{11}[0-9A-Z]", upn):
        return False
    values = [int(c) if c.isdigit() else UPN_LETTERS.find(c) for c in upn[1:]]
    if values[-1] < 0:
        return False
    total = sum(v * w for v, w in zip(values, range(2, 14), strict=True))
    return UPN_LETTERS[total % 23] == upn[0]


def normalise(kind: str, value: str, *, field: str | None = None) -> str:
    """The canonical form of an identifier, or a ValidationError naming the field."""
    field = field or kind
    if not isinstance(value, str):
        raise ValidationError(f"{kind} must be text", field=field)
    if kind == "nhs_number":
        digits = re.sub(r"[\s-]", "", value)
        if not nhs_number_ok(digits):
            raise ValidationError(
                "not a valid NHS number (10 digits passing the Modulus 11 check)", field=field
            )
        return digits
    if kind == "upn":
        upn = value.strip().upper()
        if not upn_ok(upn):
            raise ValidationError(
                "not a valid unique pupil number (13 characters with check letter)", field=field
            )
        return upn
    if kind == "email":
        email = value.strip()
        if len(email) > 254 or not EMAIL.match(email):
            raise ValidationError("not a valid email address", field=field)
        return email.lower()  # people type their address in any case; one person, one index
    if kind in ("council_account", "crime_reference"):
        ref = re.sub(r"\s", "", value).upper()
        if not REFERENCE.match(ref):
            raise ValidationError(
                f"not a valid {kind.replace('_', ' ')} (letters, digits, / and -, at most 64)", field=field
            )
        return ref
    raise ValidationError(f"unknown identifier kind {kind!r}", field="kind")


def format_nhs_number(digits: str) -> str:
    """Shown 3 3 4, as the NHS style guide asks."""
    return f"{digits[:3]} {digits[3:6]} {digits[6:]}"
