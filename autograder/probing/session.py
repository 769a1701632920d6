"""What every probe works with: its failure, its context, the session that carries its calls to the probe server,
and its declaration (probes.py holds the catalogue)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from autograder.probing.reference_data import ReferenceData

PIXELS = 784


class ProbeFailed(Exception):
    """The notebook's code failed on the grader's inputs, or the server could not answer; message for students."""


@dataclass
class Context:
    """What a probe may use besides the server."""
    data: ReferenceData
    profile: dict
    reported: dict                        # the export's report (names, values, models, errors)
    models: dict                          # server's load report: name -> {"ok", "built_as" | "error"}
    figure_grids: list = field(default_factory=list)   # [(figure index, kind, tiles (rows, cols, 784) in [0, 1])]


class Session:
    def __init__(self, server):
        self.server = server

    def __call__(self, name: str, **args) -> Any:
        result = self.server.call(name, args)
        if not result.ok:
            raise ProbeFailed(result.error)
        return result.value


@dataclass(frozen=True)
class Probe:
    name: str
    student_names: tuple[str, ...]          # for messages
    draw: Callable[[np.random.Generator, Context], dict]
    run: Callable[[Session, dict, Context], Any]
    needs_server: bool = True


def rounded(array) -> np.ndarray:
    return np.round(np.asarray(array, np.float64), 6)


# --- the contract's classes, built fresh ----------------------------------------------------------------------------

