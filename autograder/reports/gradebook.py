"""OUT/gradebook.csv: one row per submission (whatever its status), one column per rubric item; with a deadline (or any
known submission time) also `late` (the late policy's verdict, e.g. "2 days late (-20%)") and `submitted_at`."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from autograder.reports.writing import csv_number, write_csv
from autograder.results import Status

FIXED_COLUMNS = ["submission", "status", "score", "max_score"]
LATE_COLUMNS = ["late", "submitted_at"]       # after max_score, when a deadline or a submission time is known


def _row(row: dict) -> dict:
    """A row with its `items`: given, or from its `item_scores` ([ItemScore])."""
    data = dict(row)
    items = dict(data.get("items") or {})
    for score in data.get("item_scores") or []:
        items[score.item_id] = score.points
    data["items"] = items
    if data.get("score") is None:
        data["score"] = sum(float(v) for v in items.values())
    return data


def late_label(row: dict) -> str:
    """A row's lateness as the `late` column says it (a row read back from the CSV has it as `late`)."""
    lateness = row.get("lateness")
    if isinstance(lateness, dict):
        return str(lateness.get("label", ""))
    return str(getattr(lateness, "label", "") or row.get("late") or "")


def write_gradebook_csv(path: str | Path, rows: Iterable[dict], rubric: Any, manual_items: Iterable[Any] = ()) -> Path:
    """Columns: submission, status, score, max_score, [late, submitted_at,] then one per rubric item id (points
    earned, blank when the row has no value for it), then one per `manual_items` (written answers; blank = awaiting
    review). One row per submission, sorted by submission id; rows with any status are kept. The late columns are
    there when the rubric has a deadline or a row knows its submission time.
    A row is a dict (GradeRow.table_row()) with submission, status, score, max_score and items {item id: points}
    (or item_scores: [ItemScore])."""
    manual_items = list(manual_items)
    item_ids = [item.item_id for item in rubric.items] + [item.item_id for item in manual_items]
    max_default = sum(float(item.points) for item in list(rubric.items) + manual_items)
    prepared = sorted((_row(r) for r in rows), key=lambda r: str(r.get("submission", "")))
    late = getattr(rubric, "deadline", None) is not None or any(r.get("submitted_at") or r.get("lateness")
                                                                 for r in prepared)

    lines = []
    for row in prepared:
        max_score = row.get("max_score")
        lines.append([row.get("submission", ""), row.get("status") or Status.ERROR, csv_number(row.get("score")),
                      csv_number(max_default if max_score is None else max_score)]
                     + ([late_label(row), row.get("submitted_at") or ""] if late else [])
                     + [csv_number(row["items"][i]) if i in row["items"] else "" for i in item_ids])
    return write_csv(path, FIXED_COLUMNS + (LATE_COLUMNS if late else []) + item_ids, lines)
