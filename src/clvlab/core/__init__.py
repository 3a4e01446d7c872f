"""The bottom layer: errors, time units, atomic output files, progress bars and the lazy
attributes of the packages (``lazy``).

Everything else in clvlab may import from here; nothing here imports the rest of clvlab.
"""

from clvlab.core import lazy

# its modules are found as attributes (clvlab.core.lazy), each imported when first asked for
__getattr__, __dir__ = lazy.attach(__name__)
