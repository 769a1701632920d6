"""A stand-in for execution.run.execute_submission in tests of the stages after it: it records the notebook's name
and 'runs' it by copying it as the executed notebook (no kernel, no sandbox)."""
from __future__ import annotations

import shutil
from pathlib import Path

from autograder.execution import run as execute
from autograder.execution.run import ExecutionResult


def copy_instead_of_executing(monkeypatch) -> list[str]:
    """Replaces execute_submission; returns the list the names of the 'executed' notebooks are appended to."""
    calls: list[str] = []

    def fake_execute(notebook_path, workdir, **_):
        calls.append(Path(notebook_path).name)
        executed = Path(workdir) / "executed.ipynb"
        shutil.copyfile(notebook_path, executed)
        return ExecutionResult("ok", "", executed_notebook_path=executed, sandbox="none: test")

    monkeypatch.setattr(execute, "execute_submission", fake_execute)
    return calls
