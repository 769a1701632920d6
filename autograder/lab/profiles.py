"""Work profiles of the lab: the knobs of the notebook's `parameters` cell (docs/contract.md), by name.

FULL is the notebook's own parameters cell (a test checks they are equal): the lab as students run it for the
report. GRADING is what the autograder injects for every submission: the whole notebook in well under a minute on
2 CPU cores, with the losses still clearly falling and the digits still recognisable. TINY is for this project's own
tests: a few seconds of training. Every profile keeps SCATTER_SIZE = 5000 and AE_RUNS = 3, so that every figure has
the same shape as in the full lab (5000-point scatters, 15 x 15 grid, 10 x 5 per-digit grid, three AE runs).
"""
from __future__ import annotations

from pathlib import Path

import yaml

FULL = {
    "SEED": 0,
    "DATA_DIR": "data_cache",
    "DEVICE": "auto",
    "N_TRAIN": 60000,
    "N_TEST": 10000,
    "BATCH_SIZE": 128,
    "AE_RUNS": 3,
    "AE_EPOCHS": 10,
    "SWEEP_DIMS": list(range(2, 21)),
    "SWEEP_EPOCHS": 8,
    "SWEEP_TRAIN": 20000,
    "VAE_EPOCHS": 50,
    "GAUSSIAN_VAE_EPOCHS": 20,
    "SCATTER_SIZE": 5000,
}

GRADING = {
    **FULL,
    "N_TRAIN": 10000,
    "N_TEST": 2000,
    "AE_EPOCHS": 2,
    "SWEEP_EPOCHS": 2,
    "SWEEP_TRAIN": 2000,
    "VAE_EPOCHS": 8,
    "GAUSSIAN_VAE_EPOCHS": 4,
}

TINY = {
    **FULL,
    "N_TRAIN": 2000,
    "N_TEST": 1000,
    "AE_EPOCHS": 2,
    "SWEEP_DIMS": [2, 4],
    "SWEEP_EPOCHS": 1,
    "SWEEP_TRAIN": 1000,
    "VAE_EPOCHS": 2,
    "GAUSSIAN_VAE_EPOCHS": 2,
}

PROFILES = {"full": FULL, "grading": GRADING, "tiny": TINY}
GRADING_PROFILE = "grading"     # the profile `python -m autograder grade` injects

KNOBS = tuple(FULL)  # the names of the parameters cell, in its order


def get_profile(name: str) -> dict:
    """A copy of the named profile ("full", "grading" or "tiny")."""
    try:
        profile = PROFILES[name.lower()]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; choose one of {sorted(PROFILES)}") from None
    return {key: (list(value) if isinstance(value, list) else value) for key, value in profile.items()}


GRADER_SET_KNOBS = ("DATA_DIR", "DEVICE")   # the grader sets these itself (where the sandbox shows the data; CPU)
BASE_KEY = "base"                           # in a profile file: the named profile it starts from


def resolve_profile(choice: str | Path) -> tuple[str, dict]:
    """`--profile`: a profile's name ("grading", "full", "tiny"), or a YAML file of knobs such as

        base: grading        # optional (default grading): its knobs fill the rest, its name picks the checks'
        VAE_EPOCHS: 20       # per-profile thresholds (rubric.yaml's by_profile)
        N_TRAIN: 30000

    Returns (the name that travels with the settings, the knobs). ValueError with a message naming the problem and
    what to write instead."""
    text = str(choice)
    if text.lower() in PROFILES:
        return text.lower(), get_profile(text)
    path = Path(choice)
    if not path.is_file():
        raise ValueError(f"--profile {text}: neither a profile name ({', '.join(sorted(PROFILES))}) nor a YAML file")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise ValueError(f"profile file {path} could not be read as YAML ({error})") from None
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise ValueError(f"profile file {path} must be a mapping of knob: value (e.g. `VAE_EPOCHS: 20`)")
    base = raw.pop(BASE_KEY, GRADING_PROFILE)
    if not isinstance(base, str) or base.lower() not in PROFILES:
        raise ValueError(f"profile file {path}: `{BASE_KEY}: {base}` is not a profile; use one of "
                         f"{', '.join(sorted(PROFILES))}")
    knobs = get_profile(base)
    for name, value in raw.items():
        problem = _knob_problem(name, value)
        if problem:
            raise ValueError(f"profile file {path}: {problem}")
        knobs[name] = list(value) if isinstance(value, list) else value
    return base.lower(), knobs


def _knob_problem(name, value) -> str | None:
    if name in GRADER_SET_KNOBS:
        return f"{name} is set by the grader (the data the sandbox shows, the CPU): remove it"
    if name not in KNOBS:
        return f"unknown knob {name!r}; the knobs are {', '.join(k for k in KNOBS if k not in GRADER_SET_KNOBS)}"
    expected = FULL[name]
    if isinstance(expected, list):
        if not (isinstance(value, list) and value and all(isinstance(v, int) and not isinstance(v, bool) and v > 0
                                                          for v in value)):
            return f"{name} must be a non-empty list of positive whole numbers, like {expected[:3]}"
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        return f"{name} must be a whole number (got {value!r})"
    if value < (0 if name == "SEED" else 1):
        return f"{name} must be {'0 or more' if name == 'SEED' else 'at least 1'} (got {value})"
    return None
