"""Image-quality checks on hand-made figures: real MNIST tiles arranged right and wrong, noise, stitched images and
subplot grids, described by the kernel's recorder exactly as in a student's kernel, judged by the grader's
classifier. Every item needs a genuine trained VAE (the `vae_model` probe, tests/checks/fakes.py) and judges only the
grids whose tiles are its decoder's outputs: `run(..., decoded=images)` gives the notebook a VAE whose decoder draws
those images, matched against the figures by the grader's own matcher."""
import base64
import io
import math
import zlib

import numpy as np
import pytest
from matplotlib.figure import Figure

from autograder.checks import figure_reader, image_quality as ic
from autograder.execution.kernel import recorder as kernel_side
from autograder.lab import classifier
from autograder.probing import model_probes
from autograder.probing.session import ProbeFailed
from autograder.reports import feedback as report
from autograder.checks import CHECK_DEFAULTS, CHECKS
from autograder.lab.profiles import GRADING, TINY
from autograder.results import ItemScore
from autograder.scoring import load_rubric, score
from tests.checks.fakes import (INPUTS, NOT_TRAINED, Failed, LookupDecoder, artefacts, context, draw_inputs,
                                picture_figure, stitch, subplots_figure, vae_decode, vae_model)

RNG = np.random.default_rng(0)
pytestmark = pytest.mark.usefixtures("trained")       # the grader's classifier (tests/checks/conftest.py)


def digits_grid(mnist, row_digits, samples, offset=0) -> np.ndarray:
    """(rows, samples, 28, 28): row r holds `samples` different test images of digit row_digits[r]."""
    return np.stack([mnist[d][offset + 7 * r: offset + 7 * r + samples] for r, d in enumerate(row_digits)])


def decode_probe(grid=None, prior=None, error=None) -> dict:
    """The vae_decode probe: the student's decoder on the grader's 15x15 grid and 100 prior draws, or its error."""
    if error:
        return {"vae_decode": Failed(error)}
    return {"vae_decode": vae_decode(grid=grid, prior=prior)}


def with_model(figures=(), decoded=None, probes_=None, **model_changes) -> dict:
    """The artefacts of a notebook with these figures and a genuine trained VAE whose decoder draws `decoded`."""
    figures = list(figures)
    decoder = LookupDecoder(np.asarray(decoded).reshape(-1, 28, 28)) if decoded is not None else None
    return artefacts(figures, vae_model=vae_model(figures, decoder, **model_changes), **(probes_ or {}))


def run(check, figures=(), probes_=None, decoded=None, **params):
    return CHECKS[check](with_model(figures, decoded, probes_), INPUTS, params)


def png_pixels(src: str) -> np.ndarray:
    from PIL import Image

    assert src.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))))


# --- (a) per-digit grid --------------------------------------------------------------------------------------------

def test_per_digit_grid_of_real_digits_earns_full_credit_as_subplots_and_stitched(mnist):
    tiles = digits_grid(mnist, range(10), 5)
    for figure in (subplots_figure(tiles, "5 samples per digit"), picture_figure(stitch(tiles, pad=1))):
        result = run("digit_rows_quality", [figure], decoded=tiles)
        assert result.fraction == 1.0, result.message
        assert result.details["in_order"] >= 48
        assert "classifier_tiles" not in result.details


def test_a_make_grid_per_digit_grid_with_its_default_padding_earns_full_credit(mnist):
    tiles = digits_grid(mnist, range(10), 5)
    result = run("digit_rows_quality", [picture_figure(stitch(tiles, pad=2))], decoded=tiles)
    assert result.fraction == 1.0, result.message


def test_transposed_per_digit_grid_counts_columns_as_digits(mnist):
    tiles = digits_grid(mnist, range(10), 5).transpose(1, 0, 2, 3)     # 5 rows x 10 digit columns
    result = run("digit_rows_quality", [picture_figure(stitch(tiles))], decoded=tiles)
    assert result.fraction == 1.0, result.message


def test_rows_in_another_order_earn_partial_credit_and_are_told_the_order(mnist):
    shifted = digits_grid(mnist, [(d + 3) % 10 for d in range(10)], 5)
    result = run("digit_rows_quality", [subplots_figure(shifted)], decoded=shifted)
    assert result.fraction == pytest.approx(0.75, abs=0.05)
    assert "in the order 3, 4, 5" in result.message and "digit 0 in the first row" in result.message


