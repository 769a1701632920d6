"""Image-quality checks: what the submission's generated digits look like to the grader's own MNIST classifier
(autograder/lab/classifier.py), run in the GRADER's process on plain uint8 pixels, never in the student's kernel.

Where the images come from:
- figures: the kernel's recorder keeps the grey levels of every drawn image (`pixels` of an image description: zlib +
  base64 uint8, rows as displayed); the grids of digits and their tiles come from the one figure reader
  (checks/figure_reader.py): a stitched image cut into 28x28 tiles, or one 28x28 image per subplot (an empty cell of
  an incomplete subplot grid counts as a sample that shows no digit). Only grids whose tiles are outputs of the
  student's vae.decoder count (checks/ties.py): pasted MNIST digits are not generated images;
- the `vae_decode` probe: the student's `vae.decoder` on z points drawn by the grader (a 15x15 grid over the prior's
  5%..95% quantiles and 100 draws from N(0, I)), as uint8 pixels.
Every item needs a genuine trained VAE first (checks/model.py vae_verdict): a decoder that copies dataset images or
does not depend on its weights draws "digits" that say nothing about the work.
Tiles are made "bright digit on dark background" (MNIST's convention) before classification: a grid whose tile
borders are mostly bright is inverted (e.g. digits stored as 1 - x).

Checks (registered in checks.CHECKS by the @check decorator):
- `digit_rows_quality`: in the per-digit grid, the fraction of tiles classified as their row's digit;
- `decoded_grid_coverage`: how many different digits the 15x15 decoded grid shows (confident predictions only);
- `prior_samples_quality`: mean max-softmax confidence on images decoded from z ~ N(0, I).
Each earns partial credit on a linear ramp between rubric parameters; `by_profile` overrides parameters for a named
work profile (autograder/lab/profiles.py), because the TINY profile's VAE trains for seconds and draws blurrier digits.
The details hold small PNG thumbnails (data: URIs) of the tiles that failed and what the classifier saw, which the
feedback page shows.
"""
from __future__ import annotations

import base64
import struct
import zlib
from dataclasses import dataclass

import numpy as np

from autograder.checks.figure_reader import DIGIT_SIDE, figure_text
from autograder.checks.model import vae_verdict
from autograder.checks.registry import CheckResult, check
from autograder.checks.ties import decoder_grids, untied_note
from autograder.lab import classifier
from autograder.lab.data import MnistCacheError
from autograder.reports.writing import PNG_DATA_URI

DECODE_PROBE = "vae_decode"
MAX_THUMBNAILS = 10
PRIOR_WORDS = ("prior",)
NOT_PRIOR_WORDS = ("gaussian",)    # the Gaussian VAE's figure shows noisy samples x ~ p(x|z), not decoder means
CLASSIFIER_NAME = "the grader's digit classifier"


class ClassifierUnavailable(Exception):
    """The grader's classifier could not be loaded or trained (a grader setup problem, not the student's)."""


# --- the digits to judge ----------------------------------------------------------------------------------------

@dataclass
class TileGrid:
    """Digits of one figure or probe: tiles (rows, cols, 28, 28) in [0, 1], bright digit on dark; `filled` marks the
    cells that hold an image (all of them, except in an incomplete subplot grid)."""
    tiles: np.ndarray
    kind: str            # "stitched", "subplots" or "probe"
    figure: int | None   # index in artefacts["figures"]
    title: str
    inverted: bool = False
    filled: np.ndarray | None = None

    def __post_init__(self):
        if self.filled is None:
            self.filled = np.ones(self.tiles.shape[:2], dtype=bool)

    @property
    def rows(self) -> int:
        return int(self.tiles.shape[0])

    @property
    def cols(self) -> int:
        return int(self.tiles.shape[1])

    @property
    def source(self) -> str:
        if self.kind == "probe":
            return "your vae.decoder on z points drawn by the grader"
        name = f"'{self.title}'" if self.title else f"figure {self.figure + 1}"
        return f"{name} ({self.rows}x{self.cols} {'subplots' if self.kind == 'subplots' else 'tiles'})"


