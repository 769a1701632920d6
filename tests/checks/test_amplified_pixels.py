"""Issue 16, point 3: what comes out of a sandbox cannot make the grader's own memory grow past a bound, whatever it
claims: blank images that compress to a few hundred bytes each, subplot grids laid out to be huge, scatters, and
JSON that expands (measured with tracemalloc, which sees numpy's buffers too)."""
from __future__ import annotations

import base64
import tracemalloc
import zlib

import numpy as np
import pytest

from autograder.checks import ties
from autograder.checks.figure_reader import read_grids
from autograder.execution.run import parse_result

IMAGES = 100                     # 1000x1000 each: 100 M pixels, 800 MB as float64 if decoded naively
BOUND = 150 * 1024 * 1024


def blank(shape) -> dict:
    raw = bytes(int(np.prod(shape)))
    return {"shape": list(shape), "zlib_base64": base64.b64encode(zlib.compress(raw, 9)).decode()}


def axes(**parts) -> dict:
    return {"title": "", "xlabel": "", "ylabel": "", "images": [], "scatters": [], "lines": [], "legend": [],
            "position": [0, 0, 1, 1]} | parts


def hostile_figures() -> list:
    figures = []
    for index in range(IMAGES):                       # one stitched "grid" each, 35x35 tiles
        image = {"shape": [980, 980], "min": 0.0, "max": 1.0, "pixels": blank((980, 980))}
        figures.append({"suptitle": f"VAE {index}", "axes": [axes(images=[image])], "cell": index % 3})
    singles = []                                       # 400 axes on a 400x400 layout of 28x28 images
    for index in range(400):
        image = {"shape": [28, 28], "min": 0.0, "max": 1.0, "pixels": blank((28, 28))}
        singles.append(axes(images=[image], position=[index / 400, index / 400, 0.001, 0.001]))
    figures.append({"suptitle": "VAE subplots", "axes": singles, "cell": 5})
    scatter = {"points": blank((500_000, 2)), "groups": blank((500_000,))}
    for index in range(40):
        figures.append({"suptitle": "latent", "axes": [axes(scatters=[{**scatter, "n_points": 500_000}])],
                        "cell": 6})
    return figures


def test_amplified_pixels_keep_the_graders_memory_bounded():
    figures = hostile_figures()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        grids = read_grids(figures)
        decoded = [grid for grid in grids if grid.pixels is not None]
        assert all(grid.pixels.dtype == np.uint8 for grid in decoded)
        assert len(decoded) < IMAGES, "every image was decoded: nothing capped them"
        for grid in decoded:
            assert grid.tiles.max() <= 1.0
        found = ties.scatters(figures)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < BOUND, f"the grader's memory peaked at {peak / 2**20:.0f} MiB"
    assert len(grids) == IMAGES + 1 and isinstance(found, list)


def test_json_that_would_expand_is_refused_before_parsing():
    raw = b'{"notebook": {"cells": [' + b"{}," * 3_000_000 + b'{}]}, "events": []}'
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="JSON values"):
            parse_result(raw)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * len(raw), f"{peak / 2**20:.0f} MiB to refuse {len(raw) / 2**20:.0f} MiB of JSON"
