"""Live updates for the citizen's open pages: Server-Sent Events saying what just arrived in their vault.

One thread per process (the `Hub`) looks for arrivals of every watched citizen at once, twice a second,
by record arrival time (`record.received_at`), and hands them to that citizen's open streams; a stream
only waits. An event names the category, how many records and their ids: never their content. The page
fetches what it shows the usual way, so an event tells nothing a page would not.

An event's id is the newest arrival it covers (`<received_at in µs>.<record id>`): a browser that
reconnects sends it back as Last-Event-ID and gets what arrived after it. A page passes the moment it was
drawn (`since`) on its first connection, so nothing that lands before the stream opens is missed. An event
may come twice (a stream that resumes from `since`, or a late commit seen in the overlap); a page must not
mind, and ours does not: it redraws only what changed.

Under `pds serve`, streams are served on threads of their own, outside the request thread pool (see
pds/serve.py): open pages do not hold the threads other requests need.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from typing import Any

from flask import Blueprint, Response, current_app, request, session
from flask.blueprints import BlueprintSetupState
from sqlalchemy.orm import Session

from pds.db import utcnow
from pds.errors import PdsError
from pds.vault.arrivals import Arrival, Cursor, arrivals_after, arrivals_since
from pds.web import signed_in_citizen

log = logging.getLogger(__name__)

STREAM_PATH = "/account/live"  # pds/serve.py gives requests for it a thread of their own
EVENT = "records.arrived"
POLL_S = 0.5  # how often each process looks for arrivals, however many pages are open
HEARTBEAT_S = 15.0  # an idle stream says so this often: proxies keep it open, and a closed page is noticed
RETRY_MS = 2_000  # how long a browser waits before it reconnects
LIFETIME_S = 300.0  # a stream then ends and the browser reconnects: the session is checked again
# How late after its arrival time a record may still be committed and be seen: put() takes the time before
# it writes a batch, and a big delivery commits seconds later. Each poll reads this window again.
OVERLAP_S = 30.0
MAX_STREAMS = 256  # per process; one more is refused with 503 and Retry-After
BUSY_RETRY_S = 30
BACKLOG_LIMIT = 500  # at most this many of the newest arrivals after Last-Event-ID; the page refetches anyway
IDS_PER_EVENT = 20  # an event lists at most this many record ids (its count says how many there were)
REMEMBERED = 4_096  # arrivals a stream remembers having sent, so a repeat is dropped


bp = Blueprint("live", __name__)


class SignedOut(PdsError):
    status = 401
    slug = "signed-out"
    title = "Signed out"

    def headers(self) -> dict[str, str]:
        # RFC 9110 s15.5.2 asks a 401 for a challenge; a session cookie has no registered scheme
        return {"WWW-Authenticate": 'Cookie realm="pds"'}


class Busy(PdsError):
    status = 503
    slug = "too-many-live-pages"
    title = "Too many live pages"

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(BUSY_RETRY_S)}


# -- one poller per process, fanning out to the streams ----------------------------------------------


class Subscription:
    """One open stream's mailbox: the hub drops in arrivals after `after`, the stream waits for them."""

    def __init__(self, hub: Hub, citizen_id: uuid.UUID, after: Cursor) -> None:
        self.hub = hub
        self.citizen_id = citizen_id
        self.after = after
        self.closed = False
        self._waiting: deque[Arrival] = deque()
        self._ready = threading.Condition()

    def deliver(self, arrivals: list[Arrival]) -> None:
        wanted = [a for a in arrivals if a.cursor > self.after]  # older ones the page already shows
        if wanted:
            with self._ready:
                self._waiting.extend(wanted)
                self._ready.notify()

    def wait(self, timeout: float) -> list[Arrival]:
        """What arrived, as soon as anything has; [] after `timeout` or once closed."""
        with self._ready:
            if not self._waiting and not self.closed:
                self._ready.wait(timeout)
            taken = list(self._waiting)
            self._waiting.clear()
            return taken

    def close(self) -> None:
        """Idempotent: the stream's end and the server's close of the response both call it."""
        with self._ready:
            if self.closed:
                return
            self.closed = True
            self._ready.notify()
        self.hub.unsubscribe(self)


