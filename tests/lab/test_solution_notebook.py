"""The reference solution, executed at the TINY profile through autograder.lab.solution_run, meets docs/contract.md."""
from __future__ import annotations

import math
from pathlib import Path

import nbformat
import pytest

from autograder.lab import profiles, solution_run

REPO = Path(__file__).resolve().parents[2]

# Runs after the results cell, in the solution's kernel: names, types and shapes of the contract, as JSON.
PROBE = r'''
import inspect as _inspect
import json as _json

import numpy as _np
import torch as _torch
from sklearn.decomposition import PCA as _PCA


def _lab_probe():
    names = ["FF", "Autoencoder", "VAEEncoder", "VAEDecoder", "VAE", "reparameterize", "kl_divergence",
             "bernoulli_vae_loss", "gaussian_vae_loss", "pca_encode", "pca_generate", "pca_reconstruct",
             "ae_histories", "SWEEP_DIMS", "reconstruction_errors", "vae", "vae_history", "gaussian_vae",
             "gaussian_vae_history"]
    found = {name: name in globals() for name in names}
    classes = {name: _inspect.isclass(globals()[name]) and issubclass(globals()[name], _torch.nn.Module)
               for name in ["FF", "Autoencoder", "VAEEncoder", "VAEDecoder", "VAE"]}
    _torch.manual_seed(0)
    encoder_shapes = []
    for dim_latent, batch in [(2, 1), (2, 7), (5, 16)]:
        mu, log_sigma_squared = VAEEncoder(784, dim_latent)(_torch.rand(batch, 784))
        encoder_shapes.append([list(mu.shape), list(log_sigma_squared.shape)])
    decoded = VAEDecoder(5, 784)(_torch.randn(8, 5) * 4)
    model_outputs = VAE(784, 2)(_torch.rand(3, 784))
    mu, log_sigma_squared = _torch.randn(6, 2), _torch.randn(6, 2)
    x, probs = _torch.rand(4, 784), _torch.rand(4, 784) * 0.9 + 0.05
    codes, logs = _torch.randn(4, 2), _torch.randn(4, 2)
    rng = _np.random.default_rng(0)
    data = rng.normal(size=(200, 30))
    fitted = _PCA(n_components=5, svd_solver="full").fit(data)
    whitened = rng.normal(size=(3, 5))
    return {
        "found": found,
        "module_classes": classes,
        "encoder_shapes": encoder_shapes,
        "decoder": [list(decoded.shape), float(decoded.min()), float(decoded.max())],
        "vae_output_shapes": [list(t.shape) for t in model_outputs],
        "kl": [float(kl_divergence(mu, log_sigma_squared)),
               float(kl_divergence(_torch.cat([mu, mu]), _torch.cat([log_sigma_squared, log_sigma_squared]))),
               float(_torch.stack([kl_divergence(mu[i:i + 1], log_sigma_squared[i:i + 1]) for i in range(6)]).mean())],
        "bernoulli": [float(bernoulli_vae_loss(x, probs, codes, logs)),
                      float(-(x * probs.log() + (1 - x) * (1 - probs).log()).sum(1).mean() + kl_divergence(codes, logs))],
        "gaussian": [float(gaussian_vae_loss(x, probs, codes, logs)),
                     float(((x - probs) ** 2).sum(1).mean() / 0.2 + kl_divergence(codes, logs))],
        "pca": [bool(_np.allclose(pca_encode(fitted, data), fitted.transform(data))),
                bool(_np.allclose(pca_reconstruct(fitted, data), fitted.inverse_transform(fitted.transform(data)))),
                bool(_np.allclose(pca_generate(fitted, whitened),
                                  fitted.mean_ + (whitened * _np.sqrt(fitted.explained_variance_)) @ fitted.components_))],
        "vae_types": [type(vae).__name__, type(vae.encoder).__name__, type(gaussian_vae).__name__],
        "vae_test_nelbo_type": type(vae_test_nelbo).__name__,
        "part_times": sorted(part_times),
        "grid_low_high": [grid_z.min(0).values.tolist(), grid_z.max(0).values.tolist()],
        "mu_percentiles": _np.percentile(mu_points, [1, 99], axis=0).tolist(),
        "mu_inside_grid": float(_np.mean(_np.all((mu_points >= grid_z.min(0).values.cpu().numpy())
                                                 & (mu_points <= grid_z.max(0).values.cpu().numpy()), axis=1))),
        "digit_z_shape": list(digit_z.shape),
        "digit_z_are_codes": bool((_np.abs(digit_z.cpu().numpy()[:, None] - mu_points[None]).max(2) < 1e-6).any()),
        "digit_z_per_row": [[float(v) for v in row] for row in digit_z.cpu().numpy().reshape(10, 5, -1).std(1)],
        "sweep_models": sorted(int(k) for k in sweep_models),
        "clipped_fractions": list(gaussian_vae.clipped_fractions),
    }


print("%s" + _json.dumps(_lab_probe()))
''' % solution_run.METRICS_MARKER


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny")
    return solution_run.execute("tiny", out, device="cpu", cell_timeout=300, extra_code=[PROBE]) | {"out": out}


