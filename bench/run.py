"""pds vault benchmark: batch ingest, get by id and streaming memory, each beside a bare-driver floor.

    .venv/bin/python bench/run.py [--quick] [--databases sqlite,postgres] [--reps N]

Prints one table on stdout and its progress on stderr. bench/README.md says how to read it.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gc
import json
import os
import random
import resource
import secrets
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy
from psycopg import sql
from sqlalchemy import MetaData
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from pds import migrate
from pds.db import SQLITE_BUSY_TIMEOUT_MS, run_transaction, uuid7
from pds.runtime import Runtime
from pds.settings import load_settings
from pds.vault import NewRecord, PutResult
from pds.vault.crypto import HEADER, LocalKeyProvider
from pds.vault.models import Record

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "config.toml"
PG_SERVER = "postgresql://postgres@127.0.0.1:5432"

BATCH = 1_000  # records per put, and rows per floor commit
CITIZENS = 1_000
PAYLOAD_BYTES = 1_000  # size of each record's JSON payload
SEAL_OVERHEAD = HEADER.size + 16  # header + GCM tag: floor blobs are as long as the vault's ciphertexts
WARMUP_BATCHES = 5  # one discarded run of each variant over this many batches
GETS = 2_000
GET_WARMUP = 100
INGEST_TARGET = 0.70  # vault / floor, paired
MEMORY_TARGET = 1.20  # peak at the large size / peak at the small size

SOURCE = "bench-gp"
FLOOR_TABLE = "floor_record"
COLUMNS = tuple(c.name for c in Record.__table__.columns)  # type: ignore[attr-defined]
SQLITE_PRAGMAS = (  # what pds.db.make_engine sets on every SQLite connection
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
)
WORDS = (
    "patient",
    "reports",
    "feeling",
    "well",
    "today",
    "glucose",
    "reviewed",
    "diet",
    "discussed",
    "plan",
    "agreed",
    "follow",
    "up",
    "in",
    "clinic",
)
EPOCH = dt.datetime(2021, 1, 1, tzinfo=dt.UTC)
_STARTED = time.perf_counter()
_LOADS: list[float] = []  # 1-minute load average at every progress line: shows other work on the machine


def log(message: str) -> None:
    _LOADS.append(os.getloadavg()[0])
    print(f"[{time.perf_counter() - _STARTED:5.0f}s] {message}", file=sys.stderr, flush=True)


def load_note() -> str:
    """The bench alone reaches a load of about 3 (client, database, autovacuum); more means other work."""
    cpus = os.cpu_count() or 1
    peak = max(_LOADS, default=0.0)
    warning = "  OTHER WORK WAS RUNNING: rerun on a quiet machine" if peak > cpus + 2 else ""
    return f"load: 1-minute load average peaked at {peak:.1f} on {cpus} vCPU.{warning}"


# -- workload ------------------------------------------------------------------------------------

_CATEGORY = [
    {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                "code": "laboratory",
                "display": "Laboratory",
            }
        ]
    }
]
_CODE = {
    "coding": [{"system": "http://snomed.info/sct", "code": "1019431000000105", "display": "HbA1c level"}],
    "text": "HbA1c level",
}


def _json_len(payload: Any) -> int:
    """Bytes of the payload as the vault serialises it before sealing."""
    return len(json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode())


def _observation(rng: random.Random, sid: str, citizen_id: uuid.UUID, when: dt.datetime) -> dict[str, Any]:
    """A FHIR-like Observation, padded with a note to PAYLOAD_BYTES of JSON."""
    body: dict[str, Any] = {
        "resourceType": "Observation",
        "id": sid,
        "status": "final",
        "category": _CATEGORY,
        "code": _CODE,
        "subject": {"reference": f"Patient/{citizen_id}"},
        "effectiveDateTime": when.isoformat(),
        "issued": when.isoformat(),
        "valueQuantity": {
            "value": round(rng.uniform(30, 110), 1),
            "unit": "mmol/mol",
            "system": "http://unitsofmeasure.org",
            "code": "mmol/mol",
        },
        "performer": [{"display": "Riverside Surgery (benchmark)"}],
    }
    room = PAYLOAD_BYTES - _json_len(body) - len(',"note":[{"text":""}]')
    words = " ".join(rng.choices(WORDS, k=room // 4 + 1))
    body["note"] = [{"text": words[: max(room, 0)]}]
    return body


def record_batches(citizens: Sequence[uuid.UUID], n: int, seed: int = 1) -> Iterator[list[NewRecord]]:
    """n records in batches of BATCH, made lazily: one source, citizens picked at random."""
    rng = random.Random(seed)
    for start in range(0, n, BATCH):
        batch = []
        for i in range(start, min(n, start + BATCH)):
            citizen = rng.choice(citizens)
            sid = f"obs-{i:09d}"
            when = EPOCH + dt.timedelta(seconds=rng.randrange(5 * 365 * 86_400))
            payload = _observation(rng, sid, citizen, when)
            batch.append(NewRecord(citizen, "health", "fhir:Observation", SOURCE, sid, 1, when, payload))
        yield batch


def _sqlite_value(value: Any) -> Any:
    """The value as SQLAlchemy stores it in SQLite: uuids as 32 hex digits, UTC times as text."""
    if isinstance(value, uuid.UUID):
        return value.hex
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


Rows = list[list[tuple[Any, ...]]]  # batches of DB-API parameter tuples


def floor_batches(batches: list[list[NewRecord]], source_id: int, *, sqlite: bool) -> Rows:
    """The same rows for the bare driver: same columns, random blobs as long as the sealed payloads."""
    out = []
    for batch in batches:
        now = dt.datetime.now(dt.UTC)
        rows = []
        for r in batch:
            row = {
                "id": uuid7(),
                "citizen_id": r.citizen_id,
                "category": r.category,
                "kind": r.kind,
                "source_id": source_id,
                "source_record_id": r.source_record_id,
                "version": r.version,
                "occurred_at": r.occurred_at,
                "received_at": now,
                "sensitive": r.sensitive,
                "payload": os.urandom(_json_len(r.payload) + SEAL_OVERHEAD),
            }
            values = tuple(row[c] for c in COLUMNS)
            rows.append(tuple(map(_sqlite_value, values)) if sqlite else values)
        out.append(rows)
    return out


# -- databases -----------------------------------------------------------------------------------


def open_runtime(url: str, keys_dir: Path) -> Runtime:
    environ = {**os.environ, "PDS_DATABASE_URL": url, "PDS_KEYS_DIR": str(keys_dir)}
    return Runtime.build(load_settings(path=CONFIG, environ=environ))


def prepare_database(url: str, keys_dir: Path) -> tuple[list[uuid.UUID], int]:
    """Migrate, check keys, add the source and the citizens the way pds does; return their ids."""
    runtime = open_runtime(url, keys_dir)
    try:
        migrate.upgrade(runtime.engine)
        runtime.check()
        with runtime.vault() as v:
            source_id = v.sources.ensure(SOURCE, kind="fhir", title="Benchmark GP system").id
            citizens = [
                v.citizens.add(name=f"Bench Citizen {i}", date_of_birth="1980-01-01").id
                for i in range(CITIZENS)
            ]
        create_floor_table(runtime.engine)
    finally:
        runtime.close()
    assert source_id is not None
    return citizens, source_id


def create_floor_table(engine: Engine) -> None:
    """A bare copy of `record`: same columns, types, keys, indexes and constraints, renamed."""
    meta = MetaData()
    for name in ("citizen", "source"):  # so the copied foreign keys resolve
        SQLModel.metadata.tables[name].to_metadata(meta)
    table = Record.__table__.to_metadata(meta, name=FLOOR_TABLE)  # type: ignore[attr-defined]
    for item in (*table.constraints, *table.indexes):
        item.name = str(item.name).replace("record", FLOOR_TABLE, 1)
    table.create(engine)


@dataclass
class Run:
    """A database ready for one measured run: pds's runtime and bare driver connections to it."""

    runtime: Runtime
    writer: Any  # DB-API connection, one commit per batch
    reader: Any  # DB-API connection for single SELECTs
    sqlite: bool

    def param(self) -> str:
        return "?" if self.sqlite else "%s"

    def key(self, record_id: uuid.UUID) -> Any:
        return record_id.hex if self.sqlite else record_id


