"""OneRoster 1.2 vocabularies, the DfE attendance codes, and the CSV binding's limits."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

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
