"""What the probe server can be asked to do with the notebook's definitions and trained models (runs in the sandbox).

Each call takes plain arguments drawn by the grader for this call (numpy arrays, numbers) and returns plain data:
numpy arrays, numbers, strings, lists and dicts. Student objects never leave: a tensor the notebook returns is
converted with torch's own (unbound) methods after checking that it is exactly a tensor, so a notebook class cannot
lie about its value through an overridden `.numpy()`, `__float__` or `__eq__`. Nothing here judges anything.

The grader composes these calls into probes (probes.py); the state they use:
- `ns`: the namespace of the notebook's definitions (definitions.py chose the statements);
- `models`: name -> trained torch module ("vae", "gaussian_vae", "ae_models.0", ...), rebuilt from the notebook's
  own classes and the weights exported at the end of the run.
Standalone (numpy and torch only): copied into the sandbox next to server.py.
"""
import math

import numpy as np

CHUNK = 2048          # rows per forward pass
MODEL_VARIANTS = ("trained", "fresh")


class CallError(Exception):
    """The notebook's code did not return what the contract asks; the message is for the student."""


def _torch():
    import torch
    return torch


def tensor_from(array, like=None):
    torch = _torch()
    dtype = torch.float32
    if like is not None:
        parameter = next(iter(like.parameters()), None) if hasattr(like, "parameters") else None
        if parameter is not None and parameter.is_floating_point():
            dtype = parameter.dtype
    return torch.as_tensor(np.asarray(array, dtype=np.float64)).to(dtype)


def exact_tensor(value, what: str):
    """`value` as a plain torch.Tensor (subclasses are viewed as the base class); CallError otherwise."""
    torch = _torch()
    if not isinstance(value, torch.Tensor):
        raise CallError(f"{what} must be a torch tensor, got {type(value).__name__}")
    if type(value) is not torch.Tensor and type(value) is not torch.nn.Parameter:
        value = torch.Tensor.as_subclass(value, torch.Tensor)
    return value


def as_array(value, what: str, dtype=np.float32) -> np.ndarray:
    torch = _torch()
    value = exact_tensor(value, what)
    value = torch.Tensor.detach(value)
    value = torch.Tensor.to(value, device="cpu", dtype=torch.float64)
    return torch.Tensor.numpy(value).astype(dtype, copy=True)


def as_scalar(value, what: str) -> float:
    array = as_array(value, what, np.float64)
    if array.size != 1:
        raise CallError(f"{what} must be one number (a scalar tensor), got shape {list(array.shape)}")
    return float(array.reshape(()))


def lookup(ns: dict, name: str):
    if name not in ns:
        raise CallError(f"{name} is not defined by the notebook")
    return ns[name]


def _seeded(seed: int):
    torch = _torch()
    torch.manual_seed(int(seed))


# --- small functions ---------------------------------------------------------------------------------------------

def call_kl(ns, models, args):
    kl = lookup(ns, "kl_divergence")
    torch = _torch()
    mu, lss = tensor_from(args["mu"]), tensor_from(args["log_sigma_squared"])
    with torch.no_grad():
        single = [as_scalar(kl(mu[i:i + 1].clone(), lss[i:i + 1].clone()), "kl_divergence") for i in range(len(mu))]
        batch = as_scalar(kl(mu.clone(), lss.clone()), "kl_divergence")
        doubled = as_scalar(kl(torch.cat([mu, mu]), torch.cat([lss, lss])), "kl_divergence")
    return {"single": single, "batch": batch, "batch_doubled": doubled}


def call_losses(ns, models, args):
    """Each loss on the grader's batch, on that batch repeated twice, and the Gaussian loss at a second variance."""
    torch = _torch()
    x, xr = tensor_from(args["x"]), tensor_from(args["x_reconstructed"])
    mu, lss = tensor_from(args["mu"]), tensor_from(args["log_sigma_squared"])
    doubled = [torch.cat([t, t]) for t in (x, xr, mu, lss)]
    value, errors = {}, {}
    for key, name in (("bernoulli", "bernoulli_vae_loss"), ("gaussian", "gaussian_vae_loss")):
        try:
            loss = lookup(ns, name)
            with torch.no_grad():
                value[key] = as_scalar(loss(x.clone(), xr.clone(), mu.clone(), lss.clone()), name)
                value[f"{key}_doubled"] = as_scalar(loss(*[t.clone() for t in doubled]), name)
                if key == "gaussian":
                    value["gaussian_variance"] = float(args["variance"])
                    value["gaussian_at_variance"] = as_scalar(
                        loss(x.clone(), xr.clone(), mu.clone(), lss.clone(), variance=float(args["variance"])), name)
        except Exception as error:  # noqa: BLE001 - the student's code may raise anything
            value.setdefault(key, None)
            errors[key] = str(error) if isinstance(error, CallError) else error_text(error)
    if len(errors) == 2:
        raise CallError("; ".join(f"{key}: {text}" for key, text in errors.items()))
    if errors:
        value["errors"] = errors
    return value


