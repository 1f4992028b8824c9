"""The web app: health, problem+json errors, and `pds serve` answering over real HTTP."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from pds import create_app
from pds.errors import PROBLEM_JSON
from pds.runtime import Runtime, StartupError
from tests.conftest import CONFIG, empty_database, make_settings


@pytest.fixture
def client(runtime: Runtime) -> FlaskClient:
    return create_app(runtime.settings, runtime=runtime).test_client()


def test_healthz_reports_database_and_keys(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "checks": {"database": "ok", "keys": "ok"}}


def test_healthz_fails_when_a_key_goes_missing(runtime: Runtime, client: FlaskClient, keys_dir: Path) -> None:
    with runtime.vault() as v:
        v.citizens.add(name="Someone", date_of_birth="1990-01-01")
    runtime.provider._keks.clear()  # the key vanishes from under a running server
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.mimetype == PROBLEM_JSON
    assert response.json["checks"]["keys"].startswith("fail: key-encryption key kek-0001")


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/nope", 404),
        ("POST", "/healthz", 405),
        ("GET", "/%ff%fe", 404),
        ("DELETE", "/openapi.json", 405),
    ],
)
def test_errors_are_problem_json(client: FlaskClient, method: str, path: str, status: int) -> None:
    response = client.open(path, method=method)
    assert response.status_code == status
    assert response.mimetype == PROBLEM_JSON
    body = response.json
    assert body["status"] == status and body["title"] and body["type"].startswith("/problems/")


def test_openapi_document_describes_the_api(client: FlaskClient) -> None:
    doc = client.get("/openapi.json").json
    assert doc["openapi"].startswith("3.1")
    assert "/healthz" in doc["paths"]
    assert doc["servers"] == [{"url": "http://127.0.0.1:5000"}]


def test_the_app_refuses_to_start_on_an_empty_database(tmp_path: Path, keys_dir: Path) -> None:
    settings = make_settings(f"sqlite:///{tmp_path / 'empty.db'}", keys_dir)
    with pytest.raises(StartupError, match="run `pds init`"):
        create_app(settings)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_pds_serve_answers_over_http(tmp_path: Path, db_url: str) -> None:
    empty_database(db_url)
    (tmp_path / "config.toml").write_text(CONFIG.read_text())
    env = {**os.environ, "PDS_DATABASE_URL": db_url}
    pds = str(Path(sys.executable).with_name("pds"))
    subprocess.run([pds, "init"], cwd=tmp_path, env=env, check=True, capture_output=True)
    port = _free_port()
    server = subprocess.Popen(
        [pds, "serve", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        # Workers boot one by one and the kernel spreads connections over them (reuse_port): a request
        # may wait for its worker to finish booting, which takes seconds on a busy 2-core machine.
        body = None
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=30) as r:
                    body = json.loads(r.read())
                    assert r.headers["Server"].startswith("gunicorn")  # not Flask's development server
                break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.1)
        assert body == {"status": "ok", "checks": {"database": "ok", "keys": "ok"}}
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/missing", timeout=30)
        assert err.value.code == 404 and err.value.headers["Content-Type"] == PROBLEM_JSON
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/openapi.json", timeout=30) as r:
            assert json.loads(r.read())["servers"] == [{"url": f"http://127.0.0.1:{port}"}]
    finally:
        server.terminate()
        server.wait(timeout=30)
