"""The probe server: a fresh Python process, inside the submission's sandbox, that the grader drives over a pipe.

Usage (by autograder/probing/client.py only): python -I server.py  -- frames on stdin/stdout (wire.py).

It starts with nothing of the student's run: no kernel, no hooks, no files of the run, and it can start while the
notebook still runs (its imports then cost no waiting). The grader sends, in order:
1. {"op": "define", "statements": [...], "names": [...]}: the notebook's definitions (imports, functions, classes,
   cheap assignments: chosen by the grader, definitions.py), executed one statement at a time with a time limit
   each (a failing statement is reported and skipped). Reply "defined": which contract names exist, which
   statements failed, and what the definitions changed in the interpreter ("tamper").
2. {"op": "load", "models": {...}, "weights": {...}}: each model the notebook's run ended with, rebuilt from the
   notebook's own class and loaded with the exported weights. Reply "loaded".
3. {"op": "call", "id": NONCE, "call": NAME, "args": {...}}: one call of calls.py on inputs the grader draws for
   this call; reply {"id": NONCE, "ok": true, "value": ...} or {"id": NONCE, "ok": false, "error": "..."}.
4. {"op": "stop"}.
The result channel is a private copy of the original stdout; fd 0 and 1 point at /dev/null once the first frame is
read, so the notebook's prints cannot enter the channel. Code in this process can still reach anything here; what
keeps answers honest is that every input is drawn by the grader for the call that uses it, so an answer can only
be right by computing it, and the grader judges every answer itself.
"""
import ast
import os
import signal
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import calls  # noqa: E402  (the sandbox copy: plain modules next to this file)
import wire   # noqa: E402

STATEMENT_TIMEOUT_S = 5.0
DEFINITIONS_BUDGET_S = 30.0
CALL_TIMEOUT_S = 60.0
CONSTRUCT_TIMEOUT_S = 10.0


class Timeout(Exception):
    pass


def _alarm(_signum, _frame):
    raise Timeout("time limit reached")


