"""Pull: fetch what a source has that pds has not, store it, and move the connector's cursor.

Open311 sources are pulled over HTTP (`requests.json` and `servicerequestupdates.json` in windows of
`start_date`/`end_date`, the cursor being the last `updated_datetime` seen). A drop folder (any kind) is
read file by file in name order, the cursor being the last file taken. Each window or file is one
delivery, in its own transaction; a failure stops the run with the cursor at the last delivery stored.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from connectors.ingest import Delivered, deliver
from connectors.models import ConnectorState
from connectors.registry import SOURCE_KIND, parser_for
from pds.db import utcnow
from pds.settings import ConnectorSettings
from pds.vault import Vault

WINDOW = dt.timedelta(days=90)  # the longest start_date/end_date span GeoReport v2 allows
FIRST_PULL = dt.timedelta(days=365)  # how far back a connector's first pull reaches
HTTP_TIMEOUT_S = 30
USER_AGENT = "pds-connector/1"


class SyncFailed(Exception):
    """A pull could not finish; the message says why, and the cursor stays where it was."""


@dataclass
class Batch:
    """One delivery of a pull, and the cursor to keep once it is stored."""

    label: str
    body: bytes
    media_type: str
    cursor: str


@dataclass
class SyncReport:
    name: str
    deliveries: int = 0
    counts: dict[str, int] = field(default_factory=lambda: {"stored": 0, "updated": 0, "unchanged": 0})
    cursor: str = ""

    def add(self, delivered: Delivered) -> None:
        self.deliveries += 1
        self.counts["stored"] += len(delivered.stored)
        self.counts["updated"] += len(delivered.updated)
        self.counts["unchanged"] += len(delivered.unchanged)


def plan(
    connector: ConnectorSettings, cursor: str, now: dt.datetime | None = None
) -> list[Callable[[], Batch]]:
    """The deliveries a pull will fetch, each a callable that fetches it (so progress can be shown)."""
    if connector.folder:
        return [lambda p=p: _file_batch(p) for p in _new_files(Path(connector.folder), cursor)]
    if connector.url and connector.kind == "open311":
        return [lambda w=w: _open311_batch(connector, *w) for w in _windows(cursor, now or utcnow())]
    if connector.url and connector.kind == "oneroster":
        return [lambda: _oneroster_batch(connector, cursor)]
    if connector.url:
        return [lambda: _document_batch(connector)]
    raise SyncFailed(f"{connector.name} has no url or folder to pull from (it takes pushes only)")


def run(
    sessions: sessionmaker[Session],
    open_vault: Callable[[Session], Vault],
    connector: ConnectorSettings,
    *,
    progress: Callable[[int], None] | None = None,
) -> SyncReport:
    """Pull everything new from one connector. Raises SyncFailed (after recording why) on any failure."""
    with sessions() as session, session.begin():
        state = session.get(ConnectorState, connector.name) or ConnectorState(name=connector.name)
        cursor = state.cursor
    report = SyncReport(connector.name, cursor=cursor)
    try:
        fetches = plan(connector, cursor)
        parser = parser_for(connector)
        for fetch in fetches:
            batch = fetch()
            with sessions() as session, session.begin():
                vault = open_vault(session)
                vault.sources.ensure(connector.name, kind=SOURCE_KIND[connector.kind], title=connector.title)
                items = parser.parse(batch.body, media_type=batch.media_type)
                delivered = deliver(vault, connector.name, items, actor=f"connector:{connector.name}")
                _save(session, connector.name, cursor=batch.cursor, error="", counts=report.counts, ok=True)
            report.add(delivered)
            report.cursor = batch.cursor
            if progress is not None:
                progress(1)
    except Exception as exc:
        reason = _reason(exc)
        with sessions() as session, session.begin():
            _save(session, connector.name, cursor=None, error=reason, counts=report.counts, ok=False)
        raise SyncFailed(f"sync {connector.name}: {reason}") from None
    with sessions() as session, session.begin():
        _save(session, connector.name, cursor=report.cursor, error="", counts=report.counts, ok=True)
    return report


def _save(
    session: Session, name: str, *, cursor: str | None, error: str, counts: dict[str, int], ok: bool
) -> None:
    state = session.get(ConnectorState, name)
    if state is None:
        state = ConnectorState(name=name)
        session.add(state)
    now = utcnow()
    state.last_run_at = now
    if ok:
        state.last_success_at = now
    if cursor is not None:
        state.cursor = cursor
    state.last_error = error
    state.last_counts = json.dumps(counts)


def _reason(exc: Exception) -> str:
    from pds.errors import PdsError

    if isinstance(exc, SyncFailed):
        return str(exc)
    if isinstance(exc, PdsError):
        return f"the source sent a delivery pds refuses: {exc.detail}"
    return f"{type(exc).__name__}: {exc}"


# -- drop folders ----------------------------------------------------------------------------------


def _new_files(folder: Path, cursor: str) -> list[Path]:
    if not folder.is_dir():
        raise SyncFailed(f"the drop folder {folder} does not exist")
    return sorted(
        p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".") and p.name > cursor
    )


def _file_batch(path: Path) -> Batch:
    media = "application/zip" if path.suffix == ".zip" else "application/json"
    return Batch(path.name, path.read_bytes(), media, path.name)


# -- HTTP --------------------------------------------------------------------------------------------


def _windows(cursor: str, now: dt.datetime) -> Iterator[tuple[dt.datetime, dt.datetime]]:
    """start_date/end_date windows of at most 90 days, from the cursor (or a year back) to now."""
    try:
        start = dt.datetime.fromisoformat(cursor) if cursor else now - FIRST_PULL
    except ValueError:
        raise SyncFailed(f"the stored cursor {cursor!r} is not a date-time: reset it") from None
    while start < now:
        end = min(start + WINDOW, now)
        yield start, end
        start = end


def _get(connector: ConnectorSettings, path: str, params: dict[str, str]) -> bytes:
    query = dict(params)
    if connector.api_key_env:
        key = os.environ.get(connector.api_key_env)
        if not key:
            raise SyncFailed(f"the API key variable {connector.api_key_env} is not set")
        query["api_key"] = key
    url = connector.url.rstrip("/") + "/" + path + ("?" + urllib.parse.urlencode(query) if query else "")
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, "Accept": "application/json"})  # noqa: S310 (http(s) only: checked in settings)
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:  # noqa: S310
            body: bytes = response.read(connector.max_bytes + 1)
    except urllib.error.HTTPError as exc:
        raise SyncFailed(f"{connector.url} answered {exc.code} {exc.reason} for {path}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SyncFailed(f"cannot reach {connector.url}: {reason}") from None
    if len(body) > connector.max_bytes:
        raise SyncFailed(f"{path} is larger than {connector.max_bytes} bytes")
    return body


def _open311_batch(connector: ConnectorSettings, start: dt.datetime, end: dt.datetime) -> Batch:
    window = {"start_date": _w3c(start), "end_date": _w3c(end)}
    requests = json.loads(_get(connector, "requests.json", window) or b"[]")
    updates = json.loads(_get(connector, "servicerequestupdates.json", window) or b"[]")
    body = json.dumps({"service_requests": requests, "updates": updates}).encode()
    return Batch(f"{window['start_date']} to {window['end_date']}", body, "application/json", end.isoformat())


# OneRoster 1.2 REST: reference collections whole (a delivery is self-contained), and the records that
# change (results, and the pds extension's attendance and behaviour) only since the cursor.
ONEROSTER_REFERENCE = {
    "users": "ims/oneroster/rostering/v1p2/users",
    "classes": "ims/oneroster/rostering/v1p2/classes",
    "categories": "ims/oneroster/gradebook/v1p2/categories",
    "lineItems": "ims/oneroster/gradebook/v1p2/lineItems",
}
ONEROSTER_CHANGING = {
    "results": "ims/oneroster/gradebook/v1p2/results",
    "attendance": "ims/oneroster/pds/v1p2/attendance",
    "behaviour": "ims/oneroster/pds/v1p2/behaviour",
}
PAGE = 100


def _oneroster_batch(connector: ConnectorSettings, cursor: str) -> Batch:
    doc: dict[str, list[Any]] = {}
    for key, path in ONEROSTER_REFERENCE.items():
        doc[key] = _oneroster_pages(connector, path, key, None)
    newest = cursor
    for key, path in ONEROSTER_CHANGING.items():
        doc[key] = _oneroster_pages(connector, path, key, f"dateLastModified>'{cursor}'" if cursor else None)
        for row in doc[key]:
            stamp = row.get("dateLastModified") if isinstance(row, dict) else None
            if isinstance(stamp, str) and stamp > newest:
                newest = stamp
    return Batch(connector.url, json.dumps(doc).encode(), "application/json", newest)


def _oneroster_pages(connector: ConnectorSettings, path: str, key: str, where: str | None) -> list[Any]:
    """Every page of one collection (limit/offset), as OneRoster 1.2 REST pages them."""
    rows: list[Any] = []
    while True:
        params = {"limit": str(PAGE), "offset": str(len(rows))}
        if where:
            params["filter"] = where
        body = json.loads(_get(connector, path, params) or b"{}")
        page = body.get(key) if isinstance(body, dict) else None
        if not isinstance(page, list):
            raise SyncFailed(f"{connector.url}/{path} did not answer with a {key!r} collection")
        rows.extend(page)
        if len(page) < PAGE:
            return rows


def _document_batch(connector: ConnectorSettings) -> Batch:
    media = "application/fhir+json" if connector.kind == "fhir" else "application/json"
    now = utcnow().isoformat()
    return Batch(connector.url, _get(connector, "", {}), media, now)


def _w3c(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
