"""Coverage of the totals' intervals over repeated simulations that include parameter
uncertainty: simulate a base from known parameters, fit it, take the 90 % interval of each
group's holdout total, and count how often it holds the simulated holdout total.

With parameter draws the intervals cover at their level, for a small group (exact
distribution given the parameters) and a large one (normal). Without them (process noise
only, the parameters taken as known) the large group's interval under-covers: the
estimation error of the parameters moves every customer's expectation together, and for
1,800 customers it is a large part of the total's uncertainty."""

from __future__ import annotations

import numpy as np
import pytest

from clvlab import ParetoNBD
from clvlab.data import simulate
from clvlab.models.totals import purchase_totals

TRUTH = dict(r=0.55, alpha=10.6, s=0.61, beta=11.7)  # CDNOW's Pareto/NBD estimates
REPLICATIONS = 100
CUSTOMERS = 2_000
SMALL = 200  # the first 200 customers: a group under EXACT_MAX_CUSTOMERS
HOLDOUT = 26.0


def _base(seed: int):
    """A simulated base in weeks, durations rounded to days as a log's summary has them."""
    ages = np.random.default_rng(seed).uniform(26, 52, CUSTOMERS)
    table = simulate.pareto_nbd(CUSTOMERS, T=ages, T_holdout=HOLDOUT, seed=10_000 + seed, **TRUTH)
    days = np.where(table["frequency"] > 0, np.maximum(np.round(table["recency"] * 7), 1), 0)
    table = table.assign(recency=days / 7, T=np.round(table["T"] * 7) / 7)
    table.attrs = {"clvlab": {"time_unit": "W"}}
    return table


@pytest.mark.once("newest")  # an even split of CI's time between the interpreters
@pytest.mark.slow
def test_intervals_cover_with_parameter_draws_and_not_without():
    groups = np.where(np.arange(CUSTOMERS) < SMALL, "small", "large")
    inside = {(g, draws): [] for g in ("small", "large") for draws in (True, False)}
    for replication in range(REPLICATIONS):
        table = _base(replication)
        model = ParetoNBD().fit(table[["frequency", "recency", "T"]])
        actual = table.groupby(groups)["frequency_holdout"].sum()
        for with_draws in (True, False):
            totals = purchase_totals(model, table, HOLDOUT, by=groups, level=0.9,
                                     parameter_draws=15 if with_draws else 0, seed=replication)
            for group in ("small", "large"):
                low, high = totals.loc[group, ["lower 90%", "upper 90%"]]
                inside[group, with_draws].append(low <= actual[group] <= high)
        assert totals.loc["small", "distribution"] == "exact"
        assert totals.loc["large", "distribution"] == "normal"
    coverage = {key: float(np.mean(values)) for key, values in inside.items()}
    print(f"\n90 % intervals of the {HOLDOUT:g}-week holdout total over {REPLICATIONS} simulated "
          f"bases of {CUSTOMERS:,} Pareto/NBD customers:", coverage)
    # binomial sd of a coverage over 100 replications: 3 %
    assert 0.83 <= coverage["small", True] <= 0.98
    assert 0.83 <= coverage["large", True] <= 0.97
    assert coverage["large", False] <= 0.8  # process noise alone: far below 90 %
    assert coverage["large", True] - coverage["large", False] >= 0.1