@pytest.fixture(scope="module")
def metrics(run):
    return run["metrics"]


@pytest.fixture(scope="module")
def probe(run):
    assert len(run["extra"]) == 1, "the probe cell printed no JSON"
    return run["extra"][0]


def test_full_profile_equals_parameters_cell():
    nb = nbformat.read(REPO / "solution" / "lab.ipynb", as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1
    namespace = {}
    exec(cells[0].source, namespace)
    knobs = {k: v for k, v in namespace.items() if not k.startswith("__")}
    assert knobs == profiles.FULL
    assert list(knobs) == list(profiles.KNOBS), "FULL should list the knobs in the cell's order"


def test_profiles_share_knobs_and_figure_shapes():
    for name, profile in profiles.PROFILES.items():
        assert set(profile) == set(profiles.FULL), name
        assert profile["SCATTER_SIZE"] == 5000 and profile["AE_RUNS"] == 3, name
        assert profile["VAE_EPOCHS"] >= 2 and profile["AE_EPOCHS"] >= 2, f"{name}: a loss needs 2 epochs to fall"
    assert profiles.GRADING["SWEEP_DIMS"] == list(range(2, 21))
    with pytest.raises(ValueError):
        profiles.get_profile("huge")


def test_outputs_written(run, metrics):
    out = run["out"]
    assert (out / "metrics.json").exists() and (out / "lab.ipynb").exists()
    pngs = sorted((out / "figures").glob("*.png"))
    assert len(pngs) == metrics["n_png_outputs"] == len(metrics["figures"])
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    executed = nbformat.read(out / "lab.ipynb", as_version=4)
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1
    index = executed.cells.index(injected[0])
    assert "parameters" in executed.cells[index - 1].metadata.get("tags", [])


def test_contract_names(probe, metrics):
    assert all(probe["found"].values()), [name for name, ok in probe["found"].items() if not ok]
    assert all(probe["module_classes"].values()), probe["module_classes"]
    assert probe["encoder_shapes"] == [[[1, 2], [1, 2]], [[7, 2], [7, 2]], [[16, 5], [16, 5]]]
    shape, low, high = probe["decoder"]
    assert shape == [8, 784] and 0 <= low <= high <= 1
    assert probe["vae_output_shapes"] == [[3, 784], [3, 2], [3, 2]]
    batch, doubled, rows = probe["kl"]
    assert batch > 0 and math.isclose(batch, doubled, rel_tol=1e-5) and math.isclose(batch, rows, rel_tol=1e-5)
    assert math.isclose(*probe["bernoulli"], rel_tol=1e-4)
    assert math.isclose(*probe["gaussian"], rel_tol=1e-4)
    assert probe["pca"] == [True, True, True]
    assert probe["vae_types"] == ["VAE", "VAEEncoder", "VAE"]
    assert probe["vae_test_nelbo_type"] == "float"
    assert {"autoencoder", "pca", "sweep", "vae", "gaussian_vae", "architecture"} <= set(probe["part_times"])


def test_decoded_grid_covers_the_range_of_the_encodings(probe):
    """Figure (c) spans the 1st..99th percentiles of the encoder means on each axis (not the prior's quantiles)."""
    low, high = probe["grid_low_high"]
    assert low == pytest.approx(probe["mu_percentiles"][0], abs=1e-5)
    assert high == pytest.approx(probe["mu_percentiles"][1], abs=1e-5)
    assert probe["mu_inside_grid"] >= 0.96


def test_digit_rows_are_new_samples(probe):
    """Figure (d) decodes z drawn from each digit's region: 5 different points per digit, none a training image's
    code (so no reconstructions)."""
    assert probe["digit_z_shape"] == [50, 2]
    assert not probe["digit_z_are_codes"]
    assert all(max(spread) > 0 for spread in probe["digit_z_per_row"])


def test_sweep_models_and_clipping_are_kept(probe, metrics):
    assert probe["sweep_models"] == metrics["knobs"]["SWEEP_DIMS"]
    fractions = metrics["gaussian_vae_clipped_fractions"]
    assert fractions == probe["clipped_fractions"] and len(fractions) == metrics["knobs"]["GAUSSIAN_VAE_EPOCHS"]
    assert all(0 <= f <= 1 for f in fractions)


def test_histories_and_numbers(metrics):
    knobs = metrics["knobs"]
    histories = metrics["histories"]
    assert len(histories["ae_histories"]) == knobs["AE_RUNS"]
    for history in histories["ae_histories"]:
        assert len(history) == knobs["AE_EPOCHS"] and history[-1] < history[0], history
    for name, epochs in (("vae_history", "VAE_EPOCHS"), ("gaussian_vae_history", "GAUSSIAN_VAE_EPOCHS")):
        history = histories[name]
        assert len(history) == knobs[epochs] and history[-1] < history[0], (name, history)
    sweep = metrics["reconstruction_mse"]
    assert sweep["SWEEP_DIMS"] == knobs["SWEEP_DIMS"]
    for method in ("autoencoder", "pca"):
        assert len(sweep[method]) == len(knobs["SWEEP_DIMS"]) and all(0 < v < 0.2 for v in sweep[method])
    assert sweep["pca"][-1] < sweep["pca"][0], "PCA's error must fall with more components"
    assert 100 < metrics["vae_test_nelbo"] < 550
    assert metrics["total_wall_time_s"] > 0 and metrics["device"] == "cpu"


def axes_of(figure):
    return figure["axes"]


def is_digit_scatter(ax, n_points):
    return any(s["n_points"] == n_points and s["n_values"] == 10 and s["n_colors"] == 10 for s in ax["scatters"])


def image_shapes(figure):
    return [tuple(image["shape"]) for ax in figure["axes"] for image in ax["images"]]


def test_figure_kinds(metrics):
    figures, knobs = metrics["figures"], metrics["knobs"]
    scatter_size = knobs["SCATTER_SIZE"]

    def count(predicate):
        return sum(1 for figure in figures if predicate(figure))

    # 1 + 2: three autoencoder runs and PCA: a digit scatter and a stitched 10 x 10 picture each
    scatter_and_grid = [f for f in figures if any(is_digit_scatter(ax, scatter_size) for ax in f["axes"])
                        and (280, 280) in image_shapes(f)]
    assert len(scatter_and_grid) == knobs["AE_RUNS"] + 1
    assert sum("Autoencoder run" in f["suptitle"] for f in scatter_and_grid) == knobs["AE_RUNS"]
    assert sum("PCA" in f["suptitle"] for f in scatter_and_grid) == 1
    # 3: reconstruction error, one axes with two lines over SWEEP_DIMS
    sweep_axes = [ax for f in figures for ax in f["axes"]
                  if len(ax["lines"]) == 2 and all(line["x"] == knobs["SWEEP_DIMS"] for line in ax["lines"])]
    assert len(sweep_axes) == 1 and set(sweep_axes[0]["legend"]) == {"autoencoder", "PCA"}
    # 4: training curves, one point per epoch
    curves = [line for f in figures for ax in f["axes"] for line in ax["lines"]]
    assert any(line["y"] == pytest.approx(metrics["histories"]["vae_history"]) and
               line["x"] == list(range(1, knobs["VAE_EPOCHS"] + 1)) for line in curves)
    assert any(line["y"] == pytest.approx(metrics["histories"]["gaussian_vae_history"]) for line in curves)
    # 5: scatter of z alone (plus its colour bar); scatters of more than 2 dimensions seen through PCA: the autoencoder
    # of the sweep with the largest code up to 8 (task 3b), the Gaussian VAE with an 8-D latent space (task 5c)
    alone = [f for f in figures if len(f["axes"]) == 2 and is_digit_scatter(f["axes"][0], scatter_size)]
    titles = [f["axes"][0]["title"] for f in alone]
    assert len(alone) == 3 and sum(t.startswith("VAE: z of") for t in titles) == 1, titles
    view = max(d for d in knobs["SWEEP_DIMS"] if d <= 8)
    assert f"autoencoder with {view} code dimensions: the codes seen through PCA" in titles
    assert "Gaussian VAE with an 8-D latent space: encoder means seen through PCA" in titles
    assert all(f["axes"][0]["xlabel"].startswith("principal component 1") for f in alone if "PCA" in
               f["axes"][0]["title"])
    # Figure 1: examples of MNIST digits, 3 x 8 (a shape no graded figure has)
    first = [f for f in figures if f["suptitle"] == "Figure 1: examples of MNIST training images"]
    assert len(first) == 1 and image_shapes(first[0]) == [(28, 28)] * 24
    assert figures.index(first[0]) == 0
    # 6: one stitched 15 x 15 picture
    assert count(lambda f: image_shapes(f) == [(420, 420)]) == 1
    # 7: 10 rows (digits) x 5 samples
    digit_grid = [f for f in figures if len(f["axes"]) == 50 and image_shapes(f) == [(28, 28)] * 50]
    assert len(digit_grid) == 1
    positions = [ax["position"] for ax in digit_grid[0]["axes"]]
    assert len({round(p[1], 4) for p in positions}) == 10 and len({round(p[0], 4) for p in positions}) == 5
    assert [ax["ylabel"] for ax in digit_grid[0]["axes"][::5]] == [f"digit {d}" for d in range(10)]
    # 8: prior samples, twice; Gaussian VAE samples and means (2 x 10)
    assert count(lambda f: image_shapes(f) == [(28, 28)] * 10 and "prior" in f["suptitle"]) == 2
    gaussian = [f for f in figures if image_shapes(f) == [(28, 28)] * 20 and "p(x|z)" in f["suptitle"]]
    assert len(gaussian) == 1 and len({round(ax["position"][1], 4) for ax in gaussian[0]["axes"]}) == 2
    variants = [f for f in figures if image_shapes(f) == [(28, 28)] * 20 and "variants" in f["suptitle"]]
    assert len(variants) == 1


def test_train_vae_feeds_the_corrupted_batch_to_the_model_and_the_clean_one_to_the_loss():
    # The reference recipe that reaches the 147-nat target: the model sees corrupt(batch), the loss compares with batch.
    import torch

    master = nbformat.read(REPO / "solution" / "lab.ipynb", as_version=4)
    source = next(c.source for c in master.cells if c.cell_type == "code" and "def train_vae(" in c.source)
    namespace = {"torch": torch, "math": math, "BATCH_SIZE": 4}
    exec(source, namespace)

    torch.manual_seed(0)
    x = torch.rand(8, 6) * 0.8 + 0.1                       # grey levels only: a binarisation always changes them
    seen, compared = [], []

    class Recorder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.zeros(1))

        def forward(self, batch):
            seen.append(batch.clone())
            return torch.sigmoid(batch + self.weight), batch[:, :2], batch[:, 2:4]

    def loss_function(batch, x_reconstructed, mu, log_sigma_squared):
        compared.append(batch.clone())
        return ((x_reconstructed - batch) ** 2).sum()

    history = namespace["train_vae"](Recorder(), loss_function, x, epochs=2, corrupt=namespace["corrupt_encoder_input"])
    assert len(history) == 2 and len(seen) == len(compared) == 4
    rows = {tuple(row.tolist()) for row in x}
    assert all(tuple(row.tolist()) in rows for batch in compared for row in batch), "the loss must see clean images"
    for clean, corrupted in zip(compared, seen):
        noise = corrupted - torch.round(corrupted)                 # Bernoulli draw in {0, 1} plus N(0, 0.1^2) noise
        assert noise.abs().max() < 0.5 and 0.02 < noise.std() < 0.3
        assert not torch.allclose(corrupted, clean)

    seen.clear()
    namespace["train_vae"](Recorder(), loss_function, x, epochs=1)
    assert all(tuple(row.tolist()) in rows for batch in seen for row in batch), "without corrupt the model sees x"
