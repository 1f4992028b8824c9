"""OneRoster 1.2 school progress (gradebook results) with UK attendance and behaviour as a pds extension.

Two bindings, one path. A JSON delivery (a push, or what a pull assembles from
`/ims/oneroster/rostering/v1p2/users` and `/ims/oneroster/gradebook/v1p2/{lineItems,categories,results}`)
is an object holding any of those collections under the keys the API returns them in. A CSV binding zip
(`manifest.csv` plus one file per collection) is first read into that same object, so both bindings are
checked by the same rules and give the same items. Collections read: `users` (with `roles`, `agents`,
`userIds`; in CSV `roles.csv` supplies the roles), `classes` (title only), `categories`, `lineItems`,
`results`, and the extension's `attendance` and `behaviour`; other OneRoster collections are ignored.

Pupils. A student carries the DfE unique pupil number in `userIds` as {"type": "UPN", "identifier": ...}
(CSV `{UPN:F201200124001}`); without one there, `identifier` is taken (UK MIS exports often put the UPN
there). Either way the check letter must pass, so an SIS number in `identifier` is refused, never matched.
Records name the pupil by `sourcedId`, resolved through the users of the same delivery: a delivery is
self-contained (the users, lineItems, categories and classes its records refer to travel with them).

Parents. A parent, guardian or relative lists the children in `agents`; each must resolve to a student of
the delivery. The parser checks the link and no more: a school feed grants no access to a vault. A parent
sees the child's records through the pds guardian link (`pds.vault.guardians`).

Extension: OneRoster has no attendance or behaviour, so pds adds two collections with the envelope of any
OneRoster entity (sourcedId, status, dateLastModified) and GUIDRefs to the student::

    "attendance": [{"sourcedId": "att-1", "status": "active", "dateLastModified": "2025-03-11T09:31:00Z",
                    "student": {"sourcedId": "usr-1"}, "date": "2025-03-11", "session": "AM",
                    "code": "L", "minutesLate": 10, "comment": "Bus delayed"}]
    "behaviour": [{"sourcedId": "beh-1", "status": "active", "dateLastModified": "2025-03-12T15:00:00Z",
                   "student": {"sourcedId": "usr-1"}, "type": "achievement", "category": "Effort",
                   "points": 2, "date": "2025-03-12", "recordedBy": "Ms Adeyemi", "comment": "...",
                   "sensitive": false}]

`code` is a national code of the School Attendance (Pupil Registration) (England) Regulations 2024, in
force from 19 August 2024; marks dated earlier are refused (the retired codes are not read). `/` is an AM
mark and `\\` a PM one; `minutesLate` (a whole number) goes only with L or U; one mark per pupil, date and
session. `type` is behaviour or achievement, `points` a whole number (negative for many schools'
behaviour), `recordedBy` the name shown to parents, `sensitive: true` (or `metadata.sensitive`) an event
the school keeps from proxies. CSV files, declared as `file.attendance` and `file.behaviour`:
`attendance.csv` (sourcedId,status,dateLastModified,studentSourcedId,date,session,code,minutesLate,comment)
and `behaviour.csv` (sourcedId,status,dateLastModified,studentSourcedId,type,category,points,date,
recordedBy,comment,sensitive).

Items: one per result ("oneroster:result", its lineItem, category and class folded in so it reads alone),
attendance mark ("attendance:session") and behaviour event ("behaviour:event"); `tobedeleted` records give
items too, so the vault can retire what it holds. `version` is dateLastModified in whole microseconds since
the Unix epoch: a later modification always gives a larger version. So dateLastModified is required, with a
zone, even where the CSV binding lets bulk files leave it blank (blank status in a bulk file is active).
`occurred_at` is scoreDate or date; a bare date is midnight, Europe/London. Problems name the field as
`collection[i].path` with index i (for CSV, i is the data row of that file, header excluded).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
import re
import zipfile
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from connectors.base import Item, Problems
from pds.vault.identifiers import upn_ok

KIND_RESULT = "oneroster:result"
KIND_ATTENDANCE = "attendance:session"
KIND_BEHAVIOUR = "behaviour:event"

STATUSES = ("active", "tobedeleted")  # OneRoster 1.2 StatusEnum
SCORE_STATUSES = ("exempt", "fully graded", "not submitted", "partially graded", "submitted")  # 1.2 Gradebook
GRADED = ("fully graded", "partially graded")
ROLES = (  # OneRoster 1.2 RoleEnum
    "aide", "counselor", "districtAdministrator", "guardian", "parent", "principal", "proctor",
    "relative", "siteAdministrator", "student", "systemAdministrator", "teacher",
)  # fmt: skip
AGENT_ROLES = ("parent", "guardian", "relative")
SESSIONS = ("AM", "PM")
BEHAVIOUR_TYPES = ("behaviour", "achievement")
UPN_TYPE = "UPN"  # userIds[].type naming the DfE unique pupil number (compared case-insensitively)

# School Attendance (Pupil Registration) (England) Regulations 2024 (SI 2024/208), reg. 10 tables, and
# "Working together to improve school attendance" (DfE, August 2024): code -> (meaning, what it counts as).
CODES_IN_FORCE_FROM = dt.date(2024, 8, 19)
_PRESENT, _ELSEWHERE = "present", "attending approved education"
_AUTHORISED, _UNAUTHORISED = "authorised absence", "unauthorised absence"
_NOT_POSSIBLE, _ADMIN = "not a possible session", "administrative"
ATTENDANCE_CODES: dict[str, tuple[str, str]] = {
    "/": ("Present at morning registration", _PRESENT),
    "\\": ("Present at afternoon registration", _PRESENT),
    "L": ("Late, arrived before the register closed", _PRESENT),
    "K": ("Education arranged by the local authority", _ELSEWHERE),
    "V": ("Educational visit or trip", _ELSEWHERE),
    "P": ("Approved sporting activity", _ELSEWHERE),
    "W": ("Work experience", _ELSEWHERE),
    "B": ("Other approved educational activity", _ELSEWHERE),
    "C1": ("Leave: regulated performance or employment abroad", _AUTHORISED),
    "M": ("Leave: medical or dental appointment", _AUTHORISED),
    "J1": ("Leave: interview for employment or education", _AUTHORISED),
    "S": ("Leave: study leave", _AUTHORISED),
    "C2": ("Leave: temporary part-time timetable", _AUTHORISED),
    "C": ("Leave: exceptional circumstances", _AUTHORISED),
    "T": ("Parent travelling for occupational purposes", _AUTHORISED),
    "R": ("Religious observance", _AUTHORISED),
    "I": ("Illness", _AUTHORISED),
    "E": ("Suspended or excluded, no alternative provision", _AUTHORISED),
    "G": ("Holiday not granted by the school", _UNAUTHORISED),
    "N": ("Reason not yet provided", _UNAUTHORISED),
    "O": ("Absent in other or unknown circumstances", _UNAUTHORISED),
    "U": ("Arrived after the register closed", _UNAUTHORISED),
    "D": ("Dual registered, attending the other school", _NOT_POSSIBLE),
    "X": ("Not of compulsory school age, not required to attend", _NOT_POSSIBLE),
    "Q": ("Unable to attend: no access arrangements by the local authority", _NOT_POSSIBLE),
    "Y1": ("Unable to attend: transport normally provided not available", _NOT_POSSIBLE),
    "Y2": ("Unable to attend: widespread travel disruption", _NOT_POSSIBLE),
    "Y3": ("Unable to attend: part of the school closed", _NOT_POSSIBLE),
    "Y4": ("Unable to attend: whole school unexpectedly closed", _NOT_POSSIBLE),
    "Y5": ("Unable to attend: in criminal justice detention", _NOT_POSSIBLE),
    "Y6": ("Unable to attend: public health guidance or law", _NOT_POSSIBLE),
    "Y7": ("Unable to attend: other unavoidable cause", _NOT_POSSIBLE),
    "Z": ("Not yet on roll", _ADMIN),
    "#": ("Planned whole-school closure", _ADMIN),
}
SESSION_ONLY_CODES = {"/": "AM", "\\": "PM"}
LATE_CODES = ("L", "U")

SCHOOL_TZ = ZoneInfo("Europe/London")  # a bare date is a school day in England
CLOCK_SKEW = dt.timedelta(minutes=5)  # a source's clock a little ahead is not a record from the future
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

# CSV binding. A zip is decompressed in memory: bound what a small archive may expand to (zip bombs).
MAX_ZIP_FILES = 40  # 21 OneRoster files, 2 extension files and the manifest, with room to spare
MAX_ZIP_BYTES = 32 * 1024 * 1024  # total uncompressed size; a school's gradebook export is far smaller
MANIFEST_VERSION = "1.0"
ONEROSTER_VERSION = "1.2"  # "1.2" or "1.2.x"
ONEROSTER_FILES = (
    "academicSessions", "categories", "classes", "classResources", "courses", "courseResources",
    "demographics", "enrollments", "lineItemLearningObjectiveIds", "lineItems", "lineItemScoreScales",
    "orgs", "resources", "resultLearningObjectiveIds", "results", "resultScoreScales", "roles",
    "scoreScales", "userProfiles", "userResources", "users",
)  # fmt: skip
EXTENSION_FILES = ("attendance", "behaviour")
FILE_MODES = ("absent", "bulk", "delta")
COLLECTIONS = ("users", "classes", "categories", "lineItems", "results", "attendance", "behaviour")
CSV_NUMBERS = {"resultValueMin", "resultValueMax", "score", "weight", "minutesLate", "points"}
USER_ID = re.compile(r"\{([^:{}]+):([^{}]*)\}")  # CSV userIds: {type:identifier},{type:identifier}


class OneRosterParser:
    """OneRoster 1.2 REST JSON or CSV zip in; pupils' results, attendance marks and behaviour events out."""

    kind: ClassVar[str] = "oneroster"
    media_types: ClassVar[tuple[str, ...]] = ("application/json", "application/zip")

    def __init__(self, *, now: Callable[[], dt.datetime] | None = None) -> None:
        self._now = now or (lambda: dt.datetime.now(dt.UTC))

    def parse(self, body: bytes, *, media_type: str) -> list[Item]:
        problems = Problems()
        base = media_type.split(";")[0].strip().lower()
        if base == "application/zip":
            delivery = read_csv_zip(body, problems)
        elif base == "application/json":
            delivery = _read_json(body, problems)
        else:
            problems.add(None, "media_type", f"{media_type!r} is not one of {', '.join(self.media_types)}")
            delivery = {}
        problems.raise_if_any()
        items = _Check(delivery, problems, self._now()).items()
        problems.raise_if_any()
        return items


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _read_json(body: bytes, problems: Problems) -> dict[str, Any]:
    try:
        data = json.loads(body, parse_constant=_no_constant)
    except (ValueError, RecursionError) as e:
        problems.add(None, "body", f"not JSON: {e}")
        return {}
    if not isinstance(data, dict):
        problems.add(None, "body", "must be an object of OneRoster collections")
        return {}
    return data


