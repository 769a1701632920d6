"""Auto-graded lab: autoencoders, PCA and variational autoencoders on MNIST."""
from pathlib import Path

# Part of every cache key: bump it when a change to the grader may change a score.
GRADER_VERSION = "0.3.0"

# The project's folders, for the code that needs them (the CLI's defaults, the lab tooling, the reports).
PROJECT_ROOT = Path(__file__).resolve().parents[1]
DATA_CACHE = PROJECT_ROOT / "data_cache"
STUDENT_TEMPLATE = PROJECT_ROOT / "student_template"
SOLUTION = PROJECT_ROOT / "solution"
