"""OUT/canvas_gradebook.csv: the class's scores in the CSV layout Canvas's Gradebook "Import" accepts.

Layout (as Canvas exports its gradebook, and reads it back):
    Student,ID,SIS User ID,SIS Login ID,Section,<assignment>
        Points Possible,,,,,<the assignment's points>
    <name>,<Canvas user id>,<SIS user id>,<SIS login id>,<section>,<score>
- `<assignment>` is `--canvas-assignment` as given, e.g. "Lab: Autoencoders, PCA and VAEs (123456)": with the
  Canvas assignment id in parentheses Canvas updates that assignment; with a name only (the default: the rubric's
  title) Canvas creates a new assignment of that name, worth the "Points Possible" row.
- The score is the gradebook's total: automatic items plus the TA's written-answer scores (an answer awaiting review
  counts 0: import after the review, or import again later; Canvas overwrites the earlier score). A submission the
  grader itself failed on (status `error`) gets an empty cell, which Canvas leaves unchanged.
- Students are identified by their Canvas user id, taken from Canvas's own download names
  (`name[_LATE]_<user id>_<attachment id>_<file>`). With `--canvas-roster` (the course's gradebook exported from
  Canvas) the other columns are filled from the roster, matching by Canvas id, then by name ("Last, First" or
  "First Last", letters only) or SIS login; a match must be unique.
Limits: without a Canvas id or a roster match the id columns are empty and Canvas asks, on its import page, which
student the row is (or skips it); students in the roster without a submission are not listed (Canvas keeps their
current score); names are the submission's display name, for the reader only.
"""
from __future__ import annotations

import csv
import io
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from autograder.discover.names import CANVAS_NAME
from autograder.reports.writing import write_csv
from autograder.results import Status

log = logging.getLogger("autograder")

IDENTITY_COLUMNS = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
POINTS_POSSIBLE = "    Points Possible"     # the label Canvas's export puts in the first column of that row


class CanvasError(ValueError):
    """A Canvas roster that cannot be used; the message says which file and what to do."""


@dataclass(frozen=True)
class RosterEntry:
    student: str
    canvas_id: str
    sis_user_id: str = ""
    sis_login_id: str = ""
    section: str = ""


def canvas_user_id(submission: Any) -> str:
    """The Canvas user id in a Canvas download name, or ''."""
    source = Path(getattr(submission, "source", ""))
    name = source.stem if source.suffix else source.name
    match = CANVAS_NAME.match(name)
    return match.group("user_id") if match else ""


def name_keys(name: str) -> set[str]:
    """Letters-only forms of a name: "Lovelace, Ada" -> {"lovelaceada", "adalovelace"}; "Ada Lovelace" ->
    {"adalovelace"} (Canvas download names use the first form)."""
    name = str(name or "").strip().lower()
    if "," in name:
        last, first = name.split(",", 1)
        forms = [last + first, first + last]
    else:
        forms = [name]
    return {key for form in forms if (key := re.sub(r"[^a-z]", "", form))}


def read_roster(path: Path) -> list[RosterEntry]:
    """A Canvas gradebook export (or any CSV with at least Student and ID columns)."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as error:
        raise CanvasError(f"Canvas roster {path}: cannot be read ({error}); pass the CSV exported from the Canvas "
                          f"gradebook (Actions > Export)") from error
    except UnicodeDecodeError as error:
        raise CanvasError(f"Canvas roster {path}: not UTF-8 text; export it from Canvas again, or save it as "
                          f"'CSV UTF-8'") from error
    table = list(csv.reader(io.StringIO(text, newline="")))
    header = [h.strip() for h in table[0]] if table else []
    missing = [c for c in ("Student", "ID") if c not in header]
    if missing:
        raise CanvasError(f"Canvas roster {path}: missing column(s) {', '.join(missing)} (found: "
                          f"{', '.join(header) or 'nothing'}); pass the CSV exported from the Canvas gradebook")
    column = {name: header.index(name) for name in IDENTITY_COLUMNS if name in header}
    entries = []
    for values in table[1:]:
        get = lambda name: values[column[name]].strip() if name in column and column[name] < len(values) else ""
        if not get("Student") or get("Student") == POINTS_POSSIBLE.strip() or not get("ID"):
            continue          # the "Points Possible" row, blank lines
        entries.append(RosterEntry(get("Student"), get("ID"), get("SIS User ID"), get("SIS Login ID"),
                                   get("Section")))
    return entries


def match_roster(display_name: str, canvas_id: str, roster: list[RosterEntry]) -> RosterEntry | None:
    """The roster entry of a submission: by Canvas id, else a unique match by name or SIS login."""
    if canvas_id:
        by_id = [e for e in roster if e.canvas_id == canvas_id]
        if len(by_id) == 1:
            return by_id[0]
    keys = name_keys(display_name)
    candidates = [e for e in roster if keys & name_keys(e.student)
                  or (e.sis_login_id and e.sis_login_id.lower() == str(display_name).strip().lower())]
    return candidates[0] if len(candidates) == 1 else None


def _number(value: Any) -> str:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return ""
    return f"{value:.2f}".rstrip("0").rstrip(".") or "0"


def write_canvas_gradebook(path: Path, rows: Iterable[dict], submissions: Iterable[Any], rubric,
                           assignment: str | None = None, roster: Path | None = None) -> Path:
    """Write the Canvas import CSV for the gradebook `rows` (dicts with submission, display_name, status, score,
    max_score); `submissions` are the discovered Submissions (for Canvas ids in their file names)."""
    rows = sorted(rows, key=lambda r: str(r.get("submission", "")).lower())
    by_id = {s.submission_id: s for s in submissions}
    entries = read_roster(roster) if roster else []
    header = assignment.strip() if assignment and assignment.strip() else rubric.title
    possible = float(rubric.max_points) + float(getattr(rubric, "manual_points", 0.0))
    lines, unmatched, seen_ids = [], [], {}
    for row in rows:
        submission = by_id.get(row.get("submission"))
        name = str(row.get("display_name") or row.get("submission") or "")
        canvas_id = canvas_user_id(submission) if submission is not None else ""
        entry = match_roster(name, canvas_id, entries) if entries else None
        identity = ([entry.student, entry.canvas_id, entry.sis_user_id, entry.sis_login_id, entry.section]
                    if entry else [name, canvas_id, "", "", ""])
        if not identity[1]:
            unmatched.append(str(row.get("submission")))
        else:
            seen_ids.setdefault(identity[1], []).append(str(row.get("submission")))
        status = Status.find(row.get("status"))
        score = "" if status and not status.canvas_score else _number(row.get("score"))
        lines.append(identity + [score])
    if unmatched:
        log.warning("%s: no Canvas id for %s; Canvas will ask which student each is when importing%s", path.name,
                    ", ".join(unmatched), "" if roster else " (pass --canvas-roster with the Canvas gradebook export)")
    for canvas_id, subs in seen_ids.items():
        if len(subs) > 1:
            log.warning("%s: Canvas user %s has several submissions (%s); Canvas keeps the last row: remove the "
                        "others from the submissions folder", path.name, canvas_id, ", ".join(subs))
    if any(row.get("awaiting_review") for row in rows):
        log.warning("%s: some written answers await review and count 0 in these scores; import again after the "
                    "review", path.name)

    return write_csv(path, IDENTITY_COLUMNS + [header], lines,
                     extra_rows=[[POINTS_POSSIBLE, "", "", "", "", _number(possible)]])
