"""Live updates over plain HTTP: a signed-in citizen's event stream tells of their own arrivals only, as
soon as they land, resumes from Last-Event-ID, and under `pds serve` leaves the request threads free."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests

from pds import create_app
from pds.errors import PROBLEM_JSON
from pds.runtime import Runtime
from pds.web.live import BUSY_RETRY_S, EVENT, STREAM_PATH, Cursor
from tests.conftest import CONFIG, record
from tests.web.live import Browser, Person, add_person
from tests.web.test_push import COUNCIL, SAMPLES, push, system

ARRIVAL_S = 5.0  # an arrival must reach an open stream within this (the goal is a second)
QUIET_S = 2.0  # four polls: what has not come by then is not coming


class EventStream:
    """An open /account/live read on a thread, event by event (the SSE format, as a browser parses it)."""

    def __init__(self, http: requests.Session, url: str, **headers: str) -> None:
        self.response = http.get(url, stream=True, timeout=(10, 60), headers=headers)
        self.events: queue.Queue[dict[str, str]] = queue.Queue()
        self.retry: str | None = None
        if self.response.status_code == 200:
            threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        event: dict[str, str] = {}
        try:
            for line in self.response.iter_lines(decode_unicode=True):
                if line == "":
                    if "data" in event:
                        self.events.put(event)
                    event = {}
                elif line.startswith(":"):
                    continue
                else:
                    name, _, value = line.partition(":")
                    value = value.removeprefix(" ")
                    if name == "retry":
                        self.retry = value
                    elif name == "data" and "data" in event:
                        event["data"] += "\n" + value
                    else:
                        event[name] = value
        except (requests.RequestException, AttributeError, ValueError):
            return  # closed by the test

    def next(self, timeout: float = ARRIVAL_S) -> dict:
        event = self.events.get(timeout=timeout)
        return {"id": event.get("id"), "event": event.get("event"), **json.loads(event["data"])}

    def nothing_for(self, seconds: float) -> bool:
        try:
            self.events.get(timeout=seconds)
        except queue.Empty:
            return True
        return False

    def close(self) -> None:
        """As a browser closing the page: the connection goes at once (closing the response alone would
        wait for the reading thread's next line)."""
        with contextlib.suppress(AttributeError, OSError):  # urllib3 -> http.client -> socket
            socket.socket.shutdown(self.response.raw._fp.fp.raw._sock, socket.SHUT_RDWR)
        self.response.close()


def signed_in(base: str, person: Person) -> Browser:
    browser = Browser(base)
    browser.sign_in(person)
    return browser


def ids_of(runtime: Runtime, person: Person, **filters: str) -> set[str]:
    with runtime.vault() as v:
        return {str(r.id) for r in v.records.list(person.citizen_id, **filters).items}


@pytest.fixture
def resident(runtime: Runtime) -> Person:
    """Alice, whom the council knows by her account number."""
    person = add_person(runtime, "Alice Example", "alice@example.org")
    with runtime.vault() as v:
        v.citizens.add_identifier(person.citizen_id, "council_account", "EBC-100234")
    return person


def a_case_update(update_id: str, status: str, note: str) -> bytes:
    return json.dumps(
        {
            "updates": [
                {
                    "update_id": update_id,
                    "service_request_id": "PP-2026-004211",
                    "status": status,
                    "updated_datetime": "2026-11-24T10:00:00+00:00",
                    "description": note,
                }
            ]
        }
    ).encode()


def test_a_signed_out_browser_gets_no_stream(base: str) -> None:
    answer = requests.get(base + STREAM_PATH, timeout=10, stream=True)
    assert answer.status_code == 401
    assert answer.headers["Content-Type"] == PROBLEM_JSON
    assert answer.json()["title"] == "Signed out"
    assert "WWW-Authenticate" in answer.headers


def test_a_delivery_reaches_its_citizens_open_stream_and_nobody_elses(
    base: str, runtime: Runtime, resident: Person
) -> None:
    bob = add_person(runtime, "Bob Example", "bob@example.org")
    with runtime.vault() as v:
        v.sources.ensure("test-gp", kind="fhir", title="GP")
    alices = EventStream(signed_in(base, resident).http, base + STREAM_PATH)
    bobs = EventStream(signed_in(base, bob).http, base + STREAM_PATH)
    try:
        assert alices.response.headers["Content-Type"].startswith("text/event-stream")
        assert alices.response.headers["Cache-Control"] == "no-store"
        council = system(base, runtime, COUNCIL)
        sent = time.monotonic()
        assert push(council, base, (SAMPLES / "council.json").read_bytes()).status_code == 200

        event = alices.next()
        assert time.monotonic() - sent < ARRIVAL_S
        assert event["event"] == EVENT and event["category"] == "case" and event["count"] == 3
        assert set(event["records"]) == ids_of(runtime, resident)  # which records; never what they say
        assert "parking" not in json.dumps(event) and "EBC-100234" not in json.dumps(event)
        assert alices.retry == "2000"

        assert bobs.nothing_for(QUIET_S)  # Alice's case is no news to Bob...
        with runtime.vault() as v:
            v.records.put([record(bob.citizen_id, "bob-hba1c", note="HbA1c 48")])
        mine = bobs.next()  # ...and the first thing his stream tells him is his own
        assert (mine["category"], mine["records"]) == ("health", list(ids_of(runtime, bob)))
        assert alices.nothing_for(QUIET_S)
    finally:
        alices.close()
        bobs.close()


def test_last_event_id_resumes_after_what_the_browser_last_saw(
    base: str, runtime: Runtime, resident: Person
) -> None:
    http = signed_in(base, resident).http
    council = system(base, runtime, COUNCIL)
    first = EventStream(http, base + STREAM_PATH)
    try:
        push(council, base, (SAMPLES / "council.json").read_bytes())
        seen = first.next()
    finally:
        first.close()
    assert seen["count"] == 3
    before = ids_of(runtime, resident)

    # the page is away (the laptop sleeps, the network drops) while the council writes again
    push(council, base, a_case_update("PP-2026-004211-u3", "fixed", "Permit approved."))
    (u3,) = ids_of(runtime, resident) - before

    again = EventStream(http, base + STREAM_PATH, **{"Last-Event-ID": seen["id"]})
    try:
        missed = again.next()
        assert (missed["category"], missed["count"], missed["records"]) == ("case", 1, [u3])
        assert again.nothing_for(QUIET_S)  # not the three it had already seen
    finally:
        again.close()

    # a stream from a page drawn before anything arrived (?since=) is told of all of it
    drawn = Cursor.parse(seen["id"])
    assert drawn is not None
    early = str(Cursor(drawn.at.replace(year=2000)))
    since = EventStream(http, base + STREAM_PATH + f"?since={early}")
    try:
        everything = since.next()
        assert everything["count"] == 4 and everything["id"] == missed["id"]
    finally:
        since.close()


def test_a_full_server_refuses_a_stream_with_retry_after(runtime: Runtime, resident: Person) -> None:
    app = create_app(runtime.settings, runtime=runtime)
    app.extensions["pds.live"].max_streams = 1
    client = app.test_client()
    with client.session_transaction() as session:
        session["citizen_id"] = str(resident.citizen_id)
    first = client.get(STREAM_PATH, buffered=False)
    try:
        assert first.status_code == 200
        assert next(iter(first.response)) == b"retry: 2000\n\n"
        refused = client.get(STREAM_PATH)
        assert refused.status_code == 503 and refused.headers["Retry-After"] == str(BUSY_RETRY_S)
        assert refused.headers["Content-Type"] == PROBLEM_JSON
    finally:
        first.close()
    assert app.extensions["pds.live"].open_streams == 0  # closing the response ends the stream
    again = client.get(STREAM_PATH, buffered=False)
    assert again.status_code == 200
    again.close()


def test_open_streams_leave_pds_serve_free_for_other_requests(
    tmp_path: Path, db_url: str, resident: Person, runtime: Runtime
) -> None:
    """One worker with one request thread: without streams of their own, one open page would hold it."""
    (tmp_path / "config.toml").write_text(CONFIG.read_text())
    env = {
        **os.environ,
        "PDS_DATABASE_URL": db_url,
        "PDS_KEYS_DIR": str(runtime.settings.keys.dir),
        "PDS_SERVER_WORKERS": "1",
        "PDS_SERVER_THREADS": "1",
        "PDS_LOG_LEVEL": "WARNING",
    }
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    pds = str(Path(sys.executable).with_name("pds"))
    server = subprocess.Popen(
        [pds, "serve", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    streams: list[EventStream] = []
    try:
        _wait_for(base)
        with runtime.vault() as v:
            v.sources.ensure("test-gp", kind="fhir", title="GP")
        browser = signed_in(base, resident)
        streams = [EventStream(browser.http, base + STREAM_PATH) for _ in range(5)]
        assert all(s.response.status_code == 200 for s in streams)

        started = time.monotonic()
        assert requests.get(base + "/healthz", timeout=10).status_code == 200
        assert browser.open(base + "/account/cases").status_code == 200
        assert time.monotonic() - started < 5  # answered at once, not after the streams

        with runtime.vault() as v:
            v.records.put([record(resident.citizen_id, f"hba1c-{uuid.uuid4().hex[:6]}", note="HbA1c 50")])
        for stream in streams:
            assert stream.next()["category"] == "health"
    finally:
        for stream in streams:
            stream.close()
        server.terminate()
        server.wait(timeout=30)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(base: str) -> None:
    for _ in range(300):
        try:
            if requests.get(base + "/healthz", timeout=30).ok:
                return
        except requests.RequestException:
            time.sleep(0.1)
    raise AssertionError("pds serve did not answer")


def test_the_pages_that_update_live_load_the_script(base: str, runtime: Runtime, resident: Person) -> None:
    browser = signed_in(base, resident)
    for path in ("/", "/account/cases", "/account/health"):
        page = browser.open(base + path).text
        assert '<script type="module" src="/assets/live.js"></script>' in page
        assert "data-live-region" in page and "data-live-since=" in page
    script = requests.get(base + "/assets/live.js", timeout=10)
    assert script.status_code == 200 and script.headers["Content-Type"].startswith("text/javascript")


class _Quiet:
    """A subscription nothing arrives on."""

    closed = False

    def wait(self, timeout: float) -> list:
        time.sleep(timeout)
        return []

    def close(self) -> None:
        self.closed = True


def test_a_stream_ends_at_the_heartbeat_after_its_browser_is_signed_out() -> None:
    from pds.web.live import events

    answers = iter([True, True, False])  # signed out everywhere between the second and third heartbeat
    sub = _Quiet()
    started = time.monotonic()
    body = list(events(sub, list, heartbeat_s=0.01, lifetime_s=30, still_signed_in=lambda: next(answers)))
    assert body[0].startswith("retry:") and body[1:] == [": still here\n\n"] * 2
    assert sub.closed and time.monotonic() - started < 5  # ended, not left open for its lifetime
