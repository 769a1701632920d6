"""Integrity guard that runs INSIDE the student's kernel next to kernel_side. Plain Python source: execute.py injects
it into the graded notebook's setup cell as the private module `labgrader_kernel_guard`, after kernel_side is
installed; the probe cells call `run_probe` here, which calls kernel_side's. Tests import it directly.

The notebook's code shares the process with the grader's probes, so around every probe call the guard:
- compares what the probes rely on (builtins, json, math, io, contextlib, numpy, torch and torch.Tensor, IPython's
  display path, sys.modules entries, and kernel_side's own functions, PROBES and state) with references taken
  BEFORE any student code ran (torch's right after the notebook first imports it), puts the originals back and
  reports every replaced name;
- removes IPython event callbacks, input/AST transformers and trace functions the notebook installed, and notes
  torch function/dispatch modes and notebook threads that are still active (they void the answer);
- after the call, checks again: anything replaced DURING the call voids that answer;
- refuses notebook-defined objects that redefine comparisons or conversions (__eq__, __float__, var,
  __torch_function__, ...) where kernel_side turns answers into numbers (that answer is voided).
Findings are plain strings added to the probe's answer under "integrity"; nothing here decides a grade. This
raises the bar but cannot make tampering impossible (code in the same process can reach anything), so the grader
also scans the notebook's source (autograder/integrity.py) and accepts answers only from its own probe cells.
"""

import sys
import threading
import types

KERNEL_SIDE = "labgrader_kernel_side"
GUARD_MIME = "application/vnd.labgrader.guard+json"  # displayed once by the setup cell: the guard is installed
GUARD = "labgrader_kernel_guard"
MAX_LISTED = 10
VET_MAX_ITEMS = 10_000
# Attributes through which an object can lie about its value or shape.
SENSITIVE_ATTRIBUTES = frozenset({
    "__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__bool__", "__float__", "__int__", "__index__",
    "__complex__", "__abs__", "__len__", "__iter__", "__getitem__", "__getattr__", "__getattribute__", "__array__",
    "__array_interface__", "__array_ufunc__", "__array_function__", "__torch_function__", "__torch_dispatch__",
    "shape", "item", "tolist", "detach", "numpy", "reshape", "cpu", "float", "double", "min", "max", "mean", "var",
    "sum", "any", "backward", "grad", "requires_grad",
})
TRUSTED_PACKAGES = ("numpy", "torch")  # besides C code
BASE_MODULES = ("builtins", "json", "math", "io", "contextlib", "numpy", "IPython.core.display_functions",
                "IPython.display")
TORCH_MODULES = ("torch", "torch.nn.functional", "torch.random", "torch.autograd", "torch.autograd.grad_mode")
WATCHED_SYS_MODULES = ("builtins", "json", "math", "io", "contextlib", "numpy", "torch", KERNEL_SIDE, GUARD)
CONVERTERS = ("_to_float", "_float_list", "_matrix", "_shape")  # kernel_side's student-value -> number helpers
EVENTS = ("pre_execute", "pre_run_cell", "post_execute", "post_run_cell")

_MISSING = object()
_state = {"kernel_side": None, "watches": [], "torch_watched": False, "events": {}, "transformers": {},
          "threads": set(), "probe": "", "vetoes": [], "installed": False}


class IntegrityError(TypeError):
    """A notebook object that could lie about its value reached the grader's conversions."""


# ---------------------------------------------------------------- snapshots of namespaces

def _tracked(value) -> bool:
    return callable(value) or isinstance(value, (classmethod, staticmethod, property))


def _same(current, original) -> bool:
    """Identity, except that a bound method re-created from the same function and object counts as the same."""
    if current is original:
        return True
    method = types.MethodType
    return (type(current) is method and type(original) is method and current.__func__ is original.__func__
            and current.__self__ is original.__self__)


def _library_wrapper(current, original) -> bool:
    """Whether `current` is a library's wrapper around `original` (functools.wraps chain, code outside the
    notebook): libraries do this on import and it keeps the original behaviour."""
    if _defined_in_notebook(current):
        return False
    wrapped = current
    for _ in range(5):
        wrapped = getattr(wrapped, "__wrapped__", None)
        if wrapped is None:
            return False
        if wrapped is original:
            return True
    return False