class Channel:
    def __init__(self):
        self.read_fd = os.dup(0)
        self.write_fd = os.dup(1)
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 0)
        os.dup2(devnull, 1)
        os.close(devnull)
        sys.stdin = open(os.devnull)
        sys.stdout = open(os.devnull, "w")

    def _read_exactly(self, size: int) -> bytes:
        chunks, left = [], size
        while left:
            chunk = os.read(self.read_fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    def receive(self):
        return wire.read_frame(self._read_exactly)

    def send(self, value) -> None:
        data = wire.dumps(value)
        view = memoryview(data)
        while view:
            written = os.write(self.write_fd, view)
            view = view[written:]


# --- what the notebook's definitions may change in this interpreter ------------------------------------------------

def _interpreter_state() -> dict:
    import builtins
    import json
    state = {
        "trace function": sys.gettrace(), "profile function": sys.getprofile(),
        "threads": tuple(sorted(t.ident or 0 for t in threading.enumerate())),
        "import hooks (sys.meta_path)": tuple(id(f) for f in sys.meta_path),
        "path hooks": tuple(id(h) for h in sys.path_hooks),
        "signal handler": signal.getsignal(signal.SIGALRM),
        "os.write": os.write, "os.read": os.read, "json.dumps": json.dumps, "json.loads": json.loads,
        "builtins": {name: id(value) for name, value in vars(builtins).items()},
        "probe server modules": (id(sys.modules.get("calls")), id(sys.modules.get("wire"))),
        "probe server functions": tuple(id(value) for module in (calls, wire) for value in vars(module).values()
                                        if callable(value)),
    }
    torch = sys.modules.get("torch")
    if torch is not None:
        state["torch.Tensor"] = {name: id(value) for name, value in vars(torch.Tensor).items()}
        state["torch"] = {name: id(value) for name, value in vars(torch).items() if callable(value)}
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        state["numpy"] = {name: id(value) for name, value in vars(numpy).items() if callable(value)}
    return state


def changed(before: dict, after: dict) -> list:
    """What differs; for namespaces (dicts) only the names that existed before count, each reported by name."""
    found = []
    for name, value in before.items():
        now = after.get(name)
        if isinstance(value, dict) and isinstance(now, dict):
            found += [f"{name}.{key}" for key, item in value.items() if now.get(key) != item][:10]
        elif value != now:
            found.append(name)
    return found


# --- definitions and models ----------------------------------------------------------------------------------------

def is_import(source: str) -> bool:
    """An `import` / `from ... import` statement: it runs only installed packages (the server has no view of the
    submission's files), so it gets the rest of the definitions' budget rather than one statement's limit, which a
    cold `import torchvision` or scikit-learn can pass on a busy machine."""
    try:
        body = ast.parse(source).body
    except SyntaxError:
        return False
    return bool(body) and all(isinstance(node, (ast.Import, ast.ImportFrom)) for node in body)


def run_statements(statements: list, ns: dict) -> list:
    """Execute each statement with its own time limit; returns [{"cell", "line", "error"}] for the ones that failed.
    The modules a failed statement had started to import are forgotten: a package interrupted half-way (its
    submodules cached, itself not) fails every later import of it (scipy.ndimage: "name '_ndimage_api' is not
    defined"), which would cost the probes that import it again."""
    failed = []
    budget_end = time.monotonic() + DEFINITIONS_BUDGET_S
    for statement in statements:
        left = budget_end - time.monotonic()
        where = {"cell": statement.get("cell"), "line": statement.get("line")}
        if left <= 0:
            failed.append({**where, "error": "not run: the time for definitions was used up"})
            continue
        modules = set(sys.modules)
        try:
            code = compile(statement["source"], f"<notebook cell {statement.get('cell')}>", "exec")
            limit = left if is_import(statement["source"]) else min(STATEMENT_TIMEOUT_S, left)
            signal.setitimer(signal.ITIMER_REAL, limit)
            try:
                exec(code, ns)  # noqa: S102 - the notebook's own definitions, inside the sandbox
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
        except BaseException as error:  # noqa: BLE001 - SystemExit and Timeout included
            for name in set(sys.modules) - modules:
                sys.modules.pop(name, None)
            failed.append({**where, "error": calls.error_text(error, 300)})
    return failed


def _state_matches(module, weights: dict) -> bool:
    state = module.state_dict()
    return set(state) == set(weights) and all(tuple(state[k].shape) == tuple(weights[k].shape) for k in state)


class Models:
    """The exported models, rebuilt from the notebook's classes: how each was built, to build fresh copies."""

    def __init__(self, ns: dict):
        self.ns = ns
        self.trained = {}
        self.builders = {}

    def _candidates(self, spec: dict):
        cls = self.ns.get(spec["class"])
        if cls is None:
            raise calls.CallError(f"its class {spec['class']} is not defined at the top level of the notebook")
        if spec.get("constructor"):
            yield spec["constructor"], lambda: eval(spec["constructor"], self.ns)  # noqa: S307
        import inspect
        import itertools
        try:
            parameters = [p for p in inspect.signature(cls).parameters.values()
                          if p.default is inspect.Parameter.empty and p.kind in
                          (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        except (TypeError, ValueError):
            parameters = []
        sizes = [int(s) for s in spec.get("sizes", [])][:6]
        seen = set()
        for args in itertools.chain([()], itertools.permutations(sizes, len(parameters)),
                                    itertools.product(sizes, repeat=len(parameters))):
            if args in seen:
                continue
            seen.add(args)
            yield f"{spec['class']}{tuple(args)}", (lambda a=args: cls(*a))

    def load(self, name: str, spec: dict, weights: dict) -> str:
        import torch
        tried = 0
        for description, build in self._candidates(spec):
            tried += 1
            if tried > 60:
                break
            try:
                signal.setitimer(signal.ITIMER_REAL, CONSTRUCT_TIMEOUT_S)
                try:
                    torch.manual_seed(0)
                    module = build()
                finally:
                    signal.setitimer(signal.ITIMER_REAL, 0)
            except BaseException:  # noqa: BLE001
                continue
            if not isinstance(module, torch.nn.Module):
                continue
            module = getattr(module, "_orig_mod", module)
            if not _state_matches(module, weights):
                continue
            module.load_state_dict({k: torch.as_tensor(v) for k, v in weights.items()}, strict=True)
            module.eval()
            self.trained[name] = module
            self.builders[name] = build
            return description
        raise calls.CallError(f"{name} could not be rebuilt: no way of building {spec['class']} gave a model with the "
                              f"same parameters as the trained one (the grader tried {spec['class']}(784, 2) and the "
                              f"sizes of its layers)")

    def fresh(self, name: str, seed: int):
        import torch
        torch.manual_seed(seed)
        module = self.builders[name]()
        module = getattr(module, "_orig_mod", module)
        module.eval()
        return module


def define(message: dict) -> tuple[dict, dict]:
    ns = {"__name__": "__notebook__", "__builtins__": __builtins__}
    failed = run_statements(message.get("statements") or [], ns)
    defined = {name: name in ns for name in message.get("names") or []}
    return {"defined": defined, "failed_statements": failed[:50], "failed_count": len(failed)}, ns


def load(message: dict, models: "Models") -> dict:
    loaded = {}
    for name, spec in (message.get("models") or {}).items():
        weights = (message.get("weights") or {}).get(name) or {}
        try:
            loaded[name] = {"ok": True, "built_as": models.load(name, spec, weights)}
        except Exception as error:  # noqa: BLE001
            loaded[name] = {"ok": False, "error": calls.error_text(error)}
    return {"models": loaded}


def answer(message: dict, ns: dict, models: Models) -> dict:
    name = message.get("call")
    args = message.get("args") or {}
    try:
        signal.setitimer(signal.ITIMER_REAL, CALL_TIMEOUT_S)
        try:
            if name in calls.SIMPLE_CALLS:
                value = calls.SIMPLE_CALLS[name](ns, models.trained, args)
            elif name in calls.MODEL_CALLS:
                value = calls.MODEL_CALLS[name](ns, models.trained, args, models.fresh)
            else:
                raise calls.CallError(f"unknown call {name!r}")
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        wire.dumps(value)  # plain data only, or this answer is an error
        return {"ok": True, "value": value}
    except calls.CallError as error:
        return {"ok": False, "error": str(error)[:500]}
    except BaseException as error:  # noqa: BLE001
        return {"ok": False, "error": calls.error_text(error)}


GRADER_FORMAT = "application/vnd.labgrader"
_displayed = []     # what the notebook's code tried to display in the grader's formats while the grader called it


def _trap_displays() -> None:
    """IPython's display functions, as the notebook's code sees them here (there is no kernel to show anything):
    calls that carry the grader's output formats are recorded as an attempt to forge answers."""
    try:
        import IPython.core.display_functions as functions
        import IPython.display
    except ImportError:
        return

    def display(*objects, **kwargs):
        for obj in objects:
            if isinstance(obj, dict) and any(str(key).startswith(GRADER_FORMAT) for key in obj):
                _displayed.append("displayed outputs in the grader's formats while the grader called it")

    def publish_display_data(data=None, *args, **kwargs):
        display(data if isinstance(data, dict) else {})

    for module in (functions, IPython.display):
        module.display = display
        module.publish_display_data = publish_display_data


def main() -> int:
    channel = Channel()
    signal.signal(signal.SIGALRM, _alarm)
    # Imported before the notebook's definitions, so the snapshot holds the originals. torch._dynamo (which
    # torchvision imports) replaces some of torch's functions by wrappers when it is first imported.
    import numpy  # noqa: F401
    import torch
    import torch._dynamo  # noqa: F401
    torch.set_num_threads(1)
    _trap_displays()
    before = _interpreter_state()
    ns, models, reported = {}, None, set()
    while True:
        try:
            message = channel.receive()
        except EOFError:
            return 0
        op = message.get("op")
        if op == "stop":
            return 0
        if op == "define" and models is None:
            reply, ns = define(message)
            models = Models(ns)
            reply = {"op": "defined", **reply}
        elif op == "load" and models is not None:
            reply = {"op": "loaded", **load(message, models)}
        elif op == "call" and models is not None:
            reply = {"id": message.get("id"), **answer(message, ns, models)}
        else:
            reply = {"op": "error", "error": f"unexpected {op!r}"}
        now = ({f"changed {name}" for name in changed(before, _interpreter_state())} | set(_displayed)) - reported
        if now:
            reply["tamper"] = sorted(now)
            reported |= now
        signal.signal(signal.SIGALRM, _alarm)
        channel.send(reply)


if __name__ == "__main__":
    sys.exit(main())
