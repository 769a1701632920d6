"""OUT/<submission>/results.json: Gradescope's results format, built through otter-grader's results model.

`otter.test_files.GradingResults` holds one `TestFile` per rubric item with one `TestCase` (empty body: our check
code is never part of it) and its `TestCaseResult`; the earned points go through `TestFile.update_score` (partial
credit), and `GradingResults.to_gradescope_dict` renders the Gradescope JSON. We then set each test's visibility from
the rubric (otter has one visibility for all hidden tests) and its output to our teaching message (otter's summary
would repeat the item name). A grader failure (status `error`) goes through `GradingResults.without_results`, otter's
"Autograder Failed" result.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

from autograder.reports.writing import atomic_write_text
from autograder.results import ItemScore, Status

GRADESCOPE_VISIBILITIES = ("visible", "hidden", "after_published", "after_due_date")


def _otter_results(items: list[ItemScore], status: str, reason: str | None):
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

    if status == Status.ERROR:
        return GradingResults.without_results(RuntimeError(reason or "the grader failed on this submission"))
    files = []
    for item in items:
        case = TestCase(name=item.item_id, body="", hidden=item.visibility != "visible",
                        points=item.max_points, success_message=None, failure_message=None)
        test = RubricItemTest(name=item.item_id, path=item.item_id, test_cases=[case], all_or_nothing=False)
        test.test_case_results = [TestCaseResult(test_case=case, message=item.message, passed=item.fraction >= 1.0)]
        test.update_score(round(item.points, 5))
        files.append(test)
    return GradingResults(files)


def gradescope_dict(item_scores: Iterable[ItemScore], status: str, reason: str | None = None,
                    stdout_visibility: str = "hidden") -> dict:
    from otter.run import AutograderConfig

    items = list(item_scores)
    results = _otter_results(items, status, reason)
    possible = sum(i.max_points for i in items)
    config = AutograderConfig({"show_hidden": True, "force_public_test_summary": False,
                               "show_stdout": stdout_visibility == "after_published",
                               "points_possible": possible or None})
    output = results.to_gradescope_dict(config)
    by_id = {i.item_id: i for i in items}
    for test in output["tests"]:
        item = by_id.get(test.get("name"))
        if item is None:         # otter's own entries (the catastrophic-failure tests) stay as otter wrote them
            continue
        test["name"] = item.title
        test["visibility"] = item.visibility
        test["output"] = item.message
        test["status"] = "passed" if item.fraction >= 1.0 else "failed"
        if item.awaiting_review:     # a written answer not scored yet is neither passed nor failed
            del test["status"]
    output.setdefault("score", 0.0)
    output["score"] = round(float(output["score"]), 4)
    output["output"] = _summary_line(status, reason, items)
    output["stdout_visibility"] = stdout_visibility
    return output


def _summary_line(status: str, reason: str | None, items: list[ItemScore]) -> str:
    """The submission-level message; it totals only the visible items, so hidden ones stay hidden until published."""
    shown = [i for i in items if i.visibility == "visible"]
    total, possible = sum(i.points for i in shown), sum(i.max_points for i in shown)
    later = " (the other items are released with the grades)" if len(shown) < len(items) else ""
    found = Status.find(status)
    meaning = found.meaning if found else f"status {status}"
    line = f"Visible items: {total:g} / {possible:g}{later}. Status: {status} ({meaning})."
    if reason and status != Status.OK:
        line += f" {sentence(reason)}"
    for note in penalty_notes(items):
        line += f" {sentence(note)}"
    return line


def penalty_notes(items: Iterable[ItemScore]) -> list[str]:
    """The rubric penalties applied to these items, each once."""
    return list(dict.fromkeys(str(note) for i in items for note in i.penalties))


def sentence(text: str) -> str:
    text = str(text).strip()
    return text if text.endswith((".", "!", "?")) else text + "."


def write_results_json(path: str | Path, item_scores: Iterable[ItemScore], status: str = Status.OK,
                       reason: str | None = None, stdout_visibility: str = "hidden") -> dict:
    """Gradescope results.json: score, tests[name, score, max_score, status, visibility, output], output,
    stdout_visibility. Returns the dict written."""
    data = gradescope_dict(item_scores, status, reason, stdout_visibility)
    text = json.dumps(data, indent=2, allow_nan=False, ensure_ascii=False)
    atomic_write_text(path, text + "\n")
    return data