def as_mnist_polarity(tiles: np.ndarray) -> tuple[np.ndarray, bool]:
    """Tiles with a dark background: inverted when the 2-px border of the tiles is mostly bright."""
    border = np.concatenate([tiles[..., :2, :].ravel(), tiles[..., -2:, :].ravel(),
                             tiles[..., 2:-2, :2].ravel(), tiles[..., 2:-2, -2:].ravel()])
    if border.size and float(np.median(border)) > 0.5:
        return 1.0 - tiles, True
    return tiles, False


def _grid(tiles: np.ndarray, kind: str, figure: int | None, title: str, filled: np.ndarray | None = None) -> TileGrid:
    tiles = np.asarray(tiles)
    tiles = tiles.astype(np.float32) / np.float32(255.0) if tiles.dtype == np.uint8 else tiles.astype(np.float64)
    tiles, inverted = as_mnist_polarity(tiles)
    return TileGrid(tiles, kind, figure, title, inverted, filled)


def tied_grids(artefacts: dict, max_pad: int = 4) -> tuple[list[TileGrid], str]:
    """The grids of digits of the figures whose tiles are outputs of the student's vae.decoder (checks/ties.py),
    and a note on the grids that are not."""
    grids, why = decoder_grids(artefacts, max_pad)
    tiles = [_grid(g.grid.tiles, g.grid.kind, g.grid.figure, g.grid.title, g.grid.filled) for g in grids if g.tied]
    return tiles, untied_note(grids) or (f" ({why})" if why else "")


def probe_images(artefacts: dict, key: str) -> tuple[np.ndarray | None, str]:
    """(images (n, 28, 28) in [0, 1], "") from the vae_decode probe's `key`, or (None, why not)."""
    answer = (artefacts.get("probes") or {}).get(DECODE_PROBE)
    if not isinstance(answer, dict):
        return None, "the grader's decoder probe did not run"
    if not answer.get("ok"):
        return None, f"calling your vae.decoder raised {str(answer.get('error') or 'an error')[:300]}"
    images = (answer.get("value") or {}).get(key) if isinstance(answer.get("value"), dict) else None
    if not isinstance(images, np.ndarray) or images.ndim != 2 or images.shape[1] != DIGIT_SIDE * DIGIT_SIDE:
        return None, "the decoder probe's answer has an unexpected form"
    return images.reshape(-1, DIGIT_SIDE, DIGIT_SIDE).astype(np.float64) / 255.0, ""


def not_genuine(artefacts: dict) -> CheckResult | None:
    """The item's result when `vae` is not a genuine trained VAE (model.vae_verdict), else None."""
    verdict = vae_verdict(artefacts)
    if verdict.ok:
        return None
    return CheckResult("", 0.0, verdict.message + " Its images are not judged.", {"gate": verdict.details})


# --- the classifier ----------------------------------------------------------------------------------------------

