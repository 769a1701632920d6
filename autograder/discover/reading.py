"""Reading untrusted files and JSON with bounds: regular files only, opened without following links and without
blocking on pipes, at most a given number of bytes read; JSON refused before parsing when it would expand into too
many values (a few bytes per value of JSON cost a hundred bytes or more each once parsed into Python objects).
A leaf module (standard library only)."""
from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
MAX_JSON_VALUES = 2_000_000
_JSON_STRINGS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')

SPECIAL_KINDS = ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISFIFO, "a named pipe (FIFO)"),
                 (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


class ReadError(ValueError):
    """The file is not a regular file, or larger than the grader reads; the message says which."""


def special_kind(mode: int) -> str:
    """'' for a regular file or a folder, else what it is ("a symbolic link", "a named pipe (FIFO)", ...)."""
    for test, name in SPECIAL_KINDS:
        if test(mode):
            return name
    return "" if stat.S_ISREG(mode) or stat.S_ISDIR(mode) else "not a regular file"


def open_regular(path: Path | str, dir_fd: int | None = None) -> int:
    """A read-only descriptor of a regular file that is not a link (ReadError otherwise); the caller closes it."""
    name = Path(path).name
    try:
        fd = os.open(path, OPEN_FLAGS, dir_fd=dir_fd)
    except OSError as error:
        if error.errno in (40, 6):       # ELOOP: a link; ENXIO: a FIFO or socket nobody serves
            raise ReadError(f"{name} is not a regular file") from None
        raise
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise ReadError(f"{name} is {special_kind(info.st_mode) or 'not a regular file'}, not a regular file")
    return fd


def read_fd(fd: int, max_bytes: int, name: str) -> bytes:
    """At most max_bytes from fd (ReadError past that), in chunks."""
    chunks, left = [], max_bytes + 1
    while left > 0:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    data = b"".join(chunks)
    if len(data) > max_bytes:
        raise ReadError(f"{name} is larger than the {max_bytes:,} bytes the grader reads")
    return data


def read_regular(path: Path | str, max_bytes: int, dir_fd: int | None = None) -> bytes:
    """The bytes of a regular file that is not a link, at most max_bytes (ReadError otherwise)."""
    fd = open_regular(path, dir_fd)
    try:
        size = os.fstat(fd).st_size
        if size > max_bytes:
            raise ReadError(f"{Path(path).name} is {size:,} bytes, more than the {max_bytes:,} the grader reads")
        return read_fd(fd, max_bytes, Path(path).name)
    finally:
        os.close(fd)


def read_beneath(root: Path, relative: str, max_bytes: int) -> bytes:
    """A regular file under the folder `root`, every component opened without following links."""
    parts = [part for part in Path(relative).parts if part not in ("", ".")]
    if not parts or ".." in parts:
        raise ReadError(f"{relative!r} is not a path inside its folder")
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        for part in parts[:-1]:
            try:
                next_fd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            except OSError:
                raise ReadError(f"{relative}: {part} is not a folder") from None
            os.close(fd)
            fd = next_fd
        return read_regular(parts[-1], max_bytes, dir_fd=fd)
    finally:
        os.close(fd)


def json_values(raw: bytes | str) -> int:
    """An upper bound of the number of values JSON text holds (commas, brackets and braces outside strings)."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    structure = _JSON_STRINGS.sub(b'""', data)
    return structure.count(b",") + structure.count(b"[") + structure.count(b"{")


def check_json_size(raw: bytes | str, max_values: int = MAX_JSON_VALUES, what: str = "the JSON") -> None:
    """ReadError when `raw` would expand into more than max_values values once parsed."""
    values = json_values(raw)
    if values > max_values:
        raise ReadError(f"{what} holds about {values:,} JSON values, more than the {max_values:,} the grader parses")


def loads_bounded(raw: bytes | str, max_values: int = MAX_JSON_VALUES, what: str = "the JSON"):
    """json.loads after check_json_size; ReadError for anything that is not JSON the grader accepts."""
    check_json_size(raw, max_values, what)
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, RecursionError, UnicodeDecodeError) as error:
        raise ReadError(f"{what} is not valid JSON ({str(error)[:200]})") from None
