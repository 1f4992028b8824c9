"""pds connector benchmark: records/s through each connector (FHIR, OneRoster, Open311) beside the vault.

    .venv/bin/python bench/connector_ingest.py [--records 5000] [--db sqlite|postgres|both] [--reps 3]

Prints one table on stdout and its progress on stderr. bench/README.md ("The connector benchmark") says
what each line measures and how to read it.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import gc
import json
import os
import random
import secrets
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy
from sqlalchemy import text
from throwaway import REPO, Db, database, load_note, log, open_runtime, server_version

from connectors.base import Item, Parser
from connectors.fhir import FhirParser
from connectors.ingest import RECORD_LINK, deliver
from connectors.oneroster import OneRosterParser
from connectors.open311 import Open311Parser
from pds.runtime import Runtime
from pds.vault import NewRecord
from pds.vault.identifiers import NHS_WEIGHTS, UPN_LETTERS, nhs_number_ok, normalise, upn_ok

SAMPLES = REPO / "connectors" / "samples"

CITIZENS = 50
DELIVERY_RECORDS = 1_000  # OneRoster and Open311: records per delivery (a school's or council's push)
RESULT_SHARE = 0.4  # OneRoster: results; the rest of a delivery is attendance marks
REQUEST_SHARE = 0.25  # Open311: service requests; the rest are updates to them (3 per request)
WARMUP_SHARE = 10  # the discarded warm-up of each variant stores 1/10 of --records (at least 1 per citizen)
KINDS = ("fhir", "oneroster", "open311")
SOURCES = {  # kind -> (source name, title), as a [connectors.NAME] table would give them
    "fhir": ("bench-gp", "Bench surgery (GP Connect STU3)"),
    "oneroster": ("bench-school", "Bench academy (OneRoster 1.2)"),
    "open311": ("bench-council", "Bench borough council (Open311)"),
}
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
SCHOOL_START = dt.date(2024, 9, 2)  # attendance codes apply from 19 August 2024
# -- citizens ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Citizen:
    id: uuid.UUID
    nhs_number: str
    upn: str
    account: str


def nhs_numbers(n: int) -> list[str]:
    """Valid NHS numbers from the 999 range, which is never issued."""
    out: list[str] = []
    k = 0
    while len(out) < n:
        stem = f"999{k:06d}"
        k += 1
        check = 11 - sum(int(d) * w for d, w in zip(stem, NHS_WEIGHTS, strict=True)) % 11
        check = 0 if check == 11 else check
        if check != 10:
            out.append(stem + str(check))
    assert all(nhs_number_ok(x) for x in out)
    return out


def upns(n: int) -> list[str]:
    """Valid UPNs: LA 999 (none has that number), establishment 9001, year 15, serial, check letter first."""
    out = []
    for k in range(n):
        body = f"9999001150{k:02d}" if k < 100 else f"999900115{k:03d}"
        total = sum(int(c) * w for c, w in zip(body, range(2, 14), strict=True))
        out.append(UPN_LETTERS[total % 23] + body)
    assert all(upn_ok(x) for x in out) and len(set(out)) == n
    return out


def add_citizens(db: Db) -> list[Citizen]:
    runtime = open_runtime(db)
    citizens = []
    try:
        with runtime.vault() as v:
            for kind, (source, title) in SOURCES.items():
                v.sources.ensure(source, kind=kind, title=title)
            for i, (nhs, upn) in enumerate(zip(nhs_numbers(CITIZENS), upns(CITIZENS), strict=True)):
                born = f"{2008 + i % 10}-0{1 + i % 9}-1{i % 10}"
                cid = v.citizens.add(name=f"Bench Citizen {i}", date_of_birth=born, nhs_number=nhs).id
                account = f"EBC-{200_000 + i}"
                v.citizens.add_identifier(cid, "upn", upn)
                v.citizens.add_identifier(cid, "council_account", account)
                citizens.append(Citizen(cid, nhs, upn, account))
    finally:
        runtime.close()
    return citizens


# -- deliveries ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    body: bytes
    records: int
    citizens: int  # whose vaults it changes: one ledger entry each


def _split(n: int, parts: int) -> list[int]:
    return [n // parts + (1 if i < n % parts else 0) for i in range(parts)]


def _chunks(n: int, size: int) -> list[int]:
    return [min(size, n - start) for start in range(0, n, size)]


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).isoformat(timespec="seconds")


def _past(rng: random.Random, days_back: tuple[int, int]) -> dt.datetime:
    when = NOW - dt.timedelta(days=rng.randint(*days_back), minutes=rng.randint(0, 24 * 60 - 1))
    return when.replace(second=0)


class FhirWorkload:
    """One GP Connect STU3 collection Bundle per patient, from samples/fhir/gp-connect-bob.stu3.json:
    Bob's Bundle shell, Patient (new id, NHS number, name), Organization, Practitioner, PractitionerRole,
    then his 3 Conditions and 3 Observations in turn, each with a fresh id and past dates."""

    def __init__(self) -> None:
        bundle = json.loads((SAMPLES / "fhir" / "gp-connect-bob.stu3.json").read_bytes())
        self.shell = {k: v for k, v in bundle.items() if k != "entry"}
        resources = [e["resource"] for e in bundle["entry"]]
        self.patient = next(r for r in resources if r["resourceType"] == "Patient")
        staff = ("Organization", "Practitioner", "PractitionerRole")
        self.staff = [r for r in resources if r["resourceType"] in staff]
        self.clinical = [r for r in resources if r["resourceType"] in ("Condition", "Observation")]

    def make(self, citizens: Sequence[Citizen], n: int, rng: random.Random) -> list[Delivery]:
        out = []
        for i, (c, count) in enumerate(zip(citizens, _split(n, len(citizens)), strict=True)):
            if count == 0:
                continue
            patient = copy.deepcopy(self.patient)
            pid = str(uuid.uuid4())
            patient["id"] = pid
            patient["identifier"][0]["value"] = c.nhs_number
            patient["name"][0].update(text=f"CITIZEN Bench {i} (Mx)", family="Citizen", given=["Bench"])
            entries = [{"resource": patient}, *({"resource": r} for r in self.staff)]
            for k in range(count):
                entries.append({"resource": self._clinical(self.clinical[k % len(self.clinical)], pid, rng)})
            body = json.dumps({**self.shell, "entry": entries}).encode()
            out.append(Delivery(body, count, 1))
        return out

    @staticmethod
    def _clinical(template: dict[str, Any], pid: str, rng: random.Random) -> dict[str, Any]:
        r = copy.deepcopy(template)
        r["id"] = str(uuid.uuid4())
        r["subject"] = {"reference": f"Patient/{pid}"}
        when = _past(rng, (30, 8 * 365))
        if r["resourceType"] == "Condition":
            r["onsetDateTime"] = when.date().isoformat()
            r["assertedDate"] = _iso(when)
            if "abatementDateTime" in r:
                r["abatementDateTime"] = (when + dt.timedelta(days=rng.randint(1, 29))).date().isoformat()
        else:
            r["effectiveDateTime"] = _iso(when)
            if "issued" in r:
                r["issued"] = _iso(when + dt.timedelta(hours=rng.randint(1, 48)))
        return r


class OneRosterWorkload:
    """One school's push per DELIVERY_RECORDS records, as samples/oneroster/sam.rest.json: users (every pupil
    with a UPN and a parent, and a teacher), a class, two categories, lineItems, then results (RESULT_SHARE:
    each lineItem for every pupil) and attendance marks (the rest: AM and PM sessions of school days)."""

    def __init__(self) -> None:
        self.sample = json.loads((SAMPLES / "oneroster" / "sam.rest.json").read_bytes())
        start, days = SCHOOL_START, []
        while start + dt.timedelta(days=len(days)) < NOW.date() - dt.timedelta(days=1):
            day = start + dt.timedelta(days=len(days))
            days.append(day)
        self.days = [d for d in days if d.weekday() < 5]
        self.made = 0

    def make(self, citizens: Sequence[Citizen], n: int, rng: random.Random) -> list[Delivery]:
        s = self.sample
        pupils = len(citizens)
        out = []
        for size in _chunks(n, DELIVERY_RECORDS):
            tag = f"{self.made:05d}-{secrets.token_hex(3)}"
            self.made += 1
            users = []
            for i, c in enumerate(citizens):
                student, parent = copy.deepcopy(s["users"][0]), copy.deepcopy(s["users"][1])
                student.update(
                    sourcedId=f"usr-{i}", username=f"pupil{i}", givenName="Bench", familyName=f"Pupil{i}"
                )
                student["userIds"] = [
                    {"type": "UPN", "identifier": c.upn},
                    {"type": "MIS", "identifier": str(i)},
                ]
                student["agents"][0].update(sourcedId=f"usr-p-{i}", href=f".../users/usr-p-{i}")
                parent.update(sourcedId=f"usr-p-{i}", username=f"parent{i}", familyName=f"Pupil{i}")
                parent.update(email=f"parent{i}@example.org")
                parent["agents"][0].update(sourcedId=f"usr-{i}", href=f".../users/usr-{i}")
                users += [student, parent]
            users.append(s["users"][2])
            results = int(size * RESULT_SHARE)
            line_items = []
            for k in range(-(-results // pupils)):
                li = copy.deepcopy(s["lineItems"][k % 2])
                set_at = _past(rng, (20, 600))
                li.update(
                    sourcedId=f"li-{tag}-{k}", title=f"{li['title']} {k + 1}", dateLastModified=_iso(set_at)
                )
                li.update(assignDate=_iso(set_at), dueDate=_iso(set_at + dt.timedelta(days=7)))
                line_items.append(li)
            doc: dict[str, Any] = {
                "users": users,
                "classes": s["classes"],
                "categories": s["categories"],
                "lineItems": line_items,
                "results": [self._result(tag, r, pupils, line_items, rng) for r in range(results)],
                "attendance": self._attendance(tag, size - results, pupils, rng),
            }
            touched = min(pupils, max(results, size - results))  # each part names pupils 0, 1, 2, ...
            out.append(Delivery(json.dumps(doc).encode(), size, touched))
        return out

    def _result(
        self, tag: str, r: int, pupils: int, line_items: list[dict[str, Any]], rng: random.Random
    ) -> dict[str, Any]:
        li = line_items[r // pupils]
        pupil = r % pupils
        res = copy.deepcopy(self.sample["results"][0])
        marked = dt.datetime.fromisoformat(li["dueDate"]) + dt.timedelta(days=2)
        res.update(
            sourcedId=f"res-{tag}-{r}", dateLastModified=_iso(marked), scoreDate=marked.date().isoformat()
        )
        res["lineItem"].update(sourcedId=li["sourcedId"])
        res["student"].update(sourcedId=f"usr-{pupil}", href=f".../users/usr-{pupil}")
        res["score"] = rng.randint(0, int(li["resultValueMax"]))
        if r % 3:
            del res["comment"]
        return res

    def _attendance(self, tag: str, n: int, pupils: int, rng: random.Random) -> list[dict[str, Any]]:
        days = -(-n // (2 * pupils))
        first = rng.randrange(len(self.days) - days)
        marks = []
        for k in range(n):
            pupil, slot = k % pupils, k // pupils
            day, session = self.days[first + slot // 2], "AM" if slot % 2 == 0 else "PM"
            mark: dict[str, Any] = {
                "sourcedId": f"att-{tag}-{k}",
                "status": "active",
                "dateLastModified": f"{day.isoformat()}T{'08:52' if session == 'AM' else '13:35'}:00Z",
                "student": {"sourcedId": f"usr-{pupil}"},
                "date": day.isoformat(),
                "session": session,
                "code": "/" if session == "AM" else "\\",
            }
            if k % 17 == 0:
                mark.update(code="L", minutesLate=rng.randint(3, 25), comment="Bus delayed")
            elif k % 23 == 0:
                mark.update(code="I", comment="Parent phoned: unwell")
            marks.append(mark)
        return marks


class Open311Workload:
    """One council push per DELIVERY_RECORDS records, as samples/open311/council.json: an object with
    service_requests (REQUEST_SHARE, for the citizens' council accounts in turn) and updates (the rest,
    spread over those requests)."""

    def __init__(self) -> None:
        sample = json.loads((SAMPLES / "open311" / "council.json").read_bytes())
        self.request = sample["service_requests"][0]
        self.updates = sample["updates"]
        self.made = 0

    def make(self, citizens: Sequence[Citizen], n: int, rng: random.Random) -> list[Delivery]:
        statuses = ("investigating", "in_progress", "action_scheduled", "fixed", "closed")
        out = []
        for size in _chunks(n, DELIVERY_RECORDS):
            tag = f"{self.made:05d}{secrets.token_hex(3).upper()}"
            self.made += 1
            requests = max(1, int(size * REQUEST_SHARE))
            made_at = []
            reqs = []
            for k in range(requests):
                req = copy.deepcopy(self.request)
                requested = _past(rng, (10, 700))
                made_at.append(requested)
                req.update(
                    service_request_id=f"PP-{tag}-{k:05d}",
                    requested_datetime=_iso(requested),
                    updated_datetime=_iso(requested + dt.timedelta(days=2, hours=7)),
                    expected_datetime=_iso(requested + dt.timedelta(days=14)),
                    account_id=citizens[k % len(citizens)].account,
                )
                reqs.append(req)
            updates = []
            for j in range(size - requests):
                k, step = j % requests, j // requests
                update = copy.deepcopy(self.updates[step % 2])
                update.update(
                    update_id=f"PP-{tag}-{k:05d}-u{step + 1}",
                    service_request_id=f"PP-{tag}-{k:05d}",
                    status=statuses[step % len(statuses)] if step else "open",
                    updated_datetime=_iso(made_at[k] + dt.timedelta(hours=step * 30)),
                )
                updates.append(update)
            body = json.dumps({"service_requests": reqs, "updates": updates}).encode()
            out.append(Delivery(body, size, min(requests, len(citizens))))
        return out


# -- the two variants ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Connector:
    kind: str
    source: str
    title: str
    parser: Parser
    media_type: str
    workload: FhirWorkload | OneRosterWorkload | Open311Workload
    shape: str  # how a rep's records are split into deliveries, for the table


def connectors(n: int) -> list[Connector]:
    per_bundle = n / CITIZENS
    chunks = _chunks(n, DELIVERY_RECORDS)
    first = chunks[0]
    requests = max(1, int(first * REQUEST_SHARE))
    results = int(first * RESULT_SHARE)
    return [
        Connector(
            "fhir",
            *SOURCES["fhir"],
            FhirParser(),
            "application/fhir+json",
            FhirWorkload(),
            f"{min(n, CITIZENS)} STU3 Bundles x {per_bundle:g}",
        ),
        Connector(
            "oneroster",
            *SOURCES["oneroster"],
            OneRosterParser(),
            "application/json",
            OneRosterWorkload(),
            f"{len(chunks)} x ({results} res + {first - results} att)",
        ),
        Connector(
            "open311",
            *SOURCES["open311"],
            Open311Parser(identifier_kind="council_account"),
            "application/json",
            Open311Workload(),
            f"{len(chunks)} x ({requests} req + {first - requests} upd)",
        ),
    ]


SENSITIVE = "sensitive" in NewRecord.__dataclass_fields__  # deliver() passes Item.sensitive where it can


def floor_records(
    conn: Connector, deliveries: list[Delivery], owners: dict[tuple[str, str], uuid.UUID]
) -> list[list[NewRecord]]:
    """What deliver() would hand records.put for these deliveries (parsed here, untimed): same citizens,
    categories, kinds, versions, times and payloads; the deliveries carry their own fresh ids."""
    out = []
    for d in deliveries:
        items: list[Item] = conn.parser.parse(d.body, media_type=conn.media_type)
        by_record: dict[str, uuid.UUID] = {}
        batch = []
        for it in items:
            if it.identifier_kind == RECORD_LINK:
                citizen = by_record[it.identifier]
            else:
                citizen = owners[(it.identifier_kind, normalise(it.identifier_kind, it.identifier))]
            by_record[it.source_record_id] = citizen
            batch.append(
                NewRecord(
                    citizen_id=citizen,
                    category=it.category,
                    kind=it.kind,
                    source=conn.source,
                    source_record_id=it.source_record_id,
                    version=it.version,
                    occurred_at=it.occurred_at,
                    payload=it.payload,
                    **({"sensitive": it.sensitive} if SENSITIVE else {}),
                )
            )
        out.append(batch)
    return out


def run_pds(runtime: Runtime, conn: Connector, deliveries: list[Delivery]) -> tuple[float, int]:
    """What a push does with each delivery: parse, then in one transaction ensure the source and deliver."""
    stored = 0
    start = time.perf_counter()
    for d in deliveries:
        items = conn.parser.parse(d.body, media_type=conn.media_type)
        with runtime.vault() as v:
            v.sources.ensure(conn.source, kind=conn.kind, title=conn.title)
            done = deliver(v, conn.source, items, actor=f"connector:{conn.source}")
        stored += len(done.stored)
    return time.perf_counter() - start, stored


def run_floor(runtime: Runtime, batches: list[list[NewRecord]]) -> tuple[float, int]:
    """The vault's own ingest of the same records: records.put, one transaction per delivery."""
    stored = 0
    start = time.perf_counter()
    for batch in batches:
        with runtime.vault() as v:
            stored += len(v.records.put(batch).stored)
    return time.perf_counter() - start, stored


