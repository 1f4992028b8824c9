"""/assets: GOV.UK Frontend (installed from npm into node_modules) and pds's own few files.

pds is not a GOV.UK-domain service, so it does not use the GDS Transport typeface: the stylesheet is served
with that face's @font-face rules taken out and its name dropped from every font stack (Arial follows it
in each), and the fonts folder is not served.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from flask import Blueprint, Response, send_from_directory
from werkzeug.exceptions import NotFound

REPO = Path(__file__).resolve().parents[2]
GOVUK = REPO / "node_modules" / "govuk-frontend" / "dist" / "govuk"
STATIC = Path(__file__).resolve().parent / "static"
ONE_DAY = 86_400

bp = Blueprint("assets", __name__)

_FONT_FACE = re.compile(r"@font-face\{[^}]*GDS Transport[^}]*\}")


@cache
def _stylesheet() -> bytes:
    path = GOVUK / "govuk-frontend.min.css"
    if not path.is_file():
        raise NotFound("GOV.UK Frontend is not installed: run `npm ci` (make setup does)")
    css = _FONT_FACE.sub("", path.read_text(encoding="utf-8"))
    css = css.replace('"GDS Transport",', "").replace("GDS Transport,", "")
    return css.replace("/*# sourceMappingURL=govuk-frontend.min.css.map */", "").encode()


@bp.get("/assets/<path:name>")
def asset(name: str) -> Response:
    if name == "govuk-frontend.min.css":
        return Response(_stylesheet(), mimetype="text/css", headers={"Cache-Control": f"max-age={ONE_DAY}"})
    if name == "govuk-frontend.min.js":
        return send_from_directory(GOVUK, name, max_age=ONE_DAY)
    if (STATIC / name).is_file() and "/" not in name:
        return send_from_directory(STATIC, name, max_age=ONE_DAY)
    if name.startswith("images/"):  # the few images the components use (never the crown)
        return send_from_directory(GOVUK / "assets", name, max_age=ONE_DAY)
    raise NotFound(f"no asset {name}")