class Watch:
    """What one namespace (a module, a class, an instance, a dict or a few attributes) held when first seen.

    kind "module"/"mapping": only the names present then are compared (the callables, unless `keys` names them);
    "class": also names added later (they shadow the base class, e.g. torch.Tensor.var over the C implementation);
    "instance": also added names that shadow a method of the class; "attributes": getattr of `keys` (traitlets
    objects such as the IPython shell keep their values outside __dict__)."""

    def __init__(self, label: str, owner, kind: str, keys=None):
        self.label, self.owner, self.kind = label, owner, kind
        if kind == "attributes":
            self.original = {name: getattr(owner, name, _MISSING) for name in keys}
            self.initial_names = set(keys)
            return
        space = self._space()
        names = list(keys) if keys is not None else [name for name, value in space.items() if _tracked(value)]
        self.original = {name: space[name] for name in names if name in space}
        self.initial_names = set(space)

    def _space(self):
        return self.owner if isinstance(self.owner, dict) else vars(self.owner)

    def _get(self, name):
        if self.kind == "attributes":
            return getattr(self.owner, name, _MISSING)
        return self._space().get(name, _MISSING)

    def replaced(self) -> list:
        names = []
        for name, value in self.original.items():
            current = self._get(name)
            if _same(current, value):
                continue
            if _library_wrapper(current, value):  # e.g. torch._dynamo wraps torch.manual_seed when imported
                self.original[name] = current
                continue
            names.append(name)
        if self.kind == "class":
            names += [name for name in list(self._space()) if name not in self.initial_names]
        elif self.kind == "instance":
            cls = type(self.owner)
            names += [name for name in list(self._space()) if name not in self.initial_names
                      and callable(getattr(cls, name, None))]
        return names

    def restore(self, names) -> None:
        for name in names:
            try:
                if isinstance(self.owner, dict):
                    if name in self.original:
                        self.owner[name] = self.original[name]
                    else:
                        self.owner.pop(name, None)
                elif name in self.original and self.original[name] is not _MISSING:
                    setattr(self.owner, name, self.original[name])
                else:
                    delattr(self.owner, name)
            except Exception:
                pass


def _watch_module(label: str, kind: str = "module"):
    module = sys.modules.get(label)
    if module is not None:
        _state["watches"].append(Watch(label, module, kind))


def _watch_torch(torch) -> None:
    """References to torch's functions, taken right after `import torch` (before the notebook can change them)."""
    if _state["torch_watched"]:
        return
    _state["torch_watched"] = True
    for name in TORCH_MODULES:
        _watch_module(name)
    watches = _state["watches"]
    watches.append(Watch("torch.Tensor", torch.Tensor, "class"))
    watches.append(Watch("torch.nn.Module", torch.nn.Module, "class"))
    grad_mode = sys.modules.get("torch.autograd.grad_mode")
    if grad_mode is not None:
        watches.append(Watch("torch.no_grad", grad_mode.no_grad, "class"))
    watches.append(Watch("sys.modules", sys.modules, "mapping", keys=["torch"]))


# ---------------------------------------------------------------- objects from the notebook

_C_CALLABLES = (types.WrapperDescriptorType, types.MethodDescriptorType, types.BuiltinFunctionType,
                types.ClassMethodDescriptorType, types.GetSetDescriptorType, types.MemberDescriptorType,
                types.MethodWrapperType)


def _trusted_directories() -> tuple:
    """Where numpy's and torch's Python code lives (only what is imported)."""
    import os
    return tuple(os.path.dirname(module.__file__) + os.sep for module in (sys.modules.get(name) for name in
                 TRUSTED_PACKAGES) if getattr(module, "__file__", None))


def _implemented_by_library(attribute, directories: tuple) -> bool:
    """Whether a class attribute is C code or Python code from numpy/torch (never from the notebook: a class's
    __module__ can be set to anything, its functions' code cannot be moved)."""
    if isinstance(attribute, (staticmethod, classmethod)):
        attribute = attribute.__func__
    if isinstance(attribute, property):
        return all(_implemented_by_library(part, directories)
                   for part in (attribute.fget, attribute.fset, attribute.fdel) if part is not None)
    if isinstance(attribute, _C_CALLABLES):
        return True
    code = getattr(attribute, "__code__", None)
    return type(attribute) is types.FunctionType and code is not None and code.co_filename.startswith(directories)


_verdicts: dict = {}  # id(class) -> (class, redefined attributes)


def redefined_attributes(cls) -> list:
    """Sensitive attributes that `cls` (or a class of its MRO) defines with code from outside numpy/torch/C."""
    cached = _verdicts.get(id(cls))
    if cached is not None and cached[0] is cls:  # identity: a metaclass may redefine == and hash
        return cached[1]
    directories = _trusted_directories()
    found = []
    for klass in type.__getattribute__(cls, "__mro__"):
        for name, attribute in vars(klass).items():
            if name in SENSITIVE_ATTRIBUTES and name not in found and not _implemented_by_library(attribute,
                                                                                                  directories):
                found.append(name)
    _verdicts[id(cls)] = (cls, sorted(found))
    return _verdicts[id(cls)][1]