def test_rows_of_mixed_digits_fail_and_show_what_the_classifier_saw(mnist):
    mixed = np.stack([np.stack([mnist[(r + s) % 10][r] for s in range(5)]) for r in range(10)])   # 1 in 5 right
    result = run("digit_rows_quality", [subplots_figure(mixed)], decoded=mixed)
    assert result.fraction == 0.0
    assert "Rows that failed" in result.message and "mean of mu" in result.message
    thumbs = result.details["classifier_tiles"]
    assert 0 < len(thumbs) <= ic.MAX_THUMBNAILS
    assert all("saw" in t["caption"] for t in thumbs)
    first = thumbs[0]["caption"]              # "row 0 (digit 0): saw 1 (99%)" : the tile shown is that tile
    row, sample = 0, 1
    assert first.startswith(f"row {row} (digit {row}): saw {(row + sample) % 10}")
    np.testing.assert_allclose(png_pixels(thumbs[0]["src"]) / 255.0, mixed[row, sample], atol=1 / 255 + 1e-9)


def test_bottom_origin_pictures_are_judged_as_displayed(mnist):
    tiles = digits_grid(mnist, range(10), 5)
    flipped = run("digit_rows_quality", [picture_figure(stitch(tiles)[::-1], origin="lower")], decoded=tiles)
    assert flipped.fraction == 1.0, flipped.message
    upside_down = run("digit_rows_quality", [picture_figure(stitch(tiles), origin="lower")], decoded=tiles)
    assert upside_down.fraction < 1.0     # shown upside down (rows 9..0, digits flipped): judged as shown


def test_inverted_pictures_of_the_decoders_digits_are_judged(mnist):
    tiles = digits_grid(mnist, range(10), 5)
    inverted = run("digit_rows_quality", [picture_figure(1.0 - stitch(tiles, pad=1))], decoded=tiles)
    assert inverted.fraction == 1.0 and inverted.details["inverted"] is True


def test_only_grids_made_by_the_decoder_are_judged_whatever_their_title(mnist):
    tiles = digits_grid(mnist, range(10), 5)
    other = digits_grid(mnist, range(10), 5, offset=2)               # the decoder draws other images
    figure = subplots_figure(tiles, "Autoencoder: decoded digits")
    pasted = run("digit_rows_quality", [figure], decoded=other)
    assert pasted.fraction == 0.0 and "No per-digit grid" in pasted.message
    assert "not made of your vae.decoder's images" in pasted.message
    assert run("digit_rows_quality", [figure], decoded=tiles).fraction == 1.0    # the title no longer matters


def test_a_vae_that_is_not_genuine_has_no_image_judged(mnist):
    tiles = digits_grid(mnist, range(10), 5)
    samples = np.concatenate([mnist[d][:10] for d in range(10)])
    for changes, words in ((NOT_TRAINED, "did not train"),
                           ({"prior_copy_rmse": [0.0] * 100}, "copies of MNIST images")):
        arts = with_model([subplots_figure(tiles)], tiles, decode_probe(grid=samples.repeat(3, 0)[:225],
                                                                        prior=samples), **changes)
        for check in ("digit_rows_quality", "decoded_grid_coverage", "prior_samples_quality"):
            result = CHECKS[check](arts, INPUTS, {})
            assert result.fraction == 0.0 and words in result.message, (check, result.message)
            assert "Its images are not judged" in result.message and "gate" in result.details


# --- (b) coverage of the decoded grid ------------------------------------------------------------------------------

def coverage_grid(mnist, digits, side=15) -> np.ndarray:
    cells = [mnist[digits[i % len(digits)]][i] for i in range(side * side)]
    return np.stack(cells).reshape(side, side, 28, 28)


def test_grid_with_every_digit_earns_full_coverage(mnist):
    grid = coverage_grid(mnist, range(10))
    result = run("decoded_grid_coverage", [picture_figure(stitch(grid))], decoded=grid)
    assert result.fraction == 1.0 and result.details["digits"] == list(range(10)), result.message


