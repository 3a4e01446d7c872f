"""The scoring job's distribution options, from the call to the files and the MLflow run.

``clvlab score --quantiles 0.05,0.5,0.95 --interval-level 0.9 --totals-by channel`` (and
``clvlab.scoring.score(..., quantiles=..., interval_level=..., totals_by=...)``):

- the per-customer columns of :mod:`clvlab.ops.scoring_intervals` go into the scores (every
  engine scores through :func:`clvlab.ops.serving.score_frame`, which adds them);
- the totals of :mod:`clvlab.ops.scoring_totals` go to a second file beside the scores
  (:func:`~clvlab.ops.scoring_totals.totals_path`), written atomically and never over an
  existing file without ``overwrite``, and to the scoring run as the artifact
  ``totals/<name>``;
- the run's params say what was asked and how it was computed: the levels, the CLV draws and
  seed, the totals' groupings, level, parameter uncertainty and draws.

Everything is checked before any work: levels, groupings (a column that does not exist), a
totals file that exists, a model with a churn adjuster, a model without the asked-for
parameter draws.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd

from clvlab.core.atomic import atomic_output
from clvlab.core.errors import ClvlabError
from clvlab.models.totals_moments import DEFAULT_DRAWS
from clvlab.ops import scoring_intervals as intervals
from clvlab.ops import scoring_totals as totals

__all__ = ["JobDistributions", "write_totals"]


@dataclass
class JobDistributions:
    """The checked options of one scoring job, and what they need along the way."""

    quantiles: tuple[float, ...] = ()
    interval_level: float | None = None
    clv_draws: int = intervals.DEFAULT_CLV_DRAWS
    seed: int = 0
    totals: totals.TotalsSettings | None = None
    totals_file: Path | None = None
    draws: list[np.ndarray] | None = field(default=None, repr=False)
    accumulator: totals.TotalsAccumulator | None = field(default=None, repr=False)

    @classmethod
    def check(cls, output: Path, overwrite: bool, *, quantiles: Any = None,
              interval_level: Any = None, totals_by: Any = None,
              parameter_uncertainty: str = "auto", parameter_draws: Any = DEFAULT_DRAWS,
              clv_draws: Any = intervals.DEFAULT_CLV_DRAWS, seed: Any = 0) -> "JobDistributions":
        """The options checked before any work (see the module docstring)."""
        level = intervals.check_interval_level(interval_level)
        settings = totals.totals_settings(totals_by, level=level,
                                          parameter_uncertainty=parameter_uncertainty,
                                          parameter_draws=parameter_draws, seed=seed)
        job = cls(intervals.parse_quantiles(quantiles), level,
                  intervals.check_clv_draws(clv_draws), intervals.check_seed(seed), settings)
        if settings is not None:
            job.totals_file = totals.totals_path(output)
            if job.totals_file.exists() and not overwrite:
                raise ClvlabError(f"the totals output {job.totals_file} exists (totals_by writes "
                                  "the totals beside the scores); pass overwrite=True "
                                  "(--overwrite) to replace it")
        return job

    @property
    def per_customer(self) -> bool:
        return bool(self.quantiles) or self.interval_level is not None

    @property
    def group_columns(self) -> list[str]:
        """The attribute or log columns the totals' groupings read."""
        return self.totals.columns if self.totals is not None else []

    def prepare(self, model, transactions: Any, attributes: Any, amount_col: str | None,
                customer_col: str, csv_options: dict[str, Any]) -> None:
        """Checks that need the model and the data's columns; the parameter draws."""
        from clvlab.ops.scoring_inputs import available_columns

        if self.per_customer or self.totals is not None:
            what = ("quantiles, prediction intervals and totals" if self.totals is not None
                    else "quantiles and prediction intervals")
            intervals.refuse_adjuster(model.adjuster, what)
        if self.totals is None:
            return
        if self.group_columns:
            available, source = available_columns(model, transactions, attributes, amount_col,
                                                   customer_col, csv_options)
            totals.check_group_columns(self.totals, available, source)
        models = [model.transaction] + ([model.spend] if model.spend is not None else [])
        self.draws = totals.draws_for(models, self.totals)

    def predict_params(self) -> dict[str, Any]:
        """The pyfunc's distribution params for these options."""
        return {"quantiles": list(self.quantiles), "interval_level": self.interval_level,
                "clv_draws": self.clv_draws, "seed": self.seed}

    def tap(self, model, chunks: Iterator[pd.DataFrame], horizon: float,
            time_unit: str | None) -> Iterator[pd.DataFrame]:
        """The chunks, summed into the totals as they are scored (unchanged without totals)."""
        if self.totals is None:
            return chunks
        self.accumulator = totals.TotalsAccumulator(model.transaction, model.spend, horizon,
                                                    self.totals, time_unit, self.draws)
        return self.accumulator.tap(chunks)

    def run_params(self, has_spend: bool) -> dict[str, str]:
        """The scoring run's params: what was asked and the draws behind it."""
        params: dict[str, str] = {}
        if self.quantiles:
            params["quantiles"] = ",".join(f"{q:g}" for q in self.quantiles)
            if has_spend:  # the CLV quantiles are Monte Carlo: say how many futures, which seed
                params.update({"clv_quantile_draws": str(self.clv_draws),
                               "clv_quantile_seed": str(self.seed)})
        if self.interval_level is not None:
            params["interval_level"] = f"{self.interval_level:g}"
        if self.totals is not None:
            params.update(self.totals.params())
            params["totals_output"] = str(self.totals_file)
            if self.draws is not None:
                params["parameter_draws"] = str(len(self.draws[0]))
        return params

    @contextlib.contextmanager
    def written(self, table: pd.DataFrame | None, overwrite: bool,
                inputs: list) -> Iterator[Path | None]:
        """Write the totals atomically; yields a copy named as the output, for MLflow (or None
        without totals). The file is renamed into place when the block ends without error."""
        if self.totals is None or table is None:
            yield None
            return
        with atomic_output(self.totals_file, overwrite=overwrite, inputs=inputs) as tmp:
            write_totals(table, tmp, self.totals_file)
            with tempfile.TemporaryDirectory() as folder:
                named = Path(folder) / self.totals_file.name
                shutil.copyfile(tmp, named)
                yield named

    def totals_table(self) -> pd.DataFrame | None:
        return None if self.accumulator is None else self.accumulator.frame()


def write_totals(table: pd.DataFrame, path: str | Path, target: Path) -> None:
    """The totals table as CSV or Parquet (by ``target``'s suffix), with the horizon, unit and
    draws in a Parquet file's metadata."""
    if target.suffix.lower() == ".csv":
        table.to_csv(path, index=False)
        return
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    arrow = pa.Table.from_pandas(table, preserve_index=False)
    metadata = dict(arrow.schema.metadata or {})
    metadata[b"clvlab"] = json.dumps(table.attrs.get("clvlab", {}), default=str).encode()
    pq.write_table(arrow.replace_schema_metadata(metadata), path)
