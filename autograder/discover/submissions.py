"""Discover: a folder of submissions -> one `Submission` value per student, never an exception per student.

A submission is one of
- `NAME.ipynb` (a `NAME.pdf` beside it is recorded as the student's report),
- a folder `NAME/` holding the student's files (exactly one notebook, optionally the PDF),
- an archive `NAME.zip` (graded, with the rubric's archive penalty: seed 000 asks for no archives).
Student ids come from the names: seed 003's `Assignment1 FirstName LastName.ipynb` gives `FirstName LastName`,
Canvas exports (`lastfirst_LATE_123_456_original name.ipynb`) give the Canvas login (autograder/discover/names.py).
Ids are made safe for file names (`submission` column, `OUT/<submission>/`): no dots, never one of the run's own
output names, unique (case-insensitively); the original name is kept for display.

Regular files only: every entry is examined with lstat, never followed. A symbolic link, device, named pipe or
socket anywhere in a submission (the entry itself, a file in a student's folder, the PDF beside a notebook, an
archive member) makes that submission `invalid` with a reason, and `integrity_attempt` when it points at another
submission. Every read is bounded: the notebook's bytes (MAX_NOTEBOOK_BYTES), the JSON values they may expand into
(reading.MAX_JSON_VALUES), the entries of a folder (MAX_FOLDER_ENTRIES) and of an archive (MAX_ARCHIVE_MEMBERS,
counted from its end record before the archive's directory is parsed), the archive's size (MAX_ARCHIVE_BYTES).
Gradescope's export (`submission_<id>/` folders and `submission_metadata.yml`) gives the submitters' names instead
of the folder names.

When each was handed in (autograder/discover/times.py) is a fact of the submission, outside its content digest:
`timestamp.txt` in its folder, Gradescope's `:created_at:`, and Canvas's late marker in its file name. The grader
checks nothing of it; the cheap stage turns it into lateness (autograder/scoring/late.py).
"""
from __future__ import annotations

import hashlib
import os
import stat
import zipfile
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

import autograder.discover.reading as reading
import autograder.discover.times as times
from autograder.discover.names import canvas_late, safe_id, student_name
from autograder.execution.integrity import FLAG_PREFIX, INTEGRITY_FLAG

NOTEBOOK_SUFFIX = ".ipynb"
REPORT_SUFFIX = ".pdf"
ARCHIVE_SUFFIXES = (".zip",)
MAX_NOTEBOOK_BYTES = 50 * 1024 * 1024  # a lab notebook with every figure is a few MB
MAX_ARCHIVE_BYTES = 200 * 1024 * 1024
MAX_ARCHIVE_MEMBERS = 10_000
MAX_FOLDER_ENTRIES = 10_000
MAX_LINK_TARGET_BYTES = 4096

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
        """The notebook's bytes, wherever it lives, read with bounds and without following links. Raises OSError,
        ValueError (reading.ReadError: too large, not a regular file, too many JSON values) or zipfile errors for the
        caller to turn into a status."""
        if self.source.suffix.lower() in ARCHIVE_SUFFIXES:
            with _open_archive(self.source) as archive:
                info = archive.getinfo(self.notebook_member)
                if info.file_size > MAX_NOTEBOOK_BYTES:
                    raise ValueError(f"{self.notebook_member} is {info.file_size} bytes once unpacked: too large")
                with archive.open(info) as member:
                    data = member.read(MAX_NOTEBOOK_BYTES + 1)
                if len(data) > MAX_NOTEBOOK_BYTES:
                    raise ValueError(f"{self.notebook_member} is more than {MAX_NOTEBOOK_BYTES} bytes once unpacked")
        elif self.notebook_member:
            data = reading.read_beneath(self.source, self.notebook_member, MAX_NOTEBOOK_BYTES)
        else:
            data = reading.read_regular(self.source, MAX_NOTEBOOK_BYTES)
        reading.check_json_size(data, what="the notebook")
        return data

    def content_digest(self) -> str:
        """sha256 of what is graded plus the flags that change the score; '' when there is nothing to read."""
        digest = hashlib.sha256()
        try:
            digest.update(self.notebook_bytes() if self.notebook_member is not None else b"")
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, RuntimeError, EOFError):
            digest.update(b"<unreadable>")
        digest.update(repr(sorted(self.flags)).encode())
        digest.update((self.problem or "").encode())
        return digest.hexdigest()


def _is_ignored(path: Path) -> bool:
    return path.name in IGNORED_NAMES or path.name.startswith(".") or path.name.startswith("~$")


def _skipped(parts) -> bool:
    return any(part in IGNORED_NAMES or part.startswith(".") for part in parts)


class _Special(Exception):
    """A link, device, pipe or socket in a submission: `problem` for the student, `flags` when it points at another
    submission."""

    def __init__(self, problem: str, flags: frozenset = frozenset()):
        super().__init__(problem)
        self.problem, self.flags = problem, flags


