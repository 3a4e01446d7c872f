"""Estimation, independent of any one model: maximum likelihood (``mle``), Bayesian sampling
(``bayes``, on the PyMC stack that ``compat`` tells apart) and parameter uncertainty.

A model hands its likelihood, parameters and columns in; nothing here names a model.
"""
