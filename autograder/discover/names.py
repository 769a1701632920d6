"""Student names and ids from submission file names: seed 003's `Assignment1 FirstName LastName.ipynb` and Canvas's
download names (`<login>[_LATE]_<Canvas user id>_<attachment id>_<original name>`; `_LATE` is Canvas's mark of a
submission after the due date, kept as a fact of the submission: `canvas_late`)."""
from __future__ import annotations

import re
import unicodedata

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


def canvas_late(stem: str) -> bool:
    """Whether a Canvas download name carries Canvas's late marker (`lastfirst_LATE_1_2_lab`)."""
    canvas = CANVAS_NAME.match(stem)
    return bool(canvas and canvas.group("late"))


def safe_id(name: str) -> str:
    """ASCII letters, digits, '-', '_' and '.' only, never empty, never starting with a dot."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", ascii_name).strip("._") or "submission"
    return cleaned[:80]
