"""Written answers: found in reordered / metadata-stripped notebooks, listed for the TA, scores read back and merged
into the reports on the next run without executing any notebook again (execution is replaced by a counter here)."""
import csv
import json
import logging
import zipfile
from pathlib import Path

import nbformat
import pytest

from autograder import pipeline
from autograder.reports import review, written_answers
from autograder.execution.limits import Limits
from autograder.pipeline import GradeSettings, grade_class
from autograder.results import ROW_FILE
from autograder.lab.profiles import TINY
from autograder.scoring import load_rubric
from tests.copying_execution import copy_instead_of_executing

ROOT = Path(__file__).resolve().parents[2]
RUBRIC = ROOT / "autograder" / "rubric.yaml"
TEMPLATE = ROOT / "student_template" / "lab.ipynb"
MASTER = ROOT / "solution" / "lab.ipynb"


@pytest.fixture(scope="module")
def rubric():
    return load_rubric(RUBRIC)


@pytest.fixture(scope="module")
def questions(rubric):
    return written_answers.load_questions(rubric)


def template() -> nbformat.NotebookNode:
    return nbformat.read(TEMPLATE, as_version=4)


def answer_cells(notebook) -> list:
    return [c for c in notebook.cells
            if c.cell_type == "markdown" and "otter_answer_cell" in c.metadata.get("tags", [])]


def filled(answers: dict[str, str] | None = None, rubric=None) -> nbformat.NotebookNode:
    """The template with an answer typed in every answer cell, in rubric order."""
    notebook = template()
    ids = [item.item_id for item in (rubric or load_rubric(RUBRIC)).manual_items]
    for item_id, cell in zip(ids, answer_cells(notebook), strict=True):
        cell.source = (answers or {}).get(item_id, f"My answer to {item_id}: because of *reasons*.")
    return notebook


def text(notebook) -> str:
    return nbformat.writes(notebook)


# --- the questions match the lab ---------------------------------------------------------------------------------

def test_rubric_written_items_are_the_masters_manual_questions(rubric, questions):
    master = json.loads(MASTER.read_text())
    manual, cells = [], master["cells"]
    for index, cell in enumerate(cells):
        source = "".join(cell["source"])
        if cell["cell_type"] == "raw" and source.startswith("# BEGIN QUESTION") and "manual: true" in source:
            name = next(line.split(":", 1)[1].strip() for line in source.splitlines() if line.startswith("name:"))
            prompt = "".join(cells[index + 1]["source"])
            manual.append((name, prompt))
    assert [name for name, _ in manual] == rubric.manual_ids
    for (name, prompt), question in zip(manual, questions.questions):
        assert prompt.startswith(f"**{question.heading} (written answer).**"), (name, question.heading)
        assert question.prompt.endswith(prompt.split("**", 2)[2].strip()), f"{name}: template prompt differs"
    assert all(item.points == 3 for item in rubric.manual_items)


# --- finding answers ---------------------------------------------------------------------------------------------

def test_filled_template_answers_and_untouched_template_blanks(questions, rubric):
    answers = written_answers.extract_answers(text(filled(rubric=rubric)), questions)
    assert {k: a.state for k, a in answers.items()} == {i: "answered" for i in rubric.manual_ids}
    for item_id, answer in answers.items():
        assert answer.text == f"My answer to {item_id}: because of *reasons*."
    blank = written_answers.extract_answers(TEMPLATE.read_bytes(), questions)
    assert {a.state for a in blank.values()} == {"blank"} and not any(a.text for a in blank.values())


def test_otter_autograder_notebook_skips_the_placeholder(questions):
    """The demo's solution (otter's autograder notebook) keeps the placeholder cell and adds the model answer."""
    answers = written_answers.extract_answers((ROOT / "autograder/lab/demo_class/Assignment1 Ada Lovelace.ipynb").read_bytes(),
                                     questions)
    assert all(a.state == "answered" and a.text.startswith("_Model answer._") for a in answers.values())
    assert not any(written_answers.PLACEHOLDER in a.text for a in answers.values())


