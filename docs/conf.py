"""Sphinx configuration of clvlab's documentation site (`make docs`).

The API pages (docs/api/) and the notebooks' copies (docs/notebooks/) are written here, at every
build, from the package's ``__all__`` lists and from notebooks/: they never go stale, and neither
is kept in git. The notebooks are rendered as they are stored (without outputs), never executed.
"""

import os
import shutil
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(DOCS))
sys.path.insert(0, str(ROOT / "src"))

import api_pages  # noqa: E402  (docs/api_pages.py)

import clvlab  # noqa: E402

project = "clvlab"
copyright = "clvlab authors"
author = "clvlab authors"
release = clvlab.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.doctest",
    "numpydoc",
    "myst_nb",  # Markdown pages (myst-parser) and the notebooks
]

# -- the generated pages ------------------------------------------------------------------------
api_pages.write_api_pages(DOCS / "api")

notebooks = DOCS / "notebooks"
shutil.rmtree(notebooks, ignore_errors=True)
notebooks.mkdir()
for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
    shutil.copy2(notebook, notebooks / notebook.name)

exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints"]
templates_path = ["_templates"]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
root_doc = "index"

# -- autodoc, autosummary, numpydoc -------------------------------------------------------------
autosummary_generate = True
autosummary_imported_members = False
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "none"  # the numpydoc sections say the types
numpydoc_show_class_members = False  # the class template lists the members itself
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
# numpydoc's checks of every docstring on the site: a failure is a warning, and -W fails the
# build (tests/test_docs.py makes the same checks without building). GL08: no docstring; SS01:
# no one-line summary; SS03: a summary without its full stop; PR01: a parameter not documented;
# PR02: a documented parameter the signature lacks; RT01: no Returns section where the function
# returns something.
numpydoc_validation_checks = {"GL08", "SS01", "SS03", "PR01", "PR02", "RT01"}
# regular expressions searched in the names as the pages give them (clvlab.models.ParetoNBD.fit):
# each group says why it is left out
numpydoc_validation_exclude = {
    # not ours: numpydoc 1.11 cannot validate a property whose getter is a lambda (its search
    # for the ``def`` line raises StopIteration); tests/test_docs.py validates these two with a
    # fixed validator
    r"^clvlab\.ops\.experiments\.ExperimentRun\.(run_id|result)$",
    # not ours: numpydoc validates a class attribute's value, and None's ``__doc__`` is empty
    # (GL08), whatever the attribute's ``#:`` doc comment says
    r"^clvlab\.ops\.spark\.SparkSummary\.attribute_dtypes$",
    # not ours: autodoc documents this text constant, imported into clvlab.churn, with the
    # docstring of ``str`` itself ("str(object='') -> str ...", SS03); its ``#:`` comment is
    # where it is defined (clvlab/churn/gbm_poisson.py), which autodoc does not read for it
    r"^clvlab\.churn\.BASE_COLUMN$",
}

# -- intersphinx: off unless asked for (CLVLAB_DOCS_INTERSPHINX=1), the build works offline -----
intersphinx_mapping = {}
if os.environ.get("CLVLAB_DOCS_INTERSPHINX") == "1":
    intersphinx_mapping = {
        "python": ("https://docs.python.org/3", None),
        "numpy": ("https://numpy.org/doc/stable", None),
        "pandas": ("https://pandas.pydata.org/docs", None),
        "sklearn": ("https://scikit-learn.org/stable", None),
    }

# -- MyST and the notebooks ---------------------------------------------------------------------
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3
nb_execution_mode = "off"

# -- HTML ---------------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"clvlab {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
}
html_static_path = []


# -- checks and filters -------------------------------------------------------------------------
def _defining_module(member):
    target = getattr(member, "fget", member)  # a property: its getter
    return getattr(target, "__module__", None) or ""


def skip_foreign_members(app, what, name, member, skip, options):
    """Document a class's own and clvlab-inherited members, not scikit-learn's or pandas'."""
    if what == "class" and (callable(member) or isinstance(member, property)):
        module = _defining_module(member)
        # a builtin's method (tuple.count of a tuple subclass) has no module: not ours either
        if not module.startswith("clvlab"):
            return True
    return None


def warn_missing_docstring(app, what, name, obj, options, lines):
    """A public module, class, function or method of clvlab without a docstring fails -W."""
    if what in {"module", "class", "function", "method", "property"} and not any(
            line.strip() for line in lines):
        excluded = app.config.numpydoc_validation_excluder  # numpydoc_validation_exclude's
        if excluded is not None and excluded.search(name):
            return
        if name.startswith("clvlab") and not name.rpartition(".")[2].startswith("_"):
            from sphinx.util import logging

            logging.getLogger("clvlab.docs").warning(
                f"{name}: a public {what} without a docstring", type="clvlab",
                subtype="docstring")


def setup(app):
    app.connect("autodoc-skip-member", skip_foreign_members)
    app.connect("autodoc-process-docstring", warn_missing_docstring, priority=100)
