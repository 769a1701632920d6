"""Generate the student notebook from the otter-assign master: `python -m autograder.lab.template` (`make template`).

Runs `otter assign solution/lab.ipynb <tmp>` (the master's ASSIGNMENT CONFIG turns off test runs, PDFs and the
autograder zip, and keeps the public tests as files in `tests/`), then copies the student view (`lab.ipynb` and
`tests/`) into `student_template/`, normalised so that regenerating gives byte-identical files:
cell ids renumbered, otter's internal solution tag renamed to its answer tag, notebook written with sorted keys.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

from autograder import SOLUTION, STUDENT_TEMPLATE

MASTER = SOLUTION / "lab.ipynb"
TEMPLATE_DIR = STUDENT_TEMPLATE
NOTEBOOK_NAME = "lab.ipynb"

SOLUTION_TAG = "otter_assign_solution_cell"
ANSWER_TAG = "otter_answer_cell"


class TemplateError(RuntimeError):
    """otter assign failed or produced something unexpected."""


def run_otter_assign(master: Path, result_dir: Path) -> Path:
    """Runs otter assign into result_dir; returns the student output folder."""
    otter = Path(sys.executable).with_name("otter")
    command = [str(otter), "assign", "--no-run-tests", "--no-pdfs", str(master), str(result_dir)]
    if not otter.exists():
        command = [sys.executable, "-m", "otter", *command[1:]]
    done = subprocess.run(command, capture_output=True, text=True)
    student = result_dir / "student"
    if done.returncode != 0 or not (student / NOTEBOOK_NAME).exists():
        raise TemplateError(f"otter assign failed (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")
    return student


def normalise_notebook(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Deterministic ids, no solution tag, no outputs."""
    for index, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{index:03d}"
        tags = cell.metadata.get("tags")
        if tags is not None:
            renamed = [ANSWER_TAG if tag == SOLUTION_TAG else tag for tag in tags]
            cell.metadata["tags"] = list(dict.fromkeys(renamed))
        if cell.cell_type == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
    return nb


def write_notebook(nb: nbformat.NotebookNode, path: Path) -> None:
    nbformat.validate(nb)
    text = json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    path.write_text(text, encoding="utf-8")


def generate(out_dir: Path = TEMPLATE_DIR, master: Path = MASTER) -> list[Path]:
    """Regenerates the student template into out_dir (replacing it); returns the files written."""
    out_dir = Path(out_dir)
    with tempfile.TemporaryDirectory(prefix="lab-assign-") as tmp:
        student = run_otter_assign(Path(master), Path(tmp) / "dist")
        nb = nbformat.read(student / NOTEBOOK_NAME, as_version=4)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        (out_dir / "tests").mkdir(parents=True)
        write_notebook(normalise_notebook(nb), out_dir / NOTEBOOK_NAME)
        written = [out_dir / NOTEBOOK_NAME]
        for test_file in sorted((student / "tests").glob("*.py")):
            target = out_dir / "tests" / test_file.name
            target.write_text(test_file.read_text(encoding="utf-8"), encoding="utf-8")
            written.append(target)
    if len(written) < 2:
        raise TemplateError("otter assign wrote no public test files")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=TEMPLATE_DIR, help="output folder (default student_template/)")
    parser.add_argument("--master", type=Path, default=MASTER)
    args = parser.parse_args(argv)
    written = generate(args.out, args.master)
    for path in written:
        print(path.relative_to(args.out.parent) if args.out.parent in path.parents else path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
