"""The instructor's and the students' pages in a real headless browser: Debian's chromium driven by Playwright.

A tiny class (two notebooks that draw figures, one a renamed copy of the other, and a file that is not a notebook) is
graded for real, then summary.html, similarity.html and the feedback pages are opened through file:// URLs. Each must
render (title, heading), log no console error, load every image, and link only to files that exist. Screenshots go to
$LAB_TEST_ARTIFACTS (when set) or the pytest tmp folder; the folder is printed.

Chromium comes from Debian (`apt-get install chromium`, done by `make test`); Playwright never downloads a browser.
A machine without it fails these tests, naming the install command: a browser test that is skipped proves nothing.
"""
import os
import shutil
import urllib.parse
from pathlib import Path

import nbformat
import pytest

from autograder.execution.limits import Limits
from autograder.pipeline import GradeSettings, grade_class
from autograder.lab.profiles import TINY

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "notebooks"
DEBIAN_CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--disable-quic"]


def chromium_path() -> str:
    found = shutil.which("chromium") or (str(DEBIAN_CHROMIUM) if DEBIAN_CHROMIUM.exists() else None)
    if not found:
        pytest.fail("Debian's chromium is not installed, and the browser tests need it: run "
                    "`apt-get install chromium` as root (`make test` does this in its test-tools target)",
                    pytrace=False)
    return found


