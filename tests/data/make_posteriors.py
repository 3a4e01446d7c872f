"""Write tests/data/bg-nuts-<stack>.json and its .posterior.nc with the installed stack, for
tests/test_bayes.py::test_a_posterior_saved_on_either_stack_loads_on_this_one.

    .venv/bin/python tests/data/make_posteriors.py        # Python 3.11: PyMC 5, ArviZ 0.x
    .venv-3.13/bin/python tests/data/make_posteriors.py   # Python 3.13: PyMC 6, ArviZ 1
"""

from importlib import metadata
from pathlib import Path

import clvlab
from clvlab.datasets import load_cdnow_summary

stack = (f"pymc{metadata.version('pymc').split('.')[0]}-"
         f"arviz{metadata.version('arviz').split('.')[0]}")
model = clvlab.BetaGeo(method="nuts", draws=100, tune=200, chains=2, random_seed=1,
                       progressbar=False, nuts_sampler="pymc").fit(load_cdnow_summary())
model.save(Path(__file__).parent / f"bg-nuts-{stack}.json")
print(stack, model)