# -- the checks, shared by both bindings -----------------------------------------------------------------


class _Check:
    """Walks one delivery: every rule adds a Problem; items are built only from records that passed."""

    def __init__(self, delivery: dict[str, Any], problems: Problems, now: dt.datetime) -> None:
        self.d, self.p, self.now = delivery, problems, now
        self.cols: dict[str, list[dict[str, Any]]] = {}
        self.by_id: dict[str, dict[str, dict[str, Any]]] = {}
        self.pending: list[Callable[[], Item]] = []  # built once every record has passed

    def items(self) -> list[Item]:
        # 1. every collection is an array of objects with sourcedId, status and dateLastModified
        if not any(name in self.d for name in COLLECTIONS):
            self.p.add(None, "body", f"holds none of the collections {', '.join(COLLECTIONS)}")
        for name in COLLECTIONS:
            self._envelope(name)
        # 2. the roster: students' UPNs and the parents' agents
        upns = self._users()
        # 3. the gradebook, folded; then the extension
        self._categories()
        self._line_items()
        self._results(upns)
        self._attendance(upns)
        self._behaviour(upns)
        return [] if self.p.found else [build() for build in self.pending]

    def _envelope(self, name: str) -> None:
        raw = self.d.get(name, [])
        if not isinstance(raw, list):
            self.p.add(None, name, "must be an array")
            raw = []
        self.cols[name], self.by_id[name] = [], {}
        for i, rec in enumerate(raw):
            at = f"{name}[{i}]"
            if not isinstance(rec, dict):
                self.p.add(i, at, "must be an object")
                rec = {}
            self.cols[name].append(rec)
            sid = rec.get("sourcedId")
            if not _text(sid):
                self.p.add(i, f"{at}.sourcedId", "required")
            elif sid in self.by_id[name]:
                first = next(
                    j for j, r in enumerate(raw) if isinstance(r, dict) and r.get("sourcedId") == sid
                )
                self.p.add(i, f"{at}.sourcedId", f"duplicate of {name}[{first}]")
            else:
                self.by_id[name][sid] = rec
            if rec.get("status") not in STATUSES:
                self.p.add(i, f"{at}.status", f"must be one of {', '.join(STATUSES)}")
            self._datetime(i, at, rec, "dateLastModified", required=True, past=True)

    # 2. roster ---------------------------------------------------------------------------------------

    def _users(self) -> dict[str, str]:
        """The students' UPNs by sourcedId; agents checked."""
        upns: dict[str, str] = {}
        seen: dict[str, int] = {}
        for i, user in enumerate(self.cols["users"]):
            at = f"users[{i}]"
            roles = user.get("roles")
            if not isinstance(roles, list) or not roles:
                self.p.add(i, f"{at}.roles", "at least one role is required")
                roles = []
            for k, role in enumerate(roles):
                if not isinstance(role, dict) or role.get("role") not in ROLES:
                    self.p.add(i, f"{at}.roles[{k}].role", f"must be one of {', '.join(ROLES)}")
            if _has_role(user, "student"):
                upn = self._upn(i, at, user)
                if upn and upn in seen:
                    self.p.add(i, f"{at}.userIds", f"UPN also held by users[{seen[upn]}]")
                elif upn and _text(user.get("sourcedId")):
                    seen[upn] = i
                    upns[user["sourcedId"]] = upn
        for i, user in enumerate(self.cols["users"]):
            self._agents(i, user)
        return upns

    def _upn(self, i: int, at: str, user: dict[str, Any]) -> str | None:
        ids = user.get("userIds") or []
        if not isinstance(ids, list):
            self.p.add(i, f"{at}.userIds", "must be an array of {type, identifier}")
            ids = []
        found = [
            (f"{at}.userIds[{k}].identifier", e.get("identifier"))
            for k, e in enumerate(ids)
            if isinstance(e, dict) and str(e.get("type", "")).upper() == UPN_TYPE
        ]
        where, value = found[0] if found else (f"{at}.identifier", user.get("identifier"))
        if len(found) > 1:
            self.p.add(i, f"{at}.userIds", "more than one UPN")
        if not _text(value):
            self.p.add(i, f"{at}.userIds", "a student needs a UPN (userIds type UPN, or identifier)")
            return None
        upn = value.strip().upper()
        if not upn_ok(upn):
            self.p.add(i, where, "not a valid unique pupil number (13 characters, check letter must match)")
            return None
        return upn

    def _agents(self, i: int, user: dict[str, Any]) -> None:
        agents = user.get("agents") or []
        if not isinstance(agents, list):
            self.p.add(i, f"users[{i}].agents", "must be an array of GUIDRefs")
            return
        is_agent = any(_has_role(user, role) for role in AGENT_ROLES)
        for k, ref in enumerate(agents):
            at = f"users[{i}].agents[{k}].sourcedId"
            sid = _ref(ref)
            if sid is None or sid not in self.by_id["users"]:
                self.p.add(i, at, "not among this delivery's users")
            elif is_agent and not _has_role(self.by_id["users"][sid], "student"):
                self.p.add(i, at, "a parent's or guardian's agent must be a student")

    # 3. gradebook ------------------------------------------------------------------------------------

    def _categories(self) -> None:
        for i, cat in enumerate(self.cols["categories"]):
            self._required_text(i, f"categories[{i}]", cat, "title")
            if cat.get("weight") is not None and not _number(cat["weight"]):
                self.p.add(i, f"categories[{i}].weight", "must be a number")

    def _line_items(self) -> None:
        for i, li in enumerate(self.cols["lineItems"]):
            at = f"lineItems[{i}]"
            self._required_text(i, at, li, "title")
            self._resolve(i, at, li, "class", "classes", required=True, absent_ok=True)
            self._resolve(i, at, li, "category", "categories", required=False)
            for name in ("assignDate", "dueDate"):  # may lie ahead: a deadline is in the future
                self._datetime(i, at, li, name, required=False, past=False)
            lo, hi = li.get("resultValueMin"), li.get("resultValueMax")
            for name, value in (("resultValueMin", lo), ("resultValueMax", hi)):
                if value is not None and not _number(value):
                    self.p.add(i, f"{at}.{name}", "must be a number")
            if _number(lo) and _number(hi) and lo > hi:
                self.p.add(i, f"{at}.resultValueMax", "is below resultValueMin")

    def _results(self, upns: dict[str, str]) -> None:
        for i, res in enumerate(self.cols["results"]):
            at = f"results[{i}]"
            upn = self._student(i, at, res, upns)
            li = self._resolve(i, at, res, "lineItem", "lineItems", required=True)
            self._resolve(i, at, res, "class", "classes", required=False, absent_ok=True)
            status = res.get("scoreStatus")
            if status not in SCORE_STATUSES:
                self.p.add(i, f"{at}.scoreStatus", f"must be one of {', '.join(SCORE_STATUSES)}")
            score = res.get("score")
            if score is not None and not _number(score):
                self.p.add(i, f"{at}.score", "must be a number")
            elif score is None and status in GRADED and not _text(res.get("textScore")):
                self.p.add(i, f"{at}.score", f"a {status} result needs a score or textScore")
            elif score is not None and li is not None:
                self._in_range(i, at, score, li)
            when = self._date(i, at, res, "scoreDate", required=True)
            if upn and li is not None and when:
                self.pending.append(partial(self._result_item, upn, res, li, when))

    def _in_range(self, i: int, at: str, score: float, li: dict[str, Any]) -> None:
        lo, hi = li.get("resultValueMin"), li.get("resultValueMax")
        if _number(lo) and score < lo:
            self.p.add(i, f"{at}.score", f"below the lineItem's resultValueMin {lo}")
        if _number(hi) and score > hi:
            self.p.add(i, f"{at}.score", f"above the lineItem's resultValueMax {hi}")

    def _result_item(self, upn: str, res: dict[str, Any], li: dict[str, Any], when: dt.datetime) -> Item:
        return self._item(KIND_RESULT, upn, res, when, self._result_payload(res, li))

    def _result_payload(self, res: dict[str, Any], li: dict[str, Any]) -> dict[str, Any]:
        cat = self.by_id["categories"].get(_ref(li.get("category")) or "")
        class_id = _ref(res.get("class")) or _ref(li.get("class"))
        cls = self.by_id["classes"].get(class_id or "", {})
        line_item = {
            "sourcedId": li["sourcedId"],
            "title": li["title"],
            "description": li.get("description"),
            "assignDate": li.get("assignDate"),
            "dueDate": li.get("dueDate"),
            "resultValueMin": li.get("resultValueMin"),
            "resultValueMax": li.get("resultValueMax"),
            "category": _drop_none(
                {"sourcedId": cat["sourcedId"], "title": cat["title"], "weight": cat.get("weight")}
            )
            if cat
            else None,
        }
        return _drop_none(
            {
                **self._common(res),
                "lineItem": _drop_none(line_item),
                "class": _drop_none({"sourcedId": class_id, "title": cls.get("title")}) if class_id else None,
                "scoreStatus": res["scoreStatus"],
                "score": res.get("score"),
                "textScore": res.get("textScore") or None,
                "scoreDate": res["scoreDate"],
                "comment": res.get("comment") or None,
                **{flag: _flag(res.get(flag)) for flag in ("inProgress", "incomplete", "late", "missing")},
            }
        )

    # 4. extension ------------------------------------------------------------------------------------

    def _attendance(self, upns: dict[str, str]) -> None:
        marks: dict[tuple[str, str, str], int] = {}
        for i, mark in enumerate(self.cols["attendance"]):
            at = f"attendance[{i}]"
            upn = self._student(i, at, mark, upns)
            when = self._date(i, at, mark, "date", required=True)
            if when and when.date() < CODES_IN_FORCE_FROM:
                self.p.add(i, f"{at}.date", "before 19 August 2024: the 2024 national codes do not apply")
            session, code = mark.get("session"), mark.get("code")
            if session not in SESSIONS:
                self.p.add(i, f"{at}.session", "must be AM or PM")
            if not isinstance(code, str) or code not in ATTENDANCE_CODES:
                self.p.add(
                    i, f"{at}.code", "not a DfE national attendance code in force since 19 August 2024"
                )
            elif session in SESSIONS and SESSION_ONLY_CODES.get(code, session) != session:
                self.p.add(i, f"{at}.code", f"{code} marks the {SESSION_ONLY_CODES[code]} session only")
            late = mark.get("minutesLate")
            if late is not None and (not _number(late) or not isinstance(late, int) or late < 0):
                self.p.add(i, f"{at}.minutesLate", "must be a whole number of minutes, 0 or more")
            elif late is not None and code not in LATE_CODES:
                self.p.add(i, f"{at}.minutesLate", "only with code L or U")
            if upn and when and session in SESSIONS and mark.get("status") == "active":
                key = (upn, when.date().isoformat(), session)
                if key in marks:
                    self.p.add(
                        i,
                        f"{at}.session",
                        f"a second mark for this pupil and session: attendance[{marks[key]}]",
                    )
                marks[key] = i
            if upn and when and isinstance(code, str) and code in ATTENDANCE_CODES:
                self.pending.append(partial(self._attendance_item, upn, mark, when))

    def _attendance_item(self, upn: str, mark: dict[str, Any], when: dt.datetime) -> Item:
        meaning, counts_as = ATTENDANCE_CODES[mark["code"]]
        payload = {
            **self._common(mark),
            "date": mark["date"],
            "session": mark["session"],
            "code": mark["code"],
        }
        payload |= {"meaning": meaning, "countsAs": counts_as, "minutesLate": mark.get("minutesLate")}
        payload["comment"] = mark.get("comment") or None
        return self._item(KIND_ATTENDANCE, upn, mark, when, _drop_none(payload))

    def _behaviour(self, upns: dict[str, str]) -> None:
        for i, event in enumerate(self.cols["behaviour"]):
            at = f"behaviour[{i}]"
            upn = self._student(i, at, event, upns)
            when = self._date(i, at, event, "date", required=True)
            if event.get("type") not in BEHAVIOUR_TYPES:
                self.p.add(i, f"{at}.type", "must be behaviour or achievement")
            points = event.get("points")
            if points is not None and (not _number(points) or not isinstance(points, int)):
                self.p.add(i, f"{at}.points", "must be a whole number")
            if _sensitive(event) not in (None, "") and _flag(_sensitive(event)) is None:
                self.p.add(i, f"{at}.sensitive", "must be true or false")
            for name in ("category", "recordedBy", "comment"):
                if event.get(name) is not None and not isinstance(event[name], str):
                    self.p.add(i, f"{at}.{name}", "must be text")
            if upn and when:
                self.pending.append(partial(self._behaviour_item, upn, event, when))

    def _behaviour_item(self, upn: str, event: dict[str, Any], when: dt.datetime) -> Item:
        payload = {**self._common(event), "type": event["type"], "points": event.get("points")}
        payload |= {name: event.get(name) or None for name in ("category", "recordedBy", "comment")}
        payload["date"] = event["date"]
        sensitive = bool(_flag(_sensitive(event)))
        return self._item(KIND_BEHAVIOUR, upn, event, when, _drop_none(payload), sensitive=sensitive)

    # shared pieces -----------------------------------------------------------------------------------

    def _student(self, i: int, at: str, rec: dict[str, Any], upns: dict[str, str]) -> str | None:
        sid = _ref(rec.get("student"))
        if sid is None:
            self.p.add(i, f"{at}.student.sourcedId", "required")
        elif sid not in self.by_id["users"]:
            self.p.add(i, f"{at}.student.sourcedId", "not among this delivery's users")
        elif not _has_role(self.by_id["users"][sid], "student"):
            self.p.add(i, f"{at}.student.sourcedId", "that user is not a student")
        return upns.get(sid or "")

    def _resolve(
        self,
        i: int,
        at: str,
        rec: dict[str, Any],
        key: str,
        into: str,
        *,
        required: bool,
        absent_ok: bool = False,
    ) -> dict[str, Any] | None:
        """The record a GUIDRef names. `absent_ok`: a delivery need not carry that collection at all."""
        sid = _ref(rec.get(key))
        if sid is None:
            if required:
                self.p.add(i, f"{at}.{key}.sourcedId", "required")
            return None
        if sid in self.by_id[into]:
            return self.by_id[into][sid]
        if not (absent_ok and into not in self.d):
            self.p.add(i, f"{at}.{key}.sourcedId", f"not among this delivery's {into}")
        return None

    def _required_text(self, i: int, at: str, rec: dict[str, Any], name: str) -> None:
        if not _text(rec.get(name)):
            self.p.add(i, f"{at}.{name}", "required")

    def _datetime(
        self, i: int, at: str, rec: dict[str, Any], name: str, *, required: bool, past: bool
    ) -> None:
        value = rec.get(name)
        if value in (None, ""):
            if required:
                self.p.add(i, f"{at}.{name}", "required")
            return
        when = _parse_when(value)
        if when is None:
            self.p.add(i, f"{at}.{name}", "not an ISO 8601 date, or date and time with a zone")
        elif past and when > self.now + CLOCK_SKEW:
            self.p.add(i, f"{at}.{name}", "in the future")

    def _date(self, i: int, at: str, rec: dict[str, Any], name: str, *, required: bool) -> dt.datetime | None:
        before = len(self.p.found)
        self._datetime(i, at, rec, name, required=required, past=True)
        return _parse_when(rec.get(name)) if len(self.p.found) == before else None

    def _common(self, rec: dict[str, Any]) -> dict[str, Any]:
        return {
            "sourcedId": rec["sourcedId"],
            "status": rec["status"],
            "dateLastModified": _utc(rec["dateLastModified"]).isoformat(),
            "student": {"sourcedId": _ref(rec.get("student"))},
        }

    def _item(
        self,
        kind: str,
        upn: str,
        rec: dict[str, Any],
        when: dt.datetime,
        payload: dict[str, Any],
        *,
        sensitive: bool = False,
    ) -> Item:
        return Item(
            identifier_kind="upn",
            identifier=upn,
            category="education",
            kind=kind,
            source_record_id=rec["sourcedId"],
            version=version_of(rec["dateLastModified"]),
            occurred_at=when,
            payload=payload,
            sensitive=sensitive,
        )