def test_grid_with_two_digits_earns_partial_coverage_with_thumbnails(mnist):
    grid = coverage_grid(mnist, [1, 7])
    result = run("decoded_grid_coverage", [picture_figure(stitch(grid))], decoded=grid)
    assert result.details["digits"] == [1, 7]
    full = CHECK_DEFAULTS["decoded_grid_coverage"]["full_classes"]
    assert result.fraction == pytest.approx(1 / (full - 1), abs=1e-5)      # linear from 1 digit (0) to `full`
    assert "not seen: 0, 2, 3, 4, 5, 6, 8, 9" in result.message
    captions = [t["caption"] for t in result.details["classifier_tiles"]]
    assert any("saw 1" in c for c in captions) and any("saw 7" in c for c in captions)


def test_another_square_grid_is_judged_when_the_15x15_is_missing(mnist):
    grid = coverage_grid(mnist, range(10), side=10)
    result = run("decoded_grid_coverage", [picture_figure(stitch(grid))], decoded=grid)
    assert result.fraction == 1.0 and "10x10" in result.details["source"]


def test_coverage_falls_back_to_the_decoder_probe(mnist):
    probes_ = decode_probe(grid=coverage_grid(mnist, range(10)).reshape(-1, 28, 28))
    result = run("decoded_grid_coverage", [], probes_)
    assert result.fraction == 1.0 and "decoded its own grid" in result.message
    # a figure grid that is not the decoder's is not judged: the grader decodes its own grid instead
    pasted = coverage_grid(mnist, [1])
    fallback = run("decoded_grid_coverage", [picture_figure(stitch(pasted))], probes_,
                   decoded=coverage_grid(mnist, range(10)))
    assert fallback.fraction == 1.0 and fallback.details["source"].startswith("your vae.decoder on z points")
    missing = run("decoded_grid_coverage", [], decode_probe(error="NameError: name 'vae' is not defined"))
    assert missing.fraction == 0.0 and "name 'vae' is not defined" in missing.message


def test_noise_earns_nothing_anywhere():
    noise = RNG.random((15, 15, 28, 28))
    rows = RNG.random((10, 5, 28, 28))
    figures = [picture_figure(stitch(noise)), subplots_figure(rows)]
    probes_ = decode_probe(grid=noise.reshape(-1, 28, 28), prior=RNG.random((100, 28, 28)))
    decoded = np.concatenate([noise.reshape(-1, 28, 28), rows.reshape(-1, 28, 28)])
    for check in ("digit_rows_quality", "decoded_grid_coverage", "prior_samples_quality"):
        result = run(check, figures, probes_, decoded=decoded)
        assert result.fraction == 0.0, (check, result.message)
        assert "not judged" not in result.message          # judged, and found to show no digit


# --- (c) prior samples ---------------------------------------------------------------------------------------------

def test_prior_samples_that_are_digits_earn_full_credit(mnist):
    samples = np.concatenate([mnist[d][:10] for d in range(10)])
    result = run("prior_samples_quality", [], decode_probe(prior=samples))
    assert result.fraction == 1.0 and result.details["mean_confidence"] > 0.9
    assert "100 draws of z ~ N(0, I) made by the grader" in result.message


def test_blob_like_prior_samples_lose_credit_and_show_the_least_convincing(mnist):
    """A collapsed VAE decodes every z to about the mean image: the classifier is unsure of it."""
    mean_image = np.concatenate([mnist[d][:100] for d in range(10)]).mean(0)
    blobs = np.clip(mean_image + RNG.normal(0, 0.05, (100, 28, 28)), 0, 1)
    result = run("prior_samples_quality", [], decode_probe(prior=blobs))
    assert result.fraction == 0.0 and result.details["mean_confidence"] < 0.35
    assert "summed over the 784 pixels" in result.message
    assert len(result.details["classifier_tiles"]) == ic.MAX_THUMBNAILS
    some = run("prior_samples_quality", [], decode_probe(prior=np.concatenate([blobs[:70], mnist[3][:30]])))
    assert 0.0 < some.fraction < 1.0 and "70 of 100 look like no digit" in some.message


