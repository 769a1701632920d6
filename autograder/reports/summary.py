"""The class summary: gradebook rows + rubric -> OUT/summary.html.

Four plots (matplotlib's Agg canvas, embedded as base64 PNG so the page is one self-contained file): the score
distribution, the share of graded submissions with full / partial / no points on each rubric item, the count of each
status, and the slowest submissions. Below them a table of every submission linking its `feedback.html` (relative
links, so the OUT folder can be moved or zipped whole).

Rows are dicts as in `OUT/<submission>/row.json` (pipeline.GradeRow) or `OUT/gradebook.csv`: submission, status,
score, max_score, items {item id: points}, and where known display_name, flags, duration_s, reason.
"Full points" on an item accounts for the rubric's penalties on the row's flags (an archive submission with every
check right has full points). Written answers (the rubric's `manual_items`) that the TA has not scored yet (in the
row's `awaiting_review`, or without a value) are counted as awaiting review, not as failed; an item's pass rate is
the share with full points among the graded submissions scored on it. A submission's percentage counts only what has
been graded so far (its score over its points minus those awaiting review), and the page says how much awaits
review. With a deadline, each row's lateness (the late policy's verdict) is listed and counted.
`python -m autograder.reports.summary OUT` rebuilds the page from the row.json files.
"""
from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import statistics
import sys
import urllib.parse
from collections import Counter
from pathlib import Path
from typing import Any

from autograder.reports.gradebook import FIXED_COLUMNS, LATE_COLUMNS, late_label
from autograder.reports.plots import new_figure, plain, png_data_uri
from autograder.reports.writing import atomic_write_text, csv_unescape, environment
from autograder.results import (FEEDBACK_HTML, GRADEBOOK_CSV, ROW_FILE, SIMILARITY_HTML, SUMMARY_HTML,
                                UNKNOWN_STATUS_COLOUR, Status, is_graded)
from autograder.scoring import DEFAULT_RUBRIC, RubricError, load_rubric

log = logging.getLogger("autograder")

SLOWEST = 10                 # submissions shown in the "slowest" plot
FULL_TOLERANCE = 1e-6        # points below an item's maximum still counted as full (rounding)
OUTCOMES = {"full": ("full points", "#2da44e"), "partial": ("partial", "#d4a72c"), "zero": ("no points", "#cf222e"),
            "awaiting": ("awaiting review", "#afb8c1")}


# --- numbers -----------------------------------------------------------------------------------------------------

def _number(value: Any) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _flags(row: dict) -> set[str]:
    flags = row.get("flags") or []
    if isinstance(flags, str):           # a CSV cell
        flags = [f for f in flags.replace(";", ",").split(",") if f.strip()]
    return {str(f).strip() for f in flags}


def full_points(item, flags: set[str], rubric) -> float:
    """The most an item can earn on a row with these flags (the rubric's penalties scale every item)."""
    fraction = sum(p.fraction for name, p in rubric.penalties.items() if name in flags and p.fraction > 0)
    return float(item.points) * max(0.0, 1.0 - fraction)


def summarise(rows: list[dict], rubric) -> dict:
    """The numbers behind the page: scores, per-item outcomes over graded rows, status counts, slowest rows."""
    rows = [dict(r) for r in rows]
    graded = [r for r in rows if is_graded(r.get("status"))]
    manual = tuple(getattr(rubric, "manual_items", ()))
    items = []
    for item in (*rubric.items, *manual):
        written = item in manual
        counts = Counter()
        for row in graded:
            points = _number((row.get("items") or {}).get(item.item_id))
            if written and (points is None or item.item_id in (row.get("awaiting_review") or ())):
                counts["awaiting"] += 1        # a written answer the TA has not scored yet
            elif points is None or points <= 0:
                counts["zero"] += 1
            elif points >= full_points(item, _flags(row), rubric) - FULL_TOLERANCE:
                counts["full"] += 1
            else:
                counts["partial"] += 1
        scored = len(graded) - counts["awaiting"]
        items.append({"item_id": item.item_id, "title": item.title, "points": float(item.points), "written": written,
                      **{outcome: counts[outcome] for outcome in OUTCOMES},
                      "pass_rate": counts["full"] / scored if scored else None})
    statuses = Counter(str(r.get("status") or Status.ERROR) for r in rows)
    status_counts = [(str(status), statuses.get(status, 0)) for status in Status]
    status_counts += sorted((name, n) for name, n in statuses.items() if Status.find(name) is None)
    timed = [r for r in rows if _number(r.get("duration_s")) is not None]
    slowest = sorted(timed, key=lambda r: (-_number(r["duration_s"]), str(r.get("submission"))))[:SLOWEST]
    scores = [s for s in (_number(r.get("score")) for r in rows) if s is not None]
    manual_points = {item.item_id: float(item.points) for item in manual}
    pending = [(r, pending_points(r, manual_points)) for r in graded]
    labels = [late_label(r) for r in rows]
    return {
        "pending_answers": sum(len(r.get("awaiting_review") or ()) for r, _ in pending),
        "pending_points": sum(points for _, points in pending),
        "pending_submissions": sum(1 for _, points in pending if points > 0),
        "late": sum(1 for r in rows if _late_state(r) in ("late", "unknown")),
        "late_penalised": sum(1 for r in rows if _late_fraction(r) > 0),
        "late_known": any(labels),
        "count": len(rows), "graded": len(graded), "scores": scores,
        "max_points": rubric.max_points + sum(float(item.points) for item in manual),
        "mean": statistics.fmean(scores) if scores else None,
        "median": statistics.median(scores) if scores else None,
        "items": items, "statuses": status_counts, "written_items": bool(manual),
        "slowest": [(str(r.get("submission")), _number(r["duration_s"]), str(r.get("status"))) for r in slowest],
    }


