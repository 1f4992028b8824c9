"""The OneRoster parser and its checks, shared by the REST (JSON) and CSV bindings."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from functools import partial
from typing import Any, ClassVar

from connectors.base import Item, Problems
from connectors.oneroster.csv_binding import read_csv_zip
from connectors.oneroster.values import (
    bool_flag,
    drop_none,
    has_role,
    is_number,
    is_text,
    parse_when,
    ref_id,
    sensitive_flag,
    utc,
    version_of,
)
from connectors.oneroster.vocabulary import (
    AGENT_ROLES,
    ATTENDANCE_CODES,
    BEHAVIOUR_TYPES,
    CLOCK_SKEW,
    CODES_IN_FORCE_FROM,
    COLLECTIONS,
    GRADED,
    KIND_ATTENDANCE,
    KIND_BEHAVIOUR,
    KIND_RESULT,
    LATE_CODES,
    ROLES,
    SCORE_STATUSES,
    SESSION_ONLY_CODES,
    SESSIONS,
    STATUSES,
    UPN_TYPE,
)
from pds.vault.identifiers import upn_ok


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
            if not is_text(sid):
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
            if has_role(user, "student"):
                upn = self._upn(i, at, user)
                if upn and upn in seen:
                    self.p.add(i, f"{at}.userIds", f"UPN also held by users[{seen[upn]}]")
                elif upn and is_text(user.get("sourcedId")):
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
        if not is_text(value):
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
        is_agent = any(has_role(user, role) for role in AGENT_ROLES)
        for k, ref in enumerate(agents):
            at = f"users[{i}].agents[{k}].sourcedId"
            sid = ref_id(ref)
            if sid is None or sid not in self.by_id["users"]:
                self.p.add(i, at, "not among this delivery's users")
            elif is_agent and not has_role(self.by_id["users"][sid], "student"):
                self.p.add(i, at, "a parent's or guardian's agent must be a student")

    # 3. gradebook ------------------------------------------------------------------------------------

    def _categories(self) -> None:
        for i, cat in enumerate(self.cols["categories"]):
            self._required_text(i, f"categories[{i}]", cat, "title")
            if cat.get("weight") is not None and not is_number(cat["weight"]):
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
                if value is not None and not is_number(value):
                    self.p.add(i, f"{at}.{name}", "must be a number")
            if is_number(lo) and is_number(hi) and lo > hi:
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
            if score is not None and not is_number(score):
                self.p.add(i, f"{at}.score", "must be a number")
            elif score is None and status in GRADED and not is_text(res.get("textScore")):
                self.p.add(i, f"{at}.score", f"a {status} result needs a score or textScore")
            elif score is not None and li is not None:
                self._in_range(i, at, score, li)
            when = self._date(i, at, res, "scoreDate", required=True)
            if upn and li is not None and when:
                self.pending.append(partial(self._result_item, upn, res, li, when))

    def _in_range(self, i: int, at: str, score: float, li: dict[str, Any]) -> None:
        lo, hi = li.get("resultValueMin"), li.get("resultValueMax")
        if is_number(lo) and score < lo:
            self.p.add(i, f"{at}.score", f"below the lineItem's resultValueMin {lo}")
        if is_number(hi) and score > hi:
            self.p.add(i, f"{at}.score", f"above the lineItem's resultValueMax {hi}")

    def _result_item(self, upn: str, res: dict[str, Any], li: dict[str, Any], when: dt.datetime) -> Item:
        return self._item(KIND_RESULT, upn, res, when, self._result_payload(res, li))

    def _result_payload(self, res: dict[str, Any], li: dict[str, Any]) -> dict[str, Any]:
        cat = self.by_id["categories"].get(ref_id(li.get("category")) or "")
        class_id = ref_id(res.get("class")) or ref_id(li.get("class"))
        cls = self.by_id["classes"].get(class_id or "", {})
        line_item = {
            "sourcedId": li["sourcedId"],
            "title": li["title"],
            "description": li.get("description"),
            "assignDate": li.get("assignDate"),
            "dueDate": li.get("dueDate"),
            "resultValueMin": li.get("resultValueMin"),
            "resultValueMax": li.get("resultValueMax"),
            "category": drop_none(
                {"sourcedId": cat["sourcedId"], "title": cat["title"], "weight": cat.get("weight")}
            )
            if cat
            else None,
        }
        return drop_none(
            {
                **self._common(res),
                "lineItem": drop_none(line_item),
                "class": drop_none({"sourcedId": class_id, "title": cls.get("title")}) if class_id else None,
                "scoreStatus": res["scoreStatus"],
                "score": res.get("score"),
                "textScore": res.get("textScore") or None,
                "scoreDate": res["scoreDate"],
                "comment": res.get("comment") or None,
                **{
                    name: bool_flag(res.get(name)) for name in ("inProgress", "incomplete", "late", "missing")
                },
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
            if late is not None and (not is_number(late) or not isinstance(late, int) or late < 0):
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
        return self._item(KIND_ATTENDANCE, upn, mark, when, drop_none(payload))

    def _behaviour(self, upns: dict[str, str]) -> None:
        for i, event in enumerate(self.cols["behaviour"]):
            at = f"behaviour[{i}]"
            upn = self._student(i, at, event, upns)
            when = self._date(i, at, event, "date", required=True)
            if event.get("type") not in BEHAVIOUR_TYPES:
                self.p.add(i, f"{at}.type", "must be behaviour or achievement")
            points = event.get("points")
            if points is not None and (not is_number(points) or not isinstance(points, int)):
                self.p.add(i, f"{at}.points", "must be a whole number")
            if sensitive_flag(event) not in (None, "") and bool_flag(sensitive_flag(event)) is None:
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
        sensitive = bool(bool_flag(sensitive_flag(event)))
        return self._item(KIND_BEHAVIOUR, upn, event, when, drop_none(payload), sensitive=sensitive)

    # shared pieces -----------------------------------------------------------------------------------

    def _student(self, i: int, at: str, rec: dict[str, Any], upns: dict[str, str]) -> str | None:
        sid = ref_id(rec.get("student"))
        if sid is None:
            self.p.add(i, f"{at}.student.sourcedId", "required")
        elif sid not in self.by_id["users"]:
            self.p.add(i, f"{at}.student.sourcedId", "not among this delivery's users")
        elif not has_role(self.by_id["users"][sid], "student"):
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
        sid = ref_id(rec.get(key))
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
        if not is_text(rec.get(name)):
            self.p.add(i, f"{at}.{name}", "required")

    def _datetime(
        self, i: int, at: str, rec: dict[str, Any], name: str, *, required: bool, past: bool
    ) -> None:
        value = rec.get(name)
        if value in (None, ""):
            if required:
                self.p.add(i, f"{at}.{name}", "required")
            return
        when = parse_when(value)
        if when is None:
            self.p.add(i, f"{at}.{name}", "not an ISO 8601 date, or date and time with a zone")
        elif past and when > self.now + CLOCK_SKEW:
            self.p.add(i, f"{at}.{name}", "in the future")

    def _date(self, i: int, at: str, rec: dict[str, Any], name: str, *, required: bool) -> dt.datetime | None:
        before = len(self.p.found)
        self._datetime(i, at, rec, name, required=required, past=True)
        return parse_when(rec.get(name)) if len(self.p.found) == before else None

    def _common(self, rec: dict[str, Any]) -> dict[str, Any]:
        return {
            "sourcedId": rec["sourcedId"],
            "status": rec["status"],
            "dateLastModified": utc(rec["dateLastModified"]).isoformat(),
            "student": {"sourcedId": ref_id(rec.get("student"))},
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
