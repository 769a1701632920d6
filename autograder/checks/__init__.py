"""Checks: harvested plain data (figure descriptions, probe answers) -> a fraction in [0, 1] and a message that teaches,
run in the grader's process. Importing this package registers every check (the @check decorator of registry.py):
shapes.py (encoder/decoder), elbo.py (KL, losses, reparameterization), pca.py, training.py (histories, training
curve), figures.py (scatter, 15x15 grid, per-digit grid, sweep), baselines.py (seed 001's autoencoder-run and PCA
figures) and image_quality.py (judged by the grader's digit classifier); figure_reader.py is the one reader of
figure descriptions they all use."""
from autograder.checks import (baselines, elbo, figures, image_quality, pca, reparameterization,  # noqa: F401
                               shapes, training)  # (registration)
from autograder.checks.registry import CHECK_DEFAULTS, CHECKS, CheckResult

__all__ = ["CHECKS", "CHECK_DEFAULTS", "CheckResult"]
