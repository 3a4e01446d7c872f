"""The data layer: transaction logs to model inputs, and the rules those inputs obey.

``rfm`` is the front door (``rfm_summary``, ``read_rfm``), ``rfm_rules`` the settings and window
every engine follows, ``rfm_columns`` the one definition of each RFM column, and ``rfm_pandas``,
``rfm_duckdb`` the engines (Spark's is ``rfm_spark``). Beside them: discrete and contract
summaries, validation, privacy, simulation, the bundled datasets and the calibration view that
backtests and the churn features share. Imports only :mod:`clvlab.core`.
"""

from clvlab.core import lazy

# its modules are found as attributes (clvlab.core.lazy), each imported when first asked for
__getattr__, __dir__ = lazy.attach(__name__)
