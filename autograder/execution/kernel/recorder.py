"""Code that runs INSIDE the student's kernel. Plain Python source: execute.py injects this file's text into the
graded notebook's first cell (as a private module, `labgrader_kernel_side` in sys.modules, so student names can't
clash with it); tests import it directly.

- `install(seed, token)`: seeds random/numpy/torch, selects matplotlib's inline backend and registers a
  `post_execute` callback at position 0 (before the inline backend's `flush_figures` closes the figures) that
  displays a description of every figure the cell drew (contract.md's FigureDescription, minus "cell", which the
  harvester knows from where the output sits) under FIGURES_MIME. Figures rendered by `plt.show()`/`display(fig)`
  are caught when they are printed (FigureCanvasBase.print_figure), figures left open at the end of the cell by
  the callback; a figure described once is described again only if it changed.
  Images of at least 28x28 px also carry their grey levels (uint8, zlib + base64, capped per cell) for the grader's
  digit classifier (autograder/image_checks.py).
- `run_probe(name, inputs_json)`: runs one probe of contract.md on fresh tensors built from the grader's inputs,
  converts every answer to plain bool/int/float/str/list/dict (so no student object survives into the JSON) and
  displays {"probe", "token", "ok", "value" | "error"} under PROBE_MIME. Never raises.
Nothing here decides a grade: it only reports values.
"""

import json
import math
import random
import sys

PROBE_MIME = "application/vnd.labgrader.probe+json"
FIGURES_MIME = "application/vnd.labgrader.figures+json"
MAX_LINE_POINTS = 1000
MAX_AXES_PER_FIGURE = 400
MAX_FIGURES_PER_CELL = 50
MAX_ERROR_CHARS = 500
# Pixels of drawn images (for the grader's digit classifier): images with both sides >= 28 px and at most
# MAX_IMAGE_PIXELS pixels, as zlib-compressed uint8 in base64, at most MAX_PIXEL_CHARS_PER_CELL characters per cell.
MIN_IMAGE_SIDE = 28
MAX_IMAGE_PIXELS = 400_000
MAX_PIXEL_CHARS_PER_CELL = 400_000
# Figures (PNGs and these descriptions) count only toward the runner's whole-notebook output cap, not its per-cell
# cap for printed text, so the pixel budget above is the only per-cell bound on descriptions.
CONTRACT_NAMES = (
    "FF", "Autoencoder", "VAEEncoder", "VAEDecoder", "VAE", "reparameterize", "kl_divergence",
    "bernoulli_vae_loss", "gaussian_vae_loss", "pca_encode", "pca_generate", "pca_reconstruct", "ae_histories",
    "SWEEP_DIMS", "reconstruction_errors", "vae", "vae_history", "gaussian_vae", "gaussian_vae_history",
)

_state = {"token": "", "pending": [], "display": None}
_pixel_chars = {"cell": 0, "figure": 0}  # pixels queued in this cell / in the figure being described


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


def _to_float(value) -> float:
    """A Python float from a number or a one-element tensor/array."""
    if hasattr(value, "detach"):
        value = value.detach()
    if hasattr(value, "shape") and hasattr(value, "reshape"):
        size = 1
        for dim in value.shape:
            size *= int(dim)
        if size != 1:
            raise ValueError(f"expected a scalar, got shape {[int(d) for d in value.shape]}")
        value = value.reshape(()).item() if hasattr(value, "item") else value
    return float(value)  # always an exact float, whatever __float__ returned


def _float_list(values) -> list:
    if hasattr(values, "detach"):
        values = values.detach().cpu().reshape(-1).tolist()
    return [_to_float(value) for value in values]


def _matrix(values) -> list:
    """A nested list of Python floats from a tensor/array/list of lists."""
    import numpy as np
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    array = np.array(values, dtype=np.float64)
    return array.tolist()


def _shape(value) -> list:
    if not hasattr(value, "shape"):
        raise TypeError(f"expected a tensor, got {type(value).__name__}")
    return [int(dim) for dim in value.shape]


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
    """uint8 array -> base64 of its zlib-compressed bytes (C order); the grader knows the shape."""
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
    if _pixel_chars["cell"] + _pixel_chars["figure"] + len(encoded) > MAX_PIXEL_CHARS_PER_CELL:
        return None
    _pixel_chars["figure"] += len(encoded)
    return {"shape": [int(grey.shape[0]), int(grey.shape[1])], "zlib_base64": encoded}


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
        scatters.append({"n_points": int(offsets.shape[0]) if offsets.ndim else 0, "n_colors": n_colors,
                         "n_values": n_values})
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

    sys.meta_path.insert(0, CallOnImport())


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