def version_of(date_last_modified: str) -> int:
    """dateLastModified as whole microseconds since the Unix epoch: later modification, larger version."""
    return (_utc(date_last_modified) - EPOCH) // dt.timedelta(microseconds=1)


def _utc(value: str) -> dt.datetime:
    when = _parse_when(value)
    if when is None:
        raise ValueError(f"not an ISO 8601 date and time with a zone: {value!r}")
    return when.astimezone(dt.UTC)


def _parse_when(value: Any) -> dt.datetime | None:
    """An ISO 8601 date (midnight, Europe/London) or date-time with a zone; None for anything else."""
    if not isinstance(value, str):
        return None
    try:
        if len(value) == 10:
            return dt.datetime.combine(dt.date.fromisoformat(value), dt.time(), SCHOOL_TZ)
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return when if when.tzinfo is not None else None


def _sensitive(event: dict[str, Any]) -> Any:
    """The school's confidentiality mark: `sensitive`, or OneRoster's own extension point `metadata`."""
    if "sensitive" in event:
        return event["sensitive"]
    metadata = event.get("metadata")
    return metadata.get("sensitive") if isinstance(metadata, dict) else None


def _has_role(user: dict[str, Any], role: str) -> bool:
    roles = user.get("roles")
    return isinstance(roles, list) and any(isinstance(r, dict) and r.get("role") == role for r in roles)


