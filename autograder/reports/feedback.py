"""OUT/<submission>/feedback.html: the student's page. Every item's points and message, the penalties, the cell
errors with the traceback's last lines and a hint, the tiles the digit classifier rejected, the run's notes and the
student's figures as thumbnails. Self-contained (inline CSS, images as data: URIs); everything from the submission is
escaped by jinja2."""
from __future__ import annotations

import base64
import io
import json
import re
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, Iterable

from autograder.discover.submissions import PDF_MISSING_FLAG
from autograder.execution.integrity import FLAG_PREFIX as INTEGRITY_PREFIX, INTEGRITY_FLAG
from autograder.execution.notebook import GRADER_CELL_KEY
from autograder.reports.results_json import penalty_notes, sentence
from autograder.reports.writing import PNG_DATA_URI, PNG_MIME, atomic_write_text, environment
from autograder.results import ItemScore, Lateness, Status

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MAX_THUMBNAIL_BYTES = 3 * 1024 * 1024
VISIBLE_BEFORE_PUBLISHING = ("visible", "after_due_date")
RELEASE_MODES = ("preview", "unpublished", "published")
ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
NO_SANDBOX = {"none", "off", "no", "limits", "rlimits", "rlimit", "resource-limits", "unsandboxed"}

# discovery flags worth a line on the feedback page (penalised flags are stated by their rubric penalty message)
FLAG_NOTES = {
    PDF_MISSING_FLAG: "No PDF report was found next to your notebook. Hand in two files, not an archive: the "
                      "notebook \"Assignment1 FirstName LastName.ipynb\" and the PDF report \"Assignment1 "
                      "FirstName LastName.pdf\".",
    INTEGRITY_FLAG: "The grader found attempts to influence the grading (listed below): they earned nothing "
                    "and are reported to the course staff.",
}

NO_NETWORK = ("URLError", "urlopen error", "Dataset not found", "HTTP Error", "Name or service not known",
              "Temporary failure in name resolution", "Network is unreachable", "ConnectionError")
ERROR_HINTS = [
    (NO_NETWORK, "The grader's machine has no internet: MNIST is already in DATA_DIR (the parameters cell), so load "
     "it from there with torchvision.datasets.MNIST(DATA_DIR, ...) and download nothing else."),
    (("NotImplementedError: Task",), "This cell is still the template's TODO: the error names the task to fill in. "
     "Write your code in place of the raise NotImplementedError line, then run all cells top to bottom; the cells "
     "after it did not run, so their items are missing too."),
    (("ModuleNotFoundError", "ImportError"), "Only the course environment's packages (torch, torchvision, numpy, "
     "scikit-learn, matplotlib) are installed: remove !pip installs and imports of other packages."),
    (("SyntaxError", "IndentationError", "TabError"), "Python could not read this cell: fix the line the error points "
     "at (a missing bracket, colon or quote, or mixed indentation) and run the cell again."),
    (("NameError",), "A name was used before it was defined: usually an earlier cell failed (often a TODO not done "
     "yet), so what it defines is missing. Fix the first error on this page, then run all cells top to bottom; "
     "keep the names the template defines."),
    (("NVIDIA", "CUDA", "cuda", "Torch not compiled with CUDA"), "Grading runs on the CPU: use DEVICE / "
     ".to(device) instead of .cuda() or device='cuda'."),
    (("MemoryError", "OutOfMemory"), "The notebook ran out of memory: free large tensors, use torch.no_grad() for "
     "evaluation, and avoid keeping every batch's outputs."),
    (("mat1 and mat2", "size mismatch"), "A tensor shape does not match a layer: flatten "
     "images to (batch, 784) and check dim_input/dim_latent."),
    (("KeyboardInterrupt", "Timeout", "timed out"), "The grader stopped a cell that ran too long: do not train for "
     "longer than the parameters cell says, and avoid infinite loops or input()."),
]
DATA_WORDS = ("mnist", "data", "dataset", "ubyte", ".gz")


