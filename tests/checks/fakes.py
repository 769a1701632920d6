"""Hand-made answers shaped exactly as the grader's probes shape them (autograder/probing/probes.py).

- Inputs come from the real `draw_*` functions, with run_all's per-probe random streams.
- Values come from the real `run_*` functions, which here talk to a fake probe server: each call the server knows
  (calls.py: kl, losses, reparameterize, pca, encoder, decoder, decode) is answered by simulated student code in
  numpy, in float32 as torch computes it, with the same outputs calls.py returns.
- What the notebook reported (histories, sweep) goes through run_histories / run_sweep from a Context.
- The grader's measurements of the trained models (vae_model, gaussian_vae_model, ae_models) are hand-made and
  plausible (`vae_model()` is a genuine trained VAE; keyword changes make it fail the gate), except the figures'
  grids, which the grader's own matcher (model_probes.match_grids) matches against a simulated decoder
  (`LookupDecoder`), as run_vae_model does.
- Figures are described by the kernel's recorder from real matplotlib figures (`picture_figure`, `subplots_figure`,
  `scatter_figure`), or written by hand (`figure`, `axes`, `line`, `image`) where pixels do not matter.
"""
from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure

from autograder.checks.figure_reader import read_grids
from autograder.execution.kernel import recorder
from autograder.probing import model_probes
from autograder.probing.probes import PROBES
from autograder.probing.session import Context

PIXELS = 784
BY_NAME = {probe.name: probe for probe in PROBES}


# --- inputs, and the probes run against a fake server ----------------------------------------------------------------

def draw_inputs(seed: int = 0) -> dict:
    """What run_all draws for every probe whose inputs the checks read (the model probes draw MNIST images and no
    check reads their inputs, so they are left out)."""
    drawn = {}
    for number, probe in enumerate(PROBES):
        if probe.draw not in (model_probes.draw_model, model_probes.draw_pca_figures):
            drawn[probe.name] = probe.draw(np.random.default_rng([seed, number]), None)
    return drawn


def context(values=None, errors=None, names=None, models=None, profile=None, data=None, figure_grids=()) -> Context:
    """The export's report (the notebook's values, the errors reading them, which names it defines: by default
    those of `values`), the server's load report, the profile, the grader's data, the figures' grids."""
    values = dict(values or {})
    names = {name: True for name in values} if names is None else dict(names)
    return Context(data=data, profile=dict(profile or {}),
                   reported={"values": values, "errors": dict(errors or {}), "names": names},
                   models=dict(models or {}), figure_grids=list(figure_grids))


def run_probe(name: str, inputs: dict | None = None, calls: dict | None = None, ctx: Context | None = None):
    """The value probe `name` returns when the server answers each call with `calls[call](**arguments)`."""
    calls = calls or {}

    def session(call, **arguments):
        return calls[call](**arguments)

    return BY_NAME[name].run(session, {} if inputs is None else inputs, ctx or context())


class Failed(str):
    """A probe that failed, with its error text: artefacts(kl=Failed("NameError: ..."))."""


def ok(value) -> dict:
    return {"ok": True, "value": value}


def artefacts(figures=(), names=None, **probe_values) -> dict:
    """The checks' `artefacts`: figures, {probe: {"ok", "value" | "error"}}, the contract's names."""
    answers = {name: ({"ok": False, "error": str(value)} if isinstance(value, Failed) else ok(value))
               for name, value in probe_values.items()}
    return {"figures": list(figures), "probes": answers, "names": dict(names or {})}


def f32(value) -> np.ndarray:
    return np.asarray(value, dtype=np.float32)


# --- VAEEncoder / VAEDecoder, built fresh with the grader's seeds ---------------------------------------------------

def _weights(seed, shape, scale=0.05) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, scale, shape).astype(np.float32)


def _encoder_network(x, k, seed):
    hidden = np.tanh(x @ _weights([seed, 0], (x.shape[1], 16)))
    return hidden @ _weights([seed, 1], (16, k), 0.5), hidden @ _weights([seed, 2], (16, k), 0.5)