def _ref(value: Any) -> str | None:
    sid = value.get("sourcedId") if isinstance(value, dict) else None
    return sid if _text(sid) else None


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _flag(value: Any) -> bool | None:
    """OneRoster booleans travel as true/false or as the strings "true"/"false"."""
    if isinstance(value, bool):
        return value
    return {"true": True, "false": False}.get(value) if isinstance(value, str) else None


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


# -- the CSV binding ---------------------------------------------------------------------------------------


def read_csv_zip(body: bytes, problems: Problems) -> dict[str, Any]:
    """A OneRoster 1.2 CSV zip as the REST-shaped delivery the checks read; manifest problems added."""
    files = _unzip(body, problems)
    if files is None:
        return {}
    modes = _manifest(files, problems)
    tables = {
        name: list(_rows(name, files[f"{name}.csv"], problems)) for name in modes if modes[name] != "absent"
    }
    delivery: dict[str, Any] = {}
    for name in COLLECTIONS:
        if name in tables:
            bulk = modes[name] == "bulk"
            delivery[name] = [_rest_shape(row, bulk=bulk) for row in tables[name]]
    for i, role in enumerate(tables.get("roles", [])):
        _attach_role(i, role, delivery.get("users", []), problems)
    return delivery


def _unzip(body: bytes, problems: Problems) -> dict[str, bytes] | None:
    try:
        archive = zipfile.ZipFile(io.BytesIO(body))
    except zipfile.BadZipFile as e:
        problems.add(None, "body", f"not a zip: {e}")
        return None
    with archive:
        infos = [info for info in archive.infolist() if not info.is_dir()]
        # 1. bound the archive by its directory before decompressing anything
        if len(infos) > MAX_ZIP_FILES:
            problems.add(None, "body", f"more than {MAX_ZIP_FILES} files")
            return None
        if sum(info.file_size for info in infos) > MAX_ZIP_BYTES:
            problems.add(None, "body", f"expands beyond {MAX_ZIP_BYTES} bytes")
            return None
        files: dict[str, bytes] = {}
        budget = MAX_ZIP_BYTES
        for info in infos:
            # 2. the CSV binding puts every file at the root, once
            if "/" in info.filename or "\\" in info.filename or info.filename in files:
                problems.add(None, info.filename, "files sit once each at the root of the zip")
                continue
            # 3. read no more than the budget, whatever the directory claimed
            try:
                with archive.open(info) as member:
                    data = member.read(budget + 1)
            except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError) as e:
                problems.add(None, info.filename, f"unreadable: {e}")
                continue
            budget -= len(data)
            if budget < 0:
                problems.add(None, "body", f"expands beyond {MAX_ZIP_BYTES} bytes")
                return None
            files[info.filename] = data
    return files


