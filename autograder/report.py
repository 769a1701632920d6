"""Reports: item scores -> Gradescope results.json, a student's feedback.html, the class gradebook.csv.

Every writer is atomic: it writes a temporary file in the target's folder and `os.replace`s it, so a crash (or an
exception midway) leaves either the previous file or none, never a partial one.

results.json is built through otter-grader's results model (`otter.test_files.GradingResults`): one `TestFile` per
rubric item holding one `TestCase` (empty body: our check code is never part of it) and its `TestCaseResult`; the
earned points go through `TestFile.update_score` (partial credit), and `GradingResults.to_gradescope_dict` renders the
Gradescope JSON. We then set each test's visibility from the rubric (otter has one visibility for all hidden tests) and
its output to our teaching message (otter's summary would repeat the item name). A grader failure (status `error`)
goes through `GradingResults.without_results`, otter's "Autograder Failed" result.

Statuses, one per submission (the gradebook never drops a row):
"""
from __future__ import annotations

import base64
import csv
import functools
import io
import json
import math
import re
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from autograder.data import atomic_write_bytes

STATUSES = {
    "ok": "graded: every cell ran",
    "cell_error": "graded: some cells raised errors, so what they should have produced is missing",
    "timeout": "the notebook ran past the time limit and was stopped",
    "kernel_died": "the Python kernel died while running the notebook (usually out of memory)",
    "invalid": "the submission could not be read as a notebook (wrong file type, several or no notebooks, corrupt "
               "JSON)",
    "output_limit": "the notebook printed more output than the grader keeps and was stopped",
    "error": "the grader itself failed on this submission (a grader bug, not the student's): tell the course staff",
}
__doc__ += "\n".join(f"- `{name}`: {meaning}" for name, meaning in STATUSES.items()) + "\n"

GRADESCOPE_VISIBILITIES = ("visible", "hidden", "after_published", "after_due_date")
TEMPLATES = Path(__file__).with_name("templates")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MAX_THUMBNAIL_BYTES = 3 * 1024 * 1024
ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
NO_SANDBOX = {"none", "off", "no", "limits", "rlimits", "rlimit", "resource-limits", "unsandboxed"}


# --- atomic writes -----------------------------------------------------------------------------------------------

REPORT_FILE_MODE = 0o644


def atomic_write(path: str | Path, write: Callable[[Any], None], binary: bool = False) -> Path:
    """Call write(file) on an in-memory file, then write its content to `path` atomically (data.atomic_write_bytes);
    when write raises, nothing is written and `path` is left as it was."""
    path = Path(path)
    buffer = io.BytesIO() if binary else io.StringIO(newline="")
    write(buffer)
    content = buffer.getvalue()
    atomic_write_bytes(path, content if binary else content.encode("utf-8"), mode=REPORT_FILE_MODE)
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda f: f.write(text))


# --- item scores as plain values ---------------------------------------------------------------------------------

def _item(score: Any) -> dict:
    """An ItemScore (dataclass or dict) as a dict with the fields the reports need."""
    data = asdict(score) if is_dataclass(score) else dict(score)
    data.setdefault("item_id", data.get("id"))
    data.setdefault("title", data["item_id"])
    data.setdefault("visibility", "visible")
    data.setdefault("message", "")
    data["penalties"] = [str(p) for p in data.get("penalties") or []]
    data.setdefault("fraction", (data["points"] / data["max_points"]) if data.get("max_points") else 0.0)
    for key in ("points", "max_points", "fraction"):
        value = float(data[key])
        data[key] = value if math.isfinite(value) else 0.0
    return data


# --- results.json (Gradescope, through otter's model) --------------------------------------------------------------

