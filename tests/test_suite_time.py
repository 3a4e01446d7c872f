"""The suite's own machinery (tests/suite_time.py): which tests share a worker under xdist, the
longest-first order, and the warning when the whole suite runs over its budget. Each case runs
a small suite of its own in a temporary folder (pytest's pytester, loaded by conftest.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

import suite_time

# long, and no code here differs between the two stacks: CI runs it on python3 only
pytestmark = pytest.mark.once

#: Each small suite runs in a pytest of its own: without the plugins it does not use (hypothesis's,
#: loaded by its own and by zarr's, costs about 2.5 s of a start's 3 s)
QUIET = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:zarr", "-p", "no:anyio")

SUITE = {
    "test_a.py": """
import pytest

@pytest.fixture(scope="module")
def fitted():
    return 1

def test_uses_the_module_fixture(fitted):
    assert fitted == 1

def test_on_its_own():
    pass
""",
    "test_b.py": """
import time
import pytest

@pytest.fixture(scope="session")
def spark():
    return "session"

def test_spark_one(spark):
    pass

def test_slow():
    time.sleep(0.3)

@pytest.mark.parametrize("n", [1, 2])
def test_quick(n):
    pass
""",
}


@pytest.fixture
def small_suite(pytester):
    """A folder holding SUITE and a conftest that loads suite_time from this repository."""
    pytester.makepyfile(**{name[:-3]: text for name, text in SUITE.items()})
    pytester.makeconftest(f"""
import sys
sys.path.insert(0, {str(Path(suite_time.__file__).parent)!r})
pytest_plugins = ["suite_time"]
""")
    return pytester


def _groups(pytester) -> dict[str, str | None]:
    """Each test's xdist group, from a collection in a subprocess (so suite_time's state and
    DURATIONS path are fresh)."""
    pytester.makepyfile(report_groups="""
import json, pytest

class Report:
    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items):
        marks = {i.nodeid: [m.args[0] for m in i.iter_markers("xdist_group")] for i in items}
        print("GROUPS=" + json.dumps({k: (v[0] if v else None) for k, v in marks.items()}))

if __name__ == "__main__":
    pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", "-p", "no:hypothesispytest",
                 "-p", "no:zarr", "-p", "no:anyio", "test_a.py", "test_b.py"],
                plugins=[Report()])
""")
    result = pytester.run(sys.executable, "report_groups.py")
    line = next(line for line in result.outlines if line.startswith("GROUPS="))
    return json.loads(line[len("GROUPS="):])


def test_tests_sharing_an_expensive_fixture_share_a_group(small_suite):
    groups = _groups(small_suite)
    assert groups["test_a.py::test_uses_the_module_fixture"] == "test_a.py"
    assert groups["test_a.py::test_on_its_own"] is None
    assert groups["test_b.py::test_spark_one"] == "spark"  # a session fixture named in the plugin
    assert groups["test_b.py::test_slow"] is None and groups["test_b.py::test_quick[1]"] is None


def test_a_test_id_holding_a_memory_address_stops_the_run_at_collection(pytester):
    """xdist's workers must collect the same ids: one holding a memory address (a repr such as
    '<object object at 0x7f...>' differs between processes) would abort the whole run with
    "Different tests were collected"; the plugin stops it at collection, naming the test."""
    pytester.makeconftest(f"""
import sys
sys.path.insert(0, {str(Path(suite_time.__file__).parent)!r})
pytest_plugins = ["suite_time"]
""")
    pytester.makepyfile(test_moving="""
import pytest

@pytest.mark.parametrize("f", [object()], ids=str)
def test_moving(f):
    pass
""")
    result = pytester.runpytest_subprocess(*QUIET)
    assert result.ret != 0
    result.stderr.fnmatch_lines(["*test ids hold memory addresses*"])
    assert "test_moving" in result.stderr.str()


def test_under_xdist_a_group_runs_on_one_worker_and_builds_its_fixture_once(pytester):
    """The real thing: two workers, --dist loadgroup, a module fixture used by four tests."""
    log = pytester.path / "log.txt"
    pytester.makeconftest(f"""
import sys
sys.path.insert(0, {str(Path(suite_time.__file__).parent)!r})
pytest_plugins = ["suite_time"]
""")
    pytester.makepyfile(test_shared=f"""
import os, pytest

def note(text):
    with open({str(log)!r}, "a") as out:
        out.write(text + "\\n")

@pytest.fixture(scope="module")
def built():
    note("built " + os.environ["PYTEST_XDIST_WORKER"])
    return 1

@pytest.mark.parametrize("n", range(4))
def test_shared(built, n):
    note("shared " + os.environ["PYTEST_XDIST_WORKER"])

@pytest.mark.parametrize("n", range(8))
def test_free(n):
    pass