def test_reordered_metadata_stripped_copy(questions, rubric):
    notebook = filled(rubric=rubric)
    cells = notebook.cells
    for cell in cells:                                   # e.g. Colab or a copy-paste into a fresh notebook
        cell.metadata = {}
    prompt_index = {q.item_id: next(i for i, c in enumerate(cells) if c.source.startswith("<!--") and
                                    q.heading + " (written answer)" in c.source) for q in questions.questions}
    # Question 6b's prompt and answer moved to the top of the notebook.
    q6b = prompt_index["q6_latent_spaces"]
    moved = cells[q6b:q6b + 2]
    del cells[q6b:q6b + 2]
    cells[0:0] = moved
    # Question 1: the answer typed into the prompt cell itself, the answer cell left with the placeholder.
    q1 = next(i for i, c in enumerate(cells) if "Question 1 (written answer)" in c.source)
    cells[q1].source += "\n\nRuns differ by a rotation of the latent space."
    cells[q1 + 1].source = written_answers.PLACEHOLDER
    # Question 6c (its prompt cell starts with 6b's END marker): the answer typed into the prompt cell too.
    q6c = next(i for i, c in enumerate(cells) if "Question 6c (written answer)" in c.source)
    assert cells[q6c].source.startswith("<!-- END QUESTION -->")
    cells[q6c].source += "\n\nNew z every call."
    cells[q6c + 1].source = written_answers.PLACEHOLDER
    # Question 3: the prompt copied further down with an empty answer cell after it (the first answer is kept).
    q3 = next(i for i, c in enumerate(cells) if "Question 3 (written answer)" in c.source)
    cells.append(nbformat.v4.new_markdown_cell(cells[q3].source))
    cells.append(nbformat.v4.new_markdown_cell(written_answers.PLACEHOLDER))
    # Question 4: the answer typed into a code cell (prose, not Python).
    q4 = next(i for i, c in enumerate(cells) if "Question 4 (written answer)" in c.source)
    cells[q4 + 1] = nbformat.v4.new_code_cell("The KL is summed per image so it stays comparable to the BCE term")
    # Question 7: the prompt deleted.
    q7 = next(i for i, c in enumerate(cells) if "Question 7 (written answer)" in c.source)
    del cells[q7:q7 + 2]

    answers = written_answers.extract_answers(text(notebook), questions)
    assert answers["q6_latent_spaces"].text == "My answer to q6_latent_spaces: because of *reasons*."
    assert answers["q1_autoencoder_runs"].text == "Runs differ by a rotation of the latent space."
    assert answers["q3_latent_size"].text == "My answer to q3_latent_size: because of *reasons*."
    assert answers["q4_kl_batching"].text.startswith("The KL is summed per image")
    assert answers["q7_gaussian_decoder"].state == "not_found"
    assert answers["q6_repeated_sampling"].text == "New z every call."
    for item_id in ("q2_pca_vs_autoencoder", "q2_pca_twice", "q5_per_digit_grid", "q6_vae_vs_autoencoder"):
        assert answers[item_id].text == f"My answer to {item_id}: because of *reasons*.", item_id


def test_renumbered_heading_is_matched_by_the_prompt_text(questions, rubric):
    notebook = filled(rubric=rubric)
    for cell in notebook.cells:
        cell.metadata = {}
        cell.source = cell.source.replace("<!-- BEGIN QUESTION -->", "").replace("<!-- END QUESTION -->", "")
        cell.source = cell.source.replace("**Question 3 (written answer).**", "**Question 4 (written answer).**")
    answers = written_answers.extract_answers(text(notebook), questions)
    assert answers["q3_latent_size"].text == "My answer to q3_latent_size: because of *reasons*."
    assert answers["q4_kl_batching"].text == "My answer to q4_kl_batching: because of *reasons*."


