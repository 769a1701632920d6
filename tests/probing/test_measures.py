"""autograder/probing/measures.py: the grader's own numpy measurements of the student's model outputs, against
hand values and brute force."""
import math

import numpy as np
import pytest

from autograder.probing import measures


def smooth_images(n, seed=0, pixels=784) -> np.ndarray:
    """n different images in [0, 1] with some structure (sums of a few bumps), flattened."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:28, 0:28]
    images = np.zeros((n, 28, 28))
    for i in range(n):
        for _ in range(3):
            cy, cx, width = rng.uniform(5, 23), rng.uniform(5, 23), rng.uniform(2, 5)
            images[i] += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * width ** 2))
    return np.clip(images / images.max(axis=(1, 2), keepdims=True), 0, 1).reshape(n, pixels)


# --- tile_residuals ------------------------------------------------------------------------------------------------

def test_tile_residuals_finds_the_generating_candidate():
    candidates = smooth_images(300)
    picks = np.array([17, 250, 3, 144])
    index, residual = measures.tile_residuals(candidates[picks], candidates)
    np.testing.assert_array_equal(index, picks)
    assert np.all(residual < 1e-3)


def test_tile_residuals_is_invariant_to_an_affine_change_of_the_tile_either_sign():
    candidates = smooth_images(300)
    rng = np.random.default_rng(1)
    noisy = np.clip(candidates[[40, 90]] + rng.normal(0, 0.05, (2, 784)), 0, 1)
    index, residual = measures.tile_residuals(noisy, candidates)
    assert index.tolist() == [40, 90] and np.all(residual > 0.01)
    for a, b in ((0.5, 0.2), (2.0, -0.3), (0.25, 0.0), (-1.0, 1.0)):    # -1, 1: the tile drawn inverted
        moved_index, moved_residual = measures.tile_residuals(a * noisy + b, candidates)
        np.testing.assert_array_equal(moved_index, index)
        np.testing.assert_allclose(moved_residual, residual, rtol=1e-3)    # relative to the tile's own spread
    exact_index, exact_residual = measures.tile_residuals(0.6 * candidates[[7]] + 0.3, candidates)
    assert exact_index[0] == 7 and exact_residual[0] < 1e-3


def test_a_flat_tile_fits_nothing():
    candidates = smooth_images(50)
    _, residual = measures.tile_residuals(np.full((1, 784), 0.5), candidates)
    assert residual[0] == np.inf


def test_tile_residuals_agrees_with_a_brute_force_fit_and_works_in_chunks():
    candidates = smooth_images(120, seed=3)
    tiles = smooth_images(5, seed=4)
    index, residual = measures.tile_residuals(tiles, candidates, chunk=16)
    best = []
    for tile in tiles:
        residuals = []
        for candidate in candidates:
            design = np.stack([candidate, np.ones_like(candidate)], axis=1)
            (a, b), *_ = np.linalg.lstsq(design, tile, rcond=None)
            residuals.append(np.sqrt(np.mean((tile - a * candidate - b) ** 2)) / tile.std())
        best.append((int(np.argmin(residuals)), float(np.min(residuals))))
    assert index.tolist() == [i for i, _ in best]
    np.testing.assert_allclose(residual, [r for _, r in best], rtol=1e-3, atol=1e-5)


def test_local_mesh_shape_and_centre():
    centres = np.array([[0.0, 0.0], [1.5, -2.0], [-3.0, 4.0]])
    mesh = measures.local_mesh(centres, 0.1, 7)
    assert mesh.shape == (3 * 49, 2)
    blocks = mesh.reshape(3, 49, 2)
    np.testing.assert_allclose(blocks.mean(axis=1), centres, atol=1e-12)          # centred on each centre
    np.testing.assert_allclose(blocks[:, 24], centres, atol=1e-12)                # the middle point is the centre
    np.testing.assert_allclose(np.ptp(blocks, axis=1), 0.6 * np.ones((3, 2)), atol=1e-12)   # 6 steps of 0.1
    assert np.allclose(np.diff(np.unique(np.round(blocks[0, :, 0], 9))), 0.1)


# --- nearest_distances ---------------------------------------------------------------------------------------------

def test_nearest_distances_finds_an_exact_copy_among_the_references():
    reference = smooth_images(400, seed=5).astype(np.float32)
    mean = reference.mean(0)
    _, _, vt = np.linalg.svd(reference - mean, full_matrices=False)
    basis = vt[:20]
    projected = (reference - mean) @ basis.T
    new = smooth_images(3, seed=6).astype(np.float32)
    images = np.concatenate([reference[[123, 7]], new])
    distances = measures.nearest_distances(images, reference, projected, basis, mean)
    assert distances[0] == pytest.approx(0.0, abs=1e-6) and distances[1] == pytest.approx(0.0, abs=1e-6)
    brute = np.sqrt(((new[:, None, :] - reference[None]) ** 2).mean(2)).min(1)
    assert np.all(distances[2:] > 0.01)
    np.testing.assert_allclose(distances[2:], brute, rtol=1e-4)       # the shortlist holds the nearest here


# --- per-image terms -----------------------------------------------------------------------------------------------

def test_kl_rows_against_hand_values():
    mu = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    lss = np.array([[0.0, 0.0], [0.0, math.log(2.0)], [-1.0, 0.0]])
    expected = [0.0,
                -0.5 * ((1 + 0 - 1 - 1) + (1 + math.log(2.0) - 0 - 2)),      # 1 - 0.5 log 2
                -0.5 * ((1 - 1 - 0 - math.exp(-1)) + (1 + 0 - 4 - 1))]      # 0.5 e^-1 + 2
    np.testing.assert_allclose(measures.kl_rows(mu, lss), expected, rtol=1e-12)
    assert measures.kl_rows(mu, lss)[1] == pytest.approx(1 - 0.5 * math.log(2.0))


def test_bce_rows_against_hand_values_and_the_clamp():
    x = np.array([[1.0, 0.0], [0.5, 0.5], [1.0, 0.0]])
    x_hat = np.array([[0.5, 0.25], [0.5, 0.5], [0.0, 1.0]])
    expected = [-(math.log(0.5) + math.log(0.75)), 2 * math.log(2.0), 200.0]   # log(0) clamped at -100, like torch
    np.testing.assert_allclose(measures.bce_rows(x, x_hat), expected, rtol=1e-12)


def test_squared_errors_means_boxes_and_jacobians():
    np.testing.assert_allclose(measures.squared_error_rows([[1.0, 0.0]], [[0.5, 0.5]]), [0.5])
    assert measures.finite_mean([1.0, 3.0]) == 2.0
    assert measures.finite_mean([1.0, float("nan")]) is None and measures.finite_mean([]) is None
    points = np.array([[0.0, 0.0], [1.0, 1.0]])
    assert measures.box_coverage(points, np.array([0.0, 0.0]), np.array([2.0, 2.0])) == pytest.approx(0.25)
    at = np.zeros((2, 3))
    moved = [np.array([[0.3, 0.0, 0.0], [0.0, 0.0, 0.0]]), np.array([[0.0, 0.4, 0.0], [0.0, 0.0, 0.0]])]
    np.testing.assert_allclose(measures.jacobian_norms(at, moved, 0.1), [5.0, 0.0])