def vet(value, depth: int = 0) -> None:
    """Raise IntegrityError (and record a finding) for a notebook object that redefines comparisons/conversions."""
    kind = type(value)
    if any(kind is plain for plain in (float, int, bool, str, type(None))):  # `is`: a metaclass may redefine ==
        return
    if kind is list or kind is tuple:
        if depth < 3:
            for item in value[:VET_MAX_ITEMS]:
                vet(item, depth + 1)
        return
    lying = redefined_attributes(kind)
    if lying:
        text = (f"probe '{_state['probe']}': the notebook returned an object of class {kind.__name__} that "
                f"redefines {', '.join(lying[:MAX_LISTED])}; only numbers, numpy arrays and torch tensors are "
                "accepted, so that answer is not graded")
        if text not in _state["vetoes"]:
            _state["vetoes"].append(text)
        raise IntegrityError(text)
    numpy = sys.modules.get("numpy")
    if depth < 3 and numpy is not None and isinstance(value, numpy.ndarray) and value.dtype.kind == "O":
        for item in value.ravel()[:VET_MAX_ITEMS]:
            vet(item, depth + 1)


def _vetting(convert):
    def converter(value, *args, **kwargs):
        vet(value)
        return convert(value, *args, **kwargs)

    converter.__wrapped__ = convert
    return converter


def _defined_in_notebook(obj) -> bool:
    function = getattr(obj, "__func__", obj)
    if getattr(function, "__module__", None) == "__main__":
        return True
    filename = getattr(getattr(function, "__code__", None), "co_filename", "") or ""
    if "ipykernel_" in filename or filename.startswith("<ipython-input"):
        return True
    return getattr(type(obj), "__module__", None) == "__main__"


def _names(objects) -> str:
    names = [getattr(obj, "__qualname__", None) or getattr(obj, "name", None) or type(obj).__name__
             for obj in objects]
    return ", ".join(str(name) for name in names[:MAX_LISTED])


# ---------------------------------------------------------------- before and after each probe

def _replaced_and_restore() -> list:
    """'torch.Tensor.var'-style names replaced since the snapshots; the originals are put back."""
    names = []
    for watch in _state["watches"]:
        replaced = watch.replaced()
        if replaced:
            watch.restore(replaced)
            names += [f"{watch.label}[{name!r}]" if watch.kind == "mapping" else f"{watch.label}.{name}"
                      for name in replaced]
    return names


def _listing(names) -> str:
    more = f" and {len(names) - MAX_LISTED} more" if len(names) > MAX_LISTED else ""
    return ", ".join(names[:MAX_LISTED]) + more


def _known(item, known_items) -> bool:
    return any(item is known for known in known_items)  # `is`: a notebook object may redefine ==


def _remove(items: list, unwanted: list) -> None:
    items[:] = [item for item in items if not _known(item, unwanted)]


def _shell():
    from IPython import get_ipython
    return get_ipython()


def _transformer_lists(shell) -> dict:
    lists = {"ast_transformers": getattr(shell, "ast_transformers", None),
             "input_transformers_post": getattr(shell, "input_transformers_post", None)}
    manager = getattr(shell, "input_transformer_manager", None)
    for name in ("cleanup_transforms", "line_transforms", "token_transformers"):
        lists[f"input_transformer_manager.{name}"] = getattr(manager, name, None)
    return {name: value for name, value in lists.items() if isinstance(value, list)}


def _before_probe() -> tuple[list, str]:
    """(findings, why the answer must be voided or ''), after undoing what can be undone."""
    findings, voids = [], []
    if "torch" in sys.modules and not _state["torch_watched"]:
        findings.append("torch was imported without passing through the grader's import hook (sys.meta_path was "
                        "changed), so its functions could not be checked")
        _watch_torch(sys.modules["torch"])
    replaced = _replaced_and_restore()
    if replaced:
        findings.append(f"the notebook had replaced {_listing(replaced)}; the originals were put back for the "
                        "grader's checks")
    shell = _shell()
    for event in EVENTS:
        callbacks = shell.events.callbacks.get(event, [])
        added = [cb for cb in list(callbacks) if not _known(cb, _state["events"].get(event, []))
                 and _defined_in_notebook(cb)]
        _remove(callbacks, added)
        if added:
            findings.append(f"the notebook registered IPython '{event}' callbacks ({_names(added)}); they were "
                            "removed before the grader's checks")
    for name, transformers in _transformer_lists(shell).items():
        added = [item for item in list(transformers) if not _known(item, _state["transformers"].get(name, []))]
        _remove(transformers, added)
        if added:
            voids.append(f"the notebook installed IPython {name} ({_names(added)}), which can rewrite the grader's "
                         "cells; they were removed")
    for name, function in (("trace", sys.gettrace()), ("profile", sys.getprofile())):
        if function is not None:
            findings.append(f"the notebook installed a {name} function ({_names([function])}); it was removed")
    sys.settrace(None)
    sys.setprofile(None)
    threads = [thread for thread in threading.enumerate() if thread.ident not in _state["threads"]
               and (_defined_in_notebook(getattr(thread, "_target", None)) or _defined_in_notebook(thread))]
    if threads:
        voids.append(f"threads started by the notebook ({_listing([thread.name for thread in threads])}) were "
                     "running while the grader called its code")
    torch = sys.modules.get("torch")
    if torch is not None:
        modes = []
        try:
            from torch.overrides import _get_current_function_mode_stack
            from torch.utils._python_dispatch import _get_current_dispatch_mode_stack
            modes = list(_get_current_function_mode_stack()) + list(_get_current_dispatch_mode_stack())
        except Exception:
            pass
        if modes:
            voids.append(f"torch function/dispatch modes were active ({_names(modes)})")
    return findings, "; ".join(voids)


