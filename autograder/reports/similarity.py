"""Similarity across submissions: every student's code against every other's, the template's own code excluded.

The code cells of each notebook are read as JSON in the grader's process (nbformat, never executed), written as one
`.py` file per student into a temporary folder, and compared by copydetect (winnowed fingerprints of the tokenised
code, names replaced by placeholders, so renaming variables or reformatting does not hide a copy). The template's
code cells are copydetect's boilerplate: a fingerprint that occurs in `student_template/lab.ipynb` never counts, so
two untouched templates share nothing.

Thresholds (lengths are in copydetect's filtered characters, where a name is one character and whitespace and comments
are dropped; a line of code is roughly 5 to 15 of them, `optimizer.zero_grad()` is `V.V()`):
- `NOISE_THRESHOLD` = 25: a match shorter than this is noise (about one or two statements), not evidence.
- `GUARANTEE_THRESHOLD` = 25, the same: every match of at least 25 is found (winnowing window of 1, i.e. every
  fingerprint is kept). A larger window would be cheaper, but winnowing picks fingerprints by their hash values and
  copydetect uses Python's `hash()`, which is salted per process: the report would change from one run to the next.
- A pair is flagged when one student's own code (what is left after the template's is removed) is at least
  `FLAG_SIMILARITY` = 50 % shared with the other's, and the shared code is at least `FLAG_MIN_SHARED` = 200
  characters long (some 15 to 40 lines): a student who changed three lines of the template shares 100 % of a
  tiny amount, which proves nothing. Students who solve the lab correctly write similar code in places (the
  reparameterisation is one line): in tests/test_similarity.py an independent solution of the same tasks shares
  15 to 21 %, a copy with every name changed and a few edits over 80 %, and the demo class's variants of one
  solution 98 to 100 %.
- Every flagged pair is listed, and the `MAX_PAIRS` = 25 closest pairs whether flagged or not (closest first).
- Pairs are collapsed so the page stays short: students joined by flagged pairs form a group (connected through
  flagged pairs), listed as one row with its pairs folded under it, and the shared code is shown once per group,
  for its closest pair (at most `MAX_PAIRS` groups). The demo class, seven variants of one solution, made a page
  150,000 px tall with the shared code of 21 pairs; it is now one group (README, "Measured").
- Other starter code given to students (`--starter-code`: notebooks, .py files, folders of them) is excluded like
  the template.

A flag is a reason to read both notebooks, not a verdict. `grade_class` writes `OUT/similarity.html` after the
gradebook; `python -m autograder.reports.similarity SUBMISSIONS OUT/similarity.html` runs it alone.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from autograder import STUDENT_TEMPLATE
from autograder.discover import discover
from autograder.reports.plots import new_figure, png_data_uri
from autograder.reports.writing import atomic_write_text, environment
from autograder.results import FEEDBACK_HTML

log = logging.getLogger("autograder")

TEMPLATE_NOTEBOOK = STUDENT_TEMPLATE / "lab.ipynb"
NOISE_THRESHOLD = 25
GUARANTEE_THRESHOLD = 25
FLAG_SIMILARITY = 0.5
FLAG_MIN_SHARED = 200
MAX_PAIRS = 25
CONTEXT_LINES = 2           # unshared lines kept around shared code in the excerpts
MAX_EXCERPT_LINES = 400     # per side and pair, so that a page for a large class stays readable


@dataclass(frozen=True)
class Thresholds:
    noise: int = NOISE_THRESHOLD
    guarantee: int = GUARANTEE_THRESHOLD
    flag_similarity: float = FLAG_SIMILARITY
    flag_min_shared: int = FLAG_MIN_SHARED
    max_pairs: int = MAX_PAIRS


class NotebookCodeError(ValueError):
    """A notebook whose code cannot be read; the message says why."""


@dataclass
class StudentCode:
    submission_id: str
    display_name: str
    code: str | None = None       # the notebook's code cells, one `# In[n]` header each
    skipped: str | None = None    # why there is no code to compare
    own_chars: int = 0            # filtered characters left once the template's code is removed


@dataclass
class SimilarPair:
    first: str
    second: str
    similarity_first: float       # share of `first`'s own code found in `second`
    similarity_second: float
    shared_chars: int             # filtered characters of `first` that match `second`
    flagged: bool = False
    detailed: bool = False        # its group's closest pair: its shared code is shown
    group: int = 0                # the group (1, 2, ...) of flagged pairs it belongs to; 0: none
    excerpt_first: list = field(default_factory=list)
    excerpt_second: list = field(default_factory=list)

    @property
    def similarity(self) -> float:
        return max(self.similarity_first, self.similarity_second)


@dataclass
class PairGroup:
    number: int
    members: list[str]            # submission ids, sorted
    pairs: list[SimilarPair]      # its flagged pairs, closest first (pairs[0] has the shared code)

    @property
    def lowest(self) -> float:
        return min(p.similarity for p in self.pairs)

    @property
    def highest(self) -> float:
        return max(p.similarity for p in self.pairs)


def pair_groups(pairs: list[SimilarPair]) -> list[PairGroup]:
    """Students joined by flagged pairs (connected components), closest group first; numbers each pair's group."""
    parent: dict[str, str] = {}

    def root(name: str) -> str:
        parent.setdefault(name, name)
        while parent[name] != name:
            parent[name] = parent[parent[name]]
            name = parent[name]
        return name

    flagged = [p for p in pairs if p.flagged]
    for pair in flagged:
        parent[root(pair.first)] = root(pair.second)
    by_root: dict[str, list[SimilarPair]] = {}
    for pair in flagged:                              # pairs are closest first, so each group's are too
        by_root.setdefault(root(pair.first), []).append(pair)
    groups = []
    for number, members in enumerate(by_root.values(), start=1):
        names = sorted({name for pair in members for name in (pair.first, pair.second)}, key=str.lower)
        for pair in members:
            pair.group = number
        groups.append(PairGroup(number, names, members))
    return groups


