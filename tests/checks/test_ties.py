"""checks/ties.py: what ties a figure to the student's model. A grid is tied when its tiles are vae.decoder's outputs
(the grader's matcher, model_probes.match_grids, against a simulated decoder); a scatter is tied when its colour groups
sit at the grader's per-digit centroids of the encodings; and how well a scatter separates the digits."""
import numpy as np
import pytest

from autograder.checks import CHECKS
from autograder.checks.ties import (TILE_RESIDUAL_MAX, Scatter, decoder_grids, scatter_tie, scatters, separation,
                                    untied_note)
from tests.checks.fakes import (CENTROIDS, LookupDecoder, artefacts, encodings, latent_points, picture_figure,
                                scatter_figure, stitch, subplots_figure, vae_model)


def digit_tiles(mnist, rows, cols, offset=0) -> np.ndarray:
    """(rows, cols, 28, 28) MNIST test digits, every digit in turn."""
    return np.stack([mnist[i % 10][offset + i // 10] for i in range(rows * cols)]).reshape(rows, cols, 28, 28)


def grids_of(figures, decoder_images):
    """decoder_grids for these figures, matched against a decoder that draws `decoder_images`."""
    return decoder_grids(artefacts(figures, vae_model=vae_model(figures, LookupDecoder(decoder_images))))


# --- grids ---------------------------------------------------------------------------------------------------------

def test_a_grid_of_the_decoders_images_is_tied(mnist):
    tiles = digit_tiles(mnist, 15, 15)
    figures = [picture_figure(stitch(tiles, pad=2))]
    [tied], why = grids_of(figures, tiles.reshape(-1, 28, 28))
    assert why == "" and tied.tied and tied.tied_fraction == 1.0
    assert (tied.grid.rows, tied.grid.cols) == (15, 15) and float(tied.residual.max()) < 0.01
    assert tied.z.shape == (15, 15, 2) and untied_note([tied]) == ""


def test_a_grid_of_pasted_digits_is_not_tied(mnist):
    shown = digit_tiles(mnist, 15, 15)
    made = digit_tiles(mnist, 15, 15, offset=40)            # the decoder draws other images of the same digits
    [untied], _ = grids_of([picture_figure(stitch(shown))], made.reshape(-1, 28, 28))
    assert not untied.tied and untied.tied_fraction < 0.1
    assert float(np.median(untied.residual)) > 2 * TILE_RESIDUAL_MAX
    assert "not made of your vae.decoder's images" in untied_note([untied])


def test_a_grid_drawn_with_its_own_colour_scale_is_still_tied(mnist):
    tiles = digit_tiles(mnist, 10, 5)
    figures = [picture_figure(0.2 + 0.6 * stitch(tiles), vmin=0, vmax=1),     # grey levels 0.2 .. 0.8
               subplots_figure(tiles)]
    grids, _ = grids_of(figures, tiles.reshape(-1, 28, 28))
    assert [g.grid.kind for g in grids] == ["stitched", "subplots"] and all(g.tied for g in grids)


def test_a_grid_is_tied_only_when_most_of_its_tiles_are_outputs(mnist):
    tiles = digit_tiles(mnist, 10, 5)
    decoded = tiles.reshape(-1, 28, 28).copy()
    decoded[:10] = digit_tiles(mnist, 2, 5, offset=60).reshape(-1, 28, 28)   # 10 of 50 tiles were pasted
    [grid], _ = grids_of([subplots_figure(tiles)], decoded)
    assert grid.tied_fraction == pytest.approx(0.8) and not grid.tied


def test_without_the_model_no_grid_is_tied(mnist):
    figures = [subplots_figure(digit_tiles(mnist, 10, 5))]
    grids, why = decoder_grids(artefacts(figures))
    assert grids == [] and "vae" in why and "did not run" in why


def test_a_grid_of_blank_tiles_is_not_tied(mnist):
    blank = np.zeros((15, 15, 28, 28))
    [grid], _ = grids_of([subplots_figure(blank)], digit_tiles(mnist, 15, 15).reshape(-1, 28, 28))
    assert not grid.tied


def test_faint_pasted_digits_are_not_tied(mnist):
    shown = digit_tiles(mnist, 15, 15)
    figures = [picture_figure(stitch(shown), vmin=0, vmax=20)]
    [grid], _ = grids_of(figures, digit_tiles(mnist, 15, 15, offset=40).reshape(-1, 28, 28))
    assert not grid.tied


# --- scatters ------------------------------------------------------------------------------------------------------

def only_scatter(figure) -> Scatter:
    [scatter] = scatters([figure])
    return scatter


def test_a_scatter_at_the_encoders_centroids_is_tied():
    points, labels = latent_points()
    error, details = scatter_tie(only_scatter(scatter_figure(points, labels)), encodings())
    assert error < 0.05 and details["groups"] == 10 and details["axes_swapped"] is False


def test_a_random_scatter_coloured_by_labels_is_not_tied():
    rng = np.random.default_rng(1)
    points, labels = rng.normal(0.0, 1.5, (5000, 2)), rng.integers(0, 10, 5000)
    figure = scatter_figure(points, labels)
    error, _ = scatter_tie(only_scatter(figure), encodings())
    assert error > 0.5
    result = CHECKS["figure_latent_scatter"](artefacts([figure], vae_model=vae_model()), {}, {})
    assert result.fraction == 0.0 and "No scatter shows where your vae.encoder puts the digits" in result.message
    # the same points where the encoder puts the digits are tied
    assert scatter_tie(only_scatter(scatter_figure(*latent_points())), encodings())[0] < 0.05


def test_a_scatter_of_another_models_codes_is_not_tied():
    # an autoencoder's codes: ten well separated clusters, but not where vae.encoder puts the digits
    elsewhere = CENTROIDS[[3, 7, 1, 9, 0, 5, 2, 8, 6, 4]] * 1.6 + np.array([4.0, -3.0])
    error, _ = scatter_tie(only_scatter(scatter_figure(*latent_points(centroids=elsewhere))), encodings())
    assert error > 0.35


def test_swapped_axes_are_accepted():
    points, labels = latent_points()
    swapped = scatter_figure(points[:, ::-1].copy(), labels, xlabel="z[1]", ylabel="z[0]")
    error, details = scatter_tie(only_scatter(swapped), encodings())
    assert error < 0.05 and details["axes_swapped"] is True
    assert CHECKS["figure_latent_scatter"](artefacts([swapped], vae_model=vae_model()), {}, {}).fraction == 1.0


def test_one_scatter_per_digit_in_one_axes_or_one_subplot_per_digit():
    from matplotlib.figure import Figure
    from autograder.execution.kernel import recorder

    points, labels = latent_points()
    assert scatter_tie(only_scatter(scatter_figure(points, labels, per_digit=True)), encodings())[0] < 0.05
    figure = Figure()
    for digit, ax in enumerate(figure.subplots(2, 5).ravel()):
        ax.scatter(points[labels == digit, 0], points[labels == digit, 1], s=2)
    whole = [s for s in scatters([recorder.describe_figure(figure)]) if s.n_groups == 10]
    assert len(whole) == 1 and scatter_tie(whole[0], encodings())[0] < 0.05


def test_separation_of_well_separated_and_mixed_groups():
    points, labels = latent_points(spread=0.3)
    separated = separation(only_scatter(scatter_figure(points, labels)))
    rng = np.random.default_rng(2)
    mixed = separation(only_scatter(scatter_figure(points, rng.permutation(labels))))
    assert separated > 0.9 and mixed < 0.25
    overlapping = separation(only_scatter(scatter_figure(*latent_points(spread=1.5))))
    assert mixed < overlapping < separated
    one_colour = Scatter(0, points, np.zeros(len(points), int), len(points), 1, "")
    assert separation(one_colour) == 0.0
