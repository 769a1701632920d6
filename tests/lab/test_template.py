"""The committed student template: fresh, leak-free, complete (see autograder/template.py)."""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from autograder.lab import template

REPO = Path(__file__).resolve().parents[2]
MASTER = REPO / "solution" / "lab.ipynb"
TEMPLATE = REPO / "student_template"
STALE = "student_template/ is stale: run `make template`"

# Lines too generic to count as leaked: blank, `pass`, `...`, lone brackets and punctuation.
TRIVIAL = re.compile(r"^(|pass|\.\.\.|[\s\(\)\[\]\{\},:;]+|return|else:|try:|\"\"\"|''')$")


def normalised(line: str) -> str:
    return line.strip()


def raw_marker(cell, word: str) -> bool:
    return cell.cell_type == "raw" and re.match(rf"#\s+{word}\b", cell.source.strip(), flags=re.IGNORECASE) is not None


def split_master():
    """(solution lines, visible lines, hidden-test lines, manual question names, prompts, public test names)."""
    nb = nbformat.read(MASTER, as_version=4)
    solution, visible, hidden = set(), set(), set()
    manual, prompts, public_tests = [], {}, set()
    in_solution_block = in_tests = False
    question = None
    for cell in nb.cells:
        if raw_marker(cell, "begin question"):
            question = dict(re.findall(r"^(\w+):\s*(.+)$", cell.source, flags=re.MULTILINE))
            if question.get("manual") == "true":
                manual.append(question["name"])
            continue
        if raw_marker(cell, "end question"):
            question = None
            continue
        if raw_marker(cell, "begin solution"):
            in_solution_block = True
            continue
        if raw_marker(cell, "end solution"):
            in_solution_block = False
            continue
        if raw_marker(cell, "begin tests"):
            in_tests = True
            continue
        if raw_marker(cell, "end tests"):
            in_tests = False
            continue
        if cell.cell_type == "raw":
            continue
        lines = cell.source.splitlines()
        if in_tests:
            is_hidden = bool(lines) and lines[0].lstrip().startswith("#") and "hidden" in lines[0].lower()
            is_hidden = is_hidden or re.search(r"hidden:\s*true", cell.source, flags=re.IGNORECASE) is not None
            (hidden if is_hidden else visible).update(normalised(line) for line in lines)
            if not is_hidden:
                public_tests.add(question["name"])
            continue
        if cell.cell_type == "markdown":
            if in_solution_block:
                solution.update(normalised(line) for line in lines)
            else:
                visible.update(normalised(line) for line in lines)
                if question is not None and question.get("manual") == "true" and not lines[0].startswith("_Type"):
                    prompts[question["name"]] = lines[0]
            continue
        inside = False
        for line in lines:
            stripped = line.strip()
            if stripped == "# BEGIN SOLUTION":
                inside = True
            elif stripped == "# END SOLUTION":
                inside = False
            elif inside or re.search(r"# ?SOLUTION\s*$", line):
                solution.add(normalised(line))
            else:
                visible.add(normalised(line))
    return solution, visible, hidden, manual, prompts, public_tests


def template_lines() -> dict[str, list[str]]:
    """Every line of the template, by file (the notebook's cells count as one file)."""
    nb = nbformat.read(TEMPLATE / "lab.ipynb", as_version=4)
    files = {"lab.ipynb": [line for cell in nb.cells for line in cell.source.splitlines()]}
    for path in sorted((TEMPLATE / "tests").glob("*.py")):
        files[f"tests/{path.name}"] = path.read_text().splitlines()
    return files


@pytest.fixture(scope="module")
def student_nb():
    return nbformat.read(TEMPLATE / "lab.ipynb", as_version=4)


def test_template_is_fresh(tmp_path):
    fresh = tmp_path / "student_template"
    template.generate(fresh)
    committed = sorted(p.relative_to(TEMPLATE) for p in TEMPLATE.rglob("*") if p.is_file())
    generated = sorted(p.relative_to(fresh) for p in fresh.rglob("*") if p.is_file())
    assert committed == generated, f"{STALE} (files differ: {sorted(set(committed) ^ set(generated))})"
    for name in generated:
        assert (fresh / name).read_bytes() == (TEMPLATE / name).read_bytes(), f"{STALE} ({name} differs)"


def test_generation_is_deterministic(tmp_path):
    template.generate(tmp_path / "a")
    template.generate(tmp_path / "b")
    for path in sorted((tmp_path / "a").rglob("*.*")):
        twin = tmp_path / "b" / path.relative_to(tmp_path / "a")
        assert path.read_bytes() == twin.read_bytes(), f"{path.name} differs between two generations"


