"""How the suite spends its time: both cores, expensive fixtures built once, and a budget.

A pytest plugin (loaded by conftest.py) with three jobs:

1. **Groups for pytest-xdist.** `make test` runs the suite on every core with
   ``--dist loadgroup``: tests go to workers one by one, except tests that share an expensive
   fixture, which go to one worker together so that the fixture is built once. A test that uses
   a fixture of its module's scope (fitted models, simulated bases, MLflow runs) is grouped with
   its module; a test that uses one of ``SHARED_SESSION_FIXTURES`` (a Spark session: a JVM and
   seconds of start-up) is grouped with every other test that uses it, whatever its module; an
   ``xdist_group`` mark names a group explicitly. xdist's own loadgroup sends the group to its
   scheduler as a suffix of the test's id, which pytest 9.2 silently ignores (pytest-xdist
   issue 1386: every test then goes anywhere), so this plugin passes the groups itself: each
   worker writes them to a file in a folder the controller names (``pytest_configure_node``),
   and the controller's scheduler (``GroupScheduling``) reads them when it plans the run.
2. **Longest first.** In an xdist worker the tests are reordered so that the longest groups and
   tests start first (the classic longest-processing-time rule), from the durations measured on
   the CI machine kind in ``tests/durations.json``; a test not listed there counts as
   ``UNKNOWN_SECONDS``. Within a group the collection order (and pytest's ordering of
   parametrised fixtures) is kept. Without xdist the order is pytest's own.
3. **A budget.** When the whole suite runs (no paths, nothing deselected or ignored), a run
   longer than ``suite_budget_seconds`` (pyproject.toml; docs/development.md) ends with a
   warning that names the slowest tests; a partial run says that the budget was not checked.
   ``--record-durations`` rewrites ``tests/durations.json`` from a whole run, or updates the
   tests of a partial one.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import time
from pathlib import Path

import pytest

try:
    from xdist.scheduler import LoadScopeScheduling
except ImportError:  # without xdist the suite runs in one process and needs no scheduler
    LoadScopeScheduling = None

DURATIONS = Path(__file__).with_name("durations.json")
#: Session fixtures costly enough that all their tests share one worker (group name).
SHARED_SESSION_FIXTURES = {"spark": "spark"}
#: Seconds assumed for a test that tests/durations.json does not list (most tests take less).
UNKNOWN_SECONDS = 1.0
#: Slowest tests named in the over-budget warning.
SLOWEST_SHOWN = 15
#: The first line of the over-budget warning (.ci/run looks for it).
OVER_BUDGET = "WARNING: the suite is over its time budget"
#: Where a test marked ``once`` runs in CI (.ci/run's ``--once-on``): long tests that run no
#: code that differs between the two stacks run on one interpreter, ``python3`` unless the mark
#: names ``"newest"`` (``@pytest.mark.once("newest")``: some go there to even the two runs'
#: time). A run with ``--once-on`` is held to the budget as a whole run is; its durations
#: update the file as a part's do. Without it every test runs.
ONCE_TARGETS = ("python3", "newest")
#: The key of the groups' folder in each worker's input.
GROUPS_KEY = "clvlab_groups_folder"


def pytest_addoption(parser):
    parser.addini("suite_budget_seconds",
                  "wall-clock budget of the whole suite on the CI machine kind (per interpreter)",
                  default="0")
    parser.addoption("--once-on", choices=ONCE_TARGETS, default=None,
                     help="run only the tests marked once that belong to this interpreter "
                          "(CI's split; default: all of them)")
    parser.addoption("--record-durations", action="store_true", default=False,
                     help="write each test's duration (setup + call + teardown) to "
                          "tests/durations.json, for the longest-first order under xdist")


def _plain_id(nodeid: str) -> str:
    """The test's id without the ``@group`` suffix that xdist adds under --dist loadgroup (after
    the parameters' closing bracket, if any: an ``@`` inside them is part of the id)."""
    head, at, tail = nodeid.rpartition("@")
    return head if at and "]" not in tail and "::" not in tail else nodeid


def group_of(item) -> str | None:
    """The xdist group a test belongs to, or None when it may run anywhere on its own."""
    definitions = getattr(item, "_fixtureinfo", None)
    if definitions is None:
        return None
    module_scoped = False
    for name in item.fixturenames:
        if name in SHARED_SESSION_FIXTURES:
            return SHARED_SESSION_FIXTURES[name]
        for fixturedef in definitions.name2fixturedefs.get(name, ()):
            if fixturedef.scope in ("module", "class", "package"):
                module_scoped = True
    return item.nodeid.split("::", 1)[0] if module_scoped else None


