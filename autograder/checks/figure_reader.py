"""The one reader of harvested figure descriptions (docs/contract.md's FigureDescription), for every figure and image
check: axes and their texts, which figures may show the VAE (titles), and the grids of 28x28 digits.

A grid is either one stitched image whose sides hold whole 28-px tiles with regular padding (between the tiles,
around and between them, or after each, at most `max_pad` px), or a figure whose axes each show ONE 28x28 image,
arranged by the axes' positions in rows and columns. A subplot grid with empty cells is still a grid (`complete` is
False). When every image of a grid carries its grey levels (`pixels`, recorded in the kernel), the grid also has its
tiles (rows, cols, 28, 28) in [0, 1], rows top to bottom as displayed; the empty cells of an incomplete subplot grid
are blank and marked in `filled`. Pixels are plain bytes inflated to exactly the expected size, never unpickled.

The grader's memory is bounded whatever the figures claim: a pixels string is refused before decoding past
MAX_ENCODED_CHARS or MAX_DECODED_PIXELS, and a `Budget` caps what one reading decodes in all, per figure
(MAX_FIGURE_PIXELS), per cell (MAX_CELL_PIXELS) and for the submission (MAX_SUBMISSION_PIXELS): images past a cap are
not decoded (their grid has no tiles). Decoded pixels are kept as uint8 (`Grid.pixels`); `Grid.tiles` gives them in
[0, 1] as float32 when a check needs them.
"""
from __future__ import annotations

import base64
import binascii
import math
import zlib
from dataclasses import dataclass, field

import numpy as np

DIGIT_SIDE = 28
MAX_ENCODED_CHARS = 4_000_000      # a pixels string longer than this is refused before decoding
MAX_DECODED_PIXELS = 1_000_000     # and so is one that would decode to more pixels
MAX_FIGURE_PIXELS = 4_000_000      # decoded in all for one figure (a 15x15 grid of digits is about 0.2 M)
MAX_CELL_PIXELS = 8_000_000        # for the figures of one cell
MAX_SUBMISSION_PIXELS = 16_000_000  # for all the figures of a submission, in one reading (16 MB as uint8)
MAX_SIDE = 10_000                  # an image taller or wider than this is not read as a grid of digits
OTHER_MODEL_WORDS = ("autoencoder", "auto-encoder", "pca", "principal component")
VAE_WORDS = ("vae", "variational")
POSITION_TOLERANCE = 0.01          # axes whose positions differ by less are in the same row (column)


# --- figures and axes --------------------------------------------------------------------------------------------

def all_axes(figures: list) -> list[tuple[int, dict, dict]]:
    """(figure index, figure, axes) for every axes of every well-formed figure description."""
    found = []
    for index, figure in enumerate(figures if isinstance(figures, list) else []):
        if isinstance(figure, dict):
            for axes in figure.get("axes") or []:
                if isinstance(axes, dict):
                    found.append((index, figure, axes))
    return found


def axes_text(figure: dict, axes: dict) -> str:
    """Everything written on an axes (its figure's suptitle, title, labels, legend, line labels), lower case."""
    parts = [figure.get("suptitle"), axes.get("title"), axes.get("xlabel"), axes.get("ylabel")]
    parts += list(axes.get("legend") or []) + [line.get("label") for line in axes.get("lines") or []
                                                if isinstance(line, dict)]
    return " ".join(str(p) for p in parts if p).lower()


def figure_text(figure: dict) -> str:
    """A figure's suptitle and axes titles, lower case."""
    titles = [figure.get("suptitle")] + [a.get("title") for a in figure.get("axes") or [] if isinstance(a, dict)]
    return " ".join(str(t) for t in titles if t).lower()


def figure_title(figure: dict) -> str:
    """The suptitle, else the first axes title (as written), else ''."""
    return (figure.get("suptitle") or "").strip() or next(
        (str(a.get("title")).strip() for a in figure.get("axes") or [] if isinstance(a, dict) and a.get("title")), "")


