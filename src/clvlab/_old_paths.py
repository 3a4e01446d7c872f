"""Module paths from before the layer folders, kept importable.

clvlab's modules were once side by side in ``clvlab/`` (``clvlab.rfm``, ``clvlab.scoring``,
``clvlab.backtesting`` ...). User code, notebooks and every MLflow model registered so far name
those paths (a served model's MLmodel file says ``loader_module: clvlab.serving``), so each old
path stays an import of the module that now holds the code: ``import clvlab.scoring`` gives
:mod:`clvlab.ops.scoring` itself, the same module object, so attributes set on one are seen on
the other. Nothing is copied and no code is kept twice. The finder answers only these names; it
comes first in ``sys.meta_path`` because the path finder would otherwise load a second copy of
``clvlab.backtesting.metrics`` from ``clvlab.evaluation``'s folder.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

OLD_PATHS = {
    "clvlab.errors": "clvlab.core.errors",
    "clvlab.timeunits": "clvlab.core.timeunits",
    "clvlab._atomic": "clvlab.core.atomic",
    "clvlab._progress": "clvlab.core.progress",
    "clvlab.rfm": "clvlab.data.rfm",
    "clvlab.rfm_pandas": "clvlab.data.rfm_pandas",
    "clvlab.rfm_duckdb": "clvlab.data.rfm_duckdb",
    "clvlab.rfm_io": "clvlab.data.rfm_io",
    "clvlab.discrete": "clvlab.data.discrete",
    "clvlab.validation": "clvlab.data.validation",
    "clvlab.privacy": "clvlab.data.privacy",
    "clvlab.simulate": "clvlab.data.simulate",
    "clvlab.datasets": "clvlab.data.datasets",
    "clvlab.spark_dates": "clvlab.data.spark_dates",
    "clvlab._compat": "clvlab.inference.compat",
    "clvlab._fitting": "clvlab.inference.mle",
    "clvlab._likelihood_op": "clvlab.inference.likelihood_op",
    "clvlab.bayes": "clvlab.inference.bayes",
    "clvlab.clv": "clvlab.models.clv",
    "clvlab.customer_scores": "clvlab.models.customer_scores",
    "clvlab.cumulative": "clvlab.models.cumulative",
    "clvlab._plot_labels": "clvlab.plotting.labels",
    "clvlab.churn.candidate": "clvlab.evaluation.churn_candidate",
    "clvlab.backtesting": "clvlab.evaluation",
    "clvlab.backtesting.candidates": "clvlab.evaluation.candidates",
    "clvlab.backtesting.baselines": "clvlab.evaluation.baselines",
    "clvlab.backtesting.engine": "clvlab.evaluation.engine",
    "clvlab.backtesting.metrics": "clvlab.evaluation.metrics",
    "clvlab.backtesting.result": "clvlab.evaluation.result",
    "clvlab.backtesting._io": "clvlab.evaluation.result_io",
    "clvlab.tracking": "clvlab.ops.tracking",
    "clvlab.serving": "clvlab.ops.serving",
    "clvlab.scoring": "clvlab.ops.scoring",
    "clvlab.experiments": "clvlab.ops.experiments",
    "clvlab.demo": "clvlab.ops.demo",
    "clvlab.spark": "clvlab.ops.spark",
    "clvlab.cli_tracking": "clvlab.cli.tracking",
}


class OldPathFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Resolves an old module path to the module at its new one."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in OLD_PATHS:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        return None  # a placeholder; exec_module swaps in the real module

    def exec_module(self, module):
        # The import system returns whatever sys.modules holds under the name once the loader
        # is done, so the old name ends up bound to the new module itself.
        sys.modules[module.__name__] = importlib.import_module(OLD_PATHS[module.__name__])


def install() -> None:
    if not any(isinstance(finder, OldPathFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, OldPathFinder())
