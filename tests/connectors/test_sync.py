"""`pds connectors sync` pulls over real HTTP from a local Open311 server, and from a drop folder."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from pds.runtime import Runtime
from tests.conftest import CONFIG

PDS = str(Path(sys.executable).with_name("pds"))
SAMPLES = Path(__file__).resolve().parents[2] / "connectors" / "samples" / "open311"


class Open311Server:
    """GeoReport v2 with the FixMyStreet updates call, over the council sample, filtered by date window."""

    def __init__(self) -> None:
        doc = json.loads((SAMPLES / "council.json").read_text())
        self.requests, self.updates = doc["service_requests"], doc["updates"]
        self.asked: list[tuple[str, str, str]] = []
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def app(self, environ, start_response):  # type: ignore[no-untyped-def]
        req = Request(environ)
        start, end = req.args["start_date"], req.args["end_date"]
        self.asked.append((req.path, start, end))
        low, high = _when(start), _when(end)
        if req.path == "/requests.json":
            rows = [r for r in self.requests if low <= _when(r["requested_datetime"]) < high]
        elif req.path == "/servicerequestupdates.json":
            rows = [u for u in self.updates if low <= _when(u["updated_datetime"]) < high]
        else:
            return Response(json.dumps([{"code": 404, "description": "no such call"}]), 404)(
                environ, start_response
            )
        return Response(json.dumps(rows), mimetype="application/json")(environ, start_response)


def _when(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture
def source() -> Iterator[Open311Server]:
    server = Open311Server()
    server.thread.start()
    yield server
    server.server.shutdown()


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "config.toml").write_text(CONFIG.read_text())
    return tmp_path


def pds(workdir: Path, runtime: Runtime, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {
        **os.environ,
        "PDS_DATABASE_URL": runtime.settings.database.url,
        "PDS_KEYS_DIR": runtime.settings.keys.dir,
        **env,
    }
    environ.pop("PDS_CONFIG", None)
    return subprocess.run([PDS, *args], cwd=workdir, env=environ, capture_output=True, text=True, timeout=120)


def status(workdir: Path, runtime: Runtime, name: str, **env: str) -> dict:
    out = pds(workdir, runtime, "connectors", "status", "--json", **env)
    assert out.returncode == 0, out.stderr
    return next(row for row in json.loads(out.stdout) if row["name"] == name)


def test_sync_pulls_over_http_then_only_what_is_new(
    workdir: Path, runtime: Runtime, source: Open311Server
) -> None:
    with runtime.vault() as v:
        alice = v.citizens.add(name="Alice Example", date_of_birth="1985-04-02").id
        v.citizens.add_identifier(alice, "council_account", "EBC-100234")
    env = {"PDS_CONNECTORS_DEMO_COUNCIL_URL": source.url}
    first = pds(workdir, runtime, "connectors", "sync", "demo-council", **env)
    assert first.returncode == 0, first.stderr
    assert "demo-council: " in first.stdout and ", 3 stored, 0 updated, 0 unchanged; cursor " in first.stdout
    with runtime.vault() as v:
        kinds = sorted(r.kind for r in v.records.list(alice).items)
    assert kinds == ["open311:request", "open311:update", "open311:update"]
    state = status(workdir, runtime, "demo-council", **env)
    assert state["cursor"] and state["last_error"] == "" and state["last_counts"]["stored"] == 3
    assert state["pulls_from"] == source.url

    pulled = len(source.asked)
    second = pds(workdir, runtime, "connectors", "sync", "demo-council", **env)
    assert second.returncode == 0, second.stderr
    assert ", 0 stored, 0 updated, 0 unchanged" in second.stdout
    # incremental: the second run asked only from where the first left off
    assert source.asked[pulled][1] == dt.datetime.fromisoformat(state["cursor"]).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    assert len(source.asked) - pulled == 2  # one window: requests and updates


def test_a_source_that_is_down_fails_clearly_and_keeps_the_cursor(
    workdir: Path, runtime: Runtime, source: Open311Server
) -> None:
    with runtime.vault() as v:
        alice = v.citizens.add(name="Alice Example", date_of_birth="1985-04-02").id
        v.citizens.add_identifier(alice, "council_account", "EBC-100234")
    up = {"PDS_CONNECTORS_DEMO_COUNCIL_URL": source.url}
    assert pds(workdir, runtime, "connectors", "sync", "demo-council", **up).returncode == 0
    cursor = status(workdir, runtime, "demo-council", **up)["cursor"]
    source.server.shutdown()
    source.server.server_close()
    down = {"PDS_CONNECTORS_DEMO_COUNCIL_URL": source.url}
    failed = pds(workdir, runtime, "connectors", "sync", "demo-council", **down)
    assert failed.returncode == 1
    assert f"error: sync demo-council: cannot reach {source.url}" in failed.stderr
    state = status(workdir, runtime, "demo-council", **down)
    assert state["cursor"] == cursor and state["last_error"].startswith("cannot reach")


def test_a_drop_folder_is_read_file_by_file(workdir: Path, runtime: Runtime, tmp_path: Path) -> None:
    with runtime.vault() as v:
        alice = v.citizens.add(name="Alice Example", date_of_birth="1985-04-02").id
        v.citizens.add_identifier(alice, "crime_reference", "EC-26-118734")
    folder = tmp_path / "drop"
    folder.mkdir()
    shutil.copy(SAMPLES / "police.json", folder / "0001-requests.json")
    env = {"PDS_CONNECTORS_DEMO_POLICE_FOLDER": str(folder)}
    first = pds(workdir, runtime, "connectors", "sync", "demo-police", **env)
    assert first.returncode == 0, first.stderr
    assert "1 deliveries, 1 stored" in first.stdout and "cursor 0001-requests.json" in first.stdout
    shutil.copy(SAMPLES / "police-updates.json", folder / "0002-updates.json")
    second = pds(workdir, runtime, "connectors", "sync", "demo-police", **env)
    assert "1 deliveries, 2 stored" in second.stdout and "cursor 0002-updates.json" in second.stdout
    (folder / "0003-broken.json").write_text("[{")
    broken = pds(workdir, runtime, "connectors", "sync", "demo-police", **env)
    assert broken.returncode == 1 and "the source sent a delivery pds refuses" in broken.stderr
    assert status(workdir, runtime, "demo-police", **env)["cursor"] == "0002-updates.json"
    with runtime.vault() as v:
        assert len(v.records.list(alice).items) == 3


def test_sync_names_what_it_cannot_do(workdir: Path, runtime: Runtime) -> None:
    unknown = pds(workdir, runtime, "connectors", "sync", "nowhere")
    assert unknown.returncode == 1 and unknown.stderr.startswith("error: no connector is called 'nowhere'")
    push_only = pds(workdir, runtime, "connectors", "sync", "demo-gp")
    assert push_only.returncode == 1
    assert (
        "error: sync demo-gp: demo-gp has no url or folder to pull from (it takes pushes only)"
        in push_only.stderr
    )


ONEROSTER = Path(__file__).resolve().parents[2] / "connectors" / "samples" / "oneroster" / "sam.rest.json"
PATHS = {
    "/ims/oneroster/rostering/v1p2/users": "users",
    "/ims/oneroster/rostering/v1p2/classes": "classes",
    "/ims/oneroster/gradebook/v1p2/categories": "categories",
    "/ims/oneroster/gradebook/v1p2/lineItems": "lineItems",
    "/ims/oneroster/gradebook/v1p2/results": "results",
    "/ims/oneroster/pds/v1p2/attendance": "attendance",
    "/ims/oneroster/pds/v1p2/behaviour": "behaviour",
}


class OneRosterServer:
    """OneRoster 1.2 REST over the sample, with limit/offset paging and the dateLastModified filter."""

    def __init__(self) -> None:
        self.doc = json.loads(ONEROSTER.read_text())
        self.filters: list[str] = []
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def app(self, environ, start_response):  # type: ignore[no-untyped-def]
        req = Request(environ)
        key = PATHS.get(req.path)
        if key is None:
            return Response("{}", 404, mimetype="application/json")(environ, start_response)
        rows = self.doc.get(key, [])
        where = req.args.get("filter", "")
        if where:
            self.filters.append(where)
            since = where.split(">", 1)[1].strip("'")
            rows = [r for r in rows if r["dateLastModified"] > since]
        offset, limit = int(req.args.get("offset", 0)), int(req.args.get("limit", 100))
        page = rows[offset : offset + limit]
        return Response(json.dumps({key: page}), mimetype="application/json")(environ, start_response)


def test_oneroster_is_pulled_over_rest_then_only_what_changed(workdir: Path, runtime: Runtime) -> None:
    server = OneRosterServer()
    try:
        with runtime.vault() as v:
            sam = v.citizens.add(name="Sam Example", date_of_birth="2014-09-01").id
            v.citizens.add_identifier(sam, "upn", "F201200124001")
        env = {"PDS_CONNECTORS_DEMO_SCHOOL_URL": server.url}
        first = pds(workdir, runtime, "connectors", "sync", "demo-school", **env)
        assert first.returncode == 0, first.stderr
        with runtime.vault() as v:
            kinds = [r.kind for r in v.records.list(sam, limit=100).items]
        assert kinds.count("oneroster:result") == 2 and kinds.count("attendance:session") == 10
        assert kinds.count("behaviour:event") == 2
        cursor = status(workdir, runtime, "demo-school", **env)["cursor"]
        newest = max(
            r["dateLastModified"] for k in ("results", "attendance", "behaviour") for r in server.doc[k]
        )
        assert cursor == newest

        server.doc["results"][0]["score"] = 28  # the teacher corrects a mark
        server.doc["results"][0]["dateLastModified"] = "2026-11-25T16:00:00Z"
        second = pds(workdir, runtime, "connectors", "sync", "demo-school", **env)
        assert second.returncode == 0, second.stderr
        assert "1 deliveries, 0 stored, 1 updated, 0 unchanged" in second.stdout
        assert server.filters[-1] == f"dateLastModified>'{cursor}'"  # only what changed was asked for
    finally:
        server.server.shutdown()


def test_every_kind_syncs_from_the_demo_source_systems(workdir: Path, runtime: Runtime) -> None:
    import socket
    import time

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [PDS, "connectors", "demo-sources", "--port", str(port)],
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with runtime.vault() as v:
            alice = v.citizens.add(name="Alice Okafor", date_of_birth="1984-06-02").id
            v.citizens.add_identifier(alice, "council_account", "EBC-100234")
            v.citizens.add_identifier(alice, "crime_reference", "EC-26-118734")
            sam = v.citizens.add(name="Sam Okafor", date_of_birth="2015-03-14").id
            v.citizens.add_identifier(sam, "upn", "F201200124001")
            bob = v.citizens.add(name="Bob Patel", date_of_birth="1957-11-20", nhs_number="9990000034").id
        base = f"http://127.0.0.1:{port}"
        env = {
            "PDS_CONNECTORS_DEMO_GP_URL": f"{base}/gp",
            "PDS_CONNECTORS_DEMO_SCHOOL_URL": f"{base}/school",
            "PDS_CONNECTORS_DEMO_COUNCIL_URL": f"{base}/council",
            "PDS_CONNECTORS_DEMO_POLICE_URL": f"{base}/police",
        }
        for _ in range(100):  # until the source systems answer
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                time.sleep(0.1)
        first = pds(workdir, runtime, "connectors", "sync", **env)
        assert first.returncode == 0, first.stderr
        lines = {line.split(":")[0]: line for line in first.stdout.splitlines()}
        assert set(lines) == {"demo-gp", "demo-school", "demo-council", "demo-police"}
        assert all(" 0 stored" not in line for line in lines.values()), lines
        with runtime.vault() as v:
            assert {r.kind for r in v.records.list(bob, limit=100).items} >= {
                "fhir:Condition",
                "fhir:Observation",
            }
            assert any(r.kind == "oneroster:result" for r in v.records.list(sam, limit=100).items)
            assert len(v.records.list(alice, categories=["case"], limit=100).items) == 6
        second = pds(workdir, runtime, "connectors", "sync", **env)
        assert second.returncode == 0, second.stderr
        assert all(" 0 stored, 0 updated" in line for line in second.stdout.splitlines()), second.stdout
    finally:
        server.terminate()
        server.wait(timeout=10)
