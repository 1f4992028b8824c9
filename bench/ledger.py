"""pds ledger benchmark: appends, proofs at 1M entries and a full verify, each beside its floor or target.

    .venv/bin/python bench/ledger.py [--entries 1000000] [--db sqlite|postgres|both]
                                     [--appends 10000] [--reps 3] [--verify-rounds 3]

Prints one table on stdout and its progress on stderr. bench/README.md ("The ledger benchmark") says
what each line measures and how to read it.
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing as mp
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Engine
from throwaway import Db, database, load_note, log, open_runtime, server_version

from consent import events
from consent.events import Event
from consent.ledger import store
from consent.ledger.audit import audit
from consent.ledger.models import LedgerDetail, LedgerEntry, LedgerNode
from consent.ledger.subtrees import MemorySubtreeStore
from consent.ledger.verify import leaf_hash, verify_consistency, verify_inclusion
from pds.db import run_transaction, session_scope
from pds.runtime import Runtime

APPEND_TARGET = 3_000  # appends per second (issue 4)
PROOF_TARGET_MS = 5.0  # p99 of one inclusion or consistency proof, its query included
VERIFY_TARGET = 1 / 3  # floor time / verify time
CITIZENS = 200
RECORDS_PER_READ = 20  # a read entry names the records it returned: one API page
BATCHES = (1, 100, 500)  # events per commit; 500 is consent.readlog.MAX_BATCH
PROCESSES = (1, 4)
SINGLE_SHARE = 10  # runs of 1 event per commit write 1/10 of --appends (a commit each is slow)
PROOF_SAMPLES = 2_000
PROOF_WARMUP = 100
PROOF_CHECKED = 200  # proofs also checked with consent.ledger.verify
VERIFY_ROUNDS = 3
REAL_HEAD = 5_000  # the log's first entries go through store.append itself, to check the bulk loader
LOAD_CHUNK = 100_000
SUBJECTS = 10_000  # pseudonyms in the bulk-loaded log
SYSTEM_SHARE = 0.05  # entries about no one
FLOOR_PREFIX = "floor_"


def create_floor_tables(engine: Engine) -> None:
    """Bare copies of ledger_entry, ledger_node and ledger_detail: same columns, keys and indexes."""
    meta = MetaData()
    for model in (LedgerEntry, LedgerNode, LedgerDetail):
        source = model.__table__  # type: ignore[attr-defined]
        table = source.to_metadata(meta, name=FLOOR_PREFIX + source.name)
        for item in (*table.constraints, *table.indexes):
            if item.name:
                item.name = str(item.name).replace("ledger_", FLOOR_PREFIX + "ledger_", 1)
    meta.create_all(engine)


# -- appends: workers ----------------------------------------------------------------------------


def read_event(rng: random.Random, citizen: uuid.UUID) -> Event:
    """What an API read of one page of records puts in the ledger (pds/web/api.py)."""
    ids = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(RECORDS_PER_READ)]
    return Event(
        events.RECORDS_READ,
        actor="client:bench-app",
        citizen_id=citizen,
        grant_id=uuid.UUID(int=rng.getrandbits(128), version=4),
        details={"records": ids, "purpose": "direct-care", "categories": ["health"], "count": len(ids)},
    )


def event_batches(
    citizens: Sequence[uuid.UUID], n: int, batch: int, seed: int, warm: bool
) -> list[list[Event]]:
    rng = random.Random(seed)
    picks = (
        [citizens[i % len(citizens)] for i in range(n)] if warm else [rng.choice(citizens) for _ in range(n)]
    )
    made = [read_event(rng, c) for c in picks]
    return [made[i : i + batch] for i in range(0, n, batch)]


Rows = list[tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]]


def floor_batches(n: int, batch: int, base: int, sizes: tuple[int, int], seed: int, sqlite: bool) -> Rows:
    """The rows append_events writes for n events at positions base.., as random bytes of the same sizes:
    one entry, one detail, and a node for each trailing one bit of the position."""
    rng = random.Random(seed)
    leaf_len, body_len = sizes
    out: Rows = []
    for start in range(base, base + n, batch):
        entries, nodes, details = [], [], []
        for pos in range(start, min(base + n, start + batch)):
            entries.append((pos, rng.randbytes(leaf_len), rng.randbytes(32), rng.randbytes(32), 0))
            level, p = 0, pos
            while p & 1:
                level, p = level + 1, p >> 1
                nodes.append((level, p, rng.randbytes(32)))
            citizen = uuid.UUID(int=rng.getrandbits(128), version=4)
            details.append((pos, citizen.hex if sqlite else citizen, rng.randbytes(body_len)))
        out.append((entries, nodes, details))
    return out


def _floor_sql(db: Db) -> tuple[str, str, str]:
    def insert(table: str, columns: str) -> str:
        marks = ", ".join([db.param] * len(columns.split(",")))
        return f"INSERT INTO {FLOOR_PREFIX}{table} ({columns}) VALUES ({marks})"

    return (
        insert("ledger_entry", "position, leaf, leaf_hash, subject, subject_seq"),
        insert("ledger_node", "level, position, hash"),
        insert("ledger_detail", "position, citizen_id, body"),
    )


def worker(conn: Any, db: Db, citizens: list[uuid.UUID]) -> None:
    """One appending process: its own Runtime (the real path) and its own bare connection (the floor).

    Commands: ("real"|"floor", batch, n, seed, base, sizes, warm), then "go"; answers (start, end) in
    perf_counter time, which is the system's monotonic clock and so comparable across processes."""
    runtime = open_runtime(db)
    raw = db.connect()
    statements = _floor_sql(db)
    try:
        while True:
            command = conn.recv()
            if command == "stop":
                return
            variant, batch, n, seed, base, sizes, warm = command
            if variant == "real":
                work: Any = event_batches(citizens, n, batch, seed, warm)
            else:
                work = floor_batches(n, batch, base, sizes, seed, db.kind == "sqlite")
            conn.send("ready")
            conn.recv()
            start = time.perf_counter()
            if variant == "real":
                for b in work:
                    run_transaction(runtime.sessions, lambda s, b=b: events.append_events(s, b))
            else:
                cur = raw.cursor()
                for rows in work:
                    for statement, params in zip(statements, rows, strict=True):
                        if params:
                            cur.executemany(statement, params)
                    raw.commit()
                cur.close()
            conn.send((start, time.perf_counter()))
    finally:
        raw.close()
        runtime.close()