class SqliteStore:
    """Every run gets a fresh copy of a template file that holds the schema, source and citizens."""

    name = "sqlite"

    def __init__(self, folder: Path) -> None:
        self.keys = folder / "keys"
        self.template = folder / "template.db"
        self.path = folder / "run.db"
        LocalKeyProvider.create(self.keys)
        self.citizens, self.source_id = prepare_database(_sqlite_url(self.template), self.keys)
        self.version = f"SQLite {sqlite3.sqlite_version}"

    @contextmanager
    def fresh(self) -> Iterator[Run]:
        _remove_sqlite(self.path)
        shutil.copyfile(self.template, self.path)
        runtime = open_runtime(_sqlite_url(self.path), self.keys)  # checked once, on the template
        raw = sqlite3.connect(self.path)
        for pragma in SQLITE_PRAGMAS:
            raw.execute(pragma)
        try:
            yield Run(runtime, raw, raw, sqlite=True)
        finally:
            raw.close()
            runtime.close()
            _remove_sqlite(self.path)


def _sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def _remove_sqlite(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


class PostgresStore:
    """One temporary database; every run starts from TRUNCATE and a CHECKPOINT."""

    name = "postgres"

    def __init__(self, folder: Path, database: str) -> None:
        keys = folder / "keys"
        LocalKeyProvider.create(keys)
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{database}"
        self.citizens, self.source_id = prepare_database(url, keys)
        self.runtime = open_runtime(url, keys)
        self.runtime.check()
        self.writer = psycopg.connect(f"{PG_SERVER}/{database}")
        self.reader = psycopg.connect(f"{PG_SERVER}/{database}", autocommit=True)
        self.version = f"PostgreSQL {self.reader.execute('SHOW server_version').fetchone()[0]}"

    @contextmanager
    def fresh(self) -> Iterator[Run]:
        self.reader.execute(f"TRUNCATE record, {FLOOR_TABLE}")
        self.reader.execute("CHECKPOINT")
        yield Run(self.runtime, self.writer, self.reader, sqlite=False)

    def close(self) -> None:
        self.writer.close()
        self.reader.close()
        self.runtime.close()


Store = SqliteStore | PostgresStore


@contextmanager
def open_store(name: str, folder: Path) -> Iterator[Store]:
    log(f"{name}: creating the database, 1 source and {CITIZENS:,} citizens")
    if name == "sqlite":
        yield SqliteStore(folder)
        return
    database = f"pds_bench_{secrets.token_hex(4)}"
    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    store = None
    try:
        store = PostgresStore(folder, database)
        yield store
    finally:
        if store is not None:
            store.close()
        with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))


