"""Progress bars for the operations that take more than a few seconds (backtests, the scoring
job, posterior predictions). tqdm draws them: a widget in a notebook (when ipywidgets is
installed), a text bar on a terminal.

Every such function takes ``progress``: True shows a bar, False never does, and None (the
default) shows one when someone is watching, in a notebook or on a terminal, so that scheduled
jobs and test runs write no bars into their logs.
"""

from __future__ import annotations

import sys

__all__ = ["progress_bar", "wanted"]


def _in_notebook() -> bool:
    ipython = sys.modules.get("IPython")  # imported by every notebook kernel; never by us
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    return type(shell).__name__ == "ZMQInteractiveShell"


def wanted(progress: bool | None) -> bool:
    if progress is None:
        return _in_notebook() or sys.stderr.isatty()
    return bool(progress)


class _Silent:
    """The bar's interface, doing nothing."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None

    def update(self, n: float = 1) -> None:
        return None

    def set_postfix_str(self, text: str) -> None:
        return None


def progress_bar(total: float | None, description: str, progress: bool | None, *, unit: str = "it"):
    """A context manager yielding a bar with ``update(n)`` and ``set_postfix_str(text)``;
    ``total=None`` counts up without an end."""
    if not wanted(progress):
        return _Silent()
    if _in_notebook():
        try:  # tqdm's notebook bar needs ipywidgets; without it the text bar still works
            import ipywidgets  # noqa: F401
            from tqdm.notebook import tqdm
        except ImportError:
            from tqdm import tqdm
    else:
        from tqdm import tqdm
    return tqdm(total=total, desc=description, unit=unit, file=sys.stderr, dynamic_ncols=True,
                unit_scale=total is None or total >= 100_000)  # 1.2M customers, not 1200000