def test_answer_starting_with_its_heading_is_kept(questions, rubric):
    notebook = filled({"q5_per_digit_grid": "Question 5: I used the encoder means."}, rubric)
    answers = written_answers.extract_answers(text(notebook), questions)
    assert answers["q5_per_digit_grid"].text == "Question 5: I used the encoder means."


def test_without_the_template_headings_still_find_answers(rubric):
    by_heading = written_answers.load_questions(rubric, template=None)
    answers = written_answers.extract_answers(text(filled(rubric=rubric)), by_heading)
    assert all(a.text == f"My answer to {k}: because of *reasons*." for k, a in answers.items())


def test_unreadable_notebook_gives_unreadable_answers(questions):
    answers = written_answers.extract_answers(b"{not json", questions)
    assert {a.state for a in answers.values()} == {"unreadable"}


# --- the sheet ---------------------------------------------------------------------------------------------------

def students_for(questions, names_and_notebooks):
    return [(sid, name, written_answers.extract_answers(text(nb), questions)) for sid, name, nb in names_and_notebooks]


def read_csv(path: Path) -> list[dict]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def fill(path: Path, scores: dict[tuple[str, str], tuple[str, str]]) -> None:
    """What a TA does in a spreadsheet: type scores and comments, save as CSV."""
    rows = read_csv(path)
    for row in rows:
        if (row["submission"], row["question"]) in scores:
            row["score"], row["comment"] = scores[(row["submission"], row["question"])]
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=review.COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def test_sheet_lists_every_answer_escaped(tmp_path, questions, rubric):
    evil = filled({"q1_autoencoder_runs": "<script>alert('x')</script> & =SUM(A1)"}, rubric)
    review.write_review_sheet(tmp_path, rubric, students_for(questions, [("zed", "Zed Z", filled(rubric=rubric)),
                                                                         ("amy", "Amy A", evil)]), questions)
    rows = read_csv(tmp_path / "review" / "written_answers.csv")
    assert list(rows[0]) == ["submission", "question", "group", "answer", "score", "max_points", "comment"]
    assert [(r["question"], r["submission"]) for r in rows] == [(q, s) for q in rubric.manual_ids
                                                                for s in ("amy", "zed")]
    assert all(r["score"] == "" and r["max_points"] == "3" for r in rows)
    assert rows[0]["answer"].startswith("<script>")
    html = (tmp_path / "review" / "written_answers.html").read_text()
    assert "&lt;script&gt;alert(" in html and "<script>alert" not in html
    assert html.count('class="pending">awaiting review<') == 20 and "Amy A" in html and "Zed Z" in html


