"""Execute the reference solution at a work profile and collect its numbers and figures.

    python -m autograder.lab.solution_run --profile full|grading|tiny --out DIR      (`make solution`: full)

Papermill-style: the profile's knobs are assigned in a cell inserted right after the notebook's `parameters` cell
(with DATA_DIR pointing at this repo's data_cache). The master `solution/lab.ipynb` is executed with nbclient in a
python3 kernel of the running interpreter, in a scratch working folder. Two more cells are injected: a first cell
that records a JSON description of every matplotlib figure before it is shown, and a last cell that prints the
notebook's results as one JSON line (no pickles). Written to DIR:

* `lab.ipynb`: the executed notebook;
* `figures/figure-NN-cell-CCC.png`: every image/png output, in order;
* `metrics.json`: test negative ELBO of the Bernoulli VAE (nats per image), held-out reconstruction MSE per latent
  size for the autoencoder and PCA, per-epoch losses, the Gaussian VAE's fraction of clipped gradient steps per
  epoch, the notebook's `part_times`, total wall time, the figure
  descriptions, the profile's knobs, the device and the machine's load.
"""
from __future__ import annotations

import argparse
import base64
import copy
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from autograder import DATA_CACHE, SOLUTION
from autograder.lab.profiles import get_profile

MASTER = SOLUTION / "lab.ipynb"
METRICS_MARKER = "LAB_SOLUTION_JSON "

# Records every figure (before plt.show or the inline backend closes it) as plain JSON-able dicts. Registered before
# matplotlib.pyplot is imported, so that it runs before the inline backend's own post_execute flush.
FIGURE_RECORDER = r'''
# Injected by autograder.lab.solution_run: describes every matplotlib figure before it is shown.
def _lab_install_figure_recorder():
    import sys
    import IPython
    import numpy

    shell = IPython.get_ipython()
    facts = []

    def describe_axes(ax):
        from matplotlib.collections import PathCollection
        scatters = []
        for collection in ax.collections:
            if not isinstance(collection, PathCollection):
                continue
            collection.update_scalarmappable()
            colours = numpy.asarray(collection.get_facecolors())
            values = collection.get_array()
            scatters.append({
                "n_points": int(len(collection.get_offsets())),
                "n_colors": int(len(numpy.unique(numpy.round(colours, 4), axis=0))) if len(colours) else 0,
                "n_values": int(len(numpy.unique(numpy.asarray(values)))) if values is not None else 0,
            })
        legend = ax.get_legend()
        return {
            "title": ax.get_title(),
            "xlabel": ax.get_xlabel(),
            "ylabel": ax.get_ylabel(),
            "position": [float(v) for v in ax.get_position().bounds],
            "images": [{"shape": list(numpy.asarray(image.get_array()).shape)} for image in ax.get_images()],
            "scatters": scatters,
            "lines": [{"x": [float(v) for v in numpy.asarray(line.get_xdata(), dtype=float)[:1000]],
                       "y": [float(v) for v in numpy.asarray(line.get_ydata(), dtype=float)[:1000]],
                       "label": str(line.get_label())} for line in ax.get_lines()],
            "legend": [text.get_text() for text in legend.get_texts()] if legend is not None else [],
        }

    def record_open_figures(*args, **kwargs):
        pyplot = sys.modules.get("matplotlib.pyplot")
        if pyplot is None:
            return
        for number in pyplot.get_fignums():
            figure = pyplot.figure(number)
            if getattr(figure, "_lab_recorded", False):
                continue
            figure._lab_recorded = True
            suptitle = figure._suptitle.get_text() if figure._suptitle is not None else ""
            facts.append({"cell": shell.execution_count, "suptitle": suptitle,
                          "axes": [describe_axes(ax) for ax in figure.axes]})

    shell.events.register("post_execute", record_open_figures)
    import matplotlib.pyplot as pyplot
    original_show = pyplot.show

    def show(*args, **kwargs):
        record_open_figures()
        return original_show(*args, **kwargs)

    pyplot.show = show
    return facts


_lab_figure_facts = _lab_install_figure_recorder()
'''

