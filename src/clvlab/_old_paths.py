"""Module paths and names from before the layer folders, kept importable.

clvlab's modules were once side by side in ``clvlab/`` (``clvlab.rfm``, ``clvlab.scoring``,
``clvlab.backtesting`` ...). User code, notebooks and every MLflow model registered so far name
those paths (a served model's MLmodel file says ``loader_module: clvlab.serving``), so each old
path stays an import of the module that now holds the code: ``import clvlab.scoring`` gives
:mod:`clvlab.ops.scoring` itself, the same module object, so attributes set on one are seen on
the other. Nothing is copied and no code is kept twice. The finder answers only these names; it
comes first in ``sys.meta_path`` because the path finder would otherwise load a second copy of
``clvlab.backtesting.metrics`` from ``clvlab.evaluation``'s folder.

A few names also stay on the module where they were documented although they are defined
elsewhere (``OLD_NAMES``): the finder hands such a module to its own loader and then gives it
a module ``__getattr__`` that imports each name on first use, by whatever path the module was
imported (``from clvlab.churn import ChurnAdjustedCandidate``, ``clvlab.bayes.frequency_ppc``).
Lazily, because the module that defines a name sits above the one that publishes it, or imports
it, and because importing it up front would cost every import of the publishing module.
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

#: {module: {name: "defining.module:attribute"}}: names kept where they were documented
OLD_NAMES = {
    # The churn package sits below the backtests, so its backtest candidate lives in
    # clvlab.evaluation; the name stays where it was documented.
    "clvlab.churn": {
        "ChurnAdjustedCandidate": "clvlab.evaluation.churn_candidate:ChurnAdjustedCandidate"},
    # The posterior predictive check asks the model registry for a simulator, so it lives in
    # clvlab.models.checks, above the samplers; clvlab.bayes.frequency_ppc stays its public name.
    "clvlab.inference.bayes": {"frequency_ppc": "clvlab.models.checks:frequency_ppc"},
    # Customer bases under time-varying covariates live in their own module (it reads
    # simulate's constants), and so do engagement logs; their public names are simulate's,
    # beside the other simulators.
    "clvlab.data.simulate": {
        "pareto_nbd_time_varying": "clvlab.data.simulate_tv:pareto_nbd_time_varying",
        "bg_nbd_time_varying": "clvlab.data.simulate_tv:bg_nbd_time_varying",
        "TimeVaryingSample": "clvlab.data.simulate_tv:TimeVaryingSample",
        "engagement": "clvlab.data.simulate_events:simulate_engagement",
    },
}


class OldPathFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Resolves an old module path to the module at its new one."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname in OLD_NAMES:
            spec = self._find_elsewhere(fullname, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _Publishing(spec.loader)
            return spec
        if fullname not in OLD_PATHS:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def _find_elsewhere(self, fullname, path, target):
        # the module's own spec, from the other finders (the path finder, or a frozen
        # application's importer)
        for finder in sys.meta_path:
            if finder is not self and hasattr(finder, "find_spec"):
                spec = finder.find_spec(fullname, path, target)
                if spec is not None:
                    return spec
        return None

    def create_module(self, spec):
        return None  # a placeholder; exec_module swaps in the real module

    def exec_module(self, module):
        # The import system returns whatever sys.modules holds under the name once the loader
        # is done, so the old name ends up bound to the new module itself.
        sys.modules[module.__name__] = importlib.import_module(OLD_PATHS[module.__name__])


class _Publishing(importlib.abc.Loader):
    """A module's own loader, which then adds the module's OLD_NAMES (resolved on first use)."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        _publish(module, OLD_NAMES[module.__name__])

    def __getattr__(self, name):
        # get_source, get_filename, get_resource_reader ...: the module's own loader answers
        return getattr(self.loader, name)


def _publish(module, names: dict[str, str]) -> None:
    own_getattr = module.__dict__.get("__getattr__")  # a lazy package's own (clvlab.churn)
    own_dir = module.__dict__.get("__dir__")

    def __getattr__(name):
        if name not in names:
            if own_getattr is not None:
                return own_getattr(name)
            raise AttributeError(f"module {module.__name__!r} has no attribute {name!r}")
        source, _, attribute = names[name].partition(":")
        value = getattr(importlib.import_module(source), attribute)
        setattr(module, name, value)
        return value

    def __dir__():
        return sorted(set(own_dir() if own_dir is not None else vars(module)) | set(names))

    module.__getattr__ = __getattr__
    module.__dir__ = __dir__


def install() -> None:
    if not any(isinstance(finder, OldPathFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, OldPathFinder())