def classify(images: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(predicted digit, confidence = max softmax, probabilities) for images (n, 28, 28) in [0, 1]."""
    try:
        model = classifier.shared()
    except (classifier.ClassifierError, MnistCacheError, OSError) as error:
        raise ClassifierUnavailable(str(error)) from None
    probabilities = model.probabilities(np.asarray(images).reshape(-1, DIGIT_SIDE, DIGIT_SIDE))
    return probabilities.argmax(1).astype(int), probabilities.max(1), probabilities


def _unavailable(error: ClassifierUnavailable) -> CheckResult:
    return CheckResult("", 0.0, f"This item could not be judged: {CLASSIFIER_NAME} is not available on the grading "
                                f"machine. This is a grader setup problem, not yours: tell the course staff.",
                       {"grader_error": str(error)[:500]})


# --- thumbnails --------------------------------------------------------------------------------------------------

def png_bytes(grey: np.ndarray) -> bytes:
    """An 8-bit greyscale PNG of grey levels in [0, 1]."""
    pixels = np.rint(np.clip(np.asarray(grey, dtype=np.float64), 0, 1) * 255).astype(np.uint8)
    height, width = pixels.shape

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    rows = b"".join(b"\x00" + row.tobytes() for row in pixels)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b""))


def thumbnail(grey: np.ndarray, caption: str) -> dict:
    return {"src": PNG_DATA_URI + base64.b64encode(png_bytes(grey)).decode("ascii"), "caption": caption}


def _saw(label: int, confidence: float) -> str:
    return f"saw {label} ({confidence:.0%})"


def _short_saw(label: int, confidence: float, sure: float) -> str:
    return str(label) if confidence >= sure else f"{label}?"


# --- parameters --------------------------------------------------------------------------------------------------

def resolve_params(params: dict) -> tuple[dict, str | None, str | None]:
    """(params with the `by_profile` overrides of the grader's profile applied, profile name, configuration
    problem or None). The profile's name comes with the settings (params['profile_name'], handed over by
    scoring.score); None (no named profile) applies no overrides."""
    name = params.get("profile_name")
    name = str(name) if name else None
    by_profile = params.get("by_profile") or {}
    if not isinstance(by_profile, dict):
        return params, name, "rubric.yaml: by_profile must map a profile name to parameter overrides"
    overrides = (by_profile.get(name) or {}) if name else {}
    if not isinstance(overrides, dict):
        return params, name, f"rubric.yaml: by_profile.{name} must be a mapping of parameter -> value"
    unknown = sorted((set(overrides) - set(params)) | ({"by_profile", "profile", "profile_name"} & set(overrides)))
    if unknown:
        return params, name, f"rubric.yaml: by_profile.{name} names unknown parameter(s) {unknown}"
    return {**params, **overrides}, name, None


def _config_problem(problem: str) -> CheckResult:
    return CheckResult("", 0.0, f"This item could not be judged because of a grader configuration problem ({problem}); "
                                f"tell the course staff.", {"grader_error": problem})


def ramp(value: float, zero_at: float, full_at: float) -> float:
    """0 at or below zero_at, 1 at or above full_at, linear between."""
    if full_at <= zero_at:
        return 1.0 if value >= full_at else 0.0
    return float(min(1.0, max(0.0, (value - zero_at) / (full_at - zero_at))))


def _profile_note(name: str | None, params: dict) -> dict:
    applied = bool(name and (params.get("by_profile") or {}).get(name))
    return {"profile": name or "custom", "by_profile_applied": applied}


# --- (a) per-digit grid ------------------------------------------------------------------------------------------

def _digit_grid(grid: TileGrid, digits: int, samples: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Tiles as (digit, sample, 28, 28) and which cells hold an image (digit, sample): rows are digits, or columns
    when the grid is samples x digits."""
    if (grid.rows, grid.cols) == (digits, samples):
        return grid.tiles, grid.filled
    if (grid.rows, grid.cols) == (samples, digits):
        return grid.tiles.transpose(1, 0, 2, 3), grid.filled.T
    return None


def _best_assignment(counts: np.ndarray) -> tuple[int, list[int]]:
    """Each row its own digit, maximising the tiles that match: (matches, digit of each row)."""
    from scipy.optimize import linear_sum_assignment

    rows, digits = linear_sum_assignment(-counts)
    order = [int(d) for _, d in sorted(zip(rows, digits))]
    return int(counts[rows, digits].sum()), order


@check("digit_rows_quality", rows=10, samples=5, full_at=0.6, zero_at=0.2, min_confidence=0.4, permuted_weight=0.75,
       max_padding=4, by_profile={})
