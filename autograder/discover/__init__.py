"""Discover: a folder of submissions -> one `Submission` value per student (autograder/discover/submissions.py);
student names and safe ids from file names (autograder/discover/names.py)."""
from autograder.discover.submissions import Submission, discover

__all__ = ["Submission", "discover"]
