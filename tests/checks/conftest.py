"""Shared fixtures of the check tests: the grader's digit classifier and MNIST test digits."""
from pathlib import Path

import numpy as np
import pytest

from autograder.lab import classifier, data

DATA = Path(__file__).resolve().parents[2] / "data_cache"


@pytest.fixture(scope="session")
def trained():
    """The cached classifier (trained here only if `make classifier` has not run)."""
    return classifier.ensure(DATA)


@pytest.fixture(scope="session")
def mnist():
    """digit -> test images (n, 28, 28) in [0, 1]."""
    split = data.load_mnist(DATA)
    images, labels = split["test_images"].astype(np.float64) / 255.0, split["test_labels"]
    return {digit: images[labels == digit] for digit in range(10)}
