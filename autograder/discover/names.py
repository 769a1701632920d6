"""Student names and ids from submission file names: seed 003's `Assignment1 FirstName LastName.ipynb` and Canvas's
download names (`<login>[_LATE]_<Canvas user id>_<attachment id>_<original name>`; `_LATE` is Canvas's mark of a
submission after the due date, kept as a fact of the submission: `canvas_late`)."""
from __future__ import annotations

import re
import unicodedata

from autograder.results import OUT_NAMES

# Canvas's "Download Submissions" names: <name>[_LATE]_<Canvas user id>_<attachment id>_<original name>
CANVAS_NAME = re.compile(r"^(?P<login>[^_\s]+)(?P<late>_LATE)?_(?P<user_id>\d+)_(?P<attachment_id>\d+)_(?P<original>.+)$")
ASSIGNMENT_PREFIX = re.compile(r"^assignment\s*\d*[\s_-]+", re.IGNORECASE)


def student_name(stem: str) -> str:
    """`lastfirst_LATE_1_2_Assignment1 Ada Lovelace` -> `lastfirst`; `Assignment1 Ada Lovelace` -> `Ada Lovelace`."""
    canvas = CANVAS_NAME.match(stem)
    if canvas:
        return canvas.group("login")
    name = ASSIGNMENT_PREFIX.sub("", stem).strip()
    return name or stem


# names a folder must not have: the run's own outputs in OUT/, and names Windows reserves (OUT/ gets zipped and
# opened there)
WINDOWS_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}
RESERVED = {name.lower() for name in OUT_NAMES} | WINDOWS_RESERVED
MAX_ID = 80


def canvas_late(stem: str) -> bool:
    """Whether a Canvas download name carries Canvas's late marker (`lastfirst_LATE_1_2_lab`)."""
    canvas = CANVAS_NAME.match(stem)
    return bool(canvas and canvas.group("late"))


def safe_id(name: str) -> str:
    """ASCII letters, digits, '-' and '_' only (no dots: no hidden names, no extensions), starting and ending with a
    letter or digit, at most MAX_ID characters, never empty and never a reserved name (the run's own outputs,
    Windows device names): `submission_<name>` then."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    cleaned = re.sub(r"[^A-Za-z0-9_-]+", "_", ascii_name).strip("_-")[:MAX_ID].strip("_-") or "submission"
    if cleaned.lower() in RESERVED:
        cleaned = f"submission_{cleaned}"
    return cleaned