def _manifest(files: dict[str, bytes], problems: Problems) -> dict[str, str]:
    """file.<name> -> absent|bulk|delta, checked against what the zip holds."""
    if "manifest.csv" not in files:
        problems.add(None, "manifest.csv", "missing")
        return {}
    props: dict[str, str] = {}
    for row in _rows("manifest", files["manifest.csv"], problems):
        props[str(row.get("propertyName", "")).strip()] = str(row.get("value", "")).strip()
    if props.get("manifest.version") != MANIFEST_VERSION:
        problems.add(None, "manifest.csv:manifest.version", f"must be {MANIFEST_VERSION}")
    version = props.get("oneroster.version", "")
    if version != ONEROSTER_VERSION and not version.startswith(ONEROSTER_VERSION + "."):
        problems.add(None, "manifest.csv:oneroster.version", f"must be {ONEROSTER_VERSION}")
    modes: dict[str, str] = {}
    for key, mode in props.items():
        if not key.startswith("file."):
            continue
        name = key.removeprefix("file.")
        if name not in ONEROSTER_FILES + EXTENSION_FILES:
            problems.add(None, f"manifest.csv:{key}", "not a OneRoster 1.2 or pds extension file")
        elif mode not in FILE_MODES:
            problems.add(None, f"manifest.csv:{key}", f"must be one of {', '.join(FILE_MODES)}")
        elif mode != "absent" and f"{name}.csv" not in files:
            problems.add(None, f"manifest.csv:{key}", f"declared {mode} but {name}.csv is not in the zip")
        else:
            modes[name] = mode
    for filename in files:
        key = "file." + filename.removesuffix(".csv")
        if filename != "manifest.csv" and key not in props:
            problems.add(None, filename, "in the zip but not declared in manifest.csv")
        elif filename != "manifest.csv" and props[key] == "absent":
            problems.add(None, filename, "in the zip but declared absent")
    return modes


