"""The grader's own MNIST digit classifier: judges the images a submission generates (autograder/image_checks.py).

Trained here, on `data_cache/` (torchvision's MNIST reading the IDX files); no weights come from anywhere else.
- Deterministic: seeded, `torch.use_deterministic_algorithms(True)` and a fixed number of CPU threads while training
  (`RECIPE["threads"]`), so the same data and recipe give the same weights.
- Cached in `data_cache/classifier/`: the weights (`torch.save(state_dict)`, read back with
  `torch.load(weights_only=True)`, never unpickled otherwise) and a JSON sidecar written last (test accuracy,
  training seconds, the data stamp's sha256, the recipe fingerprint, the weights' sha256). A changed recipe or data
  set, or a weights file that differs from its sidecar, is stale: `ensure()` retrains.
- Also trained to be unsure on junk (noise, blank and pixel-shuffled images get a uniform target), so its
  confidence says whether an image looks like a digit at all.

`python -m autograder.lab.classifier` (`make classifier`) trains when needed, checks the test accuracy, prints it with
the training time. Importing this module has no side effects (torch is imported inside the functions).
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from autograder import DATA_CACHE
from autograder.lab.data import MnistCacheError, check_cache, file_sha256, stamp_path
from autograder.reports.writing import atomic_write_bytes

DEFAULT_DATA_ROOT = DATA_CACHE
CLASSIFIER_FOLDER = "classifier"
WEIGHTS_NAME = "mnist_cnn.pt"
SIDECAR_NAME = "mnist_cnn.json"
MIN_TEST_ACCURACY = 0.99

# Everything that shapes the weights; bump "version" when the code changes them in a way the values here don't show.
RECIPE = {
    "version": 1,
    "architecture": "conv5x5(1->16)-relu-maxpool2-conv5x5(16->32)-relu-maxpool2-fc(1568->128)-relu-fc(128->10)",
    "seed": 0,
    "threads": 1,                # one thread: 2 threads on 2 shared cores were 6x slower (OpenMP waits)
    "epochs": 4,
    "batch_size": 128,
    "optimizer": "adam",
    "max_lr": 0.003,
    "schedule": "onecycle",
    "max_shift_px": 2,           # random translation of each training digit, in pixels
    "junk_per_batch": 16,        # noise / blank / pixel-shuffled images per batch, target: uniform over digits
    "junk_weight": 0.5,
    "train_images": 60000,
}


class ClassifierError(RuntimeError):
    """The cached classifier is missing, stale or not good enough; the message says what to do."""


def classifier_dir(data_root: str | os.PathLike = DEFAULT_DATA_ROOT) -> Path:
    return Path(data_root) / CLASSIFIER_FOLDER


def recipe_fingerprint(recipe: dict | None = None) -> str:
    return hashlib.sha256(json.dumps(recipe or RECIPE, sort_keys=True).encode()).hexdigest()


def data_fingerprint(data_root: str | os.PathLike) -> str:
    """sha256 of the MNIST cache's stamp (which lists the sha256 of the four IDX files); verifies the cache first."""
    check_cache(data_root)
    return file_sha256(stamp_path(data_root))


# --- model and data ----------------------------------------------------------------------------------------------

def build_model():
    import torch.nn as nn

    return nn.Sequential(
        nn.Conv2d(1, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10),
    )


def load_split(data_root: str | os.PathLike, train: bool):
    """(images float32 (N, 1, 28, 28) in [0, 1], labels int64) through torchvision's MNIST reader."""
    from torchvision.datasets import MNIST

    dataset = MNIST(root=str(data_root), train=train, download=False)
    return dataset.data.float().div(255.0).unsqueeze(1), dataset.targets.long()


def shifted(images, max_shift: int, generator):
    """Each image translated by its own random (dy, dx) in [-max_shift, max_shift], zero filled."""
    import torch
    import torch.nn.functional as F

    if max_shift <= 0:
        return images
    count, side = images.shape[0], images.shape[-1]
    padded = F.pad(images[:, 0], (max_shift,) * 4)
    dy = torch.randint(0, 2 * max_shift + 1, (count,), generator=generator)
    dx = torch.randint(0, 2 * max_shift + 1, (count,), generator=generator)
    steps = torch.arange(side)
    rows = (dy[:, None] + steps)[:, :, None]
    cols = (dx[:, None] + steps)[:, None, :]
    return padded[torch.arange(count)[:, None, None], rows, cols].unsqueeze(1)


