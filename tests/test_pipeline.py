"""autograder.pipeline's own helpers (the whole pipeline is exercised by test_grade_demo and test_bad_input_batch)."""
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# In a fresh interpreter, so that nothing imported by other tests hides what warm_up itself loads.
WARM_UP = """
import sys
from autograder import classifier, pipeline
assert "torch" not in sys.modules and "sklearn" not in sys.modules
failed = pipeline.warm_up()
print(failed, sorted(classifier._shared), all(name in sys.modules for name in pipeline.WARM_UP_MODULES))
"""


def test_warm_up_loads_the_classifier_and_the_checks_libraries():
    out = subprocess.run([sys.executable, "-c", WARM_UP], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"[] {[str(REPO / 'data_cache')]} True"


def test_warm_up_never_raises_and_never_trains(tmp_path, monkeypatch):
    from autograder import classifier, pipeline

    monkeypatch.setattr(classifier, "classifier_dir", lambda *args: tmp_path / "no_classifier_here")
    monkeypatch.setattr(classifier, "train", lambda *args, **kwargs: (_ for _ in ()).throw(AssertionError("trained")))
    monkeypatch.setattr(pipeline, "WARM_UP_MODULES", ("json", "no_such_module_for_the_grader"))
    failed = pipeline.warm_up()
    assert len(failed) == 2 and failed[0].startswith("classifier: ") and "no_such_module_for_the_grader" in failed[1]
