"""Image-quality checks on hand-made figures: real MNIST tiles arranged right and wrong, noise, stitched images and
subplot grids, described by kernel_side exactly as in a student's kernel, judged by the grader's classifier."""
import base64
import io
import math
import zlib
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure

from autograder.checks import figure_reader, image_quality as ic
from autograder.execution.kernel import recorder as kernel_side
from autograder.lab import classifier, data
from autograder.reports import feedback as report
from autograder.checks import CHECK_DEFAULTS, CHECKS
from autograder.lab.profiles import GRADING, TINY
from autograder.results import ItemScore
from autograder.scoring import load_rubric, score

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data_cache"
RNG = np.random.default_rng(0)


@pytest.fixture(scope="session", autouse=True)
def trained():
    """The cached classifier (trained here only if `make classifier` has not run)."""
    return classifier.ensure(DATA)


@pytest.fixture(scope="module")
def mnist():
    split = data.load_mnist(DATA)
    images, labels = split["test_images"].astype(np.float64) / 255.0, split["test_labels"]
    return {digit: images[labels == digit] for digit in range(10)}


def digits_grid(mnist, row_digits, samples, offset=0) -> np.ndarray:
    """(rows, samples, 28, 28): row r holds `samples` different test images of digit row_digits[r]."""
    return np.stack([mnist[d][offset + 7 * r: offset + 7 * r + samples] for r, d in enumerate(row_digits)])


def stitch(tiles: np.ndarray, pad: int = 0, fill: float = 0.0) -> np.ndarray:
    """Tiles into one picture with `pad` pixels around and between them (torchvision's make_grid layout)."""
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
    return kernel_side.describe_figure(figure)


def subplots_figure(tiles, suptitle="") -> dict:
    rows, cols = tiles.shape[:2]
    figure = Figure(figsize=(cols, rows))
    axes = figure.subplots(rows, cols, squeeze=False)
    for r in range(rows):
        for c in range(cols):
            axes[r, c].imshow(tiles[r, c], cmap="gray", vmin=0, vmax=1)
    figure.suptitle(suptitle)
    return kernel_side.describe_figure(figure)


def decode_probe(grid=None, prior=None, error=None) -> dict:
    if error:
        return {"vae_decode": {"ok": False, "error": error}}
    value = {}
    for key, images in (("grid", grid), ("prior", prior)):
        if images is not None:
            pixels = np.rint(np.clip(images, 0, 1) * 255).astype(np.uint8).reshape(-1, 28, 28)
            value[key] = {"count": len(pixels), "zlib_base64": kernel_side.encode_uint8(pixels)}
    return {"vae_decode": {"ok": True, "value": value}}


def run(check, figures=(), probes=None, **params):
    return CHECKS[check]({"figures": list(figures), "probes": probes or {}}, {}, params)


def png_pixels(src: str) -> np.ndarray:
    from PIL import Image

    assert src.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))))


# --- (a) per-digit grid --------------------------------------------------------------------------------------------

def test_per_digit_grid_of_real_digits_earns_full_credit_as_subplots_and_stitched(mnist):
    tiles = digits_grid(mnist, range(10), 5)
    for figure in (subplots_figure(tiles, "5 samples per digit"), picture_figure(stitch(tiles, pad=2))):
        result = run("digit_rows_quality", [figure])
        assert result.fraction == 1.0, result.message
        assert result.details["in_order"] >= 48
        assert "classifier_tiles" not in result.details


def test_transposed_per_digit_grid_counts_columns_as_digits(mnist):
    tiles = digits_grid(mnist, range(10), 5).transpose(1, 0, 2, 3)     # 5 rows x 10 digit columns
    result = run("digit_rows_quality", [picture_figure(stitch(tiles))])
    assert result.fraction == 1.0, result.message


def test_rows_in_another_order_earn_partial_credit_and_are_told_the_order(mnist):
    shifted = [(d + 3) % 10 for d in range(10)]
    result = run("digit_rows_quality", [subplots_figure(digits_grid(mnist, shifted, 5))])
    assert result.fraction == pytest.approx(0.75, abs=0.05)
    assert "in the order 3, 4, 5" in result.message and "digit 0 in the first row" in result.message


def test_rows_of_mixed_digits_fail_and_show_what_the_classifier_saw(mnist):
    mixed = np.stack([np.stack([mnist[(r + s) % 10][r] for s in range(5)]) for r in range(10)])   # 1 in 5 right
    result = run("digit_rows_quality", [subplots_figure(mixed)])
    assert result.fraction == 0.0
    assert "Rows that failed" in result.message and "mean of mu" in result.message
    thumbs = result.details["classifier_tiles"]
    assert 0 < len(thumbs) <= ic.MAX_THUMBNAILS
    assert all("saw" in t["caption"] for t in thumbs)
    first = thumbs[0]["caption"]              # "row 0 (digit 0): saw 1 (99%)" : the tile shown is that tile
    row, sample = 0, 1
    assert first.startswith(f"row {row} (digit {row}): saw {(row + sample) % 10}")
    np.testing.assert_allclose(png_pixels(thumbs[0]["src"]) / 255.0, mixed[row, sample], atol=1 / 255 + 1e-9)


