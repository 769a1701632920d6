"""The command line: its defaults are declared once, in autograder.__main__.DEFAULTS."""
import ast
from pathlib import Path

from autograder.__main__ import DEFAULTS, SWITCHES, parse_args

MAIN = Path(__file__).resolve().parents[1] / "autograder" / "__main__.py"
COMMANDS = ("grade", "release", "gradescope")


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
