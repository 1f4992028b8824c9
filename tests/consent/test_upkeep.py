"""What each server process does now and then by itself: grants past their end are marked expired, with
their ledger entry, and sign-in failures that no longer count are dropped."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update

from consent import events
from consent.models import Grant
from pds.callbacks import expire_grants
from pds.db import session_scope, utcnow
from pds.runtime import Runtime
from pds.vault.models import SignInFailure
from pds.web.throttle import FORGET_AFTER, SignInThrottle
from tests.conftest import add_citizen
from tests.consent.ledger.test_log import create_grant


def test_a_grant_past_its_end_is_expired_by_the_round_with_its_ledger_entry(runtime: Runtime) -> None:
    alice = add_citizen(runtime, "Alice")
    with session_scope(runtime.sessions) as s:
        ended, live = create_grant(s, alice).id, create_grant(s, alice).id
    with session_scope(runtime.sessions) as s:
        s.execute(update(Grant).where(Grant.id == ended).values(ends_at=utcnow() - dt.timedelta(minutes=1)))

    assert expire_grants(runtime) == 1
    assert expire_grants(runtime) == 0  # once only
    with session_scope(runtime.read_sessions) as s:
        statuses = dict(s.execute(select(Grant.id, Grant.status)).all())
        said = [h.event for h in events.history(s, alice)]
    assert statuses == {ended: "expired", live: "active"}
    assert said.count(events.GRANT_EXPIRED) == 1


def test_failures_that_no_longer_count_are_dropped_when_a_new_one_comes(runtime: Runtime) -> None:
    now = [utcnow()]
    throttle = SignInThrottle(
        runtime.sessions, runtime.read_sessions, runtime.provider.blind_index_key(), clock=lambda: now[0]
    )
    throttle.failed("old@example.org")
    throttle.failed("recent@example.org")
    now[0] += FORGET_AFTER - dt.timedelta(seconds=1)
    throttle.failed("recent@example.org")  # "old" is still within its window: kept
    with session_scope(runtime.read_sessions) as s:
        assert len(s.scalars(select(SignInFailure)).all()) == 2
    now[0] += dt.timedelta(seconds=2)  # "old" last failed more than FORGET_AFTER ago; "recent" did not
    throttle.failed("new@example.org")
    with session_scope(runtime.read_sessions) as s:
        counts = sorted(row.count for row in s.scalars(select(SignInFailure)))
    assert counts == [1, 2]  # "new" once and "recent" twice; "old" is gone
