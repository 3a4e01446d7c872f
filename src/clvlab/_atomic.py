"""Atomic output files: write to a temporary file beside the target, then rename.

A job that fails or is killed mid-write leaves the previous file (or none) in place, never a
partial one, and an existing file is only replaced when the caller says so.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterable, Iterator

from .errors import ClvlabError

__all__ = ["atomic_output"]


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, *, overwrite: bool = False,
                  inputs: Iterable[str | os.PathLike] = ()) -> Iterator[str]:
    """Yield a temporary path; on success it is renamed to ``path``, on failure removed."""
    target = Path(path).resolve()
    for source in inputs:
        if Path(source).resolve() == target:
            raise ClvlabError(f"output {path} is also an input; choose another output path")
    if target.exists() and not overwrite:
        raise ClvlabError(f"output {path} exists; pass overwrite=True (--overwrite) to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp",
                                         dir=target.parent)
    os.close(handle)
    os.unlink(temporary)  # writers (DuckDB, pyarrow) create the file themselves
    try:
        yield temporary
        with open(temporary, "rb") as written:  # durable before it becomes visible
            os.fsync(written.fileno())
        os.replace(temporary, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
