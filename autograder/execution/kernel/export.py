"""The last grader cell of a run, INSIDE the student's kernel: writes what the notebook ended with to two files.

- `export.json`: which contract names exist; the reported values (training histories, the sweep), as plain floats;
  for each trained model (`vae`, `gaussian_vae`, each of `ae_models`) its class name and its parameter names.
- `weights.npz`: every model's state_dict as plain numeric arrays, keys "<model>/<parameter>" (np.savez of numbers
  only; the grader loads it with allow_pickle=False).
- the kernel watch's findings (what the notebook did to the grader's machinery in the kernel), under "kernel".
Nothing here is trusted: the notebook's code ran in this process and may have changed any of it. The grader checks
every reported value against its own computation with the rebuilt models (autograder/probing/), and judges the
models only by what they do on inputs it draws later, in another process.
Plain source, injected as text by the setup cell (autograder/execution/notebook.py).
"""
import json
import math
import os

EXPORT_FOLDER = ".labgrader-export"     # in the submission's folder; the grader passes the path to export()
EXPORT_JSON = "export.json"
EXPORT_WEIGHTS = "weights.npz"
MODEL_NAMES = ("vae", "gaussian_vae")
MODEL_LISTS = ("ae_models",)
REPORTED_LISTS = ("vae_history", "gaussian_vae_history")
CONTRACT_NAMES = (
    "FF", "Autoencoder", "VAEEncoder", "VAEDecoder", "VAE", "reparameterize", "kl_divergence",
    "bernoulli_vae_loss", "gaussian_vae_loss", "pca_encode", "pca_generate", "pca_reconstruct", "ae_histories",
    "SWEEP_DIMS", "reconstruction_errors", "vae", "vae_history", "gaussian_vae", "gaussian_vae_history", "ae_models",
)
MAX_LIST = 100_000


def _floats(values) -> list:
    if hasattr(values, "detach"):
        values = values.detach().cpu().reshape(-1).tolist()
    out = []
    for value in list(values)[:MAX_LIST]:
        if hasattr(value, "item"):
            value = value.item()
        value = float(value)
        out.append(value if math.isfinite(value) else None)
    return out


def _state_arrays(module) -> dict:
    import numpy as np
    import torch
    module = getattr(module, "_orig_mod", module)    # torch.compile's wrapper
    arrays = {}
    for key, value in module.state_dict().items():
        if not isinstance(value, torch.Tensor):
            continue
        value = value.detach().cpu()
        value = value.to(torch.float32) if value.is_floating_point() else value.to(torch.int64)
        arrays[key] = np.ascontiguousarray(value.numpy())
    return arrays


def export(folder: str, ns: dict, watch_report=None) -> None:
    import numpy as np
    report = {"names": {name: name in ns for name in CONTRACT_NAMES}, "values": {}, "models": {}, "errors": {},
              "kernel": []}
    if watch_report is not None:
        try:
            report["kernel"] = [str(text)[:300] for text in watch_report()][:30]
        except Exception as error:  # noqa: BLE001
            report["kernel"] = [f"the grader's kernel watch failed ({type(error).__name__}: {error})"[:300]]
    try:
        import torch
        module_type = torch.nn.Module
    except ImportError:
        module_type = None
    weights = {}

    def add_model(key: str, obj) -> None:
        if module_type is None or not isinstance(obj, module_type):
            report["errors"][key] = f"not a torch.nn.Module ({type(obj).__name__})"
            return
        inner = getattr(obj, "_orig_mod", obj)
        try:
            arrays = _state_arrays(inner)
        except Exception as error:  # noqa: BLE001
            report["errors"][key] = f"{type(error).__name__}: {error}"[:300]
            return
        report["models"][key] = {"class": type(inner).__name__, "qualname": type(inner).__qualname__,
                                 "parameters": sorted(arrays)}
        weights.update({f"{key}/{name}": array for name, array in arrays.items()})

    for name in MODEL_NAMES:
        if name in ns:
            add_model(name, ns[name])
    for name in MODEL_LISTS:
        if isinstance(ns.get(name), (list, tuple)):
            for index, obj in enumerate(ns[name][:10]):
                add_model(f"{name}.{index}", obj)
    for name in REPORTED_LISTS:
        try:
            report["values"][name] = _floats(ns[name]) if name in ns else None
        except Exception as error:  # noqa: BLE001
            report["errors"][name] = f"{type(error).__name__}: {error}"[:300]
    try:
        runs = ns.get("ae_histories")
        report["values"]["ae_histories"] = [_floats(run) for run in runs[:10]] if runs is not None else None
    except Exception as error:  # noqa: BLE001
        report["errors"]["ae_histories"] = f"{type(error).__name__}: {error}"[:300]
    try:
        dims = ns.get("SWEEP_DIMS")
        errors = ns.get("reconstruction_errors")
        report["values"]["SWEEP_DIMS"] = [int(d) for d in dims][:1000] if dims is not None else None
        report["values"]["reconstruction_errors"] = (
            {str(key): _floats(values) for key, values in list(errors.items())[:10]} if isinstance(errors, dict)
            else None)
    except Exception as error:  # noqa: BLE001
        report["errors"]["sweep"] = f"{type(error).__name__}: {error}"[:300]
    os.makedirs(folder, exist_ok=True)
    np.savez(os.path.join(folder, EXPORT_WEIGHTS), **weights)
    with open(os.path.join(folder, EXPORT_JSON), "w") as handle:
        json.dump(report, handle)
