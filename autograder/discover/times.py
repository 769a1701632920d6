"""When each submission was handed in, and the students' extensions, from what LMSs actually give.

Sources of a submission's time, each kept with the submission as `submitted_at` and `time_source`:
- `timestamp.txt` in a student's folder (nbgrader's convention: one line, e.g. `2026-03-13 22:58:23.948203 UTC`);
- Gradescope's export (`submission_metadata.yml` beside the `submission_<id>/` folders): each folder's
  `:created_at:`, and the submitters' names, which become the submission's name;
- a CSV of times (`--submission-times`, columns `submission,submitted_at`), which wins over the others;
- Canvas's download names carry no time, only a late marker (`_LATE_`, autograder/discover/names.py).
Extensions come from a CSV too (`--extensions`, columns `submission,deadline`).

A CSV row names a submission by its id (the gradebook's `submission` column), its name, or its file name (with or
without the extension); a row that matches nothing is named in a warning. Times are ISO 8601 (`2026-03-13 23:59`,
`2026-03-13T23:59:00+01:00`, optionally followed by a zone name such as `Europe/Amsterdam` or `UTC`); a time without
a zone is read in the deadline's zone (autograder/scoring/late.py). A time that cannot be read is an error naming
the file, the row and the form to use: nothing is graded with a guessed time.
"""
from __future__ import annotations

import csv
import io
import logging
import re
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Iterable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

import autograder.discover.reading as reading

log = logging.getLogger("autograder")

TIMESTAMP_FILE = "timestamp.txt"
GRADESCOPE_METADATA = "submission_metadata.yml"
MAX_TIME_FILE_BYTES = 4096           # timestamp.txt: one line
MAX_METADATA_BYTES = 64 * 1024 * 1024  # submission_metadata.yml of a large class
TIME_FORM = ("ISO 8601, e.g. 2026-03-13 23:59 or 2026-03-13T23:59:00+01:00, optionally followed by a zone name such "
             "as Europe/Amsterdam or UTC")
_ZONE_NAME = re.compile(r"[A-Za-z][A-Za-z_]*(?:/[A-Za-z0-9_+-]+)*")
UTC_NAMES = {"UTC", "GMT", "Z"}


class TimeError(ValueError):
    """A time, or a file of times, that cannot be used; the message names where and the form to use."""


def parse_time(value: Any, where: str) -> datetime:
    """A time as written by an LMS or an instructor -> a datetime (without tzinfo when the text has no zone)."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        raise TimeError(f"{where}: {value.isoformat()} is a date without a time; write {TIME_FORM}")
    text = str(value if value is not None else "").strip()
    head, _, last = text.rpartition(" ")
    with_zone = bool(head) and _ZONE_NAME.fullmatch(last) is not None
    try:
        moment = datetime.fromisoformat(head.strip() if with_zone else text)
    except ValueError:
        raise TimeError(f"{where}: '{text}' is not a time; write {TIME_FORM}") from None
    if not with_zone:
        return moment
    if last.upper() in UTC_NAMES:
        zone = timezone.utc
    else:
        try:
            zone = ZoneInfo(last)
        except (ZoneInfoNotFoundError, ValueError):
            raise TimeError(f"{where}: unknown time zone '{last}' in '{text}'; write an offset such as +01:00 "
                            f"or a zone name such as Europe/Amsterdam") from None
    if moment.tzinfo is not None:
        raise TimeError(f"{where}: '{text}' has both an offset and a zone name; keep one")
    return moment.replace(tzinfo=zone)


def show_time(moment: datetime | str | None) -> str:
    """A time for people: `2026-03-13 23:59 +01:00` (seconds only when there are some)."""
    if moment is None or moment == "":
        return ""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    text = moment.strftime("%Y-%m-%d %H:%M" + (":%S" if moment.second else ""))
    if moment.tzinfo is not None:
        offset = moment.strftime("%z")
        text += " UTC" if offset in ("+0000", "") else f" {offset[:3]}:{offset[3:]}"
    return text


# --- in the submissions folder ---------------------------------------------------------------------------------

def read_timestamp_file(folder: Path) -> datetime | None:
    """nbgrader's `timestamp.txt` in a student's folder; None when there is none or it cannot be read (said in a
    warning: the submission's time is then unknown)."""
    path = Path(folder) / TIMESTAMP_FILE
    if not path.exists() and not path.is_symlink():
        return None
    try:       # a regular file, read with a bound: the folder is the student's
        text = reading.read_regular(path, MAX_TIME_FILE_BYTES).decode("utf-8", errors="replace")
        return parse_time(text.strip().splitlines()[0], str(path))
    except (OSError, IndexError, TimeError, reading.ReadError) as error:
        log.warning("%s: the submission time cannot be read (%s); it is treated as unknown",
                    path, error if isinstance(error, TimeError) else type(error).__name__)
        return None


class _TolerantLoader(yaml.SafeLoader):
    """Gradescope's export is written by Ruby and may tag values (`!ruby/object:...`): read them as plain data."""


def _untagged(loader, suffix, node):
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)


