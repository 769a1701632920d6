"""The bundled demo class: `python -m autograder.lab.demo` writes `autograder/demo_class/`.

Built from the master notebook (through otter assign, so the submissions look like a filled-in template) and the
student template, with the mistakes this lab is known for, one per student. Each mistake is a text edit of the
reference solution that must apply exactly once: when the solution changes under it, regenerating fails loudly
instead of silently producing a correct "mistake". `EXPECTED_LOSSES` says which rubric items each one must lose.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import nbformat

from autograder.lab.template import (MASTER, NOTEBOOK_NAME, TEMPLATE_DIR, embed_public_tests, normalise_notebook,
                                     public_tests, run_otter_assign)
from autograder.reports.written_answers import GRADING_GUIDE_MARKER, strip_grading_guide

DEMO_DIR = Path(__file__).resolve().parent / "demo_class"


@dataclass(frozen=True)
class Mistake:
    file_name: str
    description: str
    edits: tuple[tuple[str, str], ...]   # (text in the solution, replacement), each must match exactly once


MISTAKES = (
    Mistake("kl_summed_over_batch.ipynb", "KL summed over the batch instead of averaged",
            (("    return per_image.mean()", "    return per_image.sum()"),)),
    Mistake("logvar_as_std.ipynb", "log-variance used as a standard deviation in the reparameterisation",
            (("    return mu + eps * torch.exp(0.5 * log_sigma_squared)", "    return mu + eps * log_sigma_squared"),)),
    Mistake("recon_per_pixel_mean.ipynb", "reconstruction averaged per pixel while the KL is summed per sample",
            (('F.binary_cross_entropy(x_reconstructed, x, reduction="sum") / x.shape[0]',
              "F.binary_cross_entropy(x_reconstructed, x)"),)),
    Mistake("z_equals_mu.ipynb", "z = mu: no sampling in the reparameterisation",
            (("    eps = torch.randn_like(mu)\n    return mu + eps * torch.exp(0.5 * log_sigma_squared)",
              "    return mu"),)),
    Mistake("wrong_figures.ipynb", "a 10x10 decoded grid and a scatter of 500 points",
            (("random_subset(len(all_train_images), SCATTER_SIZE, SEED + 1)",
              "random_subset(len(all_train_images), 500, SEED + 1)"),
             ("np.linspace(low[0], high[0], 15), np.linspace(high[1], low[1], 15)",
              "np.linspace(low[0], high[0], 10), np.linspace(high[1], low[1], 10)"),
             ("stitch_images(grid_images, 15, 15)", "stitch_images(grid_images, 10, 10)"))),
    Mistake("exception_halfway.zip", "an exception halfway through (the reconstruction sweep), sent as a zip",
            (("reconstruction_errors = {", "raise ValueError('shapes do not match')\nreconstruction_errors = {"),)),
)

# Rubric items each demo submission must lose (all others earn full points); the template loses nearly all.
EXPECTED_LOSSES = {
    "Ada_Lovelace": set(),
    "kl_summed_over_batch": {"kl_batch_mean", "loss_proportions"},
    "logvar_as_std": {"reparameterization"},
    "recon_per_pixel_mean": {"loss_proportions", "decoded_grid"},   # collapsed: its grid spans none of where z lives
    "z_equals_mu": {"reparameterization"},
    "wrong_figures": {"latent_scatter", "decoded_grid"},
    "exception_halfway": {"reconstruction_sweep"},
}


def apply_edits(notebook: nbformat.NotebookNode, edits) -> nbformat.NotebookNode:
    notebook = nbformat.from_dict(json.loads(json.dumps(notebook)))
    for old, new in edits:
        hits = [cell for cell in notebook.cells if cell.cell_type == "code" and old in cell.source]
        count = sum(cell.source.count(old) for cell in hits)
        if count != 1:
            raise ValueError(f"demo edit expects {old!r} exactly once in the solution's code, found {count}: "
                             "update autograder/lab/demo.py to the new solution")
        hits[0].source = hits[0].source.replace(old, new)
    return notebook


def write_notebook(notebook: nbformat.NotebookNode, path: Path) -> None:
    path.write_text(json.dumps(notebook, indent=1, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")


def filled_in_notebook(master: Path = MASTER) -> nbformat.NotebookNode:
    """The master as otter's autograder notebook (the solution code, otter's markers left in comments and strings),
    with the public tests inside it as in the student's notebook, and the model answers without the TA's grading
    guides (a student's notebook never holds them)."""
    with tempfile.TemporaryDirectory(prefix="lab-demo-") as tmp:
        student = run_otter_assign(master, Path(tmp) / "dist")
        notebook = nbformat.read(Path(tmp) / "dist" / "autograder" / NOTEBOOK_NAME, as_version=4)
        notebook = embed_public_tests(notebook, public_tests(student / "tests"))
    for cell in notebook.cells:
        if cell.cell_type == "markdown" and GRADING_GUIDE_MARKER in cell.source:
            cell.source = strip_grading_guide(cell.source)
    return normalise_notebook(notebook)


def build(out_dir: Path = DEMO_DIR, master: Path = MASTER, template_dir: Path = TEMPLATE_DIR) -> list[Path]:
    solution = filled_in_notebook(master)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    write_notebook(solution, out_dir / "Assignment1 Ada Lovelace.ipynb")
    (out_dir / "Assignment1 Ada Lovelace.pdf").write_bytes(b"%PDF-1.4\n% demo report placeholder\n%%EOF\n")
    shutil.copyfile(template_dir / NOTEBOOK_NAME, out_dir / "untouched_template.ipynb")
    for mistake in MISTAKES:
        notebook = apply_edits(solution, mistake.edits)
        notebook.metadata["demo_mistake"] = mistake.description
        target = out_dir / mistake.file_name
        if target.suffix == ".zip":
            with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
                info = zipfile.ZipInfo(f"{target.stem}/{NOTEBOOK_NAME}", date_time=(2026, 1, 1, 0, 0, 0))
                archive.writestr(info, json.dumps(notebook, indent=1, sort_keys=True) + "\n")
        else:
            write_notebook(notebook, target)
    return sorted(out_dir.iterdir())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEMO_DIR)
    args = parser.parse_args(argv)
    for path in build(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
