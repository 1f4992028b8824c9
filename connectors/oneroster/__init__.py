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

from connectors.oneroster.csv_binding import read_csv_zip, zip_csv_folder
from connectors.oneroster.parser import OneRosterParser
from connectors.oneroster.values import version_of
from connectors.oneroster.vocabulary import ATTENDANCE_CODES, MAX_ZIP_BYTES, MAX_ZIP_FILES

__all__ = [
    "ATTENDANCE_CODES",
    "MAX_ZIP_BYTES",
    "MAX_ZIP_FILES",
    "OneRosterParser",
    "read_csv_zip",
    "version_of",
    "zip_csv_folder",
]