def _other_submission(target: str, own: Path, root: Path) -> str | None:
    """The entry of the submissions folder (not `own`) that a link's target names or lies in, or None. Both the
    target as written (normalised) and as resolved are looked at: a link to a link still points at a submission."""
    try:
        base = Path(os.path.realpath(root))
        own_real = Path(os.path.realpath(own.parent)) / own.name
        candidates = [Path(os.path.normpath(os.path.join(os.path.realpath(Path(target).parent), Path(target).name))),
                      Path(os.path.realpath(target))]
    except (OSError, ValueError):
        return None
    for resolved in candidates:
        if resolved == own_real or own_real in resolved.parents:
            continue
        if resolved == base:
            return "the submissions folder itself"
        if base in resolved.parents:
            return resolved.relative_to(base).parts[0]
    return None


def _special(path: Path, info: os.stat_result, shown: str, own: Path, root: Path) -> _Special:
    kind = reading.special_kind(info.st_mode)
    problem = (f"'{shown}' is {kind}, not a regular file: the grader reads regular files only. Submit the notebook "
               "itself (a copy, not a link)")
    flags = frozenset()
    if stat.S_ISLNK(info.st_mode):
        try:
            target = os.readlink(path)
        except OSError:
            target = ""
        other = _other_submission(str(path.parent / target), own, root) if target else None
        if other is not None:
            flags = frozenset({INTEGRITY_FLAG, f"{FLAG_PREFIX}'{shown}' is a link to another submission ({other})"})
            problem += f"; it points at another submission ({other})"
        elif target:
            problem += f" (it points at {target[:120]})"
    return _Special(problem, flags)


def _folder_files(folder: Path, root: Path) -> list[str]:
    """The regular files under a student's folder (relative paths); _Special for anything else found anywhere in it,
    ValueError for a folder with more than MAX_FOLDER_ENTRIES entries."""
    files, stack, seen = [], [Path()], 0
    while stack:
        relative = stack.pop()
        with os.scandir(folder / relative) as entries:
            for entry in entries:
                seen += 1
                if seen > MAX_FOLDER_ENTRIES:
                    raise ValueError(f"folder '{folder.name}' holds more than {MAX_FOLDER_ENTRIES} files: submit only "
                                     "the notebook and the PDF report")
                info = entry.stat(follow_symlinks=False)
                path = relative / entry.name
                if stat.S_ISDIR(info.st_mode):
                    stack.append(path)
                elif stat.S_ISREG(info.st_mode):
                    files.append(str(path))
                else:
                    raise _special(folder / path, info, f"{folder.name}/{path}", folder, root)
    return sorted(files)


def _open_archive(path: Path) -> zipfile.ZipFile:
    """The archive, opened without following links, its size and member count checked before its directory is read."""
    fd = reading.open_regular(path)
    handle = os.fdopen(fd, "rb")
    try:
        size = os.fstat(fd).st_size
        if size > MAX_ARCHIVE_BYTES:
            raise ValueError(f"'{path.name}' is {size:,} bytes, more than the {MAX_ARCHIVE_BYTES:,} the grader reads")
        end = zipfile._EndRecData(handle)        # the end record: how many members, before zipfile lists them
        if end is None:
            raise zipfile.BadZipFile("File is not a zip file")
        if end[zipfile._ECD_ENTRIES_TOTAL] > MAX_ARCHIVE_MEMBERS:
            raise ValueError(f"'{path.name}' holds {end[zipfile._ECD_ENTRIES_TOTAL]} files, more than "
                             f"{MAX_ARCHIVE_MEMBERS}: submit only the notebook and the PDF report")
        handle.seek(0)
        return zipfile.ZipFile(handle)
    except BaseException:
        handle.close()
        raise


ZIP_UNIX = 3
SPECIAL_TYPES = (stat.S_IFLNK, stat.S_IFCHR, stat.S_IFBLK, stat.S_IFIFO, stat.S_IFSOCK)


def _archive_names(archive_path: Path, root: Path) -> list[str]:
    """The archive's member names; _Special for a member that is a link, device, pipe or socket."""
    with _open_archive(archive_path) as archive:
        infos = archive.infolist()
        if len(infos) > MAX_ARCHIVE_MEMBERS:
            raise ValueError(f"'{archive_path.name}' holds more than {MAX_ARCHIVE_MEMBERS} files")
        for info in infos:
            mode = info.external_attr >> 16
            if info.create_system != ZIP_UNIX or stat.S_IFMT(mode) not in SPECIAL_TYPES:
                continue                 # a regular file or a folder (or no type recorded: zipfile's own writes)
            shown = f"{archive_path.name}: {info.filename[:120]}"
            flags, problem = frozenset(), (f"'{shown}' is {reading.special_kind(mode)}, not a regular file: the "
                                           "grader reads regular files only. Zip the notebook itself")
            if stat.S_ISLNK(mode) and info.file_size <= MAX_LINK_TARGET_BYTES:
                with archive.open(info) as member:
                    target = member.read(MAX_LINK_TARGET_BYTES).decode("utf-8", "replace")
                parts = set(Path(target).parts)
                other = _other_submission(str(archive_path.parent / target), archive_path, root) or next(
                    (p.name for p in _entries(root) if p.name in parts and p != archive_path), None)
                if other is not None:
                    flags = frozenset({INTEGRITY_FLAG, f"{FLAG_PREFIX}'{shown}' is a link to another submission "
                                                       f"({other})"})
                    problem += f"; it points at another submission ({other})"
            raise _Special(problem, flags)
        return [info.filename for info in infos]