def _otter_results(items: list[dict], status: str, reason: str | None):
    from otter.test_files import GradingResults, TestCase, TestCaseResult, TestFile

    class RubricItemTest(TestFile):
        """One rubric item, scored by our checks in the grader's process; nothing to run, no code to show."""

        def run(self, global_environment):
            raise NotImplementedError("rubric items are scored by autograder.checks, not run")

        @classmethod
        def from_file(cls, path):
            raise NotImplementedError

        @classmethod
        def from_metadata(cls, s, path):
            raise NotImplementedError

    if status == "error":
        return GradingResults.without_results(RuntimeError(reason or "the grader failed on this submission"))
    files = []
    for item in items:
        case = TestCase(name=item["item_id"], body="", hidden=item["visibility"] != "visible",
                        points=item["max_points"], success_message=None, failure_message=None)
        test = RubricItemTest(name=item["item_id"], path=item["item_id"], test_cases=[case], all_or_nothing=False)
        test.test_case_results = [TestCaseResult(test_case=case, message=item["message"],
                                                 passed=item["fraction"] >= 1.0)]
        test.update_score(round(item["points"], 5))
        files.append(test)
    return GradingResults(files)


def gradescope_dict(item_scores: Iterable[Any], status: str, reason: str | None = None,
                    stdout_visibility: str = "hidden") -> dict:
    from otter.run import AutograderConfig

    items = [_item(s) for s in item_scores]
    results = _otter_results(items, status, reason)
    possible = sum(i["max_points"] for i in items)
    config = AutograderConfig({"show_hidden": True, "force_public_test_summary": False,
                               "show_stdout": stdout_visibility == "after_published",
                               "points_possible": possible or None})
    output = results.to_gradescope_dict(config)
    by_id = {i["item_id"]: i for i in items}
    for test in output["tests"]:
        item = by_id.get(test.get("name"))
        if item is None:         # otter's own entries (the catastrophic-failure tests) stay as otter wrote them
            continue
        test["name"] = item["title"]
        test["visibility"] = item["visibility"]
        test["output"] = item["message"]
        test["status"] = "passed" if item["fraction"] >= 1.0 else "failed"
        if _awaiting_review(item):     # a written answer not scored yet is neither passed nor failed
            del test["status"]
    output.setdefault("score", 0.0)
    output["score"] = round(float(output["score"]), 4)
    output["output"] = _summary_line(status, reason, items)
    output["stdout_visibility"] = stdout_visibility
    return output


def _summary_line(status: str, reason: str | None, items: list[dict]) -> str:
    """The submission-level message; it totals only the visible items, so hidden ones stay hidden until published."""
    shown = [i for i in items if i["visibility"] == "visible"]
    total, possible = sum(i["points"] for i in shown), sum(i["max_points"] for i in shown)
    later = " (the other items are released with the grades)" if len(shown) < len(items) else ""
    meaning = STATUSES.get(status, f"status {status}")
    line = f"Visible items: {total:g} / {possible:g}{later}. Status: {status} ({meaning})."
    if reason and status != "ok":
        line += f" {_sentence(reason)}"
    for note in _penalty_notes(items):
        line += f" {_sentence(note)}"
    return line


def _penalty_notes(items: list[dict]) -> list[str]:
    return list(dict.fromkeys(note for i in items for note in i["penalties"]))


def _sentence(text: str) -> str:
    text = str(text).strip()
    return text if text.endswith((".", "!", "?")) else text + "."


def write_results_json(path: str | Path, item_scores: Iterable[Any], status: str = "ok", reason: str | None = None,
                       stdout_visibility: str = "hidden") -> dict:
    """Gradescope results.json: score, tests[name, score, max_score, status, visibility, output], output,
    stdout_visibility. Returns the dict written."""
    data = gradescope_dict(item_scores, status, reason, stdout_visibility)
    text = json.dumps(data, indent=2, allow_nan=False, ensure_ascii=False)
    atomic_write_text(path, text + "\n")
    return data


# --- feedback.html -----------------------------------------------------------------------------------------------

