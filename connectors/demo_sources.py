"""Small local source systems serving the sample deliveries, so `pds connectors sync` pulls over real HTTP.

    /council/requests.json, /council/servicerequestupdates.json    Open311 GeoReport v2 (+ FMS updates)
    /police/requests.json, /police/servicerequestupdates.json      the same, for the police
    /school/ims/oneroster/...                                       OneRoster 1.2 REST (limit/offset, filter)
    /gp/                                                            a GP Connect STU3 structured record

Open311 calls honour start_date/end_date; OneRoster calls honour `filter=dateLastModified>'...'`.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from werkzeug.wrappers import Request, Response

SAMPLES = Path(__file__).resolve().parent / "samples"
ONEROSTER_PATHS = {
    "ims/oneroster/rostering/v1p2/users": "users",
    "ims/oneroster/rostering/v1p2/classes": "classes",
    "ims/oneroster/gradebook/v1p2/categories": "categories",
    "ims/oneroster/gradebook/v1p2/lineItems": "lineItems",
    "ims/oneroster/gradebook/v1p2/results": "results",
    "ims/oneroster/pds/v1p2/attendance": "attendance",
    "ims/oneroster/pds/v1p2/behaviour": "behaviour",
}


def _json(value: Any, status: int = 200) -> Response:
    return Response(json.dumps(value), status=status, mimetype="application/json")


def _when(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


class DemoSources:
    def __init__(self) -> None:
        council = json.loads((SAMPLES / "open311" / "council.json").read_text())
        self.open311 = {
            "council": (council["service_requests"], council["updates"]),
            "police": (
                json.loads((SAMPLES / "open311" / "police.json").read_text()),
                json.loads((SAMPLES / "open311" / "police-updates.json").read_text()),
            ),
        }
        self.school = json.loads((SAMPLES / "oneroster" / "sam.rest.json").read_text())
        self.gp = (SAMPLES / "fhir" / "gp-connect-bob.stu3.json").read_bytes()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        return self.answer(Request(environ))(environ, start_response)  # type: ignore[no-any-return]

    def answer(self, req: Request) -> Response:
        source, _, rest = req.path.strip("/").partition("/")
        if source in self.open311 and rest in ("requests.json", "servicerequestupdates.json"):
            return self._open311(req, source, rest)
        if source == "school" and rest in ONEROSTER_PATHS:
            return self._oneroster(req, ONEROSTER_PATHS[rest])
        if source == "gp" and rest == "":
            return Response(self.gp, mimetype="application/fhir+json")
        return _json([{"code": 404, "description": f"no such call: {req.path}"}], 404)

    def _open311(self, req: Request, source: str, call: str) -> Response:
        requests, updates = self.open311[source]
        try:
            low = _when(req.args["start_date"]) if "start_date" in req.args else None
            high = _when(req.args["end_date"]) if "end_date" in req.args else None
        except ValueError:
            return _json([{"code": 400, "description": "start_date and end_date are W3C date-times"}], 400)
        rows, key = (
            (requests, "requested_datetime") if call == "requests.json" else (updates, "updated_datetime")
        )
        picked = [
            r
            for r in rows
            if (low is None or _when(r[key]) >= low) and (high is None or _when(r[key]) < high)
        ]
        return _json(picked)

    def _oneroster(self, req: Request, key: str) -> Response:
        rows = self.school.get(key, [])
        where = req.args.get("filter", "")
        if where:
            field, _, value = where.partition(">")
            if field != "dateLastModified":
                return _json({"imsx_codeMajor": "failure", "imsx_description": "unsupported filter"}, 400)
            rows = [r for r in rows if r["dateLastModified"] > value.strip("'")]
        offset, limit = int(req.args.get("offset", 0)), int(req.args.get("limit", 100))
        return _json({key: rows[offset : offset + limit]})


def serve(host: str, port: int) -> None:
    from werkzeug.serving import run_simple

    run_simple(host, port, DemoSources(), threaded=True)
