"""Checks: harvested plain data -> a fraction and a message; importing this package registers every check."""
from autograder.checks import image_quality  # noqa: F401  registers the image-quality checks
from autograder.checks.registry import CHECK_DEFAULTS, CHECKS, CheckResult