# discovery flags worth a line on the feedback page (penalised flags are stated by their rubric penalty message)
FLAG_NOTES = {
    "report_pdf_missing": "No PDF report was found next to your notebook. Hand in two files, not an archive: the "
                          "notebook \"Assignment1 FirstName LastName.ipynb\" and the PDF report \"Assignment1 "
                          "FirstName LastName.pdf\".",
    "integrity_attempt": "The grader found attempts to influence the grading (listed below): they earned nothing "
                         "and are reported to the course staff.",
}
INTEGRITY_PREFIX = "integrity: "  # autograder.integrity.FLAG_PREFIX: one flag per finding

ERROR_HINTS = [
    (("ModuleNotFoundError", "ImportError"), "Only the course environment's packages (torch, torchvision, numpy, "
     "scikit-learn, matplotlib) are installed: remove !pip installs and imports of other packages."),
    (("FileNotFoundError",), "Read data through DATA_DIR (the parameters cell) rather than a path on your machine or "
     "Google Drive; write files only under the current folder."),
    (("NameError",), "A name was used before it was defined: restart the kernel and run all cells top to bottom; "
     "keep the names the template defines."),
    (("CUDA", "cuda", "Torch not compiled with CUDA"), "Grading runs on the CPU: use DEVICE / .to(device) instead of "
     ".cuda()."),
    (("MemoryError", "OutOfMemory"), "The notebook ran out of memory: free large tensors, use torch.no_grad() for "
     "evaluation, and avoid keeping every batch's outputs."),
    (("mat1 and mat2", "size mismatch"), "A tensor shape does not match a layer: flatten "
     "images to (batch, 784) and check dim_input/dim_latent."),
    (("KeyboardInterrupt", "Timeout", "timed out"), "The grader stopped a cell that ran too long: do not train for "
     "longer than the parameters cell says, and avoid infinite loops or input()."),
]


def _clean(text: Any) -> str:
    return ANSI.sub("", str(text if text is not None else ""))


def _cell_error(error: Any, last_lines: int = 8) -> dict:
    """A cell error in any of the usual shapes (nbformat error output, execute.py dict, string) as display data."""
    if isinstance(error, str):
        error = {"traceback": error}
    elif is_dataclass(error):
        error = asdict(error)
    elif not isinstance(error, dict):
        error = {"traceback": str(error)}
    traceback = error.get("traceback") or []
    if isinstance(traceback, str):
        traceback = traceback.splitlines()
    lines = [line for chunk in traceback for line in _clean(chunk).splitlines()]
    ename, evalue = _clean(error.get("ename", "")), _clean(error.get("evalue", ""))
    cell = error.get("student_cell", error.get("cell", error.get("cell_index")))
    haystack = f"{ename}: {evalue}" if ename or evalue else " ".join(lines[-2:])   # not the code lines shown
    hint = error.get("hint") or next((h for keys, h in ERROR_HINTS if any(k in haystack for k in keys)), "")
    return {"cell": cell, "ename": ename, "evalue": evalue, "tail": "\n".join(lines[-last_lines:]), "hint": hint,
            "omitted": max(0, len(lines) - last_lines), "source_head": _clean(error.get("source_head", "")),
            "grader_cell": bool(error.get("grader_cell"))}


def _thumbnails(figures_png: Iterable[Any], limit: int) -> tuple[list[dict], list[str]]:
    thumbs, skipped = [], []
    for entry in list(figures_png or []):
        caption, data = (entry if isinstance(entry, (tuple, list)) and len(entry) == 2 else ("figure", entry))
        if not isinstance(data, (bytes, bytearray)) or not bytes(data).startswith(PNG_MAGIC):
            skipped.append(f"{caption}: not a PNG image")
        elif len(data) > MAX_THUMBNAIL_BYTES:
            skipped.append(f"{caption}: image too large to embed ({len(data) // 1024} KiB)")
        elif len(thumbs) >= limit:
            skipped.append(f"{caption}: more than {limit} figures, not shown")
        else:
            thumbs.append({"caption": str(caption),
                           "src": "data:image/png;base64," + base64.b64encode(bytes(data)).decode("ascii")})
    return thumbs, skipped


