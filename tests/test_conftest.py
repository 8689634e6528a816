"""tests/conftest.py: the long-run switch and the xdist groups do what they say."""

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

CONFTEST = (Path(__file__).parent / "conftest.py").read_text()
TESTS = r"""
import os
import pytest

@pytest.mark.long
def test_long():
    pass

@pytest.mark.parametrize("n", [1, pytest.param(2, marks=pytest.mark.long)])
def test_sizes(n):
    pass

@pytest.mark.xdist_group("g")
@pytest.mark.parametrize("i", range(3))
def test_grouped(i, request):
    # the group decides the worker only if it is in the node id (pytest-xdist #1386)
    assert request.node.nodeid.endswith("@g") or not os.environ.get("PYTEST_XDIST_WORKER")
    with open(os.environ["GROUP_LOG"], "a") as f:
        f.write(os.environ.get("PYTEST_XDIST_WORKER", "none") + "\n")
"""


@pytest.fixture
def suite(pytester, monkeypatch):
    # when this file itself runs on an xdist worker, the inner runs must not inherit its identity
    for var in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
        monkeypatch.delenv(var, raising=False)
    pytester.makeini("[pytest]\nmarkers =\n    long: long runs\n")
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_suite=TESTS)
    return pytester


def test_long_tests_are_deselected_unless_bioloop_long(suite, monkeypatch, tmp_path):
    monkeypatch.setenv("GROUP_LOG", str(tmp_path / "log"))
    monkeypatch.delenv("BIOLOOP_LONG", raising=False)
    suite.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=4, deselected=2)
    monkeypatch.setenv("BIOLOOP_LONG", "1")
    suite.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=6)


def test_xdist_groups_share_one_worker(suite, monkeypatch, tmp_path):
    pytest.importorskip("xdist", reason="pytest-xdist is not installed")
    log = tmp_path / "log"
    monkeypatch.setenv("GROUP_LOG", str(log))
    monkeypatch.delenv("BIOLOOP_LONG", raising=False)
    r = suite.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2", "--dist", "loadgroup")
    r.assert_outcomes(passed=4)         # the workers deselect the long ones
    workers = log.read_text().split()
    assert len(workers) == 3 and len(set(workers)) == 1 and workers[0].startswith("gw"), workers


def test_heaviest_units_first_groups_kept_together():
    import conftest

    class Item:
        def __init__(self, nodeid):
            self.nodeid = nodeid

    ids = ["tests/a.py::cheap", "tests/host/test_sweep.py::one@sweep", "tests/b.py::cheap",
           "tests/gateware/test_core.py::test_core_equivalence@core", "tests/host/test_sweep.py::two@sweep"]
    items = [Item(n) for n in ids]
    conftest._heaviest_first(items)
    # the equivalence test (130 s) before the sweep group (2 x 4.5 s), the cheap singles last in their order
    assert [i.nodeid for i in items] == [ids[3], ids[1], ids[4], ids[0], ids[2]]
    # inside a unit, the tests that need the compiled Core (core_library) come first
    a, b = Item("tests/x.py::a@g"), Item("tests/x.py::b@g")
    b.fixturenames = ["core_library"]
    units = [a, b]
    conftest._heaviest_first(units)
    assert units == [b, a]