def vae_figures(figures: list, params: dict) -> list:
    """The figures that may show the VAE: drops those titled as another model's (the given autoencoder runs, PCA)
    unless they also mention the VAE, so the template's working autoencoder figures never earn the VAE items."""
    other = tuple(w.lower() for w in params.get("exclude_titles", OTHER_MODEL_WORDS))
    vae = tuple(w.lower() for w in params.get("unless_titles", VAE_WORDS))
    kept = []
    for figure in figures if isinstance(figures, list) else []:
        text = figure_text(figure) if isinstance(figure, dict) else ""
        if any(w in text for w in other) and not any(w in text for w in vae):
            continue
        kept.append(figure)
    return kept


def excluded_note(all_figures: list, kept: list) -> str:
    dropped = len(all_figures if isinstance(all_figures, list) else []) - len(kept)
    return (f" ({dropped} figure(s) titled as autoencoder/PCA figures were not considered: give your VAE figures "
            f"titles that say VAE)" if dropped > 0 else "")


def figure_summary(figures: list) -> str:
    """What was recorded, for a message saying that the figure looked for was not among it."""
    if not figures:
        return "no figures were recorded (did every plotting cell run, and did it draw with matplotlib?)"
    kinds = {"images": 0, "scatters": 0, "lines": 0}
    for _, _, axes in all_axes(figures):
        for kind in kinds:
            kinds[kind] += len(axes.get(kind) or [])
    return (f"{len(figures)} figure(s) were recorded, with {kinds['lines']} line(s), {kinds['scatters']} scatter(s) "
            f"and {kinds['images']} image(s)")


def line_xy(line: dict) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(line.get("x") or [], dtype=float), np.asarray(line.get("y") or [], dtype=float)


# --- pixels ------------------------------------------------------------------------------------------------------

class Budget:
    """How many values one reading of the figures may still decode: per figure, per cell and in all."""

    def __init__(self, total: int = MAX_SUBMISSION_PIXELS, per_figure: int = MAX_FIGURE_PIXELS,
                 per_cell: int = MAX_CELL_PIXELS):
        self.left, self.per_figure, self.per_cell = total, per_figure, per_cell
        self.figures: dict = {}
        self.cells: dict = {}

    def take(self, count: int, figure=None, cell=None) -> bool:
        """Reserve `count` values for figure `figure` of cell `cell`; False (nothing reserved) past any cap."""
        in_figure = self.figures.get(figure, 0) + count
        in_cell = self.cells.get(cell, 0) + count
        if count > self.left or in_figure > self.per_figure or in_cell > self.per_cell:
            return False
        self.left -= count
        self.figures[figure], self.cells[cell] = in_figure, in_cell
        return True


def _declared_count(shape) -> int | None:
    try:
        count = math.prod(int(d) for d in shape)
    except (TypeError, ValueError):
        return None
    return count if count > 0 else None


def decode_array(encoded, shape, dtype=np.uint8) -> np.ndarray | None:
    """An array of `shape` and `dtype` (uint8 pixels, float32 scatter points) from the kernel recorder's
    encode_uint8 text, or None when the text is not exactly that (bad base64 or zlib, wrong size, too large).
    Decompression stops one byte past the expected size."""
    try:
        shape = tuple(int(d) for d in shape)
        dtype = np.dtype(dtype)
    except (TypeError, ValueError):
        return None
    count = math.prod(shape) if shape else 0
    size = count * dtype.itemsize
    if not isinstance(encoded, str) or len(encoded) > MAX_ENCODED_CHARS or not 0 < count <= MAX_DECODED_PIXELS:
        return None
    try:
        compressed = base64.b64decode(encoded, validate=True)
        inflater = zlib.decompressobj()
        raw = inflater.decompress(compressed, size + 1)
    except (binascii.Error, ValueError, zlib.error):
        return None
    if len(raw) != size or not inflater.eof:
        return None
    return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()


def decode_uint8(encoded, shape) -> np.ndarray | None:
    return decode_array(encoded, shape, np.uint8)


def image_pixels(image: dict, budget: Budget | None = None, figure=None, cell=None) -> np.ndarray | None:
    """(h, w) uint8 grey levels of a harvested image description, None without (valid) pixels or past the budget
    (checked on the declared shape, before anything is decoded)."""
    pixels = image.get("pixels") if isinstance(image, dict) else None
    if not isinstance(pixels, dict):
        return None
    shape = pixels.get("shape")
    if not isinstance(shape, list) or len(shape) != 2 or list(shape) != list(image.get("shape") or [])[:2]:
        return None
    count = _declared_count(shape)
    if count is None or count > MAX_DECODED_PIXELS or (budget is not None and not budget.take(count, figure, cell)):
        return None
    return decode_uint8(pixels.get("zlib_base64"), shape)


