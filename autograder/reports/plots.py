"""Plot helpers of the class reports (summary.html, similarity.html): matplotlib's Agg canvas without pyplot (no global
state, safe outside the main thread), figures embedded as PNG data URIs so each page is one self-contained file."""
from __future__ import annotations

import base64
import io
from typing import Any

from autograder.reports.writing import PNG_DATA_URI


def new_figure(width: float, height: float):
    """A figure on the Agg canvas and its one axes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure, figure.add_subplot()


def png_data_uri(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return PNG_DATA_URI + base64.b64encode(buffer.getvalue()).decode("ascii")


def plain(text: Any) -> str:
    """Text for a matplotlib label, with `$` kept literal (no mathtext from a student's name or a rubric title)."""
    return str(text).replace("$", r"\$")
