"""Models from their JSON files: the class a file names, found among BaseModel's subclasses.

Loading never runs code from the file (no pickles): the file names a class and holds its
settings and learned state as JSON (posteriors netCDF), which ``model_files.restore`` puts back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from clvlab.core.errors import ClvlabError
from clvlab.models import model_files
from clvlab.models.base import BaseModel

__all__ = ["load_model", "model_from_dict"]

def load_model(path: str | Path) -> BaseModel:
    """Read a model saved with ``save``; JSON only, so loading never runs code from the file.

    Parameters
    ----------
    path : str or pathlib.Path
        The JSON file written by ``save``.

    Returns
    -------
    BaseModel
        The model, of the class the file names.

    Raises
    ------
    ClvlabError
        Where the file is not a readable clvlab model file or names an unknown model.
    """
    return model_from_dict(model_files.read(path), source=str(path))


def model_from_dict(payload: dict[str, Any], source: str = "<dict>") -> BaseModel:
    """Build a model from ``to_dict``'s payload (``source`` names the file in errors)."""
    model_files.check_header(payload, source)
    cls = _model_class(payload.get("model"))
    if cls is None:
        raise ClvlabError(f"model file {source} holds an unknown model {payload.get('model')!r}")
    return model_files.restore(cls, payload, source)


def _model_class(name: Any) -> type[BaseModel] | None:
    """The class a file names: a subclass of BaseModel of that name (clvlab's models, or one a
    user defined; a class redefined in a notebook replaces the first). The classes themselves are the
    lookup, so no list of names is kept here: the names users type are models/registry.py's."""
    found, stack = None, [BaseModel]
    while stack:
        cls = stack.pop(0)
        if cls.__name__ == name:
            found = cls
        stack.extend(cls.__subclasses__())
    return found
