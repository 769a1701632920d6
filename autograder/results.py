"""The results model: what grading produces, defined once. A leaf module: it imports nothing from the package.

- `Status`: the table of a submission's statuses (name, meaning for humans, whether the submission is graded from
  what it produced, its colour in the class summary, whether Canvas gets its score or a blank cell).
- `ItemScore`: one rubric item's outcome, the single form item scores keep from scoring to every report.
- `GradeRow`: one submission's row (status, scores, flags, the item scores, cell errors and the notes of its run),
  with its own JSON round trip (OUT/<submission>/row.json). It also carries the facts of the submission that the
  cheap stage needs and that are not part of the cache key: its file name, when it was handed in (and how that is
  known), Canvas's late marker, the student's extension and the states of the written answers.
- `Lateness`: a row's lateness, assessed by the cheap stage from those facts and the rubric's deadline and late
  policy (autograder/scoring/late.py), shown in the gradebook, the feedback and the summary.
- The names of the files the grader writes in OUT/.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

# --- the files in OUT/ -------------------------------------------------------------------------------------------

GRADEBOOK_CSV = "gradebook.csv"                 # one row per submission, one column per rubric item
CANVAS_GRADEBOOK_CSV = "canvas_gradebook.csv"   # for Canvas's gradebook import
GRADING_LOG = "grading.log"                     # the run log
SUMMARY_HTML = "summary.html"                   # the class summary
SIMILARITY_HTML = "similarity.html"             # closest pairs of submissions by shared code
SECRET_FILE = ".probe_secret"                   # seeds the probe inputs; never visible to a submission
REVIEW_DIR = "review"                           # OUT/review/: the TA's sheet of written answers
REVIEW_CSV = "written_answers.csv"
REVIEW_HTML = "written_answers.html"
# in OUT/<submission>/
ROW_FILE = "row.json"                           # the cached automatic row (and its cache key)
EXECUTED_NOTEBOOK = "executed.ipynb"            # the notebook as it ran in the grader
RESULTS_JSON = "results.json"                   # Gradescope's results format
FEEDBACK_HTML = "feedback.html"                 # the student's feedback page (the staff's preview: every item)
MEASUREMENTS_JSON = "measurements.json"         # what the grader measured of the student's models (for staff)
# OUT/release/: what students get (`python -m autograder release`)
RELEASE_DIR = "release"
RELEASE_PDF = "feedback.pdf"                    # OUT/release/<submission>/feedback.pdf
RELEASE_INDEX = "index.html"                    # OUT/release/index.html: the list for the instructor
# every name the run itself writes directly in OUT/ (a submission's folder OUT/<id>/ may be none of them)
OUT_NAMES = (GRADEBOOK_CSV, CANVAS_GRADEBOOK_CSV, GRADING_LOG, SUMMARY_HTML, SIMILARITY_HTML, SECRET_FILE, REVIEW_DIR,
             RELEASE_DIR)
OUT_FOLDERS = (REVIEW_DIR, RELEASE_DIR)


def clear_output_names(out_dir, warn=print) -> list[str]:
    """Moves aside what stands where the run writes its own files: a folder named like one of its files (left by an
    older version, which made a submission's folder of `gradebook.csv`), or a file named like its folders. Returns
    the new names; `warn(message)` is told about each."""
    import time
    from pathlib import Path

    moved = []
    for name in OUT_NAMES:
        path = Path(out_dir) / name
        wrong = path.is_dir() if name not in OUT_FOLDERS else (path.exists() and not path.is_dir())
        if path.is_symlink() or wrong:
            aside = path.with_name(f"{name}.moved-{time.strftime('%Y%m%d-%H%M%S')}")
            path.rename(aside)
            moved.append(aside.name)
            warn(f"{path} was in the way of the grader's own {name} and was renamed {aside.name}")
    return moved


# --- statuses ----------------------------------------------------------------------------------------------------

class Status(StrEnum):
    """A submission's status: equal to its name ("ok", ...), with the rest of its row of the table as attributes."""

    meaning: str          # for the student and the instructor
    graded: bool          # graded from what the run produced (else every item is 0 unless something was harvested)
    colour: str           # in the class summary's plots
    canvas_score: bool    # Canvas gets the score (False: a blank cell, which Canvas leaves unchanged)

    def __new__(cls, name: str, meaning: str, graded: bool, colour: str, canvas_score: bool):
        member = str.__new__(cls, name)
        member._value_ = name
        member.meaning, member.graded, member.colour, member.canvas_score = meaning, graded, colour, canvas_score
        return member

    OK = ("ok", "graded: every cell ran", True, "#2da44e", True)
    CELL_ERROR = ("cell_error", "graded: some cells raised errors, so what they should have produced is missing", True,
                  "#d4a72c", True)
    TIMEOUT = ("timeout", "the notebook ran past the time limit and was stopped", False, "#cf222e", True)
    KERNEL_DIED = ("kernel_died", "the Python kernel died while running the notebook (usually out of memory)", False,
                   "#8250df", True)
    INVALID = ("invalid", "the submission could not be read as a notebook (wrong file type, several or no notebooks, "
                          "corrupt JSON)", False, "#6e7781", True)
    OUTPUT_LIMIT = ("output_limit", "the notebook printed more output than the grader keeps and was stopped", False,
                    "#bc4c00", True)
    ERROR = ("error", "the grader itself failed on this submission (a grader bug, not the student's): tell the course "
                      "staff", False, "#1f2328", False)

    @classmethod
    def find(cls, name: Any) -> "Status | None":
        """The status called `name` (e.g. a gradebook cell), or None for a name the table does not hold."""
        return cls._value2member_map_.get(str(name))


UNKNOWN_STATUS_COLOUR = "#6e7781"


def is_graded(status: Any) -> bool:
    """Whether a row with this status (a Status or its name) is graded from what its run produced."""
    found = Status.find(status)
    return bool(found and found.graded)


# --- item scores -------------------------------------------------------------------------------------------------

@dataclass
class ItemScore:
    item_id: str
    title: str
    points: float          # earned, after penalties
    max_points: float
    visibility: str        # visible | hidden | after_published
    message: str           # for the student
    fraction: float        # the check's fraction in [0, 1], before penalties
    check: str = ""
    details: dict = field(default_factory=dict)    # plain data from the check, for instructors
    penalties: list = field(default_factory=list)  # messages of the rubric penalties applied to `points`

    @property
    def id(self) -> str:
        return self.item_id

    @property
    def awaiting_review(self) -> bool:
        """A written answer the TA has not scored yet: neither passed nor failed."""
        return bool(self.details.get("awaiting_review"))

    @classmethod
    def zero(cls, item: Any, message: str, details: dict | None = None) -> "ItemScore":
        """No points on a rubric item (anything with item_id, title, points, visibility and check)."""
        return cls(item.item_id, item.title, 0.0, float(item.points), item.visibility, message, 0.0, item.check,
                   dict(details or {}))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ItemScore":
        return cls(**data)


# --- a submission's row ------------------------------------------------------------------------------------------

def plain_json(value: Any) -> Any:
    """json.dumps fallback for check details: numpy scalars and arrays as numbers and lists, anything else as text."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    return str(value)


@dataclass
class Lateness:
    """When a submission came in against its deadline, and what the late policy takes for it.

    `state`: `on_time`, `late`, `unknown` (marked late, e.g. by Canvas, with no time known), `no_time` (no time known
    and not marked late: counted as on time). `fraction` is the share of every item's points removed (written answers
    included); `message` says all of it once, for the student; `label` is the gradebook's short form."""

    state: str
    fraction: float = 0.0
    message: str = ""
    label: str = ""
    submitted_at: str = ""     # ISO 8601, when known
    deadline: str = ""         # the deadline that applied (the extension's when there is one), ISO 8601
    extended: bool = False
    late_seconds: float = 0.0
    days: int = 0              # started days late (after the grace period)

    @property
    def penalised(self) -> bool:
        return self.fraction > 0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Lateness":
        return cls(**data)