RESULTS_CELL = r'''
# Injected by autograder.lab.solution_run: the notebook's results as one JSON line.
import json as _lab_json
import os as _lab_os


def _lab_floats(values):
    return [float(v) for v in values]


print("%s" + _lab_json.dumps({
    "vae_test_nelbo": float(vae_test_nelbo),
    "SWEEP_DIMS": [int(d) for d in SWEEP_DIMS],
    "reconstruction_errors": {name: _lab_floats(v) for name, v in reconstruction_errors.items()},
    "ae_histories": [_lab_floats(history) for history in ae_histories],
    "vae_history": _lab_floats(vae_history),
    "gaussian_vae_history": _lab_floats(gaussian_vae_history),
    "gaussian_vae_clipped_fractions": _lab_floats(getattr(gaussian_vae, "clipped_fractions", [])),
    "part_times": {part: float(seconds) for part, seconds in part_times.items()},
    "device": str(device),
    "torch_threads": int(torch.get_num_threads()),
    "load_average": list(_lab_os.getloadavg()),
    "figures": _lab_figure_facts,
}))
''' % METRICS_MARKER


class SolutionRunError(RuntimeError):
    """The solution notebook failed to execute; the message names the failing cell."""


def find_parameters_cell(nb: nbformat.NotebookNode) -> int:
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", []):
            return index
    raise SolutionRunError("the notebook has no code cell tagged 'parameters'")


def parameters_source(knobs: dict) -> str:
    """One plain assignment per line (repr of each value)."""
    lines = ["# Parameters injected by autograder.lab.solution_run"]
    lines += [f"{name} = {value!r}" for name, value in knobs.items()]
    return "\n".join(lines)


def prepare_notebook(master: Path, knobs: dict, extra_code: list[str] = ()) -> nbformat.NotebookNode:
    """The master with the figure recorder first, the knobs after the parameters cell, results (and extra) last."""
    nb = nbformat.read(master, as_version=4)
    nb = copy.deepcopy(nb)
    position = find_parameters_cell(nb)
    injected = nbformat.v4.new_code_cell(parameters_source(knobs), metadata={"tags": ["injected-parameters"]})
    nb.cells.insert(position + 1, injected)
    recorder = nbformat.v4.new_code_cell(FIGURE_RECORDER.strip(), metadata={"tags": ["injected-figure-recorder"]})
    nb.cells.insert(0, recorder)
    nb.cells.append(nbformat.v4.new_code_cell(RESULTS_CELL.strip(), metadata={"tags": ["injected-results"]}))
    for source in extra_code:
        nb.cells.append(nbformat.v4.new_code_cell(source.strip(), metadata={"tags": ["injected-extra"]}))
    for index, cell in enumerate(nb.cells):
        cell["id"] = f"run-{index:03d}"
    return nb


def marked_json(nb: nbformat.NotebookNode, marker: str = METRICS_MARKER) -> list[dict]:
    """Every JSON object printed on a stdout line starting with marker, in order."""
    found = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") != "stream" or output.get("name") != "stdout":
                continue
            for line in output.get("text", "").splitlines():
                if line.startswith(marker):
                    found.append(json.loads(line[len(marker):]))
    return found


