"""Generate the student notebook from the otter-assign master: `python -m autograder.lab.template` (`make template`).

Runs `otter assign solution/lab.ipynb <tmp>` (the master's ASSIGNMENT CONFIG turns off test runs, PDFs and the
autograder zip, and keeps the public tests as files in `tests/`), then copies the student view (`lab.ipynb` and
`tests/`) into `student_template/`, normalised so that regenerating gives byte-identical files:
cell ids renumbered, otter's internal solution tag renamed to its answer tag, notebook written with sorted keys.

The public tests also travel inside the notebook (`embed_public_tests`): the master's self-checks cell has the line
`PUBLIC_TESTS = {}`, which becomes a dict of every public test file's source, and the cell writes them to `tests/`
before it creates otter's grader. So the notebook alone runs its self-checks, on Colab too (otter's own
notebook-metadata tests cannot work there: otter refuses them on Colab, where the kernel cannot read the notebook
file). `student_template/tests/` is still written, for the grader (it copies it next to every submission).
"""
from __future__ import annotations

import argparse
import ast
import json
import re
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


# The master's self-checks cell assigns an empty dict on this line; the notebooks handed out assign the public tests.
PUBLIC_TESTS_LINE = re.compile(r"^PUBLIC_TESTS = \{\}.*$", flags=re.MULTILINE)


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


def public_tests(tests_dir: Path) -> dict[str, str]:
    """{test name: source} of otter's public test files (tests/*.py), sorted by name."""
    return {path.stem: path.read_text(encoding="utf-8") for path in sorted(Path(tests_dir).glob("*.py"))}


def _source_literal(text: str) -> str:
    """A raw triple-quoted literal of text when it can hold it (readable in the notebook), else repr()."""
    if "'''" not in text and not text.endswith(("\\", "'")) and "\r" not in text:
        return "r'''" + text + "'''"
    return repr(text)


def embed_public_tests(nb: nbformat.NotebookNode, tests: dict[str, str]) -> nbformat.NotebookNode:
    """The notebook with `tests` in its self-checks cell (the line `PUBLIC_TESTS = {}`), that cell's source folded
    away in Jupyter and Colab."""
    cells = [cell for cell in nb.cells if cell.cell_type == "code" and PUBLIC_TESTS_LINE.search(cell.source)]
    if len(cells) != 1:
        raise TemplateError(f"expected one self-checks cell with the line `PUBLIC_TESTS = {{}}`, found {len(cells)}")
    literal = "PUBLIC_TESTS = {\n" + "".join(f"    {name!r}: {_source_literal(source)},\n"
                                            for name, source in tests.items()) + "}"
    if ast.literal_eval(literal.split(" = ", 1)[1]) != tests:
        raise TemplateError("the embedded public tests do not read back as the test files")
    cell = cells[0]
    cell.source = PUBLIC_TESTS_LINE.sub(lambda _: literal, cell.source, count=1)
    cell.metadata["jupyter"] = {"source_hidden": True}
    cell.metadata["cellView"] = "form"
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
        tests = public_tests(student / "tests")
        if not tests:
            raise TemplateError("otter assign wrote no public test files")
        nb = embed_public_tests(nb, tests)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        (out_dir / "tests").mkdir(parents=True)
        write_notebook(normalise_notebook(nb), out_dir / NOTEBOOK_NAME)
        written = [out_dir / NOTEBOOK_NAME]
        for name, source in tests.items():
            target = out_dir / "tests" / f"{name}.py"
            target.write_text(source, encoding="utf-8")
            written.append(target)
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