def test_inverted_and_bottom_origin_pictures_are_judged_as_displayed(mnist):
    tiles = digits_grid(mnist, range(10), 5)
    inverted = run("digit_rows_quality", [picture_figure(1.0 - stitch(tiles, pad=1))])
    assert inverted.fraction == 1.0 and inverted.details["inverted"] is True
    flipped = run("digit_rows_quality", [picture_figure(stitch(tiles)[::-1], origin="lower")])
    assert flipped.fraction == 1.0, flipped.message
    upside_down = run("digit_rows_quality", [picture_figure(stitch(tiles), origin="lower")])
    assert upside_down.fraction < 1.0     # shown upside down (rows 9..0, digits flipped): judged as shown


def test_grids_titled_as_autoencoder_figures_are_not_judged(mnist):
    figure = subplots_figure(digits_grid(mnist, range(10), 5), "Autoencoder: decoded digits")
    result = run("digit_rows_quality", [figure])
    assert result.fraction == 0.0 and "No per-digit grid" in result.message


# --- (b) coverage of the decoded grid ------------------------------------------------------------------------------

def coverage_grid(mnist, digits, side=15) -> np.ndarray:
    cells = [mnist[digits[i % len(digits)]][i] for i in range(side * side)]
    return np.stack(cells).reshape(side, side, 28, 28)


def test_grid_with_every_digit_earns_full_coverage(mnist):
    result = run("decoded_grid_coverage", [picture_figure(stitch(coverage_grid(mnist, range(10))))])
    assert result.fraction == 1.0 and result.details["digits"] == list(range(10)), result.message


def test_grid_with_two_digits_earns_partial_coverage_with_thumbnails(mnist):
    result = run("decoded_grid_coverage", [picture_figure(stitch(coverage_grid(mnist, [1, 7])))])
    assert result.details["digits"] == [1, 7]
    full = CHECK_DEFAULTS["decoded_grid_coverage"]["full_classes"]
    assert result.fraction == pytest.approx(1 / (full - 1), abs=1e-5)      # linear from 1 digit (0) to `full`
    assert "not seen: 0, 2, 3, 4, 5, 6, 8, 9" in result.message
    captions = [t["caption"] for t in result.details["classifier_tiles"]]
    assert any("saw 1" in c for c in captions) and any("saw 7" in c for c in captions)


def test_another_square_grid_is_judged_when_the_15x15_is_missing(mnist):
    result = run("decoded_grid_coverage", [picture_figure(stitch(coverage_grid(mnist, range(10), side=10)))])
    assert result.fraction == 1.0 and "10x10" in result.details["source"]


def test_coverage_falls_back_to_the_decoder_probe(mnist):
    probes = decode_probe(grid=coverage_grid(mnist, range(10)).reshape(-1, 28, 28))
    result = run("decoded_grid_coverage", [], probes)
    assert result.fraction == 1.0 and "decoded its own grid" in result.message
    missing = run("decoded_grid_coverage", [], decode_probe(error="NameError: name 'vae' is not defined"))
    assert missing.fraction == 0.0 and "name 'vae' is not defined" in missing.message


def test_noise_earns_nothing_anywhere():
    noise = RNG.random((15, 15, 28, 28))
    figures = [picture_figure(stitch(noise)), subplots_figure(RNG.random((10, 5, 28, 28)))]
    probes = decode_probe(grid=noise.reshape(-1, 28, 28), prior=RNG.random((100, 28, 28)))
    for check in ("digit_rows_quality", "decoded_grid_coverage", "prior_samples_quality"):
        result = run(check, figures, probes)
        assert result.fraction == 0.0, (check, result.message)


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
    result = run("prior_samples_quality", figures, decode_probe(error="AttributeError: no decoder"))
    assert result.fraction == 1.0 and result.details["samples"] == 10
    assert "figure(s) of prior samples" in result.message


# --- parameters, profiles, failures --------------------------------------------------------------------------------

def test_thresholds_follow_the_profile():
    noise = [subplots_figure(RNG.random((10, 5, 28, 28)))]
    by_profile = {"tiny": {"full_at": 0.0, "zero_at": 0.0}}
    tiny = run("digit_rows_quality", noise, profile=dict(TINY), profile_name="tiny", by_profile=by_profile)
    grading = run("digit_rows_quality", noise, profile=dict(GRADING), profile_name="grading", by_profile=by_profile)
    assert tiny.fraction == 1.0 and tiny.details["profile"] == "tiny" and tiny.details["by_profile_applied"]
    assert grading.fraction == 0.0 and grading.details["profile"] == "grading"
    bad = run("digit_rows_quality", noise, profile=dict(TINY), profile_name="tiny", by_profile={"tiny": {"full_a": 0.1}})
    assert bad.fraction == 0.0 and "grader configuration problem" in bad.message and "full_a" in bad.message