def ledger_size(runtime: Runtime) -> int:
    with runtime.engine.connect() as c:
        return int(c.execute(text("SELECT count(*) FROM ledger_entry")).scalar_one())


@dataclass
class KindResult:
    pds: list[float]
    floor: list[float]

    @property
    def ratios(self) -> list[float]:
        return [p / f for p, f in zip(self.pds, self.floor, strict=True)]


def one_rep(
    runtime: Runtime, conn: Connector, citizens: list[Citizen], n: int, rng: random.Random, pds_first: bool
) -> tuple[float, float]:
    """One pds run and one floor run of n records each, made beforehand; rates in records/s."""
    owners: dict[tuple[str, str], uuid.UUID] = {}
    for c in citizens:
        owners |= {
            ("nhs_number", c.nhs_number): c.id,
            ("upn", c.upn): c.id,
            ("council_account", c.account): c.id,
        }
    pushes = conn.workload.make(citizens, n, rng)
    batches = floor_records(conn, conn.workload.make(citizens, n, rng), owners)
    gc.collect()
    gc.freeze()  # the pre-made workload is not what either variant should pay the collector for
    try:
        before = ledger_size(runtime)
        steps: list[tuple[str, Callable[[], tuple[float, int]]]] = [
            ("pds", lambda: run_pds(runtime, conn, pushes)),
            ("floor", lambda: run_floor(runtime, batches)),
        ]
        rates = {}
        for name, step in steps if pds_first else steps[::-1]:
            seconds, stored = step()
            if stored != n:
                raise RuntimeError(f"{conn.kind} {name}: stored {stored} records, not {n}")
            rates[name] = n / seconds
        entries = ledger_size(runtime) - before
        wanted = sum(d.citizens for d in pushes)
        if entries != wanted:
            raise RuntimeError(
                f"{conn.kind}: {entries} ledger entries, not {wanted} (one per citizen and delivery)"
            )
    finally:
        gc.unfreeze()
    return rates["pds"], rates["floor"]


