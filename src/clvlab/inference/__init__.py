"""Estimation, independent of any one model: maximum likelihood (``mle``), Bayesian sampling
(``bayes``, on the PyMC stack that ``compat`` tells apart) and parameter uncertainty.

A model hands its likelihood, parameters and columns in; nothing here names a model.
"""

from clvlab.core import lazy

# its modules are found as attributes (clvlab.core.lazy), each imported when first asked for
__getattr__, __dir__ = lazy.attach(__name__)
