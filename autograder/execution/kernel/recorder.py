"""Code that runs INSIDE the student's kernel: the figure recorder. Plain Python source: the setup cell
(autograder/execution/notebook.py) injects this file's text as a private module (`labgrader_kernel_side` in
sys.modules, so student names can't clash with it); tests import it directly.

- `install(seed, token)`: seeds random/numpy/torch, selects matplotlib's inline backend and registers a
  `post_execute` callback at position 0 (before the inline backend's `flush_figures` closes the figures) that
  displays a description of every figure the cell drew (contract.md's FigureDescription, minus "cell", which the
  harvester knows from where the output sits) under FIGURES_MIME. Figures rendered by `plt.show()`/`display(fig)`
  are caught when they are printed (FigureCanvasBase.print_figure), figures left open at the end of the cell by
  the callback; a figure described once is described again only if it changed.
  Images of at least 28x28 px also carry their grey levels (uint8, zlib + base64), and scatters their points
  (float32) and the colour group of each point (uint8), within a budget per cell, for the grader's checks
  (autograder/checks/), which compare them with what the grader computes from the student's models.
Nothing here decides a grade and nothing here is trusted: the notebook shares this process.
"""

import json
import math
import random
import sys

FIGURES_MIME = "application/vnd.labgrader.figures+json"
GRADER_MIME_PREFIX = "application/vnd.labgrader."   # any output in this family from the notebook itself is forged
MAX_LINE_POINTS = 1000
MAX_AXES_PER_FIGURE = 400
MAX_FIGURES_PER_CELL = 50
MAX_ERROR_CHARS = 500
# Pixels of drawn images and points of scatters, for the grader's checks: images with both sides >= 28 px and at
# most MAX_IMAGE_PIXELS pixels, scatters of at most MAX_SCATTER_POINTS points in at most MAX_SCATTER_GROUPS colours,
# zlib-compressed and in base64, at most MAX_PIXEL_CHARS_PER_CELL characters per cell.
MIN_IMAGE_SIDE = 28
MAX_IMAGE_PIXELS = 400_000
MAX_SCATTER_POINTS = 20_000
MAX_SCATTER_GROUPS = 64
MAX_PIXEL_CHARS_PER_CELL = 600_000
# Figures (PNGs and these descriptions) count only toward the runner's whole-notebook output cap, not its per-cell
# cap for printed text, so the budget above is the only per-cell bound on descriptions.

_state = {"token": "", "pending": [], "display": None, "finders": []}
_pixel_chars = {"cell": 0, "figure": 0}  # encoded data queued in this cell / in the figure being described


# ---------------------------------------------------------------- plain JSON values

def plain(value):
    """Copy of value made only of exact bool/int/float/str/None/list/dict (non-finite floats become None);
    anything else raises TypeError. Callers convert student objects with float()/int()/.tolist() first."""
    kind = type(value)
    if value is None or kind is bool or kind is str:
        return value
    if kind is int:
        return int(value)
    if kind is float:
        return value if math.isfinite(value) else None
    if kind is list or kind is tuple:
        return [plain(item) for item in value]
    if kind is dict:
        return {str(key): plain(item) for key, item in value.items()}
    raise TypeError(f"not a plain JSON value: {kind.__name__}")


def error_text(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:MAX_ERROR_CHARS]


# ---------------------------------------------------------------- figures

def _finite_min_max(array):
    import numpy as np
    data = np.ma.getdata(array) if np.ma.isMaskedArray(array) else array
    try:
        values = np.asarray(data, dtype=np.float64)
    except (TypeError, ValueError):
        return None, None
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None, None
    return float(values.min()), float(values.max())


def encode_uint8(array) -> str:
    """An array (uint8, or float32 for scatter points) -> base64 of its zlib-compressed bytes (C order); the grader
    knows the shape and dtype."""
    import base64
    import zlib
    return base64.b64encode(zlib.compress(array.tobytes(), 6)).decode("ascii")


