"""Scoring: rubric.yaml -> a validated Rubric; harvested artefacts -> one ItemScore per item; the rubric's penalties
(autograder/scoring/rubric.py). `python -m autograder.scoring [rubric.yaml]` lists the items and the checks' parameters."""
from autograder.scoring.rubric import (DEFAULT_RUBRIC, MANUAL_CHECK, VISIBILITIES, ManualItem, Penalty, Rubric,
                                       RubricError, RubricItem, apply_penalties, load_rubric, parse_rubric,
                                       penalty_notes, repenalise, score)

__all__ = ["DEFAULT_RUBRIC", "MANUAL_CHECK", "VISIBILITIES", "ManualItem", "Penalty", "Rubric", "RubricError",
           "RubricItem", "apply_penalties", "load_rubric", "parse_rubric", "penalty_notes", "repenalise", "score"]