class Pool:
    """Appending processes, started once (spawn, each with its own Runtime) and reused for every run."""

    def __init__(self, db: Db, citizens: list[uuid.UUID], size: int) -> None:
        ctx = mp.get_context("spawn")
        self.pipes = []
        self.procs = []
        for _ in range(size):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=worker, args=(child, db, citizens), daemon=True)
            proc.start()
            self.pipes.append(parent)
            self.procs.append(proc)
        self.next_floor = 0  # floor positions: every run gets fresh ones
        self.sizes = (0, 0)

    def run(self, variant: str, batch: int, total: int, procs: int, seed: int, warm: bool = False) -> float:
        """Rows a second of one run: total events split over procs workers started together."""
        per = total // procs
        for i in range(procs):
            base = self.next_floor
            self.next_floor += per
            self.pipes[i].send((variant, batch, per, seed * 100 + i, base, self.sizes, warm))
        for i in range(procs):
            if self.pipes[i].recv() != "ready":
                raise RuntimeError("a worker did not get ready")
        for i in range(procs):
            self.pipes[i].send("go")
        spans = [self.pipes[i].recv() for i in range(procs)]
        wall = max(e for _, e in spans) - min(s for s, _ in spans)
        return per * procs / wall

    def close(self) -> None:
        for pipe in self.pipes:
            pipe.send("stop")
        for proc in self.procs:
            proc.join(timeout=30)