def _image_pixels(image, array):
    """What an AxesImage shows, as grey levels: {"shape": [h, w], "zlib_base64": ...} (uint8, 255 = top of the
    colour scale, rows as displayed), or None (too small or too large, not grey/RGB, or over this cell's budget)."""
    import numpy as np
    shape = np.shape(array)
    if len(shape) not in (2, 3) or min(shape[:2]) < MIN_IMAGE_SIDE or shape[0] * shape[1] > MAX_IMAGE_PIXELS:
        return None
    data = np.ma.getdata(array)
    mask = np.ma.getmaskarray(array) if np.ma.isMaskedArray(array) else None
    if len(shape) == 3:
        if shape[2] not in (3, 4):
            return None
        rgb = np.asarray(data[..., :3], dtype=np.float64)
        grey = rgb.mean(axis=2) / (255.0 if np.asarray(data).dtype == np.uint8 else 1.0)
    else:
        grey = np.asarray(data, dtype=np.float64)
        norm = getattr(image, "norm", None)
        finite = grey[np.isfinite(grey)]
        low = getattr(norm, "vmin", None)
        high = getattr(norm, "vmax", None)
        low = float(low) if low is not None else (float(finite.min()) if finite.size else 0.0)
        high = float(high) if high is not None else (float(finite.max()) if finite.size else 1.0)
        grey = (grey - low) / (high - low) if high > low else np.zeros_like(grey)
        if mask is not None:
            grey = np.where(mask, 0.0, grey)
    grey = np.nan_to_num(np.clip(grey, 0.0, 1.0), nan=0.0)
    if getattr(image, "origin", "upper") == "lower":
        grey = grey[::-1]
    encoded = encode_uint8(np.ascontiguousarray(np.rint(grey * 255.0).astype(np.uint8)))
    if not _budget(encoded):
        return None
    return {"shape": [int(grey.shape[0]), int(grey.shape[1])], "zlib_base64": encoded}


def _budget(encoded: str) -> bool:
    """Take len(encoded) characters of this cell's budget; False (nothing taken) when it would overflow."""
    if _pixel_chars["cell"] + _pixel_chars["figure"] + len(encoded) > MAX_PIXEL_CHARS_PER_CELL:
        return False
    _pixel_chars["figure"] += len(encoded)
    return True


def _scatter_data(offsets, values, faces):
    """{"points": (n, 2) float32 in data coordinates, "groups": (n,) uint8 colour group of each point, "group_keys":
    the value (get_array) or RGBA colour of each group} as encoded arrays, or None (too many points or colours, or
    over this cell's budget)."""
    import numpy as np
    n = int(offsets.shape[0]) if offsets.ndim == 2 else 0
    if n == 0 or n > MAX_SCATTER_POINTS or offsets.shape[1] != 2:
        return None
    if values is not None and np.size(values) == n:
        keys, groups = np.unique(np.round(np.asarray(np.ma.getdata(values), dtype=np.float64).ravel(), 6),
                                 return_inverse=True)
        group_keys = [[float(key)] for key in keys]
    elif faces.ndim == 2 and faces.shape[0] in (1, n):
        colours = np.round(np.broadcast_to(faces, (n, faces.shape[1])), 4)
        keys, groups = np.unique(colours, axis=0, return_inverse=True)
        group_keys = [[float(v) for v in key] for key in keys]
    else:
        return None
    if len(group_keys) > MAX_SCATTER_GROUPS:
        return None
    points = encode_uint8(np.ascontiguousarray(np.asarray(offsets, dtype=np.float32)))
    labels = encode_uint8(np.ascontiguousarray(np.asarray(groups, dtype=np.uint8).ravel()))
    if not _budget(points + labels):
        return None
    return {"points": {"shape": [n, 2], "dtype": "float32", "zlib_base64": points},
            "groups": {"shape": [n], "dtype": "uint8", "zlib_base64": labels}, "group_keys": group_keys}


def describe_axes(ax) -> dict:
    import numpy as np
    from matplotlib.collections import PathCollection
    images = []
    for image in ax.get_images():
        array = image.get_array()
        if array is None:
            continue
        low, high = _finite_min_max(array)
        described = {"shape": [int(d) for d in np.shape(array)], "min": low, "max": high}
        pixels = _image_pixels(image, array)
        if pixels is not None:
            described["pixels"] = pixels
        images.append(described)
    scatters = []
    for collection in ax.collections:
        if not isinstance(collection, PathCollection):
            continue
        try:
            collection.update_scalarmappable()  # colour-mapped faces are only computed at draw time
        except Exception:
            pass
        offsets = np.asarray(collection.get_offsets())
        faces = np.asarray(collection.get_facecolors())
        n_colors = int(np.unique(np.round(faces, 4), axis=0).shape[0]) if faces.size else 0
        values = collection.get_array()
        n_values = int(np.unique(np.asarray(np.ma.getdata(values)).ravel()).size) if values is not None else 0
        described = {"n_points": int(offsets.shape[0]) if offsets.ndim else 0, "n_colors": n_colors,
                     "n_values": n_values}
        data = _scatter_data(offsets, values, faces)
        if data is not None:
            described.update(data)
        scatters.append(described)
    lines = []
    for line in ax.get_lines():
        try:
            xy = np.asarray(line.get_xydata(), dtype=np.float64)
        except (TypeError, ValueError):
            continue
        xy = xy.reshape(-1, 2) if xy.size else np.zeros((0, 2))
        lines.append({"x": plain(xy[:MAX_LINE_POINTS, 0].tolist()), "y": plain(xy[:MAX_LINE_POINTS, 1].tolist()),
                      "n_points": int(xy.shape[0]), "label": str(line.get_label())})
    legend = ax.get_legend()
    title = ax.get_title() or ax.get_title(loc="left") or ax.get_title(loc="right")
    return {
        "title": str(title), "xlabel": str(ax.get_xlabel()), "ylabel": str(ax.get_ylabel()),
        "position": [float(v) for v in ax.get_position().bounds],
        "images": images, "scatters": scatters, "lines": lines,
        "legend": [str(text.get_text()) for text in legend.get_texts()] if legend is not None else [],
    }


