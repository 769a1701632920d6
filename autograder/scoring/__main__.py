"""`python -m autograder.scoring [rubric.yaml]`: validate a rubric, print its items and the checks' parameters."""
import sys

from autograder.scoring.rubric import main

sys.exit(main(sys.argv[1:]))