def extract_figures(nb: nbformat.NotebookNode, folder: Path) -> list[Path]:
    """Writes every image/png output as a PNG file; returns the paths in notebook order."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "image/png" in data:
                path = folder / f"figure-{len(written) + 1:02d}-cell-{index:03d}.png"
                path.write_bytes(base64.b64decode(data["image/png"]))
                written.append(path)
    return written


def check_data(data_dir: Path) -> None:
    if not (data_dir / "MNIST" / ".verified").exists():
        raise SolutionRunError(f"no verified MNIST cache in {data_dir}: run `make data` first")


def execute(profile: str | dict, out_dir: Path | None = None, *, master: Path = MASTER,
            data_dir: Path = DATA_CACHE, device: str | None = None, cell_timeout: int = 1800,
            extra_code: list[str] = ()) -> dict:
    """Runs the solution at a profile (name or knob dict). Returns {"metrics", "extra", "notebook", "figures"}.

    With out_dir, writes lab.ipynb, figures/*.png and metrics.json there (also when a cell fails, without metrics).
    extra_code: sources of cells appended at the end; what they print after METRICS_MARKER comes back in "extra".
    """
    knobs = get_profile(profile) if isinstance(profile, str) else dict(profile)
    data_dir = Path(data_dir).resolve()
    check_data(data_dir)
    knobs["DATA_DIR"] = str(data_dir)
    if device is not None:
        knobs["DEVICE"] = device
    nb = prepare_notebook(Path(master), knobs, extra_code)
    load_before = list(os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="lab-solution-") as workdir:
        client = NotebookClient(nb, timeout=cell_timeout, kernel_name="python3",
                                resources={"metadata": {"path": workdir}})
        start = time.perf_counter()
        error = None
        try:
            client.execute()
        except CellExecutionError as exc:
            error = exc
        wall = time.perf_counter() - start
    figures = extract_figures(nb, Path(out_dir) / "figures") if out_dir is not None else []
    if out_dir is not None:
        nbformat.write(nb, Path(out_dir) / "lab.ipynb")
    if error is not None:
        raise SolutionRunError(f"the solution notebook failed:\n{error}") from None
    found = marked_json(nb)
    if not found:
        raise SolutionRunError("the results cell printed no JSON")
    results, extra = found[0], found[1:]
    metrics = {
        "profile": profile if isinstance(profile, str) else "custom",
        "knobs": knobs,
        "vae_test_nelbo": results["vae_test_nelbo"],
        "vae_test_nelbo_estimator": "analytic KL + binary cross-entropy averaged over 10 samples of z per image, "
                                    "on the first N_TEST test images (nats per image)",
        "reconstruction_mse": {"SWEEP_DIMS": results["SWEEP_DIMS"], **results["reconstruction_errors"]},
        "final_losses": {
            "autoencoder": [history[-1] for history in results["ae_histories"]],
            "vae": results["vae_history"][-1],
            "gaussian_vae": results["gaussian_vae_history"][-1],
        },
        "histories": {name: results[name] for name in ("ae_histories", "vae_history", "gaussian_vae_history")},
        "gaussian_vae_clipped_fractions": results["gaussian_vae_clipped_fractions"],
        "part_times": results["part_times"],
        "total_wall_time_s": wall,
        "n_png_outputs": sum(1 for cell in nb.cells for output in cell.get("outputs", [])
                             if "image/png" in output.get("data", {})),
        "device": results["device"],
        "torch_threads": results["torch_threads"],
        "cpu_count": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_after": results["load_average"],
        "figures": results["figures"],
    }
    if out_dir is not None:
        (Path(out_dir) / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    return {"metrics": metrics, "extra": extra, "notebook": nb, "figures": figures}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Execute the reference solution at a work profile.")
    parser.add_argument("--profile", default="full", choices=["full", "grading", "tiny"])
    parser.add_argument("--out", type=Path, required=True, help="output folder (created)")
    parser.add_argument("--data-dir", type=Path, default=DATA_CACHE)
    parser.add_argument("--device", default=None, help="override DEVICE (default: the profile's, 'auto')")
    parser.add_argument("--cell-timeout", type=int, default=1800, help="seconds per cell")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        result = execute(args.profile, args.out, data_dir=args.data_dir, device=args.device,
                         cell_timeout=args.cell_timeout)
    except SolutionRunError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    metrics = result["metrics"]
    summary = {key: metrics[key] for key in ("profile", "vae_test_nelbo", "total_wall_time_s", "part_times",
                                             "device", "torch_threads", "load_average_before",
                                             "load_average_after", "n_png_outputs")}
    summary["reconstruction_mse"] = metrics["reconstruction_mse"]
    print(json.dumps(summary, indent=1))
    print(f"wrote {args.out}/lab.ipynb, {len(result['figures'])} figures, metrics.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