def _bias(seed, k, batch):
    return np.broadcast_to(_weights([seed, 3], (k,), 1.0), (batch, k)).copy()


# variant -> (x, dim_latent, init seed) -> (mu, log_sigma_squared, parameters, parameters with a gradient)
ENCODERS = {
    "correct": lambda x, k, s: (*_encoder_network(x, k, s), 6, 6),
    "fixed_head": lambda x, k, s: (_encoder_network(x, 2, s)[0], _encoder_network(x, k, s)[1], 6, 6),
    "squeezed": lambda x, k, s: ((lambda mu, lss: (mu[0] if len(x) == 1 else mu, lss, 6, 6))
                                 (*_encoder_network(x, k, s))),                 # mu.squeeze(): (K,) for one row
    "zeros": lambda x, k, s: (np.zeros((len(x), k), np.float32), np.zeros((len(x), k), np.float32), 6, 0),
    "bias_only": lambda x, k, s: (_bias(s, k, len(x)), _bias(s + 1, k, len(x)), 2, 2),
    "seeded_inside": lambda x, k, s: (*_encoder_network(x, k, 0), 6, 6),   # reseeds: every copy has the same weights
    "one_head": lambda x, k, s: (_encoder_network(x, k, s)[0],) * 2 + (6, 6),
}


def encoder_calls(variant: str = "correct") -> dict:
    """calls.call_encoder: for each case, the outputs of two copies built with the case's two seeds."""
    def encoder(cases):
        answers = []
        for case in cases:
            x = f32(case["x"])
            pair = []
            for seed in case["init_seeds"]:
                mu, lss, parameters, with_gradient = ENCODERS[variant](x, int(case["dim_latent"]), int(seed))
                pair.append({"mu": f32(mu), "log_sigma_squared": f32(lss), "parameters": parameters,
                             "parameters_with_gradient": with_gradient})
            answers.append(pair)
        return answers
    return {"encoder": encoder}


def _sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def _decoder_network(z, out, seed):
    hidden = np.tanh(z @ _weights([seed, 0], (z.shape[1], 16), 1.0))
    return hidden @ _weights([seed, 1], (16, out), 1.0) + _weights([seed, 2], (out,), 0.1)


DECODERS = {
    "correct": lambda z, out, s: (_sigmoid(_decoder_network(z, out, s)), 6, 6),
    "no_sigmoid": lambda z, out, s: (3.0 * _decoder_network(z, out, s), 6, 6),
    "nan": lambda z, out, s: (_sigmoid(_decoder_network(np.log(z), out, s)), 6, 6),    # log of a negative z
    "bias_only": lambda z, out, s: (np.broadcast_to(_sigmoid(_weights([s, 2], (out,), 1.0)), (len(z), out)), 2, 2),
}


def decoder_calls(variant: str = "correct") -> dict:
    def decoder(cases):
        answers = []
        for case in cases:
            z = f32(case["z"])
            pair = []
            for seed in case["init_seeds"]:
                with np.errstate(invalid="ignore"):
                    output, parameters, with_gradient = DECODERS[variant](z, int(case["dim_output"]), int(seed))
                pair.append({"output": f32(output), "parameters": parameters,
                             "parameters_with_gradient": with_gradient})
            answers.append(pair)
        return answers
    return {"decoder": decoder}


# --- kl_divergence ------------------------------------------------------------------------------------------------

def kl_rows(mu, lv):
    return -0.5 * np.sum(1 + lv - mu ** 2 - np.exp(lv), axis=1)


KL_VARIANTS = {
    "correct": lambda mu, lv: kl_rows(mu, lv).mean(),
    "summed_over_batch": lambda mu, lv: kl_rows(mu, lv).sum(),
    "mean_over_everything": lambda mu, lv: (-0.5 * (1 + lv - mu ** 2 - np.exp(lv))).mean(),
    "lv_as_std": lambda mu, lv: (-0.5 * np.sum(1 + np.log(lv ** 2) - mu ** 2 - lv ** 2, axis=1)).mean(),
    "exp_2lv": lambda mu, lv: (-0.5 * np.sum(1 + lv - mu ** 2 - np.exp(2 * lv), axis=1)).mean(),
}


