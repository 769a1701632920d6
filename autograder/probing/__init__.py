"""Stage "probe": the student's functions and trained models, called by the grader in a fresh sandboxed process
(server.py) on inputs it draws at call time (probes.py), never in the student's kernel. See docs/architecture.md."""