def describe_figure(figure) -> dict:
    suptitle = figure._suptitle.get_text() if getattr(figure, "_suptitle", None) is not None else ""
    _pixel_chars["figure"] = 0
    axes = [describe_axes(ax) for ax in figure.get_axes()[:MAX_AXES_PER_FIGURE]]
    return {"suptitle": str(suptitle), "axes": axes, "n_axes": len(figure.get_axes())}


def record_figure(figure) -> None:
    """Queue a description of `figure` for this cell unless the same figure was already described unchanged."""
    try:
        description = describe_figure(figure)
        signature = json.dumps(description, sort_keys=True)
        if getattr(figure, "_labgrader_signature", None) == signature:
            return
        figure._labgrader_signature = signature
        if len(_state["pending"]) < MAX_FIGURES_PER_CELL:
            _state["pending"].append(description)
            _pixel_chars["cell"] += _pixel_chars["figure"]
    except Exception as error:  # a figure we can't describe must not break the student's cell
        _state["pending"].append({"suptitle": "", "axes": [], "n_axes": 0, "error": error_text(error)})


def _record_open_figures_and_emit(*_args) -> None:
    try:
        import matplotlib._pylab_helpers as pylab_helpers
        for manager in pylab_helpers.Gcf.get_all_fig_managers():
            record_figure(manager.canvas.figure)
    except Exception:
        pass
    if _state["pending"]:
        figures, _state["pending"] = _state["pending"], []
        _fit_pixels(figures)
        _state["display"]({FIGURES_MIME: {"token": _state["token"], "figures": figures}}, raw=True)
    _pixel_chars["cell"] = 0


def _fit_pixels(figures) -> None:
    """Drop image pixels (the latest first) past MAX_PIXEL_CHARS_PER_CELL."""
    images = [image for figure in figures for axes in figure.get("axes", []) for image in axes.get("images", [])
              if "pixels" in image]
    if not images:
        return
    pixel_chars = [len(image["pixels"]["zlib_base64"]) + 64 for image in images]
    room = MAX_PIXEL_CHARS_PER_CELL
    used = 0
    for image, size in zip(images, pixel_chars):
        if used + size > room:
            del image["pixels"]
        else:
            used += size


def _patch_print_figure() -> None:
    from matplotlib.backend_bases import FigureCanvasBase
    original = FigureCanvasBase.print_figure
    if getattr(original, "_labgrader", False):
        return

    def print_figure(self, *args, **kwargs):
        record_figure(self.figure)
        return original(self, *args, **kwargs)

    print_figure._labgrader = True
    FigureCanvasBase.print_figure = print_figure


# ---------------------------------------------------------------- setup

def call_when_imported(name: str, callback) -> None:
    """callback(module) now if module `name` is imported, else right after the notebook imports it (importing it here
    would cost seconds for notebooks that never use it). Each call installs its own finder; a later one runs first
    and wraps the loader that the earlier ones wrapped, so the callbacks run in the order they were registered."""
    if name in sys.modules:
        callback(sys.modules[name])
        return
    import importlib.abc
    import importlib.util

    class CallOnImport(importlib.abc.MetaPathFinder):
        def find_spec(self, fullname, path=None, target=None):
            if fullname != name:
                return None
            sys.meta_path.remove(self)
            spec = importlib.util.find_spec(name)  # the finders registered earlier wrap the loader first
            if spec is None or spec.loader is None:
                return spec
            exec_module = spec.loader.exec_module

            def exec_and_call(module):
                exec_module(module)
                callback(module)

            spec.loader.exec_module = exec_and_call
            return spec

    finder = CallOnImport()
    _state["finders"].append(finder)     # by identity: the kernel watch knows these finders are the grader's
    sys.meta_path.insert(0, finder)


def install(seed: int, token: str) -> None:
    from IPython import get_ipython
    from IPython.display import display
    shell = get_ipython()
    _state["token"] = token
    _state["display"] = display
    random.seed(seed)
    try:
        import numpy as np
        np.random.seed(seed)
    except ImportError:
        pass
    call_when_imported("torch", lambda torch: torch.manual_seed(seed))
    shell.run_line_magic("matplotlib", "inline")
    _patch_print_figure()
    callbacks = shell.events.callbacks["post_execute"]
    if _record_open_figures_and_emit not in callbacks:
        callbacks.insert(0, _record_open_figures_and_emit)
