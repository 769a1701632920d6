"""Deadlines and late work: `deadline:` and `late_policy:` of rubric.yaml -> a row's `Lateness` (autograder/results.py).

    deadline: "2026-03-13T23:59:00+01:00"   # with its zone (an offset, or a name: "2026-03-13 23:59 Europe/Amsterdam")
    late_policy:
      per_day: 0.1          # share of every item's points removed per started day late
      cap: 0.5              # at most this share is removed (before `zero_after_days`)
      zero_after_days: 7    # more than this many days late: no points (omit for never)
      grace_minutes: 15     # this late still counts as on time
      unknown_time: 0.1     # marked late by the LMS (Canvas) with no time known: this share is removed
    # or `late_policy: none`: lateness is shown, nothing is removed

The assessment is the cheap stage's (pipeline.finalize_submission): the late policy is not part of the cached
expensive stage, so changing it re-scores a class without running a notebook. The share removed applies to every
item, the TA's written-answer scores included, together with the rubric's other penalties (summed, capped at 1).

A submission's time is a fact of its row (autograder/discover/times.py); a student's extension replaces the
deadline. Rules, each stated in the row's message:
- a time at or before the deadline (plus the grace period): on time;
- after it: late by the started days (25 hours late is 2 days), `per_day` each up to `cap`, all after
  `zero_after_days`;
- no time but marked late by the LMS: `unknown_time`, said to be the policy's rule for an unknown time;
- no time and not marked late: on time, said so ("no submission time is known").
A time without a zone is read in the deadline's zone. Without a `deadline` nothing is assessed (nothing is late);
a deadline without a `late_policy` shows lateness and removes nothing.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from autograder.discover.times import TimeError, parse_time, show_time
from autograder.results import Lateness

POLICY_KEYS = ("per_day", "cap", "zero_after_days", "grace_minutes", "unknown_time")
NO_POLICY = ("none", "no", "off")
DAY = 86400.0


class LateRuleError(ValueError):
    """A deadline or late policy that cannot be used (the rubric wraps it in a RubricError)."""


@dataclass(frozen=True)
class LatePolicy:
    per_day: float = 0.0
    cap: float = 1.0
    zero_after_days: int | None = None
    grace_minutes: float = 0.0
    unknown_time: float = 0.0

    def fraction_for(self, days: int) -> float:
        if self.zero_after_days is not None and days > self.zero_after_days:
            return 1.0
        return min(self.cap, self.per_day * days)

    def describe(self) -> str:
        parts = [f"{self.per_day:.0%} per started day late, at most {self.cap:.0%}"]
        if self.zero_after_days is not None:
            parts.append(f"no points after {self.zero_after_days} day(s)")
        if self.grace_minutes:
            parts.append(f"{self.grace_minutes:g} minute(s) of grace")
        parts.append(f"{self.unknown_time:.0%} when marked late with no time known")
        return "; ".join(parts)


NO_PENALTY = LatePolicy()


# --- rubric.yaml -----------------------------------------------------------------------------------------------------

def parse_deadline(raw: Any, where: str) -> datetime | None:
    if raw is None or raw == "":
        return None
    try:
        deadline = parse_time(raw, f"{where}: deadline")
    except TimeError as error:
        raise LateRuleError(str(error)) from None
    if deadline.tzinfo is None:
        raise LateRuleError(f"{where}: deadline '{raw}' has no time zone; write it with an offset, e.g. "
                            f"\"2026-03-13T23:59:00+01:00\", or a zone name, e.g. \"2026-03-13 23:59 Europe/Amsterdam\"")
    return deadline


def _fraction(raw: dict, key: str, where: str, default: float) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise LateRuleError(f"{where}: late_policy.{key} must be a share of the points in [0, 1] (0.1 = 10%), got "
                            f"{value!r}")
    return float(value)


def parse_late_policy(raw: Any, where: str) -> LatePolicy | None:
    """None when the rubric has no late policy; NO_PENALTY for `none`."""
    if raw is None:
        return None
    if isinstance(raw, str) and raw.strip().lower() in NO_POLICY:
        return NO_PENALTY
    if raw is False:
        return NO_PENALTY
    if not isinstance(raw, dict):
        raise LateRuleError(f"{where}: late_policy must be `none` or a mapping with {', '.join(POLICY_KEYS)}")
    unknown = set(raw) - set(POLICY_KEYS)
    if unknown:
        raise LateRuleError(f"{where}: late_policy has unknown key(s) {sorted(unknown)}; allowed: "
                            f"{', '.join(POLICY_KEYS)}")
    zero_after = raw.get("zero_after_days")
    if zero_after is not None and (isinstance(zero_after, bool) or not isinstance(zero_after, int) or zero_after < 0):
        raise LateRuleError(f"{where}: late_policy.zero_after_days must be a whole number of days >= 0, got "
                            f"{zero_after!r}")
    grace = raw.get("grace_minutes", 0)
    if isinstance(grace, bool) or not isinstance(grace, (int, float)) or not 0 <= grace < math.inf:
        raise LateRuleError(f"{where}: late_policy.grace_minutes must be a number of minutes >= 0, got {grace!r}")
    return LatePolicy(per_day=_fraction(raw, "per_day", where, 0.0), cap=_fraction(raw, "cap", where, 1.0),
                      zero_after_days=zero_after, grace_minutes=float(grace),
                      unknown_time=_fraction(raw, "unknown_time", where, 0.0))


# --- one row ---------------------------------------------------------------------------------------------------------

def _duration(seconds: float) -> str:
    minutes = max(1, int(round(seconds / 60)))
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = [f"{days} day{'s' * (days != 1)}"] if days else []
    if hours:
        parts.append(f"{hours} hour{'s' * (hours != 1)}")
    if minutes and not days:
        parts.append(f"{minutes} minute{'s' * (minutes != 1)}")
    return " ".join(parts)


def _removed(fraction: float) -> str:
    if fraction >= 1:
        return "no points are given"
    if fraction <= 0:
        return "the late policy removes no points"
    return f"{fraction:.0%} of every item's points is removed"


WRITTEN_TOO = " This applies to every item, the written answers' scores included."


def assess(submitted_at: str | datetime | None, time_source: str, late_marker: bool, deadline: datetime | None,
           policy: LatePolicy | None, extension: str | datetime | None = None) -> Lateness | None:
    """A row's lateness under the rubric's deadline and policy (a student's extension replaces the deadline); None
    without a deadline in the rubric: then nothing is late, whatever the LMS marked."""
    if deadline is None:
        return None
    policy = policy or NO_PENALTY
    moment = datetime.fromisoformat(submitted_at) if isinstance(submitted_at, str) and submitted_at else \
        (submitted_at or None)
    extended = datetime.fromisoformat(extension) if isinstance(extension, str) and extension else (extension or None)
    due = extended or deadline
    if due.tzinfo is None:
        due = due.replace(tzinfo=deadline.tzinfo)
    if moment is not None and moment.tzinfo is None:
        moment = moment.replace(tzinfo=deadline.tzinfo)
    whose = "your extended deadline" if extended else "the deadline"
    source = f" (from {time_source})" if time_source else ""
    common = {"submitted_at": moment.isoformat() if moment else "", "deadline": due.isoformat(),
              "extended": bool(extended)}
    if moment is None:
        if late_marker:
            fraction = policy.unknown_time
            return Lateness("unknown", fraction, f"This submission was marked late by the course's learning "
                            f"platform and no submission time is known, so the late policy's rule for an unknown "
                            f"time applies: {_removed(fraction)}." + (WRITTEN_TOO if fraction > 0 else ""),
                            f"late, time unknown" + (f" (-{fraction:.0%})" if fraction > 0 else ""), **common)
        return Lateness("no_time", 0.0, "No submission time is known for this submission: it counts as on time.",
                        "no time (on time)", **common)
    late_seconds = (moment - due).total_seconds()
    if late_seconds <= policy.grace_minutes * 60:
        grace = " (within the grace period)" if late_seconds > 0 else ""
        return Lateness("on_time", 0.0, f"Submitted {show_time(moment)}{source}, before {whose} "
                        f"({show_time(due)}){grace}.", "on time (extension)" if extended else "on time",
                        late_seconds=round(late_seconds, 1), **common)
    days = math.ceil((late_seconds - policy.grace_minutes * 60) / DAY)
    fraction = round(policy.fraction_for(days), 6)
    return Lateness("late", fraction, f"Submitted {show_time(moment)}{source}, {_duration(late_seconds)} after "
                    f"{whose} ({show_time(due)}): {days} started day{'s' * (days != 1)} late, so "
                    f"{_removed(fraction)}." + (WRITTEN_TOO if fraction > 0 else ""),
                    f"{days} day{'s' * (days != 1)} late" + (f" (-{fraction:.0%})" if fraction > 0 else ""),
                    late_seconds=round(late_seconds, 1), days=days, **common)