def call_reparameterize(ns, models, args):
    """n draws from reparameterize(mu, lss) with torch seeded by the grader; then two more calls on the same small
    batch WITHOUT reseeding, to see whether consecutive calls draw new noise."""
    reparameterize = lookup(ns, "reparameterize")
    torch = _torch()
    n = int(args["n"])
    mu = tensor_from(args["mu"]).requires_grad_(True)
    lss = tensor_from(args["log_sigma_squared"]).requires_grad_(True)
    k = mu.shape[0]
    _seeded(args["seed"])
    z = exact_tensor(reparameterize(mu.unsqueeze(0).expand(n, k), lss.unsqueeze(0).expand(n, k)), "reparameterize")
    if list(z.shape) != [n, k]:
        raise CallError(f"reparameterize returned shape {list(z.shape)} for inputs of shape {[n, k]}")
    samples = as_array(z, "reparameterize", np.float64)
    grad_mu = grad_lss = False
    if z.requires_grad:
        torch.Tensor.backward(torch.Tensor.sum(z))
        grad_mu = mu.grad is not None and bool((mu.grad != 0).any())
        grad_lss = lss.grad is not None and bool((lss.grad != 0).any())
    with torch.no_grad():
        small_mu, small_lss = mu.detach()[None].repeat(8, 1), lss.detach()[None].repeat(8, 1)
        first = as_array(reparameterize(small_mu.clone(), small_lss.clone()), "reparameterize", np.float64)
        second = as_array(reparameterize(small_mu.clone(), small_lss.clone()), "reparameterize", np.float64)
    return {"samples": samples, "grad_mu_nonzero": grad_mu, "grad_log_sigma_squared_nonzero": grad_lss,
            "repeat_first": first, "repeat_second": second}


def call_pca(ns, models, args):
    from sklearn.decomposition import PCA
    data = np.asarray(args["data"], dtype=np.float64)
    coordinates = np.asarray(args["coordinates"], dtype=np.float64)
    pca = PCA(n_components=int(args["k"]), svd_solver="full").fit(data)
    value, errors = {}, {}
    for key, name, argument in (("encode", "pca_encode", data), ("reconstruct", "pca_reconstruct", data),
                                ("generate", "pca_generate", coordinates)):
        try:
            result = lookup(ns, name)(pca, argument.copy())
            value[key] = plain_matrix(result, name)
        except Exception as error:  # noqa: BLE001
            value[key] = None
            errors[key] = str(error) if isinstance(error, CallError) else error_text(error)
    if len(errors) == 3:
        raise CallError("; ".join(f"{key}: {text}" for key, text in errors.items()))
    if errors:
        value["errors"] = errors
    return value


def plain_matrix(value, what: str) -> np.ndarray:
    """A numpy array from a numpy array or a tensor (exact types only)."""
    torch = _torch()
    if isinstance(value, torch.Tensor):
        return as_array(value, what, np.float64)
    if type(value) is not np.ndarray:
        raise CallError(f"{what} must return a numpy array, got {type(value).__name__}")
    return np.array(value, dtype=np.float64, copy=True)


# --- the contract's classes, freshly built --------------------------------------------------------------------------

def _param_grads(module) -> tuple[int, int]:
    """(parameter tensors, those with a non-zero gradient)."""
    parameters = [p for p in module.parameters() if p.requires_grad]
    return len(parameters), sum(1 for p in parameters if p.grad is not None and bool((p.grad != 0).any()))


def call_encoder(ns, models, args):
    """VAEEncoder(dim_input, dim_latent) built twice (two grader seeds) on the grader's x: both outputs, and which
    parameters receive a gradient."""
    encoder_class = lookup(ns, "VAEEncoder")
    torch = _torch()
    results = []
    for case in args["cases"]:
        outputs = []
        for seed in case["init_seeds"]:
            _seeded(seed)
            encoder = encoder_class(int(case["dim_input"]), int(case["dim_latent"]))
            x = tensor_from(case["x"], encoder)
            output = encoder(x)
            if not isinstance(output, (tuple, list)) or len(output) != 2:
                raise CallError(f"VAEEncoder.forward must return (mu, log_sigma_squared), got "
                                f"{type(output).__name__}")
            mu, lss = exact_tensor(output[0], "mu"), exact_tensor(output[1], "log_sigma_squared")
            total = torch.Tensor.sum(mu) + torch.Tensor.sum(lss)
            grads = (0, 0)
            if total.requires_grad:
                torch.Tensor.backward(total)
                grads = _param_grads(encoder)
            outputs.append({"mu": as_array(mu, "mu"), "log_sigma_squared": as_array(lss, "log_sigma_squared"),
                            "parameters": grads[0], "parameters_with_gradient": grads[1]})
        results.append(outputs)
    return results