def test_a_changed_knob_keeps_the_thresholds_of_the_named_profile():
    # The profile travels by name: an instructor who changes one knob of TINY (or GRADING) keeps its thresholds; the
    # grader used to guess the name from the knob values, and a changed knob silently lost them.
    noise = [subplots_figure(RNG.random((10, 5, 28, 28)))]
    by_profile = {"tiny": {"full_at": 0.0, "zero_at": 0.0}}
    changed = {**TINY, "VAE_EPOCHS": TINY["VAE_EPOCHS"] + 1, "N_TRAIN": 3000}
    tiny = run("digit_rows_quality", noise, profile=changed, profile_name="tiny", by_profile=by_profile)
    assert tiny.fraction == 1.0 and tiny.details["profile"] == "tiny" and tiny.details["by_profile_applied"]
    same_knobs = run("digit_rows_quality", noise, profile=dict(TINY), profile_name="grading", by_profile=by_profile)
    assert same_knobs.fraction == 0.0 and same_knobs.details["profile"] == "grading"     # the name, not the knobs
    rubric = load_rubric()
    scored = {s.item_id: s for s in score(rubric, {"figures": noise, "probes": {}}, {}, profile=changed,
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
    result = run("digit_rows_quality", [subplots_figure(digits_grid(mnist, range(10), 5))])
    assert result.fraction == 0.0 and "grader setup problem" in result.message


def test_feedback_shows_the_failed_tiles(mnist):
    result = run("decoded_grid_coverage", [picture_figure(stitch(coverage_grid(mnist, [1, 7])))])
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
    noise = {"figures": [subplots_figure(RNG.random((10, 5, 28, 28)))], "probes": {}}
    tiny = {s.item_id: s for s in score(rubric, noise, {}, profile=dict(TINY), profile_name="tiny")}
    grading = {s.item_id: s for s in score(rubric, noise, {}, profile=dict(GRADING), profile_name="grading")}
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

    class Decoder(torch.nn.Module):
        def forward(self, z):
            return torch.sigmoid(z.sum(1, keepdim=True).expand(len(z), 784))

    class VAE(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.decoder = Decoder()

    from autograder.execution.probe_inputs import draw_probe_inputs, inputs_for_probe

    points = inputs_for_probe(draw_probe_inputs(7), "vae_decode")
    answer = kernel_side.probe_answer("vae_decode", points, {"vae": VAE()})
    assert answer["ok"], answer
    images = figure_reader.decode_uint8(answer["value"]["prior"]["zlib_base64"], (100, 28, 28))
    expected = 1 / (1 + np.exp(-np.asarray(points["prior"]).sum(1)))
    np.testing.assert_allclose(images[:, 0, 0] / 255.0, expected, atol=1 / 255)
    assert answer["value"]["grid"]["count"] == 225

    class FlatVAE(VAE):
        def __init__(self):
            super().__init__()
            self.decoder = torch.nn.Linear(2, 10)

    wrong = kernel_side.probe_answer("vae_decode", points, {"vae": FlatVAE()})
    assert not wrong["ok"] and "expected (225, 784)" in wrong["error"]
    assert not kernel_side.probe_answer("vae_decode", points, {})["ok"]


def test_grader_draws_the_decoder_probe_points():
    from autograder.execution.probe_inputs import draw_probe_inputs

    first, again, other = (draw_probe_inputs(s)["vae_decode"] for s in (1, 1, 2))
    assert first == again and first != other
    grid = np.asarray(first["grid"])
    assert grid.shape == (225, 2) and np.asarray(first["prior"]).shape == (100, 2)
    assert math.isclose(grid[:, 0].max() - grid[:, 0].min(), 2 * 1.6449, abs_tol=0.01)


def test_a_per_digit_grid_with_an_empty_cell_is_judged_and_the_cell_counts_as_no_digit(mnist):
    # The one figure reader keeps subplot grids with empty cells (the old image-check reader dropped them, so the
    # item earned nothing): the 49 digits drawn are judged, the missing sample counts as not read.
    figure = subplots_figure(digits_grid(mnist, range(10), 5), "5 samples per digit")
    figure["axes"].pop(7)                   # row 1, sample 2 was never drawn
    result = run("digit_rows_quality", [figure])
    assert result.details["tiles"] == 50 and result.details["in_order"] <= 49
    assert result.fraction == 1.0, result.message
    assert "an empty cell" in result.message
