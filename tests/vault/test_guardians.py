"""Guardian links follow the child's age: review from 13, end at 16 (both configurable)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from pds.errors import Conflict, ValidationError
from pds.runtime import Runtime
from pds.vault.guardians import birthday
from tests.conftest import add_citizen, make_settings

BORN = "2014-06-15"


def _family(runtime: Runtime) -> tuple:
    parent = add_citizen(runtime, "Parent", date_of_birth="1982-01-01")
    child = add_citizen(runtime, "Child", date_of_birth=BORN)
    with runtime.vault() as v:
        link = v.guardians.link(parent, child, ["education", "health"], today=dt.date(2020, 1, 1))
    return parent, child, link


@pytest.mark.parametrize(
    ("today", "status"),
    [
        (dt.date(2027, 6, 14), "active"),
        (dt.date(2027, 6, 15), "review"),  # 13th birthday
        (dt.date(2030, 6, 14), "review"),
        (dt.date(2030, 6, 15), "ended"),  # 16th birthday
    ],
)
def test_link_status_follows_the_childs_age(runtime: Runtime, today: dt.date, status: str) -> None:
    parent, child, _ = _family(runtime)
    with runtime.vault() as v:
        (view,) = v.guardians.of_parent(parent, today=today)
        assert view.status == status
        assert view.ends_on == dt.date(2030, 6, 15) and view.review_from == dt.date(2027, 6, 15)
        assert v.guardians.covers(parent, child, "health", today=today) is (status != "ended")
        assert v.guardians.covers(parent, child, "case", today=today) is False
    if status == "ended":
        assert view.end_reason == "child turned 16"


def test_a_review_after_the_13th_birthday_clears_the_flag(runtime: Runtime) -> None:
    parent, _, link = _family(runtime)
    later = dt.date(2028, 1, 1)
    with runtime.vault() as v:
        v.guardians.mark_reviewed(link.id, at=dt.datetime(2027, 1, 1, tzinfo=dt.UTC))  # too early to count
    with runtime.vault() as v:
        assert v.guardians.of_parent(parent, today=later)[0].status == "review"
        v.guardians.mark_reviewed(link.id, at=dt.datetime(2027, 7, 1, tzinfo=dt.UTC))
    with runtime.vault() as v:
        assert v.guardians.of_parent(parent, today=later)[0].status == "active"


def test_ages_are_configurable(runtime: Runtime, db_url: str, keys_dir: Path) -> None:
    parent, _, _ = _family(runtime)
    settings = make_settings(db_url, keys_dir, PDS_GUARDIANS_END_AGE="18", PDS_GUARDIANS_REVIEW_AGE="12")
    rt = Runtime.build(settings)
    with rt.vault() as v:
        (view,) = v.guardians.of_parent(parent, today=dt.date(2031, 1, 1))
    rt.close()
    assert (view.status, view.ends_on, view.review_from) == (
        "review",
        dt.date(2032, 6, 15),
        dt.date(2026, 6, 15),
    )


def test_links_are_checked(runtime: Runtime) -> None:
    parent, child, _ = _family(runtime)
    adult = add_citizen(runtime, "Adult", date_of_birth="2000-01-01")
    with runtime.vault() as v:
        with pytest.raises(Conflict):
            v.guardians.link(parent, child, ["health"])
        with pytest.raises(ValidationError, match="16 or older"):
            v.guardians.link(parent, adult, ["health"])
        with pytest.raises(ValidationError) as err:
            v.guardians.link(parent, child, ["gossip"])
        assert err.value.field == "categories"
        with pytest.raises(ValidationError, match="own guardian"):
            v.guardians.link(parent, parent, ["health"])


def test_a_leap_day_birthday_falls_on_1_march() -> None:
    assert birthday(dt.date(2012, 2, 29), 13) == dt.date(2025, 3, 1)
    assert birthday(dt.date(2012, 2, 29), 16) == dt.date(2028, 2, 29)
