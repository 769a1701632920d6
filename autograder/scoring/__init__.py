"""Scoring: rubric.yaml -> a validated Rubric; artefacts -> one ItemScore per item (autograder/scoring/rubric.py)."""
from autograder.scoring.rubric import (DEFAULT_RUBRIC, GRADED_STATUSES, MANUAL_CHECK, VISIBILITIES, ItemScore, ManualItem, Penalty, Rubric, RubricError, RubricItem,
                                       apply_penalties, load_rubric, parse_rubric, penalty_notes, score)
