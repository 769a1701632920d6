"""The results model (autograder/results.py): one status table, one item-score form, the row's JSON round trip."""
import ast
import json
from pathlib import Path

from autograder.results import GradeRow, ItemScore, Status, is_graded
from autograder.scoring import RubricItem

RESULTS = Path(__file__).resolve().parents[1] / "autograder" / "results.py"


def test_results_is_a_leaf_module():
    tree = ast.parse(RESULTS.read_text())
    imported = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not [name for name in imported if name.startswith("autograder")]


def test_status_table():
    assert [str(s) for s in Status] == ["ok", "cell_error", "timeout", "kernel_died", "invalid", "output_limit",
                                        "error"]
    assert Status.OK == "ok" and json.dumps(Status.TIMEOUT) == '"timeout"' and f"{Status.OK:<4}|" == "ok  |"
    assert [s for s in Status if s.graded] == [Status.OK, Status.CELL_ERROR]
    assert [s for s in Status if not s.canvas_score] == [Status.ERROR]
    assert is_graded("cell_error") and not is_graded("timeout") and not is_graded("no such status")
    assert Status.find("kernel_died") is Status.KERNEL_DIED and Status.find("nope") is None
    assert all(s.meaning and s.colour.startswith("#") for s in Status)


def test_item_score_zero_and_round_trip():
    item = RubricItem("pca", "PCA", 10.0, "after_published", "pca_agrees_with_sklearn")
    zero = ItemScore.zero(item, "not graded", {"status": "timeout"})
    assert (zero.points, zero.max_points, zero.fraction, zero.check, zero.details) == (
        0.0, 10.0, 0.0, "pca_agrees_with_sklearn", {"status": "timeout"})
    assert ItemScore.from_dict(zero.to_dict()) == zero


def test_grade_row_json_round_trip_keeps_item_scores_and_notes():
    row = GradeRow("ada", "Ada", Status.OK, "fine", 7.5, 10.0, items={"pca": 7.5}, flags=["report_pdf_present"],
                   item_scores=[ItemScore("pca", "PCA", 7.5, 10.0, "visible", "m", 0.75, details={"x": 1})],
                   notes=["Output was truncated in 1 cell(s)"])
    again = GradeRow.from_json(row.to_json())
    assert again == row and isinstance(again.item_scores[0], ItemScore) and again.status is Status.OK
    assert "item_scores" not in row.table_row() and "notes" not in row.table_row()