@dataclass
class SimilarityReport:
    students: list[StudentCode]
    pairs: list[SimilarPair]      # every flagged pair and the closest `max_pairs`, closest first
    pair_similarities: list[float]  # every compared pair, for the histogram
    thresholds: Thresholds = field(default_factory=Thresholds)
    seconds: float = 0.0
    starter_code: list = field(default_factory=list)   # names of the other starter code excluded
    groups: list = field(default_factory=list)         # [PairGroup]

    @property
    def ungrouped(self) -> list[SimilarPair]:
        return [p for p in self.pairs if not p.group]

    @property
    def skipped(self) -> list[StudentCode]:
        return [s for s in self.students if s.skipped]

    @property
    def flagged(self) -> list[SimilarPair]:
        return [p for p in self.pairs if p.flagged]


# --- code from notebooks -----------------------------------------------------------------------------------------

def notebook_code(data: bytes | str) -> str:
    """The code cells of a notebook's JSON as one Python text, each cell headed by `# In[n]` (n counts code cells
    from 1). Raises NotebookCodeError naming the problem."""
    import nbformat

    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError as error:
        raise NotebookCodeError(f"not UTF-8 text ({error})") from None
    try:
        notebook = nbformat.reads(text, as_version=4)
    except Exception as error:  # nbformat raises JSON, validation and version errors of several types
        raise NotebookCodeError(f"not a readable notebook ({type(error).__name__}: {error})") from None
    cells = [cell for cell in notebook.get("cells", []) if cell.get("cell_type") == "code"]
    if not cells:
        raise NotebookCodeError("the notebook has no code cells")
    parts = []
    for number, cell in enumerate(cells, start=1):
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        parts.append(f"# In[{number}]\n{source.rstrip()}\n")
    return "\n".join(parts)


def student_code(submission) -> StudentCode:
    """A discovered submission (autograder.discover.Submission) -> its code, or why it is skipped."""
    student = StudentCode(submission.submission_id, submission.display_name)
    if submission.problem:
        student.skipped = submission.problem
        return student
    try:
        student.code = notebook_code(submission.notebook_bytes())
    except NotebookCodeError as error:
        student.skipped = str(error)
    except Exception as error:  # unreadable file, broken archive member, too large
        student.skipped = f"the notebook could not be read ({type(error).__name__}: {error})"
    return student


# --- comparison --------------------------------------------------------------------------------------------------

