"""Calls of the grader's functions that a Dask scheduler can unpickle without having the grader.

The scheduler unpickles every task it is sent (distributed >= 2024) but only the workers run them: a task that named
`autograder.distribute.task.grade_task` directly would need the project on the scheduler's Python path too, so a plain
`dask scheduler` (or one a cluster manager starts from a stock image) would reject it ("Error during deserialization
of the task graph"). `RemoteCall("autograder.distribute.task", "grade_task")` pickles instead as
`cloudpickle.loads(<call(module, function), by value>)`: unpickling it needs only cloudpickle (a Dask dependency), and
the worker that runs it imports the grader there. Trusted processes only: the coordinator, the scheduler and the
workers the course staff start; nothing from a sandbox is ever unpickled.
"""
from __future__ import annotations

import functools
import sys

import cloudpickle


def call(module: str, function: str, *args):
    """Import `module` (on the worker) and call its `function`; refers to nothing of the grader by itself."""
    import importlib

    return getattr(importlib.import_module(module), function)(*args)


class RemoteCall:
    """A callable for Client.submit / Client.run: here it calls `module.function` directly; pickled, it becomes a
    functools.partial of `call` carried by value."""

    def __init__(self, module: str, function: str):
        self.module, self.function = module, function
        self.__name__ = function        # what the Dask dashboard and logs show

    def __call__(self, *args):
        return call(self.module, self.function, *args)

    def __reduce__(self):
        this = sys.modules[__name__]
        if this.__name__ not in cloudpickle.list_registry_pickle_by_value():
            cloudpickle.register_pickle_by_value(this)
        return cloudpickle.loads, (cloudpickle.dumps(functools.partial(call, self.module, self.function)),)
