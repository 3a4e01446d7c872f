"""A Pareto/NBD fit that enters the region where its 2F1 terms need mpmath says so (issue 33's
trial: data whose dropout rates barely differ drive s and beta up together, and the fit ran
for minutes without a word)."""

import numpy as np
import pytest

import clvlab
from clvlab.models import _hyp


def test_a_fit_evaluation_that_needs_mpmath_for_many_rows_warns_once_with_the_remedy():
    rows = _hyp.SLOW_ROWS_WARN
    b = np.full(rows, 414.2)  # where the trial's fit was after a few steps
    c, z = b + 0.776, np.full(rows, 1 - 2.4e-4)
    with pytest.warns(clvlab.ClvlabWarning, match=r"penalty=0\.001\)\) or BetaGeo") as caught:
        log_f, *_ = _hyp.log_hyp2f1_1bc(b, c, z, derivatives=True)
    assert len(caught) == 1 and caught[0].filename == __file__  # the caller's line
    assert np.all(np.isfinite(log_f))


def test_a_few_slow_rows_or_predictions_do_not_warn(recwarn):
    b = np.full(_hyp.SLOW_ROWS_WARN - 1, 414.2)
    _hyp.log_hyp2f1_1bc(b, b + 0.776, np.full(b.size, 1 - 2.4e-4), derivatives=True)
    b = np.full(_hyp.SLOW_ROWS_WARN, 414.2)
    _hyp.log_hyp2f1_1bc(b, b + 0.776, np.full(b.size, 1 - 2.4e-4), derivatives=False)
    assert not [w for w in recwarn if issubclass(w.category, clvlab.ClvlabWarning)]
