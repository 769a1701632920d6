"""OUT/release/: what students get, written by `python -m autograder release` (`make release`).

Per student, from the graded class (OUT/<id>/row.json, the TA's sheet and the rubric, through the pipeline's cheap
stage, so a release never runs a notebook):
- OUT/release/<id>/feedback.html: the student's page. Hidden items are not shown; items with visibility
  `after_published` show as "released later" (no points, no message, not in the total) until the release is run
  with `--publish`. This is what Gradescope shows from results.json, whose items carry the same visibilities.
- OUT/release/<id>/feedback.pdf: the same page printed by headless Chromium (Debian's chromium driven by
  Playwright, as the browser tests do), for LMSs that take files.
- OUT/release/<id>.zip: the page and the PDF, to upload or mail.
- OUT/release/index.html: for the instructor, every student with the total the student sees and links to the files.
The folder is rebuilt on every release (written beside it, then swapped in), so no stale page of an earlier release
stays next to the new ones.
"""
from __future__ import annotations

import logging
import shutil
import tempfile
import time
import urllib.parse
import zipfile
from dataclasses import dataclass
from pathlib import Path

from autograder.reports.feedback import VISIBLE_BEFORE_PUBLISHING, figures_from_notebook, render_feedback_html
from autograder.reports.writing import atomic_write_text, environment
from autograder.results import (EXECUTED_NOTEBOOK, FEEDBACK_HTML, RELEASE_DIR, RELEASE_INDEX, RELEASE_PDF, GradeRow,
                                ItemScore, Lateness)

log = logging.getLogger("autograder")

DEBIAN_CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--disable-quic"]
PDF_OPTIONS = {"format": "A4", "print_background": True,
               "margin": {"top": "12mm", "bottom": "12mm", "left": "10mm", "right": "10mm"}}


@dataclass
class Released:
    row: GradeRow                   # the final row (lateness, totals)
    item_scores: list[ItemScore]    # every item, as finalised
    lateness: Lateness | None


def chromium_executable() -> str:
    found = shutil.which("chromium") or (str(DEBIAN_CHROMIUM) if DEBIAN_CHROMIUM.exists() else None)
    if not found:
        raise RuntimeError("the PDFs need Debian's chromium: run `apt-get install chromium` as root (`make test` "
                           "installs it), or release without PDFs (--no-pdf / make release PDF=no)")
    return found


def print_pdfs(pages: list[tuple[Path, Path]]) -> None:
    """Print each (html, pdf) pair with one headless Chromium."""
    if not pages:
        return
    executable = chromium_executable()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise RuntimeError("playwright is not installed: `make venv` installs requirements.txt") from None
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page()
            for html, pdf in pages:
                page.goto(Path(html).resolve().as_uri(), wait_until="load")
                page.pdf(path=str(pdf), **PDF_OPTIONS)
        finally:
            browser.close()


def shown_total(item_scores: list[ItemScore], publish: bool) -> tuple[float, float]:
    """The total the student's page shows (feedback.render_feedback_html's rule)."""
    counted = [i for i in item_scores if publish or i.visibility in VISIBLE_BEFORE_PUBLISHING]
    return round(sum(i.points for i in counted), 2), round(sum(i.max_points for i in counted), 2)


def write_release(out_dir: Path, students: list[Released], rubric, publish: bool = False, pdf: bool = True) -> dict:
    """Write OUT/release/ (see the module docstring); returns counts and the time taken."""
    started = time.monotonic()
    out_dir = Path(out_dir)
    target = out_dir / RELEASE_DIR
    staging = Path(tempfile.mkdtemp(prefix=f".{RELEASE_DIR}-", dir=out_dir))
    try:
        pages, entries = [], []
        for student in sorted(students, key=lambda s: s.row.submission.lower()):
            row = student.row
            folder = staging / row.submission
            folder.mkdir()
            executed = out_dir / row.submission / EXECUTED_NOTEBOOK
            html = render_feedback_html(
                row.submission, row.status, row.reason, student.item_scores, row.cell_errors,
                figures_from_notebook(executed if executed.exists() else None), display_name=row.display_name,
                sandbox=row.sandbox, flags=row.flags, notes=row.notes, advice=row.advice,
                lateness=student.lateness, release="published" if publish else "unpublished",
                title=f"{rubric.title}: feedback")
            atomic_write_text(folder / FEEDBACK_HTML, html)
            pages.append((folder / FEEDBACK_HTML, folder / RELEASE_PDF))
            total, possible = shown_total(student.item_scores, publish)
            entries.append({"submission": row.submission, "display_name": row.display_name, "status": row.status,
                            "total": total, "possible": possible,
                            "late": student.lateness.label if student.lateness else "",
                            "page": urllib.parse.quote(row.submission) + "/" + FEEDBACK_HTML,
                            "zip": urllib.parse.quote(row.submission) + ".zip",
                            "kib": round((folder / FEEDBACK_HTML).stat().st_size / 1024)})
        if pdf:
            print_pdfs(pages)
        for (html, pdf_path), entry in zip(pages, entries):
            entry["pdf"] = entry["page"].rsplit("/", 1)[0] + "/" + RELEASE_PDF if pdf_path.exists() else None
            with zipfile.ZipFile(staging / f"{html.parent.name}.zip", "w", zipfile.ZIP_DEFLATED) as archive:
                archive.write(html, f"{html.parent.name}/{FEEDBACK_HTML}")
                if pdf_path.exists():
                    archive.write(pdf_path, f"{html.parent.name}/{RELEASE_PDF}")
        seconds = round(time.monotonic() - started, 1)
        atomic_write_text(staging / RELEASE_INDEX, environment().get_template("release_index.html.j2").render(
            title=f"Release: {rubric.title}", entries=entries, published=publish, pdf=pdf, seconds=seconds))
        staging.chmod(0o755)
        if target.exists():
            old = target.with_name(f".{RELEASE_DIR}-old-{time.time_ns()}")
            target.rename(old)
            staging.rename(target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    counts = {"students": len(entries), "pdfs": sum(1 for e in entries if e["pdf"]), "zips": len(entries),
              "seconds": round(time.monotonic() - started, 1), "published": publish}
    log.info("release: %d students into %s (%s), %d PDFs, in %.1f s", counts["students"], target,
             "published" if publish else "not published", counts["pdfs"], counts["seconds"])
    return counts