def _marked_group(item) -> str | None:
    marks = [m.args[0] if m.args else m.kwargs.get("name", "default")
             for m in item.iter_markers("xdist_group")]
    return str(marks[0]) if marks else None


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    # xdist's workers must collect the same ids: a repr with a memory address in a parametrised
    # id differs between processes, and xdist then stops with "Different tests were collected"
    moving = [item.nodeid for item in items if re.search(r" at 0x[0-9a-fA-F]{6,}", item.nodeid)]
    if moving:
        raise pytest.UsageError("test ids hold memory addresses, which differ between xdist's "
                                f"workers (give parametrize ids=): {moving[:5]}")
    _split_once(config, items)
    # tryfirst: the marks are there before xdist's own hook reads them (older pytest)
    groups = {}
    for item in items:
        group = _marked_group(item)
        if group is None:
            group = group_of(item)
            if group is not None:
                item.add_marker(pytest.mark.xdist_group(group))
        if group is not None:
            groups[item.nodeid] = group
    folder = getattr(config, "workerinput", {}).get(GROUPS_KEY)
    if folder:  # for the controller's scheduler, before this worker reports its collection
        target = Path(folder) / f"{config.workerinput['workerid']}.json"
        partial = target.with_suffix(".partial")
        partial.write_text(json.dumps(groups))
        partial.replace(target)


def once_target(item) -> str | None:
    """The interpreter a test marked ``once`` runs on in CI, or None for a test that runs on
    both."""
    mark = item.get_closest_marker("once")
    if mark is None:
        return None
    target = mark.args[0] if mark.args else "python3"
    if target not in ONCE_TARGETS:
        raise pytest.UsageError(f"{item.nodeid}: once({target!r}) names no interpreter; "
                                f"one of {ONCE_TARGETS}")
    return target


def _split_once(config, items) -> None:
    """With ``--once-on``: deselect the tests marked ``once`` for the other interpreter (the
    same in every xdist worker: it depends on the marks alone)."""
    where = config.getoption("once_on", None)
    kept, dropped = [], []
    for item in items:
        target = once_target(item)  # checked on every run, so a bad mark fails locally too
        (dropped if where is not None and target not in (None, where) else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


class GroupScheduling(LoadScopeScheduling if LoadScopeScheduling else object):
    """xdist's scope scheduling with the groups the workers wrote: a grouped test's scope is
    its group, any other test is a scope of its own. The work queue keeps the collection order
    (longest first, set by the workers; --no-loadscope-reorder)."""

    def __init__(self, config, log=None, folder: Path | None = None):
        super().__init__(config, log)
        self.folder = folder
        self.groups: dict[str, str] | None = None

    def _split_scope(self, nodeid: str) -> str:
        if self.groups is None:  # every worker wrote the same groups before it reported
            files = sorted(self.folder.glob("*.json")) if self.folder else []
            self.groups = json.loads(files[0].read_text()) if files else {}
        group = self.groups.get(_plain_id(nodeid))
        return f"group:{group}" if group is not None else nodeid


class _Controller:
    """The xdist controller's part: a folder for the workers' groups, and the scheduler."""

    def __init__(self):
        self.folder = Path(tempfile.mkdtemp(prefix="clvlab-xdist-groups-"))

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node):
        node.workerinput[GROUPS_KEY] = str(self.folder)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_make_scheduler(self, config, log):
        if config.getvalue("dist") == "loadgroup" and LoadScopeScheduling is not None:
            # the workers' longest-first order, not xdist's largest-group-first
            config.option.loadscopereorder = False
            return GroupScheduling(config, log, self.folder)
        return None

    def pytest_unconfigure(self, config):
        shutil.rmtree(self.folder, ignore_errors=True)


def _expected_seconds() -> dict[str, float]:
    try:
        return json.loads(DURATIONS.read_text())
    except FileNotFoundError:
        return {}


def _longest_first(items) -> list:
    """Items reordered group by group, the longest (summed expected seconds) first; stable, so
    a group keeps its internal order. Every worker computes the same order from the same file,
    as xdist requires."""
    expected = _expected_seconds()
    units: dict[str, list] = {}
    for item in items:
        group = _marked_group(item)
        key = f"group:{group}" if group is not None else f"test:{item.nodeid}"
        units.setdefault(key, []).append(item)
    cost = {key: sum(expected.get(_plain_id(i.nodeid), UNKNOWN_SECONDS) for i in members)
            for key, members in units.items()}
    order = sorted(units, key=lambda key: -cost[key])  # stable: ties keep collection order
    return [item for key in order for item in units[key]]


class _Reorder:
    """Runs after pytest's own ordering of parametrised fixtures (trylast)."""

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, config, items):
        if _is_xdist_worker(config):
            items[:] = _longest_first(items)


