"""Discover: a folder of submissions -> one `Submission` value per student, never an exception per student.

A submission is one of
- `NAME.ipynb` (a `NAME.pdf` beside it is recorded as the student's report),
- a folder `NAME/` holding the student's files (exactly one notebook, optionally the PDF),
- an archive `NAME.zip` (graded, with the rubric's archive penalty: seed 000 asks for no archives).
Student ids come from the names: seed 003's `Assignment1 FirstName LastName.ipynb` gives `FirstName LastName`,
Canvas exports (`lastfirst_LATE_123_456_original name.ipynb`) give the Canvas login (autograder/discover/names.py).
Ids are made safe for file names (`submission` column, `OUT/<submission>/`) and unique; the original name is kept
for display. Gradescope's export (`submission_<id>/` folders and `submission_metadata.yml`) gives the submitters'
names instead of the folder names.

When each was handed in (autograder/discover/times.py) is a fact of the submission, outside its content digest:
`timestamp.txt` in its folder, Gradescope's `:created_at:`, and Canvas's late marker in its file name. The grader
checks nothing of it; the cheap stage turns it into lateness (autograder/scoring/late.py).
"""
from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from autograder.discover import times
from autograder.discover.names import canvas_late, safe_id, student_name

NOTEBOOK_SUFFIX = ".ipynb"
REPORT_SUFFIX = ".pdf"
ARCHIVE_SUFFIXES = (".zip",)
MAX_NOTEBOOK_BYTES = 50 * 1024 * 1024  # a lab notebook with every figure is a few MB

# flags of a submission (the rubric may penalise any of them)
ARCHIVE_FLAG = "archive_submission"
PDF_PRESENT_FLAG = "report_pdf_present"
PDF_MISSING_FLAG = "report_pdf_missing"
IGNORED_NAMES = {".DS_Store", "__MACOSX", ".ipynb_checkpoints", "Thumbs.db"}


@dataclass(frozen=True)
class Submission:
    submission_id: str            # safe, unique: the `submission` column and the folder name under OUT/
    display_name: str             # as the student named it
    source: Path                  # the file or folder found in the submissions folder
    notebook_member: str | None   # notebook to grade: a path under `source` (folder), a zip member, or "" (file)
    flags: frozenset = field(default_factory=frozenset)  # the *_FLAG names above
    problem: str | None = None    # why nothing can be graded; the submission still gets a row and a report
    submitted_at: datetime | None = None  # when it was handed in, when known (no tzinfo: the deadline's zone)
    time_source: str = ""         # where submitted_at comes from
    late_marker: bool = False     # the LMS marked it late (Canvas's _LATE_ in the file name)

    def notebook_bytes(self) -> bytes:
        """The notebook's bytes, wherever it lives. Raises OSError/zipfile errors for the caller to turn into a status."""
        if self.source.suffix.lower() in ARCHIVE_SUFFIXES:
            with zipfile.ZipFile(self.source) as archive:
                info = archive.getinfo(self.notebook_member)
                if info.file_size > MAX_NOTEBOOK_BYTES:
                    raise ValueError(f"{self.notebook_member} is {info.file_size} bytes once unpacked: too large")
                return archive.read(info)
        path = self.source / self.notebook_member if self.notebook_member else self.source
        if path.stat().st_size > MAX_NOTEBOOK_BYTES:
            raise ValueError(f"{path.name} is {path.stat().st_size} bytes: too large for a notebook")
        return path.read_bytes()

    def content_digest(self) -> str:
        """sha256 of what is graded plus the flags that change the score; '' when there is nothing to read."""
        digest = hashlib.sha256()
        try:
            digest.update(self.notebook_bytes() if self.notebook_member is not None else b"")
        except (OSError, ValueError, KeyError, zipfile.BadZipFile):
            digest.update(b"<unreadable>")
        digest.update(repr(sorted(self.flags)).encode())
        digest.update((self.problem or "").encode())
        return digest.hexdigest()


def _is_ignored(path: Path) -> bool:
    return path.name in IGNORED_NAMES or path.name.startswith(".") or path.name.startswith("~$")


def _notebooks_in_folder(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*" + NOTEBOOK_SUFFIX)
                  if not any(part in IGNORED_NAMES or part.startswith(".") for part in p.relative_to(folder).parts))