def test_prior_samples_come_from_the_figure_when_the_decoder_is_unavailable(mnist):
    strip = np.stack([mnist[d][3] for d in range(10)])[None]
    figures = [subplots_figure(strip, "decoded samples from the prior z ~ N(0, I)"),
               subplots_figure(RNG.random((1, 10, 28, 28)), "something else"),
               subplots_figure(RNG.random((2, 10, 28, 28)), "Gaussian VAE: samples from the prior and means")]
    result = run("prior_samples_quality", figures, decode_probe(error="AttributeError: no decoder"), decoded=strip)
    assert result.fraction == 1.0 and result.details["samples"] == 10
    assert "figure(s) of prior samples" in result.message
    pasted = run("prior_samples_quality", figures, decode_probe(error="AttributeError: no decoder"),
                 decoded=RNG.random((10, 28, 28)))
    assert pasted.fraction == 0.0 and "No images decoded from the prior" in pasted.message


# --- parameters, profiles, failures --------------------------------------------------------------------------------

def test_thresholds_follow_the_profile():
    tiles = RNG.random((10, 5, 28, 28))
    noise = [subplots_figure(tiles)]
    by_profile = {"tiny": {"full_at": 0.0, "zero_at": 0.0}}
    tiny = run("digit_rows_quality", noise, decoded=tiles, profile=dict(TINY), profile_name="tiny",
               by_profile=by_profile)
    grading = run("digit_rows_quality", noise, decoded=tiles, profile=dict(GRADING), profile_name="grading",
                  by_profile=by_profile)
    assert tiny.fraction == 1.0 and tiny.details["profile"] == "tiny" and tiny.details["by_profile_applied"]
    assert grading.fraction == 0.0 and grading.details["profile"] == "grading"
    bad = run("digit_rows_quality", noise, decoded=tiles, profile=dict(TINY), profile_name="tiny",
              by_profile={"tiny": {"full_a": 0.1}})
    assert bad.fraction == 0.0 and "grader configuration problem" in bad.message and "full_a" in bad.message


def test_a_changed_knob_keeps_the_thresholds_of_the_named_profile():
    # The profile travels by name: an instructor who changes one knob of TINY (or GRADING) keeps its thresholds; the
    # grader used to guess the name from the knob values, and a changed knob silently lost them.
    tiles = RNG.random((10, 5, 28, 28))
    noise = [subplots_figure(tiles)]
    by_profile = {"tiny": {"full_at": 0.0, "zero_at": 0.0}}
    changed = {**TINY, "VAE_EPOCHS": TINY["VAE_EPOCHS"] + 1, "N_TRAIN": 3000}
    tiny = run("digit_rows_quality", noise, decoded=tiles, profile=changed, profile_name="tiny",
               by_profile=by_profile)
    assert tiny.fraction == 1.0 and tiny.details["profile"] == "tiny" and tiny.details["by_profile_applied"]
    same_knobs = run("digit_rows_quality", noise, decoded=tiles, profile=dict(TINY), profile_name="grading",
                     by_profile=by_profile)
    assert same_knobs.fraction == 0.0 and same_knobs.details["profile"] == "grading"     # the name, not the knobs
    rubric = load_rubric()
    scored = {s.item_id: s for s in score(rubric, with_model(noise, tiles), INPUTS, profile=changed,
                                          profile_name="tiny")}
    assert scored["digit_rows_quality"].fraction == 1.0


def test_rubric_keeps_the_figure_items_and_adds_the_quality_items():
    rubric = load_rubric()
    points = {item.item_id: item.points for item in rubric.items}
    assert [points[i] for i in ("training_curves", "latent_scatter", "decoded_grid", "digit_rows")] == [25] * 4
    checks = {item.item_id: item.check for item in rubric.items}
    for item_id in ("digit_rows_quality", "decoded_grid_coverage", "prior_samples_quality"):
        assert checks[item_id] == item_id and points[item_id] > 0


def test_unavailable_classifier_is_a_grader_problem(monkeypatch, mnist):
    def broken(*_args, **_kwargs):
        raise classifier.ClassifierError("no trained classifier")

    monkeypatch.setattr(classifier, "shared", broken)
    tiles = digits_grid(mnist, range(10), 5)
    result = run("digit_rows_quality", [subplots_figure(tiles)], decoded=tiles)
    assert result.fraction == 0.0 and "grader setup problem" in result.message


