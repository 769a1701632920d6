"""Plain source injected as text into the student's kernel (never imported by the grader's process at run time)."""