def _notebooks_in_zip(archive_path: Path) -> tuple[list[str], bool]:
    with zipfile.ZipFile(archive_path) as archive:
        names = archive.namelist()
    notebooks = sorted(n for n in names if n.lower().endswith(NOTEBOOK_SUFFIX)
                       and not any(part in IGNORED_NAMES or part.startswith(".") for part in n.split("/")))
    has_pdf = any(n.lower().endswith(REPORT_SUFFIX) for n in names)
    return notebooks, has_pdf


def _one_notebook(candidates: list[str], where: str) -> tuple[str | None, str | None]:
    if len(candidates) == 1:
        return candidates[0], None
    if not candidates:
        return None, f"no .ipynb notebook found in {where}: submit your notebook as a .ipynb file"
    return None, (f"{where} holds {len(candidates)} notebooks ({', '.join(candidates)}): submit exactly one "
                  "notebook so the grader knows which to run")


def describe(path: Path) -> Submission | None:
    """One entry of the submissions folder -> a Submission (None for entries that are not submissions)."""
    suffix = path.suffix.lower()
    if path.is_dir():
        name = path.name
        member, problem = _one_notebook(_notebooks_in_folder(path), f"folder '{path.name}'")
        has_pdf = any(p.suffix.lower() == REPORT_SUFFIX for p in path.rglob("*"))
        flags = {PDF_PRESENT_FLAG if has_pdf else PDF_MISSING_FLAG}
    elif suffix == NOTEBOOK_SUFFIX:
        name = path.stem
        member, problem = "", None
        has_pdf = any(p.suffix.lower() == REPORT_SUFFIX and p.stem == path.stem for p in path.parent.iterdir())
        flags = {PDF_PRESENT_FLAG if has_pdf else PDF_MISSING_FLAG}
    elif suffix in ARCHIVE_SUFFIXES:
        name = path.stem
        flags = {ARCHIVE_FLAG}
        try:
            notebooks, has_pdf = _notebooks_in_zip(path)
            member, problem = _one_notebook(notebooks, f"archive '{path.name}'")
            flags.add(PDF_PRESENT_FLAG if has_pdf else PDF_MISSING_FLAG)
        except (zipfile.BadZipFile, OSError) as error:
            member, problem = None, f"'{path.name}' is not a readable zip archive ({error}): submit the .ipynb itself"
    else:
        return None
    submitted_at = times.read_timestamp_file(path) if path.is_dir() else None
    return Submission(submission_id=safe_id(student_name(name)), display_name=student_name(name), source=path,
                      notebook_member=member, flags=frozenset(flags), problem=problem, submitted_at=submitted_at,
                      time_source=times.TIMESTAMP_FILE if submitted_at else "", late_marker=canvas_late(name))


def with_gradescope_metadata(submission: Submission, entry: times.GradescopeEntry) -> Submission:
    """A `submission_<id>/` folder of a Gradescope export, named after its submitters and timed by Gradescope."""
    name = " & ".join(entry.names) or submission.display_name
    changes = {"display_name": name, "submission_id": safe_id(name)}
    if entry.created_at is not None:
        changes |= {"submitted_at": entry.created_at, "time_source": f"Gradescope ({times.GRADESCOPE_METADATA})"}
    return replace(submission, **changes)


def discover(submissions_dir: Path) -> list[Submission]:
    """Every submission in the folder, sorted by id, ids made unique with a numeric suffix."""
    submissions_dir = Path(submissions_dir)
    if not submissions_dir.is_dir():
        raise FileNotFoundError(f"submissions folder '{submissions_dir}' does not exist: pass SUBMISSIONS=<folder>")
    found = [s for p in sorted(submissions_dir.iterdir()) if not _is_ignored(p) and (s := describe(p)) is not None]
    gradescope = times.read_gradescope_metadata(submissions_dir)
    found = [with_gradescope_metadata(s, gradescope[s.source.name]) if s.source.name in gradescope else s
             for s in found]
    seen: dict[str, int] = {}
    unique = []
    for submission in sorted(found, key=lambda s: (s.submission_id.lower(), str(s.source))):
        count = seen.get(submission.submission_id.lower(), 0)
        seen[submission.submission_id.lower()] = count + 1
        if count:
            submission = replace(submission, submission_id=f"{submission.submission_id}-{count + 1}")
        unique.append(submission)
    return unique