def digit_rows_quality(artefacts: dict, probe_inputs: dict, params: dict) -> CheckResult:
    """Per-digit grid (`rows` digits x `samples`, or transposed): the fraction of tiles the classifier reads as their
    row's digit (row i = digit i) with confidence >= `min_confidence`, on a ramp from `zero_at` (0) to `full_at`
    (full). Rows holding one digit each but not in the order 0..9 earn `permuted_weight` of that ramp on the best
    one-digit-per-row assignment."""
    params, name, problem = resolve_params(params)
    if problem:
        return _config_problem(problem)
    if (gate := not_genuine(artefacts)) is not None:
        return gate
    digits, samples = int(params["rows"]), int(params["samples"])
    candidates = []
    grids, untied = tied_grids(artefacts, int(params["max_padding"]))
    for grid in grids:
        found = _digit_grid(grid, digits, samples)
        if found is not None:
            candidates.append((grid, *found))
    if not candidates:
        return CheckResult("", 0.0, f"No per-digit grid ({digits} rows of {samples} decoded digits) made by your "
                                    f"vae.decoder was found, so its digits could not be judged (see the per-digit "
                                    f"grid item for what was found).{untied} Draw it with imshow: one image per "
                                    f"subplot or one stitched image.", _profile_note(name, params))
    try:
        judged = []
        for grid, tiles, filled in candidates:
            labels, confidence, _ = classify(tiles)
            confidence = np.where(filled, confidence.reshape(digits, samples), 0.0)   # an empty cell shows no digit
            judged.append((grid, tiles, filled, labels.reshape(digits, samples), confidence))
    except ClassifierUnavailable as error:
        return _unavailable(error)
    full_at, zero_at = float(params["full_at"]), float(params["zero_at"])
    sure = float(params["min_confidence"])
    best = None
    for grid, tiles, filled, labels, confidence in judged:
        expected = np.repeat(np.arange(digits)[:, None], samples, axis=1) % 10
        in_order = int(((labels == expected) & (confidence >= sure)).sum())
        counts = np.zeros((digits, 10))
        for row in range(digits):
            counts[row] = np.bincount(labels[row][confidence[row] >= sure], minlength=10)[:10]
        permuted, order = _best_assignment(counts)
        score, used_order = ramp(in_order / labels.size, zero_at, full_at), list(range(digits))
        permuted_score = float(params["permuted_weight"]) * ramp(permuted / labels.size, zero_at, full_at)
        if permuted_score > score:
            score, used_order = permuted_score, order
        if best is None or score > best[0]:
            best = (score, grid, tiles, filled, labels, confidence, in_order, permuted, used_order)
    score, grid, tiles, filled, labels, confidence, in_order, permuted, order = best
    total = labels.size
    details = {**_profile_note(name, params), "source": grid.source, "in_order": in_order, "tiles": total,
               "best_assignment_matches": permuted, "full_at": full_at, "zero_at": zero_at,
               "inverted": grid.inverted, "predicted": labels.tolist(),
               "confidence": np.round(confidence, 3).tolist()}
    failed_rows = []
    thumbs = []
    for row in range(digits):
        want = order[row] if order != list(range(digits)) else row % 10
        wrong = [s for s in range(samples) if labels[row, s] != want or confidence[row, s] < sure]
        if wrong:
            seen = ", ".join(_short_saw(int(labels[row, s]), float(confidence[row, s]), sure) if filled[row, s]
                             else "an empty cell" for s in wrong)
            failed_rows.append(f"row {row} (digit {want}): {samples - len(wrong)}/{samples}, the classifier saw {seen}")
            for s in wrong:
                if len(thumbs) < MAX_THUMBNAILS and filled[row, s]:
                    thumbs.append(thumbnail(tiles[row, s], f"row {row} (digit {want}): "
                                                           f"{_saw(int(labels[row, s]), float(confidence[row, s]))}"))
    if thumbs and score < 1.0:
        details["classifier_tiles"] = thumbs
    summary = (f"Per-digit grid in {grid.source}: {CLASSIFIER_NAME} reads {in_order} of {total} samples as their "
               f"row's digit, with at least {sure:.0%} confidence ({in_order / total:.0%}; full credit from "
               f"{full_at:.0%}, none at or below {zero_at:.0%})")
    if order != list(range(digits)):
        return CheckResult("", score, f"{summary}. Your rows do hold one digit each, but in the order "
                                      f"{', '.join(map(str, order))}: put digit 0 in the first row, 1 in the second, "
                                      f"and so on (partial credit: {permuted} of {total} match that order).", details)
    listed = "; ".join(failed_rows[:5]) + (f"; and {len(failed_rows) - 5} more row(s)" if len(failed_rows) > 5 else "")
    unsure_note = f" (d? = read as d with less than {sure:.0%} confidence)" if "?" in listed else ""
    if score >= 1.0:
        note = f" Samples not read as their digit: {listed}{unsure_note}." if failed_rows else ""
        return CheckResult("", 1.0, summary + "." + note, details)
    unsure = int((confidence < sure).sum())
    if unsure >= 0.8 * total:
        advice = (f"{unsure} of {total} samples look like no digit at all to the classifier: the decoder draws about "
                  f"the same blurry shape everywhere, as when the KL term outweighs the reconstruction term (check "
                  f"that the BCE is summed over the 784 pixels and the KL averaged over the batch, not summed) or "
                  f"when the VAE has not trained.")
    else:
        advice = ("To draw samples of digit d, start from where the encoder puts training images of d (e.g. the mean "
                  "of mu over images labelled d), keep the variations smaller than the distance to the neighbouring "
                  "digits' regions, and look at the decoded images before plotting them.")
    return CheckResult("", score, f"{summary}. Rows that failed: {listed}{unsure_note}. {advice}", details)


