"""Write the API reference's pages (docs/api/*.rst) from the package's ``__all__`` lists.

Called by conf.py at every build. ``clvlab.__all__`` is documented by each name's defining module
(the lazy table in src/clvlab/__init__.py says where each lives, ``clvlab.__getattr__`` finds
it); every public subpackage module by its own ``__all__``. autosummary then writes one page per
name into docs/api/generated/.
"""

import importlib
import shutil
import types
from pathlib import Path

# the pages after the top level's one, in the order of the reference's table of contents: each a
# module documented by its ``__all__`` (a package without one: its docstring and its pages below)
MODULES = [
    "clvlab.models",
    "clvlab.data",
    "clvlab.data.datasets",
    "clvlab.data.simulate",
    "clvlab.data.privacy",
    "clvlab.churn",
    "clvlab.evaluation",
    "clvlab.inference.bayes",
    "clvlab.plotting",
    "clvlab.ops",
    "clvlab.ops.tracking",
    "clvlab.ops.serving",
    "clvlab.ops.scoring",
    "clvlab.ops.experiments",
    "clvlab.ops.selection",
    "clvlab.ops.monitoring",
    "clvlab.ops.spark",
]


def _title(text, underline="="):
    return f"{text}\n{underline * len(text)}\n"


def _defining_module(name):
    """The module clvlab's lazy table imports ``clvlab.<name>`` from, or the module itself."""
    import clvlab

    value = getattr(clvlab, name)
    if isinstance(value, types.ModuleType):
        return value.__name__, True
    for module, names in _lazy_attributes().items():
        if name in names:
            return module, False
    return getattr(value, "__module__", "clvlab"), False


