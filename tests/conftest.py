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

Grouping and order for ``--dist loadgroup``
    Tests that share a Verilator build (``sim.runner`` builds each distinct
    design once, under a file lock, whichever worker asks first) or a heavy
    module fixture carry ``pytest.mark.xdist_group(name)``, so one worker
    builds once and runs them all; a tests/gateware module's tests without
    one share a group named after the module. The units of work (a group, or
    a single test) are handed out heaviest first (``COST``, estimated CPU
    seconds), so no heavy unit starts last. ``BIOLOOP_TEST_CPU=<file>`` logs
    each test's CPU seconds (what it costs on an idle core) to refresh ``COST``.
    pytest-xdist 3.8 tells the scheduler a test's group by appending ``@group``
    to its node id, which pytest 9.2's structured node ids ignore (pytest-xdist issue #1386, fix
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
    if hasattr(config.option, "loadscopereorder"):
        # The controller keeps the workers' order (heaviest first, _heaviest_first) instead of
        # sorting the units by their number of tests.
        config.option.loadscopereorder = False


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
        _group_gateware_modules(items)
        _group_node_ids(items)
        _heaviest_first(items)


#: Modules whose tests need the same build as an existing group: the compiled 64x64x16 Core
#: (``core_library``, also built by test_core's equivalence test) and the 8x4x2 cocotb Core.
MODULE_GROUPS = {
    "test_verilator_bus": "core_n64_k64_f16",
    "test_regmap_reset": "core_n64_k64_f16",
    "test_hil_quiet": "core_n8_k4_f2",
}


def _group_gateware_modules(items):
    """A tests/gateware module's tests without an ``xdist_group`` share one, named after the module.

    Its benches mostly simulate the same designs: on one worker, a design is built once while
    the other worker does other work (on two, one would wait for the other's build).
    """
    for item in items:
        path = item.nodeid.split("::", 1)[0]
        if path.startswith("tests/gateware/") and item.get_closest_marker("xdist_group") is None:
            module = path.rsplit("/", 1)[1].removesuffix(".py")
            item.add_marker(pytest.mark.xdist_group(MODULE_GROUPS.get(module, module)))


#: CPU seconds of the costly tests (node id prefix -> seconds; the longest prefix wins), from the
#: ``BIOLOOP_TEST_CPU`` log of a cold run (2026-11-29, 762 CPU s in all); everything else counts 0.5 s. Only the order of
#: the work units (an ``xdist_group`` or a single test) depends on it, never what runs.
COST = {
    "tests/gateware/test_core.py::test_core_equivalence": 130.0,
    "tests/gateware/test_core.py::test_bus_timing": 26.0,       # the 8x4x2 cocotb build
    "tests/gateware/test_core.py": 8.0,
    "tests/gateware/test_verilator_bus.py": 10.0,               # the compiled build comes first
    "tests/gateware/test_regmap_reset.py": 2.0,
    "tests/gateware/test_hil_quiet.py": 4.0,
    "tests/gateware/test_proofs.py": 5.0,
    "tests/gateware/test_formal.py": 2.0,
    "tests/gateware/test_aer_path.py::test_aer_path": 4.5,
    "tests/gateware/test_aer_router.py::test_router": 5.0,
    "tests/gateware/test_aer_encoder.py::test_encoder": 5.0,
    "tests/gateware/test_aer_merge.py::test_aer_merge": 3.0,
    "tests/gateware/test_detector.py::test_detector": 4.0,
    "tests/gateware/test_csr.py::test_csr_bank": 9.5,
    "tests/gateware/test_stochastic_lanes.py::test_lanes_bench": 8.5,
    "tests/gateware/test_safety.py::test_safety_bench": 6.5,
    "tests/gateware/test_homeostasis.py::test_homeostasis_bench": 5.5,
    "tests/gateware/test_stim_unit.py::test_stim_unit_bench": 6.0,
    "tests/gateware/test_stim_path.py::test_stim_path_bench": 9.0,
    "tests/gateware/test_hdl.py::test_hdl_is_current": 10.0,
    "tests/host/test_sweep.py": 4.5,
    "tests/host/test_loop.py": 1.0,
    "tests/sim/test_benches.py::test_bench_runs_at_a_tiny_size": 3.0,
    "tests/boards/test_estimate.py": 3.0,
    "tests/host/test_jit.py": 1.5,
}


def _cost(nodeid: str) -> float:
    best, cost = -1, 0.5
    for prefix, seconds in COST.items():
        if nodeid.startswith(prefix) and len(prefix) > best:
            best, cost = len(prefix), seconds
    return cost


def _heaviest_first(items):
    """Order the work units heaviest first (LPT), keeping each unit's tests in their order.

    ``--dist loadgroup`` hands a worker one unit (a group, or a single test) at a time, in
    collection order (tests/conftest.py turns xdist's by-size reordering off): a heavy unit
    handed out last leaves the other worker idle at the end.
    """
    units: dict[str, list] = {}
    for item in items:
        nodeid = item.nodeid
        key = nodeid[nodeid.rfind("@") + 1:] if nodeid.rfind("@") > nodeid.rfind("]") else nodeid
        units.setdefault(key, []).append(item)
    order = sorted(units.values(), key=lambda unit: -sum(_cost(i.nodeid) for i in unit))
    # Inside a unit the users of the compiled Core (core_library) go first: its build then starts
    # at the beginning of the run, before another unit's test waits for it on its file lock.
    items[:] = [item for unit in order
                for item in sorted(unit, key=lambda i: "core_library" not in getattr(i, "fixturenames", ()))]


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


#: ``BIOLOOP_TEST_CPU=<file>``: append one line per test, ``<cpu s> <wall s> <node id>``, where
#: cpu is the process's and its waited-for children's (builds, simulators) user + system time:
#: what a test costs on an idle core, readable even on a loaded machine.
_CPU_LOG = os.environ.get("BIOLOOP_TEST_CPU")


def _cpu_s() -> float:
    import resource
    a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


if _CPU_LOG:
    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(item, nextitem):
        import time
        c0, t0 = _cpu_s(), time.perf_counter()
        yield
        with open(_CPU_LOG, "a") as f:
            f.write(f"{_cpu_s() - c0:.2f} {time.perf_counter() - t0:.2f} {item.nodeid}\n")


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
