"""Identifiers: checked, normalised, found by blind index only."""

from __future__ import annotations

import pytest

from pds.errors import Conflict, ValidationError
from pds.runtime import Runtime
from pds.vault.identifiers import nhs_number_ok, normalise, upn_ok
from tests.conftest import add_citizen


@pytest.mark.parametrize(
    ("number", "ok"),
    [
        ("9434765919", True),  # NHS Data Dictionary's worked example
        ("9434765918", False),  # wrong check digit
        ("9990000018", True),
        ("9990000019", False),
        ("9990000010", False),
        ("1000000010", False),  # remainder 1: check would be 10, never issued
        ("999000001", False),
        ("99900000181", False),
        ("999000001X", False),
        ("९९९0000018", False),  # non-ASCII digits
    ],
)
def test_nhs_number_modulus_11(number: str, ok: bool) -> None:
    assert nhs_number_ok(number) is ok


def test_nhs_numbers_are_normalised_from_spaced_form() -> None:
    assert normalise("nhs_number", "943 476 5919") == "9434765919"
    assert normalise("nhs_number", "943-476-5919") == "9434765919"


@pytest.mark.parametrize(
    ("upn", "ok"),
    [("F201200124001", True), ("A201200124001", False), ("F20120012400", False), ("V201200124002", True)],
)
def test_unique_pupil_number_check_letter(upn: str, ok: bool) -> None:
    assert upn_ok(upn) is ok


@pytest.mark.parametrize("kind", ["nhs_number", "upn", "email", "council_account", "crime_reference"])
def test_bad_identifiers_name_their_field(kind: str) -> None:
    with pytest.raises(ValidationError) as err:
        normalise(kind, "!!")
    assert err.value.field == kind


def test_a_citizen_is_found_by_identifier_in_any_written_form(runtime: Runtime) -> None:
    alice = add_citizen(runtime, "Alice", nhs_number="999 000 0018", email="Alice@Example.org")
    with runtime.vault() as v:
        v.citizens.add_identifier(alice, "crime_reference", "ec-26 118734")
        assert v.citizens.find("nhs_number", "9990000018") == alice
        assert v.citizens.find("email", "alice@example.ORG") == alice
        assert v.citizens.find("crime_reference", "EC-26118734") == alice
        assert v.citizens.find("nhs_number", "9990000026") is None
        assert v.citizens.identifiers(alice)["nhs_number"] == ["9990000018"]


def test_an_identifier_belongs_to_one_citizen(runtime: Runtime) -> None:
    add_citizen(runtime, "Alice", nhs_number="9990000018")
    with pytest.raises(Conflict) as err:
        add_citizen(runtime, "Impostor", nhs_number="999 000 0018")
    assert err.value.field == "nhs_number"
    with runtime.vault() as v:
        assert [p.name for p in v.citizens.all()] == ["Alice"]  # the failed add left nothing