# -- measurements --------------------------------------------------------------------------------


def vault_put(runtime: Runtime, batch: list[NewRecord]) -> PutResult:
    """One batch, one committed transaction, as a connector's ingest endpoint does it."""
    return run_transaction(runtime.sessions, lambda s: runtime.open_vault(s).records.put(batch))


def time_vault(run: Run, batches: list[list[NewRecord]]) -> float:
    start = time.perf_counter()
    for batch in batches:
        vault_put(run.runtime, batch)
    return time.perf_counter() - start


def time_floor(run: Run, rows: Rows) -> float:
    marks = ", ".join([run.param()] * len(COLUMNS))
    insert = f"INSERT INTO {FLOOR_TABLE} ({', '.join(COLUMNS)}) VALUES ({marks})"
    cur = run.writer.cursor()
    start = time.perf_counter()
    for batch in rows:
        cur.executemany(insert, batch)
        run.writer.commit()
    elapsed = time.perf_counter() - start
    cur.close()
    return elapsed


def ingest_once(store: Store, variant: str, batches: list[list[NewRecord]], rows: Rows) -> float:
    """Records per second of one run on a fresh database; checks that every row arrived."""
    with store.fresh() as run:
        if variant == "vault":
            seconds, table = time_vault(run, batches), "record"
        else:
            seconds, table = time_floor(run, rows), FLOOR_TABLE
        expected = sum(map(len, batches))
        found = run.reader.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        if found != expected:
            raise RuntimeError(f"{variant} stored {found} rows, not {expected}")
    return expected / seconds