def test_no_solution_line_leaks():
    solution, visible, hidden, *_ = split_master()
    secret = {line for line in solution - visible if not TRIVIAL.match(line)}
    assert len(secret) > 100, "the master should hide its solutions in solution blocks"
    leaks = [(name, line) for name, lines in template_lines().items() for line in lines
             if normalised(line) in secret]
    assert not leaks, f"solution lines leaked into the template: {leaks[:10]}"


def test_no_hidden_test_or_marker_leaks():
    _, visible, hidden, *_ = split_master()
    secret_tests = {line for line in hidden - visible if not TRIVIAL.match(line)}
    for name, lines in template_lines().items():
        text = "\n".join(lines)
        assert not [line for line in lines if normalised(line) in secret_tests], f"hidden test text in {name}"
        for marker in ("BEGIN SOLUTION", "END SOLUTION", "# SOLUTION", "BEGIN TESTS", "# BEGIN QUESTION",
                       "ASSIGNMENT CONFIG", "_Model answer._", "_Grading guide._", "hidden=True"):
            assert marker not in text, f"{marker!r} left in {name}"


def test_placeholders_are_there(student_nb):
    code = [cell.source for cell in student_nb.cells if cell.cell_type == "code"]
    todo_cells = [source for source in code if "# TODO" in source]
    assert len(todo_cells) >= 15, f"only {len(todo_cells)} code cells with a TODO"
    for source in todo_cells:
        assert re.search(r"^\s*\.\.\.\s*$", source, flags=re.MULTILINE), f"a TODO without `...`:\n{source}"
    text = "\n".join(code)
    for name in ("pca_encode", "pca_generate", "pca_reconstruct", "reparameterize", "kl_divergence",
                 "bernoulli_vae_loss", "gaussian_vae_loss", "train_vae"):
        assert re.search(rf"^def {name}\(", text, flags=re.MULTILINE), f"the template lacks the stub of {name}"
    for name in ("VAEEncoder", "VAEDecoder", "VAE"):
        assert re.search(rf"^class {name}\(nn\.Module\):", text, flags=re.MULTILINE), f"the template lacks {name}"


def test_given_autoencoder_is_complete(student_nb):
    cell = next(c for c in student_nb.cells if c.cell_type == "code" and "class Autoencoder(" in c.source)
    assert "class FF(nn.Module)" in cell.source and "..." not in cell.source
    import torch
    from torch import nn

    namespace = {"torch": torch, "nn": nn}
    exec(cell.source, namespace)
    model = namespace["Autoencoder"](784, 32, 2)
    assert isinstance(model.encoder, namespace["FF"])
    assert tuple(model.encoder(torch.rand(3, 784)).shape) == (3, 2)
    out = model(torch.rand(3, 784))
    assert tuple(out.shape) == (3, 784) and 0 <= out.min() and out.max() <= 1


def test_parameters_cell_is_tagged_and_matches_master(student_nb):
    tagged = [c for c in student_nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell should be tagged `parameters`"
    master = nbformat.read(MASTER, as_version=4)
    master_cell = next(c for c in master.cells if "parameters" in c.metadata.get("tags", []))
    assert tagged[0].source == master_cell.source
    for knob in ("SEED", "DATA_DIR", "VAE_EPOCHS", "SCATTER_SIZE"):
        assert re.search(rf"^{knob} = ", tagged[0].source, flags=re.MULTILINE)


def test_written_answer_cells_are_present(student_nb):
    *_, manual, prompts, public_tests = split_master()
    assert len(manual) >= 9, f"expected the written questions of the seeds, found {manual}"
    cells = student_nb.cells
    for name in manual:
        prompt = prompts[name]
        index = next((i for i, c in enumerate(cells) if prompt in c.source), None)
        assert index is not None, f"the prompt of {name} is missing"
        answer = cells[index + 1]
        assert answer.cell_type == "markdown" and "otter_answer_cell" in answer.metadata.get("tags", []), \
            f"no answer cell right after the prompt of {name}"
    answer_cells = [c for c in cells if "otter_answer_cell" in c.metadata.get("tags", []) and c.cell_type == "markdown"]
    assert len(answer_cells) == len(manual)


def test_check_cells_match_test_files(student_nb):
    *_, public_tests = split_master()
    checked = set(re.findall(r'grader\.check\("(\w+)"\)', "\n".join(c.source for c in student_nb.cells)))
    files = {p.stem for p in (TEMPLATE / "tests").glob("*.py")}
    assert checked == files == public_tests