class Hub:
    """The process's one poller. It runs only while a stream is open, and holds no connection between
    polls. Each poll reads the last OVERLAP_S of arrivals again and passes on only what it has not seen,
    so a delivery that commits after a later one is not missed."""

    def __init__(
        self,
        read_sessions: Callable[[], Session],
        *,
        poll_s: float = POLL_S,
        max_streams: int = MAX_STREAMS,
        overlap_s: float = OVERLAP_S,
    ) -> None:
        self.read_sessions = read_sessions
        self.poll_s = poll_s
        self.max_streams = max_streams
        self.overlap = dt.timedelta(seconds=overlap_s)
        self._lock = threading.Lock()
        self._streams: dict[uuid.UUID, set[Subscription]] = {}
        self._count = 0
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._seen: OrderedDict[tuple[uuid.UUID, int, dt.datetime], None] = OrderedDict()

    @property
    def open_streams(self) -> int:
        return self._count

    def subscribe(self, citizen_id: uuid.UUID, after: Cursor) -> Subscription:
        """Raises Busy when this process already serves MAX_STREAMS streams, or is closing."""
        sub = Subscription(self, citizen_id, after)
        with self._lock:
            if self._count >= self.max_streams or self._stop.is_set():
                raise Busy("this server has too many live pages open: the page still works, reload it")
            self._streams.setdefault(citizen_id, set()).add(sub)
            self._count += 1
            if self._thread is None:
                self._seen.clear()
                self._thread = threading.Thread(target=self._run, name="pds-live-hub", daemon=True)
                self._thread.start()
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            mine = self._streams.get(sub.citizen_id, set())
            if sub in mine:
                mine.discard(sub)
                self._count -= 1
                if not mine:
                    del self._streams[sub.citizen_id]

    def close(self) -> None:
        """End every stream (the server is stopping); browsers reconnect to another process."""
        self._stop.set()
        with self._lock:
            subs = [s for mine in self._streams.values() for s in mine]
        for sub in subs:
            sub.close()

    def _run(self) -> None:
        floor = utcnow() - self.overlap
        while not self._stop.wait(self.poll_s):
            with self._lock:
                watched = list(self._streams)
                if not watched:
                    self._thread = None  # a new subscriber starts a new poller
                    return
            try:
                floor = self.poll(watched, floor)
            except Exception:  # the database may be restarting: try again next time
                log.warning("live updates: poll failed", exc_info=True)
        with self._lock:
            self._thread = None

    def poll(self, watched: list[uuid.UUID], floor: dt.datetime) -> dt.datetime:
        """One look for arrivals; returns where the next look starts."""
        started = utcnow()
        with self.read_sessions() as session:
            found = arrivals_since(session, watched, floor)
            session.rollback()
        fresh: dict[uuid.UUID, list[Arrival]] = {}
        for arrival in found:
            if arrival.key not in self._seen:
                self._seen[arrival.key] = None
                fresh.setdefault(arrival.citizen_id, []).append(arrival)
        next_floor = started - self.overlap
        while self._seen and next(iter(self._seen))[2] <= next_floor:
            self._seen.popitem(last=False)  # in arrival order, give or take a late commit
        with self._lock:
            targets = [(s, fresh[c]) for c in fresh for s in self._streams.get(c, ())]
        for sub, arrivals in targets:
            sub.deliver(arrivals)
        return next_floor


# -- the stream --------------------------------------------------------------------------------------