def junk_images(count: int, digits, generator):
    """Images that are not digits, in four kinds: uniform noise, sparse noise, flat grey, pixel-shuffled digits."""
    import torch

    side = digits.shape[-1]
    kind = torch.randint(0, 4, (count,), generator=generator)
    uniform = torch.rand(count, 1, side, side, generator=generator)
    sparse = uniform * (torch.rand(count, 1, side, side, generator=generator) < 0.2)
    flat = torch.rand(count, 1, 1, 1, generator=generator).expand(count, 1, side, side)
    sources = digits[torch.randint(0, digits.shape[0], (count,), generator=generator)].reshape(count, -1)
    order = torch.argsort(torch.rand(count, side * side, generator=generator), dim=1)
    scrambled = torch.gather(sources, 1, order).reshape(count, 1, side, side)
    choices = torch.stack([uniform, sparse, flat, scrambled])
    return choices[kind, torch.arange(count)]


class _TrainingSettings:
    """Deterministic algorithms and a fixed thread count while training; the caller's settings come back after."""

    def __init__(self, threads: int):
        self.threads = threads

    def __enter__(self):
        import torch

        self.previous = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled())
        torch.set_num_threads(self.threads)
        torch.use_deterministic_algorithms(True)
        return self

    def __exit__(self, *exc):
        import torch

        torch.set_num_threads(self.previous[0])
        torch.use_deterministic_algorithms(self.previous[1])
        return False


def train_model(train_images, train_labels, recipe: dict, log=print):
    """A trained model (eval mode) from the recipe; deterministic (same inputs, same weights)."""
    with _TrainingSettings(recipe["threads"]):
        return _train_model(train_images, train_labels, recipe, log)


def _train_model(train_images, train_labels, recipe: dict, log):
    import torch
    import torch.nn.functional as F

    torch.manual_seed(recipe["seed"])
    generator = torch.Generator().manual_seed(recipe["seed"])
    model = build_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe["max_lr"])
    batch, count = recipe["batch_size"], train_images.shape[0]
    steps_per_epoch = (count + batch - 1) // batch
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=recipe["max_lr"],
                                                   total_steps=recipe["epochs"] * steps_per_epoch)
    model.train()
    for epoch in range(recipe["epochs"]):
        order = torch.randperm(count, generator=generator)
        total = 0.0
        for start in range(0, count, batch):
            index = order[start:start + batch]
            digits = shifted(train_images[index], recipe["max_shift_px"], generator)
            loss = F.cross_entropy(model(digits), train_labels[index])
            if recipe["junk_per_batch"]:
                junk = junk_images(recipe["junk_per_batch"], train_images, generator)
                uniform_ce = -F.log_softmax(model(junk), dim=1).mean()  # cross-entropy to the uniform target
                loss = loss + recipe["junk_weight"] * uniform_ce
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total += float(loss.detach()) * len(index)
        log(f"  epoch {epoch + 1}/{recipe['epochs']}: mean loss {total / count:.4f}")
    model.eval()
    return model


def accuracy(model, images, labels, batch_size: int = 2000) -> float:
    import torch

    with torch.no_grad():
        predicted = torch.cat([model(images[i:i + batch_size]).argmax(1) for i in range(0, len(images), batch_size)])
    return float((predicted == labels).float().mean())


# --- cache -------------------------------------------------------------------------------------------------------

def _state_dict_bytes(model) -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getvalue()


