"""Atomic output files: write to a temporary file beside the target, then rename.

A job that fails or is killed mid-write leaves the previous file (or none) in place, never a
partial one, and an existing file is only replaced when the caller says so. A writer killed
with SIGKILL cannot remove its hidden temporary file (``.<name>.<pid>.<random>.tmp``); the next
write to the same target removes it once that process is gone.
"""

from __future__ import annotations

import contextlib
import glob
import os
import tempfile
from pathlib import Path
from typing import Iterable, Iterator

from clvlab.core.errors import ClvlabError

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
    _remove_orphans(target)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp",
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


def _remove_orphans(target: Path) -> None:
    """Delete temporary files of earlier writers of ``target`` that were killed (SIGKILL, power
    loss) before they could clean up: their names carry the writer's process id, and a file
    whose process no longer exists is an orphan. Files of running writers are left alone."""
    prefix = f".{target.name}."
    for path in target.parent.glob(f"{glob.escape(prefix)}*.tmp"):
        pid = path.name[len(prefix):].split(".", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            with contextlib.suppress(OSError):
                path.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True
