"""Package attributes imported on first use (PEP 562), so that ``import clvlab`` stays fast.

A package names what it offers and where each name is defined; nothing is imported until a name
is asked for (``clvlab.BetaGeo``, ``from clvlab import BetaGeo``), and then only its module and
what that module imports. The models import scikit-learn, numba and the PyMC stack, the churn
challengers scikit-learn, the operations MLflow: a script that summarises a log, or the command
line's ``--help``, needs none of them. Used by the package ``__init__`` modules::

    __getattr__, __dir__ = lazy.attach(__name__, attributes={"clvlab.data.rfm": ["rfm_summary"]})

A resolved name is stored on the package, so the next lookup is an ordinary attribute. Any
submodule is also found as an attribute (``clvlab.models.registry``), as it was when every
package imported all its modules up front.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from typing import Any, Callable, Iterable, Mapping

__all__ = ["attach"]


def attach(package: str, *, attributes: Mapping[str, Iterable[str]] | None = None,
           modules: Mapping[str, str] | None = None
           ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``. ``attributes``: {module: the names it
    defines that the package offers}; ``modules``: {name: module} for modules the package offers
    under a name of their own (``clvlab.backtesting`` is :mod:`clvlab.evaluation`)."""
    where = {name: module for module, names in (attributes or {}).items() for name in names}
    modules = dict(modules or {})

    def __getattr__(name: str) -> Any:
        if name in where:
            value = getattr(importlib.import_module(where[name]), name)
        elif name in modules:
            value = importlib.import_module(modules[name])
        elif not name.startswith("__") and importlib.util.find_spec(f"{package}.{name}"):
            value = importlib.import_module(f"{package}.{name}")
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(where) | set(modules))

    return __getattr__, __dir__
