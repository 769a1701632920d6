"""Reports: every file the grader writes in OUT/, written atomically."""