def compare(students: list[StudentCode], boilerplate_code: str, thresholds: Thresholds = Thresholds()
            ) -> tuple[list[SimilarPair], list[float]]:
    """Every pair of students with code, through copydetect on files in a temporary folder. Sets each student's
    `own_chars`; returns every flagged pair and the closest `max_pairs` ones (those with excerpts of their shared
    code), closest first, and every pair's similarity."""
    from copydetect import CopyDetector

    comparable = [s for s in students if s.code is not None]
    if len(comparable) < 2:
        return [], []
    with tempfile.TemporaryDirectory(prefix="labgrade-similarity-") as tmp:
        tmp = Path(tmp)
        (tmp / "students").mkdir()
        boilerplate = tmp / "template.py"
        boilerplate.write_text(boilerplate_code, encoding="utf-8")
        detector = CopyDetector(noise_t=thresholds.noise, guarantee_t=thresholds.guarantee, display_t=0.0,
                                force_language="python", autoopen=False, silent=True,
                                out_file=str(tmp / "copydetect.html"))
        detector.add_file(str(boilerplate), type="boilerplate")
        path_of = {}
        for index, student in enumerate(comparable):
            # numbered names: submission ids are unique but need not be valid or distinct on every file system
            path = tmp / "students" / f"{index:05d}.py"
            path.write_text(student.code, encoding="utf-8")
            path_of[student.submission_id] = str(path)
            detector.add_file(str(path))
        detector.run()

    index_of = {path: i for i, path in enumerate(detector.test_files)}
    for student in comparable:
        data = detector.file_data.get(path_of[student.submission_id])
        student.own_chars = int(data.token_coverage) if data is not None else 0

    candidates, similarities = [], []
    for a_pos, a in enumerate(comparable):
        for b in comparable[a_pos + 1:]:
            i, j = index_of[path_of[a.submission_id]], index_of[path_of[b.submission_id]]
            sim_a, sim_b = (float(v) for v in detector.similarity_matrix[i, j])
            if not (np.isfinite(sim_a) and np.isfinite(sim_b)) or min(sim_a, sim_b) < 0:
                sim_a, sim_b = 0.0, 0.0     # a file copydetect could not fingerprint
            shared = max(0, int(detector.token_overlap_matrix[i, j]))
            similarities.append(max(sim_a, sim_b))
            flagged = max(sim_a, sim_b) >= thresholds.flag_similarity and shared >= thresholds.flag_min_shared
            candidates.append(SimilarPair(a.submission_id, b.submission_id, sim_a, sim_b, shared, flagged))
    candidates.sort(key=lambda p: (-p.similarity, -p.shared_chars, p.first, p.second))
    # every flagged pair, and the closest ones up to max_pairs for reference
    pairs = [p for rank, p in enumerate(candidates)
             if p.shared_chars > 0 and (p.flagged or rank < thresholds.max_pairs)]

    by_id = {s.submission_id: s for s in comparable}
    for group in pair_groups(pairs)[:thresholds.max_pairs]:
        pair = group.pairs[0]
        pair.detailed = True
        first, second = path_of[pair.first], path_of[pair.second]
        slices = detector.slice_matrix.get((first, second))
        if slices is None:
            reverse = detector.slice_matrix.get((second, first))
            slices = [reverse[1], reverse[0]] if reverse is not None else [np.zeros((2, 0)), np.zeros((2, 0))]
        pair.excerpt_first = shared_excerpt(by_id[pair.first].code, slices[0])
        pair.excerpt_second = shared_excerpt(by_id[pair.second].code, slices[1])
    return pairs, similarities


def _merged_spans(slices, length: int) -> list[tuple[int, int]]:
    """copydetect's 2 x N (start, end) character slices, clipped to the text and merged where they overlap."""
    slices = np.asarray(slices)
    if slices.ndim != 2 or slices.shape[0] != 2:
        return []
    spans = sorted((max(0, int(s)), min(length, int(e))) for s, e in zip(slices[0], slices[1]))
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if end <= start:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def shared_excerpt(code: str, slices, context: int = CONTEXT_LINES, max_lines: int = MAX_EXCERPT_LINES) -> list[dict]:
    """The lines of `code` that hold shared code, with `context` lines around them, as display data:
    `{"number": n, "fragments": [[text, shared], ...]}` per line and `{"gap": lines}` for what is left out."""
    shared = np.zeros(len(code), dtype=bool)
    for start, end in _merged_spans(slices, len(code)):
        shared[start:end] = True
    lines, starts, position = code.split("\n"), [], 0
    for line in lines:
        starts.append(position)
        position += len(line) + 1
    marked = [bool(shared[s:s + len(line)].any()) for s, line in zip(starts, lines)]
    keep = [False] * len(lines)
    for number, is_marked in enumerate(marked):
        if is_marked:
            for near in range(max(0, number - context), min(len(lines), number + context + 1)):
                keep[near] = True
    excerpt, skipped, shown = [], 0, 0
    for number, (line, start) in enumerate(zip(lines, starts)):
        if not keep[number] or shown >= max_lines:
            skipped += 1
            continue
        if skipped:
            excerpt.append({"gap": skipped})
            skipped = 0
        marks = shared[start:start + len(line)]
        bounds = [0, *(np.flatnonzero(marks[1:] != marks[:-1]) + 1).tolist(), len(line)]
        fragments = [[line[a:b], bool(marks[a])] for a, b in zip(bounds, bounds[1:]) if b > a]
        excerpt.append({"number": number + 1, "fragments": fragments})
        shown += 1
    if skipped:
        excerpt.append({"gap": skipped})
    return excerpt


# --- the report --------------------------------------------------------------------------------------------------

