"""The one reader of figure descriptions: where the two old grid readers disagreed, the more general rule holds."""
import numpy as np

from autograder.checks import CHECKS
from autograder.checks.figure_reader import read_grids
from autograder.checks.ties import decoder_grids
from autograder.execution.kernel import recorder as kernel_side
from tests.checks.fakes import INPUTS, artefacts, subplot_grid, verified


def test_a_subplot_grid_with_an_empty_cell_is_still_a_grid_without_pixels():
    # checks.image_grids kept it (complete=False), image_checks.figure_grids dropped it: kept, for every check.
    incomplete = subplot_grid(10, 5)
    incomplete["axes"].pop(7)
    [grid] = read_grids([incomplete])
    assert (grid.rows, grid.cols, grid.kind, grid.complete, grid.axes) == (10, 5, "subplots", False, 49)
    assert grid.tiles is None                                   # no pixels were recorded
    # without pixels its tiles cannot be shown to be the decoder's outputs: it is never tied, and earns nothing
    arts = artefacts([incomplete], **verified([incomplete]))
    assert decoder_grids(arts) == ([], "")
    assert CHECKS["figure_digit_rows"](arts, INPUTS, {}).fraction == 0.0


def test_a_grid_without_pixels_is_named_among_the_grids_seen():
    incomplete = subplot_grid(10, 5)
    incomplete["axes"].pop(7)
    result = CHECKS["figure_digit_rows"](artefacts([incomplete], **verified([incomplete])), INPUTS, {})
    assert result.fraction == 0.0 and "grids seen: 10x5" in result.message


def _described_subplots(tiles: np.ndarray, skip: set = frozenset()) -> dict:
    from matplotlib.figure import Figure

    rows, cols = tiles.shape[:2]
    figure = Figure(figsize=(cols, rows))
    axes = figure.subplots(rows, cols, squeeze=False)
    for r in range(rows):
        for c in range(cols):
            if (r, c) not in skip:
                axes[r, c].imshow(tiles[r, c], cmap="gray", vmin=0, vmax=1)
    return kernel_side.describe_figure(figure)


def test_an_incomplete_subplot_grid_has_its_tiles_and_marks_the_empty_cells():
    tiles = np.random.default_rng(0).random((3, 4, 28, 28))
    [grid] = read_grids([_described_subplots(tiles, skip={(1, 2)})])
    assert (grid.rows, grid.cols, grid.complete) == (3, 4, False)
    assert grid.filled.sum() == 11 and not grid.filled[1, 2]
    np.testing.assert_allclose(grid.tiles[0, 0], tiles[0, 0], atol=1 / 255 + 1e-9)
    assert not grid.tiles[1, 2].any()


def test_subplot_geometry_counts_every_image_and_tiles_need_all_pixels():
    # figure_grids built the grid from the images that carried pixels only (a smaller grid); now every 28x28 axes
    # counts, and a grid whose pixels are partly missing has no tiles (its digits are not judged from a part).
    tiles = np.random.default_rng(1).random((2, 3, 28, 28))
    described = _described_subplots(tiles)
    del described["axes"][5]["images"][0]["pixels"]
    [grid] = read_grids([described])
    assert (grid.rows, grid.cols, grid.complete) == (2, 3, True) and grid.tiles is None