class _Clock:
    """Per-test durations and the session's wall time, in the process that reports (the xdist
    controller, or the only process)."""

    def __init__(self, config):
        self.config = config
        self.started = time.monotonic()
        self.seconds: dict[str, float] = {}
        self.deselected = 0

    def pytest_runtest_logreport(self, report):
        key = _plain_id(report.nodeid)
        self.seconds[key] = self.seconds.get(key, 0.0) + report.duration

    def pytest_deselected(self, items):
        self.deselected += len(items)

    def whole_suite(self, *, ci_split: bool = False) -> bool:
        """Whether this run is the whole suite: no paths but the configured test paths (or, where
        none are configured, the root folder), nothing deselected (-k, -m, --deselect, --lf,
        --sw), nothing ignored, not --collect-only. ``ci_split``: a run with ``--once-on``
        and nothing else narrowed counts as whole too."""
        option = self.config.option
        if ci_split and getattr(option, "once_on", None) and not option.markexpr:
            return self._whole_but_marks()  # its deselections are the split's
        return (not self.deselected and not option.markexpr and self._whole_but_marks())

    def _whole_but_marks(self) -> bool:
        """The whole suite's paths, no -k, --deselect or ignored paths, not --collect-only."""
        option, here = self.config.option, self.config.invocation_params.dir
        given = {(here / a).resolve() for a in self.config.args}
        testpaths = self.config.getini("testpaths")
        whole = {(self.config.rootpath / p).resolve() for p in testpaths} if testpaths \
            else {self.config.rootpath.resolve()}
        return (given in (whole, set()) and not option.keyword and not option.collectonly
                and not getattr(option, "ignore", None) and not getattr(option, "ignore_glob", None)
                and not getattr(option, "deselect", None))

    def pytest_terminal_summary(self, terminalreporter, exitstatus):
        wall = time.monotonic() - self.started
        whole = self.whole_suite()
        if self.config.getoption("record_durations"):
            measured = {k: round(v, 2) for k, v in self.seconds.items()}
            # a whole run replaces the file (renamed and deleted tests leave it); a part of the
            # suite updates its own tests and keeps the rest
            written = measured if whole else {**_expected_seconds(), **measured}
            partial = DURATIONS.with_suffix(".partial")
            partial.write_text(json.dumps(dict(sorted(written.items())), indent=0) + "\n")
            partial.replace(DURATIONS)
            terminalreporter.write_line(f"suite time: wrote {len(measured)} durations to "
                                        f"{DURATIONS} ({len(written)} in all)")
        budget = _budget(self.config)
        if budget <= 0 or self.config.option.collectonly:
            return
        if not self.whole_suite(ci_split=True):
            terminalreporter.write_line(f"suite time: {wall:,.0f} s; the budget is not checked "
                                        "(a part of the suite)")
            return
        workers = getattr(self.config.option, "numprocesses", None) or 1
        scope = "" if whole else f" (--once-on={self.config.option.once_on})"
        line = (f"suite time: {wall:,.0f} s for {len(self.seconds)} tests{scope} on {workers} "
                f"worker(s); budget {budget:,.0f} s (suite_budget_seconds)")
        if wall <= budget:
            terminalreporter.write_line(line)
            return
        terminalreporter.write_sep("=", OVER_BUDGET, yellow=True, bold=True)
        terminalreporter.write_line(line, yellow=True)
        terminalreporter.write_line(
            "See docs/development.md, \"The suite's time, and its budget\". The slowest tests "
            "(setup + call + teardown; a module fixture's setup counts in its first test):",
            yellow=True)
        slowest = sorted(self.seconds.items(), key=lambda kv: -kv[1])[:SLOWEST_SHOWN]
        for nodeid, seconds in slowest:
            terminalreporter.write_line(f"  {seconds:8.1f} s  {nodeid}", yellow=True)


def _budget(config) -> float:
    value = config.getini("suite_budget_seconds") or "0"
    try:
        return float(value)
    except ValueError:
        raise pytest.UsageError(f"suite_budget_seconds must be a number of seconds, got "
                                f"{value!r}") from None


def _is_xdist_worker(config) -> bool:
    # xdist gives its workers' configs their input; an environment variable would also be seen
    # by a pytest that a worker's test starts in a subprocess
    return hasattr(config, "workerinput")


def pytest_configure(config):
    # xdist registers this marker too; without xdist (-p no:xdist) --strict-markers needs it here
    config.addinivalue_line("markers", "xdist_group(name): tests that run on one xdist worker")
    _budget(config)  # a bad value stops the run before any test, not after all of them
    config.pluginmanager.register(_Reorder(), "clvlab-suite-reorder")
    if not _is_xdist_worker(config):
        config.pluginmanager.register(_Clock(config), "clvlab-suite-clock")
        if getattr(config.option, "numprocesses", None):
            config.pluginmanager.register(_Controller(), "clvlab-suite-controller")