@dataclass
class GradeRow:
    submission: str
    display_name: str
    status: Status
    reason: str
    score: float
    max_score: float
    items: dict = field(default_factory=dict)           # rubric item id -> points (written answers: once scored)
    flags: list = field(default_factory=list)
    duration_s: float = 0.0
    sandbox: str = ""
    cache_key: str = ""
    item_scores: list = field(default_factory=list)     # [ItemScore] of the automatic items, for the reports
    cell_errors: list = field(default_factory=list)     # for feedback.html
    awaiting_review: list = field(default_factory=list)  # written-answer item ids without a TA score (final row)
    notes: list = field(default_factory=list)           # the run's notes (truncated output, converted notebook...)
    advice: list = field(default_factory=list)          # where the notebook departs from the template (top of page)
    # facts of the submission, refreshed every run and not part of the cache key (the cheap stage reads them)
    source_name: str = ""                               # its file or folder in the submissions folder
    submitted_at: str = ""                              # when it was handed in (ISO 8601), when known
    time_source: str = ""                               # where that time comes from
    late_marker: bool = False                           # marked late by the LMS (Canvas's _LATE_ in the file name)
    extension: str = ""                                 # this student's extended deadline (ISO 8601), if any
    answer_states: dict = field(default_factory=dict)   # written answers: item id -> answered, blank, not_found, ...
    lateness: Lateness | None = None                    # the cheap stage's assessment (final rows only)

    def to_json(self) -> str:
        """row.json's text: plain JSON (numpy values in check details become numbers)."""
        return json.dumps(asdict(self), indent=1, default=plain_json)

    @classmethod
    def from_json(cls, text: str) -> "GradeRow":
        """Raises ValueError, KeyError or TypeError for a text that is not a row of this version."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("a row is a JSON object")
        status = Status(data.pop("status"))
        item_scores = [ItemScore.from_dict(entry) for entry in data.pop("item_scores", [])]
        lateness = data.pop("lateness", None)
        lateness = Lateness.from_dict(lateness) if isinstance(lateness, dict) else None
        return cls(status=status, item_scores=item_scores, lateness=lateness, **data)

    def table_row(self) -> dict:
        """The row as the gradebook and the class reports read it (the per-item details stay in results.json)."""
        data = asdict(self)
        for key in ("item_scores", "cell_errors", "notes", "advice"):
            data.pop(key)
        return data

    FACTS = ("source_name", "submitted_at", "time_source", "late_marker", "extension", "answer_states")

    def facts(self) -> dict:
        """The facts of the submission this row carries (see the field comments)."""
        return {name: getattr(self, name) for name in self.FACTS}