def add_citizens(db: Db) -> list[uuid.UUID]:
    runtime = open_runtime(db)
    try:
        with runtime.vault() as v:
            ids = [
                v.citizens.add(name=f"Bench Citizen {i}", date_of_birth="1980-01-01").id
                for i in range(CITIZENS)
            ]
        create_floor_tables(runtime.engine)
    finally:
        runtime.close()
    return ids


def row_sizes(db: Db) -> tuple[int, int]:
    """Mean bytes of a read entry's leaf and of its sealed detail, as the real path wrote them."""
    runtime = open_runtime(db)
    try:
        with runtime.engine.connect() as conn:
            leaf = conn.execute(
                text("SELECT avg(length(leaf)) FROM ledger_entry WHERE subject IS NOT NULL")
            ).scalar_one()
            body = conn.execute(
                text("SELECT avg(length(body)) FROM ledger_detail WHERE citizen_id IS NOT NULL")
            ).scalar_one()
    finally:
        runtime.close()
    return round(float(leaf)), round(float(body))


@dataclass
class AppendResult:
    procs: int
    batch: int
    real: list[float]
    floor: list[float]

    @property
    def ratios(self) -> list[float]:
        return [r / f for r, f in zip(self.real, self.floor, strict=True)]


def bench_appends(db: Db, appends: int, reps: int) -> list[AppendResult]:
    log(f"{db.kind}: appends: {CITIZENS} citizens, {max(PROCESSES)} worker processes (spawn)")
    citizens = add_citizens(db)
    pool = Pool(db, citizens, max(PROCESSES))
    try:
        # every worker's connections warm, and each names every citizen once (its pseudonym cache)
        pool.run("real", 100, 2 * CITIZENS * max(PROCESSES), max(PROCESSES), seed=901, warm=True)
        pool.sizes = row_sizes(db)
        log(f"{db.kind}: a read entry writes a {pool.sizes[0]} B leaf and a {pool.sizes[1]} B sealed detail")
        pool.run("floor", 100, 2_000, max(PROCESSES), seed=902)
        results = []
        seed = 1_000
        for procs in PROCESSES:
            for batch in BATCHES:
                total = appends // SINGLE_SHARE if batch == 1 else appends
                total -= total % (procs * batch) if total >= procs * batch else 0
                result = AppendResult(procs, batch, [], [])
                for rep in range(reps):
                    order = ("real", "floor") if rep % 2 == 0 else ("floor", "real")
                    for variant in order:
                        seed += 1
                        rate = pool.run(variant, batch, total, procs, seed)
                        (result.real if variant == "real" else result.floor).append(rate)
                    log(
                        f"{db.kind}: {procs} proc x {batch}/commit, rep {rep + 1}/{reps}: "
                        f"real {result.real[-1]:,.0f}/s, floor {result.floor[-1]:,.0f}/s"
                    )
                results.append(result)
    finally:
        pool.close()
    return results


# -- the 1M-entry log ----------------------------------------------------------------------------

# A leaf as store.leaf_bytes writes it (RFC 8785: members sorted, no spaces); checked against it below.
_LEAF = b'{"commitment":"%s","event":"%s","subject":%s,"subject_prev":%s,"subject_seq":%s,"time_us":%d,"v":1}'
_T0 = 1_767_225_600_000_000  # 2026-01-01 in microseconds


def _quoted(value: bytes | None) -> bytes:
    return b"null" if value is None else b'"' + value.hex().encode() + b'"'


