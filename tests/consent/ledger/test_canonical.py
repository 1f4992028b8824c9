"""Ledger leaves are RFC 8785 (JCS) canonical JSON: the RFC's own examples that fit the leaf subset."""

from __future__ import annotations

import collections
import enum
import json

import pytest

from consent.ledger.canonical import canonical_json, canonical_json_general


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


class Colour(enum.IntEnum):
    RED = 1


class Name(str):
    pass


def _nested(depth: int) -> object:
    value: object = "deep"
    for _ in range(depth):
        value = [value]
    return value


FAST_PATH_CASES = [
    {"records": ["0190a3c1-7d2e-7c4e-9b1a-2f6d8e9c0a1b"] * 3, "count": 3, "kinds": {"fhir:Observation": 3}},
    {"b": 1, "a": [], "c": {}, "": None, "A": [True, False], "_": ()},
    {"quote": 'say "hi"', "backslash": "a\\b", "slash": "a/b", "del": "\x7f"},
    {"controls": "".join(map(chr, range(0x20))), "\n\t": "key with controls"},
    ["é", "日本", "\u2028\u2029", "\ufeff", "😀"],  # non-ASCII text: the general writer
    {"\u20ac": 1, "\r": 2, "\ufb33": 3, "1": 4, "\U0001f600": 5, "\u0080": 6, "ö": 7},  # RFC 8785 s3.2.3
    {"\ue000": 1, "\U00010000": 2},  # code point and UTF-16 order disagree
    [2**53 - 1, -(2**53 - 1), 0, -0, True, 1],
    [Colour.RED, Name("named"), {Name("key"): Colour.RED}],  # subclasses: the general writer
    ("a", ("b", ["c"])),
    _nested(63),
    _nested(64),
    "just a string",
    7,
    None,
]


@pytest.mark.parametrize("value", FAST_PATH_CASES)
def test_canonical_json_writes_what_the_general_writer_writes(value: object) -> None:
    assert canonical_json(value) == canonical_json_general(value)


REFUSED = [
    1.5,
    {"n": 1.0},
    [float("nan")],
    {1: "a"},
    {True: "a"},
    {None: "a"},
    {"a": b"x"},
    [2**53],
    {"n": -(2**53)},
    {"n": 10**30},
    "\ud800",
    {"\udfff": 1},
    [{"k": "lone \ud83d"}],
    _nested(65),
    collections.OrderedDict(b=1.5),
    {"set": {1, 2}},
]


REFUSAL = "not allowed|not a string|not a JSON value|beyond|lone surrogate|deeper than"


@pytest.mark.parametrize("value", REFUSED)
def test_canonical_json_refuses_what_the_general_writer_refuses(value: object) -> None:
    with pytest.raises(ValueError, match=REFUSAL) as general:
        canonical_json_general(value)
    with pytest.raises(ValueError, match=REFUSAL) as fast:
        canonical_json(value)
    assert str(fast.value) == str(general.value)


def test_canonical_json_refuses_a_cycle() -> None:
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(ValueError, match="deeper than"):
        canonical_json(loop)


def test_a_mapping_that_is_not_a_dict_is_written_as_an_object() -> None:
    value = collections.OrderedDict([("b", 1), ("a", [1, 2])])
    assert canonical_json(value) == canonical_json_general(value) == b'{"a":[1,2],"b":1}'


def test_the_details_of_a_read_are_written_without_the_general_writer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from consent.ledger import canonical

    details = FAST_PATH_CASES[0]
    expected = canonical_json_general(details)
    monkeypatch.setattr(canonical, "canonical_json_general", None)  # any call to it fails
    assert canonical_json(details) == expected
