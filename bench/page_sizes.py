"""How big the pages of a graded class are: bytes of each feedback page (and of the release's PDFs and zips when there
is a release), and the height of the class pages as Debian's chromium lays them out (1280 px wide, the document's
scrollHeight, details elements as the page opens them).

    .venv/bin/python bench/page_sizes.py grades                  # after `make grade` (and `make release`)
    .venv/bin/python bench/page_sizes.py grades --json bench/results/page_sizes.json
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autograder.reports.release import CHROMIUM_FLAGS, chromium_executable  # noqa: E402
from autograder.reports.writing import atomic_write_text  # noqa: E402
from autograder.results import (FEEDBACK_HTML, RELEASE_DIR, RELEASE_PDF, REVIEW_DIR, REVIEW_HTML,  # noqa: E402
                                SIMILARITY_HTML, SUMMARY_HTML)

CLASS_PAGES = (SIMILARITY_HTML, SUMMARY_HTML, f"{REVIEW_DIR}/{REVIEW_HTML}")


def sizes(paths: list[Path]) -> dict:
    values = [p.stat().st_size for p in paths]
    if not values:
        return {}
    return {"count": len(values), "mean_bytes": round(statistics.fmean(values)), "min_bytes": min(values),
            "max_bytes": max(values)}


def heights(out: Path) -> dict:
    from playwright.sync_api import sync_playwright

    result = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_executable(), headless=True,
                                             args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        for name in CLASS_PAGES:
            if (out / name).is_file():
                page.goto((out / name).resolve().as_uri(), wait_until="load")
                result[name] = page.evaluate("document.documentElement.scrollHeight")
        browser.close()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="a graded class (make grade OUT=...)")
    parser.add_argument("--json", type=Path, help="also write the numbers there")
    args = parser.parse_args(argv)
    release = args.out / RELEASE_DIR
    numbers = {
        "feedback_html": sizes(sorted(args.out.glob(f"*/{FEEDBACK_HTML}"))),
        "release_html": sizes(sorted(release.glob(f"*/{FEEDBACK_HTML}"))),
        "release_pdf": sizes(sorted(release.glob(f"*/{RELEASE_PDF}"))),
        "release_zip": sizes(sorted(release.glob("*.zip"))),
        "class_page_height_px": heights(args.out),
    }
    text = json.dumps(numbers, indent=1)
    print(text)
    if args.json:
        atomic_write_text(args.json, text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