def test_sheet_renders_markdown_and_formulas_but_nothing_active(tmp_path, questions, rubric):
    answer = ("Summing gives **nats per image**:\n\n- the KL $\\sum_j \\mu_j^2 * \\sigma_j$ per image\n- then the mean\n\n"
              "![tracker](http://203.0.113.9/pixel.png) [click](javascript:alert(1)) <img src=x onerror=alert(1)>")
    notebook = filled({"q4_kl_batching": answer}, rubric)
    review.write_review_sheet(tmp_path, rubric, students_for(questions, [("amy", "Amy A", notebook)]), questions)
    html = (tmp_path / "review" / "written_answers.html").read_text()
    assert "<strong>nats per image</strong>" in html and "<li>then the mean</li>" in html
    assert '<code class="math">$\\sum_j \\mu_j^2 * \\sigma_j$</code>' in html     # no emphasis inside formulas
    assert "![tracker](http://203.0.113.9/pixel.png)" in html and 'src="http' not in html   # shown, not fetched
    assert "[click](javascript:alert(1))" in html and 'href="javascript' not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_scores_are_validated_with_clear_messages(tmp_path, questions, rubric):
    review.write_review_sheet(tmp_path, rubric, students_for(questions, [("amy", "Amy", filled(rubric=rubric)),
                                                                         ("bob", "Bob", filled(rubric=rubric))]))
    sheet_file = tmp_path / "review" / "written_answers.csv"
    fill(sheet_file, {("amy", "q1_autoencoder_runs"): ("2,5", "clear"), ("amy", "q2_pca_twice"): ("lots", ""),
                      ("bob", "q1_autoencoder_runs"): ("5", ""), ("bob", "q3_latent_size"): ("3", "")})
    sheet = review.load_scores(tmp_path, rubric)
    assert sheet.scores == {("amy", "q1_autoencoder_runs"): review.TAScore(2.5, "clear"),
                            ("bob", "q3_latent_size"): review.TAScore(3.0, "")}
    rows = read_csv(sheet_file)
    row_of = {(r["submission"], r["question"]): n for n, r in enumerate(rows, start=2)}
    out_of_range, not_a_number = sheet.problems                      # in the sheet's row order
    assert not_a_number.startswith(f"{sheet_file}: row {row_of[('amy', 'q2_pca_twice')]} (submission 'amy', "
                                   f"question 'q2_pca_twice'): score 'lots' is not a number; write a number from 0 "
                                   f"to 3")
    assert "ignored until it is fixed" in not_a_number
    assert f"row {row_of[('bob', 'q1_autoencoder_runs')]} " in out_of_range and "outside 0..3" in out_of_range


def test_rewriting_keeps_the_tas_scores_and_comments(tmp_path, questions, rubric):
    first = [("amy", "Amy", filled(rubric=rubric)), ("bob", "Bob", filled(rubric=rubric)),
             ("cid", "Cid", filled(rubric=rubric))]
    review.write_review_sheet(tmp_path, rubric, students_for(questions, first), questions)
    sheet_file = tmp_path / "review" / "written_answers.csv"
    fill(sheet_file, {("amy", "q1_autoencoder_runs"): ("3", "great"), ("amy", "q2_pca_twice"): ("two?", "typo"),
                      ("bob", "q7_gaussian_decoder"): ("1", "see the means"),
                      ("cid", "q1_autoencoder_runs"): ("2", "")})
    # Next batch: cid is gone, dan is new, bob resubmitted a different answer to question 7.
    bob_new = filled({"q7_gaussian_decoder": "A new answer."}, rubric)
    second = [("amy", "Amy", filled(rubric=rubric)), ("bob", "Bob", bob_new), ("dan", "Dan", filled(rubric=rubric))]
    review.write_review_sheet(tmp_path, rubric, students_for(questions, second), questions)
    rows = {(r["submission"], r["question"]): r for r in read_csv(sheet_file)}
    assert (rows[("amy", "q1_autoencoder_runs")]["score"], rows[("amy", "q1_autoencoder_runs")]["comment"]) == \
        ("3", "great")
    assert rows[("amy", "q2_pca_twice")]["score"] == "two?"                # kept to be fixed, not erased
    assert rows[("bob", "q7_gaussian_decoder")]["score"] == "1"
    assert rows[("bob", "q7_gaussian_decoder")]["answer"] == "A new answer."
    assert rows[("cid", "q1_autoencoder_runs")]["score"] == "2"            # scored rows of a departed student stay
    assert ("cid", "q2_pca_twice") not in rows                             # blank ones do not
    assert rows[("dan", "q1_autoencoder_runs")]["score"] == ""
    html = (tmp_path / "review" / "written_answers.html").read_text()
    assert "bob / q7_gaussian_decoder" in html                              # the changed answer is pointed out
    assert len(rows) == 3 * 10 + 1