def hint_for(ename: str, evalue: str) -> str:
    """What to fix for an error, or ""."""
    text = f"{ename}: {evalue}"
    if ename == "FileNotFoundError" and not any(word in evalue.lower() for word in DATA_WORDS):
        return ("A file or folder the cell uses does not exist where the grader runs your notebook: write files "
                "under the current folder and create folders first (os.makedirs('figures', exist_ok=True)).")
    if ename == "FileNotFoundError":
        return ("Read data through DATA_DIR (the parameters cell) rather than a path on your machine or Google "
                "Drive.")
    return next((hint for keys, hint in ERROR_HINTS if any(k in text for k in keys)), "")


def _clean(text: Any) -> str:
    return ANSI.sub("", str(text if text is not None else ""))


def _cell_error(error: Any, last_lines: int = 8) -> dict:
    """A cell error in any of the usual shapes (nbformat error output, execution/harvest.py dict, string) as display
    data."""
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
    cell = error.get("number")
    if cell is None and error.get("student_cell") is not None:
        cell = int(error["student_cell"]) + 1
    if ename or evalue:
        hint = error.get("hint") or hint_for(ename, evalue)
    else:       # only a traceback: its last lines, not the code lines shown
        hint = error.get("hint") or next((h for keys, h in ERROR_HINTS if any(k in " ".join(lines[-2:])
                                                                             for k in keys)), "")
    return {"cell": cell, "ename": ename, "evalue": evalue, "tail": "\n".join(lines[-last_lines:]), "hint": hint,
            "omitted": max(0, len(lines) - last_lines), "source_head": _clean(error.get("source_head", "")),
            "grader_cell": bool(error.get("grader_cell")), "hint_above": False}


# Thumbnails: the student's figures as they ran (matplotlib PNGs of 100-250 KiB, RGBA, ~900 px wide) are scaled to
# at most THUMBNAIL_SIZE pixels (twice the width they are shown at) on white and re-encoded as JPEG (quality 80, no
# chroma subsampling, so colour maps and thin lines stay clean): on the demo class a page went from about 2.5 MB to
# about 0.6 MB (README, "Measured"). JPEG rather than WebP (a third smaller in the page): Chromium copies JPEG into
# the release PDF as it is, where it re-encodes WebP losslessly (1.4 MB PDFs instead of 0.6 MB). Small images are
# embedded as they are.
THUMBNAIL_SIZE = (560, 720)          # width, height in pixels
THUMBNAIL_QUALITY = 80
COMPACT_ABOVE_BYTES = 24 * 1024
JPEG_DATA_URI = "data:image/jpeg;base64,"