def _load_average() -> float | None:
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def train(data_root: str | os.PathLike = DEFAULT_DATA_ROOT, out_dir: str | os.PathLike | None = None,
          recipe: dict | None = None, log=print) -> dict:
    """Train from scratch, check the test accuracy, write weights then sidecar (atomically); returns the sidecar."""
    import torch

    recipe = dict(recipe or RECIPE)
    out_dir = Path(out_dir) if out_dir is not None else classifier_dir(data_root)
    data_sha = data_fingerprint(data_root)
    load_before = _load_average()
    started = time.perf_counter()
    images, labels = load_split(data_root, train=True)
    images, labels = images[:recipe["train_images"]], labels[:recipe["train_images"]]
    log(f"training the grader's digit classifier on {len(images)} MNIST images "
        f"({recipe['epochs']} epochs, {recipe['threads']} thread(s))")
    model = train_model(images, labels, recipe, log)
    seconds = time.perf_counter() - started
    test_images, test_labels = load_split(data_root, train=False)
    test_accuracy = accuracy(model, test_images, test_labels)
    weights = out_dir / WEIGHTS_NAME
    atomic_write_bytes(weights, _state_dict_bytes(model))
    sidecar = {
        "test_accuracy": round(test_accuracy, 6),
        "training_seconds": round(seconds, 2),
        "load_average_1min": {"before": load_before, "after": _load_average()},
        "cpu_count": os.cpu_count(),
        "data_stamp_sha256": data_sha,
        "recipe_sha256": recipe_fingerprint(recipe),
        "recipe": recipe,
        "weights_sha256": file_sha256(weights),
        "torch": torch.__version__,
    }
    atomic_write_bytes(out_dir / SIDECAR_NAME, (json.dumps(sidecar, indent=1) + "\n").encode())
    log(f"test accuracy {test_accuracy:.4f}, trained in {seconds:.1f} s; saved to {weights}")
    return sidecar


def read_sidecar(out_dir: Path) -> dict:
    path = out_dir / SIDECAR_NAME
    try:
        sidecar = json.loads(path.read_text())
    except FileNotFoundError:
        raise ClassifierError(f"no trained classifier in {out_dir}: run `make classifier`") from None
    except (OSError, ValueError) as error:
        raise ClassifierError(f"{path} is unreadable ({error}): delete it and run `make classifier`") from None
    if not isinstance(sidecar, dict):
        raise ClassifierError(f"{path} is not a JSON object: delete it and run `make classifier`")
    return sidecar


def stale_reason(out_dir: Path, data_root: str | os.PathLike, recipe: dict | None = None) -> str | None:
    """Why the cached classifier can't be used (None when it can)."""
    try:
        sidecar = read_sidecar(out_dir)
    except ClassifierError as error:
        return str(error)
    weights = out_dir / WEIGHTS_NAME
    if sidecar.get("recipe_sha256") != recipe_fingerprint(recipe):
        return "the training recipe changed since it was trained"
    if sidecar.get("data_stamp_sha256") != data_fingerprint(data_root):
        return "the MNIST cache changed since it was trained"
    if not weights.is_file() or sidecar.get("weights_sha256") != file_sha256(weights):
        return f"{weights} is missing or differs from the one recorded in {SIDECAR_NAME}"
    if not isinstance(sidecar.get("test_accuracy"), (int, float)) or sidecar["test_accuracy"] < MIN_TEST_ACCURACY:
        return f"its recorded test accuracy {sidecar.get('test_accuracy')} is below {MIN_TEST_ACCURACY}"
    return None