def bench_database(kind: str, args: argparse.Namespace, folder: Path) -> tuple[dict[str, KindResult], str]:
    results = {}
    with database(kind, folder, kind, bench="connectors") as db:
        version = server_version(db)
        citizens = add_citizens(db)
        log(f"{kind}: {len(citizens)} citizens with NHS numbers, UPNs and council accounts")
        runtime = open_runtime(db)
        try:
            conns = connectors(args.records)
            rng = random.Random(7)
            warm = max(CITIZENS, args.records // WARMUP_SHARE)
            for conn in conns:
                one_rep(runtime, conn, citizens, warm, rng, True)
                results[conn.kind] = KindResult([], [])
            log(f"{kind}: warm-up done ({warm:,} records of each kind, each variant)")
            for rep in range(args.reps):
                for conn in conns:
                    pds, floor = one_rep(runtime, conn, citizens, args.records, rng, rep % 2 == 0)
                    results[conn.kind].pds.append(pds)
                    results[conn.kind].floor.append(floor)
                    log(
                        f"{kind}: rep {rep + 1}/{args.reps} {conn.kind}: pds {pds:,.0f} rec/s, "
                        f"floor {floor:,.0f} rec/s, ratio {pds / floor:.2f}"
                    )
        finally:
            runtime.close()
    return results, version


# -- report --------------------------------------------------------------------------------------


def _spread(values: Sequence[float], fmt: str) -> str:
    return f"{statistics.median(values):{fmt}} [{min(values):{fmt}}-{max(values):{fmt}}]"


def render(title: str, rows: list[list[str]], notes: list[str]) -> str:
    header = ["kind", "database", "deliveries per rep", "pds records/s", "vault floor records/s", "ratio"]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [title] + [
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [header, *rows]
    ]
    return "\n".join([*lines, "", *notes])


NOTES = [
    "pds: per delivery, the bytes a source would push -> parser.parse (the format's checks; FHIR:",
    "  STU3 structure by the fhir.resources models, conversion to R4 and its re-validation) -> in one",
    "  runtime.vault() transaction, sources.ensure and connectors.ingest.deliver (identifiers matched",
    "  by blind index; records.put: validation, data keys, AES-GCM sealing, insert; one ledger entry",
    "  per citizen touched) -> commit. What a push does, without HTTP and the token check.",
    "floor: the vault's own ingest of the same records: records.put of the NewRecords deliver() would",
    "  build (same citizens, category, kind, version, payload; their own fresh ids), one transaction",
    "  per delivery as above; no parsing, no identifier matching, no ledger. ratio = pds / floor, per rep.",
    "workload: fhir = GP Connect STU3 collection Bundles, one per patient (gp-connect-bob.stu3.json:",
    "  Patient, Organization, Practitioner, PractitionerRole, then its 3 Conditions and 3 Observations",
    "  repeated with fresh ids and past dates); oneroster = JSON pushes of one school (50 pupils with",
    "  UPNs, their parents, a teacher, a class, lineItems; results and attendance marks); open311 = JSON",
    "  pushes of service requests for the 50 council accounts and updates to them (3 per request).",
    "  Every rep and variant stores new records, all made before timing.",
]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--records", type=int, default=5_000, help="records of each kind per rep and variant")
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--reps", type=int, default=3, help="interleaved repetitions")
    args = parser.parse_args(argv)
    if args.records < CITIZENS or args.reps < 1:
        parser.error(f"--records must be at least {CITIZENS}, --reps at least 1")
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    rows: list[list[str]] = []
    versions = []
    shapes = {c.kind: c.shape for c in connectors(args.records)}
    by_db: dict[str, dict[str, KindResult]] = {}
    folder = Path(tempfile.mkdtemp(prefix="pds-bench-connectors-"))
    try:
        for kind in kinds:
            by_db[kind], version = bench_database(kind, args, folder)
            versions.append(version)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    for conn_kind in KINDS:
        for kind in kinds:
            r = by_db[kind][conn_kind]
            rows.append(
                [
                    conn_kind,
                    kind,
                    shapes[conn_kind],
                    _spread(r.pds, ",.0f"),
                    _spread(r.floor, ",.0f"),
                    _spread(r.ratios, ".2f"),
                ]
            )
    versions += [
        f"Python {sys.version.split()[0]}",
        f"SQLAlchemy {sqlalchemy.__version__}",
        f"psycopg {psycopg.__version__}",
        f"fhir.resources {package_version('fhir.resources')}",
        f"pydantic {package_version('pydantic')}",
    ]
    title = (
        f"pds connector benchmark  ({os.cpu_count()} vCPU; {args.records:,} records of each kind per rep; "
        f"{args.reps} interleaved reps; median [min-max])"
    )
    print(render(title, rows, [*NOTES, "versions: " + ", ".join(versions), load_note()]))


if __name__ == "__main__":
    main()