def kl_calls(kl) -> dict:
    """calls.call_kl: each row alone, the batch, the batch repeated twice."""
    def call(mu, log_sigma_squared):
        mu, lv = f32(mu), f32(log_sigma_squared)
        return {"single": [float(kl(mu[i:i + 1], lv[i:i + 1])) for i in range(len(mu))], "batch": float(kl(mu, lv)),
                "batch_doubled": float(kl(np.concatenate([mu, mu]), np.concatenate([lv, lv])))}
    return {"kl": call}


def kl_answer(kl, inputs: dict | None = None) -> dict:
    return run_probe("kl", (inputs or INPUTS)["kl"], kl_calls(kl))


# --- the two losses -----------------------------------------------------------------------------------------------

def bce(x, p):
    with np.errstate(divide="ignore"):
        return -(x * np.maximum(np.log(p), -100) + (1 - x) * np.maximum(np.log(1 - p), -100))


STUDENT_KL = {"correct": lambda mu, lv: kl_rows(mu, lv).mean(), "batch_sum": lambda mu, lv: kl_rows(mu, lv).sum()}

# (x, x_reconstructed, mu, lv, student's kl_divergence) -> the loss
BERNOULLI = {
    "correct": lambda x, xr, mu, lv, kl: bce(x, xr).sum() / len(x) + kl(mu, lv),
    "recon_pixel_mean": lambda x, xr, mu, lv, kl: bce(x, xr).mean() + kl(mu, lv),
    "both_batch_sum": lambda x, xr, mu, lv, kl: bce(x, xr).sum() + kl_rows(mu, lv).sum(),
    "swapped": lambda x, xr, mu, lv, kl: bce(xr, x).sum() / len(x) + kl(mu, lv),
}


def _sse(x, xr):
    return ((x - xr) ** 2).sum() / len(x)


# (x, x_mean, mu, lv, variance, student's kl_divergence) -> the loss; the contract's default variance is 0.1
GAUSSIAN = {
    "correct": lambda x, xr, mu, lv, v, kl: _sse(x, xr) / (2 * v) + kl(mu, lv),
    "recon_pixel_mean": lambda x, xr, mu, lv, v, kl: ((x - xr) ** 2).mean() / (2 * v) + kl(mu, lv),
    "no_kl": lambda x, xr, mu, lv, v, kl: _sse(x, xr) / (2 * v),
    "normaliser": lambda x, xr, mu, lv, v, kl: (_sse(x, xr) / (2 * v) + 0.5 * x.shape[1] * math.log(2 * math.pi * v)
                                                + kl(mu, lv)),
    "hard_coded": lambda x, xr, mu, lv, v, kl: _sse(x, xr) / (2 * 0.1) + kl(mu, lv),      # ignores `variance`
    "constant": lambda x, xr, mu, lv, v, kl: np.float32(1.0),
    "variance_as_std": lambda x, xr, mu, lv, v, kl: _sse(x, xr) / (2 * v * v) + kl(mu, lv),
}


def loss_calls(bernoulli="correct", gaussian="correct", kl="correct", gaussian_error=None) -> dict:
    """calls.call_losses: each loss on the batch and on the batch repeated twice, the Gaussian one at its default
    variance and at the grader's."""
    student_kl = STUDENT_KL[kl]

    def call(x, x_reconstructed, mu, log_sigma_squared, variance):
        batch = [f32(a) for a in (x, x_reconstructed, mu, log_sigma_squared)]
        doubled = [np.concatenate([a, a]) for a in batch]
        value = {"bernoulli": float(BERNOULLI[bernoulli](*batch, student_kl)),
                 "bernoulli_doubled": float(BERNOULLI[bernoulli](*doubled, student_kl))}
        if gaussian_error:
            value["gaussian"] = None
            value["errors"] = {"gaussian": gaussian_error}
            return value
        loss = GAUSSIAN[gaussian]
        value.update({"gaussian": float(loss(*batch, 0.1, student_kl)),
                      "gaussian_doubled": float(loss(*doubled, 0.1, student_kl)),
                      "gaussian_variance": float(variance),
                      "gaussian_at_variance": float(loss(*batch, np.float32(variance), student_kl))})
        return value
    return {"losses": call}


