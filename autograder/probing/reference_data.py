"""The grader's own MNIST, for the probes: stratified samples drawn per submission, and an index for "is this image a
copy of a dataset image?" (nearest neighbour over all 70,000 images). Loaded once per grader process."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
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
    cached: dict = field(default_factory=dict)

    def stratified(self, rng: np.random.Generator, split: str, per_class: int) -> tuple[np.ndarray, np.ndarray]:
        images, labels = (self.train_images, self.train_labels) if split == "train" else \
            (self.test_images, self.test_labels)
        index = np.concatenate([rng.choice(np.flatnonzero(labels == digit), per_class, replace=False)
                                for digit in range(10)])
        return images[index], labels[index].astype(np.int64)

    def pca_errors(self, n_train: int, n_test: int, max_components: int) -> np.ndarray:
        """Held-out MSE per pixel of PCA fitted on the first n_train training images, on the first n_test test
        images, with 1..max_components components (index k - 1)."""
        key = ("pca", n_train, n_test, max_components)
        with _lock:
            if key not in self.cached:
                train = self.train_images[:n_train].astype(np.float64)
                test = self.test_images[:n_test].astype(np.float64)
                mean = train.mean(0)
                centred = train - mean
                eigenvalues, eigenvectors = np.linalg.eigh(centred.T @ centred)
                components = eigenvectors[:, ::-1][:, :max_components]
                projected = (test - mean) @ components
                total = np.sum((test - mean) ** 2, axis=1)
                kept = np.cumsum(projected ** 2, axis=1)
                self.cached[key] = np.mean(total[:, None] - kept, axis=0) / PIXELS
            return self.cached[key]

    def pca_basis(self, n_train: int, components: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(mean, the leading `components` principal axes as rows, their variances) of the first n_train training
        images."""
        key = ("basis", n_train, components)
        with _lock:
            if key not in self.cached:
                train = self.train_images[:n_train].astype(np.float64)
                mean = train.mean(0)
                centred = train - mean
                eigenvalues, eigenvectors = np.linalg.eigh(centred.T @ centred / max(n_train - 1, 1))
                self.cached[key] = (mean, eigenvectors[:, ::-1][:, :components].T.copy(),
                                    eigenvalues[::-1][:components].copy())
            return self.cached[key]

    def mean_image_error(self, n_train: int, n_test: int) -> float:
        """Held-out MSE per pixel of predicting every test image by the mean training image (0 components)."""
        mean = self.train_images[:n_train].mean(0)
        return float(np.mean((self.test_images[:n_test] - mean) ** 2))

    def copy_distances(self, images: np.ndarray) -> np.ndarray:
        """RMS pixel distance of each image to the nearest of the 70,000 dataset images."""
        return nearest_distances(images, self.all_images, self.projected, self.basis, self.mean)


_cache: dict[str, ReferenceData] = {}
_lock = threading.Lock()


def reference_data(data_root: str | Path) -> ReferenceData:
    """Loaded once per data folder. The 70,000 images are held once (float32, 220 MB): train and test are views of
    `all_images`, converted from uint8 in place and projected in chunks, so loading never holds a second copy."""
    key = str(Path(data_root).resolve())
    with _lock:
        if key not in _cache:
            raw = load_mnist(data_root)
            n_train, n_test = len(raw["train_images"]), len(raw["test_images"])
            everything = np.empty((n_train + n_test, PIXELS), np.float32)
            np.divide(raw["train_images"].reshape(-1, PIXELS), np.float32(255.0), out=everything[:n_train])
            np.divide(raw["test_images"].reshape(-1, PIXELS), np.float32(255.0), out=everything[n_train:])
            train, test = everything[:n_train], everything[n_train:]
            fit = train[np.linspace(0, len(train) - 1, INDEX_FIT_IMAGES).astype(int)]
            mean = fit.mean(0)
            _, _, vt = np.linalg.svd(fit - mean, full_matrices=False)
            basis = np.ascontiguousarray(vt[:INDEX_COMPONENTS])
            projected = np.empty((len(everything), INDEX_COMPONENTS), np.float32)
            for start in range(0, len(everything), 10_000):
                projected[start:start + 10_000] = (everything[start:start + 10_000] - mean) @ basis.T
            _cache[key] = ReferenceData(train, raw["train_labels"], test, raw["test_labels"], basis, mean,
                                        everything, projected)
        return _cache[key]