# --- (b) coverage of the 15x15 grid ------------------------------------------------------------------------------

@check("decoded_grid_coverage", size=15, min_size=5, full_classes=6, min_confidence=0.5, min_tiles=2,
       max_padding=4, use_probe=True, by_profile={})
def decoded_grid_coverage(artefacts: dict, probe_inputs: dict, params: dict) -> CheckResult:
    """How many different digits the decoded grid shows: classes predicted with confidence >= `min_confidence` on at
    least `min_tiles` tiles. Full credit from `full_classes`, linear down to 0 at one class. The grid is the figure's
    `size` x `size` grid, else its largest square grid (>= `min_size`), else (`use_probe`) the student's decoder on
    the grader's 15x15 grid over the prior's 5%..95% quantiles."""
    params, name, problem = resolve_params(params)
    if problem:
        return _config_problem(problem)
    if (gate := not_genuine(artefacts)) is not None:
        return gate
    size, full_classes = int(params["size"]), int(params["full_classes"])
    grids, _ = tied_grids(artefacts, int(params["max_padding"]))
    grids = [g for g in grids if g.rows == g.cols and g.rows >= int(params["min_size"])]
    exact = [g for g in grids if g.rows == size]
    grid = exact[0] if exact else (max(grids, key=lambda g: g.rows) if grids else None)
    probe_note = ""
    if grid is None and params["use_probe"]:
        images, why = probe_images(artefacts, "grid")
        if images is not None and len(images) == 225:
            grid = _grid(images.reshape(15, 15, DIGIT_SIDE, DIGIT_SIDE), "probe", None, "")
        else:
            probe_note = f" The grader also tried your decoder directly, but {why}." if why else ""
    if grid is None:
        return CheckResult("", 0.0, f"No square grid of decoded digits with readable pixels was found, so the digits "
                                    f"it covers could not be judged.{probe_note} Decode a {size}x{size} mesh of z "
                                    f"over the range where the prior puts its mass and draw it with imshow.",
                           _profile_note(name, params))
    try:
        labels, confidence, _ = classify(grid.tiles)
    except ClassifierUnavailable as error:
        return _unavailable(error)
    filled = grid.filled.ravel()        # the empty cells of an incomplete subplot grid show no digit
    confident = (confidence >= float(params["min_confidence"])) & filled
    counts = np.bincount(labels[confident], minlength=10)
    covered = [d for d in range(10) if counts[d] >= int(params["min_tiles"])]
    score = ramp(len(covered), 1, full_classes)
    details = {**_profile_note(name, params), "source": grid.source, "digits": covered, "counts": counts.tolist(),
               "full_classes": full_classes, "unsure_tiles": int((~confident & filled).sum()),
               "inverted": grid.inverted}
    shown = ", ".join(map(str, covered)) or "none"
    summary = (f"Decoded grid in {grid.source}: {CLASSIFIER_NAME} reads {len(covered)} different digits in it "
               f"({shown}; full credit from {full_classes})")
    if grid.kind == "probe":
        summary += " (your figure's grid was not found, so the grader decoded its own grid with your vae.decoder)"
    if score >= 1.0:
        return CheckResult("", 1.0, summary + ".", details)
    flat = grid.tiles.reshape(-1, DIGIT_SIDE, DIGIT_SIDE)
    examples = [int(np.flatnonzero((labels == d) & confident)[np.argmax(confidence[(labels == d) & confident])])
                for d in covered]
    least_sure = np.argsort(np.where(filled, confidence, np.inf))[:MAX_THUMBNAILS - len(examples)]
    examples += [int(i) for i in least_sure if i not in examples and filled[i]]
    details["classifier_tiles"] = [
        thumbnail(flat[i], f"row {i // grid.cols}, col {i % grid.cols}: {_saw(int(labels[i]), float(confidence[i]))}")
        for i in examples[:MAX_THUMBNAILS]]
    missing = ", ".join(str(d) for d in range(10) if d not in covered)
    return CheckResult("", score, f"{summary}; not seen: {missing}. A grid over the whole range where the prior puts "
                                  f"its mass (e.g. the 5%..95% quantiles of N(0, 1) on each axis, about -1.64..1.64) "
                                  f"shows most digits once the VAE has learnt to separate them; a narrow range, or a "
                                  f"VAE whose loss has not come down, shows only a few.", details)