def loss_answer(inputs: dict | None = None, bernoulli="correct", gaussian="correct", kl="correct",
                gaussian_error=None) -> dict:
    return run_probe("loss", (inputs or INPUTS)["loss"], loss_calls(bernoulli, gaussian, kl, gaussian_error))


# --- reparameterize -----------------------------------------------------------------------------------------------

def reparameterize_calls(variant: str = "correct") -> dict:
    """calls.call_reparameterize: n draws after the grader seeds torch, then two calls without reseeding. torch's
    global generator is a numpy generator here."""
    torch_random = {"rng": np.random.default_rng(0)}

    def randn(shape):
        return torch_random["rng"].standard_normal(shape).astype(np.float32)

    students = {
        "correct": lambda mu, lv: mu + randn(mu.shape) * np.exp(0.5 * lv),
        "z_equals_mu": lambda mu, lv: mu.copy(),
        "lv_as_std": lambda mu, lv: mu + randn(mu.shape) * lv,
        "reseeds": lambda mu, lv: mu + np.random.default_rng(0).standard_normal(mu.shape).astype(np.float32)
        * np.exp(0.5 * lv),
    }
    gradients = {"z_equals_mu": (True, False)}

    def call(mu, log_sigma_squared, n, seed):
        mu, lv = f32(mu), f32(log_sigma_squared)
        torch_random["rng"] = np.random.default_rng(seed)                  # torch.manual_seed(seed)
        student = students[variant]
        samples = student(np.broadcast_to(mu, (n, len(mu))), np.broadcast_to(lv, (n, len(lv))))
        small_mu, small_lv = np.repeat(mu[None], 8, 0), np.repeat(lv[None], 8, 0)
        grad_mu, grad_lv = gradients.get(variant, (True, True))
        return {"samples": samples.astype(np.float64), "grad_mu_nonzero": grad_mu,
                "grad_log_sigma_squared_nonzero": grad_lv,
                "repeat_first": student(small_mu, small_lv).astype(np.float64),
                "repeat_second": student(small_mu, small_lv).astype(np.float64)}
    return {"reparameterize": call}


def reparameterize_answer(inputs: dict | None = None, variant: str = "correct") -> dict:
    return run_probe("reparameterize", (inputs or INPUTS)["reparameterize"], reparameterize_calls(variant))


# --- PCA ----------------------------------------------------------------------------------------------------------

def pca_calls(forget_sqrt=False, flip=(), no_centring=False) -> dict:
    """calls.call_pca: the grader fits sklearn's PCA and hands it to the student's three functions."""
    from sklearn.decomposition import PCA

    def call(data, k, coordinates):
        data, coordinates = np.asarray(data, np.float64), np.asarray(coordinates, np.float64)
        pca = PCA(n_components=int(k), svd_solver="full").fit(data)
        comps = pca.components_.copy()
        comps[list(flip)] *= -1                      # a student's own eigenvectors may have other signs
        sqrt_lam = np.sqrt(pca.explained_variance_)
        scale = np.ones(int(k)) if forget_sqrt else sqrt_lam
        encode = (data - (0.0 if no_centring else pca.mean_)) @ comps.T
        generate = lambda a: pca.mean_ + (a * scale) @ comps
        return {"encode": f32(encode), "reconstruct": f32(generate(((data - pca.mean_) @ comps.T) / sqrt_lam)),
                "generate": f32(generate(coordinates))}
    return {"pca": call}


def pca_answer(inputs: dict | None = None, **variant) -> dict:
    return run_probe("pca", (inputs or INPUTS)["pca"], pca_calls(**variant))


# --- what the notebook reported, and the grader's evaluation of its models ------------------------------------------