def image_grey(image: dict) -> np.ndarray | None:
    """(h, w) grey levels in [0, 1] of a harvested image description, None without (valid) pixels."""
    array = image_pixels(image)
    return None if array is None else array.astype(np.float64) / 255.0


# --- grids of digits ---------------------------------------------------------------------------------------------

def tile_count(size: int, max_pad: int) -> int | None:
    """How many 28-px tiles a stitched side of `size` px holds, allowing regular padding <= max_pad px per gap
    (between tiles and optionally around them); None when no count fits."""
    for n in range(max(1, size // DIGIT_SIDE), 0, -1):
        if tile_offsets(size, n, max_pad) is not None:
            return n
    return None


def tile_layouts(size: int, count: int, max_pad: int) -> list[list[int]]:
    """Every start of `count` 28-px tiles along a side of `size` px with regular padding <= max_pad: none, between
    the tiles, around and between them, or after each (a size can fit more than one)."""
    extra = size - count * DIGIT_SIDE
    if extra == 0:
        return [[i * DIGIT_SIDE for i in range(count)]]
    layouts = []
    for gaps, leading in ((count + 1, 1), (count - 1, 0), (count, 0)):
        if gaps > 0 and extra > 0 and extra % gaps == 0 and extra // gaps <= max_pad:
            pad = extra // gaps
            layouts.append([leading * pad + i * (DIGIT_SIDE + pad) for i in range(count)])
    return layouts


def tile_offsets(size: int, count: int, max_pad: int) -> list[int] | None:
    """The first of tile_layouts (around and between first: torchvision's make_grid), or None."""
    layouts = tile_layouts(size, count, max_pad)
    return layouts[0] if layouts else None


def _gaps_uniform(profile: np.ndarray, starts: list[int]) -> bool:
    """Whether every pixel of `profile` (one value per row or column) outside the tiles is the same."""
    covered = np.zeros(len(profile), dtype=bool)
    for start in starts:
        covered[start:start + DIGIT_SIDE] = True
    gaps = profile[~covered]
    return gaps.size == 0 or float(np.ptp(gaps)) < 1e-6


def cut_tiles(picture: np.ndarray, rows: int, cols: int, max_pad: int) -> np.ndarray:
    """A stitched picture (h, w) of rows x cols digits -> tiles (rows, cols, 28, 28); when a side fits more than one
    padding, the one whose gaps are plain padding (uniform pixels) is taken."""
    h, w = picture.shape

    def starts(size: int, count: int, axis: int) -> list[int]:
        layouts = tile_layouts(size, count, max_pad)
        profile_min, profile_max = picture.min(axis=axis), picture.max(axis=axis)
        return next((layout for layout in layouts if _gaps_uniform(profile_min, layout)
                     and _gaps_uniform(profile_max, layout)), layouts[0])

    row_starts, col_starts = starts(h, rows, 1), starts(w, cols, 0)
    return np.stack([np.stack([picture[r:r + DIGIT_SIDE, c:c + DIGIT_SIDE] for c in col_starts])
                     for r in row_starts])


def cluster_index(values: list[float], tol: float = POSITION_TOLERANCE) -> list[int]:
    """For each value, the rank of its cluster (values closer than tol merged), ascending."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    index, cluster, last = [0] * len(values), -1, None
    for i in order:
        if last is None or values[i] - last > tol:
            cluster += 1
        index[i] = cluster
        last = values[i]
    return index


@dataclass
class Grid:
    """A grid of rows x cols digits drawn in figure `figure` (index in artefacts["figures"])."""
    rows: int
    cols: int
    kind: str                       # "stitched" (one image cut into tiles) or "subplots" (one image per axes)
    figure: int
    title: str = ""                 # the figure's suptitle or first axes title
    shape: list | None = None       # stitched: the picture's [h, w]
    axes: int = 0                   # subplots: how many axes show one 28x28 image
    complete: bool = True           # subplots: every cell of rows x cols holds one image
    pixels: np.ndarray | None = field(default=None, repr=False)   # (rows, cols, 28, 28) uint8, or None
    filled: np.ndarray | None = field(default=None, repr=False)   # (rows, cols) bool: the cell holds an image

    @property
    def tiles(self) -> np.ndarray | None:
        """The tiles in [0, 1] (float32, made on each call from the uint8 pixels), or None."""
        return None if self.pixels is None else self.pixels.astype(np.float32) / np.float32(255.0)

    def summary(self) -> dict:
        """Plain data for a check's details and messages."""
        if self.kind == "stitched":
            return {"rows": self.rows, "cols": self.cols, "kind": self.kind, "figure": self.figure,
                    "shape": list(self.shape or [])}
        return {"rows": self.rows, "cols": self.cols, "kind": self.kind, "figure": self.figure, "axes": self.axes,
                "complete": self.complete}


def read_grids(figures: list, max_pad: int = 4, budget: Budget | None = None) -> list[Grid]:
    """Every grid of 28x28 digits drawn, in the order of the figures' axes (stitched images), then the subplot grids
    (in the order of their figures). What is decoded counts against `budget` (a fresh Budget() by default)."""
    budget = budget if budget is not None else Budget()
    grids = []
    singles: dict[int, list[tuple[list, dict]]] = {}
    titles: dict[int, str] = {}
    for index, figure, axes in all_axes(figures):
        cell = figure.get("cell")
        titles.setdefault(index, figure_title(figure))
        images = [image for image in axes.get("images") or [] if isinstance(image, dict)]
        for image in images:
            shape = list(image.get("shape") or [])
            try:
                h, w = int(shape[0]), int(shape[1])
            except (TypeError, ValueError, IndexError, OverflowError):
                continue
            if not (0 < h <= MAX_SIDE and 0 < w <= MAX_SIDE):
                continue
            if (h, w) == (DIGIT_SIDE, DIGIT_SIDE):
                if len(images) == 1:
                    singles.setdefault(index, []).append((list(axes.get("position") or [0, 0, 0, 0]), image))
                continue
            rows, cols = tile_count(h, max_pad), tile_count(w, max_pad)
            if rows and cols and rows * cols >= 2:
                grey = image_pixels(image, budget, index, cell)
                tiles = cut_tiles(grey, rows, cols, max_pad) if grey is not None else None
                grids.append(Grid(rows, cols, "stitched", index, titles[index], shape=[h, w], pixels=tiles,
                                  filled=np.ones((rows, cols), dtype=bool) if tiles is not None else None))
    for index, entries in singles.items():
        if len(entries) >= 2:
            cell = figures[index].get("cell") if isinstance(figures[index], dict) else None
            grids.append(_subplot_grid(index, titles[index], entries, budget, cell))
    return grids


def _coordinate(position, index: int) -> float:
    try:
        value = float(position[index])
    except (TypeError, ValueError, IndexError, OverflowError):
        return 0.0
    return value if math.isfinite(value) else 0.0


def _subplot_grid(index: int, title: str, entries: list[tuple[list, dict]], budget: Budget | None = None,
                  cell=None) -> Grid:
    """Axes each showing one 28x28 image, placed by their positions (figure y grows upwards: the top row has the
    largest y)."""
    ys, xs = [_coordinate(p, 1) for p, _ in entries], [_coordinate(p, 0) for p, _ in entries]
    row_of, col_of = cluster_index(ys), cluster_index(xs)
    rows, cols = max(row_of) + 1, max(col_of) + 1
    cells = {(rows - 1 - r, c) for r, c in zip(row_of, col_of)}
    grid = Grid(rows, cols, "subplots", index, title, axes=len(entries), complete=rows * cols == len(entries))
    if rows * cols * DIGIT_SIDE * DIGIT_SIDE > MAX_FIGURE_PIXELS:      # the grid itself would be too large
        return grid
    greys = []
    for _, image in entries:
        grey = image_pixels(image, budget, index, cell)
        if grey is None:
            return grid
        greys.append(grey)
    if greys:
        grid.pixels = np.zeros((rows, cols, DIGIT_SIDE, DIGIT_SIDE), dtype=np.uint8)
        grid.filled = np.zeros((rows, cols), dtype=bool)
        for grey, r, c in zip(greys, row_of, col_of):
            grid.pixels[rows - 1 - r, c] = grey
            grid.filled[rows - 1 - r, c] = True
        grid.complete = grid.complete and len(cells) == len(entries)
    return grid
