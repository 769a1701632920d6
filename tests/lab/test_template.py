"""The committed student template: fresh, leak-free, complete (see autograder/lab/template.py); alone in a folder (as on
Colab) it runs every public self-check, which fail on its stubs naming the task and pass on the master's solutions."""
from __future__ import annotations

import ast
import copy
import os
import re
from pathlib import Path

import nbformat
import pytest
import yaml
from nbclient import NotebookClient

from autograder.lab import demo, profiles, solution_run, template

REPO = Path(__file__).resolve().parents[2]
MASTER = REPO / "solution" / "lab.ipynb"
TEMPLATE = REPO / "student_template"
RUBRIC = REPO / "autograder" / "rubric.yaml"
STALE = "student_template/ is stale: run `make template`"
CHECK = re.compile(r'grader\.check\("(\w+)"\)')
STUB = re.compile(r'raise NotImplementedError\("(Task \d[a-z]?)\b[^"]*"\)')

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
            if stripped.startswith("# BEGIN SOLUTION"):
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
        todos, stubs = source.count("# TODO"), len(STUB.findall(source))
        assert stubs >= todos, f"every TODO should raise NotImplementedError(\"Task ...: ...\"):\n{source}"
        assert not re.search(r"^\s*\.\.\.\s*$", source, flags=re.MULTILINE), f"a bare `...` stub:\n{source}"
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


def test_check_all_cell_ends_the_notebook(student_nb):
    code = [cell.source for cell in student_nb.cells if cell.cell_type == "code"]
    assert code[-1].strip() == "grader.check_all()"


def test_written_answer_points_agree_with_the_rubric():
    """One source for the written answers' points: the master's otter `points:` equal rubric.yaml's manual_items."""
    nb = nbformat.read(MASTER, as_version=4)
    master = {}
    for cell in nb.cells:
        if raw_marker(cell, "begin question"):
            config = yaml.safe_load(cell.source.split("\n", 1)[1])
            if config.get("manual"):
                master[config["name"]] = config.get("points")
    rubric = {item["id"]: item["points"] for item in yaml.safe_load(RUBRIC.read_text())["manual_items"]}
    assert master == rubric, "the master's written questions and rubric.yaml's manual_items disagree on points"


def test_hand_in_rules_are_the_feedback_words(student_nb):
    """The template states the submission rules (file names, notebook + PDF report, no archive, plagiarism) in the
    words the grader's feedback uses for a missing PDF."""
    from autograder.reports.feedback import FLAG_NOTES

    intro = student_nb.cells[0].source
    note = FLAG_NOTES["report_pdf_missing"]
    rule = note.split(". ", 1)[1]
    assert rule in intro, f"the template should say, word for word: {rule}"
    for words in ("Assignment1 FirstName LastName.ipynb", "Assignment1 FirstName LastName.pdf", "not an archive",
                  "penalty", "Plagiarism", "report", "Comment your code"):
        assert words in intro, words
    readme = (REPO / "README.md").read_text()
    assert rule in readme, "README.md should state the same hand-in rule"


def public_tests_in(notebook) -> dict:
    cell = next(c for c in notebook.cells if c.cell_type == "code" and "PUBLIC_TESTS = {" in c.source)
    assignment = next(node for node in ast.parse(cell.source).body
                      if isinstance(node, ast.Assign) and node.targets[0].id == "PUBLIC_TESTS")
    return cell, ast.literal_eval(assignment.value)


def test_public_tests_travel_inside_the_notebook(student_nb):
    cell, tests = public_tests_in(student_nb)
    files = {path.stem: path.read_text() for path in (TEMPLATE / "tests").glob("*.py")}
    assert tests == files and len(tests) >= 6
    assert cell.metadata["jupyter"]["source_hidden"] and cell.metadata["cellView"] == "form"
    assert 'grader = otter.Notebook(tests_dir="tests")' in cell.source
    assert student_nb.cells.index(cell) < min(i for i, c in enumerate(student_nb.cells) if CHECK.search(c.source))


def test_load_mnist_says_what_to_do_offline(student_nb, tmp_path):
    cell = next(c.source for c in student_nb.cells if c.cell_type == "code" and "def load_mnist(" in c.source)

    class Offline:
        class datasets:
            @staticmethod
            def MNIST(root, train, download):
                raise RuntimeError("Error downloading train-images-idx3-ubyte.gz")

    namespace = {"torchvision": Offline, "DATA_DIR": str(tmp_path)}
    exec(cell.split("\n\n\nstart = ")[0], namespace)
    with pytest.raises(RuntimeError) as error:
        namespace["load_mnist"](train=True)
    for words in ("are you offline?", "Connect to the internet", "DATA_DIR", str(tmp_path), "Error downloading"):
        assert words in str(error.value), words


