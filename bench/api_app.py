"""The WSGI app the API benchmark serves: pds itself, plus one bare endpoint as the floor.

The floor returns, through the same Flask app and gunicorn, the very bytes an authorised
GET /api/v1/records returned, so the difference is exactly the read path's work.
"""

from __future__ import annotations

import os
from pathlib import Path

from flask import Response

from pds import create_app
from pds.serve import start_background

app = create_app()
start_background(app)  # as `pds serve` does in each worker: checkpoints and upkeep run beside the reads
_floor: list[bytes] = []


@app.get("/bench/floor")
def floor() -> Response:
    if not _floor:
        _floor.append(Path(os.environ["BENCH_FLOOR_FILE"]).read_bytes())
    return Response(_floor[0], mimetype="application/json")
