"""The grader's own MNIST, for the probes: stratified samples drawn per submission, and an index for "is this image a
copy of a dataset image?" (nearest neighbour over all 70,000 images). Loaded once per grader process."""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from autograder.lab.data import load_mnist
from autograder.probing.measures import nearest_distances

PIXELS = 784
INDEX_COMPONENTS = 40       # projection used to shortlist nearest neighbours
INDEX_FIT_IMAGES = 6000


@dataclass
class ReferenceData:
    train_images: np.ndarray     # (60000, 784) float32 in [0, 1]
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    basis: np.ndarray            # (INDEX_COMPONENTS, 784)
    mean: np.ndarray
    all_images: np.ndarray       # train then test
    projected: np.ndarray        # all_images projected on the basis

    def stratified(self, rng: np.random.Generator, split: str, per_class: int) -> tuple[np.ndarray, np.ndarray]:
        images, labels = (self.train_images, self.train_labels) if split == "train" else \
            (self.test_images, self.test_labels)
        index = np.concatenate([rng.choice(np.flatnonzero(labels == digit), per_class, replace=False)
                                for digit in range(10)])
        return images[index], labels[index].astype(np.int64)

    def copy_distances(self, images: np.ndarray) -> np.ndarray:
        """RMS pixel distance of each image to the nearest of the 70,000 dataset images."""
        return nearest_distances(images, self.all_images, self.projected, self.basis, self.mean)


_cache: dict[str, ReferenceData] = {}
_lock = threading.Lock()


def reference_data(data_root: str | Path) -> ReferenceData:
    key = str(Path(data_root).resolve())
    with _lock:
        if key not in _cache:
            raw = load_mnist(data_root)
            train = raw["train_images"].reshape(-1, PIXELS).astype(np.float32) / 255.0
            test = raw["test_images"].reshape(-1, PIXELS).astype(np.float32) / 255.0
            fit = train[np.linspace(0, len(train) - 1, INDEX_FIT_IMAGES).astype(int)]
            mean = fit.mean(0)
            _, _, vt = np.linalg.svd(fit - mean, full_matrices=False)
            basis = np.ascontiguousarray(vt[:INDEX_COMPONENTS])
            everything = np.concatenate([train, test])
            _cache[key] = ReferenceData(train, raw["train_labels"], test, raw["test_labels"], basis, mean,
                                        everything, (everything - mean) @ basis.T)
        return _cache[key]