def _rows(name: str, data: bytes, problems: Problems) -> Iterator[dict[str, str]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        problems.add(None, f"{name}.csv", "not UTF-8")
        return
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = reader.fieldnames or []
    required = ("propertyName", "value") if name == "manifest" else ("sourcedId",)
    missing = [column for column in required if column not in header]
    if missing:
        problems.add(None, f"{name}.csv", f"header lacks {', '.join(missing)}")
        return
    try:
        for row in reader:
            yield {k: v for k, v in row.items() if k is not None and v is not None}
    except csv.Error as e:
        problems.add(None, f"{name}.csv", f"not CSV: {e}")


def _rest_shape(row: dict[str, str], *, bulk: bool) -> dict[str, Any]:
    """A CSV row as the REST binding would send it: GUIDRefs for …SourcedId(s), numbers, userIds, metadata."""
    out: dict[str, Any] = {}
    for column, raw in row.items():
        value = raw.strip()
        if value == "":
            continue
        if column == "userIds":
            out[column] = [{"type": t.strip(), "identifier": v.strip()} for t, v in USER_ID.findall(value)]
        elif column.startswith("metadata."):
            out.setdefault("metadata", {})[column.removeprefix("metadata.")] = value
        elif column.endswith("SourcedIds"):
            refs = [s.strip() for s in value.split(",") if s.strip()]
            out[column.removesuffix("SourcedIds") + "s"] = [{"sourcedId": s} for s in refs]
        elif column.endswith("SourcedId"):
            out[column.removesuffix("SourcedId")] = {"sourcedId": value}
        elif column in CSV_NUMBERS:
            out[column] = _csv_number(value)
        else:
            out[column] = value
    if bulk and "status" not in out:
        out["status"] = "active"  # the CSV binding lets bulk files leave status blank
    return out


def _csv_number(value: str) -> int | float | str:
    """A number as JSON would carry it; left as text when it is not one, so the checks can say so."""
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            continue
    return value


def _attach_role(i: int, row: dict[str, str], users: list[dict[str, Any]], problems: Problems) -> None:
    """roles.csv rows become the users' `roles` array, as the REST binding nests them."""
    role = _rest_shape(row, bulk=True)
    owner = _ref(role.get("user"))
    user = next((u for u in users if u.get("sourcedId") == owner), None)
    if user is None:
        problems.add(i, f"roles[{i}].user.sourcedId", "not among this delivery's users")
        return
    entry = {"roleType": role.get("roleType"), "role": role.get("role"), "org": role.get("org")}
    user.setdefault("roles", []).append(_drop_none(entry))


def zip_csv_folder(folder: Path) -> bytes:
    """A CSV binding zip of every .csv in `folder` (samples, demos and tests keep CSV source, not zips)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.glob("*.csv")):
            archive.writestr(path.name, path.read_bytes())
    return buffer.getvalue()
