"""checks/baselines.py: seed 001's figures earn points only when they show the student's own autoencoders and PCA.
The autoencoders are simulated decoders (fakes.LookupDecoder) matched by the grader's own matcher; the PCA figures
are made here from real MNIST with scikit-learn and measured by the grader's probe (model_probes.run_pca_figures)."""
import numpy as np
import pytest
from matplotlib.figure import Figure
from sklearn.decomposition import PCA
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

from autograder.checks import CHECKS
from autograder.checks.baselines import PCA_TIE_MAX
from autograder.execution.kernel import recorder
from autograder.probing import model_probes
from autograder.probing.reference_data import reference_data
from tests.checks.conftest import DATA
from tests.checks.fakes import (CENTROIDS, LookupDecoder, ae_model, artefacts, context, figure_grids, latent_points,
                                picture_figure, scatter_figure, stitch, subplots_figure)

RUNS = 3


# --- task 1: the autoencoder runs ------------------------------------------------------------------------------------

def run_centroids(run: int) -> np.ndarray:
    """Where each run's encoder puts the digits: another seed, another arrangement."""
    return np.random.default_rng([11, run]).uniform(-2.2, 2.2, (10, 2))


def run_tiles(mnist, run: int, rows: int = 10, cols: int = 10) -> np.ndarray:
    """What run `run`'s decoder draws over its codes: other MNIST images for every run."""
    return np.stack([mnist[i % 10][100 * run + i // 10] for i in range(rows * cols)]).reshape(rows, cols, 28, 28)


def run_figure(points, labels, tiles) -> dict:
    """The solution's layout: codes on the left, the decoded grid on the right, one figure per run."""
    figure = Figure(figsize=(11, 4.5))
    left, right = figure.subplots(1, 2)
    left.scatter(points[:, 0], points[:, 1], c=labels, cmap="tab10", s=3)
    right.imshow(stitch(tiles), cmap="gray", vmin=0, vmax=1)
    return recorder.describe_figure(figure)


def runs_artefacts(mnist, figures, decoders=None, changes=None) -> dict:
    decoders = decoders or [LookupDecoder(run_tiles(mnist, run).reshape(-1, 28, 28)) for run in range(RUNS)]
    models = [ae_model(figures, decoder, run_centroids(run), **(changes or {}).get(run, {}))
              for run, decoder in enumerate(decoders)]
    return artefacts(figures, ae_models=models)


def score_runs(arts, runs=RUNS):
    return CHECKS["figure_autoencoder_runs"](arts, {}, {"profile": {"AE_RUNS": runs}})


def run_figures(mnist, runs=range(RUNS)) -> list:
    return [run_figure(*latent_points(2000, run_centroids(run), seed=run), run_tiles(mnist, run)) for run in runs]


def test_every_run_shown_with_its_own_model_earns_the_item(mnist):
    result = score_runs(runs_artefacts(mnist, run_figures(mnist)))
    assert result.fraction == 1.0, result.message
    assert [(r["scatter"], r["grid"]) for r in result.details["runs"]] == [(True, True)] * RUNS


def test_the_runs_drawn_another_way_keep_every_point(mnist):
    """Scatters per digit in one figure, the grids as subplots in another: correct work, written differently."""
    figures = [scatter_figure(*latent_points(2000, run_centroids(run), seed=run), per_digit=True) for run in
               range(RUNS)]
    figures += [subplots_figure(run_tiles(mnist, run, 8, 8)) for run in range(RUNS)]
    decoders = [LookupDecoder(run_tiles(mnist, run, 8, 8).reshape(-1, 28, 28)) for run in range(RUNS)]
    result = score_runs(runs_artefacts(mnist, figures, decoders))
    assert result.fraction == 1.0, result.message


def test_one_runs_figures_shown_three_times_earn_one_run(mnist):
    figures = run_figures(mnist, [0]) * RUNS
    result = score_runs(runs_artefacts(mnist, figures))
    assert result.fraction == pytest.approx(1 / RUNS)
    assert "run 2: no a scatter" in result.message and "run 3" in result.message


def test_pasted_digits_and_made_up_codes_earn_nothing(mnist):
    pasted = [run_figure(*latent_points(2000, CENTROIDS[::-1] * 3.0, seed=run), run_tiles(mnist, run + 5))
              for run in range(RUNS)]
    result = score_runs(runs_artefacts(mnist, pasted))
    assert result.fraction == 0.0
    assert "made with that run's model" in result.message


def test_an_untrained_autoencoder_earns_nothing_for_its_run(mnist):
    arts = runs_artefacts(mnist, run_figures(mnist), changes={1: {"mse_train": 0.22}})
    result = score_runs(arts)
    assert result.fraction == pytest.approx(2 / RUNS)
    assert "run 2 is not trained" in result.message


def test_a_grid_of_one_repeated_image_is_not_a_decoded_grid(mnist):
    same = np.broadcast_to(mnist[3][0], (10, 10, 28, 28)).copy()
    decoders = [LookupDecoder(np.broadcast_to(mnist[3][0], (100, 28, 28)))] * RUNS
    figures = [run_figure(*latent_points(2000, run_centroids(run), seed=run), same) for run in range(RUNS)]
    result = score_runs(runs_artefacts(mnist, figures, decoders))
    assert result.fraction == pytest.approx(0.5)              # the scatters only
    assert "whose images are all the same" in result.message


def test_fewer_runs_than_asked_lose_their_share(mnist):
    arts = runs_artefacts(mnist, run_figures(mnist, [0, 1]),
                          [LookupDecoder(run_tiles(mnist, run).reshape(-1, 28, 28)) for run in range(2)])
    result = score_runs(arts)
    assert result.fraction == pytest.approx(2 / RUNS)
    assert "ae_models holds 2 trained autoencoder(s); the assignment asks for 3 runs" in result.message


# --- task 2: the PCA baseline -----------------------------------------------------------------------------------------

N_TRAIN, SWEEP_TRAIN = 3000, 2000


@pytest.fixture(scope="module")
def mnist_data():
    return reference_data(DATA)


@pytest.fixture(scope="module")
def student_pca(mnist_data):
    """The student's PCA, fitted as the template fits it (the first SWEEP_TRAIN training images)."""
    return PCA(n_components=20, svd_solver="full").fit(mnist_data.train_images[:SWEEP_TRAIN])


def scatter_points(mnist_data, n=2000):
    return mnist_data.train_images[-n:], mnist_data.train_labels[-n:].astype(int)


def generated(pca, low=-2.0, high=2.0, side=10, flip=1.0) -> np.ndarray:
    """Equation (2) over a side x side grid of coordinates (whitened, like the template's a_1, a_2)."""
    a_1, a_2 = np.meshgrid(np.linspace(low, high, side), np.linspace(high, low, side))
    a = np.stack([a_1.ravel(), a_2.ravel()], axis=1)
    images = pca.mean_ + (a * np.sqrt(pca.explained_variance_[:2]) * np.array([1.0, flip])) @ pca.components_[:2]
    return images.reshape(side, side, 28, 28)


def pca_artefacts(mnist_data, figures) -> dict:
    ctx = context(data=mnist_data, profile={"N_TRAIN": N_TRAIN, "SWEEP_TRAIN": SWEEP_TRAIN},
                  figure_grids=figure_grids(figures))
    rng = np.random.default_rng(7)
    value = model_probes.run_pca_figures(None, model_probes.draw_pca_figures(rng, ctx), ctx)
    return artefacts(figures, pca_figures=value)


def score_pca(mnist_data, figures):
    return CHECKS["figure_pca"](pca_artefacts(mnist_data, figures), {}, {})


@pytest.mark.parametrize("fitted_on", [SWEEP_TRAIN, 60000])
def test_the_template_pca_figure_earns_the_item(mnist_data, fitted_on):
    """The template's figure, with PCA fitted as the template does or on all 60,000 training images."""
    pca = PCA(n_components=20, svd_solver="randomized", random_state=0).fit(mnist_data.train_images[:fitted_on])
    x, labels = scatter_points(mnist_data)
    figures = [scatter_figure(pca.transform(x)[:, :2], labels, title="PCA"),
               picture_figure(stitch(np.clip(generated(pca), 0, 1)), vmin=0, vmax=1)]
    result = score_pca(mnist_data, figures)
    assert result.fraction == 1.0, result.message
    assert result.details["scatter_error"] < PCA_TIE_MAX - 0.035     # the margin baselines.py states


def test_pca_figures_drawn_another_way_keep_every_point(mnist_data, student_pca):
    """Whitened and flipped coordinates with the axes swapped; inverse_transform's images unclipped, shown with
    imshow's own colour scale as subplots: the same PCA, written differently."""
    x, labels = scatter_points(mnist_data)
    codes = student_pca.transform(x)[:, :2] / np.sqrt(student_pca.explained_variance_[:2]) * np.array([-1.0, 1.0])
    a_1, a_2 = np.meshgrid(np.linspace(-3, 3, 7), np.linspace(3, -3, 7))
    coordinates = np.zeros((49, 20))
    coordinates[:, :2] = np.stack([a_1.ravel(), a_2.ravel()], axis=1) * np.sqrt(student_pca.explained_variance_[:2])
    tiles = student_pca.inverse_transform(coordinates).reshape(7, 7, 28, 28)
    figure = Figure()
    grid = figure.subplots(7, 7)
    for r in range(7):
        for c in range(7):
            grid[r, c].imshow(tiles[r, c], cmap="gray")
    figures = [scatter_figure(codes[:, ::-1], labels, per_digit=True), recorder.describe_figure(figure)]
    result = score_pca(mnist_data, figures)
    assert result.fraction == 1.0, result.message


def test_a_grid_of_dataset_digits_is_not_generated_by_pca(mnist_data, student_pca):
    x, labels = scatter_points(mnist_data)
    digits = mnist_data.test_images[:100].reshape(10, 10, 28, 28)
    result = score_pca(mnist_data, [scatter_figure(student_pca.transform(x)[:, :2], labels),
                                    picture_figure(stitch(digits))])
    assert result.fraction == pytest.approx(0.5)
    assert "no grid of images generated with equation (2) found" in result.message


def test_a_grid_of_the_mean_image_shows_no_coordinates(mnist_data, student_pca):
    x, labels = scatter_points(mnist_data)
    result = score_pca(mnist_data, [scatter_figure(student_pca.transform(x)[:, :2], labels),
                                    picture_figure(stitch(generated(student_pca, -0.1, 0.1)))])
    assert result.fraction == pytest.approx(0.5)
    assert "varies its coordinates by only" in result.message


def test_another_projection_is_not_the_pca_scatter(mnist_data, student_pca):
    """Linear discriminant analysis also draws the digits in 2-D, but not where PCA puts them; nor do points placed
    at random per digit."""
    x, labels = scatter_points(mnist_data)
    lda = LinearDiscriminantAnalysis(n_components=2).fit(x, labels).transform(x)
    made_up, _ = latent_points(len(labels), CENTROIDS, seed=3)
    grid = picture_figure(stitch(np.clip(generated(student_pca), 0, 1)))
    for points in (lda, made_up):
        result = score_pca(mnist_data, [scatter_figure(points, labels), grid])
        assert result.fraction == pytest.approx(0.5), result.details
        assert "no scatter shows the first two PCA coordinates" in result.message