def pending_points(row: dict, manual_points: dict) -> float:
    """Points of a row's written answers still awaiting review (not graded yet)."""
    return float(sum(manual_points.get(item_id, 0.0) for item_id in row.get("awaiting_review") or ()))


def _late_state(row: dict) -> str:
    lateness = row.get("lateness")
    if isinstance(lateness, dict):
        return str(lateness.get("state", ""))
    label = str(row.get("late") or "")
    return "late" if "late" in label and not label.startswith("on time") else ""


def _late_fraction(row: dict) -> float:
    lateness = row.get("lateness")
    if isinstance(lateness, dict):
        return _number(lateness.get("fraction")) or 0.0
    return 1.0 if "(-" in str(row.get("late") or "") else 0.0


def _colour(status: str) -> str:
    found = Status.find(status)
    return found.colour if found else UNKNOWN_STATUS_COLOUR


# --- plots -------------------------------------------------------------------------------------------------------

def score_histogram(stats: dict) -> str | None:
    if not stats["scores"]:
        return None
    import numpy as np

    top = max([stats["max_points"], *stats["scores"]]) or 1.0
    figure, ax = new_figure(6.4, 3.0)
    ax.hist(stats["scores"], bins=np.linspace(0, top, 21), color="#4c72b0", edgecolor="white")
    ax.axvline(stats["mean"], color="#cf222e", linestyle="--", label=f"mean {stats['mean']:.1f}")
    ax.axvline(stats["median"], color="#1f2328", linestyle=":", label=f"median {stats['median']:.1f}")
    ax.set_xlim(0, top)
    ax.set_xlabel(f"score (out of {stats['max_points']:g})")
    ax.set_ylabel("submissions")
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.legend(loc="best")
    return png_data_uri(figure)


def item_outcomes_plot(stats: dict) -> str | None:
    if not stats["graded"]:
        return None
    items = stats["items"][::-1]           # first rubric item on top
    figure, ax = new_figure(8.0, 0.4 * len(items) + 1.2)
    left = [0.0] * len(items)
    labels = [plain(i["title"] if len(i["title"]) <= 60 else i["title"][:57] + "...") for i in items]
    for outcome, (name, colour) in OUTCOMES.items():
        if outcome == "awaiting" and not stats["written_items"]:
            continue
        shares = [100 * i[outcome] / stats["graded"] for i in items]
        ax.barh(labels, shares, left=left, color=colour, label=name)
        left = [a + b for a, b in zip(left, shares)]
    ax.set_xlim(0, 100)
    ax.set_xlabel(f"% of the {stats['graded']} graded submission(s)")
    figure.legend(loc="outside upper center", ncols=4, fontsize="small", frameon=False)
    return png_data_uri(figure)


def status_plot(stats: dict) -> str | None:
    shown = [(name, n) for name, n in stats["statuses"] if n or is_graded(name)]
    if not stats["count"]:
        return None
    figure, ax = new_figure(6.4, 2.6)
    ax.bar([plain(n) for n, _ in shown], [n for _, n in shown],
           color=[_colour(name) for name, _ in shown])
    for index, (_, n) in enumerate(shown):
        ax.annotate(str(n), (index, n), ha="center", va="bottom")
    ax.set_ylabel("submissions")
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.margins(y=0.15)
    return png_data_uri(figure)


def slowest_plot(stats: dict) -> str | None:
    if not stats["slowest"]:
        return None
    slowest = stats["slowest"][::-1]
    figure, ax = new_figure(6.4, 0.35 * len(slowest) + 1.2)
    ax.barh([plain(s) for s, _, _ in slowest], [d for _, d, _ in slowest],
            color=[_colour(status) for _, _, status in slowest])
    ax.set_xlabel("seconds to grade (bar colour: status)")
    return png_data_uri(figure)


