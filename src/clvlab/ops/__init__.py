"""Operations: MLflow tracking, the served model, the batch scoring job, experiments, the demo
and the Spark jobs. Above every other layer but the command line."""

from clvlab.core import lazy

# its modules are found as attributes (clvlab.core.lazy), each imported when first asked for
__getattr__, __dir__ = lazy.attach(__name__)
