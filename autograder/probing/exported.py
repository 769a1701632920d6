"""Reads what the export cell wrote in the submission's folder (export.py), as untrusted input: regular files only,
opened without following links, every size bounded before anything is read or inflated, arrays of plain numbers
only (np.load's format reader with allow_pickle=False, member by member from the zip)."""
from __future__ import annotations

import io
import json
import os
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from autograder.execution.kernel.export import EXPORT_FOLDER, EXPORT_JSON, EXPORT_WEIGHTS

MAX_JSON_BYTES = 4 * 1024 * 1024
MAX_WEIGHTS_BYTES = 80 * 1024 * 1024         # on disk
MAX_WEIGHT_VALUES = 20_000_000               # all models together, once loaded (80 MB of float32)
MAX_ARRAYS = 2_000
NUMERIC_KINDS = "biuf"


class ExportError(ValueError):
    """The export is missing or not what the export cell writes; the message says what (for the feedback)."""


@dataclass
class Exported:
    report: dict = field(default_factory=dict)
    weights: dict = field(default_factory=dict)     # model name -> {parameter: array}
    problems: list = field(default_factory=list)    # what could not be read, for the feedback


def read_regular(path: Path, max_bytes: int) -> bytes:
    """The bytes of a regular file that is not a link, at most max_bytes (ExportError otherwise)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise ExportError(f"{path.name} is missing") from None
    except OSError as error:
        raise ExportError(f"{path.name} could not be opened ({error.strerror})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ExportError(f"{path.name} is not a regular file")
        if info.st_size > max_bytes:
            raise ExportError(f"{path.name} is {info.st_size} bytes, more than the {max_bytes} the grader reads")
        chunks, left = [], max_bytes + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
        if len(data) > max_bytes:
            raise ExportError(f"{path.name} grew past {max_bytes} bytes while being read")
        return data
    finally:
        os.close(fd)


def _arrays(data: bytes) -> dict[str, np.ndarray]:
    arrays, values = {}, 0
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as error:
        raise ExportError(f"{EXPORT_WEIGHTS} is not a numpy archive ({error})") from None
    with archive:
        members = archive.infolist()
        if len(members) > MAX_ARRAYS:
            raise ExportError(f"{EXPORT_WEIGHTS} holds {len(members)} arrays, more than {MAX_ARRAYS}")
        for info in members:
            if not info.filename.endswith(".npy") or info.file_size > MAX_WEIGHTS_BYTES:
                raise ExportError(f"{EXPORT_WEIGHTS} holds an unexpected member {info.filename[:80]!r}")
            with archive.open(info) as member:
                try:
                    version = np.lib.format.read_magic(member)
                    read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0) else
                                   np.lib.format.read_array_header_2_0)
                    shape, _, dtype = read_header(member)
                except ValueError as error:
                    raise ExportError(f"{EXPORT_WEIGHTS}: {info.filename[:80]} is not a numpy array ({error})") \
                        from None
                if dtype.kind not in NUMERIC_KINDS or dtype.hasobject:
                    raise ExportError(f"{EXPORT_WEIGHTS}: {info.filename[:80]} is not numeric ({dtype})")
                count = int(np.prod(shape, dtype=np.int64))
                values += count
                if values > MAX_WEIGHT_VALUES:
                    raise ExportError(f"the trained models hold more than {MAX_WEIGHT_VALUES:,} numbers; the "
                                      "grader does not probe models that large")
            with archive.open(info) as member:
                arrays[info.filename[:-4]] = np.lib.format.read_array(member, allow_pickle=False)
    return arrays


def read_export(workdir: Path) -> Exported:
    """Never raises: what could not be read is in `problems`."""
    folder = Path(workdir) / EXPORT_FOLDER
    exported = Exported()
    try:
        if not stat.S_ISDIR(os.lstat(folder).st_mode):
            raise ExportError(f"{EXPORT_FOLDER} is not a folder")
        report = json.loads(read_regular(folder / EXPORT_JSON, MAX_JSON_BYTES).decode("utf-8"))
        if not isinstance(report, dict):
            raise ExportError(f"{EXPORT_JSON} is not a JSON object")
        exported.report = report
        arrays = _arrays(read_regular(folder / EXPORT_WEIGHTS, MAX_WEIGHTS_BYTES))
    except FileNotFoundError:
        exported.problems.append("the notebook's run did not reach the grader's last cell (nothing was exported)")
        return exported
    except (ExportError, UnicodeDecodeError, json.JSONDecodeError, OSError) as error:
        exported.problems.append(f"what the notebook's run exported could not be read: {error}")
        return exported
    models = report.get("models") if isinstance(report.get("models"), dict) else {}
    for name in models:
        prefix = f"{name}/"
        exported.weights[name] = {key[len(prefix):]: array for key, array in arrays.items() if key.startswith(prefix)}
    return exported
