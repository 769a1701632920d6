"""How every report is written: atomic files, spreadsheet-safe CSV files (`write_csv`, the one CSV writer of the
grader), PNG data URIs and the jinja2 environment of the HTML templates (autograder/reports/templates/).

Every writer is atomic: it writes a temporary file in the target's folder and `os.replace`s it, so a crash (or an
exception midway) leaves either the previous file or none, never a partial one. `atomic_write_bytes` is the only
atomic writer in the package (reports, caches, notebooks).
"""
from __future__ import annotations

import csv
import functools
import html as html_module
import io
import math
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Callable

TEMPLATES = Path(__file__).with_name("templates")
REPORT_FILE_MODE = 0o644
PNG_MIME = "image/png"
PNG_DATA_URI = f"data:{PNG_MIME};base64,"     # the prefix of every image embedded in a report


# --- atomic writes -----------------------------------------------------------------------------------------------

def atomic_write_bytes(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write to a temporary file beside `path`, flush it to disk, then rename it over `path`; on failure the temporary
    file is removed and `path` is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False) as tmp:
        try:
            tmp.write(data)
            tmp.flush()
            os.fsync(tmp.fileno())
        except BaseException:
            Path(tmp.name).unlink(missing_ok=True)
            raise
    try:
        os.chmod(tmp.name, mode)  # NamedTemporaryFile makes 0600; reports are read by TAs and may be served
        os.replace(tmp.name, path)
    except BaseException:
        Path(tmp.name).unlink(missing_ok=True)
        raise


def atomic_write(path: str | Path, write: Callable[[Any], None], binary: bool = False) -> Path:
    """Call write(file) on an in-memory file, then write its content to `path` atomically (atomic_write_bytes);
    when write raises, nothing is written and `path` is left as it was."""
    path = Path(path)
    buffer = io.BytesIO() if binary else io.StringIO(newline="")
    write(buffer)
    content = buffer.getvalue()
    atomic_write_bytes(path, content if binary else content.encode("utf-8"), mode=REPORT_FILE_MODE)
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda f: f.write(text))


# --- CSV cells ---------------------------------------------------------------------------------------------------

def csv_number(value: Any) -> str:
    """A number as a gradebook cell (up to 4 decimals, no trailing zeros); '' for anything else."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return ""
    if not math.isfinite(value):
        return ""
    return f"{value:.4f}".rstrip("0").rstrip(".") or "0"


# OWASP's CSV injection rule: a cell starting with one of these is a formula to a spreadsheet (=1+1, +cmd|..., -2+3,
# @SUM(...), and tab or carriage return before any of them), so it gets a leading apostrophe: the spreadsheet shows
# the text as it is. Plain numbers ("-1.5") are left alone, and so are the grader's own numbers.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
FORMULA_GUARD = "'"
_PLAIN_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:[.,][0-9]*)?|[.,][0-9]+)(?:[eE][+-]?[0-9]+)?")


def _needs_guard(text: str) -> bool:
    """Whether a cell would be a formula (or is a guarded one: then guarding again keeps the round trip exact)."""
    if not text:
        return False
    if text[0] in FORMULA_STARTS:
        return not _PLAIN_NUMBER.fullmatch(text)
    return text[0] == FORMULA_GUARD and _needs_guard(text[1:])


def csv_text(text: Any) -> str:
    """A text cell that a spreadsheet will not evaluate as a formula; csv_unescape(csv_text(t)) == t."""
    text = str(text if text is not None else "")
    return FORMULA_GUARD + text if _needs_guard(text) else text


def csv_unescape(cell: Any) -> str:
    """A cell as it was before csv_text (a spreadsheet that saved it may have dropped the apostrophe already)."""
    cell = str(cell if cell is not None else "")
    return cell[1:] if cell[:1] == FORMULA_GUARD and _needs_guard(cell[1:]) else cell


def write_csv(path: str | Path, header: list, rows, *, bom: bool = False, extra_rows=()) -> Path:
    """The one way the grader writes a CSV: every cell through csv_text (numbers formatted by the caller pass
    unchanged), `\n` line ends, UTF-8 (with a byte-order mark when `bom`), atomic. `extra_rows` are written right
    after the header (e.g. Canvas's "Points Possible" row)."""
    def write(f):
        if bom:
            f.write("\ufeff")
        writer = csv.writer(f, lineterminator="\n")
        for row in [header, *extra_rows, *rows]:
            writer.writerow([csv_text(cell) for cell in row])

    return atomic_write(path, write)


# --- HTML --------------------------------------------------------------------------------------------------------

def environment():
    """The templates' environment: autoescaped, strict, with the `num` and `markdown` filters."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = lambda value: f"{float(value):.2f}".rstrip("0").rstrip(".")
    env.filters["markdown"] = render_markdown
    return env


# $$...$$, or $...$ without a $ inside, opened before and closed after a non-space, not followed by a digit (pandoc's
# rule, so that "costs $5 and $6" stays text)
_MATH = re.compile(r"\$\$(.+?)\$\$|\$(?=[^\s$])[^$]*?(?<=[^\s$])\$(?![0-9])", re.DOTALL)


@functools.lru_cache(maxsize=1)
def _markdown_renderer():
    """One parser for every answer of the sheet: CommonMark, raw HTML escaped, no images or links."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False}).disable(["image", "link", "autolink"])


def render_markdown(text: str):
    """A student's Markdown (untrusted) as safe HTML for the TA's review sheet: CommonMark with raw HTML escaped,
    no images or links (nothing is fetched or followed from a student's text), and $...$ / $$...$$ kept verbatim in
    <code class="math"> so that `_` and `*` inside formulas do not turn into emphasis."""
    from markupsafe import Markup

    formulas: list[str] = []

    def stash(match: re.Match) -> str:
        formulas.append(match.group(0))
        return f"\ue000{len(formulas) - 1}\ue001"  # private-use characters: a placeholder Markdown leaves alone

    rendered = _markdown_renderer().render(_MATH.sub(stash, text.replace("\ue000", "").replace("\ue001", "")))
    rendered = re.sub("\ue000([0-9]+)\ue001",
                      lambda m: f'<code class="math">{html_module.escape(formulas[int(m.group(1))])}</code>', rendered)
    return Markup(rendered)
