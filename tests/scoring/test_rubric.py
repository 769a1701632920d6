"""Rubric: loading and validation messages, scoring by status, instructor-editable points, penalties."""
import pytest
import yaml

from autograder.checks import CHECKS
from autograder.scoring import (DEFAULT_RUBRIC, RubricError, apply_penalties, load_rubric, parse_rubric,
                               penalty_notes, score)
from tests.checks.fakes import verified
from tests.checks.test_checks import FALLING, INPUTS, KL_VARIANTS, artefacts, axes, figure, kl_answer, line

SEED_003_FIGURES = {"training_curves": "figure_training_curve", "latent_scatter": "figure_latent_scatter",
                    "decoded_grid": "figure_decoded_grid_15x15", "digit_rows": "figure_digit_rows"}


def write_rubric(tmp_path, data) -> str:
    path = tmp_path / "rubric.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def minimal(**item_changes) -> dict:
    return {"items": [{"id": "curve", "title": "Training curve", "points": 10, "visibility": "visible",
                       "check": "figure_training_curve"},
                      {"id": "kl", "title": "KL", "points": 5, "visibility": "hidden", "check": "kl_closed_form",
                       **item_changes}]}


def test_default_rubric_follows_seed_003():
    rubric = load_rubric(DEFAULT_RUBRIC)
    by_id = {item.item_id: item for item in rubric.items}
    for item_id, check in SEED_003_FIGURES.items():
        assert by_id[item_id].points == 25 and by_id[item_id].check == check
    assert all(item.check in CHECKS for item in rubric.items)
    assert rubric.max_points == 220   # 4 x 25 figures + 70 code checks + 2 x 10 seed-001 figures + 3 x 10 image quality
    assert rubric.penalties["archive_submission"].fraction == 0.1


@pytest.mark.parametrize("change, expected", [
    ({"check": "kl_closd_form"}, "rubric.yaml item 2 ('kl'): unknown check 'kl_closd_form'; known checks: "),
    ({"points": -3}, "rubric.yaml item 2 ('kl'): negative points"),
    ({"id": "curve"}, "rubric.yaml item 2 ('curve'): duplicate id 'curve' (also item 1)"),
    ({"visibility": "secret"}, "visibility 'secret' is not one of visible, hidden, after_published"),
    ({"params": {"tol": 1}}, "check 'kl_closed_form' has no parameter(s) ['tol']; its parameters: rtol="),
    ({"points": "five"}, "'points' must be a number"),
    ({"weight": 2}, "unknown key(s) ['weight']"),
])
def test_validation_messages_name_the_item_and_the_problem(tmp_path, change, expected):
    with pytest.raises(RubricError) as error:
        load_rubric(write_rubric(tmp_path, minimal(**change)))
    assert expected in str(error.value)
    if "unknown check" in expected:
        assert "kl_closed_form" in str(error.value)     # the known checks are listed


def test_bad_penalties_and_shapes_are_rejected():
    with pytest.raises(RubricError, match="fraction must be a number in"):
        parse_rubric({**minimal(), "penalties": {"archive_submission": 1.5}})
    with pytest.raises(RubricError, match="'items' must be a non-empty list"):
        parse_rubric({"items": []})


def test_failed_status_without_artefacts_scores_zero_with_the_reason():
    rubric = load_rubric(DEFAULT_RUBRIC)
    scores = score(rubric, {}, INPUTS, status="kernel_died", reason="the kernel died: out of memory (2 GiB)")
    assert [s.item_id for s in scores] == rubric.item_ids
    assert all(s.points == 0 and s.max_points == i.points for s, i in zip(scores, rubric.items))
    assert all(s.message == "the kernel died: out of memory (2 GiB)" for s in scores)


def test_graded_items_scale_points_by_the_check_fraction(tmp_path):
    rubric = load_rubric(write_rubric(tmp_path, minimal()))
    unlabeled_curve = figure(axes(lines=[line(FALLING)]))
    arts = artefacts([unlabeled_curve], **{**verified(), "kl": kl_answer(KL_VARIANTS["lv_as_std"])})
    curve, kl = score(rubric, arts, INPUTS, status="cell_error")
    assert (curve.points, curve.max_points, curve.fraction) == (7.0, 10.0, 0.7)   # shows (0.7), labels missing (0.3)
    assert (kl.points, kl.visibility) == (0.0, "hidden") and "standard deviation" in kl.message


def test_instructors_change_points_and_params_in_yaml_only(tmp_path):
    data = minimal()
    data["items"][0]["points"] = 40
    data["items"][0]["params"] = {"form": 0.0, "shows": 1.0}     # labels no longer graded
    rubric = load_rubric(write_rubric(tmp_path, data))
    curve = score(rubric, artefacts([figure(axes(lines=[line(FALLING)]))], **verified()), INPUTS)[0]
    assert (curve.points, curve.max_points) == (40.0, 40.0)


def test_timeout_with_partial_artefacts_is_graded_and_says_why(tmp_path):
    rubric = load_rubric(write_rubric(tmp_path, minimal()))
    arts = artefacts([figure(axes(xlabel="epoch", ylabel="loss", lines=[line(FALLING)]))],
                     **{name: value for name, value in verified().items() if name != "kl"})
    curve, kl = score(rubric, arts, INPUTS, status="timeout", reason="stopped after 600 s")
    assert curve.fraction == 1.0 and "stopped" not in curve.message
    assert kl.points == 0 and "Execution stopped early: stopped after 600 s" in kl.message


def test_archive_penalty_scales_every_item_and_unknown_flags_cost_nothing():
    rubric = load_rubric(DEFAULT_RUBRIC)
    arts = artefacts([figure(axes(xlabel="epoch", ylabel="loss", lines=[line(FALLING)]))], **verified())
    scores = score(rubric, arts, INPUTS)
    penalised = apply_penalties(scores, {"archive_submission", "report_pdf_present"}, rubric)
    curve = next(s for s in penalised if s.item_id == "training_curves")
    assert curve.points == pytest.approx(22.5) and curve.max_points == 25
    assert curve.penalties == [rubric.penalties["archive_submission"].message]
    assert sum(s.points for s in penalised) == pytest.approx(0.9 * sum(s.points for s in scores))
    assert apply_penalties(scores, {"report_pdf_present"}, rubric) == scores
    assert penalty_notes({"archive_submission"}, rubric) == [rubric.penalties["archive_submission"].message]
