"""The probe channel's frames: plain values and numeric arrays round-trip; anything else is refused, bounded."""
import base64
import json
import struct

import numpy as np
import pytest

from autograder.probing import wire


def frame_reader(data: bytes):
    position = [0]

    def read_exactly(size):
        chunk = data[position[0]:position[0] + size]
        position[0] += len(chunk)
        return chunk
    return read_exactly


def test_plain_values_and_arrays_round_trip():
    value = {"a": [1, 2.5, None, True, "x"], "images": np.arange(12, dtype=np.uint8).reshape(3, 4),
             "z": np.linspace(0, 1, 5), "nested": {"f": np.float32(0.25)}}
    back = wire.read_frame(frame_reader(wire.dumps(value)))
    assert back["a"] == [1, 2.5, None, True, "x"] and back["nested"] == {"f": 0.25}
    assert back["images"].dtype == np.uint8 and back["images"].tolist() == value["images"].tolist()
    assert np.array_equal(back["z"], value["z"])


def test_non_finite_floats_become_none_and_objects_are_refused():
    assert wire.loads(wire.dumps([float("nan"), float("inf")])[4:]) == [None, None]
    with pytest.raises(TypeError):
        wire.dumps({"object": object()})


def body(value) -> bytes:
    return json.dumps(value).encode()


@pytest.mark.parametrize("spec, why", [
    (["object", [1], "AA=="], "malformed array"),                          # a dtype numpy would unpickle
    (["uint8", [2, 2], base64.b64encode(b"abc").decode()], "does not match"),    # 3 bytes for 4 elements
    (["float64", [10 ** 9], ""], "over the limit"),                        # a huge allocation announced
    (["uint8", [-1], ""], "malformed array shape"),
])
def test_bad_arrays_are_refused_before_allocation(spec, why):
    with pytest.raises(wire.WireError, match=why):
        wire.loads(body({wire.ARRAY_KEY: spec}))


def test_oversized_and_truncated_frames_are_refused():
    with pytest.raises(wire.WireError, match="over the limit"):
        wire.read_frame(frame_reader(struct.pack(">I", wire.MAX_FRAME_BYTES + 1)))
    with pytest.raises(EOFError):
        wire.read_frame(frame_reader(struct.pack(">I", 10) + b"{}"))
    with pytest.raises(wire.WireError, match="not JSON"):
        wire.read_frame(frame_reader(struct.pack(">I", 3) + b"\xff\xfe{"))