FALLING = [180.0, 160.0, 152.0, 149.0]                  # vae_history; the genuine vae_model ends at 149
GAUSSIAN_FALLING = [60.0, 40.0, 35.0]                   # gaussian_vae_history; 5 * 6.0 + 5.0 = 35
AE_FALLING = [[0.06, 0.04], [0.07, 0.05], [0.06, 0.045]]


def histories(errors=None, **changes) -> dict:
    """run_histories on what the notebook reported (values None where `changes` says so)."""
    values = {"ae_histories": AE_FALLING, "vae_history": FALLING, "gaussian_vae_history": GAUSSIAN_FALLING,
              **changes}
    return run_probe("histories", ctx=context(values={k: v for k, v in values.items() if v is not None},
                                              errors=errors))


SWEEP_DIMS = list(range(2, 21))


class FakeData:
    """The two ReferenceData methods run_pca_sweep uses, with plausible MNIST numbers."""
    def pca_errors(self, n_train, n_test, max_components):
        return 0.055 * np.exp(-np.arange(1, max_components + 1) / 6.0) + 0.012

    def mean_image_error(self, n_train, n_test):
        return 0.067


def pca_sweep_answer(dims=None) -> dict:
    return run_probe("pca_sweep", ctx=context(values={"SWEEP_DIMS": dims or SWEEP_DIMS}, data=FakeData(),
                                              profile={"N_TRAIN": 3000, "N_TEST": 1000}))


def grader_pca(dims=None) -> list[float]:
    return pca_sweep_answer(dims)["pca"]


def sweep_answer(dims=None, autoencoder=None, pca=None) -> dict:
    dims = dims or SWEEP_DIMS
    errors = {"autoencoder": autoencoder if autoencoder is not None else [0.8 * e for e in grader_pca(dims)],
              "pca": pca if pca is not None else grader_pca(dims)}
    return run_probe("sweep", ctx=context(values={"SWEEP_DIMS": dims, "reconstruction_errors": errors}))


ANGLES = 2 * np.pi * np.arange(10) / 10
CENTROIDS = np.stack([2.0 * np.cos(ANGLES), 2.0 * np.sin(ANGLES)], axis=1)      # where the encoder puts each digit


def encodings(centroids=CENTROIDS) -> dict:
    return {"dims": 2, "centroids": np.asarray(centroids).tolist(), "within_class_rms": 0.35,
            "within_class_rms_z": 0.45, "box_90": [[-2.2, -2.2], [2.2, 2.2]], "box_99": [[-2.8, -2.8], [2.8, 2.8]]}


