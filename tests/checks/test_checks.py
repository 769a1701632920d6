"""Checks on hand-made artefacts: the correct answers earn full credit, each known mistake earns its exact fraction and
a message that names it. Student answers are simulated with numpy in float32 (as torch computes them)."""
import math

import numpy as np
import pytest

from autograder.checks import CHECK_DEFAULTS, CHECKS, CheckResult

PIXELS = 784


# --- probe inputs of contract.md's schema, built here so these tests don't depend on probe_inputs.py ---------------

def make_probe_inputs(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    data = rng.normal(size=(200, 30)) * np.geomspace(5.0, 0.2, 30)
    data = data @ np.linalg.qr(rng.normal(size=(30, 30)))[0] + rng.uniform(-1, 1, 30)
    x = np.where(rng.random((4, PIXELS)) < 0.8, 0.0, rng.uniform(0.5, 1.0, (4, PIXELS)))
    return {
        "encoder_shapes": [{"dim_input": 784, "dim_latent": 2, "batch": 1}, {"dim_input": 784, "dim_latent": 2, "batch": 7},
                           {"dim_input": 784, "dim_latent": 5, "batch": 16}],
        "decoder_output": [{"dim_output": 784, "dim_latent": 2, "batch": 3},
                           {"dim_output": 784, "dim_latent": 5, "batch": 8}],
        "kl": {"mu": rng.normal(size=(6, 2)).round(6).tolist(),
               "log_sigma_squared": rng.uniform(-2, 1, (6, 2)).round(6).tolist()},
        "loss": {"x": x.round(6).tolist(), "x_reconstructed": rng.uniform(0.02, 0.98, (4, PIXELS)).round(6).tolist(),
                 "mu": rng.normal(size=(4, 2)).round(6).tolist(),
                 "log_sigma_squared": rng.uniform(-2, 1, (4, 2)).round(6).tolist()},
        "reparameterize": {"mu": [1.25, -0.5], "log_sigma_squared": [-1.2, 0.7], "n": 20000},
        "pca": {"data": data.round(6).tolist(), "k": 5, "coordinates": rng.normal(size=(3, 5)).round(6).tolist()},
    }


INPUTS = make_probe_inputs()


def ok(value) -> dict:
    return {"ok": True, "value": value}


def artefacts(figures=(), **probes) -> dict:
    return {"figures": list(figures), "probes": {name: ok(value) for name, value in probes.items()}}


def run(check: str, arts: dict, inputs: dict = INPUTS, **params) -> CheckResult:
    result = CHECKS[check](arts, inputs, params)
    assert 0.0 <= result.fraction <= 1.0 and result.message
    return result


# --- simulated student functions ---------------------------------------------------------------------------------

def f32(value) -> np.ndarray:
    return np.asarray(value, dtype=np.float32)


def kl_rows(mu, lv):
    return -0.5 * np.sum(1 + lv - mu ** 2 - np.exp(lv), axis=1)


KL_VARIANTS = {
    "correct": lambda mu, lv: kl_rows(mu, lv).mean(),
    "summed_over_batch": lambda mu, lv: kl_rows(mu, lv).sum(),
    "mean_over_everything": lambda mu, lv: (-0.5 * (1 + lv - mu ** 2 - np.exp(lv))).mean(),
    "lv_as_std": lambda mu, lv: (-0.5 * np.sum(1 + np.log(lv ** 2) - mu ** 2 - lv ** 2, axis=1)).mean(),
    "exp_2lv": lambda mu, lv: (-0.5 * np.sum(1 + lv - mu ** 2 - np.exp(2 * lv), axis=1)).mean(),
}


def kl_answer(kl, inputs=INPUTS) -> dict:
    mu, lv = f32(inputs["kl"]["mu"]), f32(inputs["kl"]["log_sigma_squared"])
    return {"single": [float(kl(mu[i:i + 1], lv[i:i + 1])) for i in range(len(mu))], "batch": float(kl(mu, lv)),
            "batch_doubled": float(kl(np.concatenate([mu, mu]), np.concatenate([lv, lv])))}


def bce(x, p):
    return -(x * np.maximum(np.log(p), -100) + (1 - x) * np.maximum(np.log(1 - p), -100))


def loss_answer(inputs=INPUTS, bernoulli="correct", gaussian="correct", variance=0.1, kl="correct") -> dict:
    """The two losses computed as a student would, with one of the known reduction mistakes; `kl` is how the
    student's kl_divergence (used inside both losses) reduces over the batch."""
    spec = inputs["loss"]
    x, xr, mu, lv = (f32(spec[k]) for k in ("x", "x_reconstructed", "mu", "log_sigma_squared"))
    b = x.shape[0]
    kl_term = {"correct": kl_rows(mu, lv).mean(), "batch_sum": kl_rows(mu, lv).sum()}[kl]
    recon = {
        "correct": bce(x, xr).sum() / b + kl_term,
        "recon_pixel_mean": bce(x, xr).mean() + kl_term,
        "both_batch_sum": bce(x, xr).sum() + kl_rows(mu, lv).sum(),
    }
    sse = ((x - xr) ** 2).sum()
    gauss = {
        "correct": sse / b / (2 * variance) + kl_term,
        "recon_pixel_mean": ((x - xr) ** 2).mean() / (2 * variance) + kl_term,
        "no_kl": sse / b / (2 * variance),
    }
    return {"bernoulli": float(recon[bernoulli]), "gaussian": float(gauss[gaussian])}


def reparameterize_answer(inputs=INPUTS, variant="correct", seed=1) -> dict:
    spec = inputs["reparameterize"]
    mu, lv, n = np.asarray(spec["mu"]), np.asarray(spec["log_sigma_squared"]), spec["n"]
    eps = np.random.default_rng(seed).standard_normal((n, len(mu))).astype(np.float32)
    scale = {"correct": np.exp(0.5 * lv), "z_equals_mu": 0 * lv, "lv_as_std": lv}[variant]
    z = mu + eps * scale
    return {"mean": z.mean(0).tolist(), "var": z.var(0, ddof=1).tolist(), "grad_mu_nonzero": True,
            "grad_log_sigma_squared_nonzero": variant != "z_equals_mu"}


def pca_answer(inputs=INPUTS, forget_sqrt=False, flip=()) -> dict:
    from sklearn.decomposition import PCA
    spec = inputs["pca"]
    data, a = np.asarray(spec["data"]), np.asarray(spec["coordinates"])
    pca = PCA(n_components=spec["k"], svd_solver="full").fit(data)
    comps = pca.components_.copy()
    comps[list(flip)] *= -1                      # a student's own eigenvectors may have other signs
    sqrt_lam = np.ones(spec["k"]) if forget_sqrt else np.sqrt(pca.explained_variance_)
    encode = (data - pca.mean_) @ comps.T
    generate = lambda coords: pca.mean_ + (coords * sqrt_lam) @ comps
    return {"encode": f32(encode).tolist(), "reconstruct": f32(generate(encode / np.sqrt(pca.explained_variance_))).tolist(),
            "generate": f32(generate(a)).tolist()}


# --- figure descriptions -----------------------------------------------------------------------------------------

def axes(position=(0.1, 0.1, 0.8, 0.8), **fields) -> dict:
    return {"title": "", "xlabel": "", "ylabel": "", "position": list(position), "images": [], "scatters": [],
            "lines": [], "legend": [], **fields}


def figure(*all_axes, suptitle="") -> dict:
    return {"cell": 3, "suptitle": suptitle, "axes": list(all_axes)}


def image(h, w) -> dict:
    return {"shape": [h, w], "min": 0.0, "max": 1.0}


def subplot_grid(rows, cols, suptitle="") -> dict:
    return figure(*[axes(position=(0.05 + c * 0.9 / cols, 0.95 - (r + 1) * 0.9 / rows, 0.8 / cols, 0.8 / rows),
                         images=[image(28, 28)]) for r in range(rows) for c in range(cols)], suptitle=suptitle)


def line(y, x=None, label="") -> dict:
    x = list(range(1, len(y) + 1)) if x is None else list(x)
    return {"x": [float(v) for v in x], "y": [float(v) for v in y], "label": label}


FALLING = [180.0, 160.0, 152.0, 149.0]


# --- encoder / decoder -------------------------------------------------------------------------------------------

def encoder_answer(shape_of=lambda b, k: [b, k]):
    return [{"dim_latent": s["dim_latent"], "batch": s["batch"], "mu_shape": shape_of(s["batch"], s["dim_latent"]),
             "log_sigma_squared_shape": [s["batch"], s["dim_latent"]]} for s in INPUTS["encoder_shapes"]]


def test_encoder_shapes_correct_and_partial_per_case():
    assert run("encoder_shapes", artefacts(encoder_shapes=encoder_answer())).fraction == 1.0
    # a fixed head size of 2: the dim_latent=5 case loses its mu half
    fixed = run("encoder_shapes", artefacts(encoder_shapes=encoder_answer(lambda b, k: [b, 2])))
    assert fixed.fraction == pytest.approx((1 + 1 + 0.5) / 3)
    assert "out_features must be dim_latent" in fixed.message
    squeezed = run("encoder_shapes", artefacts(encoder_shapes=encoder_answer(lambda b, k: [k] if b == 1 else [b, k])))
    assert squeezed.fraction == pytest.approx((0.5 + 1 + 1) / 3) and "squeezed" in squeezed.message


def test_decoder_output_shape_and_range():
    good = [{"dim_latent": s["dim_latent"], "batch": s["batch"], "shape": [s["batch"], 784], "min": 0.01, "max": 0.99}
            for s in INPUTS["decoder_output"]]
    assert run("decoder_output", artefacts(decoder_output=good)).fraction == 1.0
    no_sigmoid = [{**case, "min": -3.2, "max": 4.1} for case in good]
    result = run("decoder_output", artefacts(decoder_output=no_sigmoid))
    assert result.fraction == 0.5 and "Sigmoid" in result.message


# --- KL ----------------------------------------------------------------------------------------------------------

def test_correct_kl_earns_every_kl_item():
    arts = artefacts(kl=kl_answer(KL_VARIANTS["correct"]))
    for name in ("kl_closed_form", "kl_sums_latent_dims", "kl_batch_average"):
        assert run(name, arts).fraction == 1.0, name


def test_kl_summed_over_batch_is_named_and_only_costs_the_batch_item():
    arts = artefacts(kl=kl_answer(KL_VARIANTS["summed_over_batch"]))
    result = run("kl_batch_average", arts)
    assert result.fraction == 0.0
    assert "grows with the batch size" in result.message and "summed over the batch" in result.message
    assert run("kl_closed_form", arts).fraction == 1.0
    assert run("kl_sums_latent_dims", arts).fraction == 1.0


def test_kl_mean_over_latent_dims_costs_only_the_latent_item():
    arts = artefacts(kl=kl_answer(KL_VARIANTS["mean_over_everything"]))
    latent = run("kl_sums_latent_dims", arts)
    assert latent.fraction == 0.0 and "AVERAGES over the latent dimensions" in latent.message
    assert run("kl_closed_form", arts).fraction == 1.0
    assert run("kl_batch_average", arts).fraction == 1.0   # consistent with its own per-row values


@pytest.mark.parametrize("variant, words", [("lv_as_std", "as a standard deviation"),
                                            ("exp_2lv", "exp(2 * log_sigma_squared)")])
def test_kl_with_log_variance_misused_is_named(variant, words):
    result = run("kl_closed_form", artefacts(kl=kl_answer(KL_VARIANTS[variant])))
    assert result.fraction == 0.0 and words in result.message
    assert result.details["identified"][0] in ("lv_as_std", "exp_2lv")


def test_kl_with_an_unknown_formula_reports_a_row():
    mu = np.asarray(INPUTS["kl"]["mu"])
    answer = kl_answer(KL_VARIANTS["correct"])
    answer["single"][2] += 1.0                   # one row wrong: partial credit for the others
    result = run("kl_closed_form", artefacts(kl=answer))
    assert result.fraction == pytest.approx(5 / 6)
    assert "1 of 6 rows" in result.message and str(round(float(mu[2][0]), 4)) in result.message


def test_kl_probe_error_is_reported_with_the_hint():
    arts = {"figures": [], "probes": {"kl": {"ok": False, "error": "ValueError: expected a scalar, got shape [6]"},
                                      "names": ok({"kl_divergence": True})}}
    result = run("kl_batch_average", arts)
    assert result.fraction == 0.0 and "expected a scalar" in result.message and "ONE number" in result.message


def test_missing_probe_names_the_function():
    undefined = {"figures": [], "probes": {"kl": {"ok": False, "error": "NameError: name 'kl_divergence' is not "
                                                                       "defined by the notebook"},
                                           "names": ok({"kl_divergence": False})}}
    result = run("kl_closed_form", undefined)
    assert result.fraction == 0.0 and "kl_divergence" in result.message and "Not defined" in result.message
    absent = run("kl_closed_form", {"figures": [], "probes": {}})
    assert absent.fraction == 0.0 and "kl_divergence" in absent.message and "did not run" in absent.message


def test_malformed_answers_never_raise():
    for name, check in CHECKS.items():
        for arts in ({}, {"probes": "nonsense", "figures": "x"},
                     {"probes": {p: ok("garbage") for p in ("kl", "loss", "pca", "reparameterize", "histories",
                                                          "encoder_shapes", "decoder_output", "sweep")},
                      "figures": [{"axes": ["bad", {"lines": [{"x": "a"}]}]}]}):
            result = check(arts, INPUTS, {})
            assert result.check == name and result.fraction == 0.0 and result.message, name


# --- losses ------------------------------------------------------------------------------------------------------

def test_correct_losses_with_any_fixed_variance():
    for variance in (1.0, 0.5, 0.1, 0.02):
        result = run("loss_proportions", artefacts(loss=loss_answer(variance=variance)))
        assert result.fraction == 1.0, (variance, result.message)
        assert result.details["gaussian"]["implied_c"] == pytest.approx(1 / (2 * variance), rel=1e-3)


def test_per_pixel_mean_reconstruction_with_per_sample_kl_is_named():
    result = run("loss_proportions", artefacts(loss=loss_answer(bernoulli="recon_pixel_mean")))
    assert result.fraction == 0.5                                  # the Gaussian loss is right
    assert "784 times too much" in result.message and "averaged per pixel" in result.message
    both = run("loss_proportions", artefacts(loss=loss_answer(bernoulli="recon_pixel_mean",
                                                              gaussian="recon_pixel_mean")))
    assert both.fraction == 0.0 and both.details["gaussian"]["identified"] == ["pixel_mean", "correct"]


def test_per_pixel_recon_with_a_batch_summed_kl_names_both_and_the_ratio():
    # kl_divergence sums over the batch (B = 4) and the BCE is a per-element mean: the KL weighs 784 * 4 too much
    arts = artefacts(loss=loss_answer(bernoulli="recon_pixel_mean", kl="batch_sum"))
    result = run("loss_proportions", arts)
    assert result.details["bernoulli"]["identified"] == ["pixel_mean", "batch_sum"]
    assert "averaged per pixel" in result.message and "KL is summed over the batch" in result.message
    assert "3136 times too much" in result.message


def test_kl_mistake_inherited_from_kl_divergence_costs_half():
    arts = artefacts(loss=loss_answer(kl="batch_sum"), kl=kl_answer(KL_VARIANTS["summed_over_batch"]))
    result = run("loss_proportions", arts)
    assert result.details["student_kl"] == "batch_sum"
    assert result.fraction == pytest.approx(0.5) and "inherits the mistake of your kl_divergence" in result.message
    # without the kl probe telling so, the same loss is a plain KL-reduction mistake
    assert run("loss_proportions", artefacts(loss=loss_answer(kl="batch_sum"))).fraction == 0.0


def test_losses_summed_over_the_batch_get_the_partial_credit():
    result = run("loss_proportions", artefacts(loss=loss_answer(bernoulli="both_batch_sum")))
    assert result.fraction == pytest.approx(0.5 * 0.5 + 0.5)
    assert "summed over the batch" in result.message and "keep their proportion" in result.message
    assert run("loss_proportions", artefacts(loss=loss_answer(bernoulli="both_batch_sum")),
               partial={}).fraction == 0.5


def test_missing_kl_in_gaussian_loss_and_a_loss_that_raised():
    result = run("loss_proportions", artefacts(loss=loss_answer(gaussian="no_kl")))
    assert result.fraction == 0.5 and "KL term is missing" in result.message
    answer = {"bernoulli": loss_answer()["bernoulli"], "gaussian": None,
              "errors": {"gaussian": "NameError: name 'gaussian_vae_loss' is not defined by the notebook"}}
    raised = run("loss_proportions", artefacts(loss=answer))
    assert raised.fraction == 0.5 and "gaussian_vae_loss raised NameError" in raised.message


# --- reparameterization ------------------------------------------------------------------------------------------

def test_reparameterization_correct_for_several_sample_seeds():
    for seed in range(5):
        result = run("reparameterization", artefacts(reparameterize=reparameterize_answer(seed=seed)))
        assert result.fraction == 1.0, result.message


def test_z_equals_mu_is_named():
    result = run("reparameterization", artefacts(reparameterize=reparameterize_answer(variant="z_equals_mu")))
    assert result.fraction == pytest.approx(0.25 + 0.125)     # mean right, variance 0, one gradient of two
    assert "no sampling" in result.message and "mu + eps * sigma" in result.message
    assert "log_sigma_squared" in result.message               # the missing gradient is named too


def test_log_variance_used_as_std_in_sampling_is_named():
    result = run("reparameterization", artefacts(reparameterize=reparameterize_answer(variant="lv_as_std")))
    assert result.fraction == pytest.approx(0.25 + 0.25)
    assert result.details["identified"] == "lv as std" and "standard deviation" in result.message


# --- PCA ---------------------------------------------------------------------------------------------------------

def test_pca_correct_and_consistent_sign_flips():
    assert run("pca_agrees_with_sklearn", artefacts(pca=pca_answer())).fraction == 1.0
    flipped = run("pca_agrees_with_sklearn", artefacts(pca=pca_answer(flip=(1, 3))))
    assert flipped.fraction == 1.0 and "opposite sign" in flipped.message and "[1, 3]" in flipped.message


def test_pca_generate_without_sqrt_lambda_is_named():
    result = run("pca_agrees_with_sklearn", artefacts(pca=pca_answer(forget_sqrt=True)))
    # encode is right; reconstruct and generate both miss sqrt(lambda)
    assert result.fraction == pytest.approx(1 / 3)
    assert "forgot sqrt(lambda)" in result.message and "WHITENED" in result.message


def test_pca_encode_without_centring_is_named():
    from sklearn.decomposition import PCA
    data = np.asarray(INPUTS["pca"]["data"])
    answer = pca_answer()
    answer["encode"] = (data @ PCA(n_components=5, svd_solver="full").fit(data).components_.T).tolist()
    result = run("pca_agrees_with_sklearn", artefacts(pca=answer))
    assert result.fraction == pytest.approx(2 / 3) and "does not subtract the mean" in result.message


# --- histories ---------------------------------------------------------------------------------------------------

def histories(**changes):
    return {"ae_histories": [[0.06, 0.04], [0.07, 0.05], [0.06, 0.045]], "vae_history": FALLING,
            "gaussian_vae_history": [60.0, 40.0, 35.0], **changes}


def test_all_histories_falling():
    assert run("loss_decreases", artefacts(histories=histories())).fraction == 1.0


def test_rising_loss_and_nan_are_named_with_partial_credit():
    rising = run("loss_decreases", artefacts(histories=histories(vae_history=list(reversed(FALLING)))))
    assert rising.fraction == pytest.approx(2 / 3) and "vae_history rises" in rising.message
    nan_run = histories(ae_histories=[[0.06, 0.04], [0.07, None], [0.06, 0.045]])
    diverged = run("loss_decreases", artefacts(histories=nan_run))
    assert diverged.fraction == pytest.approx(2 / 3 + 1 / 3 * 2 / 3) and "diverged" in diverged.message


def test_missing_history_uses_a_plotted_curve_as_partial_evidence():
    curve = figure(axes(xlabel="epoch", ylabel="loss", lines=[line(FALLING)]))
    result = run("loss_decreases", artefacts([curve], histories=histories(vae_history=None)))
    assert result.fraction == pytest.approx((0.5 + 1 + 1) / 3) and "vae_history is missing" in result.message
    assert run("loss_decreases", artefacts([], histories=histories(vae_history=None))).fraction == pytest.approx(2 / 3)


# --- figures -----------------------------------------------------------------------------------------------------

def test_training_curve_full_credit_and_label_deduction():
    labelled = figure(axes(xlabel="epoch", ylabel="negative ELBO", lines=[line(FALLING)]))
    result = run("figure_training_curve", artefacts([labelled], histories=histories()))
    assert result.fraction == 1.0
    bare = figure(axes(lines=[line(FALLING)]))
    unlabeled = run("figure_training_curve", artefacts([bare], histories=histories()))
    assert unlabeled.fraction == pytest.approx(0.8) and "epoch" in unlabeled.message


def test_rising_training_curve_and_missing_figure():
    rising = figure(axes(xlabel="epoch", ylabel="loss", lines=[line(list(reversed(FALLING)))]))
    result = run("figure_training_curve", artefacts([rising]))
    assert result.fraction == 0.25 and "rises" in result.message
    missing = run("figure_training_curve", artefacts([]))
    assert missing.fraction == 0.0 and "No training curve" in missing.message


def test_per_batch_curve_is_not_one_point_per_epoch():
    per_batch = figure(axes(xlabel="epoch", ylabel="loss", lines=[line(np.linspace(200, 150, 600))]))
    result = run("figure_training_curve", artefacts([per_batch], histories=histories()))
    assert result.fraction == pytest.approx(0.8) and "one point per batch" in result.message


def test_sweep_lines_are_not_training_curves():
    sweep = figure(axes(xlabel="latent size", ylabel="MSE", lines=[line(np.linspace(0.05, 0.01, 19), range(2, 21))]))
    assert run("figure_training_curve", artefacts([sweep])).fraction == 0.0


def scatter_figure(points, colours=10, per_digit=False, title="z of the VAE"):
    if per_digit:
        scatters = [{"n_points": points // 10, "n_colors": 1, "n_values": 0} for _ in range(10)]
    else:
        scatters = [{"n_points": points, "n_colors": colours, "n_values": colours}]
    return figure(axes(title=title, scatters=scatters))


def test_latent_scatter_one_or_per_digit():
    assert run("figure_latent_scatter", artefacts([scatter_figure(5000)])).fraction == 1.0
    assert run("figure_latent_scatter", artefacts([scatter_figure(5000, per_digit=True)])).fraction == 1.0


def test_latent_scatter_with_500_points_and_uncoloured():
    result = run("figure_latent_scatter", artefacts([scatter_figure(500)]))
    assert result.fraction == 0.5
    assert "random subset of 5,000 images; yours has 500" in result.message
    grey = run("figure_latent_scatter", artefacts([scatter_figure(5000, colours=1)]))
    assert grey.fraction == 0.5 and "not coloured by digit" in grey.message
    assert run("figure_latent_scatter", artefacts([])).fraction == 0.0


def test_latent_scatter_size_follows_the_profile():
    arts = artefacts([scatter_figure(1000)])
    assert run("figure_latent_scatter", arts, profile={"SCATTER_SIZE": 1000}).fraction == 1.0


def test_decoded_grid_stitched_padded_and_subplots():
    for side in (420, 452, 484):       # no padding, make_grid's 2 px, 4 px
        assert run("figure_decoded_grid_15x15", artefacts([figure(axes(images=[image(side, side)]))])).fraction == 1.0
    rgb = figure(axes(images=[{"shape": [452, 452, 3], "min": 0, "max": 1}]))
    assert run("figure_decoded_grid_15x15", artefacts([rgb])).fraction == 1.0
    assert run("figure_decoded_grid_15x15", artefacts([subplot_grid(15, 15)])).fraction == 1.0


def test_decoded_grid_10x10_is_partial_and_named():
    result = run("figure_decoded_grid_15x15", artefacts([figure(axes(images=[image(280, 280)]))]))
    assert result.fraction == 0.5 and "10x10" in result.message and "15x15" in result.message
    subplots = run("figure_decoded_grid_15x15", artefacts([subplot_grid(10, 10)]))
    assert subplots.fraction == 0.5 and "10x10" in subplots.message
    missing = run("figure_decoded_grid_15x15", artefacts([scatter_figure(5000)]))
    assert missing.fraction == 0.0 and "No 15x15 grid" in missing.message


def test_digit_rows_in_every_layout():
    for fig in (subplot_grid(10, 5), subplot_grid(5, 10), figure(axes(images=[image(280, 140)])),
                figure(axes(images=[image(140, 280)]))):
        assert run("figure_digit_rows", artefacts([fig])).fraction == 1.0
    strips = [subplot_grid(1, 5) for _ in range(10)]
    separate = run("figure_digit_rows", artefacts(strips))
    assert separate.fraction == 0.75 and "ONE grid" in separate.message
    wrong = run("figure_digit_rows", artefacts([subplot_grid(10, 3)]))
    assert wrong.fraction == 0.5 and "10x3" in wrong.message
    # the 1 x 10 row of prior samples is not a per-digit grid
    assert run("figure_digit_rows", artefacts([subplot_grid(1, 10)])).fraction == 0.0


def test_reconstruction_sweep():
    dims = list(range(2, 21))
    both = figure(axes(lines=[line(np.linspace(0.06, 0.02, 19), dims, "autoencoder"),
                              line(np.linspace(0.05, 0.01, 19), dims, "PCA")], legend=["autoencoder", "PCA"]))
    assert run("figure_reconstruction_sweep", artefacts([both])).fraction == 1.0
    unnamed = figure(axes(lines=[line(np.linspace(0.06, 0.02, 19), dims, "_child0"),
                                 line(np.linspace(0.05, 0.01, 19), dims, "_child1")]))
    result = run("figure_reconstruction_sweep", artefacts([unnamed]))
    assert result.fraction == pytest.approx(0.9) and "legend" in result.message
    one = figure(axes(lines=[line(np.linspace(0.06, 0.02, 19), dims)]))
    assert run("figure_reconstruction_sweep", artefacts([one])).fraction == 0.5


def test_reconstruction_sweep_uses_the_notebooks_sweep_dims():
    short = figure(axes(lines=[line([0.05, 0.03], [2, 4], "autoencoder"), line([0.04, 0.02], [2, 4], "PCA")],
                        legend=["autoencoder", "PCA"]))
    arts = artefacts([short], sweep={"SWEEP_DIMS": [2, 4], "reconstruction_errors": {}})
    assert run("figure_reconstruction_sweep", arts).fraction == 1.0
    assert run("figure_reconstruction_sweep", artefacts([short])).fraction == 0.0


# --- against the real probe-input generator, many draws ----------------------------------------------------------

def test_correct_answers_and_mistakes_are_recognised_on_grader_drawn_inputs():
    probe_inputs = pytest.importorskip("autograder.execution.probe_inputs")
    for seed in range(8):
        inputs = probe_inputs.draw_probe_inputs(seed)
        correct = artefacts(kl=kl_answer(KL_VARIANTS["correct"], inputs), loss=loss_answer(inputs),
                            reparameterize=reparameterize_answer(inputs, seed=seed), pca=pca_answer(inputs))
        for name in ("kl_closed_form", "kl_sums_latent_dims", "kl_batch_average", "loss_proportions",
                     "reparameterization", "pca_agrees_with_sklearn"):
            result = CHECKS[name](correct, inputs, {})
            assert result.fraction == 1.0, (seed, name, result.message)
        wrong = artefacts(kl=kl_answer(KL_VARIANTS["summed_over_batch"], inputs),
                          loss=loss_answer(inputs, "recon_pixel_mean", "recon_pixel_mean"),
                          reparameterize=reparameterize_answer(inputs, "z_equals_mu", seed),
                          pca=pca_answer(inputs, forget_sqrt=True))
        assert CHECKS["kl_batch_average"](wrong, inputs, {}).fraction == 0.0
        assert CHECKS["loss_proportions"](wrong, inputs, {}).fraction == 0.0
        assert "no sampling" in CHECKS["reparameterization"](wrong, inputs, {}).message
        assert "forgot sqrt(lambda)" in CHECKS["pca_agrees_with_sklearn"](wrong, inputs, {}).message


def test_every_check_has_defaults_and_plain_details():
    import json
    assert set(CHECKS) == set(CHECK_DEFAULTS)
    arts = artefacts(kl=kl_answer(KL_VARIANTS["correct"]), loss=loss_answer(), pca=pca_answer())
    for check in CHECKS.values():
        json.dumps(check(arts, INPUTS, {}).details, allow_nan=False)
    assert not math.isnan(CHECKS["kl_closed_form"](arts, INPUTS, {}).fraction)


def test_the_given_autoencoder_figures_never_earn_the_vae_items():
    # the template's working AE cell: scatter of 5000 codes + a stitched 10x10 grid, titled as the autoencoder's
    ae_run = figure(axes(title="codes of test images", scatters=[{"n_points": 5000, "n_colors": 10, "n_values": 10}]),
                    axes(title="decoded from a grid of codes", images=[image(280, 280)]),
                    suptitle="Autoencoder run 1 of 3 (seed 0)")
    pca = figure(axes(scatters=[{"n_points": 5000, "n_colors": 10, "n_values": 10}]), suptitle="PCA with 2 components")
    arts = artefacts([ae_run, pca])
    for name in ("figure_latent_scatter", "figure_decoded_grid_15x15", "figure_digit_rows"):
        result = run(name, arts)
        assert result.fraction == 0.0 and "titled as autoencoder/PCA figures" in result.message, name
    vae = figure(axes(scatters=[{"n_points": 5000, "n_colors": 10, "n_values": 10}]),
                 suptitle="Variational autoencoder: z of 5000 images")
    assert run("figure_latent_scatter", artefacts([ae_run, vae])).fraction == 1.0


def test_unreadable_history_says_why_and_rising_curves_are_no_fallback():
    value = {**histories(vae_history=None), "errors": {"vae_history": "TypeError: expected a scalar, got shape [3]"}}
    rising = figure(axes(xlabel="epoch", ylabel="loss", lines=[line(list(reversed(FALLING)))]))
    result = run("loss_decreases", artefacts([rising], histories=value))
    assert result.fraction == pytest.approx(2 / 3)
    assert "vae_history could not be read (TypeError: expected a scalar" in result.message


def test_decoder_nan_outputs_are_named():
    nan_case = [{"dim_latent": s["dim_latent"], "batch": s["batch"], "shape": [s["batch"], 784], "min": None,
                 "max": None} for s in INPUTS["decoder_output"]]
    result = run("decoder_output", artefacts(decoder_output=nan_case))
    assert result.fraction == 0.5 and "NaN" in result.message