# --- the notebook alone in a folder, as on Colab ----------------------------------------------------------------

def run_alone(notebook, folder: Path):
    """Executes the notebook as the only file of an empty folder (no tests/ folder) at the TINY profile, injected
    after the parameters cell as autograder.lab.solution_run does (DATA_DIR = the data cache); every cell runs."""
    notebook = copy.deepcopy(notebook)
    knobs = profiles.get_profile("tiny") | {"DATA_DIR": str(solution_run.DATA_CACHE), "DEVICE": "cpu"}
    solution_run.check_data(solution_run.DATA_CACHE)
    position = solution_run.find_parameters_cell(notebook)
    notebook.cells.insert(position + 1, nbformat.v4.new_code_cell(solution_run.parameters_source(knobs)))
    folder.mkdir()
    nbformat.write(notebook, folder / "lab.ipynb")
    assert os.listdir(folder) == ["lab.ipynb"]
    NotebookClient(notebook, timeout=300, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(folder)}}).execute()
    return notebook


def outputs_text(cell) -> str:
    parts = []
    for output in cell.get("outputs", []):
        if output.output_type == "stream":
            parts.append(output.text)
        elif output.output_type == "error":
            parts.append(f"{output.ename}: {output.evalue}")
        else:
            parts.append(output.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def errors(cell) -> list:
    return [o for o in cell.get("outputs", []) if o.output_type == "error"]


@pytest.fixture(scope="module")
def template_alone(tmp_path_factory):
    return run_alone(nbformat.read(TEMPLATE / "lab.ipynb", as_version=4), tmp_path_factory.mktemp("colab") / "t")


def test_alone_every_self_check_fails_on_the_stubs_naming_the_task(template_alone):
    cells = template_alone.cells
    checked = []
    for index, cell in enumerate(cells):
        match = CHECK.fullmatch(cell.source.strip()) if cell.cell_type == "code" else None
        if not match:
            continue
        name, text = match.group(1), outputs_text(cell)
        checked.append(name)
        assert not errors(cell) and "skipped" not in text.lower(), f"{name}: {text}"
        tasks = set(STUB.findall(cells[index - 1].source))
        assert tasks, f"no stub in the answer cell before the check of {name}"
        assert f"{name} results:" in text and "Test case failed" in text, f"{name} did not report a failure: {text}"
        assert any(f"NotImplementedError: {task}" in text for task in tasks), f"{name} should name {tasks}: {text}"
    assert sorted(checked) == sorted(p.stem for p in (TEMPLATE / "tests").glob("*.py"))
    summary = outputs_text(cells[-1])
    assert all(f"{name} results:" in summary for name in checked) and "All test cases passed" not in summary


def stubs_in_functions(source: str) -> bool:
    """Every `raise NotImplementedError` of the cell is inside a function (the cell only defines things)."""
    tree = ast.parse(source)
    inside = {id(node) for function in ast.walk(tree) if isinstance(function, ast.FunctionDef)
              for node in ast.walk(function)}
    return all(id(node) in inside for node in ast.walk(tree) if isinstance(node, ast.Raise))


def test_alone_every_todo_cell_raises_its_task(template_alone):
    """A TODO cell that runs code fails with NotImplementedError("Task ...") from its own stub (never NameError);
    one that only defines functions runs, and its functions raise when called (the self-checks above)."""
    for cell in template_alone.cells:
        if cell.cell_type != "code" or "# TODO" not in cell.source:
            continue
        failures = errors(cell)
        if not failures:
            assert stubs_in_functions(cell.source), f"this TODO cell ran without raising:\n{cell.source}"
            continue
        assert failures[0].ename == "NotImplementedError", (failures[0].ename, cell.source)
        assert f'raise NotImplementedError("{failures[0].evalue}")' in cell.source, failures[0].evalue
        assert re.match(r"Task \d[a-z]?\b", failures[0].evalue), failures[0].evalue


def test_alone_the_filled_in_notebook_passes_every_self_check(tmp_path):
    executed = run_alone(demo.filled_in_notebook(), tmp_path / "filled")
    failed = [(c.source[:80], outputs_text(c)[-300:]) for c in executed.cells if c.cell_type == "code" and errors(c)]
    assert not failed, failed
    checks = [c for c in executed.cells if c.cell_type == "code" and CHECK.fullmatch(c.source.strip())]
    assert len(checks) == len(list((TEMPLATE / "tests").glob("*.py")))
    for cell in checks:
        name = CHECK.fullmatch(cell.source.strip()).group(1)
        assert f"{name} results: All test cases passed!" in outputs_text(cell), outputs_text(cell)
    summary = outputs_text(executed.cells[-1])
    assert summary.count("All test cases passed!") == len(checks), summary