""")
    result = pytester.runpytest_subprocess(*QUIET, "-n", "2", "--dist",
                                           "loadgroup", "--no-loadscope-reorder")
    result.assert_outcomes(passed=12)
    lines = log.read_text().split()
    built = [w for kind, w in zip(lines[::2], lines[1::2]) if kind == "built"]
    shared = {w for kind, w in zip(lines[::2], lines[1::2]) if kind == "shared"}
    assert len(built) == 1 and shared == set(built), lines


class _Item:
    def __init__(self, nodeid, group=None):
        self.nodeid, self.group = nodeid, group

    def iter_markers(self, name):
        return iter([pytest.mark.xdist_group(self.group).mark] if self.group else [])


def test_longest_groups_and_tests_start_first_and_groups_stay_whole(monkeypatch, tmp_path):
    durations = tmp_path / "durations.json"
    durations.write_text(json.dumps({"m.py::a": 1.0, "m.py::b": 1.0, "m.py::c": 5.0,
                                     "n.py::d": 0.5}))
    monkeypatch.setattr(suite_time, "DURATIONS", durations)
    items = [_Item("m.py::a", "m.py"), _Item("m.py::b", "m.py"), _Item("m.py::c"),
             _Item("n.py::d@spark", "spark"), _Item("n.py::unknown")]
    order = [i.nodeid for i in suite_time._longest_first(items)]
    # c (5 s) first; group m.py (2 s) whole and in its own order; unknown counts 1 s; d last
    assert order == ["m.py::c", "m.py::a", "m.py::b", "n.py::unknown", "n.py::d@spark"]


def test_the_whole_suite_over_budget_warns_and_names_the_slowest_tests(small_suite):
    small_suite.makeini("[pytest]\nsuite_budget_seconds = 0.01\n")
    result = small_suite.runpytest_subprocess(*QUIET)
    result.assert_outcomes(passed=6)
    text = result.stdout.str()
    assert "WARNING: the suite is over its time budget" in text
    slowest = [line for line in result.outlines if line.strip().endswith("test_b.py::test_slow")]
    assert slowest and float(slowest[0].split()[0]) >= 0.3
    # a part of the suite is not held to the whole suite's budget
    part = small_suite.runpytest_subprocess(*QUIET, "test_a.py")
    assert "over its time budget" not in part.stdout.str()
    assert "the budget is not checked (a part of the suite)" in part.stdout.str()
    # CI's split of the tests marked once between the interpreters: each half is held to it
    small_suite.makepyfile(test_c="""
import pytest

@pytest.mark.once
def test_here():
    pass

@pytest.mark.once("newest")
def test_there():
    pass
""")
    for where, ran in (("python3", "test_here"), ("newest", "test_there")):
        split = small_suite.runpytest_subprocess(*QUIET, f"--once-on={where}", "-v")
        text = split.stdout.str()
        assert "over its time budget" in text and f"(--once-on={where})" in text, text
        assert f"test_c.py::{ran} PASSED" in text
        assert ("test_there" if ran == "test_here" else "test_here") + " PASSED" not in text
        split.assert_outcomes(passed=7)
    wrong = small_suite.makepyfile(test_d="""
import pytest

@pytest.mark.once("python3.13")
def test_nowhere():
    pass
""")
    assert "once('python3.13') names no interpreter" in \
        small_suite.runpytest_subprocess(*QUIET).stderr.str()
    wrong.unlink()
    for narrowed in (["-k", "quick"], ["--deselect", "test_b.py::test_quick[1]"],
                     ["--ignore", "test_a.py"], ["-m", "not slow"]):
        selected = small_suite.runpytest_subprocess(*QUIET, *narrowed)
        assert "over its time budget" not in selected.stdout.str(), narrowed
        assert "the budget is not checked" in selected.stdout.str(), narrowed


def test_a_budget_that_is_not_a_number_stops_the_run_before_any_test(small_suite):
    small_suite.makeini("[pytest]\nsuite_budget_seconds = 10min\n")
    result = small_suite.runpytest_subprocess(*QUIET)
    assert result.ret != 0 and "suite_budget_seconds must be a number of seconds" in \
        result.stderr.str()
    assert "passed" not in result.stdout.str()


def test_within_budget_the_time_is_reported_and_durations_can_be_recorded(small_suite,
                                                                          monkeypatch):
    small_suite.makeini("[pytest]\nsuite_budget_seconds = 600\n")
    result = small_suite.runpytest_subprocess(*QUIET)
    text = result.stdout.str()
    assert "over its time budget" not in text and "budget 600 s" in text
    recorded = Path(suite_time.__file__).with_name("durations.json")
    before = recorded.read_bytes() if recorded.exists() else None
    # --record-durations writes next to the plugin: run a copy of it in the scratch folder
    small_suite.makepyfile(suite_time=Path(suite_time.__file__).read_text())
    small_suite.makeconftest('pytest_plugins = ["suite_time"]\n')
    small_suite.runpytest_subprocess(*QUIET, "--record-durations")
    written = json.loads((small_suite.path / "durations.json").read_text())
    assert written["test_b.py::test_slow"] >= 0.3 and len(written) == 6
    assert (recorded.read_bytes() if recorded.exists() else None) == before