@pytest.fixture(scope="module")
def browser():
    executable = chromium_path()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed: `make venv` installs requirements.txt", pytrace=False)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def artifacts_dir(tmp_path_factory):
    folder = Path(os.environ["LAB_TEST_ARTIFACTS"]) if os.environ.get("LAB_TEST_ARTIFACTS") else \
        tmp_path_factory.mktemp("browser_screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def artifacts(artifacts_dir, capsys):
    """The screenshot folder; each test's screenshots are named in the test output, captured or not."""
    before = {shot: shot.stat().st_mtime_ns for shot in artifacts_dir.glob("*.png")}
    yield artifacts_dir
    with capsys.disabled():
        for shot in sorted(artifacts_dir.glob("*.png")):
            if before.get(shot) != shot.stat().st_mtime_ns:
                print(f"\nscreenshot: {shot}")


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """A class of three graded for real (sandboxed, TINY profile): a few seconds."""
    submissions = tmp_path_factory.mktemp("browser_class")
    drawing = nbformat.read(FIXTURES / "draws_figures.ipynb", as_version=4)
    nbformat.write(drawing, submissions / "Assignment1 Ada Lovelace.ipynb")
    for cell in drawing.cells:
        cell.source = cell.source.replace("fig, ax", "figure_b, axes_b").replace("ax.", "axes_b.")
    nbformat.write(drawing, submissions / "Assignment1 Bob Copy.ipynb")
    shutil.copyfile(FIXTURES / "not_json.ipynb", submissions / "broken.ipynb")
    out_dir = tmp_path_factory.mktemp("browser_grades")
    settings = GradeSettings(out_dir=out_dir, rubric_path=ROOT / "autograder" / "rubric.yaml",
                             data_dir=ROOT / "data_cache", sandbox="auto", profile_name="tiny",
                             profile=dict(TINY),
                             limits=Limits(cell_timeout_s=60, notebook_timeout_s=300))
    rows = grade_class(submissions, settings, jobs=2, progress=False)
    assert {r.submission: r.status for r in rows} == {"Ada_Lovelace": "ok", "Bob_Copy": "ok", "broken": "invalid"}
    return out_dir


def open_page(browser, path: Path, artifacts: Path, shot_name: str):
    """Load a page, screenshot it, and return (page, console errors, failed requests) for the checks."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors, failed = [], []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("requestfailed", lambda request: failed.append(f"{request.url}: {request.failure}"))
    page.goto(path.resolve().as_uri(), wait_until="load")
    page.screenshot(path=str(artifacts / shot_name), full_page=True)
    return page, errors, failed


def check_renders(page, errors, failed, title_has: str, heading_has: str) -> None:
    assert title_has in page.title()
    heading = page.locator("h1").first
    assert heading.is_visible() and heading_has in heading.inner_text()
    assert errors == [], f"console errors: {errors}"
    assert failed == [], f"requests that failed: {failed}"


def check_images(page, at_least: int) -> None:
    images = page.evaluate("""() => Array.from(document.images).map(img => ({
        alt: img.alt, complete: img.complete, width: img.naturalWidth, height: img.naturalHeight}))""")
    assert len(images) >= at_least, f"expected at least {at_least} image(s), found {images}"
    broken = [image for image in images if not (image["complete"] and image["width"] > 0 and image["height"] > 0)]
    assert not broken, f"images that did not load: {broken}"


def check_links(page, path: Path) -> list[str]:
    """Every link resolves: a file link to an existing file, a fragment to an element of its page. The pages are
    meant to be opened offline, so a link to the web is itself a failure."""
    links = page.evaluate("() => Array.from(document.querySelectorAll('a[href]')).map(a => a.href)")
    ids = set(page.evaluate("() => Array.from(document.querySelectorAll('[id]')).map(e => e.id)"))
    for link in links:
        parsed = urllib.parse.urlparse(link)
        assert parsed.scheme == "file", f"{path.name} links outside the grading folder: {link}"
        target = Path(urllib.parse.unquote(parsed.path))
        assert target.is_file(), f"{path.name} links to a missing file: {link}"
        if parsed.fragment and target == path.resolve():
            assert parsed.fragment in ids, f"{path.name} links to a missing anchor: #{parsed.fragment}"
    return links


def test_summary_page(browser, graded, artifacts):
    path = graded / "summary.html"
    page, errors, failed = open_page(browser, path, artifacts, "summary.png")
    check_renders(page, errors, failed, "Class summary", "Class summary")
    check_images(page, at_least=4)
    links = check_links(page, path)
    for submission in ("Ada_Lovelace", "Bob_Copy", "broken"):
        assert (graded / submission / "feedback.html").as_uri() in links
    assert (graded / "similarity.html").as_uri() in links
    assert [h.inner_text() for h in page.locator("h2").all()][:2] == ["Scores", "Rubric items"]
    # a student's link opens their feedback page
    page.get_by_role("link", name="Ada_Lovelace").click()
    page.wait_for_load_state("load")
    assert page.title().startswith("Lab feedback") and "Ada Lovelace" in page.title()
    page.close()


def test_similarity_page(browser, graded, artifacts):
    path = graded / "similarity.html"
    page, errors, failed = open_page(browser, path, artifacts, "similarity.png")
    check_renders(page, errors, failed, "Similarity report", "Similarity report")
    check_images(page, at_least=1)
    links = check_links(page, path)
    assert any(link.endswith("#pair-1") for link in links)
    skipped = page.locator("h2", has_text="Skipped submissions").locator("xpath=following-sibling::table[1]")
    assert "broken" in skipped.inner_text()
    first_pair = page.locator("h3#pair-1")
    assert "Ada Lovelace" in first_pair.inner_text() and "Bob Copy" in first_pair.inner_text()
    assert page.locator(".code mark").count() > 0          # the shared code is highlighted
    page.close()


@pytest.mark.parametrize("submission, heading, images", [("Ada_Lovelace", "Lab feedback", 3),
                                                         ("broken", "Lab feedback", 0)])
def test_feedback_pages(browser, graded, artifacts, submission, heading, images):
    path = graded / submission / "feedback.html"
    page, errors, failed = open_page(browser, path, artifacts, f"feedback_{submission}.png")
    check_renders(page, errors, failed, "Lab feedback", heading)
    check_images(page, at_least=images)
    check_links(page, path)
    assert page.locator("table tbody tr").count() >= 1        # the rubric table
    page.close()


def test_release_pages_pdfs_and_zips(browser, graded, artifacts):
    """make release: the student's page (items released with the grades held back), its PDF printed by the same
    chromium, a zip of both per student, and the instructor's index whose links all resolve."""
    import subprocess
    import sys
    import zipfile

    # The command line, in its own process: this module's Playwright is already running (one per process).
    done = subprocess.run([sys.executable, "-m", "autograder", "release", "--out", str(graded)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "3 students released" in done.stdout and "3 PDFs, 3 zips" in done.stdout
    release = graded / "release"
    for submission in ("Ada_Lovelace", "Bob_Copy", "broken"):
        pdf = (release / submission / "feedback.pdf").read_bytes()
        assert pdf.startswith(b"%PDF-") and len(pdf) > 1000
        with zipfile.ZipFile(release / f"{submission}.zip") as archive:
            assert sorted(archive.namelist()) == [f"{submission}/feedback.html", f"{submission}/feedback.pdf"]
    page, errors, failed = open_page(browser, release / "Ada_Lovelace" / "feedback.html", artifacts,
                                     "release_Ada_Lovelace.png")
    check_renders(page, errors, failed, "feedback", "feedback")
    check_images(page, at_least=3)
    assert page.get_by_text("released later").count() >= 1
    page.close()
    index = release / "index.html"
    page, errors, failed = open_page(browser, index, artifacts, "release_index.png")
    check_renders(page, errors, failed, "Release", "Release")
    links = check_links(page, index)
    assert sum(link.endswith(".pdf") for link in links) == 3 and sum(link.endswith(".zip") for link in links) == 3
    page.close()


def test_the_checks_catch_a_broken_page(browser, tmp_path, artifacts):
    """The checks above are not vacuous: a page with each fault fails each of them."""
    (tmp_path / "present.html").write_text("<!DOCTYPE html><title>present</title>")
    path = tmp_path / "broken.html"
    path.write_text("""<!DOCTYPE html><html><head><title>Broken page</title></head><body><h1>Broken page</h1>
        <img src="data:image/png;base64,AAAA" alt="not a png"><img src="missing.png" alt="missing">
        <a href="present.html">fine</a> <a href="#nowhere">anchor</a> <a href="gone.html">gone</a>
        <a href="https://example.invalid/">web</a>
        <script>console.error("boom")</script></body></html>""")
    page, errors, failed = open_page(browser, path, artifacts, "broken_page.png")
    with pytest.raises(AssertionError, match="console errors"):
        check_renders(page, errors, [], "Broken page", "Broken page")
    assert any("missing.png" in request for request in failed)
    with pytest.raises(AssertionError, match="images that did not load"):
        check_images(page, at_least=1)
    page.evaluate("""() => document.querySelectorAll('a').forEach(a => {
        if (!a.getAttribute('href').startsWith('https')) a.remove(); })""")
    with pytest.raises(AssertionError, match="links outside the grading folder"):
        check_links(page, path)
    for bad, message in (("gone.html", "missing file"), ("#nowhere", "missing anchor")):
        page.evaluate("""bad => { document.querySelectorAll('a').forEach(a => a.remove());
            const a = document.createElement('a'); a.href = bad; a.textContent = bad;
            document.body.append(a); }""", bad)
        with pytest.raises(AssertionError, match=message):
            check_links(page, path)
    page.close()


def test_without_chromium_the_tests_fail_naming_the_install(monkeypatch, tmp_path):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setitem(globals(), "DEBIAN_CHROMIUM", tmp_path / "no-chromium")
    with pytest.raises(pytest.fail.Exception, match="apt-get install chromium"):
        chromium_path()
