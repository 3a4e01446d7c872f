"""A backtest result on disk, without MLflow: one Parquet file per table and a JSON of the
settings, in one folder.

The folder is written beside its final place and renamed into it, so a write that fails or is
killed leaves the previous folder (or none), never a half-written one. An existing folder is
replaced only with ``overwrite=True``, and only if it is a saved backtest (or empty): a typo in
the path must not delete someone's data.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from clvlab.core.errors import ClvlabError

__all__ = ["save_result", "load_result"]

FORMAT = "clvlab-backtest"
VERSION = 1
SETTINGS_FILE = "settings.json"
TABLES = ("metrics", "by_frequency", "tracking", "cohorts", "predictions")


def save_result(result, folder: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write ``result``'s tables (Parquet) and settings (JSON) into ``folder``; return its path."""
    target = Path(folder)
    if target.exists():
        if not overwrite:
            raise ClvlabError(f"output {target} exists; pass overwrite=True to replace it")
        if not _is_replaceable(target):
            raise ClvlabError(f"output {target} is not a saved backtest (no {SETTINGS_FILE} of "
                              f"format {FORMAT!r}); refusing to replace it, choose another folder")
    try:
        settings_text = json.dumps({"format": FORMAT, "version": VERSION,
                                    "tables": [t for t in TABLES if getattr(result, t) is not None],
                                    "settings": result.settings}, indent=2, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ClvlabError(f"the result's settings cannot be saved as JSON ({exc}); settings "
                          f"must hold numbers, strings, lists and None") from None
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp",
                                      dir=target.parent))
    try:
        for name in TABLES:
            table = getattr(result, name)
            if table is not None:
                table.to_parquet(temporary / f"{name}.parquet")
        (temporary / SETTINGS_FILE).write_text(settings_text, encoding="utf-8")
        _swap_in(temporary, target)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return target


def load_result(folder: str | os.PathLike) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read a folder written by :func:`save_result`: the ``BacktestResult``'s tables (None where
    it had none) and its settings."""
    source = Path(folder)
    header = _read_header(source)
    tables: dict[str, Any] = {}
    for name in TABLES:
        path = source / f"{name}.parquet"
        if name not in header["tables"]:
            tables[name] = None
            continue
        if not path.is_file():
            raise ClvlabError(f"saved backtest {source} is incomplete: {path.name} is missing")
        tables[name] = pd.read_parquet(path)
    return tables, header["settings"]


def _read_header(source: Path) -> dict[str, Any]:
    path = source / SETTINGS_FILE
    if not path.is_file():
        raise ClvlabError(f"{source} is not a saved backtest: it has no {SETTINGS_FILE}")
    try:
        header = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ClvlabError(f"{path} is damaged: not valid JSON ({exc})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ClvlabError(f"{path} is not a clvlab backtest (its format is not {FORMAT!r})")
    if header.get("version") != VERSION:
        raise ClvlabError(f"{path} has format version {header.get('version')!r}; this clvlab "
                          f"reads version {VERSION}")
    if not isinstance(header.get("tables"), list) or not isinstance(header.get("settings"), dict):
        raise ClvlabError(f"{path} is damaged: it lacks the list of tables or the settings")
    return header


def _is_replaceable(target: Path) -> bool:
    if not target.is_dir():
        return False
    if not any(target.iterdir()):
        return True
    try:
        _read_header(target)
    except ClvlabError:
        return False
    return True


def _swap_in(temporary: Path, target: Path) -> None:
    """Rename the finished folder into place; an old one is moved aside first (a directory
    cannot be renamed over a non-empty one) and deleted only once the new one is in place."""
    if not target.exists():
        os.replace(temporary, target)
        return
    old = target.parent / f".{target.name}.{os.getpid()}.old"
    os.replace(target, old)
    try:
        os.replace(temporary, target)
    except OSError:
        with contextlib.suppress(OSError):
            os.replace(old, target)  # put the previous result back
        raise
    shutil.rmtree(old, ignore_errors=True)