# --- (c) samples from the prior ----------------------------------------------------------------------------------

@check("prior_samples_quality", full_at=0.55, zero_at=0.35, unsure_below=0.5, use_probe=True,
       prior_titles=list(PRIOR_WORDS), skip_titles=list(NOT_PRIOR_WORDS), max_padding=4, by_profile={})
def prior_samples_quality(artefacts: dict, probe_inputs: dict, params: dict) -> CheckResult:
    """Do images decoded from z ~ N(0, I) look like digits: the classifier's mean confidence (max softmax), on a
    ramp from `zero_at` to `full_at`. Images: the student's vae.decoder on the grader's 100 draws (`use_probe`), else
    the tiles of figures whose titles mention the prior (`prior_titles`) and not `skip_titles`."""
    params, name, problem = resolve_params(params)
    if problem:
        return _config_problem(problem)
    if (gate := not_genuine(artefacts)) is not None:
        return gate
    images, source, why = None, "", ""
    if params["use_probe"]:
        images, why = probe_images(artefacts, "prior")
        source = (f"{0 if images is None else len(images)} draws of z ~ N(0, I) made by the grader, decoded by your "
                  f"vae.decoder")
    if images is None or not len(images):
        words = tuple(str(w).lower() for w in params["prior_titles"])
        skip = tuple(str(w).lower() for w in params["skip_titles"])
        figures = artefacts.get("figures") or []
        prior = {i for i, f in enumerate(figures) if isinstance(f, dict) and any(w in figure_text(f) for w in words)
                 and not any(w in figure_text(f) for w in skip)}
        grids = [g for g in tied_grids(artefacts, int(params["max_padding"]))[0] if g.figure in prior]
        if grids:
            images = np.concatenate([g.tiles[g.filled] for g in grids])     # the cells that hold an image
            source = f"{len(images)} samples in your figure(s) of prior samples ({', '.join(g.source for g in grids)})"
    if images is None or not len(images):
        note = f" (the grader could not decode its own draws: {why})" if why else ""
        return CheckResult("", 0.0, f"No images decoded from the prior were found{note}, so they could not be "
                                    f"judged: define vae (with vae.decoder) and draw decoded samples of z ~ N(0, I) "
                                    f"with imshow in a figure titled as prior samples.", _profile_note(name, params))
    try:
        labels, confidence, _ = classify(images)
    except ClassifierUnavailable as error:
        return _unavailable(error)
    mean = float(confidence.mean())
    full_at, zero_at = float(params["full_at"]), float(params["zero_at"])
    unsure = confidence < float(params["unsure_below"])
    score = ramp(mean, zero_at, full_at)
    details = {**_profile_note(name, params), "source": source, "mean_confidence": round(mean, 4),
               "unsure": int(unsure.sum()), "samples": int(len(images)), "full_at": full_at, "zero_at": zero_at,
               "digits": np.bincount(labels, minlength=10).tolist()}
    summary = (f"Samples from the prior ({source}): {CLASSIFIER_NAME} is on average {mean:.0%} sure they are digits "
               f"(full credit from {full_at:.0%}, none at or below {zero_at:.0%}); {int(unsure.sum())} of "
               f"{len(images)} look like no digit in particular")
    if score >= 1.0:
        return CheckResult("", 1.0, summary + ".", details)
    details["classifier_tiles"] = [thumbnail(images[i], f"sample {i}: {_saw(int(labels[i]), float(confidence[i]))}")
                                   for i in np.argsort(confidence)[:MAX_THUMBNAILS]]
    return CheckResult("", score, f"{summary}. Blurry or in-between shapes mean the decoder has not learnt digits "
                                  f"where the prior puts its mass: check that the reconstruction term is summed over "
                                  f"the 784 pixels and the KL term is not over-weighted, and that the loss curve "
                                  f"has come down.", details)