# --- the page ----------------------------------------------------------------------------------------------------

def render_summary_html(rows: list[dict], rubric, out_dir: Path | None = None, title: str | None = None,
                        unenforced: list[str] = ()) -> str:
    """Self-contained HTML; feedback links are relative to `out_dir` and only made for pages that exist there
    (all of them when `out_dir` is None). `unenforced`: the limits this machine could not enforce
    (sandbox.unenforced_limits), shown at the top."""
    stats = summarise(rows, rubric)
    manual_points = {item.item_id: float(item.points) for item in getattr(rubric, "manual_items", ())}

    def exists(relative: str) -> bool:
        return out_dir is None or (Path(out_dir) / relative).is_file()

    table = []
    for row in sorted(rows, key=lambda r: str(r.get("submission", "")).lower()):
        submission = str(row.get("submission", ""))
        feedback = f"{submission}/{FEEDBACK_HTML}"
        score, max_score = _number(row.get("score")), _number(row.get("max_score"))
        waiting = pending_points(row, manual_points) if is_graded(row.get("status")) else 0.0
        graded_max = max_score - waiting if max_score is not None else None
        table.append({"submission": submission, "display_name": str(row.get("display_name") or submission),
                      "status": str(row.get("status") or Status.ERROR), "reason": str(row.get("reason") or ""),
                      "score": score, "max_score": max_score, "pending": waiting, "late": late_label(row),
                      "late_penalised": _late_fraction(row) > 0,
                      "percent": round(100 * score / graded_max) if score is not None and graded_max else None,
                      "duration": _number(row.get("duration_s")),
                      "feedback": urllib.parse.quote(feedback) if submission and exists(feedback) else None})
    others = [name for name in (GRADEBOOK_CSV, SIMILARITY_HTML) if out_dir is not None and exists(name)]
    return environment().get_template("summary.html.j2").render(
        title=title or f"Class summary: {rubric.title}", stats=stats, rows=table, others=others,
        unenforced=list(unenforced),
        statuses={str(s): s.meaning for s in Status}, status_ok=Status.OK,
        plots={"scores": score_histogram(stats), "item_outcomes": item_outcomes_plot(stats),
               "statuses": status_plot(stats), "slowest": slowest_plot(stats)})


def write_summary_html(out_path: str | Path, rows: list[dict], rubric, title: str | None = None,
                       unenforced: list[str] = ()) -> Path:
    """Write the summary atomically (e.g. OUT/summary.html); links are relative to its folder."""
    out_path = Path(out_path)
    return atomic_write_text(out_path, render_summary_html(rows, rubric, out_path.parent, title, unenforced))


def rows_from_out_dir(out_dir: Path) -> list[dict]:
    """The class's rows as grade_class left them: scores from OUT/gradebook.csv (written answers included, blank =
    awaiting review), and what the CSV lacks (name, flags, time, reason) from each OUT/<submission>/row.json.
    Without a gradebook, the row.json files alone."""
    out_dir = Path(out_dir)
    cached = {}
    for path in sorted(out_dir.glob(f"*/{ROW_FILE}")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            cached[str(data["submission"])] = data
        except (OSError, ValueError, KeyError, TypeError) as error:
            log.warning("%s: skipped, not readable (%s)", path, error)
    try:
        with open(out_dir / GRADEBOOK_CSV, newline="", encoding="utf-8") as handle:
            table = [{key: csv_unescape(value) if isinstance(value, str) else value for key, value in line.items()}
                     for line in csv.DictReader(handle)]
    except OSError:
        return list(cached.values())
    rows = []
    for line in table:
        fixed = set(FIXED_COLUMNS) | set(LATE_COLUMNS)
        items = {key: value for key, value in line.items() if key not in fixed and value not in ("", None)}
        extra = cached.get(line["submission"], {})
        awaiting = [key for key, value in line.items() if key not in fixed and value == ""]
        rows.append({**{k: extra[k] for k in ("display_name", "flags", "duration_s", "reason") if k in extra},
                     "submission": line["submission"], "status": line["status"], "score": line["score"],
                     "max_score": line["max_score"], "items": items, "awaiting_review": awaiting,
                     "late": line.get("late", ""), "submitted_at": line.get("submitted_at", "")})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the grading output folder (holds gradebook.csv)")
    parser.add_argument("--rubric", type=Path, default=DEFAULT_RUBRIC)
    args = parser.parse_args(argv)
    rows = rows_from_out_dir(args.out)
    if not rows:
        print(f"error: no gradebook.csv or <submission>/row.json in {args.out}: grade the class first (make grade)",
              file=sys.stderr)
        return 2
    try:
        rubric = load_rubric(args.rubric)
    except RubricError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(write_summary_html(args.out / SUMMARY_HTML, rows, rubric))
    return 0


if __name__ == "__main__":
    sys.exit(main())
