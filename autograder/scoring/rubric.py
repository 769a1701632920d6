"""Rubric: rubric.yaml -> validated `Rubric`; artefacts + probe inputs -> one `ItemScore` per item.

Points, visibility and check parameters live in the YAML file, so instructors change the grading without touching
code. Validation names the item and what is wrong ("rubric.yaml item 3 ('kl'): unknown check 'kl_closd_form'; known
checks: ...").

Statuses (autograder/results.py): a graded status (`ok`, `cell_error`) is graded from whatever was harvested. Any
other status (timeout, kernel_died, invalid, output_limit, error) with no artefacts scores 0 on every item, the reason
as message; with partial artefacts (e.g. figures drawn before a timeout) those are graded and failing items mention
the status.

Written answers (`manual_items`, otter's `manual: true` questions) are scored by a TA in the review sheet
(autograder/reports/review.py), not by a check: each names the question `heading` the grader finds it by in a submission.

Deadlines (`deadline`, `late_policy`: autograder/scoring/late.py) are validated here like the rest; the late share is
applied by the cheap stage together with the penalties (`repenalise`).

`python -m autograder.scoring [rubric.yaml]` validates a rubric and prints its items and the checks' parameters.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from autograder.checks import CHECK_DEFAULTS, CHECKS, CheckResult
from autograder.results import ItemScore, Status, is_graded
from autograder.scoring.late import LatePolicy, LateRuleError, NO_PENALTY, parse_deadline, parse_late_policy

DEFAULT_RUBRIC = Path(__file__).resolve().parents[1] / "rubric.yaml"   # autograder/rubric.yaml: instructors edit it
VISIBILITIES = ("visible", "hidden", "after_published")
ITEM_KEYS = {"id", "title", "points", "visibility", "check", "params"}
MANUAL_ITEM_KEYS = {"id", "title", "points", "visibility", "heading"}
MANUAL_CHECK = "manual_review"      # ItemScore.check of a TA-scored item
TOP_KEYS = ("title", "items", "penalties", "manual_items", "deadline", "late_policy")
LATE_FLAG = "late"                  # the late share, applied with the penalties (`repenalise`)


class RubricError(ValueError):
    """A rubric file that cannot be used; the message says where and why."""


@dataclass(frozen=True)
class RubricItem:
    item_id: str
    title: str
    points: float
    visibility: str
    check: str
    params: dict = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.item_id


@dataclass(frozen=True)
class ManualItem:
    """A written answer scored by a TA in the review sheet; `heading` is the question's label in the notebook
    ("Question 2a"), how the grader finds the answer."""
    item_id: str
    title: str
    points: float
    visibility: str
    heading: str
    check: str = MANUAL_CHECK

    @property
    def id(self) -> str:
        return self.item_id


@dataclass(frozen=True)
class Penalty:
    flag: str
    fraction: float
    message: str


@dataclass(frozen=True)
class Rubric:
    title: str
    items: tuple[RubricItem, ...]
    penalties: dict[str, Penalty] = field(default_factory=dict)
    path: str = ""
    manual_items: tuple[ManualItem, ...] = ()
    deadline: datetime | None = None            # None: nothing is late
    late_policy: LatePolicy | None = None       # with a deadline and no policy: lateness shown, nothing removed

    @property
    def max_points(self) -> float:
        """Points of the automatic items (the written answers add `manual_points`)."""
        return float(sum(item.points for item in self.items))

    @property
    def item_ids(self) -> list[str]:
        return [item.item_id for item in self.items]

    @property
    def manual_ids(self) -> list[str]:
        return [item.item_id for item in self.manual_items]

    @property
    def manual_points(self) -> float:
        return float(sum(item.points for item in self.manual_items))


# --- loading -----------------------------------------------------------------------------------------------------

def load_rubric(path: str | Path = DEFAULT_RUBRIC) -> Rubric:
    path = Path(path)
    where = path.name
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise RubricError(f"{where}: cannot read the rubric ({error})") from error
    except yaml.YAMLError as error:
        raise RubricError(f"{where}: not valid YAML ({error})") from error
    return parse_rubric(raw, where=where, path=str(path))


def parse_rubric(raw: Any, where: str = "rubric.yaml", path: str = "") -> Rubric:
    if not isinstance(raw, dict):
        raise RubricError(f"{where}: the top level must be a mapping with 'items' (and optionally 'title', "
                          f"'penalties', 'manual_items', 'deadline', 'late_policy')")
    unknown_top = set(raw) - set(TOP_KEYS)
    if unknown_top:
        raise RubricError(f"{where}: unknown top-level key(s) {sorted(unknown_top)}; allowed: {', '.join(TOP_KEYS)}")
    items_raw = raw.get("items")
    if not isinstance(items_raw, list) or not items_raw:
        raise RubricError(f"{where}: 'items' must be a non-empty list of rubric items")
    items, seen = [], {}
    for number, entry in enumerate(items_raw, start=1):
        items.append(_parse_item(entry, number, where, seen))
    penalties = _parse_penalties(raw.get("penalties") or {}, where)
    manual_raw = raw.get("manual_items") or []
    if not isinstance(manual_raw, list):
        raise RubricError(f"{where}: 'manual_items' must be a list of written-answer items (id, title, points, "
                          f"heading)")
    manual = tuple(_parse_manual_item(entry, number, where, seen) for number, entry in enumerate(manual_raw, start=1))
    try:
        deadline = parse_deadline(raw.get("deadline"), where)
        policy = parse_late_policy(raw.get("late_policy"), where)
    except LateRuleError as error:
        raise RubricError(str(error)) from None
    if deadline is not None and policy is None:
        policy = NO_PENALTY
    if LATE_FLAG in penalties:
        raise RubricError(f"{where} penalty '{LATE_FLAG}': lateness is set by 'deadline' and 'late_policy', not as a "
                          f"penalty")
    return Rubric(title=str(raw.get("title") or "Lab"), items=tuple(items), penalties=penalties, path=path,
                  manual_items=manual, deadline=deadline, late_policy=policy)


def _parse_manual_item(entry: Any, number: int, where: str, seen: dict[str, int]) -> ManualItem:
    label = f"{where} manual item {number}"
    if not isinstance(entry, dict):
        raise RubricError(f"{label}: must be a mapping with id, title, points, heading")
    item_id = entry.get("id")
    if not isinstance(item_id, str) or not item_id.strip() or not all(c.isalnum() or c in "_-." for c in item_id):
        raise RubricError(f"{label}: 'id' must be a short name of letters, digits, '_', '-', '.' (a CSV column)")
    label = f"{where} manual item {number} ('{item_id}')"
    if item_id in seen:
        raise RubricError(f"{label}: duplicate id '{item_id}' (also an item of 'items' or 'manual_items')")
    seen[item_id] = number
    unknown = set(entry) - MANUAL_ITEM_KEYS
    if unknown:
        raise RubricError(f"{label}: unknown key(s) {sorted(unknown)}; allowed: {', '.join(sorted(MANUAL_ITEM_KEYS))}")
    points, visibility = _points(entry, label), _visibility(entry, label)
    heading = entry.get("heading")
    if not isinstance(heading, str) or not heading.strip():
        raise RubricError(f"{label}: 'heading' must be the question's label in the notebook, e.g. \"Question 2a\"")
    return ManualItem(item_id=item_id, title=str(entry.get("title") or item_id), points=float(points),
                      visibility=visibility, heading=heading.strip())


def _points(entry: dict, label: str) -> float:
    points = entry.get("points")
    if isinstance(points, bool) or not isinstance(points, (int, float)) or not math.isfinite(points):
        raise RubricError(f"{label}: 'points' must be a number, got {points!r}")
    if points < 0:
        raise RubricError(f"{label}: negative points ({points}); use a penalty for deductions")
    return float(points)


def _visibility(entry: dict, label: str) -> str:
    visibility = entry.get("visibility", "visible")
    if visibility not in VISIBILITIES:
        raise RubricError(f"{label}: visibility '{visibility}' is not one of {', '.join(VISIBILITIES)}")
    return visibility


def _parse_item(entry: Any, number: int, where: str, seen: dict[str, int]) -> RubricItem:
    label = f"{where} item {number}"
    if not isinstance(entry, dict):
        raise RubricError(f"{label}: must be a mapping with id, title, points, visibility, check")
    item_id = entry.get("id")
    if not isinstance(item_id, str) or not item_id.strip():
        raise RubricError(f"{label}: missing 'id' (a short unique name, the gradebook column)")
    label = f"{where} item {number} ('{item_id}')"
    if not all(c.isalnum() or c in "_-." for c in item_id):
        raise RubricError(f"{label}: id may only hold letters, digits, '_', '-' and '.' (it is a CSV column)")
    if item_id in seen:
        raise RubricError(f"{label}: duplicate id '{item_id}' (also item {seen[item_id]})")
    seen[item_id] = number
    unknown = set(entry) - ITEM_KEYS
    if unknown:
        raise RubricError(f"{label}: unknown key(s) {sorted(unknown)}; allowed: {', '.join(sorted(ITEM_KEYS))}")
    check = entry.get("check")
    if check not in CHECKS:
        raise RubricError(f"{label}: unknown check '{check}'; known checks: {', '.join(sorted(CHECKS))}")
    points, visibility = _points(entry, label), _visibility(entry, label)
    params = entry.get("params") or {}
    if not isinstance(params, dict):
        raise RubricError(f"{label}: 'params' must be a mapping of parameter -> value")
    known = CHECK_DEFAULTS[check]
    unknown_params = set(params) - set(known)
    if unknown_params:
        raise RubricError(f"{label}: check '{check}' has no parameter(s) {sorted(unknown_params)}; its parameters: "
                          f"{', '.join(f'{k}={v!r}' for k, v in known.items()) or 'none'}")
    title = entry.get("title") or item_id
    return RubricItem(item_id=item_id, title=str(title), points=float(points), visibility=visibility, check=check,
                      params=dict(params))


def _parse_penalties(raw: Any, where: str) -> dict[str, Penalty]:
    if not isinstance(raw, dict):
        raise RubricError(f"{where}: 'penalties' must map a flag to a fraction (or to {{fraction, message}})")
    penalties = {}
    for flag, spec in raw.items():
        message = f"penalty '{flag}'"
        if isinstance(spec, dict):
            unknown = set(spec) - {"fraction", "message"}
            if unknown:
                raise RubricError(f"{where} penalty '{flag}': unknown key(s) {sorted(unknown)}; allowed: fraction, "
                                  f"message")
            message = str(spec.get("message") or message)
            spec = spec.get("fraction")
        if isinstance(spec, bool) or not isinstance(spec, (int, float)) or not 0 <= spec <= 1:
            raise RubricError(f"{where} penalty '{flag}': fraction must be a number in [0, 1], got {spec!r}")
        penalties[str(flag)] = Penalty(flag=str(flag), fraction=float(spec), message=message)
    return penalties


# --- scoring -----------------------------------------------------------------------------------------------------

def score(rubric: Rubric, artefacts: dict | None, probe_inputs: dict | None, status: str = Status.OK,
          reason: str | None = None, profile: dict | None = None, profile_name: str | None = None) -> list[ItemScore]:
    """One ItemScore per rubric item, in rubric order. `profile` (work knobs the grader injected, e.g. SCATTER_SIZE)
    and its name (`profile_name`: "grading", "tiny", "full"; it selects the checks' `by_profile` parameters) are
    handed to the checks as params['profile'] and params['profile_name']."""
    artefacts = artefacts if isinstance(artefacts, dict) else {}
    has_artefacts = bool(artefacts.get("figures")) or bool(artefacts.get("probes"))
    why = reason or f"the notebook could not be graded (status: {status})"
    if not is_graded(status) and not has_artefacts:
        return [ItemScore.zero(item, why, {"status": status}) for item in rubric.items]
    scores = []
    for item in rubric.items:
        params = {**item.params, "profile": dict(profile or {}), "profile_name": profile_name}
        result = CHECKS[item.check](artefacts, probe_inputs or {}, params)
        if not isinstance(result, CheckResult):   # registered checks always return one; guard custom ones
            result = CheckResult(item.check, 0.0, "internal grader error: the check returned no result", {})
        message = result.message
        if not is_graded(status) and result.fraction < 1:
            message = f"{message} (Execution stopped early: {why}.)"
        scores.append(ItemScore(item.item_id, item.title, round(item.points * result.fraction, 4), item.points,
                                item.visibility, message, result.fraction, item.check, result.details))
    return scores


def apply_penalties(item_scores: list[ItemScore], flags: set[str] | frozenset[str], rubric: Rubric) -> list[ItemScore]:
    """Scale every item's earned points by (1 - sum of the rubric's penalty fractions for `flags`, capped at 1) and
    record the penalties' messages in `ItemScore.penalties` (the reports state them once). Flags without a rubric
    penalty cost nothing."""
    applied = [rubric.penalties[flag] for flag in sorted(flags or ()) if flag in rubric.penalties]
    applied = [p for p in applied if p.fraction > 0]
    if not applied:
        return list(item_scores)
    keep = max(0.0, 1.0 - sum(p.fraction for p in applied))
    return [replace(s, points=round(s.points * keep, 4), penalties=list(s.penalties) + [p.message for p in applied])
            for s in item_scores]


def repenalise(item_scores: list[ItemScore], flags: set[str] | frozenset[str], rubric: Rubric,
               extra: list[Penalty] = ()) -> list[ItemScore]:
    """The item scores with every penalty applied afresh: the rubric's for `flags` and `extra` ones (the late share),
    summed and capped at 1, from each item's fraction (so scores that already carry penalties are not penalised
    twice)."""
    fresh = [replace(s, points=round(s.max_points * s.fraction, 4), penalties=[]) for s in item_scores]
    penalised = apply_penalties(fresh, flags, rubric)
    extra = [p for p in extra if p.fraction > 0]
    if not extra:
        return penalised
    applied = [rubric.penalties[flag] for flag in sorted(flags or ()) if flag in rubric.penalties
               and rubric.penalties[flag].fraction > 0] + extra
    keep = max(0.0, 1.0 - sum(p.fraction for p in applied))
    return [replace(s, points=round(s.max_points * s.fraction * keep, 4), penalties=[p.message for p in applied])
            for s in fresh]


def penalty_notes(flags: set[str] | frozenset[str], rubric: Rubric) -> list[str]:
    """The messages of the penalties that apply to `flags`, for the feedback page."""
    return [rubric.penalties[f].message for f in sorted(flags or ()) if f in rubric.penalties
            and rubric.penalties[f].fraction > 0]


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else DEFAULT_RUBRIC
    try:
        rubric = load_rubric(path)
    except RubricError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"{rubric.title}: {len(rubric.items)} items, {rubric.max_points:g} points"
          + (f"; {len(rubric.manual_items)} written answers, {rubric.manual_points:g} points" if rubric.manual_items
             else ""))
    for item in rubric.items:
        params = {**CHECK_DEFAULTS[item.check], **item.params}
        print(f"  {item.item_id:24} {item.points:6g}  {item.visibility:15} {item.check}  {params}")
    for manual in rubric.manual_items:
        print(f"  {manual.item_id:24} {manual.points:6g}  {manual.visibility:15} written answer, scored by a TA "
              f"(found by its heading '{manual.heading}')")
    for penalty in rubric.penalties.values():
        print(f"  penalty {penalty.flag}: {penalty.fraction:.0%} ({penalty.message})")
    if rubric.deadline is not None:
        print(f"  deadline {rubric.deadline.isoformat()}; late policy: {rubric.late_policy.describe()}")
    else:
        print("  no deadline: nothing is late")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
