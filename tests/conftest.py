"""The test suite's switches, in one place.

Long runs
    ``BIOLOOP_LONG=1`` (``make test-long``) is read here and nowhere else.
    A test (or a parameter set, ``pytest.param(..., marks=pytest.mark.long)``)
    marked ``long`` is deselected unless it is set, so ``make test`` stays
    within its 10-minute budget and the long run adds the bigger sizes.
    Hypothesis examples come from a profile loaded here: ``bioloop``
    (150 examples, derandomized, so CI sees the same cases every run) or
    ``bioloop-long`` (2000, random). A test that needs a different count
    parametrizes it with a ``long``-marked larger value.

amaranth's UnusedElaboratable warning
    Components built only to check that elaboration rejects bad parameters
    are never elaborated; the warning is filtered here, only where amaranth
    is installed (the board profile has none, and an unknown warning
    category in pyproject.toml would stop pytest).

Grouping for ``--dist loadgroup``
    Tests that share a Verilator build (``sim.runner`` keys a build directory
    by design, parameters and xdist worker) or a heavy module fixture carry
    ``pytest.mark.xdist_group(name)``, so one worker builds once and runs
    them all; ungrouped tests are spread freely. pytest-xdist 3.8 tells the
    scheduler a test's group by appending ``@group`` to its node id, which
    pytest 9.2's structured node ids ignore (pytest-xdist issue #1386, fix
    pending in PR #1388): :func:`_group_node_ids` appends it itself until
    then, and stays idle once xdist does.
"""

from __future__ import annotations

import importlib.util
import os

import pytest

#: True under ``BIOLOOP_LONG=1``.
LONG = os.environ.get("BIOLOOP_LONG") == "1"

try:
    from hypothesis import HealthCheck, settings
except ImportError:  # pragma: no cover - hypothesis is in the dev extra
    settings = None

if settings is not None:
    _common = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])
    settings.register_profile("bioloop", max_examples=150, derandomize=True, **_common)
    settings.register_profile("bioloop-long", max_examples=2000, **_common)
    settings.load_profile("bioloop-long" if LONG else "bioloop")


def pytest_configure(config):
    if importlib.util.find_spec("amaranth") is not None:
        config.addinivalue_line("filterwarnings", "ignore::amaranth.hdl.UnusedElaboratable")


def pytest_report_header(config):
    return (f"bioloop: long runs {'on' if LONG else 'off'} (BIOLOOP_LONG="
            f"{os.environ.get('BIOLOOP_LONG', '')!r}); tests marked 'long' "
            f"{'run' if LONG else 'are deselected'}")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    if not LONG:
        keep, drop = [], []
        for item in items:
            (drop if item.get_closest_marker("long") else keep).append(item)
        if drop:
            config.hook.pytest_deselected(items=drop)
            items[:] = keep
    if getattr(config.option, "loadgroup", False):   # set on xdist workers under --dist loadgroup
        _group_node_ids(items)


def _group_node_ids(items):
    """Append ``@group`` to the node id of every ``xdist_group`` test that lacks it."""
    for item in items:
        groups = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                         for m in item.iter_markers("xdist_group")})
        nodeid = item.nodeid
        if not groups or nodeid.rfind("@") > nodeid.rfind("]"):
            continue
        from _pytest.nodeid import NodeId   # pytest >= 9.2: the id is structured
        item._id = NodeId.parse(f"{nodeid}@{'_'.join(groups)}")


@pytest.fixture(scope="session")
def core_library():
    """The compiled Verilator Core (N, K, F) = (64, 64, 16), built once per session and cached on disk.

    Skips only when an optional build tool is missing (the message names it); a failed build fails.
    """
    from bioloop.sim.verilated_core import ToolchainMissing, build_core_library
    try:
        return build_core_library(64, 64, 16)
    except ToolchainMissing as exc:
        pytest.skip(f"missing optional tool for the compiled Verilator backend: {exc}")
