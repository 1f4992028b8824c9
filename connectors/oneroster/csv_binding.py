"""The OneRoster 1.2 CSV binding: a zip of CSV files read into the REST binding's shape."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from connectors.base import Problems
from connectors.oneroster.values import drop_none, ref_id
from connectors.oneroster.vocabulary import (
    COLLECTIONS,
    CSV_NUMBERS,
    EXTENSION_FILES,
    FILE_MODES,
    MANIFEST_VERSION,
    MAX_ZIP_BYTES,
    MAX_ZIP_FILES,
    ONEROSTER_FILES,
    ONEROSTER_VERSION,
    USER_ID,
)

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
    owner = ref_id(role.get("user"))
    user = next((u for u in users if u.get("sourcedId") == owner), None)
    if user is None:
        problems.add(i, f"roles[{i}].user.sourcedId", "not among this delivery's users")
        return
    entry = {"roleType": role.get("roleType"), "role": role.get("role"), "org": role.get("org")}
    user.setdefault("roles", []).append(drop_none(entry))


def zip_csv_folder(folder: Path) -> bytes:
    """A CSV binding zip of every .csv in `folder` (samples, demos and tests keep CSV source, not zips)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.glob("*.csv")):
            archive.writestr(path.name, path.read_bytes())
    return buffer.getvalue()
