"""Calibration: every judged quantity measured on correct work and on the classic mistakes, at a profile (GRADING by
default), so that each threshold of rubric.yaml and of the grader's gates sits below what correct work reaches (with
a stated margin) and, where it can, above what the mistakes reach.

    .venv/bin/python bench/calibrate.py [--seeds 0 1 2] [--jobs 2] [--profile grading]   (make calibrate)

Grades, through the real pipeline: the reference (the master, filled in) once per seed (the profile's SEED), the
correct-but-different variants and the single mistakes of autograder/lab/variants.py at the first seed. Reads what
the grader measured (OUT/<id>/measurements.json) and each item's details (row.json), then writes
bench/results/calibration.json: every run's quantities, and per quantity the minimum over correct work, the values
of the mistakes, the threshold in force and whether it keeps its margin. tests/scoring/test_calibration.py fails
when a threshold of the rubric sits within its margin of the reference's worst seed.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autograder.checks.model import GENUINE_DEFAULTS, HISTORY_DEFAULTS  # noqa: E402
from autograder.checks.registry import CHECK_DEFAULTS  # noqa: E402
from autograder.checks.ties import SCATTER_TIE_MAX, TIED_FRACTION, TILE_RESIDUAL_MAX  # noqa: E402
from autograder.execution.limits import Limits  # noqa: E402
from autograder.lab import profiles, variants  # noqa: E402
from autograder.lab.demo import filled_in_notebook, write_notebook  # noqa: E402
from autograder.pipeline import GradeSettings, grade_class  # noqa: E402
from autograder.results import MEASUREMENTS_JSON, ROW_FILE  # noqa: E402
from autograder.scoring import load_rubric  # noqa: E402
from autograder.scoring.rubric import DEFAULT_RUBRIC  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "calibration.json"
REFERENCE = "reference"
MARGIN = 0.15      # a "full credit from" threshold must sit at least this fraction below correct work's minimum


def item_details(row: dict, item_id: str) -> dict:
    return next((s.get("details") or {} for s in row["item_scores"] if s["item_id"] == item_id), {})


def quantities(out_dir: Path, name: str) -> dict:
    """The judged quantities of one graded notebook (None where it was not measured)."""
    row = json.loads((out_dir / name / ROW_FILE).read_text())
    measured = json.loads((out_dir / name / MEASUREMENTS_JSON).read_text())
    vae = measured.get("vae_model") or {}
    copies = vae.get("prior_copy_rmse") or []
    agreement = item_details(row, "losses_decrease").get("agreement") or {}
    scatter, grid = item_details(row, "latent_scatter"), item_details(row, "decoded_grid")
    rows, quality = item_details(row, "digit_rows"), item_details(row, "digit_rows_quality")
    ae_runs = item_details(row, "autoencoder_runs").get("runs") or []
    pca = item_details(row, "pca_figure")
    return {
        "score": row["score"], "items": row["items"],
        "trained_ratio": (vae["nelbo_train"] / vae["nelbo_untrained"]) if vae.get("nelbo_train") else None,
        "nelbo_test": vae.get("nelbo_test"),
        "decoder_jacobian_median": vae.get("decoder_jacobian_median"),
        "decoder_reinit_change": vae.get("decoder_reinit_change"),
        "copy_fraction": (sum(c < GENUINE_DEFAULTS["copy_rmse"] for c in copies) / len(copies)) if copies else None,
        "history_last_ratio": {label: value.get("last_ratio") for label, value in agreement.items()},
        "scatter_centroid_error": scatter.get("centroid_error"), "scatter_separation": scatter.get("separation"),
        "grid_tiles_from_decoder": grid.get("tiles_from_decoder"), "grid_range_coverage": grid.get("range_coverage"),
        "grid_digits": len(grid["digits"]) if isinstance(grid.get("digits"), list) else None,
        "digit_rows_tiles_from_decoder": rows.get("tiles_from_decoder"),
        "rows_of_one_digit": rows.get("rows_of_one_digit"),
        "digit_rows_read": (quality["in_order"] / quality["tiles"]) if quality.get("tiles") else None,
        "grid_coverage_digits": len(item_details(row, "decoded_grid_coverage").get("digits") or []),
        "prior_confidence": item_details(row, "prior_samples_quality").get("mean_confidence"),
        "ae_trained_ratio": {f"run{n}": m["mse_train"] / m["mse_untrained"] for n, m in
                             enumerate(measured.get("ae_models") or []) if isinstance(m, dict) and m.get("mse_train")},
        "ae_scatter_error": {f"run{r['run']}": r["scatter_errors"][0] for r in ae_runs if r.get("scatter_errors")},
        "ae_scatter_second_error": {f"run{r['run']}": r["scatter_errors"][1] for r in ae_runs
                                    if len(r.get("scatter_errors") or []) > 1},
        "pca_scatter_error": pca.get("scatter_error"),
        "pca_scatter_second_error": (pca.get("scatter_errors") or [None, None])[1:2][0]
        if len(pca.get("scatter_errors") or []) > 1 else None,
        "pca_coordinate_range": min(pca["coordinate_range"]) if pca.get("coordinate_range") else None,
    }


def thresholds(profile_name: str) -> dict:
    """The thresholds in force: quantity -> (direction, full-credit or pass value). "above": correct work must
    reach at least the value; "below": at most."""
    rubric = load_rubric(DEFAULT_RUBRIC)

    def param(check: str, name: str):
        item = next(i for i in rubric.items if i.check == check)
        params = {**CHECK_DEFAULTS[check], **item.params}
        return {**params, **((params.get("by_profile") or {}).get(profile_name) or {})}[name]

    return {
        "trained_ratio": ("below", GENUINE_DEFAULTS["max_trained_ratio"]),
        "decoder_jacobian_median": ("above", GENUINE_DEFAULTS["min_jacobian"]),
        "decoder_reinit_change": ("above", GENUINE_DEFAULTS["min_reinit_change"]),
        "copy_fraction": ("below", GENUINE_DEFAULTS["max_copy_fraction"]),
        "scatter_centroid_error": ("below", SCATTER_TIE_MAX),
        "scatter_separation": ("above", param("figure_latent_scatter", "separation_full_at")),
        "grid_tiles_from_decoder": ("above", TIED_FRACTION),
        "digit_rows_tiles_from_decoder": ("above", TIED_FRACTION),
        "grid_range_coverage": ("above", param("figure_decoded_grid_15x15", "range_full_at")),
        "grid_digits": ("above", param("figure_decoded_grid_15x15", "digits_full_at")),
        "rows_of_one_digit": ("above", 10 * param("figure_digit_rows", "rows_full_at")),
        "digit_rows_read": ("above", param("digit_rows_quality", "full_at")),
        "grid_coverage_digits": ("above", param("decoded_grid_coverage", "full_classes")),
        "prior_confidence": ("above", param("prior_samples_quality", "full_at")),
        "history_last_ratio_low": ("above", HISTORY_DEFAULTS["last_low"]),
        "history_last_ratio_high": ("below", HISTORY_DEFAULTS["last_high"]),
        "ae_trained_ratio": ("below", param("figure_autoencoder_runs", "trained_ratio")),
        "ae_scatter_error": ("below", param("figure_autoencoder_runs", "tie_max")),
        "ae_scatter_second_error": ("above", param("figure_autoencoder_runs", "tie_max")),
        "pca_scatter_error": ("below", param("figure_pca", "tie_max")),
        "pca_scatter_second_error": ("above", param("figure_pca", "tie_max")),
        "pca_coordinate_range": ("above", param("figure_pca", "min_coordinate_range")),
        "tile_residual_max": ("info", TILE_RESIDUAL_MAX),
    }


def summarise(runs: dict, correct: list[str], mistakes: list[str], profile_name: str) -> dict:
    summary = {}
    for quantity, (direction, threshold) in thresholds(profile_name).items():
        if direction == "info":
            summary[quantity] = {"threshold": threshold}
            continue
        key = quantity.removesuffix("_low").removesuffix("_high")

        def values(names):
            found = []
            for name in names:
                value = runs[name].get(key)
                found += [v for v in (value.values() if isinstance(value, dict) else [value]) if v is not None]
            return found

        good, bad = values(correct), values(mistakes)
        worst = (min(good) if direction == "above" else max(good)) if good else None
        if worst is None:
            keeps = None
        elif direction == "above":
            keeps = threshold <= worst * (1 - MARGIN)
        else:
            keeps = threshold >= worst * (1 + MARGIN)
        summary[quantity] = {"direction": direction, "threshold": threshold, "correct_worst": worst,
                             "correct": sorted(good), "mistakes": sorted(bad), "keeps_margin": keeps}
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--profile", default="grading")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    started = time.monotonic()
    runs, correct, mistakes = {}, [], []
    with tempfile.TemporaryDirectory(prefix="labgrade-calibrate-") as folder:
        folder = Path(folder)
        for number, seed in enumerate(args.seeds):
            submissions = folder / f"seed{seed}"
            if number == 0:
                built = variants.build(submissions)
            else:
                submissions.mkdir()
                built = {}
            write_notebook(filled_in_notebook(), submissions / f"{REFERENCE}.ipynb")
            profile = {**profiles.get_profile(args.profile), "SEED": seed}
            out_dir = folder / f"grades{seed}"
            settings = GradeSettings(out_dir=out_dir, rubric_path=DEFAULT_RUBRIC, data_dir=ROOT / "data_cache",
                                     sandbox="auto", profile_name=args.profile, profile=profile, limits=Limits())
            rows = grade_class(submissions, settings, jobs=args.jobs, progress=False)
            for row in rows:
                label = f"{row.submission}@seed{seed}"
                runs[label] = {"status": str(row.status), **quantities(out_dir, row.submission)}
                entry = built.get(row.submission)
                (mistakes if isinstance(entry, variants.Mistake) else correct).append(label)
                print(f"{label:40} {row.status:11} {row.score:7.2f}", flush=True)
    report = {"profile": args.profile, "seeds": args.seeds, "margin": MARGIN, "runs": runs, "correct": correct,
              "mistakes": mistakes, "summary": summarise(runs, correct, mistakes, args.profile),
              "seconds": round(time.monotonic() - started, 1)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1, sort_keys=True) + "\n")
    print(f"\n{'quantity':32} {'threshold':>10} {'correct worst':>14} {'mistakes (min..max)':>22}  margin")
    for quantity, entry in report["summary"].items():
        if "correct_worst" not in entry:
            continue
        bad = entry["mistakes"]
        bad_text = f"{min(bad):.3g}..{max(bad):.3g}" if bad else "-"
        worst = entry["correct_worst"]
        print(f"{quantity:32} {entry['threshold']:>10.3g} {worst if worst is None else round(worst, 4)!s:>14} "
              f"{bad_text:>22}  {entry['keeps_margin']}")
    print(f"\n{len(runs)} notebooks in {report['seconds']:.0f} s; results in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
