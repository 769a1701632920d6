"""The TA's desk: model answers and grading guides on the review sheet (never in a student's notebook), similar
answers grouped and scored as a group, and a similarity report that excludes other starter code and collapses pairs."""
import csv
from pathlib import Path

import pytest

from autograder.discover import discover
from autograder.lab import demo
from autograder.reports import answer_groups, review, similarity, written_answers
from autograder.scoring import load_rubric
from tests.reports.test_similarity import INDEPENDENT_CELLS, ORIGINAL_CELLS, write_student

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "student_template" / "lab.ipynb"

AMY = ("PCA is deterministic: it is the eigendecomposition of the covariance matrix, computed by an exact SVD, "
       "so running it twice on the same data gives the same components.")
NEAR = {   # near-identical to Amy's: a word changed, punctuation, case
    "bob": AMY.replace("exact SVD", "exact svd").replace(":", ","),
    "cid": AMY.replace("running it twice", "running it again") + " Nothing random happens.",
}
UNRELATED = {
    "dan": "Yes, the components change every time because sklearn shuffles the training images at random.",
    "eve": "No. Only the signs of the eigenvectors could flip, and scikit-learn fixes them with a convention.",
}


@pytest.fixture(scope="module")
def rubric():
    return load_rubric(ROOT / "autograder" / "rubric.yaml")


@pytest.fixture(scope="module")
def questions(rubric):
    return written_answers.load_questions(rubric)


def with_answers(answers: dict[str, str]) -> dict:
    return {item_id: written_answers.Answer(text, "answered") for item_id, text in answers.items()}


def test_every_question_has_the_masters_model_answer_and_grading_guide(questions):
    for question in questions.questions:
        assert len(question.model_answer) > 200 and not question.model_answer.startswith("_Model answer._")
        assert question.grading_guide.startswith("3 points, 1 each.")
        assert written_answers.GRADING_GUIDE_MARKER not in question.model_answer
    assert written_answers.master_answers(None) == {}                          # e.g. in the Gradescope zip


def test_grading_guides_never_reach_a_students_notebook():
    for path in [TEMPLATE, *demo.DEMO_DIR.glob("*.ipynb")]:
        assert written_answers.GRADING_GUIDE_MARKER not in path.read_text(encoding="utf-8"), path.name
    master = (ROOT / "solution" / "lab.ipynb").read_text(encoding="utf-8")
    assert master.count(written_answers.GRADING_GUIDE_MARKER) == 10


def test_near_identical_answers_share_a_group_unrelated_ones_do_not():
    groups = answer_groups.group_answers({"amy": AMY, **NEAR, **UNRELATED, "fay": "no"})
    assert groups == {"amy": "g1", "bob": "g1", "cid": "g1"}
    assert answer_groups.group_answers({"amy": AMY}) == {}
    pairs = answer_groups.group_answers({"a": "The KL is summed over latent dimensions then averaged.",
                                         "b": "The KL is summed over latent dimensions then averaged.",
                                         "c": "The reconstruction is a sum over pixels, per image.",
                                         "d": "The reconstruction is a sum over pixels, per image!"})
    assert pairs == {"a": "g1", "b": "g1", "c": "g2", "d": "g2"}


def sheet_rows(out: Path) -> list[dict]:
    with open(out / "review" / "written_answers.csv", newline="", encoding="utf-8-sig") as handle:
        return list(csv.DictReader(handle))


