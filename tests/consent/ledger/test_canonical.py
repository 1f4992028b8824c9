"""Ledger leaves are RFC 8785 (JCS) canonical JSON: the RFC's own examples that fit the leaf subset."""

from __future__ import annotations

import json

import pytest

from consent.ledger.canonical import canonical_json


def test_rfc8785_s3_2_4_example_without_its_floats() -> None:
    # RFC 8785 s3.2.2.2 / s3.2.4: the string and literals of the RFC's example (its numbers are floats,
    # which leaves never hold). Canonical: {"literals":[null,true,false],"string":"€$\u000f\nA'B\"\\\\\"/"}
    parsed = json.loads(
        '{"string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",'
        ' "literals": [null, true, false]}'
    )
    expected = '{"literals":[null,true,false],"string":"\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    assert canonical_json(parsed) == expected.encode("utf-8")


def test_rfc8785_s3_2_3_members_sort_by_utf16_code_units() -> None:
    # RFC 8785 s3.2.3: U+1F600 (D83D DE00) sorts before U+FB33, unlike code point order.
    parsed = {
        "\u20ac": "Euro Sign",
        "\r": "Carriage Return",
        "\ufb33": "Hebrew Letter Dalet With Dagesh",
        "1": "One",
        "\U0001f600": "Emoji: Grinning Face",
        "\u0080": "Control",
        "\u00f6": "Latin Small Letter O With Diaeresis",
    }
    keys = list(json.loads(canonical_json(parsed)))
    assert keys == ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]


def test_rfc8785_reference_testdata_weird_json() -> None:
    # cyberphone/json-canonicalization testdata/{input,output}/weird.json (the RFC authors' test suite).
    parsed = json.loads(
        '{"\\u20ac": "Euro Sign", "1": "One", "\\u0080": "Control\\u007f", "\\ud83d\\ude02": "Smiley",'
        ' "\\u00f6": "Latin Small Letter O With Diaeresis", "\\ufb33": "Hebrew Letter Dalet With Dagesh",'
        ' "</script>": "Browser Challenge"}'
    )
    expected = (
        '{"1":"One","</script>":"Browser Challenge","\u0080":"Control\u007f",'
        '"\u00f6":"Latin Small Letter O With Diaeresis","\u20ac":"Euro Sign","\U0001f602":"Smiley",'
        '"\ufb33":"Hebrew Letter Dalet With Dagesh"}'
    )
    assert canonical_json(parsed) == expected.encode("utf-8")


def test_rfc8785_reference_testdata_french_json_ignores_locale() -> None:
    # cyberphone/json-canonicalization testdata/{input,output}/french.json
    parsed = {
        "peach": "This sorting order",
        "p\u00e9ch\u00e9": "is wrong according to French",
        "p\u00eache": "but canonicalization MUST",
        "sin": "ingnore locale",
    }
    expected = (
        '{"peach":"This sorting order","p\u00e9ch\u00e9":"is wrong according to French",'
        '"p\u00eache":"but canonicalization MUST","sin":"ingnore locale"}'
    )
    assert canonical_json(parsed) == expected.encode("utf-8")


def test_rfc8785_reference_testdata_unicode_is_not_normalised() -> None:
    # cyberphone/json-canonicalization testdata/{input,output}/unicode.json; RFC 8785 s3.1: strings "as is".
    assert canonical_json({"Unnormalized Unicode": "\u1e0d\u0307"}) == (
        '{"Unnormalized Unicode":"\u1e0d\u0307"}'.encode()
    )


def test_rfc8785_reference_testdata_structures_with_integers() -> None:
    # cyberphone/json-canonicalization testdata structures.json, with its one float (56.0) as the integer 56.
    parsed = {"1": {"f": {"f": "hi", "F": 5}, "\n": 56}, "10": {}, "": "empty", "a": {}, "111": [{}], "A": {}}
    expected = b'{"":"empty","1":{"\\n":56,"f":{"F":5,"f":"hi"}},"10":{},"111":[{}],"A":{},"a":{}}'
    assert canonical_json(parsed) == expected


def test_rfc8785_s3_2_2_2_control_characters_escape_short_or_lowercase_hex() -> None:
    text = "".join(chr(c) for c in range(0x20)) + '"\\/\u007f\u2028'
    expected = (
        '"\\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f'
        "\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c"
        '\\u001d\\u001e\\u001f\\"\\\\/\u007f\u2028"'
    )
    assert canonical_json(text) == expected.encode("utf-8")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0, b"0"),
        (-1, b"-1"),
        (9007199254740991, b"9007199254740991"),
        (-9007199254740991, b"-9007199254740991"),
    ],
)
def test_rfc8785_s3_2_2_3_integers_print_in_plain_decimal(value: int, text: bytes) -> None:
    assert canonical_json(value) == text


def test_booleans_are_literals_not_integers() -> None:
    assert canonical_json([True, False, None, 1]) == b"[true,false,null,1]"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (1.5, "float 1.5 is not allowed"),
        ({"n": 1.0}, "float 1.0 is not allowed"),
        ({1: "a"}, "object key 1 is not a string"),
        ({"a": b"x"}, "bytes is not a JSON value"),
        (2**53, "beyond"),
        (-(2**53), "beyond"),
        ("\ud800", "lone surrogate U\\+D800"),
    ],
)
def test_values_outside_the_leaf_subset_are_refused(value: object, message: str) -> None:
    # RFC 8785 s3.1: data must be I-JSON (RFC 7493): Unicode strings, numbers a double holds exactly.
    with pytest.raises(ValueError, match=message):
        canonical_json(value)


def test_canonical_form_round_trips_through_a_json_parser() -> None:
    leaf = {"event": "consent.grant.created", "seq": 7, "subject": "ab" * 32, "scopes": ["gp", "vault:read"]}
    assert json.loads(canonical_json(leaf)) == leaf
    assert canonical_json(json.loads(canonical_json(leaf))) == canonical_json(leaf)


@pytest.mark.parametrize(
    ("event", "subject", "seq", "prev"),
    [
        ("records.read", bytes(range(32)), 0, None),
        ("consent.grant.created", b"\xff" * 32, 7, b"\x01" * 32),
        ('system.\u00e9v\u00e9nement "quoted"\n', None, None, None),
    ],
)
def test_the_fast_leaf_writer_is_canonical_json(
    event: str, subject: bytes | None, seq: int | None, prev: bytes | None
) -> None:
    from consent.ledger import store

    pending = store.PendingLeaf(event, 1_764_115_200_123_456, subject, bytes(32))
    fast = store.leaf_bytes(pending, seq=seq, prev=prev)
    assert fast == canonical_json(store.leaf_members(pending, seq=seq, prev=prev))
    assert json.loads(fast)["event"] == event
