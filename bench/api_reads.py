"""pds API read benchmark: authorised GET /api/v1/records through gunicorn, beside a bare endpoint of
the same server returning the same bytes; and the grant check's p99 with 1 and with 100,000 grants.

    .venv/bin/python bench/api_reads.py [--quick] [--databases sqlite,postgres] [--reps N]

Needs wrk (apt-get install -y wrk). Prints one table on stdout, progress on stderr.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import jwt
import psycopg
import requests
from sqlalchemy import insert, select

from consent import events
from consent.clients import ClientService
from consent.ledger.models import LedgerEntry
from consent.models import Grant, OAuthToken
from consent.services import GrantService
from consent.signing import SigningKeys
from consent.tokens import issue_access_token
from pds import migrate
from pds.runtime import Runtime
from pds.settings import load_settings
from pds.vault import NewRecord
from pds.vault.crypto import LocalKeyProvider

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "config.toml"
PG_SERVER = "postgresql://postgres@127.0.0.1:5432"
RECORDS = 20  # in the citizen's vault; a page returns them all
PAYLOAD_FILL = 900  # characters of note text: records of about 1 KB
CONNECTIONS = 16
TARGETS = {"sqlite": 0.60, "postgres": 0.40}  # read / floor throughput
GRANT_TARGET = 1.20  # p99 at 100,000 grants / p99 at 1 grant
MANY_GRANTS = 100_000
CHECKS = 3_000
_STARTED = time.perf_counter()


def log(message: str) -> None:
    print(f"[{time.perf_counter() - _STARTED:5.0f}s] {message}", file=sys.stderr, flush=True)


@dataclass
class Site:
    name: str
    url: str
    runtime: Runtime
    folder: Path
    citizen_id: uuid.UUID
    client_id: str
    grant_id: uuid.UUID


@contextmanager
def database(kind: str, folder: Path, tag: str) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{folder / f'{tag}.db'}"
        return
    name = f"pds_bench_{tag}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_SERVER + "/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_SERVER + "/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def environ(url: str, folder: Path, port: int) -> dict[str, str]:
    return {
        **os.environ,
        "PDS_CONFIG": str(CONFIG),
        "PDS_DATABASE_URL": url,
        "PDS_KEYS_DIR": str(folder / "keys"),
        "PDS_SERVER_PORT": str(port),
        "PDS_SERVER_ISSUER": f"http://127.0.0.1:{port}",
        "PDS_LOG_LEVEL": "WARNING",
        **{k: v for k, v in os.environ.items() if k in ("PDS_SERVER_WORKERS", "PDS_SERVER_THREADS")},
    }


def build_site(kind: str, url: str, folder: Path, port: int) -> Site:
    LocalKeyProvider.create(folder / "keys")
    settings = load_settings(CONFIG, environ=environ(url, folder, port))
    runtime = Runtime.build(settings)
    migrate.upgrade(runtime.engine)
    runtime.check()
    with runtime.vault() as v:
        v.sources.ensure("bench-gp", kind="fhir", title="Bench GP")
        cid = v.citizens.add(name="Bench Citizen", date_of_birth="1970-01-01").id
        when = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        v.records.put(
            [
                NewRecord(
                    cid,
                    "health",
                    "fhir:Observation",
                    "bench-gp",
                    f"obs-{i}",
                    1,
                    when + dt.timedelta(days=i),
                    {"resourceType": "Observation", "id": f"obs-{i}", "note": "x" * PAYLOAD_FILL},
                )
                for i in range(RECORDS)
            ]
        )
        client = ClientService(v.session).add(
            name="Bench app", redirect_uris=["http://127.0.0.1:9/cb"], scope="health.read"
        )
        grant = GrantService(v.session).create(
            citizen_id=cid,
            client_id=client.client.client_id,
            categories=["health"],
            scope="health.read",
            purpose="benchmark",
            ends_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=1),
            actor="bench",
        )
        return Site(kind, f"http://127.0.0.1:{port}", runtime, folder, cid, client.client.client_id, grant.id)


def mint(site: Site) -> str:
    """A fresh access token for the grant, as the token endpoint would issue it."""
    with site.runtime.vault() as v:
        key = SigningKeys(v.session, provider=site.runtime.provider).active()
        token, claims = issue_access_token(
            key,
            issuer=site.url,
            client_id=site.client_id,
            scope="health.read",
            audience=site.url + "/api/v1",
            citizen_id=site.citizen_id,
            grant_id=site.grant_id,
        )
        v.session.add(
            OAuthToken(
                jti=claims.jti,
                client_id=site.client_id,
                citizen_id=site.citizen_id,
                grant_id=site.grant_id,
                scope=claims.scope,
                audience=claims.audience,
                access_expires_at=claims.expires_at,
            )
        )
    return token


@contextmanager
def gunicorn(site: Site, url: str) -> Iterator[None]:
    port = int(site.url.rsplit(":", 1)[1])
    settings = site.runtime.settings
    env = environ(url, site.folder, port) | {
        "BENCH_FLOOR_FILE": str(site.folder / "floor.json"),
        "PYTHONPATH": str(REPO),
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--workers",
            str(settings.server.workers),
            "--threads",
            str(settings.server.threads),
            "--worker-class",
            "gthread",
            "--bind",
            f"127.0.0.1:{port}",
            "--reuse-port",  # as `pds serve` does: the kernel spreads connections over the workers
            "--log-level",
            "warning",
            "bench.api_app:app",
        ],
        env=env,
        cwd=REPO,
    )
    try:
        for _ in range(200):
            try:
                if requests.get(site.url + "/healthz", timeout=5).ok:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.1)
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@dataclass
class Load:
    rps: float
    p50_ms: float
    p99_ms: float
    ok: int


def wrk(url: str, token: str, seconds: int) -> Load:
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{CONNECTIONS}",
            f"-d{seconds}s",
            "--latency",
            "-H",
            f"Authorization: Bearer {token}",
            url,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: .*", out)
    if bad or errors:
        raise SystemExit(f"wrk saw failures on {url}:\n{out}")
    return Load(
        float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        _ms(out, "50%"),
        _ms(out, "99%"),
        total,
    )


def _ms(out: str, pct: str) -> float:
    value, unit = re.search(rf"{pct}\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def read_throughput(site: Site, url: str, reps: int, seconds: int) -> tuple[list[Load], list[Load], int, int]:
    """Interleaved wrk runs of the real read and of the floor. Also returns (reads the ledger holds,
    reads the server answered with 200), which must be equal."""
    reads: list[Load] = []
    floors: list[Load] = []
    with gunicorn(site, url):
        token = mint(site)
        first = requests.get(
            site.url + "/api/v1/records", headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        first.raise_for_status()
        (site.folder / "floor.json").write_bytes(first.content)
        warm = wrk(site.url + "/api/v1/records", token, 2)  # warm-up, both paths
        wrk(site.url + "/bench/floor", token, 2)
        for rep in range(reps):
            token = mint(site)
            order = ("read", "floor") if rep % 2 == 0 else ("floor", "read")
            for variant in order:
                log(f"{site.name}: rep {rep + 1}/{reps}, {variant}")
                path = "/api/v1/records" if variant == "read" else "/bench/floor"
                (reads if variant == "read" else floors).append(wrk(site.url + path, token, seconds))
    with site.runtime.sessions() as s:
        subject = events.pseudonym(s, site.citizen_id)
        leaves = s.scalars(select(LedgerEntry.leaf).where(LedgerEntry.subject == subject))
        ledgered = sum(b'"event":"records.read"' in bytes(leaf) for leaf in leaves)
    served = 1 + warm.ok + sum(r.ok for r in reads)  # the first request, the warm-up, the timed runs
    return reads, floors, int(ledgered or 0), served


def grant_check_p99(site: Site) -> float:
    """p99 (µs) of what every read checks: the token row is live, and the grant is live now."""
    jti = jwt.decode(mint(site), options={"verify_signature": False})["jti"]
    samples = []
    for _ in range(CHECKS):
        start = time.perf_counter()
        with site.runtime.sessions() as s:
            GrantService(s).check_for_read(
                jti=jti, grant_id=site.grant_id, citizen_id=site.citizen_id, client_id=site.client_id
            )
        samples.append((time.perf_counter() - start) * 1e6)
    samples.sort()
    return samples[int(len(samples) * 0.99)]


def add_many_grants(site: Site, n: int) -> None:
    now = dt.datetime.now(dt.UTC)
    with site.runtime.sessions() as s, s.begin():
        for start in range(0, n, 10_000):
            grants = [
                {
                    "id": uuid.uuid4(),
                    "citizen_id": site.citizen_id,
                    "client_id": f"other-{i}",
                    "categories": "health",
                    "scope": "health.read",
                    "purpose": "",
                    "status": "active",
                    "starts_at": now,
                    "ends_at": now + dt.timedelta(days=30),
                    "created_at": now,
                    "updated_at": now,
                }
                for i in range(start, min(n, start + 10_000))
            ]
            s.execute(insert(Grant), grants)
            s.execute(
                insert(OAuthToken),
                [
                    {
                        "jti": uuid.uuid4().hex,
                        "family_id": uuid.uuid4(),
                        "client_id": g["client_id"],
                        "citizen_id": site.citizen_id,
                        "grant_id": g["id"],
                        "scope": "health.read",
                        "audience": "x",
                        "issued_at": now,
                        "access_expires_at": now,
                    }
                    for g in grants
                ],
            )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def median(values: list[float]) -> str:
    return f"{statistics.median(values):,.0f} [{min(values):,.0f}-{max(values):,.0f}]"


def run(kind: str, reps: int, seconds: int) -> list[str]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="pds-bench-api-") as tmp:
        folder = Path(tmp)
        with database(kind, folder, "reads") as url:
            (folder / "reads").mkdir()
            site = build_site(kind, url, folder / "reads", free_port())
            reads, floors, ledgered, served = read_throughput(site, url, reps, seconds)
            ratios = [r.rps / f.rps for r, f in zip(reads, floors, strict=True)]
            ok = statistics.median(ratios) >= TARGETS[kind]
            rows.append(
                f"{kind:<9} reads/s      {median([r.rps for r in reads]):<24} "
                f"{median([f.rps for f in floors]):<24} {statistics.median(ratios):.2f} "
                f"(>= {TARGETS[kind]:.2f}) {'ok' if ok else 'MISSED'}"
            )
            rows.append(
                f"{kind:<9} p50 / p99 ms {statistics.median([r.p50_ms for r in reads]):.1f} / "
                f"{statistics.median([r.p99_ms for r in reads]):.1f}{'':<12} "
                f"{statistics.median([f.p50_ms for f in floors]):.1f} / "
                f"{statistics.median([f.p99_ms for f in floors]):.1f}"
            )
            rows.append(
                # wrk stops counting with requests in flight; they are answered, and logged, after it
                f"{kind:<9} every read in the ledger: {ledgered:,} entries, {served:,} reads answered "
                f"{'ok' if ledgered >= served else 'MISSED'}"
            )
            site.runtime.close()
        with database(kind, folder, "one") as one_url, database(kind, folder, "many") as many_url:
            (folder / "one").mkdir()
            (folder / "many").mkdir()
            one = build_site(kind, one_url, folder / "one", free_port())
            many = build_site(kind, many_url, folder / "many", free_port())
            log(f"{kind}: adding {MANY_GRANTS:,} grants")
            add_many_grants(many, MANY_GRANTS)
            p_one, p_many = [], []
            for rep in range(reps):
                log(f"{kind}: grant check rep {rep + 1}/{reps}")
                p_one.append(grant_check_p99(one))
                p_many.append(grant_check_p99(many))
            ratio = statistics.median(p_many) / statistics.median(p_one)
            rows.append(
                f"{kind:<9} grant check p99 µs: 1 grant {median(p_one)}, {MANY_GRANTS:,} grants "
                f"{median(p_many)}; ratio {ratio:.2f} (<= {GRANT_TARGET:.2f}) "
                f"{'ok' if ratio <= GRANT_TARGET else 'MISSED'}"
            )
            one.runtime.close()
            many.runtime.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 reps of 3 s: a smoke run")
    parser.add_argument("--databases", default="sqlite,postgres")
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install -y wrk")
    reps, seconds = (2, 3) if args.quick else (args.reps, 10)
    rows = []
    for kind in args.databases.split(","):
        rows += run(kind, reps, seconds)
    print(
        f"pds API read benchmark (2 vCPU; gunicorn gthread, wrk -c{CONNECTIONS}; {reps} interleaved reps of "
        f"{seconds} s; median [min-max])"
    )
    print(f"{'database':<9} {'measure':<12} {'GET /api/v1/records':<24} {'floor (same bytes)':<24} ratio")
    for row in rows:
        print(row)


if __name__ == "__main__":
    main()