def _environment():
    import jinja2

    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                                     undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    environment.filters["num"] = lambda value: f"{float(value):.2f}".rstrip("0").rstrip(".")
    environment.filters["markdown"] = render_markdown
    return environment


# $$...$$, or $...$ without a $ inside, opened before and closed after a non-space, not followed by a digit (pandoc's
# rule, so that "costs $5 and $6" stays text)
_MATH = re.compile(r"\$\$(.+?)\$\$|\$(?=[^\s$])[^$]*?(?<=[^\s$])\$(?![0-9])", re.DOTALL)


@functools.lru_cache(maxsize=1)
def _markdown_renderer():
    """One parser for every answer of the sheet: CommonMark, raw HTML escaped, no images or links."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False}).disable(["image", "link", "autolink"])


def render_markdown(text: str):
    """A student's Markdown (untrusted) as safe HTML for the TA's review sheet: CommonMark with raw HTML escaped,
    no images or links (nothing is fetched or followed from a student's text), and $...$ / $$...$$ kept verbatim in
    <code class="math"> so that `_` and `*` inside formulas do not turn into emphasis."""
    import html as html_module

    from markupsafe import Markup

    formulas: list[str] = []

    def stash(match: re.Match) -> str:
        formulas.append(match.group(0))
        return f"\ue000{len(formulas) - 1}\ue001"  # private-use characters: a placeholder Markdown leaves alone

    rendered = _markdown_renderer().render(_MATH.sub(stash, text.replace("\ue000", "").replace("\ue001", "")))
    rendered = re.sub("\ue000([0-9]+)\ue001",
                      lambda m: f'<code class="math">{html_module.escape(formulas[int(m.group(1))])}</code>', rendered)
    return Markup(rendered)


DATA_PNG = "data:image/png;base64,"
MAX_CLASSIFIER_TILES = 12


def _classifier_views(items: list[dict]) -> list[dict]:
    """Per item, the tiles its image check flagged (details["classifier_tiles"], autograder/image_checks.py): small
    PNG data URIs with what the grader's digit classifier saw. Anything else in that list is ignored."""
    views = []
    for item in items:
        tiles = (item.get("details") or {}).get("classifier_tiles")
        tiles = [{"src": t["src"], "caption": str(t.get("caption", ""))} for t in tiles or []
                 if isinstance(t, dict) and isinstance(t.get("src"), str) and t["src"].startswith(DATA_PNG)
                 and len(t["src"]) < 20_000][:MAX_CLASSIFIER_TILES] if isinstance(tiles, list) else []
        if tiles:
            views.append({"title": item["title"], "tiles": tiles})
    return views


def _awaiting_review(item: dict) -> bool:
    return bool((item.get("details") or {}).get("awaiting_review"))


def render_feedback_html(submission_id: str, status: str, reason: str | None, item_scores: Iterable[Any],
                         cell_errors: Iterable[Any] = (), figures_png: Iterable[Any] = (), *,
                         display_name: str | None = None, sandbox: str | None = None, flags: Iterable[str] = (),
                         title: str = "Lab feedback", include_hidden: bool = False, max_figures: int = 40) -> str:
    items = [_item(s) for s in item_scores]
    shown = [i for i in items if include_hidden or i["visibility"] != "hidden"]
    hidden = [i for i in items if i not in shown]
    total, possible = sum(i["points"] for i in items), sum(i["max_points"] for i in items)
    thumbs, skipped = _thumbnails(figures_png, max_figures)
    sandbox_mode = str(sandbox or "").split(":")[0].strip().lower()     # execute.py: "none: ...", "bwrap: ..."
    errors = [_cell_error(e) for e in (cell_errors or [])]
    pending = [i for i in shown if _awaiting_review(i)]       # written answers a TA has not scored yet
    return _environment().get_template("feedback.html.j2").render(
        title=title, submission_id=str(submission_id), display_name=str(display_name or submission_id),
        status=status, status_meaning=STATUSES.get(status, status), reason=_clean(reason or ""),
        graded=status in ("ok", "cell_error"), total=round(total, 2), possible=round(possible, 2),
        percent=round(100 * total / possible) if possible else 0,
        items=[{**i, "points": round(i["points"], 2), "max_points": round(i["max_points"], 2),
                "state": "pending" if _awaiting_review(i) else
                ("full" if i["fraction"] >= 1 else ("partial" if i["points"] > 0 else "zero"))}
               for i in shown],
        pending_count=len(pending), pending_points=round(sum(i["max_points"] for i in pending), 2),
        hidden_count=len(hidden), hidden_points=round(sum(i["max_points"] for i in hidden), 2),
        errors=[e for e in errors if not e["grader_cell"]], thumbnails=thumbs, skipped=skipped,
        classifier_views=_classifier_views(shown),
        unsandboxed=status != "invalid" and sandbox_mode in NO_SANDBOX,
        flag_notes=list(dict.fromkeys(_penalty_notes(items) +
                                      [FLAG_NOTES[f] for f in sorted(flags or ()) if f in FLAG_NOTES] +
                                      [_sentence("Integrity check: " + f[len(INTEGRITY_PREFIX):])
                                       for f in sorted(flags or ()) if f.startswith(INTEGRITY_PREFIX)])))


def write_feedback_html(path: str | Path, submission_id: str, status: str, reason: str | None,
                        item_scores: Iterable[Any], cell_errors: Iterable[Any] = (), figures_png: Iterable[Any] = (),
                        **options) -> Path:
    """Self-contained HTML for the student (no external resources, figures as data: URIs, everything from the
    submission escaped). Options: display_name, sandbox, flags, title, include_hidden, max_figures."""
    html = render_feedback_html(submission_id, status, reason, item_scores, cell_errors, figures_png, **options)
    return atomic_write_text(path, html)


# --- gradebook.csv -----------------------------------------------------------------------------------------------

def _number(value: Any) -> str:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return ""
    if not math.isfinite(value):
        return ""
    return f"{value:.4f}".rstrip("0").rstrip(".") or "0"


def _cell(text: Any) -> str:
    """A text cell that a spreadsheet will not evaluate as a formula."""
    text = str(text if text is not None else "")
    return "'" + text if text[:1] in ("=", "+", "@", "\t", "\r") else text


def _row(row: Any) -> dict:
    data = asdict(row) if is_dataclass(row) else dict(row)
    items = dict(data.get("items") or {})
    for score in data.get("item_scores") or []:
        item = _item(score)
        items[item["item_id"]] = item["points"]
    data["items"] = items
    if data.get("score") is None:
        data["score"] = sum(float(v) for v in items.values())
    return data


def write_gradebook_csv(path: str | Path, rows: Iterable[Any], rubric: Any, manual_items: Iterable[Any] = ()) -> Path:
    """Columns: submission, status, score, max_score, then one per rubric item id (points earned, blank when the
    row has no value for it), then one per `manual_items` (written answers; blank = awaiting review). One row per
    submission, sorted by submission id; rows with any status are kept.
    A row is a dict or dataclass with submission, status, score, max_score and items {item id: points} (or
    item_scores: [ItemScore])."""
    manual_items = list(manual_items)
    item_ids = [item.item_id for item in rubric.items] + [item.item_id for item in manual_items]
    max_default = sum(float(item.points) for item in list(rubric.items) + manual_items)
    prepared = sorted((_row(r) for r in rows), key=lambda r: str(r.get("submission", "")))

    def write(f):
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["submission", "status", "score", "max_score"] + item_ids)
        for row in prepared:
            max_score = row.get("max_score")
            writer.writerow([_cell(row.get("submission", "")), _cell(row.get("status") or "error"),
                             _number(row.get("score")), _number(max_default if max_score is None else max_score)]
                            + [_number(row["items"][i]) if i in row["items"] else "" for i in item_ids])

    return atomic_write(path, write)