# ---------------------------------------------------------------- probes

def _user_ns() -> dict:
    from IPython import get_ipython
    return get_ipython().user_ns


def _lookup(ns: dict, name: str):
    if name not in ns:
        raise NameError(f"name '{name}' is not defined by the notebook")
    return ns[name]


def _tensor(data):
    import torch
    return torch.tensor(data, dtype=torch.float32)


def _seeded(seed: int):
    import torch
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator


def probe_names(ns, inputs):
    return {name: name in ns for name in CONTRACT_NAMES}


def probe_encoder_shapes(ns, inputs):
    encoder_class = _lookup(ns, "VAEEncoder")
    import torch
    results = []
    for number, spec in enumerate(inputs):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(number)
            encoder = encoder_class(int(spec["dim_input"]), int(spec["dim_latent"]))
            x = torch.rand(int(spec["batch"]), int(spec["dim_input"]), generator=_seeded(number))
            with torch.no_grad():
                output = encoder(x)
        if not isinstance(output, (tuple, list)) or len(output) != 2:
            raise TypeError(f"VAEEncoder.forward must return (mu, log_sigma_squared), got {type(output).__name__}")
        mu, log_sigma_squared = output
        results.append({"dim_latent": int(spec["dim_latent"]), "batch": int(spec["batch"]), "mu_shape": _shape(mu),
                        "log_sigma_squared_shape": _shape(log_sigma_squared)})
    return results


def probe_decoder_output(ns, inputs):
    decoder_class = _lookup(ns, "VAEDecoder")
    import torch
    results = []
    for number, spec in enumerate(inputs):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(number)
            decoder = decoder_class(int(spec["dim_latent"]), int(spec["dim_output"]))
            z = torch.randn(int(spec["batch"]), int(spec["dim_latent"]), generator=_seeded(number))
            with torch.no_grad():
                output = decoder(z)
        shape = _shape(output)
        values = output.detach().float()
        results.append({"dim_latent": int(spec["dim_latent"]), "batch": int(spec["batch"]), "shape": shape,
                        "min": _to_float(values.min()), "max": _to_float(values.max())})
    return results


def probe_kl(ns, inputs):
    kl = _lookup(ns, "kl_divergence")
    import torch
    mu, log_sigma_squared = _tensor(inputs["mu"]), _tensor(inputs["log_sigma_squared"])
    with torch.no_grad():
        single = [_to_float(kl(mu[i:i + 1].clone(), log_sigma_squared[i:i + 1].clone())) for i in range(len(mu))]
        batch = _to_float(kl(mu.clone(), log_sigma_squared.clone()))
        doubled = _to_float(kl(torch.cat([mu, mu]), torch.cat([log_sigma_squared, log_sigma_squared])))
    return {"single": single, "batch": batch, "batch_doubled": doubled}


def _require_any(ns, names) -> None:
    if not any(name in ns for name in names):
        raise NameError(f"none of {', '.join(names)} is defined by the notebook")


def probe_loss(ns, inputs):
    """Each loss separately: a missing gaussian_vae_loss doesn't hide a correct bernoulli_vae_loss."""
    _require_any(ns, ("bernoulli_vae_loss", "gaussian_vae_loss"))
    import torch
    value, errors = {}, {}
    for key, name in (("bernoulli", "bernoulli_vae_loss"), ("gaussian", "gaussian_vae_loss")):
        try:
            loss = _lookup(ns, name)
            with torch.no_grad():
                value[key] = _to_float(loss(_tensor(inputs["x"]), _tensor(inputs["x_reconstructed"]),
                                            _tensor(inputs["mu"]), _tensor(inputs["log_sigma_squared"])))
        except Exception as error:
            value[key] = None
            errors[key] = error_text(error)
    if len(errors) == 2:
        raise RuntimeError("; ".join(f"{key}: {text}" for key, text in errors.items()))
    if errors:
        value["errors"] = errors
    return value


def probe_reparameterize(ns, inputs):
    reparameterize = _lookup(ns, "reparameterize")
    import torch
    n = int(inputs["n"])
    mu = _tensor(inputs["mu"]).requires_grad_(True)
    log_sigma_squared = _tensor(inputs["log_sigma_squared"]).requires_grad_(True)
    k = mu.shape[0]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(inputs["seed"]))
        z = reparameterize(mu.unsqueeze(0).expand(n, k), log_sigma_squared.unsqueeze(0).expand(n, k))
    if _shape(z) != [n, k]:
        raise ValueError(f"reparameterize returned shape {_shape(z)} for inputs of shape {[n, k]}")
    samples = z.detach().double()
    result = {"mean": _float_list(samples.mean(0)), "var": _float_list(samples.var(0))}
    grad_mu = grad_lss = False
    if z.requires_grad:
        z.sum().backward()
        grad_mu = mu.grad is not None and bool((mu.grad != 0).any().item())
        grad_lss = log_sigma_squared.grad is not None and bool((log_sigma_squared.grad != 0).any().item())
    result["grad_mu_nonzero"] = bool(grad_mu)
    result["grad_log_sigma_squared_nonzero"] = bool(grad_lss)
    return result