def _entries(root: Path) -> list[Path]:
    try:
        return sorted(root.iterdir())
    except OSError:
        return []


def _one_notebook(candidates: list[str], where: str) -> tuple[str | None, str | None]:
    if len(candidates) == 1:
        return candidates[0], None
    if not candidates:
        return None, f"no .ipynb notebook found in {where}: submit your notebook as a .ipynb file"
    return None, (f"{where} holds {len(candidates)} notebooks ({', '.join(candidates)}): submit exactly one "
                  "notebook so the grader knows which to run")


def _is_submission_name(path: Path, info: os.stat_result) -> bool:
    """Whether an entry of the submissions folder would be a submission were it regular: a notebook, an archive,
    a folder, or a link or special file with such a name or no suffix (a linked folder)."""
    suffix = path.suffix.lower()
    if suffix == NOTEBOOK_SUFFIX or suffix in ARCHIVE_SUFFIXES or stat.S_ISDIR(info.st_mode):
        return True
    return not stat.S_ISREG(info.st_mode) and suffix == ""


def describe(path: Path, root: Path | None = None) -> Submission | None:
    """One entry of the submissions folder -> a Submission (None for entries that are not submissions)."""
    root = Path(root) if root is not None else path.parent
    info = os.lstat(path)
    if not _is_submission_name(path, info):
        return None
    suffix = path.suffix.lower()
    is_folder = stat.S_ISDIR(info.st_mode)
    name = path.name if is_folder or suffix not in (NOTEBOOK_SUFFIX, *ARCHIVE_SUFFIXES) else path.stem
    flags: set = set()
    member, problem = None, None
    try:
        if reading.special_kind(info.st_mode):
            raise _special(path, info, path.name, path, root)
        if is_folder:
            files = _folder_files(path, root)
            notebooks = [f for f in files if f.lower().endswith(NOTEBOOK_SUFFIX) and not _skipped(Path(f).parts)]
            member, problem = _one_notebook(notebooks, f"folder '{path.name}'")
            has_pdf = any(f.lower().endswith(REPORT_SUFFIX) for f in files)
            flags.add(PDF_PRESENT_FLAG if has_pdf else PDF_MISSING_FLAG)
        elif suffix == NOTEBOOK_SUFFIX:
            member = ""
            has_pdf = False
            for sibling in _entries(path.parent):
                if sibling.suffix.lower() == REPORT_SUFFIX and sibling.stem == path.stem:
                    sibling_info = os.lstat(sibling)
                    if reading.special_kind(sibling_info.st_mode):
                        raise _special(sibling, sibling_info, sibling.name, sibling, root)
                    has_pdf = True
            flags.add(PDF_PRESENT_FLAG if has_pdf else PDF_MISSING_FLAG)
        else:
            flags.add(ARCHIVE_FLAG)
            try:
                names = _archive_names(path, root)
                notebooks = sorted(n for n in names if n.lower().endswith(NOTEBOOK_SUFFIX)
                                   and not _skipped(n.split("/")))
                member, problem = _one_notebook(notebooks, f"archive '{path.name}'")
                flags.add(PDF_PRESENT_FLAG if any(n.lower().endswith(REPORT_SUFFIX) for n in names)
                          else PDF_MISSING_FLAG)
            except (zipfile.BadZipFile, OSError, EOFError, RuntimeError) as error:
                member, problem = None, (f"'{path.name}' is not a readable zip archive ({error}): submit the .ipynb "
                                         "itself")
    except _Special as special:
        member, problem = None, special.problem
        flags |= set(special.flags)
    except (ValueError, OSError) as error:
        member, problem = None, f"'{path.name}' could not be read ({error})"
    submitted_at = times.read_timestamp_file(path) if is_folder else None
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
    """Every submission in the folder, sorted by id, ids made unique (case-insensitively) with a numeric suffix that
    never takes another submission's own id."""
    submissions_dir = Path(submissions_dir)
    if not submissions_dir.is_dir():
        raise FileNotFoundError(f"submissions folder '{submissions_dir}' does not exist: pass SUBMISSIONS=<folder>")
    found = [s for p in _entries(submissions_dir) if not _is_ignored(p) and (s := describe(p, submissions_dir))
             is not None]
    gradescope = times.read_gradescope_metadata(submissions_dir)
    found = [with_gradescope_metadata(s, gradescope[s.source.name]) if s.source.name in gradescope else s
             for s in found]
    natural = {s.submission_id.lower() for s in found}
    used: set[str] = set()
    unique = []
    for submission in sorted(found, key=lambda s: (s.submission_id.lower(), str(s.source))):
        chosen, count = submission.submission_id, 1
        while chosen.lower() in used or (count > 1 and chosen.lower() in natural):
            count += 1
            chosen = f"{submission.submission_id}-{count}"
        used.add(chosen.lower())
        if chosen != submission.submission_id:
            submission = replace(submission, submission_id=chosen)
        unique.append(submission)
    return unique