def frames(arrivals: list[Arrival]) -> str:
    """Events for arrivals, one per category, in the order of their newest arrival; each event's id is
    that newest arrival, so the last id a browser saw is the newest it was told of."""
    by_category: dict[str, list[Arrival]] = {}
    for a in sorted(arrivals, key=lambda a: a.cursor):
        by_category.setdefault(a.category, []).append(a)
    out = []
    for category, group in sorted(by_category.items(), key=lambda kv: kv[1][-1].cursor):
        data = {
            "category": category,
            "count": len(group),
            "records": [str(a.record_id) for a in group[-IDS_PER_EVENT:]],
        }
        out.append(f"id: {group[-1].cursor}\nevent: {EVENT}\ndata: {json.dumps(data)}\n\n")
    return "".join(out)


class _Sent:
    """The arrivals a stream has already told of, the oldest forgotten first."""

    def __init__(self) -> None:
        self._keys: OrderedDict[tuple[uuid.UUID, int, dt.datetime], None] = OrderedDict()

    def fresh(self, arrivals: list[Arrival]) -> list[Arrival]:
        new = [a for a in arrivals if a.key not in self._keys]
        for a in new:
            self._keys[a.key] = None
        while len(self._keys) > REMEMBERED:
            self._keys.popitem(last=False)
        return new


def events(
    sub: Subscription,
    backlog: Callable[[], list[Arrival]],
    *,
    heartbeat_s: float = HEARTBEAT_S,
    lifetime_s: float = LIFETIME_S,
    still_signed_in: Callable[[], bool] = lambda: True,
) -> Iterator[str]:
    """The body of one stream: the backlog, then each arrival as it comes, for at most `lifetime_s`, and
    only while the browser is still signed in (checked at each heartbeat: "sign out everywhere" and an
    erasure end open streams too)."""
    sent = _Sent()
    try:
        yield f"retry: {RETRY_MS}\n\n"
        first = sent.fresh(backlog())
        if first:
            yield frames(first)
        ends = time.monotonic() + lifetime_s
        while not sub.closed:
            left = ends - time.monotonic()
            if left <= 0:
                return
            new = sent.fresh(sub.wait(min(heartbeat_s, left)))
            if new:
                yield frames(new)
            elif not sub.closed and time.monotonic() < ends:
                if not still_signed_in():
                    return
                yield ": still here\n\n"
    finally:
        sub.close()


def hub() -> Hub:
    return current_app.extensions["pds.live"]  # type: ignore[no-any-return]


@bp.record_once
def _install(state: BlueprintSetupState) -> None:
    runtime = state.app.extensions["pds"]
    state.app.extensions["pds.live"] = Hub(runtime.read_sessions)


@bp.app_context_processor
def _page_position() -> dict[str, Any]:
    """`live_since()` in a template: where a page's first stream starts, a little before the page's own
    reads so that nothing committed meanwhile is missed (a repeat costs the page one refetch)."""
    return {"live_since": lambda: str(Cursor(utcnow() - dt.timedelta(seconds=2)))}


@bp.get(STREAM_PATH)
def stream() -> Response:
    citizen_id = signed_in_citizen()
    if citizen_id is None:
        raise SignedOut("sign in to get live updates")
    start = Cursor.parse(request.headers.get("Last-Event-ID")) or Cursor.parse(request.args.get("since"))
    # subscribed before the backlog is read: nothing falls between the two
    sub = hub().subscribe(citizen_id, start or Cursor(utcnow()))
    runtime = current_app.extensions["pds"]

    def backlog() -> list[Arrival]:
        if start is None:
            return []
        with runtime.read_sessions() as session:  # its own session: the request's is closed by now
            found = arrivals_after(session, citizen_id, start, BACKLOG_LIMIT)
            session.rollback()
        return found

    epoch = session.get("epoch", 0)

    def still_signed_in() -> bool:
        with runtime.read_sessions() as check:
            now = runtime.open_vault(check).citizens.session_epoch(citizen_id)
            check.rollback()
        return now is not None and now == epoch

    response = Response(
        events(sub, backlog, still_signed_in=still_signed_in),
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
    response.call_on_close(sub.close)  # even if the body was never started
    return response