def _lazy_attributes():
    """The ``attributes`` table of ``clvlab.__init__`` (module -> names), read from its source."""
    import ast

    import clvlab

    tree = ast.parse(Path(clvlab.__file__).read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "attach":
            for keyword in node.keywords:
                if keyword.arg == "attributes":
                    return ast.literal_eval(keyword.value)
    raise RuntimeError("no lazy.attach(attributes=...) table in clvlab/__init__.py")


def _public_names(module_name):
    module = importlib.import_module(module_name)
    return list(getattr(module, "__all__", []))


def _top_level_names():
    """``clvlab.__all__`` sorted out: (names with a page here, names documented with their
    subpackage, (name, module) of the modules), each name qualified by its defining module."""
    import clvlab

    documented = {f"{m}.{n}" for m in MODULES for n in _public_names(m)}
    own, elsewhere, modules = [], [], []
    for name in clvlab.__all__:
        if name == "__version__":
            continue
        module, is_module = _defining_module(name)
        if is_module:
            modules.append((name, module))
        elif f"{module}.{name}" in documented:
            elsewhere.append(f"{module}.{name}")
        else:
            own.append(f"{module}.{name}")
    return own, elsewhere, modules


def documented_names():
    """Every name the reference gives a page, qualified as its page is (``clvlab.models.ParetoNBD``,
    ``clvlab.data.rfm.rfm_summary``): the top-level page's own names, then each module's
    ``__all__``, in the pages' order. tests/test_docs.py validates the docstrings of these."""
    names = list(_top_level_names()[0])
    for module_name in MODULES:
        names += [f"{module_name}.{name}" for name in _public_names(module_name)]
    return names


def is_own_member(member):
    """Whether a class's member is clvlab's (a function, method or property defined in a clvlab
    module), not one inherited from scikit-learn, pandas or ``object``: the class pages show
    these (conf.py skips the others)."""
    target = getattr(member, "__func__", member)  # a classmethod or staticmethod: its function
    target = getattr(target, "fget", target)  # a property: its getter
    return (getattr(target, "__module__", None) or "").startswith("clvlab")


def documented_members(cls):
    """The public methods and properties a class's page documents (the class template's
    ``:members:``, ``:inherited-members:`` and ``:undoc-members:``, less what conf.py skips)."""
    import inspect

    members = []
    for name in dir(cls):
        if name.startswith("_"):
            continue
        owner = next((k for k in cls.__mro__ if name in vars(k)), object)
        member = inspect.getattr_static(cls, name)
        if owner is object or not (callable(getattr(member, "__func__", member))
                                   or isinstance(member, property)):
            continue
        if is_own_member(member):
            members.append(name)
    return members


def validation_targets():
    """``(name, object)`` for every documented function and class, each class's documented
    methods and properties, and the functions and classes of a documented module (a module in
    an ``__all__``, e.g. ``clvlab.evaluation.metrics``: its autosummary page lists them): what
    numpydoc validates. Module-level constants and class attributes are left to the site's
    build, which validates their doc comments. The objects are looked up attribute by
    attribute, never by their dotted name, which can name a submodule instead (the function
    ``clvlab.plotting.time_varying_tracking`` shares its module's name)."""
    import inspect

    targets = []

    def add_class(qualified, cls):
        targets.append((qualified, cls))
        targets.extend((f"{qualified}.{member}", getattr(cls, member))
                       for member in documented_members(cls))

    for qualified in documented_names():
        module_name, _, name = qualified.rpartition(".")
        obj = getattr(importlib.import_module(module_name), name)
        if inspect.ismodule(obj):
            for member, value in vars(obj).items():
                if member.startswith("_") or getattr(value, "__module__", None) != obj.__name__:
                    continue
                if inspect.isclass(value):
                    add_class(f"{obj.__name__}.{member}", value)
                elif inspect.isfunction(value):
                    targets.append((f"{obj.__name__}.{member}", value))
        elif inspect.isclass(obj):
            add_class(qualified, obj)
        elif callable(obj):
            targets.append((qualified, obj))
    return targets


def top_level_page():
    """clvlab's own page: each public name of ``clvlab.__all__`` at its defining module."""
    import clvlab

    own, elsewhere, modules = _top_level_names()
    lines = [_title("clvlab"), "",
             "Every name of ``clvlab.__all__``, documented where it is defined: "
             "``clvlab.<name>`` is the same object (the names are imported on first use).", "",
             _title("Defined here", "-"), "",
             ".. autosummary::", "   :toctree: generated", "   :nosignatures:", ""]
    lines += [f"   {qualified}" for qualified in own]
    lines += ["", _title("Documented with their subpackage", "-"), "",
              ".. autosummary::", "   :nosignatures:", ""]
    lines += [f"   {qualified}" for qualified in elsewhere]
    lines += ["", _title("Modules", "-"), "",
              "``clvlab.<name>`` for each of these is the module on the right.", "",
              ".. list-table::", "   :header-rows: 1", "", "   * - name", "     - module"]
    for name, module in modules:
        target = f":doc:`{module}`" if module in MODULES else f":mod:`{module}`"
        lines += [f"   * - ``clvlab.{name}``", f"     - {target}"]
    lines += ["", f"``clvlab.__version__`` is the package's version ({clvlab.__version__}).", ""]
    return "\n".join(lines)


def module_page(module_name):
    names = _public_names(module_name)
    lines = [_title(module_name), "", f".. automodule:: {module_name}", "   :no-members:", ""]
    if names:
        lines += [_title("Public names", "-"), "",
                  ".. autosummary::", "   :toctree: generated", "   :nosignatures:", ""]
        lines += [f"   {name}" for name in names]  # the automodule above set the current module
    else:
        children = [m for m in MODULES if m.rpartition(".")[0] == module_name]
        lines += [_title("Modules", "-"), "", ".. toctree::", "   :maxdepth: 1", ""]
        lines += [f"   {child}" for child in children]
    return "\n".join(lines) + "\n"


def index_page():
    lines = [_title("API reference"), "",
             "Generated from the docstrings: the top-level names first, then each public "
             "subpackage module by its ``__all__``.", "",
             ".. toctree::", "   :maxdepth: 1", "", "   clvlab"]
    lines += [f"   {m}" for m in MODULES if m.count(".") == 1 or m == "clvlab.inference.bayes"]
    return "\n".join(lines) + "\n"


def write_api_pages(folder):
    folder = Path(folder)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    (folder / "index.rst").write_text(index_page())
    (folder / "clvlab.rst").write_text(top_level_page())
    for module_name in MODULES:
        (folder / f"{module_name}.rst").write_text(module_page(module_name))