def make_log(n: int, seed: int = 7) -> Iterator[tuple[store.PendingLeaf, bytes, bytes, int | None]]:
    """n entries in order: (pending, leaf, leaf hash, subject seq), chained as store.append chains them."""
    rng = random.Random(seed)
    subjects = [rng.randbytes(32) for _ in range(SUBJECTS)]
    heads: dict[bytes, tuple[int, bytes]] = {}
    for pos in range(n):
        commitment = rng.randbytes(32)
        t = _T0 + pos * 1_000
        if rng.random() < SYSTEM_SHARE:
            pending = store.PendingLeaf(events.REQUEST_DENIED, t, None, commitment)
            leaf = _LEAF % (commitment.hex().encode(), pending.event.encode(), b"null", b"null", b"null", t)
            yield pending, leaf, leaf_hash(leaf), None
            continue
        subject = subjects[rng.randrange(SUBJECTS)]
        last = heads.get(subject)
        seq, prev = (0, None) if last is None else (last[0] + 1, last[1])
        pending = store.PendingLeaf(events.RECORDS_READ, t, subject, commitment)
        leaf = _LEAF % (
            commitment.hex().encode(),
            pending.event.encode(),
            _quoted(subject),
            _quoted(prev),
            str(seq).encode(),
            t,
        )
        h = leaf_hash(leaf)
        heads[subject] = (seq, h)
        yield pending, leaf, h, seq


def _write_rows(db: Db, raw: Any, entries: list[tuple[Any, ...]], nodes: list[tuple[Any, ...]]) -> None:
    if db.kind == "sqlite":
        raw.executemany("INSERT INTO ledger_entry VALUES (?, ?, ?, ?, ?)", entries)
        raw.executemany("INSERT INTO ledger_node VALUES (?, ?, ?)", nodes)
    else:
        with raw.cursor() as cur:
            columns = "position, leaf, leaf_hash, subject, subject_seq"
            with cur.copy(f"COPY ledger_entry ({columns}) FROM STDIN (FORMAT BINARY)") as cp:
                cp.set_types(["int8", "bytea", "bytea", "bytea", "int8"])
                for row in entries:
                    cp.write_row(row)
            with cur.copy("COPY ledger_node (level, position, hash) FROM STDIN (FORMAT BINARY)") as cp:
                cp.set_types(["int2", "int8", "bytea"])
                for row in nodes:
                    cp.write_row(row)
    raw.commit()


