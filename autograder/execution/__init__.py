"""Execution: one submitted notebook run in a sandbox, read back as plain data (autograder/execution/run.py)."""