def test_feedback_shows_the_failed_tiles(mnist):
    grid = coverage_grid(mnist, [1, 7])
    result = run("decoded_grid_coverage", [picture_figure(stitch(grid))], decoded=grid)
    rubric = load_rubric()
    item = next(i for i in rubric.items if i.item_id == "decoded_grid_coverage")
    scored = ItemScore(item.item_id, item.title, 1.0, item.points, "visible", result.message, result.fraction,
                       item.check, result.details)
    page = report.render_feedback_html("s1", "ok", None, [scored])
    assert "What the grader&#39;s digit classifier saw" in page or "What the grader's digit classifier saw" in page
    assert page.count('class="tile"') == len(result.details["classifier_tiles"])
    assert "data:image/png;base64," in page and "saw 7" in page


def test_scoring_through_the_rubric_uses_the_tiny_overrides():
    rubric = load_rubric()
    tiles = RNG.random((10, 5, 28, 28))
    noise = with_model([subplots_figure(tiles)], tiles)
    tiny = {s.item_id: s for s in score(rubric, noise, INPUTS, profile=dict(TINY), profile_name="tiny")}
    grading = {s.item_id: s for s in score(rubric, noise, INPUTS, profile=dict(GRADING), profile_name="grading")}
    assert tiny["digit_rows_quality"].fraction == 1.0      # TINY: the grid only has to be there and readable
    assert grading["digit_rows_quality"].fraction == 0.0


# --- plain pixels --------------------------------------------------------------------------------------------------

def test_decode_uint8_accepts_exactly_the_expected_bytes():
    array = np.arange(2 * 28 * 28, dtype=np.uint64).astype(np.uint8).reshape(2, 28, 28)
    text = kernel_side.encode_uint8(array)
    np.testing.assert_array_equal(figure_reader.decode_uint8(text, (2, 28, 28)), array)
    assert figure_reader.decode_uint8(text, (3, 28, 28)) is None                       # too short
    assert figure_reader.decode_uint8(text, (1, 28, 28)) is None                       # too long
    assert figure_reader.decode_uint8(text[:-4] + "!!!!", (2, 28, 28)) is None         # not base64
    assert figure_reader.decode_uint8(base64.b64encode(b"not zlib").decode(), (2, 28, 28)) is None
    bomb = base64.b64encode(zlib.compress(bytes(50_000_000))).decode()
    assert figure_reader.decode_uint8(bomb, (2, 28, 28)) is None                       # inflates only one byte too many
    assert figure_reader.decode_uint8(text, (10_000, 10_000)) is None                  # refused before decoding
    assert figure_reader.decode_uint8(12, (2, 28, 28)) is None


def test_tile_offsets_cover_the_usual_paddings():
    assert figure_reader.tile_offsets(15 * 28, 15, 4) == [28 * i for i in range(15)]
    assert figure_reader.tile_offsets(15 * 28 + 16 * 2, 15, 4) == [2 + 30 * i for i in range(15)]     # around and between
    assert figure_reader.tile_offsets(10 * 28 + 9 * 3, 10, 4) == [31 * i for i in range(10)]           # between only
    assert figure_reader.tile_offsets(10 * 28 + 7, 10, 4) is None


def test_png_thumbnail_is_a_valid_png():
    grey = RNG.random((28, 28))
    np.testing.assert_allclose(png_pixels("data:image/png;base64," + base64.b64encode(ic.png_bytes(grey)).decode())
                               / 255.0, grey, atol=0.5 / 255 + 1e-9)


# --- the kernel side: pixels of figures and the decoder probe ------------------------------------------------------

def test_kernel_side_records_grey_levels_of_large_enough_images_only():
    figure = Figure()
    small, large, rgb = figure.subplots(1, 3)
    small.imshow(np.ones((10, 10)))
    large.imshow(np.linspace(0, 2, 28 * 56).reshape(28, 56), cmap="gray", vmin=0, vmax=2)
    rgb.imshow(np.full((28, 28, 3), 51, dtype=np.uint8))
    images = [ax["images"][0] for ax in kernel_side.describe_figure(figure)["axes"]]
    assert "pixels" not in images[0]
    grey = figure_reader.image_grey(images[1])
    np.testing.assert_allclose(grey, np.linspace(0, 1, 28 * 56).reshape(28, 56), atol=1 / 255)
    np.testing.assert_allclose(figure_reader.image_grey(images[2]), 0.2, atol=1 / 255)