def build_log(db: Db, n: int) -> list[int]:
    """The log's first REAL_HEAD entries through store.append (its output checked against the loader's),
    the rest bulk-loaded (COPY on PostgreSQL, executemany on SQLite), a checkpoint every n/10 entries.
    Returns the checkpoint sizes."""
    runtime = open_runtime(db)
    raw = db.connect()
    every = max(1, min(LOAD_CHUNK, n // 10))
    head = min(REAL_HEAD, every)
    mem = MemorySubtreeStore()
    sizes = []
    try:
        entries: list[tuple[Any, ...]] = []
        nodes: list[tuple[Any, ...]] = []
        real: list[tuple[store.PendingLeaf, bytes, bytes]] = []
        for pending, leaf, h, seq in make_log(n):
            pos = mem.append(h)
            if pos < head:
                real.append((pending, leaf, h))
                if len(real) == head:
                    _append_real(runtime, real)
            else:
                entries.append((pos, leaf, h, pending.subject, seq))
                level, p = 0, pos
                while p & 1:  # the nodes this leaf completes (store.append writes levels >= 1)
                    level, p = level + 1, p >> 1
                    nodes.append((level, p, mem.nodes[(level, p)]))
            if (pos + 1) % every == 0 or pos + 1 == n:
                _write_rows(db, raw, entries, nodes)
                entries, nodes = [], []
                with session_scope(runtime.sessions) as session:
                    made = runtime.checkpoints(session).make()
                if made is None or made.root != mem.root(pos + 1):
                    raise RuntimeError(f"the stored tree's root at {pos + 1} is not the loader's")
                sizes.append(made.tree_size)
                log(f"{db.kind}: log: {pos + 1:,} entries, checkpoint signed")
    finally:
        raw.close()
        runtime.close()
    return sizes


def _append_real(runtime: Runtime, real: list[tuple[store.PendingLeaf, bytes, bytes]]) -> None:
    for start in range(0, len(real), 1_000):
        chunk = real[start : start + 1_000]
        done = run_transaction(runtime.sessions, lambda s, c=chunk: store.append(s, [p for p, _, _ in c]))
        for (_, leaf, h), appended in zip(chunk, done, strict=True):
            if appended.leaf != leaf or appended.leaf_hash != h:
                raise RuntimeError(f"store.append wrote entry {appended.position} unlike the bulk loader")


# -- proofs --------------------------------------------------------------------------------------


@dataclass
class ProofResult:
    inclusion_ms: list[float]
    consistency_ms: list[float]
    checked: int


def bench_proofs(db: Db, n: int) -> ProofResult:
    runtime = open_runtime(db)
    rng = random.Random(11)
    incl, cons = [], []
    try:
        with session_scope(runtime.read_sessions) as s:
            root = store.root(s, n)
            positions = [rng.randrange(n) for _ in range(PROOF_WARMUP + PROOF_SAMPLES)]
            pairs = []
            for _ in range(PROOF_WARMUP + PROOF_SAMPLES):
                a = rng.randrange(1, n) if n > 1 else 1
                pairs.append((a, rng.randrange(a, n) + 1 if a < n else n))
            for i, (pos, (a, b)) in enumerate(zip(positions, pairs, strict=True)):
                t0 = time.perf_counter_ns()
                store.prove_inclusion(s, pos, n)
                t1 = time.perf_counter_ns()
                store.prove_consistency(s, a, b)
                t2 = time.perf_counter_ns()
                if i >= PROOF_WARMUP:
                    incl.append((t1 - t0) / 1e6)
                    cons.append((t2 - t1) / 1e6)
            checked = 0
            for pos, (a, b) in zip(positions[:PROOF_CHECKED], pairs[:PROOF_CHECKED], strict=True):
                h = s.execute(
                    text("SELECT leaf_hash FROM ledger_entry WHERE position = :p"), {"p": pos}
                ).scalar_one()
                proof = store.prove_inclusion(s, pos, n)
                verify_inclusion(leaf_index=pos, tree_size=n, leaf_hash=bytes(h), proof=proof, root=root)
                proof = store.prove_consistency(s, a, b)
                root_a, root_b = store.root(s, a), store.root(s, b)
                verify_consistency(size1=a, size2=b, root1=root_a, root2=root_b, proof=proof)
                checked += 2
    finally:
        runtime.close()
    return ProofResult(incl, cons, checked)


# -- verify --------------------------------------------------------------------------------------


def load_leaves(db: Db) -> list[bytes]:
    raw = db.connect()
    try:
        cur = raw.cursor()
        cur.execute("SELECT leaf FROM ledger_entry ORDER BY position")
        leaves = [bytes(leaf) for (leaf,) in cur.fetchall()]
        cur.close()
    finally:
        raw.close()
    return leaves


def floor_hash(leaves: list[bytes]) -> float:
    start = time.perf_counter()
    for leaf in leaves:
        sha256(leaf).digest()
    return time.perf_counter() - start


def floor_tree(leaves: list[bytes]) -> float:
    """The hashing verify cannot avoid, bare: every RFC 9162 leaf hash and every node hash of the tree,
    in one loop (performance-floors.md s4 measures the same "Merkle root over 1,000,000 leaves")."""
    start = time.perf_counter()
    stack: list[bytes] = []
    for n, leaf in enumerate(leaves, start=1):
        stack.append(sha256(b"\x00" + leaf).digest())
        while not n & 1:
            right = stack.pop()
            stack[-1] = sha256(b"\x01" + stack[-1] + right).digest()
            n >>= 1
    return time.perf_counter() - start


def time_audit(runtime: Runtime, n: int, checkpoints: int) -> float:
    start = time.perf_counter()
    with session_scope(runtime.read_sessions) as session:
        result = audit(session)
    elapsed = time.perf_counter() - start
    if result.entries != n or result.checkpoints != checkpoints:
        raise RuntimeError(f"audit saw {result.entries} entries and {result.checkpoints} checkpoints")
    return elapsed


def _floor_process(conn: Any, raw: str, kind: str) -> None:
    """Holds the leaves and times a floor over them on each request ("leaf" or "tree"), until "stop"."""
    leaves = load_leaves(Db(kind, "", Path(), raw))
    gc.collect()
    gc.freeze()  # the list is not what the floor should pay the collector for
    conn.send(len(leaves))
    while (which := conn.recv()) != "stop":
        conn.send(floor_hash(leaves) if which == "leaf" else floor_tree(leaves))


def bench_verify(
    db: Db, n: int, checkpoints: int, rounds: int
) -> tuple[list[float], list[float], list[float]]:
    """Seconds of audit(), of the leaf-hash floor and of the tree-hash floor, interleaved.

    The floors run in a process of their own holding the leaves (about 400 MB at 1M): in this one they
    made every audit slower by a tenth, its worker processes forked from a process that size. (A plain
    Process and a pipe, not a Pool: a Pool's threads would make audit() spawn its workers, not fork.)"""
    verify_s: list[float] = []
    floor_s: list[float] = []
    tree_s: list[float] = []
    ctx = mp.get_context("spawn")
    ours, theirs = ctx.Pipe()
    floors = ctx.Process(target=_floor_process, args=(theirs, db.raw, db.kind), daemon=True)
    floors.start()
    runtime = open_runtime(db)

    def floor(which: str) -> float:
        ours.send(which)
        return float(ours.recv())

    try:
        if (loaded := ours.recv()) != n:
            raise RuntimeError(f"{loaded} leaves, not {n}")
        for rnd in range(rounds):
            steps: list[tuple[list[float], Callable[[], float]]] = [
                (verify_s, lambda: time_audit(runtime, n, checkpoints)),
                (floor_s, lambda: floor("leaf")),
                (tree_s, lambda: floor("tree")),
            ]
            for sink, step in steps if rnd % 2 == 0 else steps[::-1]:
                sink.append(step())
            log(
                f"{db.kind}: verify round {rnd + 1}/{rounds}: audit {verify_s[-1]:.2f} s, "
                f"leaf floor {floor_s[-1]:.2f} s, tree floor {tree_s[-1]:.2f} s"
            )
    finally:
        runtime.close()
        ours.send("stop")
        floors.join(30)
    return verify_s, floor_s, tree_s


# -- report --------------------------------------------------------------------------------------


def _count(n: int) -> str:
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n // 1_000}k" if n % 1_000 == 0 else f"{n:,}"


def _spread(values: Sequence[float], fmt: str) -> str:
    return f"{statistics.median(values):{fmt}} [{min(values):{fmt}}-{max(values):{fmt}}]"


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def _percentile(values: Sequence[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def append_rows(kind: str, results: list[AppendResult]) -> list[list[str]]:
    rows = []
    for r in results:
        rate = statistics.median(r.real)
        rows.append(
            [
                kind,
                f"appends/s, {r.procs} proc, {r.batch}/commit",
                _spread(r.real, ",.0f"),
                _spread(r.floor, ",.0f"),
                _spread(r.ratios, ".2f"),
                f">= {APPEND_TARGET:,}/s {_verdict(rate >= APPEND_TARGET)}",
            ]
        )
    return rows


def proof_rows(kind: str, n: int, p: ProofResult) -> list[list[str]]:
    rows = []
    for name, ms in (("inclusion", p.inclusion_ms), ("consistency", p.consistency_ms)):
        p50, p99 = _percentile(ms, 50), _percentile(ms, 99)
        rows.append(
            [
                kind,
                f"{name} proof at {_count(n)}, p50 / p99 ms",
                f"{p50:.2f} / {p99:.2f}",
                "-",
                "-",
                f"p99 < {PROOF_TARGET_MS:g} ms {_verdict(p99 < PROOF_TARGET_MS)}",
            ]
        )
    return rows


def verify_row(kind: str, n: int, verify_s: list[float], floor_s: list[float], what: str) -> list[str]:
    ratio = statistics.median(floor_s) / statistics.median(verify_s)
    return [
        kind,
        f"verify {_count(n)} entries vs {what}, s",
        _spread(verify_s, ".2f"),
        _spread(floor_s, ".2f"),
        f"{ratio:.2f}",
        f">= {VERIFY_TARGET:.2f} {_verdict(ratio >= VERIFY_TARGET)}",
    ]


def render(title: str, rows: list[list[str]], notes: list[str]) -> str:
    header = ["database", "measure", "pds", "floor", "floor ratio", "target"]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [title] + [
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [header, *rows]
    ]
    return "\n".join([*lines, "", *notes])


NOTES = [
    "appends: events.append_events (records.read of a 20-record page: pseudonym, commitment, sealed details)",
    "  through run_transaction, N events per commit, from 1 or 4 spawned processes started together;",
    "  floor = executemany of the same rows (entry, detail, nodes; random bytes of the same sizes) into bare",
    "  copies of the ledger tables, one commit per batch, same processes. ratio = real / floor, per rep.",
    "proofs: store.prove_inclusion(random position, latest size) and store.prove_consistency(random sizes),",
    "  one open read session, each sample a whole call with its query; no floor, the target is absolute.",
    "verify: audit() (pds ledger verify) vs two floors, leaves already in a list: hashlib.sha256(leaf)",
    "  over the same leaves in one Python loop; and the hashing verify cannot avoid, the RFC 9162 leaf and",
    "  node hashes in one loop. ratio = floor time / verify time (medians).",
]


def bench_database(kind: str, args: argparse.Namespace, folder: Path) -> tuple[list[list[str]], str]:
    rows: list[list[str]] = []
    with database(kind, folder, "appends", bench="ledger") as db:
        version = server_version(db)
        if args.appends:
            rows += append_rows(kind, bench_appends(db, args.appends, args.reps))
    if kind == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(f"{folder / 'appends.db'}{suffix}").unlink(missing_ok=True)
    with database(kind, folder, "log", bench="ledger") as db:
        log(f"{kind}: building a {args.entries:,}-entry log")
        sizes = build_log(db, args.entries)
        log(f"{kind}: proofs: {PROOF_SAMPLES:,} inclusion and {PROOF_SAMPLES:,} consistency")
        proofs = bench_proofs(db, args.entries)
        log(f"{kind}: {proofs.checked} proofs checked with consent.ledger.verify")
        rows += proof_rows(kind, args.entries, proofs)
        verify_s, floor_s, tree_s = bench_verify(db, args.entries, len(sizes), args.verify_rounds)
        rows.append(verify_row(kind, args.entries, verify_s, floor_s, "leaf hashes"))
        rows.append(verify_row(kind, args.entries, verify_s, tree_s, "leaf+node hashes"))
    return rows, version


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--entries", type=int, default=1_000_000, help="size of the log for proofs and verify"
    )
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--appends", type=int, default=10_000, help="events per batched append run (0: skip)")
    parser.add_argument("--reps", type=int, default=3, help="interleaved repetitions of each append run")
    parser.add_argument(
        "--verify-rounds", type=int, default=VERIFY_ROUNDS, help="interleaved rounds of verify and its floors"
    )
    args = parser.parse_args(argv)
    if args.entries < 10 or args.reps < 1 or args.appends < 0 or args.verify_rounds < 1:
        parser.error("--entries must be at least 10, --reps and --verify-rounds at least 1")
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    rows: list[list[str]] = []
    versions = []
    folder = Path(tempfile.mkdtemp(prefix="pds-bench-ledger-"))
    try:
        for kind in kinds:
            db_rows, version = bench_database(kind, args, folder)
            rows += db_rows
            versions.append(version)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    versions += [
        f"Python {sys.version.split()[0]}",
        f"SQLAlchemy {sqlalchemy.__version__}",
        f"psycopg {psycopg.__version__}",
    ]
    title = f"pds ledger benchmark  ({os.cpu_count()} vCPU; {args.reps} interleaved reps; median [min-max])"
    print(render(title, rows, [*NOTES, "versions: " + ", ".join(versions), load_note()]))


if __name__ == "__main__":
    main()
