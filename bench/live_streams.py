"""pds live-updates benchmark: ordinary signed-in page requests through `pds serve`, with no live page
open and with 100 open live-update streams (GET /account/live), interleaved; then one arrival told to
all 100 streams.

    .venv/bin/python bench/live_streams.py [--quick] [--databases sqlite,postgres] [--reps N] [--streams N]

Needs wrk (apt-get install -y wrk). Prints one table on stdout, progress on stderr.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import selectors
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests
from throwaway import CONFIG, Db, database, load_note, log, open_runtime

from pds.accounts import hash_password
from pds.vault import NewRecord

STREAMS = 100
CONNECTIONS = 16  # wrk's, for the ordinary requests
PAGE = "/account/cases"  # an ordinary signed-in page: session check, vault read, decryption, a template
CASES = 10
TARGET = 0.80  # page requests/s with the streams open / without
ARRIVAL_S = 1.0  # the goal: an arrival on every open page within a second
CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def add_citizen(db: Db) -> tuple[str, str]:
    """A citizen with a password and a few council cases; returns (email, password)."""
    runtime = open_runtime(db)
    email, password = "live@example.org", "bench-password-1"
    try:
        with runtime.vault() as v:
            cid = v.citizens.add(name="Live Bench", date_of_birth="1980-01-01", email=email).id
            v.citizens.set_password_hash(cid, hash_password(password))
            v.sources.ensure("bench-council", kind="open311", title="Bench council")
            when = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
            v.records.put(
                [
                    NewRecord(
                        cid,
                        "case",
                        "open311:request",
                        "bench-council",
                        f"C-{i}",
                        1,
                        when + dt.timedelta(days=i),
                        {"service_request_id": f"C-{i}", "service_name": "Pothole", "status": "open"},
                    )
                    for i in range(CASES)
                ]
            )
    finally:
        runtime.close()
    return email, password


@contextmanager
def pds_serve(db: Db, port: int) -> Iterator[str]:
    """`pds serve` as `make run` starts it (config.toml's workers and threads), on a throwaway database."""
    env = {
        **os.environ,
        "PDS_CONFIG": str(CONFIG),
        "PDS_DATABASE_URL": db.url,
        "PDS_KEYS_DIR": str(db.keys),
        "PDS_LOG_LEVEL": "WARNING",
    }
    pds = str(Path(sys.executable).with_name("pds"))
    proc = subprocess.Popen(
        [pds, "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if requests.get(base + "/healthz", timeout=30).ok:
                    break
            except requests.RequestException:
                time.sleep(0.1)
        # every worker booted: a few more answers, spread over them by the kernel
        for _ in range(20):
            requests.get(base + "/healthz", timeout=30).raise_for_status()
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def sign_in(base: str, email: str, password: str) -> str:
    """The session cookie, as a browser gets it."""
    http = requests.Session()
    page = http.get(base + "/signin", timeout=30)
    token = CSRF.search(page.text).group(1)  # type: ignore[union-attr]
    r = http.post(
        base + "/signin",
        data={"csrf_token": token, "email": email, "password": password},
        allow_redirects=False,
        timeout=30,
    )
    assert r.status_code == 303, r.text
    return f"pds_session={http.cookies['pds_session']}"


class Streams:
    """N open live pages: raw sockets that sent GET /account/live and got the stream's first line."""

    def __init__(self, port: int, cookie: str, n: int) -> None:
        self.socks: list[socket.socket] = []
        request = (
            f"GET /account/live HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nCookie: {cookie}\r\n"
            "Accept: text/event-stream\r\n\r\n"
        ).encode()
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port), timeout=30)
            s.sendall(request)
            self.socks.append(s)
        for s in self.socks:
            head = b""
            while b"retry:" not in head:
                chunk = s.recv(4096)
                if not chunk:
                    raise SystemExit(f"a stream was refused or closed: {head[:200]!r}")
                head += chunk
            if not head.startswith(b"HTTP/1.1 200"):
                raise SystemExit(f"a stream was refused: {head[:200]!r}")

    def all_told(self, timeout: float) -> list[float]:
        """Seconds until each stream tells of an arrival (which the caller makes just before)."""
        started = time.monotonic()
        waiting = selectors.DefaultSelector()
        for s in self.socks:
            s.setblocking(False)
            waiting.register(s, selectors.EVENT_READ, b"")
        delays: list[float] = []
        while waiting.get_map() and time.monotonic() - started < timeout:
            for key, _ in waiting.select(0.1):
                sock: socket.socket = key.fileobj  # type: ignore[assignment]
                got = key.data + sock.recv(65536)
                if b"event: records.arrived" in got:
                    delays.append(time.monotonic() - started)
                    waiting.unregister(sock)
                else:
                    waiting.modify(sock, selectors.EVENT_READ, got)
        missing = len(waiting.get_map())
        if missing:
            raise SystemExit(f"{missing} of {len(self.socks)} streams were not told within {timeout} s")
        return delays

    def close(self) -> None:
        for s in self.socks:
            s.close()


@dataclass
class Load:
    rps: float
    p50_ms: float
    p99_ms: float


def wrk(url: str, cookie: str, seconds: int) -> Load:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency", "-H", f"Cookie: {cookie}", url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    if re.search(r"Non-2xx or 3xx responses: (\d+)", out) or re.search(r"Socket errors: .*", out):
        raise SystemExit(f"wrk saw failures on {url}:\n{out}")
    return Load(
        float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        _ms(out, "50%"),
        _ms(out, "99%"),
    )


def _ms(out: str, pct: str) -> float:
    value, unit = re.search(rf"{pct}\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def median(values: list[float], fmt: str = ",.0f") -> str:
    return f"{statistics.median(values):{fmt}} [{min(values):{fmt}}-{max(values):{fmt}}]"


def with_streams(db: Db, base: str, cookie: str, n: int, seconds: int, tag: str) -> tuple[Load, float]:
    """wrk with n streams open; then one arrival, and how long until the last stream told of it."""
    port = int(base.rsplit(":", 1)[1])
    streams = Streams(port, cookie, n)
    runtime = open_runtime(db)
    try:
        time.sleep(1)  # every stream subscribed and waiting
        load = wrk(base + PAGE, cookie, seconds)
        with runtime.vault() as v:
            cid = v.citizens.find("email", "live@example.org")
            update = {"service_request_id": "C-0", "status": "fixed"}
            now = dt.datetime.now(dt.UTC)
            v.records.put([NewRecord(cid, "case", "open311:update", "bench-council", tag, 1, now, update)])
        return load, max(streams.all_told(10.0))
    finally:
        runtime.close()
        streams.close()


def run(kind: str, reps: int, seconds: int, n: int) -> list[str]:
    quiet: list[Load] = []
    busy: list[Load] = []
    told: list[float] = []
    with (
        tempfile.TemporaryDirectory(prefix="pds-bench-live-") as tmp,
        database(kind, Path(tmp), "live", bench="live") as db,
    ):
        email, password = add_citizen(db)
        with pds_serve(db, free_port()) as base:
            cookie = sign_in(base, email, password)
            assert requests.get(base + PAGE, headers={"Cookie": cookie}, timeout=30).status_code == 200
            wrk(base + PAGE, cookie, 2)  # warm-up
            for rep in range(reps):
                for variant in ("none", "streams") if rep % 2 == 0 else ("streams", "none"):
                    log(f"{kind}: rep {rep + 1}/{reps}, {variant}")
                    if variant == "none":
                        quiet.append(wrk(base + PAGE, cookie, seconds))
                    else:
                        load, last = with_streams(db, base, cookie, n, seconds, f"U-{rep}")
                        busy.append(load)
                        told.append(last)
    ratios = [b.rps / q.rps for q, b in zip(quiet, busy, strict=True)]
    p99s = [b.p99_ms / q.p99_ms for q, b in zip(quiet, busy, strict=True)]
    ok = statistics.median(ratios) >= TARGET
    rps = f"{median([q.rps for q in quiet]):<22} {median([b.rps for b in busy]):<22}"
    return [
        f"{kind:<9} {'requests/s':<14} {rps} "
        f"{statistics.median(ratios):.2f} (>= {TARGET:.2f}) {'ok' if ok else 'MISSED'}",
        f"{kind:<9} {'p50 ms':<14} {median([q.p50_ms for q in quiet], '.1f'):<22} "
        f"{median([b.p50_ms for b in busy], '.1f'):<22} "
        f"{statistics.median([b.p50_ms / q.p50_ms for q, b in zip(quiet, busy, strict=True)]):.2f}",
        f"{kind:<9} {'p99 ms':<14} {median([q.p99_ms for q in quiet], '.1f'):<22} "
        f"{median([b.p99_ms for b in busy], '.1f'):<22} {statistics.median(p99s):.2f}",
        f"{kind:<9} an arrival told to all {n} streams in {median(told, '.2f')} s "
        f"(<= {ARRIVAL_S:.1f}) {'ok' if statistics.median(told) <= ARRIVAL_S else 'MISSED'}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 reps of 3 s: a smoke run")
    parser.add_argument("--databases", default="sqlite,postgres")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--streams", type=int, default=STREAMS)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install -y wrk")
    reps, seconds = (2, 3) if args.quick else (args.reps, 10)
    rows = []
    for kind in args.databases.split(","):
        rows += run(kind, reps, seconds, args.streams)
    print(
        f"pds live-updates benchmark (pds serve as configured; wrk -c{CONNECTIONS} GET {PAGE}; "
        f"{reps} interleaved reps of {seconds} s; median [min-max])"
    )
    print(f"{'database':<9} {'measure':<14} {'no live page':<22} {f'{args.streams} open streams':<22} ratio")
    for row in rows:
        print(row)
    print(load_note())


if __name__ == "__main__":
    main()