def starter_code_text(path: Path) -> str:
    """Code the instructor gave out besides the template (`--starter-code`): a notebook's code cells, or a .py file;
    a folder gives every notebook and .py file in it. Raises NotebookCodeError naming the file."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix in (".ipynb", ".py") and p.is_file())
        return "\n".join(starter_code_text(p) for p in files)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise NotebookCodeError(f"starter code {path} cannot be read ({error})") from None
    if path.suffix == ".ipynb":
        try:
            return notebook_code(data)
        except NotebookCodeError as error:
            raise NotebookCodeError(f"starter code {path}: {error}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise NotebookCodeError(f"starter code {path}: not UTF-8 text (pass notebooks or .py files)") from None


def build_report(submissions, template_notebook: Path = TEMPLATE_NOTEBOOK,
                 thresholds: Thresholds = Thresholds(), starter_code=()) -> SimilarityReport:
    started = time.monotonic()
    template_path = Path(template_notebook)
    try:
        boilerplate = notebook_code(template_path.read_bytes())
    except (OSError, NotebookCodeError) as error:
        raise NotebookCodeError(f"the template {template_path} cannot be read ({error}): run `make template`") from None
    for path in starter_code:
        boilerplate += "\n" + starter_code_text(path)
    students = [student_code(s) for s in submissions]
    pairs, similarities = compare(students, boilerplate, thresholds)
    return SimilarityReport(students, pairs, similarities, thresholds, seconds=round(time.monotonic() - started, 2),
                            starter_code=[Path(p).name for p in starter_code], groups=pair_groups(pairs))


def _histogram(similarities: list[float], flag_similarity: float) -> str | None:
    if not similarities:
        return None
    figure, ax = new_figure(6.4, 2.8)
    ax.hist(np.asarray(similarities) * 100, bins=np.linspace(0, 100, 21), color="#4c72b0", edgecolor="white")
    ax.axvline(flag_similarity * 100, color="#cf222e", linestyle="--", label=f"flag at {flag_similarity:.0%}")
    ax.set_xlabel("similarity of a pair (% of one student's own code shared)")
    ax.set_ylabel("pairs")
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.legend(loc="upper right")
    return png_data_uri(figure)


def render_similarity_html(report: SimilarityReport, feedback_root: Path | None = None) -> str:
    """The report as self-contained HTML (inline CSS, the histogram as a data: URI, everything escaped by jinja2).
    Student names link to `<submission>/feedback.html` where that file exists under `feedback_root`."""
    names = {s.submission_id: s.display_name for s in report.students}

    def feedback_link(submission_id: str) -> str | None:
        if feedback_root is None or not (Path(feedback_root) / submission_id / FEEDBACK_HTML).is_file():
            return None
        return urllib.parse.quote(submission_id) + "/" + FEEDBACK_HTML

    compared = [s for s in report.students if not s.skipped]
    return environment().get_template("similarity.html.j2").render(
        students=report.students, compared=compared, skipped=report.skipped,
        template_only=[s for s in compared if s.own_chars == 0],
        pairs=report.pairs, flagged_count=len(report.flagged), pair_count=len(report.pair_similarities),
        groups=report.groups, ungrouped=report.ungrouped, starter_code=report.starter_code,
        names=names, link=feedback_link, thresholds=report.thresholds, seconds=report.seconds,
        histogram=_histogram(report.pair_similarities, report.thresholds.flag_similarity),
        template_name=TEMPLATE_NOTEBOOK.relative_to(TEMPLATE_NOTEBOOK.parents[1]).as_posix())


def write_similarity_report(submissions, out_path: str | Path, template_notebook: Path = TEMPLATE_NOTEBOOK,
                            thresholds: Thresholds = Thresholds(), starter_code=()) -> SimilarityReport:
    """Compare the submissions and write the HTML report atomically to `out_path` (e.g. OUT/similarity.html);
    `starter_code`: more code given out (notebooks, .py files, folders of them) that does not count as shared."""
    out_path = Path(out_path)
    report = build_report(submissions, template_notebook, thresholds, starter_code)
    atomic_write_text(out_path, render_similarity_html(report, feedback_root=out_path.parent))
    log.info("similarity: %d pair(s) flagged among %d submissions (%d skipped) in %.1fs -> %s",
             len(report.flagged), len(report.students), len(report.skipped), report.seconds, out_path)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("submissions", type=Path, help="the submissions folder (as for `python -m autograder grade`)")
    parser.add_argument("out", type=Path, help="the HTML file to write, e.g. grades/similarity.html")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        report = write_similarity_report(discover(args.submissions), args.out)
    except (FileNotFoundError, NotebookCodeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps({"flagged": [[p.first, p.second, round(p.similarity, 3)] for p in report.flagged],
                      "skipped": {s.submission_id: s.skipped for s in report.skipped}}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