_TolerantLoader.add_multi_constructor("!", _untagged)


def _plain_keys(value: Any) -> Any:
    """Ruby symbols as keys (`:created_at`) -> plain keys (`created_at`)."""
    if isinstance(value, dict):
        return {str(key).lstrip(":"): _plain_keys(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain_keys(item) for item in value]
    return value


@dataclass(frozen=True)
class GradescopeEntry:
    created_at: datetime | None
    names: tuple[str, ...]


def read_gradescope_metadata(submissions_dir: Path) -> dict[str, GradescopeEntry]:
    """Gradescope's `submission_metadata.yml` (in an export, beside the `submission_<id>/` folders): folder name ->
    submission time and submitters. {} when there is none; a file that cannot be read is named in a warning."""
    path = Path(submissions_dir) / GRADESCOPE_METADATA
    if not path.exists() and not path.is_symlink():
        return {}
    try:
        text = reading.read_regular(path, MAX_METADATA_BYTES).decode("utf-8")
        raw = _plain_keys(yaml.load(text, Loader=_TolerantLoader))
    except (OSError, UnicodeDecodeError, yaml.YAMLError, reading.ReadError) as error:
        log.warning("%s cannot be read (%s): the Gradescope submission times and names are not used", path, error)
        return {}
    if not isinstance(raw, dict):
        log.warning("%s is not Gradescope's mapping of submission folders: not used", path)
        return {}
    entries = {}
    for folder, data in raw.items():
        if not isinstance(data, dict):
            continue
        created = data.get("created_at")
        try:
            created = parse_time(created, f"{path}: {folder}") if created not in (None, "") else None
        except TimeError as error:
            log.warning("%s; that submission's time is treated as unknown", error)
            created = None
        submitters = data.get("submitters") if isinstance(data.get("submitters"), list) else []
        names = tuple(str(s.get("name")).strip() for s in submitters if isinstance(s, dict) and s.get("name"))
        entries[str(folder)] = GradescopeEntry(created, names)
    return entries


# --- CSV files the instructor passes -----------------------------------------------------------------------------

def keys_of(submission: Any) -> set[str]:
    """What a CSV row may call a submission: its id, its name, its file name with or without the extension."""
    source = Path(getattr(submission, "source", "") or "")
    keys = {getattr(submission, "submission_id", ""), getattr(submission, "display_name", ""), source.name,
            source.stem}
    return {str(key).strip().lower() for key in keys if str(key).strip()}


def read_time_table(path: Path, column: str, what: str) -> list[tuple[int, str, datetime]]:
    """(spreadsheet row, submission key, time) of a CSV with columns `submission` and `column`; raises TimeError
    naming the file and row for anything that cannot be used."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as error:
        raise TimeError(f"{what} {path}: cannot be read ({error})") from None
    except UnicodeDecodeError:
        raise TimeError(f"{what} {path}: not UTF-8 text; save it as 'CSV UTF-8'") from None
    table = list(csv.reader(io.StringIO(text, newline="")))
    header = [h.strip().lower() for h in table[0]] if table else []
    if "submission" not in header or column not in header:
        raise TimeError(f"{what} {path}: the header must hold the columns submission,{column} (found: "
                        f"{','.join(header) or 'nothing'})")
    at_key, at_time = header.index("submission"), header.index(column)
    rows = []
    for number, values in enumerate(table[1:], start=2):
        if not any(v.strip() for v in values):
            continue
        key = values[at_key].strip() if at_key < len(values) else ""
        if not key:
            raise TimeError(f"{what} {path}: row {number} names no submission")
        moment = parse_time(values[at_time] if at_time < len(values) else "", f"{what} {path}: row {number} "
                                                                              f"('{key}')")
        rows.append((number, key, moment))
    return rows


def match_table(rows: Iterable[tuple[int, str, datetime]], submissions: Iterable[Any], path: Path,
                what: str) -> dict[str, datetime]:
    """submission id -> time for the rows that name a submission; rows that name none, or several, are warned
    about (file and row), and a later row for the same submission wins."""
    submissions = list(submissions)
    matched: dict[str, datetime] = {}
    for number, key, moment in rows:
        hits = [s for s in submissions if key.lower() in keys_of(s)]
        if len(hits) != 1:
            log.warning("%s %s: row %d names '%s', which is %s; the row is not used", what, path, number, key,
                        "no submission of this batch" if not hits else
                        f"several submissions ({', '.join(s.submission_id for s in hits)}): use the id")
            continue
        matched[hits[0].submission_id] = moment
    return matched
