"""Deadlines and late policies: validated like the rest of the rubric, and each rule of the assessment."""
from datetime import datetime, timedelta, timezone

import pytest

from autograder.scoring import RubricError, parse_rubric
from autograder.scoring.late import NO_PENALTY, LatePolicy, assess

CET = timezone(timedelta(hours=1))
DEADLINE = datetime(2026, 3, 13, 23, 59, tzinfo=CET)
POLICY = LatePolicy(per_day=0.1, cap=0.5, zero_after_days=7, grace_minutes=15, unknown_time=0.1)
ITEMS = [{"id": "kl", "title": "KL", "points": 4, "check": "kl_closed_form"}]


def rubric(**top):
    return parse_rubric({"items": ITEMS, **top})


def test_deadline_and_policy_are_read_from_the_rubric():
    parsed = rubric(deadline="2026-03-13T23:59:00+01:00",
                    late_policy={"per_day": 0.1, "cap": 0.5, "zero_after_days": 7, "grace_minutes": 15,
                                 "unknown_time": 0.1})
    assert parsed.deadline == DEADLINE and parsed.late_policy == POLICY
    assert rubric(deadline="2026-03-13 23:59 Europe/Amsterdam").late_policy == NO_PENALTY   # shown, nothing removed
    assert rubric(deadline=None, late_policy="none").deadline is None
    yaml_datetime = datetime(2026, 3, 13, 22, 59, tzinfo=timezone.utc)                      # PyYAML's own timestamps
    assert rubric(deadline=yaml_datetime).deadline == DEADLINE


@pytest.mark.parametrize("top, expected", [
    ({"deadline": "2026-03-13 23:59"}, "deadline '2026-03-13 23:59' has no time zone"),
    ({"deadline": "Friday"}, "'Friday' is not a time"),
    ({"late_policy": {"per_day": 10}}, "late_policy.per_day must be a share of the points in [0, 1]"),
    ({"late_policy": {"per_dya": 0.1}}, "late_policy has unknown key(s) ['per_dya']"),
    ({"late_policy": {"zero_after_days": 1.5}}, "late_policy.zero_after_days must be a whole number of days"),
    ({"late_policy": "harsh"}, "late_policy must be `none` or a mapping"),
    ({"deadlines": "2026-03-13"}, "unknown top-level key(s) ['deadlines']"),
    ({"penalties": {"late": 0.1}}, "lateness is set by 'deadline' and 'late_policy'"),
])
def test_bad_deadlines_and_policies_are_named(top, expected):
    with pytest.raises(RubricError) as caught:
        rubric(**top)
    assert expected in str(caught.value)


def at(hours_late: float) -> datetime:
    return DEADLINE + timedelta(hours=hours_late)


def test_on_time_grace_and_started_days():
    assert assess(at(-1).isoformat(), "timestamp.txt", False, DEADLINE, POLICY).state == "on_time"
    grace = assess(at(0.2), "", False, DEADLINE, POLICY)          # 12 minutes: within the 15 of grace
    assert grace.state == "on_time" and "grace" in grace.message and grace.fraction == 0
    one = assess(at(1), "", False, DEADLINE, POLICY)
    assert (one.state, one.days, one.fraction, one.label) == ("late", 1, 0.1, "1 day late (-10%)")
    assert "written answers' scores included" in one.message
    assert assess(at(25), "", False, DEADLINE, POLICY).days == 2                  # 25 hours late: 2 started days
    assert assess(at(24 * 5.5), "", False, DEADLINE, POLICY).fraction == 0.5     # 6 days: capped at 50%
    beyond = assess(at(24 * 7.5), "", False, DEADLINE, POLICY)
    assert beyond.fraction == 1.0 and "no points are given" in beyond.message


def test_extension_unknown_and_missing_times():
    extended = assess(at(30), "CSV", False, DEADLINE, POLICY, extension=(DEADLINE + timedelta(days=2)).isoformat())
    assert (extended.state, extended.extended, extended.label) == ("on_time", True, "on time (extension)")
    assert "your extended deadline" in extended.message
    unknown = assess("", "", True, DEADLINE, POLICY)
    assert (unknown.state, unknown.fraction) == ("unknown", 0.1)
    assert "rule for an unknown time" in unknown.message and unknown.label == "late, time unknown (-10%)"
    none = assess("", "", False, DEADLINE, POLICY)
    assert (none.state, none.fraction) == ("no_time", 0.0) and "counts as on time" in none.message
    naive = assess("2026-03-14T00:30:00", "CSV", False, DEADLINE, POLICY)       # read in the deadline's zone
    assert naive.state == "late" and naive.late_seconds == 31 * 60
    assert assess(at(30), "", True, None, POLICY) is None                        # no deadline: nothing is late
    free = assess(at(30), "", False, DEADLINE, NO_PENALTY)
    assert free.state == "late" and free.fraction == 0 and "removes no points" in free.message