def test_unreadable_sheet_is_copied_aside_not_lost(tmp_path, questions, rubric):
    sheet_file = tmp_path / "review" / "written_answers.csv"
    sheet_file.parent.mkdir()
    sheet_file.write_text("who,what,points\namy,q1_autoencoder_runs,3\n")
    sheet = review.load_scores(tmp_path, rubric)
    assert not sheet.readable and sheet.scores == {} and "header must hold the columns" in sheet.problems[0]
    review.write_review_sheet(tmp_path, rubric, students_for(questions, [("amy", "Amy", filled(rubric=rubric))]))
    aside = list(sheet_file.parent.glob("written_answers.unreadable-*.csv"))
    assert len(aside) == 1 and aside[0].read_text() == "who,what,points\namy,q1_autoencoder_runs,3\n"
    assert read_csv(sheet_file)[0]["submission"] == "amy"


# --- through the pipeline ----------------------------------------------------------------------------------------

@pytest.fixture()
def counted_execution(monkeypatch):
    """execute_submission replaced by a counter that 'runs' a notebook by copying it (no kernel, no scores)."""
    calls = copy_instead_of_executing(monkeypatch)
    monkeypatch.setattr(pipeline, "write_class_reports", lambda *args, **kwargs: None)   # tested on their own
    return calls


def test_ta_scores_reach_gradebook_feedback_and_results_without_reexecution(tmp_path, counted_execution, rubric,
                                                                             caplog):
    submissions = tmp_path / "submissions"
    submissions.mkdir()
    nbformat.write(filled(rubric=rubric), submissions / "Assignment1 Amy Adams.ipynb")
    nbformat.write(filled(rubric=rubric), submissions / "adamsbob_LATE_4242_77_lab.ipynb")
    with zipfile.ZipFile(submissions / "cid.zip", "w") as archive:      # archive penalty: 10% of every item
        archive.writestr("cid/lab.ipynb", text(filled(rubric=rubric)))
    out = tmp_path / "out"
    settings = GradeSettings(out_dir=out, rubric_path=RUBRIC, data_dir=ROOT / "data_cache", sandbox="none",
                             profile_name="tiny", profile=dict(TINY), limits=Limits())

    rows = {r.submission: r for r in grade_class(submissions, settings, progress=False)}
    assert sorted(counted_execution) == ["submission.ipynb"] * 3
    assert set(rows) == {"Amy_Adams", "adamsbob", "cid"}
    assert all(r.awaiting_review == rubric.manual_ids and r.max_score == rubric.max_points + rubric.manual_points
               for r in rows.values())
    assert "awaiting review" in (out / "Amy_Adams" / "feedback.html").read_text()
    gradebook = {r["submission"]: r for r in csv.DictReader((out / "gradebook.csv").open())}
    assert gradebook["Amy_Adams"]["q1_autoencoder_runs"] == ""             # blank = awaiting review
    stamps = {s: (out / s / ROW_FILE).stat().st_mtime_ns for s in rows}
    before = {s: r.score for s, r in rows.items()}

    fill(out / "review" / "written_answers.csv",
         {("Amy_Adams", "q1_autoencoder_runs"): ("2.5", "Good <b>point</b>"),
          ("Amy_Adams", "q2_pca_twice"): ("lots", ""),                     # not a number: ignored, named
          ("adamsbob", "q3_latent_size"): ("7", ""),                        # out of range: ignored, named
          ("cid", "q1_autoencoder_runs"): ("3", "")})
    with caplog.at_level(logging.WARNING, logger="autograder"):
        again = {r.submission: r for r in grade_class(submissions, settings, progress=False)}

    assert len(counted_execution) == 3, "a TA's scores must not re-execute any notebook"
    assert {s: (out / s / ROW_FILE).stat().st_mtime_ns for s in again} == stamps
    assert all(r.status == "ok" for r in again.values())
    amy, bob, cid = again["Amy_Adams"], again["adamsbob"], again["cid"]
    assert amy.score == pytest.approx(before["Amy_Adams"] + 2.5) and amy.items["q1_autoencoder_runs"] == 2.5
    assert "q1_autoencoder_runs" not in amy.awaiting_review and "q2_pca_twice" in amy.awaiting_review
    assert bob.score == before["adamsbob"] and "q3_latent_size" in bob.awaiting_review
    assert cid.items["q1_autoencoder_runs"] == pytest.approx(2.7)        # penalties apply to written answers too
    warnings = "\n".join(record.getMessage() for record in caplog.records)
    assert "score 'lots' is not a number" in warnings and "question 'q2_pca_twice'" in warnings
    assert "score 7 is outside 0..3" in warnings and "written_answers.csv: row " in warnings

    gradebook = {r["submission"]: r for r in csv.DictReader((out / "gradebook.csv").open())}
    assert gradebook["Amy_Adams"]["q1_autoencoder_runs"] == "2.5" and gradebook["Amy_Adams"]["q2_pca_twice"] == ""
    assert float(gradebook["Amy_Adams"]["score"]) == pytest.approx(amy.score)
    feedback = (out / "Amy_Adams" / "feedback.html").read_text()
    assert "Reviewed by the course staff: Good &lt;b&gt;point&lt;/b&gt;" in feedback and "2.5 / 3" in feedback
    results = json.loads((out / "Amy_Adams" / "results.json").read_text())
    assert results["score"] == pytest.approx(amy.score)
    by_name = {t["name"]: t for t in results["tests"]}
    assert by_name["Question 1: the three autoencoder runs compared"]["score"] == 2.5
    pending = by_name["Question 2b: does PCA change when run twice?"]
    assert "status" not in pending and pending["output"] == review.AWAITING_MESSAGE    # neither passed nor failed
    sheet = {(r["submission"], r["question"]): r["score"] for r in read_csv(out / "review" / "written_answers.csv")}
    assert sheet[("Amy_Adams", "q2_pca_twice")] == "lots" and sheet[("adamsbob", "q3_latent_size")] == "7"
    canvas = list(csv.reader((out / "canvas_gradebook.csv").open()))
    assert canvas[2][:2] == ["adamsbob", "4242"]
    assert canvas[3][:2] == ["Amy Adams", ""] and float(canvas[3][5]) == pytest.approx(amy.score)


