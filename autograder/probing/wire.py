"""The probe channel's wire format, shared by the grader (client.py) and the probe server (server.py, in the sandbox).

A frame is a 4-byte big-endian length followed by that many bytes of UTF-8 JSON. Arrays travel inside the JSON as
{"__array__": [dtype, shape, base64 of the C-order bytes]} with dtype one of ARRAY_DTYPES; nothing is ever pickled.
Decoding checks every size against the caller's limits before allocating, so a hostile peer can neither make the
grader allocate more than `max_bytes` nor smuggle an object: only dicts, lists, str, int, float, bool, None and
numpy arrays of plain numeric dtypes come out. Standalone (stdlib and numpy only): copied into the sandbox.
"""
import base64
import binascii
import json
import math
import struct

import numpy as np

ARRAY_KEY = "__array__"
ARRAY_DTYPES = ("uint8", "int64", "float32", "float64", "bool")
HEADER = struct.Struct(">I")
MAX_FRAME_BYTES = 96 * 1024 * 1024      # one frame, either way
MAX_ARRAY_ELEMENTS = 32 * 1024 * 1024    # one array, once decoded


class WireError(ValueError):
    """A frame that is not what the protocol allows (too large, truncated, not JSON, a bad array)."""


def _encode(value):
    if isinstance(value, np.ndarray):
        dtype = str(value.dtype)
        if dtype not in ARRAY_DTYPES:
            value, dtype = value.astype(np.float64), "float64"
        data = np.ascontiguousarray(value).tobytes()
        return {ARRAY_KEY: [dtype, [int(d) for d in value.shape], base64.b64encode(data).decode("ascii")]}
    if isinstance(value, dict):
        return {str(key): _encode(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode(item) for item in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, str):
        return value
    raise TypeError(f"not a plain value for the probe channel: {type(value).__name__}")


def dumps(value) -> bytes:
    body = json.dumps(_encode(value), allow_nan=False, separators=(",", ":")).encode("utf-8")
    if len(body) > MAX_FRAME_BYTES:
        raise WireError(f"frame of {len(body)} bytes is over the limit of {MAX_FRAME_BYTES}")
    return HEADER.pack(len(body)) + body


def _array(spec) -> np.ndarray:
    if not (isinstance(spec, list) and len(spec) == 3 and spec[0] in ARRAY_DTYPES and isinstance(spec[1], list)
            and isinstance(spec[2], str)):
        raise WireError("malformed array")
    shape = spec[1]
    if len(shape) > 8 or not all(type(d) is int and 0 <= d for d in shape):
        raise WireError("malformed array shape")
    count = math.prod(shape)
    dtype = np.dtype(spec[0])
    if count > MAX_ARRAY_ELEMENTS:
        raise WireError(f"array of {count} elements is over the limit")
    if len(spec[2]) != 4 * math.ceil(count * dtype.itemsize / 3):
        raise WireError("array data does not match its shape")
    try:
        data = base64.b64decode(spec[2], validate=True)
    except (binascii.Error, ValueError) as error:
        raise WireError(f"array data is not base64 ({error})") from None
    if len(data) != count * dtype.itemsize:
        raise WireError("array data does not match its shape")
    return np.frombuffer(data, dtype=dtype).reshape(shape).copy()


def _decode(value, depth: int = 0):
    if depth > 32:
        raise WireError("value nested too deeply")
    if isinstance(value, dict):
        if set(value) == {ARRAY_KEY}:
            return _array(value[ARRAY_KEY])
        return {key: _decode(item, depth + 1) for key, item in value.items()}
    if isinstance(value, list):
        return [_decode(item, depth + 1) for item in value]
    return value


def loads(body: bytes):
    try:
        return _decode(json.loads(body.decode("utf-8")))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise WireError(f"frame is not JSON ({error})") from None


def read_frame(read_exactly, max_bytes: int = MAX_FRAME_BYTES):
    """The next frame's value; `read_exactly(n)` returns n bytes or fewer at the end of the stream."""
    header = read_exactly(HEADER.size)
    if len(header) != HEADER.size:
        raise EOFError("the channel closed")
    (size,) = HEADER.unpack(header)
    if size > max_bytes:
        raise WireError(f"frame of {size} bytes is over the limit of {max_bytes}")
    body = read_exactly(size)
    if len(body) != size:
        raise EOFError("the channel closed in the middle of a frame")
    return loads(body)