@dataclass
class DigitClassifier:
    """The trained model and its sidecar; `predict` takes plain numpy images."""
    model: object
    sidecar: dict

    def probabilities(self, images: np.ndarray, batch_size: int = 1000) -> np.ndarray:
        """(N, 10) softmax probabilities for images (N, 28, 28) with values in [0, 1], digit bright on dark."""
        import torch

        images = np.asarray(images, dtype=np.float32)
        if images.ndim != 3 or images.shape[1:] != (28, 28):
            raise ValueError(f"expected images of shape (N, 28, 28), got {images.shape}")
        if len(images) == 0:
            return np.zeros((0, 10), dtype=np.float64)
        tensor = torch.from_numpy(np.clip(images, 0.0, 1.0)).unsqueeze(1)
        with torch.no_grad():
            out = [torch.softmax(self.model(tensor[i:i + batch_size]), dim=1)
                   for i in range(0, len(tensor), batch_size)]
        return torch.cat(out).double().numpy()

    def predict(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(predicted digit, its probability) for each image."""
        probabilities = self.probabilities(images)
        labels = probabilities.argmax(1) if len(probabilities) else np.zeros(0, dtype=int)
        return labels.astype(int), probabilities.max(1) if len(probabilities) else np.zeros(0)


def load(data_root: str | os.PathLike = DEFAULT_DATA_ROOT, out_dir: str | os.PathLike | None = None) -> DigitClassifier:
    """The cached classifier; ClassifierError (saying to run `make classifier`) when it is missing or stale."""
    import torch

    out_dir = Path(out_dir) if out_dir is not None else classifier_dir(data_root)
    reason = stale_reason(out_dir, data_root)
    if reason:
        raise ClassifierError(f"the grader's digit classifier in {out_dir} can't be used: {reason}; "
                              f"run `make classifier` (python -m autograder.lab.classifier)")
    state = torch.load(out_dir / WEIGHTS_NAME, map_location="cpu", weights_only=True)
    model = build_model()
    model.load_state_dict(state)
    model.eval()
    return DigitClassifier(model, read_sidecar(out_dir))


def ensure(data_root: str | os.PathLike = DEFAULT_DATA_ROOT, out_dir: str | os.PathLike | None = None,
           log=print) -> DigitClassifier:
    """Load the cached classifier, training it first when it is missing or stale."""
    out_dir = Path(out_dir) if out_dir is not None else classifier_dir(data_root)
    reason = stale_reason(out_dir, data_root)
    if reason:
        log(f"(re)training the grader's digit classifier: {reason}")
        sidecar = train(data_root, out_dir, log=log)
        if sidecar["test_accuracy"] < MIN_TEST_ACCURACY:
            raise ClassifierError(f"the classifier reached only {sidecar['test_accuracy']:.4f} test accuracy "
                                  f"(at least {MIN_TEST_ACCURACY} needed): the recipe in autograder/classifier.py "
                                  f"needs more training")
    return load(data_root, out_dir)


_shared: dict[str, DigitClassifier] = {}
_shared_lock = threading.Lock()


def shared(data_root: str | os.PathLike = DEFAULT_DATA_ROOT) -> DigitClassifier:
    """One classifier per process (the grader's threads share it), trained on first use if needed."""
    key = str(Path(data_root).resolve())
    with _shared_lock:
        if key not in _shared:
            import logging

            _shared[key] = ensure(data_root, log=logging.getLogger("autograder").info)
        return _shared[key]


def _load_pair(sidecar: dict) -> str:
    load = sidecar.get("load_average_1min")
    return f"{load.get('before')}/{load.get('after')}" if isinstance(load, dict) else str(load)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train (when needed) and verify the grader's MNIST classifier.")
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT, help="the MNIST cache (data_cache)")
    parser.add_argument("--retrain", action="store_true", help="train again even when the cache is valid")
    args = parser.parse_args(argv)
    out_dir = classifier_dir(args.data_root)
    try:
        if args.retrain:
            train(args.data_root, out_dir)
        classifier = ensure(args.data_root, out_dir)
        test_images, test_labels = load_split(args.data_root, train=False)
        measured = accuracy(classifier.model, test_images, test_labels)
    except (ClassifierError, MnistCacheError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    sidecar = classifier.sidecar
    if abs(measured - sidecar["test_accuracy"]) > 1e-4:
        print(f"error: the saved weights give test accuracy {measured:.4f}, the sidecar says "
              f"{sidecar['test_accuracy']:.4f}: run with --retrain", file=sys.stderr)
        return 1
    print(f"digit classifier: test accuracy {measured:.4f} (at least {MIN_TEST_ACCURACY}), trained in "
          f"{sidecar['training_seconds']:.1f} s on {sidecar.get('cpu_count')} CPU(s) "
          f"(1-min load average before/after: {_load_pair(sidecar)}); {out_dir / WEIGHTS_NAME}")
    os.utime(out_dir / SIDECAR_NAME)  # verified now: newer than its prerequisites for make
    return 0


if __name__ == "__main__":
    sys.exit(main())