def compact_thumbnail(data: bytes) -> tuple[str, bytes]:
    """(data URI prefix, bytes) of a figure for the page: scaled down and re-encoded as JPEG when that is smaller;
    the PNG as it was otherwise (small images, or anything Pillow cannot read)."""
    if len(data) <= COMPACT_ABOVE_BYTES:
        return PNG_DATA_URI, data
    try:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as image:
            image.load()
            rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, "white")
        flat.paste(rgba, mask=rgba.getchannel("A"))
        flat.thumbnail(THUMBNAIL_SIZE, Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        flat.save(buffer, "JPEG", quality=THUMBNAIL_QUALITY, optimize=True, subsampling=0)
    except Exception:       # a PNG Pillow cannot decode is still shown as it came
        return PNG_DATA_URI, data
    compact = buffer.getvalue()
    return (JPEG_DATA_URI, compact) if len(compact) < len(data) else (PNG_DATA_URI, data)


def _thumbnails(figures_png: Iterable[Any], limit: int) -> tuple[list[dict], list[str]]:
    thumbs, skipped = [], []
    for entry in list(figures_png or []):
        caption, data = (entry if isinstance(entry, (tuple, list)) and len(entry) == 2 else ("figure", entry))
        if isinstance(data, int) and not isinstance(data, bool):     # left undecoded: too large
            skipped.append(f"{caption}: image too large to embed ({data // 1024} KiB)")
        elif not isinstance(data, (bytes, bytearray)) or not bytes(data).startswith(PNG_MAGIC):
            skipped.append(f"{caption}: not a PNG image")
        elif len(data) > MAX_THUMBNAIL_BYTES:
            skipped.append(f"{caption}: image too large to embed ({len(data) // 1024} KiB)")
        elif len(thumbs) >= limit:
            skipped.append(f"{caption}: more than {limit} figures, not shown")
        else:
            prefix, compact = compact_thumbnail(bytes(data))
            thumbs.append({"caption": str(caption), "src": prefix + base64.b64encode(compact).decode("ascii")})
    return thumbs, skipped


MAX_CLASSIFIER_TILES = 12


def _classifier_views(items: list[ItemScore]) -> list[dict]:
    """Per item, the tiles its image check flagged (details["classifier_tiles"], checks/image_quality.py): small
    PNG data URIs with what the grader's digit classifier saw. Anything else in that list is ignored."""
    views = []
    for item in items:
        tiles = item.details.get("classifier_tiles")
        tiles = [{"src": t["src"], "caption": str(t.get("caption", ""))} for t in tiles or []
                 if isinstance(t, dict) and isinstance(t.get("src"), str) and t["src"].startswith(PNG_DATA_URI)
                 and len(t["src"]) < 20_000][:MAX_CLASSIFIER_TILES] if isinstance(tiles, list) else []
        if tiles:
            views.append({"title": item.title, "tiles": tiles})
    return views


def render_feedback_html(submission_id: str, status: str, reason: str | None, item_scores: Iterable[ItemScore],
                         cell_errors: Iterable[Any] = (), figures_png: Iterable[Any] = (), *,
                         display_name: str | None = None, sandbox: str | None = None, flags: Iterable[str] = (),
                         notes: Iterable[str] = (), advice: Iterable[str] = (), title: str = "Lab feedback",
                         include_hidden: bool = False, time_limits: str = "", lateness: Lateness | None = None,
                         release: str = "preview",
                         max_figures: int = 40) -> str:
    """`release`: "preview" (OUT/<id>/feedback.html: every item shown, those released with the grades marked so),
    "unpublished" (the student's page before `--publish`: items with visibility after_published are listed as
    released later, without points or message, and the total counts only the visible items, as results.json's
    summary line does), "published" (every item but the hidden ones, which count in the total, as on
    Gradescope)."""
    if release not in RELEASE_MODES:
        raise ValueError(f"release must be one of {', '.join(RELEASE_MODES)}, got {release!r}")
    items = list(item_scores)
    shown = [i for i in items if include_hidden or i.visibility != "hidden"]
    hidden = [i for i in items if i not in shown]
    later = [i for i in shown if release == "unpublished" and i.visibility == "after_published"]
    # As Gradescope shows them: before publishing, only what is visible counts; after it, hidden items count
    # in the total without being shown.
    counted = [i for i in items if release != "unpublished" or i.visibility in VISIBLE_BEFORE_PUBLISHING]
    total, possible = sum(i.points for i in counted), sum(i.max_points for i in counted)
    thumbs, skipped = _thumbnails(figures_png, max_figures)
    sandbox_mode = str(sandbox or "").split(":")[0].strip().lower()     # execution/run.py: "none: ...", "bwrap: ..."
    errors = [_cell_error(e) for e in (cell_errors or [])]
    shown_hints = set()
    for error in errors:        # each hint once per page: later errors with the same hint point back to it
        if error["hint"] and error["hint"] in shown_hints:
            error["hint"], error["hint_above"] = "", True
        shown_hints.add(error["hint"])
    pending = [i for i in shown if i.awaiting_review and i not in later]   # written answers not scored yet
    graded_possible = possible - sum(i.max_points for i in pending)
    found = Status.find(status)
    late_message = _clean(lateness.message) if lateness is not None and lateness.message else ""
    return environment().get_template("feedback.html.j2").render(
        title=title, submission_id=str(submission_id), display_name=str(display_name or submission_id),
        status=status, status_meaning=found.meaning if found else status, reason=_clean(reason or ""),
        status_ok=Status.OK, graded=bool(found and found.graded), total=round(total, 2), possible=round(possible, 2),
        percent=round(100 * total / graded_possible) if graded_possible > 0 else 0,
        graded_possible=round(graded_possible, 2),
        items=[{**i.to_dict(), "points": round(i.points, 2), "max_points": round(i.max_points, 2),
                "state": "later" if i in later else "pending" if i.awaiting_review else
                ("full" if i.fraction >= 1 else ("partial" if i.points > 0 else "zero"))}
               for i in shown],
        later_count=len(later), later_points=round(sum(i.max_points for i in later), 2), release=release,
        late_message=late_message, late_penalised=bool(lateness is not None and lateness.penalised),
        pending_count=len(pending), pending_points=round(sum(i.max_points for i in pending), 2),
        hidden_count=len(hidden), hidden_points=round(sum(i.max_points for i in hidden), 2),
        errors=[e for e in errors if not e["grader_cell"]], thumbnails=thumbs, skipped=skipped,
        classifier_views=_classifier_views(shown), notes=[_clean(note) for note in notes or ()],
        advice=[_clean(text) for text in advice or ()], time_limits=time_limits,
        unsandboxed=status != Status.INVALID and sandbox_mode in NO_SANDBOX,
        flag_notes=list(dict.fromkeys([n for n in penalty_notes(items) if _clean(n) != late_message] +
                                      [FLAG_NOTES[f] for f in sorted(flags or ()) if f in FLAG_NOTES] +
                                      [sentence("Integrity check: " + f[len(INTEGRITY_PREFIX):])
                                       for f in sorted(flags or ()) if f.startswith(INTEGRITY_PREFIX)])))


def write_feedback_html(path: str | Path, submission_id: str, status: str, reason: str | None,
                        item_scores: Iterable[ItemScore], cell_errors: Iterable[Any] = (),
                        figures_png: Iterable[Any] = (), **options) -> Path:
    """Self-contained HTML for the student (no external resources, figures as data: URIs, everything from the
    submission escaped). Options: display_name, sandbox, flags, notes, advice, title, include_hidden, lateness,
    release, max_figures, time_limits (the run's limits in words, `Limits.describe_time()`)."""
    html = render_feedback_html(submission_id, status, reason, item_scores, cell_errors, figures_png, **options)
    return atomic_write_text(path, html)


def figures_from_notebook(executed_notebook: Path | None, max_figures: int = 40) -> list[tuple[str, bytes]]:
    """(caption, PNG bytes) of every image the student's cells displayed, for the feedback thumbnails; captions
    name the cell by its number in the student's notebook (the grader's own cells are not counted)."""
    if not executed_notebook or not Path(executed_notebook).exists():
        return []
    try:
        notebook = json.loads(Path(executed_notebook).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    figures, number = [], 0
    for cell in notebook.get("cells", []):
        if not isinstance(cell, dict) or (cell.get("metadata") or {}).get(GRADER_CELL_KEY):
            continue
        number += 1
        for output in cell.get("outputs", []) or []:
            data = output.get("data", {}) if isinstance(output, dict) else {}
            png = data.get(PNG_MIME) if isinstance(data, dict) else None
            if isinstance(png, str) and len(figures) < max_figures:
                if len(png) > MAX_THUMBNAIL_BYTES * 4 // 3 + 8:     # too large to show: not decoded at all
                    figures.append((f"cell {number}", len(png) * 3 // 4))     # its size, for the note
                    continue
                try:
                    figures.append((f"cell {number}", base64.b64decode(png)))
                except ValueError:
                    continue
    return figures