def test_kernel_side_caps_the_pixels_of_a_figure():
    figure = Figure()
    for index in range(1, 5):
        figure.add_subplot(2, 2, index).imshow(RNG.random((400, 400)))     # 160k pixels each, incompressible
    images = [ax["images"][0] for ax in kernel_side.describe_figure(figure)["axes"]]
    kept = [image for image in images if "pixels" in image]
    assert 0 < len(kept) < 4
    assert sum(len(image["pixels"]["zlib_base64"]) for image in kept) <= kernel_side.MAX_PIXEL_CHARS_PER_CELL


def test_emitted_figures_keep_their_pixels_and_reset_the_cells_budget(monkeypatch, mnist):
    """Figures count only toward the whole-notebook output cap (test_execute's large-figures test checks the
    runner side), so a cell's PNGs never cost the per-digit grid its pixels."""
    shown = []
    monkeypatch.setitem(kernel_side._state, "display", lambda data, raw: shown.append(data))
    monkeypatch.setitem(kernel_side._state, "token", "t")
    monkeypatch.setitem(kernel_side._state, "pending", [])
    figure = Figure()
    figure.add_subplot().imshow(stitch(digits_grid(mnist, range(10), 5)), cmap="gray")
    kernel_side.record_figure(figure)
    kernel_side._record_open_figures_and_emit()
    image = shown[-1][kernel_side.FIGURES_MIME]["figures"][0]["axes"][0]["images"][0]
    assert "pixels" in image and image["shape"] == [280, 140]
    assert kernel_side._pixel_chars["cell"] == 0


def test_decoder_probe_returns_plain_pixels_of_the_students_decoder():
    import torch
    from autograder.probing import calls

    class Decoder(torch.nn.Module):
        def forward(self, z):
            return torch.sigmoid(z.sum(1, keepdim=True).expand(len(z), 784))

    class VAE(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.decoder = Decoder()

    class FlatVAE(VAE):
        def __init__(self):
            super().__init__()
            self.decoder = torch.nn.Linear(2, 10)

    def server(vae):      # the probe server's own decode call (calls.py) on a rebuilt model
        return lambda call, **args: calls.MODEL_CALLS[call]({}, {"vae": vae}, args, None)

    points = draw_inputs(7)["vae_decode"]
    loaded = context(models={"vae": {"ok": True, "built_as": "VAE()"}})
    value = model_probes.run_vae_decode(server(VAE()), points, loaded)
    assert value["grid"].dtype == np.uint8 and value["grid"].shape == (225, 784)
    images, why = ic.probe_images(artefacts(vae_decode=value), "prior")
    expected = 1 / (1 + np.exp(-np.asarray(points["prior"]).sum(1)))
    assert why == "" and images.shape == (100, 28, 28)
    np.testing.assert_allclose(images[:, 0, 0], expected, atol=1 / 255)

    flat = model_probes.run_vae_decode(server(FlatVAE()), points, loaded)
    images, why = ic.probe_images(artefacts(vae_decode=flat), "grid")
    assert images is None and "unexpected form" in why
    with pytest.raises(ProbeFailed, match="vae is not a trained torch model"):
        model_probes.run_vae_decode(server(VAE()), points, context())


def test_grader_draws_the_decoder_probe_points():
    first, again, other = (draw_inputs(s)["vae_decode"] for s in (1, 1, 2))
    np.testing.assert_array_equal(first["grid"], again["grid"])
    assert not np.array_equal(first["grid"], other["grid"]) and not np.array_equal(first["prior"], other["prior"])
    grid = np.asarray(first["grid"])
    assert grid.shape == (225, 2) and np.asarray(first["prior"]).shape == (100, 2)
    assert math.isclose(grid[:, 0].max() - grid[:, 0].min(), 2 * 1.6449, abs_tol=0.01)


def test_a_per_digit_grid_with_an_empty_cell_is_judged_and_the_cell_counts_as_no_digit(mnist):
    # The one figure reader keeps subplot grids with empty cells (the old image-check reader dropped them, so the
    # item earned nothing): the 49 digits drawn are judged, the missing sample counts as not read.
    tiles = digits_grid(mnist, range(10), 5)
    figure = subplots_figure(tiles, "5 samples per digit")
    figure["axes"].pop(7)                   # row 1, sample 2 was never drawn
    result = run("digit_rows_quality", [figure], decoded=tiles)
    assert result.details["tiles"] == 50 and result.details["in_order"] <= 49
    assert result.fraction == 1.0, result.message
    assert "an empty cell" in result.message
