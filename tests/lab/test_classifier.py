"""The grader's MNIST classifier: trained once and cached (`make classifier`), accurate, deterministic, unsure on junk,
retrained when stale, loaded without unpickling anything but tensors."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from autograder.lab import classifier

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data_cache"


@pytest.fixture(scope="session")
def trained():
    """The cached classifier (trained here only if `make classifier` has not run: about 2 minutes)."""
    return classifier.ensure(DATA)


@pytest.fixture(scope="module")
def test_split():
    images, labels = classifier.load_split(DATA, train=False)
    return images[:, 0].numpy(), labels.numpy()


def test_cached_classifier_reaches_99_percent_and_says_how_it_was_made(trained, test_split):
    images, labels = test_split
    predicted, confidence = trained.predict(images)
    measured = float((predicted == labels).mean())
    assert measured >= classifier.MIN_TEST_ACCURACY
    sidecar = trained.sidecar
    assert abs(sidecar["test_accuracy"] - measured) < 1e-4
    assert sidecar["recipe_sha256"] == classifier.recipe_fingerprint()
    assert sidecar["data_stamp_sha256"] == classifier.data_fingerprint(DATA)
    assert 0 < sidecar["training_seconds"] < 180, "training must stay under 3 minutes on 2 CPU cores"
    assert float(confidence[predicted == labels].mean()) > 0.9


def test_junk_images_get_low_confidence(trained, test_split):
    rng = np.random.default_rng(0)
    digits = test_split[0][:200]
    noise = rng.random((100, 28, 28))
    blank = np.full((20, 28, 28), 0.3)
    shuffled = np.stack([rng.permutation(d.ravel()).reshape(28, 28) for d in digits[:100]])
    _, digit_confidence = trained.predict(digits)
    for junk in (noise, blank, shuffled):
        _, confidence = trained.predict(junk)
        assert confidence.mean() < 0.5 < digit_confidence.mean(), (confidence.mean(), digit_confidence.mean())


def test_training_is_deterministic():
    images, labels = classifier.load_split(DATA, train=True)
    recipe = {**classifier.RECIPE, "epochs": 1, "train_images": 512, "batch_size": 64}
    first = classifier.train_model(images[:512], labels[:512], recipe, log=lambda _: None)
    second = classifier.train_model(images[:512], labels[:512], recipe, log=lambda _: None)
    for (name, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items()):
        assert a.equal(b), f"{name} differs between two trainings with the same recipe"


def test_predict_refuses_wrong_shapes(trained):
    with pytest.raises(ValueError, match=r"\(N, 28, 28\)"):
        trained.predict(np.zeros((3, 784)))
    labels, confidence = trained.predict(np.zeros((0, 28, 28)))
    assert labels.shape == (0,) and confidence.shape == (0,)


def _copy_cache(trained, tmp_path) -> Path:
    target = tmp_path / "classifier"
    shutil.copytree(classifier.classifier_dir(DATA), target)
    return target


def test_stale_caches_are_named(trained, tmp_path):
    cache = _copy_cache(trained, tmp_path)
    assert classifier.stale_reason(cache, DATA) is None
    assert "recipe changed" in classifier.stale_reason(cache, DATA, {**classifier.RECIPE, "epochs": 99})
    weights = cache / classifier.WEIGHTS_NAME
    weights.write_bytes(weights.read_bytes()[:-10])
    assert "differs from the one recorded" in classifier.stale_reason(cache, DATA)
    with pytest.raises(classifier.ClassifierError, match="make classifier"):
        classifier.load(DATA, cache)
    (cache / classifier.SIDECAR_NAME).unlink()
    assert "make classifier" in classifier.stale_reason(cache, DATA)


def test_low_accuracy_in_the_sidecar_is_stale(trained, tmp_path):
    cache = _copy_cache(trained, tmp_path)
    sidecar = json.loads((cache / classifier.SIDECAR_NAME).read_text())
    (cache / classifier.SIDECAR_NAME).write_text(json.dumps({**sidecar, "test_accuracy": 0.5}))
    assert "below 0.99" in classifier.stale_reason(cache, DATA)


class _RunsCommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_weights_are_loaded_without_unpickling_code(trained, tmp_path):
    """A weights file holding a pickled callable is refused by torch.load(weights_only=True): nothing runs."""
    import torch

    cache = _copy_cache(trained, tmp_path)
    marker = tmp_path / "pwned"
    weights = cache / classifier.WEIGHTS_NAME
    torch.save({"conv": _RunsCommand(marker)}, weights)
    sidecar = json.loads((cache / classifier.SIDECAR_NAME).read_text())
    sidecar["weights_sha256"] = classifier.file_sha256(weights)
    (cache / classifier.SIDECAR_NAME).write_text(json.dumps(sidecar))
    with pytest.raises(Exception, match="(?i)weights only|unpickl|unsupported global"):
        classifier.load(DATA, cache)
    assert not marker.exists()


def test_import_has_no_side_effects(tmp_path):
    code = ("import sys, autograder.lab.classifier, autograder.checks.image_quality, autograder.checks; "
            "print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
    assert list(tmp_path.iterdir()) == []


def test_cli_verifies_the_cache_and_prints_accuracy_and_time(trained, capsys):
    assert classifier.main(["--data-root", str(DATA)]) == 0
    out = capsys.readouterr().out
    assert "test accuracy 0.99" in out and "trained in" in out and "load average" in out
