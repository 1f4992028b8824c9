"""Several processes putting overlapping batches at once lose nothing and keep the newest version."""

from __future__ import annotations

import multiprocessing
import uuid
from pathlib import Path

from sqlalchemy import select

from pds.db import run_transaction
from pds.runtime import Runtime
from pds.vault.models import Record
from tests.conftest import add_citizen, make_settings, record

WORKERS = 4
RECORDS_PER_WORKER = 120
SHARED = 40  # source ids every worker writes, each with its own version
BATCH = 20


def _worker(db_url: str, keys_dir: str, citizens: list[str], worker: int) -> None:
    rt = Runtime.build(make_settings(db_url, Path(keys_dir)))
    own = [
        record(uuid.UUID(citizens[i % len(citizens)]), f"w{worker}-r{i}") for i in range(RECORDS_PER_WORKER)
    ]
    shared = [
        record(uuid.UUID(citizens[i % len(citizens)]), f"shared-{i}", version=worker + 1, by=worker)
        for i in range(SHARED)
    ]
    mixed = [r for pair in zip(own[:SHARED], shared, strict=True) for r in pair] + own[SHARED:]
    for start in range(0, len(mixed), BATCH):
        batch = mixed[start : start + BATCH]
        run_transaction(rt.sessions, lambda s, b=batch: rt.open_vault(s).records.put(b))
    rt.close()


def test_concurrent_puts_from_several_processes_lose_nothing(
    runtime: Runtime, source: str, db_url: str, keys_dir: Path
) -> None:
    citizens = [str(add_citizen(runtime, f"Person {i}")) for i in range(5)]
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(db_url, str(keys_dir), citizens, w)) for w in range(WORKERS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0] * WORKERS

    with runtime.sessions() as s:
        ids = s.scalars(select(Record.source_record_id)).all()
        rows = s.execute(
            select(Record.source_record_id, Record.version).where(Record.source_record_id.like("shared-%"))
        )
        shared_versions = dict(rows.all())
    assert len(ids) == len(set(ids)) == WORKERS * RECORDS_PER_WORKER + SHARED
    assert set(shared_versions.values()) == {WORKERS}  # the highest version won everywhere
    with runtime.vault() as v:
        for cid in citizens[:2]:
            for r in v.records.export(uuid.UUID(cid)):
                if r.source_record_id.startswith("shared-"):
                    assert r.payload["by"] == WORKERS - 1
