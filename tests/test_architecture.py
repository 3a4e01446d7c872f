"""The import contract: the layers of src/clvlab import one way, without cycles or private names.

Layers, lowest first (a module may import its own layer and the ones below it):

    core < data < inference < models < churn < plotting < evaluation < ops < cli

and the package's ``__init__`` (the public API) above them all. Every import counts, also those
inside functions: a lazy import is still a dependency. The check reads the source (nothing is
imported), so it also covers modules whose optional dependencies (pyspark) are absent.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
LAYERS = ("core", "data", "inference", "models", "churn", "plotting", "evaluation", "ops", "cli")
API = len(LAYERS)  # clvlab/__init__.py and clvlab/_old_paths.py: the public surface


def module_sources(root: Path = SRC) -> dict[str, str]:
    """{module name: source} of every module of the clvlab package under ``root``."""
    sources = {}
    for path in sorted((root / "clvlab").rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        sources[".".join(parts)] = path.read_text()
    return sources


def imports(sources: dict[str, str]) -> list[tuple[str, str, str | None, int]]:
    """(importer, imported module, imported name or None, line) for every clvlab import.
    ``from package import name`` imports the submodule when there is one, else the package."""
    packages = {m for m in sources if any(other.startswith(m + ".") for other in sources)}
    found = []
    for module, source in sources.items():
        package = module if module in packages else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Import):
                found += [(module, a.name, None, node.lineno) for a in node.names
                          if a.name.split(".")[0] == "clvlab"]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                if target.split(".")[0] != "clvlab":
                    continue
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    if sub in sources:
                        found.append((module, sub, None, node.lineno))
                    else:
                        found.append((module, target, alias.name, node.lineno))
    return found


def layer(module: str) -> int:
    parts = module.split(".")
    if len(parts) == 1 or parts[1] not in LAYERS:
        return API
    return LAYERS.index(parts[1])


def upward_imports(sources: dict[str, str]) -> list[str]:
    return [f"{importer}:{line} imports {target} ({LAYERS[layer(target)] if layer(target) < API else 'the API'}"
            f", above {LAYERS[layer(importer)]})"
            for importer, target, _, line in imports(sources)
            if layer(importer) < API and layer(target) > layer(importer)]


def private_imports(sources: dict[str, str]) -> list[str]:
    """Names starting with one underscore taken from another module: a module's private names
    are its own to change."""
    return [f"{importer}:{line} imports {name} from {target}"
            for importer, target, name, line in imports(sources)
            if name and name.startswith("_") and not name.startswith("__") and target != importer]


def cycles(sources: dict[str, str]) -> list[list[str]]:
    """Strongly connected groups of modules (Tarjan), each a cycle of imports."""
    graph: dict[str, set[str]] = {m: set() for m in sources}
    for importer, target, _, _ in imports(sources):
        if target in graph and target != importer:
            graph[importer].add(target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def test_every_module_is_in_a_layer():
    # clvlab.lifetimes is public surface too: lifetimes 0.11's names over the whole package
    stray = [m for m in module_sources() if layer(m) == API
             and m not in ("clvlab", "clvlab._old_paths")
             and m != "clvlab.lifetimes" and not m.startswith("clvlab.lifetimes.")]
    assert not stray, f"modules outside the layer folders: {stray}"


def test_imports_run_one_way():
    found = upward_imports(module_sources())
    assert not found, "\n".join(found)


def test_no_import_cycles():
    found = cycles(module_sources())
    assert not found, "\n".join(" <-> ".join(group) for group in found)


def test_no_private_names_cross_modules():
    found = private_imports(module_sources())
    assert not found, "\n".join(found)


def test_the_checks_catch_what_they_forbid():
    """The checks find an upward import, a cycle and a private name in a made-up package."""
    sources = {
        "clvlab": "",
        "clvlab.core": "",
        "clvlab.core.errors": "from clvlab.models.base import BaseModel\n",
        "clvlab.models": "",
        "clvlab.models.base": "from clvlab.core import errors\nfrom .fit import _helper\n",
        "clvlab.models.fit": "def f():\n    from clvlab.models import base\n",
    }
    assert upward_imports(sources) == [
        "clvlab.core.errors:1 imports clvlab.models.base (models, above core)"]
    assert cycles(sources) == [["clvlab.core.errors", "clvlab.models.base", "clvlab.models.fit"]]
    assert private_imports(sources) == ["clvlab.models.base:2 imports _helper from clvlab.models.fit"]


@pytest.mark.parametrize("old, new", [("clvlab.rfm", "clvlab.data.rfm"),
                                      ("clvlab.serving", "clvlab.ops.serving"),
                                      ("clvlab.backtesting.metrics", "clvlab.evaluation.metrics"),
                                      ("clvlab._fitting", "clvlab.inference.mle")])
def test_old_module_paths_are_the_new_modules(old, new):
    """Code and registered MLflow models that name a module's old path get the module itself."""
    import importlib

    assert importlib.import_module(old) is importlib.import_module(new)
