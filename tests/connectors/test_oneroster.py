"""OneRoster 1.2 connector: a school's gradebook, attendance and behaviour become items for Sam Okafor."""

from __future__ import annotations

import copy
import datetime as dt
import io
import json
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from connectors.base import DeliveryInvalid, Item
from connectors.oneroster import (
    ATTENDANCE_CODES,
    MAX_ZIP_BYTES,
    MAX_ZIP_FILES,
    OneRosterParser,
    version_of,
    zip_csv_folder,
)

SAMPLES = Path(__file__).resolve().parents[2] / "connectors" / "samples" / "oneroster"
SAM_UPN = "F201200124001"
NOW = dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.UTC)
JSON, ZIP = "application/json", "application/zip"


@pytest.fixture
def parser() -> OneRosterParser:
    return OneRosterParser(now=lambda: NOW)


def sam() -> dict[str, Any]:
    return json.loads((SAMPLES / "sam.rest.json").read_bytes())


def sam_csv() -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((SAMPLES / "csv").glob("*.csv"))}


def zip_of(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def parse(parser: OneRosterParser, delivery: dict[str, Any]) -> list[Item]:
    return parser.parse(json.dumps(delivery).encode(), media_type=JSON)


def problems(parser: OneRosterParser, body: bytes, media_type: str = JSON) -> set[tuple[int | None, str]]:
    with pytest.raises(DeliveryInvalid) as caught:
        parser.parse(body, media_type=media_type)
    return {(p.index, p.field) for p in caught.value.problems}


def by_id(items: list[Item]) -> dict[str, Item]:
    return {item.source_record_id: item for item in items}


# -- the REST binding ---------------------------------------------------------------------------------------


def test_sams_test_result_reads_alone_with_its_line_item_folded_in(parser: OneRosterParser) -> None:
    result = by_id(parse(parser, sam()))["res-li-7x-ma-fractions-test-usr-4471"]
    assert (result.identifier_kind, result.identifier, result.category) == ("upn", SAM_UPN, "education")
    assert result.kind == "oneroster:result"
    assert result.payload["score"] == 27 and result.payload["scoreStatus"] == "fully graded"
    line_item = result.payload["lineItem"]
    assert line_item["title"] == "Fractions test" and line_item["resultValueMax"] == 30
    assert line_item["category"]["title"] == "Assessment"
    assert result.payload["class"] == {"sourcedId": "cls-7x-ma1", "title": "Year 7 Maths"}
    assert result.payload["comment"].startswith("Confident")
    assert result.occurred_at == dt.datetime(2025, 3, 12, tzinfo=dt.UTC)  # GMT in March
    assert result.version == 1741795500000000  # 2025-03-12T16:05:00Z in microseconds


def test_a_result_without_its_own_class_takes_the_line_items_class(parser: OneRosterParser) -> None:
    homework = by_id(parse(parser, sam()))["res-li-7x-ma-ratio-hw-usr-4471"]
    assert homework.payload["class"]["title"] == "Year 7 Maths"
    assert "score" not in homework.payload and homework.payload["scoreStatus"] == "submitted"


def test_a_later_modification_gives_a_larger_version() -> None:
    earlier = version_of("2025-03-12T16:05:00Z")
    assert version_of("2025-03-12T16:05:00.000001Z") == earlier + 1
    assert version_of("2025-03-12T17:05:00+01:00") == earlier  # the same instant in another zone
    assert version_of("2025-03-13T00:00:00Z") > earlier


def test_a_week_of_attendance_carries_codes_sessions_and_minutes_late(parser: OneRosterParser) -> None:
    marks = [i for i in parse(parser, sam()) if i.kind == "attendance:session"]
    assert len(marks) == 10 and {m.identifier for m in marks} == {SAM_UPN}
    codes = [(m.payload["date"], m.payload["session"], m.payload["code"]) for m in marks]
    assert codes[:3] == [("2025-03-10", "AM", "/"), ("2025-03-10", "PM", "\\"), ("2025-03-11", "AM", "L")]
    late = by_id(marks)["att-4471-2025-03-11-am"]
    assert late.payload["minutesLate"] == 10 and late.payload["countsAs"] == "present"
    ill = by_id(marks)["att-4471-2025-03-13-am"]
    assert ill.payload["code"] == "I" and ill.payload["countsAs"] == "authorised absence"
    assert ill.occurred_at.date() == dt.date(2025, 3, 13)


def test_a_behaviour_event_the_school_marks_sensitive_is_hidden_from_proxies(parser: OneRosterParser) -> None:
    events = by_id([i for i in parse(parser, sam()) if i.kind == "behaviour:event"])
    praise, concern = events["beh-20250312-0042"], events["beh-20250314-0117"]
    assert (praise.payload["type"], praise.payload["points"], praise.sensitive) == ("achievement", 2, False)
    assert praise.payload["recordedBy"] == "Ms Adeyemi"
    assert concern.sensitive is True and concern.payload["type"] == "behaviour"


def test_the_sensitive_mark_may_travel_in_oneroster_metadata(parser: OneRosterParser) -> None:
    delivery = sam()
    delivery["behaviour"][0]["metadata"] = {"sensitive": "true"}
    assert by_id(parse(parser, delivery))["beh-20250312-0042"].sensitive is True


def test_only_the_pupil_gets_items_not_the_parent_or_teacher(parser: OneRosterParser) -> None:
    items = parse(parser, sam())
    assert len(items) == 14 and {i.identifier for i in items} == {SAM_UPN}
    assert all("Alice" not in json.dumps(i.payload) for i in items)


def test_the_upn_may_travel_in_identifier_instead_of_user_ids(parser: OneRosterParser) -> None:
    delivery = sam()
    student = delivery["users"][0]
    del student["userIds"]
    student["identifier"] = SAM_UPN.lower()  # checked, then upper-cased
    assert {i.identifier for i in parse(parser, delivery)} == {SAM_UPN}


def test_a_record_to_be_deleted_still_reaches_the_vault(parser: OneRosterParser) -> None:
    delivery = sam()
    delivery["results"][0]["status"] = "tobedeleted"
    result = by_id(parse(parser, delivery))["res-li-7x-ma-fractions-test-usr-4471"]
    assert result.payload["status"] == "tobedeleted"


def test_every_national_code_in_force_since_august_2024_is_read(parser: OneRosterParser) -> None:
    delivery = sam()
    template = delivery["attendance"][0]
    delivery["attendance"] = [
        {
            **template,
            "sourcedId": f"att-{n}",
            "date": str(dt.date(2025, 1, 6) + dt.timedelta(n)),
            "code": code,
        }
        | {"session": "PM" if code == "\\" else "AM"}
        for n, code in enumerate(ATTENDANCE_CODES)
    ]
    marks = [i for i in parse(parser, delivery) if i.kind == "attendance:session"]
    assert {m.payload["code"] for m in marks} == set(ATTENDANCE_CODES)
    assert {"Y1", "Y7", "C1", "C2", "J1", "#", "Z", "K"} <= set(ATTENDANCE_CODES)


# -- the CSV binding ----------------------------------------------------------------------------------------


def test_the_csv_zip_gives_the_same_items_as_the_rest_json(parser: OneRosterParser) -> None:
    from_zip = parser.parse(zip_csv_folder(SAMPLES / "csv"), media_type=ZIP)
    assert from_zip == parse(parser, sam())


def test_a_bulk_file_may_leave_status_blank_but_a_delta_file_may_not(parser: OneRosterParser) -> None:
    files = sam_csv()
    files["results.csv"] = files["results.csv"].replace(b",active,2025-03-12T16:05", b",,2025-03-12T16:05")
    assert len(parser.parse(zip_of(files), media_type=ZIP)) == 14
    files["manifest.csv"] = files["manifest.csv"].replace(b"file.results,bulk", b"file.results,delta")
    assert (0, "results[0].status") in problems(parser, zip_of(files), ZIP)


def test_a_csv_score_that_is_not_a_number_is_named(parser: OneRosterParser) -> None:
    files = sam_csv()
    files["results.csv"] = files["results.csv"].replace(b"fully graded,27,", b"fully graded,27 marks,")
    assert (0, "results[0].score") in problems(parser, zip_of(files), ZIP)


def test_a_role_for_someone_not_in_users_csv_is_named(parser: OneRosterParser) -> None:
    files = sam_csv()
    files["roles.csv"] += b"rol-x,active,2024-09-02T07:45:00Z,usr-x,primary,student,,,org-urn-100000,\n"
    assert (3, "roles[3].user.sourcedId") in problems(parser, zip_of(files), ZIP)


def manifest_with(old: bytes, new: bytes) -> dict[str, bytes]:
    files = sam_csv()
    assert old in files["manifest.csv"]
    files["manifest.csv"] = files["manifest.csv"].replace(old, new)
    return files


@pytest.mark.parametrize(
    ("files", "field"),
    [
        ({k: v for k, v in sam_csv().items() if k != "manifest.csv"}, "manifest.csv"),
        (manifest_with(b"manifest.version,1.0", b"manifest.version,2.0"), "manifest.csv:manifest.version"),
        (manifest_with(b"oneroster.version,1.2", b"oneroster.version,1.1"), "manifest.csv:oneroster.version"),
        (manifest_with(b"file.results,bulk", b"file.results,full"), "manifest.csv:file.results"),
        (manifest_with(b"file.orgs,absent", b"file.orgs,bulk"), "manifest.csv:file.orgs"),
        (manifest_with(b"file.results,bulk", b"file.results,absent"), "results.csv"),
        (manifest_with(b"file.behaviour,bulk\n", b""), "behaviour.csv"),
        (manifest_with(b"file.users,bulk", b"file.users,bulk\nfile.pupils,bulk"), "manifest.csv:file.pupils"),
    ],
    ids=[
        "no-manifest",
        "manifest-version",
        "oneroster-version",
        "unknown-mode",
        "declared-but-missing",
        "present-but-absent",
        "present-but-undeclared",
        "unknown-file",
    ],
)
def test_manifest_errors_are_named(parser: OneRosterParser, files: dict[str, bytes], field: str) -> None:
    assert (None, field) in problems(parser, zip_of(files), ZIP)


def test_files_must_sit_at_the_root_of_the_zip(parser: OneRosterParser) -> None:
    files = sam_csv()
    files["../users.csv"] = files.pop("users.csv")
    assert (None, "../users.csv") in problems(parser, zip_of(files), ZIP)


def test_a_zip_bomb_is_refused_before_it_is_expanded(parser: OneRosterParser) -> None:
    files = sam_csv() | {"orgs.csv": b"sourcedId\n" + b"0" * MAX_ZIP_BYTES}
    body = zip_of(files)
    assert len(body) < MAX_ZIP_BYTES // 100  # tiny on the wire, huge once expanded
    assert (None, "body") in problems(parser, body, ZIP)


def test_a_zip_that_understates_its_sizes_is_still_bounded(parser: OneRosterParser) -> None:
    body = bytearray(zip_of({"manifest.csv": b"propertyName,value\n" + b"0" * (MAX_ZIP_BYTES + 10)}))
    # rewrite the uncompressed size in the local header (offset 22) and the central directory (offset 24)
    struct.pack_into("<I", body, 22, 100)
    central = body.rfind(b"PK\x01\x02")
    struct.pack_into("<I", body, central + 24, 100)
    assert (None, "manifest.csv") in problems(parser, bytes(body), ZIP)  # read no further than declared


def test_a_zip_with_too_many_files_is_refused(parser: OneRosterParser) -> None:
    files = {f"f{n}.csv": b"sourcedId\n" for n in range(MAX_ZIP_FILES + 1)}
    assert (None, "body") in problems(parser, zip_of(files), ZIP)


def test_a_body_that_is_not_a_zip_is_refused(parser: OneRosterParser) -> None:
    assert problems(parser, b"PK not really", ZIP) == {(None, "body")}


# -- the checks, each named by index and field --------------------------------------------------------------


def user(d: dict[str, Any], n: int) -> dict[str, Any]:
    return d["users"][n]


Mutation = Callable[[dict[str, Any]], Any]
RULES: list[tuple[str, Mutation, tuple[int | None, str]]] = [
    ("status", lambda d: d["results"][0].update(status="deleted"), (0, "results[0].status")),
    (
        "score-status",
        lambda d: d["results"][0].update(scoreStatus="Fully Graded"),
        (0, "results[0].scoreStatus"),
    ),
    ("score-above-max", lambda d: d["results"][0].update(score=31), (0, "results[0].score")),
    ("score-below-min", lambda d: d["results"][0].update(score=-1), (0, "results[0].score")),
    ("score-not-number", lambda d: d["results"][0].update(score="27"), (0, "results[0].score")),
    ("graded-without-score", lambda d: d["results"][0].pop("score"), (0, "results[0].score")),
    (
        "max-below-min",
        lambda d: d["lineItems"][0].update(resultValueMin=40),
        (0, "lineItems[0].resultValueMax"),
    ),
    (
        "score-date-format",
        lambda d: d["results"][1].update(scoreDate="14/03/2025"),
        (1, "results[1].scoreDate"),
    ),
    (
        "score-date-future",
        lambda d: d["results"][1].update(scoreDate="2025-06-02"),
        (1, "results[1].scoreDate"),
    ),
    (
        "modified-without-zone",
        lambda d: d["results"][0].update(dateLastModified="2025-03-12T16:05:00"),
        (0, "results[0].dateLastModified"),
    ),
    (
        "modified-future",
        lambda d: d["behaviour"][1].update(dateLastModified="2025-06-01T12:30:00Z"),
        (1, "behaviour[1].dateLastModified"),
    ),
    ("attendance-code", lambda d: d["attendance"][2].update(code="H"), (2, "attendance[2].code")),
    ("attendance-code-case", lambda d: d["attendance"][6].update(code="i"), (6, "attendance[6].code")),
    ("am-mark-in-pm", lambda d: d["attendance"][1].update(code="/"), (1, "attendance[1].code")),
    ("session", lambda d: d["attendance"][0].update(session="am"), (0, "attendance[0].session")),
    (
        "date-before-2024-codes",
        lambda d: d["attendance"][0].update(date="2024-07-01"),
        (0, "attendance[0].date"),
    ),
    (
        "attendance-date-future",
        lambda d: d["attendance"][0].update(date="2025-06-03"),
        (0, "attendance[0].date"),
    ),
    (
        "minutes-late-negative",
        lambda d: d["attendance"][2].update(minutesLate=-10),
        (2, "attendance[2].minutesLate"),
    ),
    (
        "minutes-late-fraction",
        lambda d: d["attendance"][2].update(minutesLate=9.5),
        (2, "attendance[2].minutesLate"),
    ),
    (
        "minutes-late-not-late",
        lambda d: d["attendance"][0].update(minutesLate=5),
        (0, "attendance[0].minutesLate"),
    ),
    (
        "second-mark",
        lambda d: d["attendance"][1].update(session="AM", code="/"),
        (1, "attendance[1].session"),
    ),
    (
        "duplicate-sourced-id",
        lambda d: d["attendance"][3].update(sourcedId="att-4471-2025-03-10-am"),
        (3, "attendance[3].sourcedId"),
    ),
    (
        "upn-check-letter",
        lambda d: user(d, 0)["userIds"][0].update(identifier="A201200124001"),
        (0, "users[0].userIds[0].identifier"),
    ),
    ("student-without-upn", lambda d: user(d, 0).pop("userIds"), (0, "users[0].userIds")),
    (
        "student-not-in-users",
        lambda d: d["results"][0]["student"].update(sourcedId="usr-5000"),
        (0, "results[0].student.sourcedId"),
    ),
    (
        "student-is-a-parent",
        lambda d: d["behaviour"][0]["student"].update(sourcedId="usr-p-9120"),
        (0, "behaviour[0].student.sourcedId"),
    ),
    (
        "line-item-not-in-delivery",
        lambda d: d["results"][1]["lineItem"].update(sourcedId="li-nope"),
        (1, "results[1].lineItem.sourcedId"),
    ),
    (
        "category-not-in-delivery",
        lambda d: d["lineItems"][0]["category"].update(sourcedId="cat-nope"),
        (0, "lineItems[0].category.sourcedId"),
    ),
    ("missing-sourced-id", lambda d: d["results"][0].pop("sourcedId"), (0, "results[0].sourcedId")),
    (
        "missing-modified",
        lambda d: d["attendance"][4].pop("dateLastModified"),
        (4, "attendance[4].dateLastModified"),
    ),
    ("missing-score-status", lambda d: d["results"][0].pop("scoreStatus"), (0, "results[0].scoreStatus")),
    ("missing-title", lambda d: d["lineItems"][1].pop("title"), (1, "lineItems[1].title")),
    ("missing-student", lambda d: d["attendance"][5].pop("student"), (5, "attendance[5].student.sourcedId")),
    ("missing-roles", lambda d: user(d, 2).pop("roles"), (2, "users[2].roles")),
    ("unknown-role", lambda d: user(d, 2)["roles"][0].update(role="Teacher"), (2, "users[2].roles[0].role")),
    (
        "dangling-agent",
        lambda d: user(d, 1)["agents"][0].update(sourcedId="usr-x"),
        (1, "users[1].agents[0].sourcedId"),
    ),
    (
        "parent-of-a-teacher",
        lambda d: user(d, 1)["agents"][0].update(sourcedId="usr-t-0318"),
        (1, "users[1].agents[0].sourcedId"),
    ),
    ("behaviour-type", lambda d: d["behaviour"][0].update(type="merit"), (0, "behaviour[0].type")),
    ("behaviour-points", lambda d: d["behaviour"][0].update(points=1.5), (0, "behaviour[0].points")),
    (
        "behaviour-sensitive",
        lambda d: d["behaviour"][1].update(sensitive="yes"),
        (1, "behaviour[1].sensitive"),
    ),
    ("collection-not-array", lambda d: d.update(results={"sourcedId": "x"}), (None, "results")),
]


@pytest.mark.parametrize(("mutate", "expected"), [r[1:] for r in RULES], ids=[r[0] for r in RULES])
def test_each_rule_names_the_index_and_field(
    parser: OneRosterParser, mutate: Mutation, expected: tuple[int | None, str]
) -> None:
    delivery = sam()
    mutate(delivery)
    assert expected in problems(parser, json.dumps(delivery).encode())


def test_a_duplicate_upn_across_two_students_is_refused(parser: OneRosterParser) -> None:
    delivery = sam()
    twin = copy.deepcopy(user(delivery, 0)) | {"sourcedId": "usr-4472", "agents": []}
    delivery["users"].append(twin)
    assert (3, "users[3].userIds") in problems(parser, json.dumps(delivery).encode())


def test_the_bad_sample_reports_every_problem_at_once(parser: OneRosterParser) -> None:
    with pytest.raises(DeliveryInvalid) as caught:
        parser.parse((SAMPLES / "bad.json").read_bytes(), media_type=JSON)
    fields = {p.field for p in caught.value.problems}
    assert {
        "users[0].userIds[0].identifier",
        "users[1].status",
        "results[0].scoreStatus",
        "results[0].score",
        "results[1].sourcedId",
        "results[1].student.sourcedId",
        "results[1].scoreDate",
        "attendance[0].code",
        "attendance[0].session",
        "attendance[1].minutesLate",
        "behaviour[0].type",
    } <= fields
    problem = caught.value.problem()
    assert problem["status"] == 422 and len(problem["errors"]) == len(caught.value.problems)


@pytest.mark.parametrize(
    ("body", "media_type", "field"),
    [
        (b"{", JSON, "body"),
        (b"[]", JSON, "body"),
        (b'{"results": [{"score": NaN}]}', JSON, "body"),
        (b"{}", JSON, "body"),
        (b"{}", "text/csv", "media_type"),
    ],
    ids=["not-json", "not-object", "nan", "no-collections", "media-type"],
)
def test_a_body_the_parser_cannot_read_is_refused_whole(
    parser: OneRosterParser, body: bytes, media_type: str, field: str
) -> None:
    assert (None, field) in problems(parser, body, media_type)


def test_json_with_a_charset_parameter_is_read(parser: OneRosterParser) -> None:
    body = (SAMPLES / "sam.rest.json").read_bytes()
    assert len(parser.parse(body, media_type="application/json; charset=utf-8")) == 14