def probe_pca(ns, inputs):
    _require_any(ns, ("pca_encode", "pca_reconstruct", "pca_generate"))
    import numpy as np
    from sklearn.decomposition import PCA
    data = np.array(inputs["data"], dtype=np.float64)
    coordinates = np.array(inputs["coordinates"], dtype=np.float64)
    pca = PCA(n_components=int(inputs["k"]), svd_solver="full").fit(data)
    value, errors = {}, {}
    calls = (("encode", "pca_encode", data), ("reconstruct", "pca_reconstruct", data),
             ("generate", "pca_generate", coordinates))
    for key, name, argument in calls:
        try:
            value[key] = _matrix(_lookup(ns, name)(pca, argument.copy()))
        except Exception as error:
            value[key] = None
            errors[key] = error_text(error)
    if len(errors) == len(calls):
        raise RuntimeError("; ".join(f"{key}: {text}" for key, text in errors.items()))
    if errors:
        value["errors"] = errors
    return value


def probe_histories(ns, inputs):
    value, errors = {}, {}
    for name in ("ae_histories", "vae_history", "gaussian_vae_history"):
        try:
            if name not in ns:
                value[name] = None
            elif name == "ae_histories":
                value[name] = [_float_list(run) for run in ns[name]]
            else:
                value[name] = _float_list(ns[name])
        except Exception as error:
            value[name] = None
            errors[name] = error_text(error)
    if errors:
        value["errors"] = errors
    return value


def probe_sweep(ns, inputs):
    dims = [int(d) for d in _lookup(ns, "SWEEP_DIMS")]
    errors = _lookup(ns, "reconstruction_errors")
    if not isinstance(errors, dict):
        raise TypeError(f"reconstruction_errors must be a dict, got {type(errors).__name__}")
    return {"SWEEP_DIMS": dims, "reconstruction_errors": {str(key): _float_list(values)
                                                           for key, values in errors.items()}}


def probe_vae_decode(ns, inputs):
    """vae.decoder on the grader's z points ({"grid": [[z1, z2]...], "prior": [...]}) -> per key
    {"count", "zlib_base64"}: the decoded images as uint8 (count, 28, 28), values in [0, 1] scaled by 255."""
    decoder = _lookup(ns, "vae").decoder
    import torch
    try:
        device = next(decoder.parameters()).device
    except Exception:
        device = torch.device("cpu")
    result = {}
    for key in ("grid", "prior"):
        z = _tensor(inputs[key])
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            output = decoder(z.to(device))
        shape = _shape(output)
        if not shape or shape[0] != len(z) or math.prod(shape[1:]) != 784:
            raise ValueError(f"vae.decoder returned shape {shape} for {len(z)} z points, expected ({len(z)}, 784)")
        values = torch.nan_to_num(output.detach().float().cpu().reshape(len(z), 784), nan=0.0)
        pixels = (values.clamp(0.0, 1.0) * 255.0).round().to(torch.uint8).numpy()
        result[key] = {"count": len(z), "zlib_base64": encode_uint8(pixels)}
    return result


PROBES = {
    "names": probe_names,
    "encoder_shapes": probe_encoder_shapes,
    "decoder_output": probe_decoder_output,
    "kl": probe_kl,
    "loss": probe_loss,
    "reparameterize": probe_reparameterize,
    "pca": probe_pca,
    "histories": probe_histories,
    "sweep": probe_sweep,
    "vae_decode": probe_vae_decode,
}


def probe_answer(name: str, inputs, ns: dict) -> dict:
    """{"ok": True, "value": plain JSON} or {"ok": False, "error": "Type: message"}; never raises."""
    try:
        value = plain(PROBES[name](ns, inputs))
        json.dumps(value, allow_nan=False)
        return {"ok": True, "value": value}
    except Exception as error:
        return {"ok": False, "error": error_text(error)}


def run_probe(name: str, inputs_json: str) -> None:
    import io
    import contextlib
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        answer = probe_answer(name, json.loads(inputs_json), _user_ns())
    display = _state["display"]
    if display is None:
        from IPython.display import display
    display({PROBE_MIME: {"probe": name, "token": _state["token"], **answer}}, raw=True)
