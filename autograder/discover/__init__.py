"""Discover: a folder of submissions -> one `Submission` value per student (autograder/discover/submissions.py);
student names and safe ids from file names (autograder/discover/names.py); when each was handed in and the students'
extensions (autograder/discover/times.py)."""
from autograder.discover.submissions import Submission, discover

__all__ = ["Submission", "discover"]
