"""autograder.pipeline's own helpers (the whole pipeline is exercised by test_grade_demo and test_bad_input_batch)."""
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# In a fresh interpreter, so that nothing imported by other tests hides what warm_up itself loads.
WARM_UP = """
import sys
from autograder import pipeline
from autograder.lab import classifier
assert "torch" not in sys.modules and "sklearn" not in sys.modules
failed = pipeline.warm_up()
print(failed, sorted(classifier._shared), all(name in sys.modules for name in pipeline.WARM_UP_MODULES))
"""


def test_warm_up_loads_the_classifier_and_the_checks_libraries():
    out = subprocess.run([sys.executable, "-c", WARM_UP], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"[] {[str(REPO / 'data_cache')]} True"


def test_warm_up_never_raises_and_never_trains(tmp_path, monkeypatch):
    from autograder import pipeline
    from autograder.lab import classifier

    monkeypatch.setattr(classifier, "classifier_dir", lambda *args: tmp_path / "no_classifier_here")
    monkeypatch.setattr(classifier, "train", lambda *args, **kwargs: (_ for _ in ()).throw(AssertionError("trained")))
    monkeypatch.setattr(pipeline, "WARM_UP_MODULES", ("json", "no_such_module_for_the_grader"))
    failed = pipeline.warm_up()
    assert len(failed) == 2 and failed[0].startswith("classifier: ") and "no_such_module_for_the_grader" in failed[1]


def test_scoring_waits_for_the_warm_up(monkeypatch):
    # A submission that fails in a second is scored while the warm-up may still be importing torch and scikit-learn:
    # scoring must wait for it rather than import the same modules concurrently.
    import threading
    import time

    from autograder import pipeline

    release = threading.Event()
    monkeypatch.setattr(pipeline, "warm_up", lambda: release.wait(5))
    pipeline.start_warm_up()
    waited = threading.Thread(target=pipeline.await_warm_up)
    waited.start()
    time.sleep(0.2)
    assert waited.is_alive(), "await_warm_up returned while the warm-up was still running"
    release.set()
    waited.join(5)
    assert not waited.is_alive()


def test_a_fast_submission_is_scored_only_after_the_warm_up(tmp_path, monkeypatch):
    import time

    import nbformat

    from autograder import pipeline, scoring as rubric
    from autograder.lab import profiles
    from autograder.execution.limits import Limits

    events = []

    def slow_warm_up():
        time.sleep(3)
        events.append(("warm-up done", time.monotonic()))
        return []

    real_score = rubric.score

    def recording_score(*args, **kwargs):
        events.append(("score", time.monotonic()))
        return real_score(*args, **kwargs)

    monkeypatch.setattr(pipeline, "warm_up", slow_warm_up)
    monkeypatch.setattr(rubric, "score", recording_score)
    submissions = tmp_path / "class"
    submissions.mkdir()
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("nothing done")]),
                   submissions / "empty.ipynb")
    settings = pipeline.GradeSettings(out_dir=tmp_path / "out", rubric_path=REPO / "autograder" / "rubric.yaml",
                                      data_dir=REPO / "data_cache", sandbox="none",
                                      profile_name="tiny", profile=profiles.get_profile("tiny"), limits=Limits())
    rows = pipeline.grade_class(submissions, settings, jobs=1, progress=False)
    assert [row.submission for row in rows] == ["empty"]
    assert [name for name, _ in events] == ["warm-up done", "score"]


def test_the_runs_notes_reach_the_row_the_feedback_and_the_log(tmp_path, monkeypatch, caplog):
    import logging

    import nbformat

    from autograder import pipeline
    from autograder.execution import run
    from autograder.execution.limits import Limits
    from autograder.lab import profiles
    from autograder.results import FEEDBACK_HTML, ROW_FILE, GradeRow, Status

    def fake_execute(notebook_path, workdir, **_):
        return run.ExecutionResult(Status.TIMEOUT, "ran too long", sandbox="none: test",
                                   notes=["The notebook was in the old nbformat 3 and was converted to nbformat 4."],
                                   runner_log="kernel said: bye")

    monkeypatch.setattr(run, "execute_submission", fake_execute)
    monkeypatch.setattr(pipeline, "write_class_reports", lambda *args, **kwargs: None)
    submissions = tmp_path / "class"
    submissions.mkdir()
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")]), submissions / "amy.ipynb")
    settings = pipeline.GradeSettings(out_dir=tmp_path / "out", rubric_path=REPO / "autograder" / "rubric.yaml",
                                      data_dir=REPO / "data_cache", sandbox="none", profile_name="tiny",
                                      profile=profiles.get_profile("tiny"), limits=Limits())
    with caplog.at_level(logging.INFO, logger="autograder"):
        [row] = pipeline.grade_class(submissions, settings, jobs=1, progress=False)
    note = "The notebook was in the old nbformat 3 and was converted to nbformat 4."
    assert row.notes == [note]
    assert GradeRow.from_json((settings.out_dir / "amy" / ROW_FILE).read_text()).notes == [note]
    assert "Notes from the run" in (settings.out_dir / "amy" / FEEDBACK_HTML).read_text()
    assert f"amy: note: {note}" in caplog.text and "kernel said: bye" in caplog.text


def test_the_limits_are_part_of_the_cache_key(tmp_path):
    import nbformat

    from autograder import pipeline
    from autograder.discover import discover
    from autograder.execution.limits import DEFAULT_LIMITS
    from autograder.lab import profiles

    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")]), tmp_path / "amy.ipynb")
    [submission] = discover(tmp_path)

    def key(limits):
        return pipeline.cache_key(submission, pipeline.GradeSettings(
            out_dir=tmp_path / "out", rubric_path=REPO / "autograder" / "rubric.yaml", data_dir=REPO / "data_cache",
            sandbox="none", profile_name="tiny", profile=profiles.get_profile("tiny"), limits=limits))

    assert key(DEFAULT_LIMITS) == key(DEFAULT_LIMITS.replace())
    assert key(DEFAULT_LIMITS) != key(DEFAULT_LIMITS.replace(cell_timeout_s=120))
    assert key(DEFAULT_LIMITS) != key(DEFAULT_LIMITS.replace(notebook_timeout_s=900))