@dataclass
class Ingest:
    vault: list[float]
    floor: list[float]

    @property
    def ratios(self) -> list[float]:
        return [v / f for v, f in zip(self.vault, self.floor, strict=True)]


def bench_ingest(store: Store, batches: list[list[NewRecord]], rows: Rows, reps: int) -> Ingest:
    """Interleaved: every repetition runs both variants, in alternating order."""
    log(f"{store.name}: warm-up ({WARMUP_BATCHES} batches of each variant)")
    for variant in ("vault", "floor"):
        ingest_once(store, variant, batches[:WARMUP_BATCHES], rows[:WARMUP_BATCHES])
    result = Ingest([], [])
    for rep in range(reps):
        order = ("vault", "floor") if rep % 2 == 0 else ("floor", "vault")
        for variant in order:
            log(f"{store.name}: ingest rep {rep + 1}/{reps}, {variant}")
            rate = ingest_once(store, variant, batches, rows)
            getattr(result, variant).append(rate)
            log(f"{store.name}: ingest rep {rep + 1}/{reps}, {variant}: {rate:,.0f} rec/s")
    return result


def vault_get(run: Run, record_id: uuid.UUID) -> None:
    with run.runtime.vault() as v:  # its own session, as one web request
        v.records.get(record_id)


def floor_get(run: Run, record_id: uuid.UUID) -> None:
    query = f"SELECT {', '.join(COLUMNS)} FROM record WHERE id = {run.param()}"
    if run.reader.execute(query, (run.key(record_id),)).fetchone() is None:
        raise RuntimeError(f"no row {record_id}")


def _micros(fn: Callable[[Run, uuid.UUID], None], run: Run, record_id: uuid.UUID) -> float:
    start = time.perf_counter_ns()
    fn(run, record_id)
    return (time.perf_counter_ns() - start) / 1_000


def bench_get(store: Store, batches: list[list[NewRecord]]) -> tuple[list[float], list[float]]:
    """Microseconds per get of random ids, vault and bare SELECT alternating, after a vault ingest."""
    with store.fresh() as run:
        log(f"{store.name}: get: ingesting {sum(map(len, batches)):,} records through the vault")
        ids = [rid for batch in batches for rid in vault_put(run.runtime, batch).stored]
        sample = random.Random(2).sample(ids, min(GETS, len(ids)))
        log(f"{store.name}: get: {len(sample):,} ids, vault and floor alternating")
        for rid in sample[:GET_WARMUP]:
            vault_get(run, rid)
            floor_get(run, rid)
        vault_us: list[float] = []
        floor_us: list[float] = []
        for i, rid in enumerate(sample):
            pairs = [(vault_us, vault_get), (floor_us, floor_get)]
            for sink, fn in pairs if i % 2 == 0 else pairs[::-1]:
                sink.append(_micros(fn, run, rid))
    return vault_us, floor_us