def test_prose_in_code_cells():
    assert written_answers._is_prose("The runs differ by a rotation of the codes")
    assert written_answers._is_prose("# The runs differ by a rotation\n# of the codes")
    assert not written_answers._is_prose("z = mu + eps * sigma\nprint(z)")
    assert not written_answers._is_prose("%pip install otter-grader now")


def test_changing_written_points_reexecutes_nothing(tmp_path, counted_execution, rubric):
    submissions = tmp_path / "submissions"
    submissions.mkdir()
    nbformat.write(filled(rubric=rubric), submissions / "amy.ipynb")
    rubric_copy = tmp_path / "rubric.yaml"
    rubric_copy.write_text(RUBRIC.read_text())
    settings = GradeSettings(out_dir=tmp_path / "out", rubric_path=rubric_copy, data_dir=ROOT / "data_cache",
                             sandbox="none", profile_name="tiny", profile=dict(TINY), limits=Limits())
    total = rubric.max_points + rubric.manual_points
    assert grade_class(submissions, settings, progress=False)[0].max_score == total
    rubric_copy.write_text(RUBRIC.read_text().replace("points: 3, title:", "points: 4, title:"))
    assert grade_class(submissions, settings, progress=False)[0].max_score == total + len(rubric.manual_ids)
    assert len(counted_execution) == 1
    rubric_copy.write_text(RUBRIC.read_text().replace("points: 25", "points: 26", 1))
    assert grade_class(submissions, settings, progress=False)[0].max_score == total + 1
    assert len(counted_execution) == 1                # an automatic item's points: arithmetic on the cached fraction
    rubric_copy.write_text(RUBRIC.read_text().replace("params: {form: 0.3, shows: 0.7}", "params: {form: 0.4, shows: 0.6}", 1))
    grade_class(submissions, settings, progress=False)
    assert len(counted_execution) == 2                # a check's parameters: the check runs again