def _guarded_probe_answer(answer_probe):
    def probe_answer(name, inputs, ns):
        findings, void = _state.pop("pending", ([], ""))
        _state["vetoes"] = []
        if void:
            answer = {"ok": False, "error": f"IntegrityError: {void}; this answer is not graded"}
            findings = findings + [f"{void}; the answers given meanwhile were not graded"]
        else:
            answer = answer_probe(name, inputs, ns)
        during = _replaced_and_restore()
        if during:
            text = (f"the notebook's code replaced {_listing(during)} while the grader called it (probe '{name}'); "
                    "that answer is not graded")
            findings = findings + [text]
            answer = {"ok": False, "error": f"IntegrityError: {text}"}
        findings = findings + _state["vetoes"]
        return {**answer, "integrity": findings}

    probe_answer.__wrapped__ = answer_probe
    return probe_answer


# ---------------------------------------------------------------- entry points

def install(kernel_side) -> None:
    """Called by the setup cell after kernel_side.install(): wraps kernel_side's answer and conversion functions,
    then takes the reference snapshots (before any student code runs)."""
    if _state["installed"]:
        return
    _state["kernel_side"] = kernel_side
    kernel_side.probe_answer = _guarded_probe_answer(kernel_side.probe_answer)
    for name in CONVERTERS:
        setattr(kernel_side, name, _vetting(getattr(kernel_side, name)))
    for name in BASE_MODULES:
        _watch_module(name)
    watches = _state["watches"]
    watches.append(Watch(KERNEL_SIDE, kernel_side, "module",
                         keys=[name for name in vars(kernel_side) if not name.startswith("__")]))
    watches.append(Watch(f"{KERNEL_SIDE}.PROBES", kernel_side.PROBES, "mapping", keys=list(kernel_side.PROBES)))
    watches.append(Watch(f"{KERNEL_SIDE}._state", kernel_side._state, "mapping", keys=["display"]))
    watches.append(Watch("sys.modules", sys.modules, "mapping",
                         keys=[name for name in WATCHED_SYS_MODULES if name != "torch"]))
    shell = _shell()
    # exit()/quit() would stop the kernel a moment later, racing the next cells: they leave only their payload
    # (the runner reports it) and grading goes on, as sys.exit() only raises SystemExit.
    shell.ask_exit = lambda: shell.payload_manager.write_payload({"source": "ask_exit", "keepkernel": True})
    publisher = getattr(shell, "display_pub", None)
    watches.append(Watch("shell", shell, "attributes", keys=["display_pub", "events", "display_trap"]))
    if publisher is not None:
        watches.append(Watch("shell.display_pub", publisher, "instance"))
        watches.append(Watch(type(publisher).__name__, type(publisher), "class"))
        session = getattr(publisher, "session", None)
        if session is not None:
            watches.append(Watch("shell.display_pub.session", session, "instance"))
            watches.append(Watch(type(session).__name__, type(session), "class"))
    _state["events"] = {event: list(shell.events.callbacks.get(event, [])) for event in EVENTS}
    _state["transformers"] = {name: list(value) for name, value in _transformer_lists(shell).items()}
    _state["threads"] = {thread.ident for thread in threading.enumerate()}
    kernel_side.call_when_imported("torch", _watch_torch)
    _state["installed"] = True
    kernel_side._state["display"]({GUARD_MIME: {"token": kernel_side._state["token"], "installed": True}}, raw=True)


def run_probe(name: str, inputs_json: str) -> None:
    """What the grader's probe cells call: check and restore, then kernel_side's run_probe (never raises from the
    checks; kernel_side displays the answer with the findings)."""
    _state["probe"] = name
    try:
        _state["pending"] = _before_probe()
    except Exception as error:  # a broken check must not lose the answer; report it
        _state["pending"] = ([f"the grader's integrity check failed ({type(error).__name__}: {error})"], "")
    _state["kernel_side"].run_probe(name, inputs_json)
