"""Runs INSIDE the student's kernel: notices what the notebook did to the grader's machinery there.

Nothing the grader trusts runs in the kernel any more (the student's functions are probed in a fresh process), but
two grader pieces still do: the figure recorder (kernel_side: a post_execute callback and a print_figure hook) and
the export cell at the end. `install()` (from the setup cell, before any student code) takes references to what
they rely on; `report()` (from the export cell) lists, by identity against those references, what changed:
IPython event callbacks, the display publisher, display hook and formatters, input and AST transformers, trace
and profile functions, import hooks, figure managers of classes that did not exist at the start, the recorder's own
functions and state. Names, `__module__`, `__wrapped__` and code file names are never trusted: only identity.
The notebook's code shares this process and can defeat this too; the grader also scans the source
(autograder/execution/integrity.py) and never takes a number from the kernel without checking it against the
models it probes itself. Plain source, injected as text next to kernel_side.
"""
import sys

EVENTS = ("pre_execute", "pre_run_cell", "post_execute", "post_run_cell", "shell_initialized")
KERNEL_REPLACED_BUILTINS = ("input", "raw_input", "_")   # ipykernel rebinds these for every cell it runs
MAX_LISTED = 8
_state = {"installed": False}


def _shell():
    from IPython import get_ipython
    return get_ipython()


def _ids(items) -> list:
    return [id(item) for item in items]


def _transformer_lists(shell) -> dict:
    lists = {"AST transformers": getattr(shell, "ast_transformers", None),
             "input transformers": getattr(shell, "input_transformers_post", None)}
    manager = getattr(shell, "input_transformer_manager", None)
    for name in ("cleanup_transforms", "line_transforms", "token_transformers"):
        lists[f"input transformers ({name})"] = getattr(manager, name, None)
    return {name: value for name, value in lists.items() if isinstance(value, list)}


def _display_parts(shell) -> dict:
    """Objects of IPython's display path, and the functions they hold in their own __dict__."""
    parts = {"display publisher": getattr(shell, "display_pub", None),
             "display hook": getattr(shell, "displayhook", None),
             "display formatter": getattr(shell, "display_formatter", None),
             "sys.displayhook": sys.displayhook}
    formatter = parts["display formatter"]
    for mime, item in (getattr(formatter, "formatters", None) or {}).items():
        parts[f"formatter {mime}"] = item
    return parts


def _instance_functions(obj) -> dict:
    try:
        space = object.__getattribute__(obj, "__dict__")
    except (AttributeError, TypeError):
        return {}
    return {name: id(value) for name, value in list(space.items()) if callable(value)}


def _manager_classes() -> set:
    try:
        from matplotlib.backend_bases import FigureManagerBase
    except ImportError:
        return set()
    found, stack = set(), [FigureManagerBase]
    while stack:
        cls = stack.pop()
        if id(cls) not in found:
            found.add(id(cls))
            stack.extend(type.__subclasses__(cls))
    return found


def install(kernel_side) -> None:
    if _state["installed"]:
        return
    shell = _shell()
    import builtins
    from matplotlib.backend_bases import FigureCanvasBase
    _state.update({
        "installed": True, "kernel_side": kernel_side,
        "kernel_side_functions": {name: id(value) for name, value in vars(kernel_side).items() if callable(value)},
        "kernel_side_state": id(kernel_side._state),
        "events": {event: _ids(shell.events.callbacks.get(event, [])) for event in EVENTS},
        "transformers": {name: _ids(value) for name, value in _transformer_lists(shell).items()},
        "display": {name: (id(obj), id(type(obj)), _instance_functions(obj))
                    for name, obj in _display_parts(shell).items()},
        "print_figure": id(FigureCanvasBase.print_figure),
        "meta_path": _ids(sys.meta_path), "path_hooks": _ids(sys.path_hooks),
        "builtins": {name: id(value) for name, value in vars(builtins).items()},
        "manager_classes": _manager_classes(),
    })


def _listing(items) -> str:
    items = list(dict.fromkeys(items))
    more = f" and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else ""
    return ", ".join(items[:MAX_LISTED]) + more


def _call_when_imported_finders() -> set:
    """The import hooks kernel_side installed itself (finders waiting for torch), by identity."""
    return {id(finder) for finder in _state["kernel_side"]._state.get("finders", [])}


def report() -> list:
    """What changed since install(), as plain sentences (empty when nothing did)."""
    if not _state["installed"]:
        return ["the grader's kernel watch was not installed before the notebook ran"]
    shell = _shell()
    found = []
    for event in EVENTS:
        added = [cb for cb in shell.events.callbacks.get(event, []) if id(cb) not in _state["events"][event]]
        if added:
            found.append(f"IPython '{event}' callbacks were registered ({_listing(_name(cb) for cb in added)})")
        removed = set(_state["events"][event]) - set(_ids(shell.events.callbacks.get(event, [])))
        if removed:
            found.append(f"IPython '{event}' callbacks of the grader were removed")
    for name, items in _transformer_lists(shell).items():
        if [i for i in _ids(items) if i not in _state["transformers"].get(name, [])]:
            found.append(f"IPython {name} were installed (they can rewrite cells)")
    for name, obj in _display_parts(shell).items():
        before = _state["display"].get(name)
        now = (id(obj), id(type(obj)), _instance_functions(obj))
        if before is None:
            continue
        if now[:2] != before[:2]:
            found.append(f"the {name} was replaced")
        elif now[2] != before[2]:
            found.append(f"functions of the {name} were replaced ({_listing(sorted(set(now[2]) ^ set(before[2]) or now[2]))})")
    from matplotlib.backend_bases import FigureCanvasBase
    if id(FigureCanvasBase.print_figure) != _state["print_figure"]:
        found.append("matplotlib's FigureCanvasBase.print_figure (the grader's figure hook) was replaced")
    try:
        import matplotlib._pylab_helpers as pylab_helpers
        managers = pylab_helpers.Gcf.figs.values() if isinstance(pylab_helpers.Gcf.figs, dict) else []
        known = _state["manager_classes"]
        odd = [type(m).__name__ for m in list(managers) if id(type(m)) not in known]
        if odd:
            found.append(f"figure managers of classes defined by the notebook were registered ({_listing(odd)})")
    except Exception as error:  # noqa: BLE001
        found.append(f"matplotlib's figure registry could not be read ({type(error).__name__})")
    if sys.gettrace() is not None or sys.getprofile() is not None:
        found.append("a trace or profile function was installed")
    ours = _call_when_imported_finders()
    added_finders = [f for f in sys.meta_path if id(f) not in _state["meta_path"] and id(f) not in ours]
    if added_finders:
        found.append(f"import hooks were added to sys.meta_path ({_listing(type(f).__name__ for f in added_finders)})")
    import builtins
    changed = [name for name, value in vars(builtins).items()
               if name in _state["builtins"] and id(value) != _state["builtins"][name]
               and name not in KERNEL_REPLACED_BUILTINS]
    if changed:
        found.append(f"builtins were replaced ({_listing(changed)})")
    kernel_side = _state["kernel_side"]
    replaced = [name for name, value in vars(kernel_side).items()
                if name in _state["kernel_side_functions"] and id(value) != _state["kernel_side_functions"][name]]
    if replaced or id(kernel_side._state) != _state["kernel_side_state"]:
        found.append(f"the grader's figure recorder was modified ({_listing(replaced or ['its state'])})")
    return found


def _name(obj) -> str:
    return str(getattr(obj, "__qualname__", None) or type(obj).__name__)[:60]
