"""The command line: its defaults are declared once, in autograder.__main__.DEFAULTS."""
import ast
from pathlib import Path

from autograder.__main__ import DEFAULTS, SWITCHES, parse_args

MAIN = Path(__file__).resolve().parents[1] / "autograder" / "__main__.py"
COMMANDS = ("grade", "worker", "release", "gradescope")


def test_every_option_default_comes_from_defaults():
    used = set()
    for command in COMMANDS:
        args = vars(parse_args([command]))
        options = set(args) - {"command"} - SWITCHES
        assert options <= set(DEFAULTS), f"{command}: a default declared outside DEFAULTS: {options - set(DEFAULTS)}"
        assert all(args[name] == DEFAULTS[name] for name in options), command
        assert all(args[name] is False for name in set(args) & SWITCHES), f"{command}: a switch on by default"
        used |= options
    assert used == set(DEFAULTS), f"declared but unused: {set(DEFAULTS) - used}"


def test_no_literal_default_in_the_parser():
    """Every `default=` of an add_argument reads DEFAULTS (switches have none)."""
    tree = ast.parse(MAIN.read_text())
    for call in ast.walk(tree):
        if isinstance(call, ast.Call) and getattr(call.func, "attr", "") == "add_argument":
            for keyword in call.keywords:
                if keyword.arg == "default":
                    assert isinstance(keyword.value, ast.Subscript) and keyword.value.value.id == "DEFAULTS", \
                        ast.unparse(call)


def test_given_options_override_defaults(tmp_path):
    args = parse_args(["grade", "--out", str(tmp_path), "--jobs", "3", "--canvas-assignment", "Lab 3 (123456)",
                       "--only", "ada", "bob", "--starter-code", "a.ipynb", "b.py"])
    assert (args.out, args.jobs, args.canvas_assignment) == (tmp_path, 3, "Lab 3 (123456)")
    assert args.only == ["ada", "bob"] and args.starter_code == [Path("a.ipynb"), Path("b.py")]
    assert args.submissions == DEFAULTS["submissions"]
    release = parse_args(["release", "--out", str(tmp_path), "--publish"])
    assert release.publish and not release.no_pdf and release.out == tmp_path


def test_time_limit_and_profile_options(tmp_path):
    from autograder.execution.limits import DEFAULT_LIMITS

    args = parse_args(["grade"])
    assert (args.cell_timeout, args.notebook_timeout) == (DEFAULT_LIMITS.cell_timeout_s,
                                                          DEFAULT_LIMITS.notebook_timeout_s)
    assert args.profile == "grading" and args.scheduler is None
    args = parse_args(["grade", "--cell-timeout", "120", "--notebook-timeout", "900", "--profile", "full",
                       "--scheduler", "tcp://127.0.0.1:8786"])
    assert (args.cell_timeout, args.notebook_timeout, args.profile, args.scheduler) == (
        120.0, 900.0, "full", "tcp://127.0.0.1:8786")


def test_bad_limits_and_profiles_are_refused_before_grading(tmp_path, capsys):
    from autograder.__main__ import main

    out = tmp_path / "out"
    assert main(["grade", "--out", str(out), "--cell-timeout", "0"]) == 2
    assert "the cell time limit must be more than 0 s" in capsys.readouterr().err
    assert main(["grade", "--out", str(out), "--notebook-timeout", "30"]) == 2
    error = capsys.readouterr().err
    assert "60 s of it are kept for the grader's export cell" in error and "--notebook-timeout" in error
    assert main(["grade", "--out", str(out), "--profile", "huge"]) == 2
    assert "neither a profile name (full, grading, tiny) nor a YAML file" in capsys.readouterr().err
    knobs = tmp_path / "knobs.yaml"
    knobs.write_text("VAE_EPOCHS: 20\nLEARNING_RATE: 0.1\n")
    assert main(["grade", "--out", str(out), "--profile", str(knobs)]) == 2
    assert "unknown knob 'LEARNING_RATE'" in capsys.readouterr().err
    assert not (out / "gradebook.csv").exists()


def test_a_profile_file_starts_from_its_base_profile(tmp_path):
    import pytest

    from autograder.lab.profiles import get_profile, resolve_profile

    assert resolve_profile("FULL") == ("full", get_profile("full"))
    knobs = tmp_path / "final.yaml"
    knobs.write_text("base: full\nVAE_EPOCHS: 20\nSWEEP_DIMS: [2, 10]\n")
    assert resolve_profile(knobs) == ("full", {**get_profile("full"), "VAE_EPOCHS": 20, "SWEEP_DIMS": [2, 10]})
    knobs.write_text("N_TRAIN: 30000\n")
    assert resolve_profile(knobs) == ("grading", {**get_profile("grading"), "N_TRAIN": 30000})
    for text, problem in (("N_TRAIN: lots", "N_TRAIN must be a whole number"),
                          ("N_TRAIN: 0", "N_TRAIN must be at least 1"),
                          ("DEVICE: cuda", "DEVICE is set by the grader"),
                          ("base: huge", "`base: huge` is not a profile"),
                          ("SWEEP_DIMS: []", "SWEEP_DIMS must be a non-empty list"),
                          ("- 1\n- 2", "must be a mapping"),
                          ("N_TRAIN: [", "could not be read as YAML")):
        knobs.write_text(text)
        with pytest.raises(ValueError, match=problem.replace("[", r"\[")):
            resolve_profile(knobs)


def test_a_worker_without_a_scheduler_says_what_to_pass(capsys):
    from autograder.__main__ import main

    assert main(["worker"]) == 2
    assert "make worker SCHEDULER=tcp://HOST:8786" in capsys.readouterr().err
    assert main(["worker", "--scheduler", "tcp://127.0.0.1:1", "--nworkers", "0"]) == 2
    assert "--nworkers must be at least 1" in capsys.readouterr().err


def test_the_worker_command_is_single_threaded_dask_with_the_limits_memory():
    from autograder import PROJECT_ROOT
    from autograder.distribute import worker
    from autograder.execution.limits import DEFAULT_LIMITS

    command = worker.worker_command("tcp://10.0.0.5:8786", 16, host="10.0.0.7")
    assert command[1:] == ["worker", "tcp://10.0.0.5:8786", "--nworkers", "16", "--nthreads", "1", "--memory-limit",
                           str(DEFAULT_LIMITS.group_memory_bytes), "--preload", "autograder.distribute.worker", "--host",
                           "10.0.0.7"]
    assert command[0].endswith("/dask")
    assert worker.worker_env({"PYTHONPATH": "/opt/x"})["PYTHONPATH"] == f"{PROJECT_ROOT}:/opt/x"