class LookupDecoder:
    """A decoder that draws `images[i]` for every z nearer to anchor i than to any other: the anchors lie on a
    lattice over [-2.4, 2.4]^2, so the grader's mesh finds each image. Answers the server's `decode` call."""
    def __init__(self, images):
        self.images = np.asarray(images, np.float64).reshape(len(images), -1)
        side = int(math.ceil(math.sqrt(len(self.images))))
        axis = np.linspace(-2.4, 2.4, side)
        a_1, a_2 = np.meshgrid(axis, axis)
        self.anchors = np.stack([a_1.ravel(), a_2.ravel()], axis=1)[:len(self.images)]

    def __call__(self, z) -> np.ndarray:
        z = np.asarray(z, np.float64)
        nearest = np.concatenate([np.argmin(((block[:, None, :] - self.anchors[None]) ** 2).sum(2), axis=1)
                                  for block in np.array_split(z, max(1, len(z) // 2048 + 1))])
        return self.images[nearest]

    def decode(self, model, z, as_uint8=False, variant="trained", seed=0):
        assert model == "vae"
        images = np.clip(self(z), 0.0, 1.0)
        return {"images": np.rint(images * 255.0).astype(np.uint8) if as_uint8 else images.astype(np.float32)}


def figure_grids(figures) -> list:
    """The figures' grids as probe_run hands them to the probes (Context.figure_grids)."""
    return [(grid.figure, grid.kind, grid.tiles.reshape(grid.rows, grid.cols, -1))
            for grid in read_grids(list(figures)) if grid.tiles is not None]


def match_grids(figures, decoder: LookupDecoder, box_99=None, low=None, high=None) -> list[dict]:
    """A model's figure_grids: the figures' grids matched by the grader's matcher against `decoder`, on the VAE's
    mesh around `box_99` or on the box [low, high]."""
    def session(call, **arguments):
        assert call == "decode"
        return decoder.decode(**arguments)

    if box_99 is not None:
        low, high = model_probes.vae_mesh_box(box_99)
    return model_probes.match_grids(session, figure_grids(figures), low, high)


def vae_model(figures=(), decoder: LookupDecoder | None = None, centroids=CENTROIDS, **changes) -> dict:
    """The grader's measurements of a genuine trained 2-D VAE (its negative ELBO ends at FALLING[-1]); `changes`
    replace measurements (e.g. decoder_reinit_change=0.0 for a decoder that ignores its weights)."""
    rng = np.random.default_rng(5)
    copies = np.round(rng.uniform(0.09, 0.2, 100), 5)
    value = {
        "latent_dims": 2, "bce_train": 141.0, "kl_train": 8.0, "nelbo_train": 149.0, "nelbo_test": 151.5,
        "bce_untrained": 543.0, "kl_untrained": 0.4, "nelbo_untrained": 543.4,
        "decoder_reinit_change": 0.18, "decoder_jacobian_median": 1.7, "decoder_flat_fraction": 0.0,
        "decoder_parameters": 6, "decoder_parameters_with_gradient": 6,
        "prior_copy_rmse_median": float(np.median(copies)), "prior_copy_rmse_min": float(copies.min()),
        "prior_copy_rmse": copies.tolist(), "encodings": encodings(centroids), "figure_grids": [],
    }
    if decoder is not None:
        value["figure_grids"] = match_grids(figures, decoder, value["encodings"]["box_99"])
    value.update(changes)
    return value


NOT_TRAINED = {"bce_train": 530.0, "kl_train": 0.5, "nelbo_train": 530.5}     # about a fresh copy's 543.4


def gaussian_vae_model(**changes) -> dict:
    return {"squared_error_train": 6.0, "kl_train": 5.0, "squared_error_untrained": 52.0, "kl_untrained": 0.1,
            **changes}


def ae_models(runs=None) -> list[dict]:
    return [{"mse_train": run[-1], "mse_untrained": 0.11, "latent_dims": 2, "encodings": None, "figure_grids": []}
            for run in (runs or AE_FALLING)]


def ae_model(figures=(), decoder: LookupDecoder | None = None, centroids=CENTROIDS, **changes) -> dict:
    """The grader's measurements of one trained 2-D autoencoder whose decoder is `decoder` and whose encoder puts
    digit d at centroids[d]."""
    value = {"mse_train": 0.045, "mse_untrained": 0.23, "latent_dims": 2, "encodings": encodings(centroids),
             "figure_grids": [] if decoder is None else match_grids(figures, decoder, low=(-2.8, -2.8),
                                                                   high=(2.8, 2.8))}
    value.update(changes)
    return value


def vae_decode(grid=None, prior=None) -> dict:
    """run_vae_decode's value for a decoder that gives these images (n, 28, 28) at the grader's grid and prior z."""
    images = {"grid": np.zeros((model_probes.GRID_SIDE ** 2, PIXELS)) if grid is None else grid,
              "prior": np.zeros((model_probes.PRIOR_SAMPLES, PIXELS)) if prior is None else prior}

    def decode(model, z, as_uint8=False, **_):
        chosen = np.asarray(images["grid" if len(z) == model_probes.GRID_SIDE ** 2 else "prior"], np.float64)
        return {"images": np.rint(np.clip(chosen.reshape(len(z), -1), 0, 1) * 255).astype(np.uint8)}

    inputs = model_probes.draw_vae_decode(np.random.default_rng(0), None)
    return run_probe("vae_decode", inputs, {"decode": decode}, context(models={"vae": {"ok": True}}))


def verified(figures=(), decoder: LookupDecoder | None = None, inputs: dict | None = None, **changes) -> dict:
    """Every probe value of a notebook whose reported numbers agree with its models: correct kl and losses, the
    histories, the grader's evaluation of vae, gaussian_vae and ae_models, the sweep. `changes` replace values."""
    inputs = inputs or INPUTS
    values = {"kl": kl_answer(KL_VARIANTS["correct"], inputs), "loss": loss_answer(inputs),
              "histories": histories(), "vae_model": vae_model(figures, decoder),
              "gaussian_vae_model": gaussian_vae_model(), "ae_models": ae_models(),
              "sweep": sweep_answer(), "pca_sweep": pca_sweep_answer()}
    values.update(changes)
    return values


# --- figures ------------------------------------------------------------------------------------------------------

def axes(position=(0.1, 0.1, 0.8, 0.8), **fields) -> dict:
    return {"title": "", "xlabel": "", "ylabel": "", "position": list(position), "images": [], "scatters": [],
            "lines": [], "legend": [], **fields}


def figure(*all_axes, suptitle="") -> dict:
    return {"cell": 3, "suptitle": suptitle, "axes": list(all_axes)}


def image(h, w) -> dict:
    return {"shape": [h, w], "min": 0.0, "max": 1.0}


def subplot_grid(rows, cols, suptitle="") -> dict:
    """A subplot grid without pixels (geometry only)."""
    return figure(*[axes(position=(0.05 + c * 0.9 / cols, 0.95 - (r + 1) * 0.9 / rows, 0.8 / cols, 0.8 / rows),
                         images=[image(28, 28)]) for r in range(rows) for c in range(cols)], suptitle=suptitle)


def line(y, x=None, label="") -> dict:
    x = list(range(1, len(y) + 1)) if x is None else list(x)
    return {"x": [float(v) for v in x], "y": [float(v) for v in y], "label": label}


def stitch(tiles: np.ndarray, pad: int = 0, fill: float = 0.0) -> np.ndarray:
    """Tiles (rows, cols, 28, 28) into one picture with `pad` pixels around and between them (make_grid's layout)."""
    rows, cols = tiles.shape[:2]
    picture = np.full((rows * 28 + (rows + 1) * pad, cols * 28 + (cols + 1) * pad), fill)
    for r in range(rows):
        for c in range(cols):
            top, left = pad + r * (28 + pad), pad + c * (28 + pad)
            picture[top:top + 28, left:left + 28] = tiles[r, c]
    return picture


def picture_figure(picture, title="", **imshow) -> dict:
    figure = Figure(figsize=(6, 6))
    ax = figure.add_subplot()
    ax.imshow(picture, **{"cmap": "gray", **imshow})
    ax.set_title(title)
    return recorder.describe_figure(figure)


def subplots_figure(tiles, suptitle="") -> dict:
    rows, cols = tiles.shape[:2]
    figure = Figure(figsize=(cols, rows))
    grid = figure.subplots(rows, cols, squeeze=False)
    for r in range(rows):
        for c in range(cols):
            grid[r, c].imshow(tiles[r, c], cmap="gray", vmin=0, vmax=1)
    figure.suptitle(suptitle)
    return recorder.describe_figure(figure)


def latent_points(n=5000, centroids=CENTROIDS, spread=0.3, seed=0) -> tuple[np.ndarray, np.ndarray]:
    """n encodings: digit d scattered around centroids[d]."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    return np.asarray(centroids)[labels] + rng.normal(0.0, spread, (n, 2)), labels


def scatter_figure(points, labels, per_digit=False, title="z of the VAE", xlabel="z[0]", ylabel="z[1]") -> dict:
    """plt.scatter(z[:, 0], z[:, 1], c=labels, cmap='tab10'), or one scatter call per digit."""
    figure = Figure()
    ax = figure.add_subplot()
    if per_digit:
        for digit in np.unique(labels):
            ax.scatter(points[labels == digit, 0], points[labels == digit, 1], s=2, label=str(digit))
    else:
        ax.scatter(points[:, 0], points[:, 1], c=labels, cmap="tab10", s=2)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return recorder.describe_figure(figure)


INPUTS = draw_inputs()
