"""Plots written to files by jobs (MLflow artifacts, monitoring folders) without pyplot.

A job that logs a figure must not change how the user's session draws: ``matplotlib.use("Agg")``
before pyplot's import made a notebook's later figures stop showing inline. A figure made as a
``matplotlib.figure.Figure`` renders with the Agg canvas whatever the process's backend is,
never registers with pyplot (nothing to close, nothing shown), and leaves the backend alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

__all__ = ["save_png"]


def save_png(draw: Callable[[Any], Any], path: str | Path, *, figsize: tuple[float, float] = (8, 5),
             dpi: int = 90) -> None:
    """Call ``draw(ax)`` on the axes of a new figure and save it at ``path`` as a PNG."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    draw(fig.subplots())
    fig.tight_layout()
    fig.savefig(path, dpi=dpi, format="png")