def call_decoder(ns, models, args):
    decoder_class = lookup(ns, "VAEDecoder")
    torch = _torch()
    results = []
    for case in args["cases"]:
        outputs = []
        for seed in case["init_seeds"]:
            _seeded(seed)
            decoder = decoder_class(int(case["dim_latent"]), int(case["dim_output"]))
            z = tensor_from(case["z"], decoder)
            output = exact_tensor(decoder(z), "VAEDecoder output")
            grads = (0, 0)
            if output.requires_grad:
                torch.Tensor.backward(torch.Tensor.sum(output))
                grads = _param_grads(decoder)
            outputs.append({"output": as_array(output, "VAEDecoder output"), "parameters": grads[0],
                            "parameters_with_gradient": grads[1]})
        results.append(outputs)
    return results


# --- trained models -----------------------------------------------------------------------------------------------

def model_for(models, fresh, args):
    name = args["model"]
    if name not in models:
        raise CallError(f"no trained model '{name}' was exported by the notebook")
    if args.get("variant", "trained") == "fresh":
        return fresh(name, int(args["seed"]))
    return models[name]


def _in_chunks(function, x, like):
    torch = _torch()
    outputs = []
    with torch.no_grad():
        for start in range(0, len(x), CHUNK):
            outputs.append(function(tensor_from(x[start:start + CHUNK], like)))
    return outputs


def _part(module, name):
    part = getattr(module, name, None)
    if part is None or not callable(part):
        raise CallError(f"the model has no callable .{name}")
    return part


def call_encode(ns, models, args, fresh):
    """mu and log_sigma_squared of model.encoder on the grader's images (a VAE)."""
    model = model_for(models, fresh, args)
    encoder = _part(model, "encoder")
    mus, lsss = [], []
    for output in _in_chunks(encoder, np.asarray(args["x"]), model):
        if not isinstance(output, (tuple, list)) or len(output) != 2:
            raise CallError("model.encoder must return (mu, log_sigma_squared)")
        mus.append(as_array(output[0], "mu"))
        lsss.append(as_array(output[1], "log_sigma_squared"))
    return {"mu": np.concatenate(mus), "log_sigma_squared": np.concatenate(lsss)}


def call_decode(ns, models, args, fresh):
    """model.decoder on the grader's z, as float32 (or uint8 x 255 when `as_uint8`), flattened to (n, pixels)."""
    model = model_for(models, fresh, args)
    decoder = _part(model, "decoder")
    z = np.asarray(args["z"])
    outputs = [as_array(output, "decoder output") for output in _in_chunks(decoder, z, model)]
    images = np.concatenate(outputs).reshape(len(z), -1) if outputs else np.zeros((0, 0), np.float32)
    if args.get("as_uint8"):
        return {"images": np.rint(np.clip(np.nan_to_num(images), 0.0, 1.0) * 255.0).astype(np.uint8)}
    return {"images": images}


def call_autoencode(ns, models, args, fresh):
    """An autoencoder's codes (model.encoder) and reconstructions (model(x)) of the grader's images."""
    model = model_for(models, fresh, args)
    x = np.asarray(args["x"])
    codes = [as_array(output, "codes") for output in _in_chunks(_part(model, "encoder"), x, model)]
    recon = [as_array(output, "reconstruction") for output in _in_chunks(model, x, model)]
    return {"codes": np.concatenate(codes).reshape(len(x), -1),
            "reconstructions": np.concatenate(recon).reshape(len(x), -1)}


def call_decoder_gradients(ns, models, args, fresh):
    """Which of model.decoder's parameters receive a gradient from its outputs at the grader's z."""
    torch = _torch()
    model = model_for(models, fresh, args)
    decoder = _part(model, "decoder")
    decoder.zero_grad(set_to_none=True)
    output = exact_tensor(decoder(tensor_from(args["z"], model)), "decoder output")
    if not output.requires_grad:
        return {"parameters": _param_grads(decoder)[0], "parameters_with_gradient": 0}
    torch.Tensor.backward(torch.Tensor.sum(output))
    total, with_gradient = _param_grads(decoder)
    decoder.zero_grad(set_to_none=True)
    return {"parameters": total, "parameters_with_gradient": with_gradient}


SIMPLE_CALLS = {"kl": call_kl, "losses": call_losses, "reparameterize": call_reparameterize, "pca": call_pca,
                "encoder": call_encoder, "decoder": call_decoder}
MODEL_CALLS = {"encode": call_encode, "decode": call_decode, "autoencode": call_autoencode,
               "decoder_gradients": call_decoder_gradients}


def error_text(error: BaseException, limit: int = 500) -> str:
    return f"{type(error).__name__}: {error}"[:limit]


def finite(value: float) -> bool:
    return isinstance(value, float) and math.isfinite(value)
