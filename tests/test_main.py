"""The command line: its defaults are declared once, in autograder.__main__.DEFAULTS."""

from autograder.__main__ import DEFAULTS, parse_args


def test_every_option_default_comes_from_defaults():
    args = vars(parse_args(["grade"]))
    flags = {"command", "force", "no_progress"}          # switches, off unless given
    assert set(args) - flags == set(DEFAULTS), "an option's default is declared outside DEFAULTS (or unused)"
    assert all(args[name] == value for name, value in DEFAULTS.items())


def test_given_options_override_defaults(tmp_path):
    args = parse_args(["grade", "--out", str(tmp_path), "--jobs", "3", "--canvas-assignment", "Lab 3 (123456)"])
    assert (args.out, args.jobs, args.canvas_assignment) == (tmp_path, 3, "Lab 3 (123456)")
    assert args.submissions == DEFAULTS["submissions"]
