"""RFC 8785 (JCS) canonical JSON for ledger leaves, for the subset leaves use: no floats, string keys only.

With strings, integers, booleans, null, arrays and objects only, JCS comes down to: no whitespace
(RFC 8785 s3.2.1), object members sorted by the UTF-16 code units of their names (s3.2.3), strings
escaped as ECMAScript's JSON.stringify does (s3.2.2.2), integers in plain decimal (s3.2.2.3), and the
whole encoded as UTF-8 (s3.2.4). Anything outside the subset raises ValueError instead of being guessed at.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

# RFC 7493 (I-JSON) s2.2, which RFC 8785 s3.1 requires: integers must survive a trip through an
# IEEE 754 double, so only those of magnitude below 2^53 are accepted.
MAX_SAFE_INTEGER = 2**53 - 1

# Strings with nothing RFC 8785 s3.2.2.2 escapes (quote, backslash, controls) and no lone surrogate.
_PLAIN = re.compile('[^"\\\\\x00-\x1f\ud800-\udfff]*')
_SURROGATE = re.compile("[\ud800-\udfff]")
MAX_DEPTH = 64  # leaves are shallow; refuse runaway nesting rather than hit the recursion limit


def canonical_json(value: object) -> bytes:
    """The RFC 8785 canonical UTF-8 bytes of `value` (dict, list, str, int, bool or None, nested).

    Values made only of plain dicts, lists, strings, small integers, booleans and None, whose text is
    all ASCII (the details of every API read), are written by the standard library's encoder: for them
    its sorted, compact output is byte for byte RFC 8785's, as ASCII names sort alike by code point
    and by UTF-16 unit, and it escapes strings as the general writer does (which escapes with it).
    Everything else, and everything to refuse, goes to canonical_json_general.
    """
    if _plain_subset(value, 0):
        text = _SORTED_COMPACT.encode(value)
        if text.isascii():
            return text.encode("ascii")
    return canonical_json_general(value)


def canonical_json_general(value: object) -> bytes:
    """RFC 8785 for the whole leaf subset, step by step: the reference canonical_json is held to
    (tests/consent/ledger/test_canonical.py)."""
    parts: list[str] = []
    _write(value, parts, depth=0)
    return "".join(parts).encode("utf-8")


_SORTED_COMPACT = json.JSONEncoder(
    ensure_ascii=False, check_circular=False, sort_keys=True, separators=(",", ":")
)


def _plain_subset(value: object, depth: int) -> bool:
    """Whether value holds only exact dicts with str keys, lists, tuples, str, bool, None and ints
    within I-JSON's range, nested less than MAX_DEPTH deep (so never a cycle): what the standard
    encoder writes as RFC 8785 does, given ASCII text. Subclasses of these go the general way."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        return -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER  # type: ignore[operator]
    if depth >= MAX_DEPTH:
        return False
    if kind is dict:
        for key, item in value.items():  # type: ignore[attr-defined]
            if type(key) is not str or (type(item) is not str and not _plain_subset(item, depth + 1)):
                return False
        return True
    if kind is list or kind is tuple:
        for item in value:  # type: ignore[attr-defined]  # noqa: SIM110 (a loop costs half all()'s)
            if type(item) is not str and not _plain_subset(item, depth + 1):
                return False
        return True
    return False


def _write(value: object, out: list[str], *, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise ValueError(f"JSON nests deeper than {MAX_DEPTH} levels")
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(_integer(value))
    elif isinstance(value, str):
        out.append(_string(value))
    elif isinstance(value, list | tuple):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _write(item, out, depth=depth + 1)
        out.append("]")
    elif isinstance(value, Mapping):
        _write_object(value, out, depth=depth)
    elif isinstance(value, float):
        raise ValueError(f"float {value!r} is not allowed in a ledger leaf: use an integer or a string")
    else:
        raise ValueError(f"{type(value).__name__} is not a JSON value allowed in a ledger leaf")


def _write_object(value: Mapping[object, object], out: list[str], *, depth: int) -> None:
    keys: list[str] = []
    for key in value:
        if not isinstance(key, str):
            raise ValueError(f"object key {key!r} is not a string")
        keys.append(key)
    # RFC 8785 s3.2.3: sort by UTF-16 code units; big-endian UTF-16 bytes compare in exactly that order.
    keys.sort(key=_utf16_units)
    out.append("{")
    for i, key in enumerate(keys):
        if i:
            out.append(",")
        out.append(_string(key))
        out.append(":")
        _write(value[key], out, depth=depth + 1)
    out.append("}")


def _utf16_units(key: str) -> bytes:
    return key.encode("utf-16-be", "surrogatepass")


def _integer(value: int) -> str:
    """RFC 8785 s3.2.2.3 for integers within I-JSON's range: plain decimal, no exponent, no '+'."""
    if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
        raise ValueError(f"integer {value} is beyond +/-(2^53-1); put it in a string")
    return str(int(value))


def canonical_string(value: str) -> str:
    """One JSON string exactly as RFC 8785 writes it."""
    return _string(value)


def _string(value: str) -> str:
    """RFC 8785 s3.2.2.2: escape only '"', '\\' and controls below U+0020; everything else as itself."""
    if _PLAIN.fullmatch(value):  # the usual case: nothing to escape
        return '"' + value + '"'
    lone = _SURROGATE.search(value)
    if lone:
        code = ord(lone.group())
        raise ValueError(f"string holds a lone surrogate U+{code:04X}, which is not Unicode text")
    # Python's encoder escapes exactly as JSON.stringify does: the short escapes, \u00xx for the other
    # controls, and nothing else when ensure_ascii is off.
    return json.dumps(value, ensure_ascii=False)
