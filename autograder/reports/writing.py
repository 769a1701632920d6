"""How every report is written: atomic files, spreadsheet-safe CSV cells, PNG data URIs and the jinja2 environment of
the HTML templates (autograder/reports/templates/).

Every writer is atomic: it writes a temporary file in the target's folder and `os.replace`s it, so a crash (or an
exception midway) leaves either the previous file or none, never a partial one. `atomic_write_bytes` is the only
atomic writer in the package (reports, caches, notebooks).
"""
from __future__ import annotations

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


def csv_text(text: Any) -> str:
    """A text cell that a spreadsheet will not evaluate as a formula."""
    text = str(text if text is not None else "")
    return "'" + text if text[:1] in ("=", "+", "@", "\t", "\r") else text


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