def memory_child(n: int) -> None:
    """In a process of its own: stream n records into a new SQLite vault; print the peak RSS as JSON."""
    with tempfile.TemporaryDirectory(prefix="pds-bench-mem-") as tmp:
        keys, url = Path(tmp) / "keys", _sqlite_url(Path(tmp) / "pds.db")
        LocalKeyProvider.create(keys)
        citizens, _ = prepare_database(url, keys)
        runtime = open_runtime(url, keys)
        runtime.check()
        start = time.perf_counter()
        try:
            for i, batch in enumerate(record_batches(citizens, n)):
                vault_put(runtime, batch)
                if (i + 1) % 100 == 0:
                    log(f"memory {n:,}: {(i + 1) * BATCH:,} records streamed")
        finally:
            runtime.close()
        seconds = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    report = {"peak_mib": peak_kib / 1024, "hwm_mib": _vm_hwm_kib() / 1024, "records_per_s": n / seconds}
    print(json.dumps(report))


def _vm_hwm_kib() -> float:
    """Linux's own high-water mark of this process image, to cross-check ru_maxrss (0 if unknown)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return float(line.split()[1])
    return 0.0


# Linux keeps ru_maxrss across exec: a child forked straight from this process (hundreds of MiB of
# pre-generated records) would report our size as its peak. A small launcher forks it instead.
LAUNCHER = "import subprocess, sys; sys.exit(subprocess.call(sys.argv[1:]))"


def bench_memory(sizes: Sequence[int]) -> dict[int, float]:
    peaks = {}
    for n in sizes:
        log(f"memory: streaming {n:,} records into SQLite in a subprocess")
        command = [sys.executable, "-c", LAUNCHER, sys.executable, __file__, "--memory-child", str(n)]
        done = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True)
        child = json.loads(done.stdout.strip().splitlines()[-1])
        peaks[n] = child["peak_mib"]
        log(
            f"memory: {n:,} records: peak RSS {peaks[n]:.1f} MiB (VmHWM {child['hwm_mib']:.1f} MiB), "
            f"{child['records_per_s']:,.0f} rec/s"
        )
    return peaks


# -- report --------------------------------------------------------------------------------------


def _count(n: int) -> str:
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n // 1_000}k" if n % 1_000 == 0 else f"{n:,}"


def _spread(values: Sequence[float], fmt: str) -> str:
    return f"{statistics.median(values):{fmt}} [{min(values):{fmt}}-{max(values):{fmt}}]"


def _verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def _percentile(values: Sequence[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def ingest_row(db: str, n: int, r: Ingest) -> list[str]:
    ratio = statistics.median(r.ratios)
    return [
        db,
        f"ingest {_count(n)} x 1 KB rec/s",
        _spread(r.vault, ",.0f"),
        _spread(r.floor, ",.0f"),
        f"{_spread(r.ratios, '.2f')} (>= {INGEST_TARGET:.2f}) {_verdict(ratio >= INGEST_TARGET)}",
    ]


def get_rows(db: str, vault_us: list[float], floor_us: list[float]) -> list[list[str]]:
    rows = []
    for q in (50, 99):
        v, f = _percentile(vault_us, q), _percentile(floor_us, q)
        ratio = f"{v / f:.1f}x the floor (no target)"
        rows.append([db, f"get by id p{q} µs", f"{v:,.0f}", f"{f:,.0f}", ratio])
    return rows


def memory_rows(peaks: dict[int, float]) -> list[list[str]]:
    small, large = min(peaks), max(peaks)
    growth = peaks[large] / peaks[small]
    return [
        ["sqlite", f"peak RSS, {_count(small)} streamed MiB", f"{peaks[small]:.1f}", "-", "-"],
        [
            "sqlite",
            f"peak RSS, {_count(large)} streamed MiB",
            f"{peaks[large]:.1f}",
            "-",
            f"{growth:.2f} of {_count(small)} (<= {MEMORY_TARGET:.2f}) {_verdict(growth <= MEMORY_TARGET)}",
        ],
    ]


def render(title: str, rows: list[list[str]], notes: list[str]) -> str:
    header = ["database", "measure", "pds vault", "floor (bare driver)", "ratio (target)"]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [title] + [
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [header, *rows]
    ]
    return "\n".join([*lines, "", *notes])


NOTES = [
    "ingest: vault = Vault.records.put, one committed transaction per 1,000 records; floor = DB-API",
    "  executemany of the same rows (~1 KB blobs) into floor_record, a bare copy of `record` (same columns,",
    "  keys, indexes, constraints), one commit per 1,000 rows. ratio = median of per-rep vault/floor.",
    "get: vault = Vault.records.get in its own session (decrypts); floor = bare SELECT by primary key.",
    "memory: peak RSS of a subprocess streaming batches of 1,000 into SQLite through the vault.",
]


# -- command -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    databases: list[str]
    records: int
    reps: int
    memory_sizes: tuple[int, int]


def parse_plan(argv: Sequence[str] | None = None) -> tuple[Plan, int | None]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 reps, 20,000 records, memory at 20k/200k")
    parser.add_argument("--databases", default="sqlite,postgres", help="comma list of sqlite, postgres")
    parser.add_argument("--reps", type=int, help="interleaved repetitions (default 5, or 2 with --quick)")
    parser.add_argument("--memory-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    databases = [d.strip() for d in args.databases.split(",") if d.strip()]
    unknown = set(databases) - {"sqlite", "postgres"}
    if unknown or not databases:
        parser.error(f"--databases takes sqlite and/or postgres, not {args.databases!r}")
    reps = args.reps or (2 if args.quick else 5)
    if reps < 1:
        parser.error("--reps must be at least 1")
    records = 20_000 if args.quick else 100_000
    sizes = (20_000, 200_000) if args.quick else (100_000, 1_000_000)
    return Plan(databases, records, reps, sizes), args.memory_child


def bench_database(name: str, plan: Plan, folder: Path) -> tuple[list[list[str]], str]:
    with open_store(name, folder) as store:
        log(f"{name}: generating {plan.records:,} records and the floor's rows")
        batches = list(record_batches(store.citizens, plan.records))
        rows = floor_batches(batches, store.source_id, sqlite=name == "sqlite")
        # The pre-generated workload is millions of objects no ingest process would hold; keep the
        # garbage collector from walking them over and over while either variant runs.
        gc.collect()
        gc.freeze()
        try:
            ingest = bench_ingest(store, batches, rows, plan.reps)
            vault_us, floor_us = bench_get(store, batches)
        finally:
            gc.unfreeze()
        return [ingest_row(name, plan.records, ingest), *get_rows(name, vault_us, floor_us)], store.version


def main(argv: Sequence[str] | None = None) -> None:
    plan, memory_records = parse_plan(argv)
    if memory_records is not None:
        memory_child(memory_records)
        return
    rows: list[list[str]] = []
    versions = []
    for name in plan.databases:
        with tempfile.TemporaryDirectory(prefix=f"pds-bench-{name}-") as tmp:
            db_rows, version = bench_database(name, plan, Path(tmp))
        rows += db_rows
        versions.append(version)
    versions += [
        f"Python {sys.version.split()[0]}",
        f"SQLAlchemy {sqlalchemy.__version__}",
        f"psycopg {psycopg.__version__}",
    ]
    if "sqlite" in plan.databases:
        rows += memory_rows(bench_memory(plan.memory_sizes))
    title = (
        f"pds vault benchmark  ({os.cpu_count()} vCPU; interleaved, {plan.reps} reps; "
        f"figures are median [min-max])"
    )
    print(render(title, rows, [*NOTES, "versions: " + ", ".join(versions), load_note()]))


if __name__ == "__main__":
    main()