def write_scores(out: Path, rows: list[dict], scores: dict) -> None:
    for row in rows:
        row["score"], row["comment"] = scores.get((row["submission"], row["question"]), (row["score"],
                                                                                          row["comment"]))
    with open(out / "review" / "written_answers.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=review.COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def test_the_sheet_groups_answers_and_a_group_is_scored_in_one_row(tmp_path, rubric, questions):
    students = [(sid, sid.title(), with_answers({"q2_pca_twice": text}))
                for sid, text in {"amy": AMY, **NEAR, **UNRELATED}.items()]
    review.write_review_sheet(tmp_path, rubric, students, questions)
    rows = [r for r in sheet_rows(tmp_path) if r["question"] == "q2_pca_twice"]
    assert [(r["submission"], r["group"]) for r in rows] == [("amy", "g1"), ("bob", "g1"), ("cid", "g1"),
                                                             ("dan", ""), ("eve", "")]    # one row per student
    html = (tmp_path / "review" / "written_answers.html").read_text()
    q2 = html.split('id="q2_pca_twice"', 1)[1].split("<h2", 1)[0]
    assert "Grading guide." in q2 and "Model answer" in q2 and "deterministic eigendecomposition" in q2
    assert "Near-identical to Amy's answer above (group g1)" in q2 and "1 group(s) of near-identical" in q2

    all_rows = sheet_rows(tmp_path)
    write_scores(tmp_path, all_rows, {("amy", "q2_pca_twice"): ("3", "Right, and why."),
                                      ("cid", "q2_pca_twice"): ("2", "")})     # a single answer overridden
    sheet = review.load_scores(tmp_path, rubric)
    scores = sheet.all_scores
    assert scores[("amy", "q2_pca_twice")] == review.TAScore(3.0, "Right, and why.")
    assert scores[("cid", "q2_pca_twice")] == review.TAScore(2.0, "")
    assert ("bob", "q2_pca_twice") not in sheet.scores                         # blank in the sheet ...
    assert "different scores (2, 3)" in sheet.problems[0]                      # ... and the group disagrees
    write_scores(tmp_path, sheet_rows(tmp_path), {("cid", "q2_pca_twice"): ("3", "")})
    scores = review.load_scores(tmp_path, rubric).all_scores
    assert scores[("bob", "q2_pca_twice")] == review.TAScore(3.0, "Right, and why.", "g1")   # from its group
    assert ("dan", "q2_pca_twice") not in scores                               # no group: awaits its own score
    [bob] = [s for s in review.manual_item_scores(rubric, "bob", scores) if s.item_id == "q2_pca_twice"]
    assert bob.points == 3.0 and "Right, and why." in bob.message
    review.write_review_sheet(tmp_path, rubric, students, questions)            # rewriting keeps the blank blank
    assert {r["submission"]: r["score"] for r in sheet_rows(tmp_path) if r["question"] == "q2_pca_twice"} == \
        {"amy": "3", "bob": "", "cid": "3", "dan": "", "eve": ""}
    assert "(from group g1)" in (tmp_path / "review" / "written_answers.html").read_text()


def test_starter_code_is_excluded_and_copies_collapse_into_one_group(tmp_path):
    starter = tmp_path / "helpers.py"
    starter.write_text("\n\n".join(ORIGINAL_CELLS[:2]))                       # handed out with the lab
    subs = tmp_path / "class"
    subs.mkdir()
    for name in ("Ann", "Ben", "Cat"):      # each adds the handed-out helpers and one small cell of their own
        write_student(subs / f"Assignment1 {name} Student.ipynb", ORIGINAL_CELLS[:2] + [f"print('{name}')"])
    for name in ("Dee", "Eli", "Fox"):      # the helpers, and the same work copied among the three
        write_student(subs / f"Assignment1 {name} Copier.ipynb", ORIGINAL_CELLS[:2] + INDEPENDENT_CELLS)
    write_student(subs / "Assignment1 Gil Independent.ipynb", ORIGINAL_CELLS)
    submissions = discover(subs)
    without = similarity.build_report(submissions)          # the helpers alone join everyone
    assert [len(g.members) for g in without.groups] == [7]
    report = similarity.build_report(submissions, starter_code=[starter])
    assert [sorted(g.members) for g in report.groups] == [["Dee_Copier", "Eli_Copier", "Fox_Copier"]]
    [group] = report.groups
    assert len(group.pairs) == 3 and [p.detailed for p in group.pairs] == [True, False, False]
    page = similarity.render_similarity_html(report)
    assert page.count('<div class="sides">') == 1 and page.count('id="pair-') == 1
    assert "Also excluded, as starter code: helpers.py" in page
    assert "its 3 pair(s)" in page


def test_pipeline_passes_starter_code_to_the_similarity_report(tmp_path, monkeypatch):
    from autograder import pipeline

    seen = {}
    monkeypatch.setattr(similarity, "write_similarity_report",
                        lambda submissions, path, **options: seen.update(options))
    pipeline.write_class_reports(tmp_path, [], [], load_rubric(ROOT / "autograder" / "rubric.yaml"),
                                 starter_code=(tmp_path / "extra.ipynb",))
    assert seen == {"starter_code": (tmp_path / "extra.ipynb",)}
