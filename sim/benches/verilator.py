"""Benchmark the compiled Verilator backend beside model and cocotb -> docs/bench/verilator.md."""
import os
import statistics
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np

from bioloop.gateware.layouts import FCLK_HZ
from bioloop.host.backends import ModelBus
from bioloop.host.driver import Driver
from bioloop.sim.core_bench import culture_frames, loop_session, measure_latency_compiled
from bioloop.sim.hil import run_with_cocotb
from bioloop.sim.measure import DOCS_BENCH, machine, markdown_table
from bioloop.sim.verilated_core import build_core_library
from bioloop.sim.verilator_bus import VerilatorBus

CORE = (64, 64, 16)
REPEATS = 5
#: culture seconds of the demo runs (as `bioloop demo --duration 10`)
DEMO_S = 10.0
#: set by main(smoke=True): tiny sizes that only check the bench runs
SMOKE = False


#: What was tried for issue 13's speed on 2026-11-29 and what each step measured (by hand, on this
#: machine shared with other jobs; "no PGO" builds compared in one process, interleaved).
TRIED = """### What made it faster, and what did not (issue 13, 2026-11-29)

Measured one lever at a time on the shared 2-CPU machine (load average 2-7, so single figures vary
by 10-15 %): compiled-core rates are thread CPU time on 20,000 culture frames pushed in one call,
libraries built without PGO and timed interleaved in one process (median of 7-9); culture figures
are thread CPU time of the same states, min of 9. Every change kept gives the same bytes as before
(AER words, LED counts; culture codes, voltages, spikes and state).

- **Less Verilog per cycle** (gateware, Verilog size only, cycle-exact). `perf` put most of the
  library's time in Verilator's `nba_sequent` (all of the core's clocked logic, evaluated every
  cycle); Homeostasis' θ tags (an `Array` of K 2-bit signals, read at three indices and written
  at two, exported as one `case` arm per lane and per port) were the largest part after the
  AEREncoder, then the StochasticLanes' per-lane bit write. Both are now K-bit vectors written
  with masks (`gateware/lane_vector.py`): `hdl/core.v` 27,952 -> 17,348 lines, 1.89 M -> 2.39 M
  cycles per CPU s; with issue 14's queue AEREncoder, 2.45 M -> 3.10 M. Yosys (`StimPath(64)`
  alone, `synth_xilinx`): Homeostasis 890 -> 868 LUTs, StochasticLanes 150 -> 148, flip-flops
  unchanged. Dropped: the same mask for the StimUnit's pulse envelopes (+90 to +110 LUTs, as
  Yosys no longer maps the per-lane write to flip-flop enables, and no measurable gain); a
  decoder of K compares (slower in Verilator); one shift by the whole index (+41 to +49 LUTs);
  a per-bit `If` (2.5x the Verilog, slower).
- **The shim** (`sim/harness/core_shim.cpp`): an edge evaluates the model's root directly (the
  model's `eval()` adds per-call bookkeeping for threads, DPI and deleted objects, about a tenth
  of the library's time), the falling edge is not evaluated (nothing in the design is on it), and
  LED cycles are counted bit-sliced: 3.56 M -> 3.97 M cycles per CPU s (+11 %), +16 % with 37 %
  of the LEDs lit.
- **Compiler and Verilator flags** (3.33 M without them in the same run): `-O3` 3.56 M,
  `-march=native` 3.67 M, `--x-assign fast` 3.42 M, all within the machine's noise and not
  adopted; `-fno-dfg` 2.81 M (slower); `--inline-mult 0` and `--output-split 0` generate the same
  code. A copy of `core.v` flattened and optimised by Yosys (`proc; flatten; opt -full; wreduce`)
  ran slower (3.03 M against 3.58 M). gcc's profile-guided build: 1.07-1.10x over none with its
  synthetic training traffic, 1.13-1.18x with the closed loop itself as the training run (now
  the default; 4.17 M without PGO, 4.59 M synthetic, 4.93 M loop-trained, same run).
- **The culture** (`host/culture/`): the Izhikevich kernel takes a sample in passes over the
  neurons (inputs, membrane, spikes) so that numba vectorises the branch-free ones, without an
  integer division per synapse, with the photocurrent added lane by lane instead of a
  variable-length loop per neuron: 0.158 -> 0.098 s per culture s in the dark, 0.325 -> 0.153
  with 30 % PDM light on every lane (a dense per-slot photocurrent, vectorised over the neurons,
  was not faster than the lane-by-lane one). `Culture.step` no longer rebuilds the MEA layout
  per step.
- **The whole loop** before and after (the session's start, 9dbb9a6, against main at bb089eb,
  each with its own library; alternating processes, 3 rounds of 2 runs of 1.2 culture s,
  load average 1.9-2.2): `run_loop`'s defaults 1.18-1.24 -> 1.47-2.46 culture s per wall s
  (median 1.21 -> 2.30), the demo's experiment 1.03-1.09 -> 1.47-1.91 (median 1.06 -> 1.85);
  core cycles through the loop 1.40 M -> 2.64 M and 1.24 M -> 2.13 M per wall s (medians). The
  same comparison at a load average of 3.6-4.2, before the last culture and PGO changes, gave
  1.6-1.7x in CPU time.
- **Left**: the core's C calls are about half of the loop's CPU time and the culture about a
  third (above). `nba_sequent` is now spread over every block (`perf`, 2026-11-29: the CSR bank
  about a fifth, Homeostasis a tenth, the StimUnit, the Detector, Safety, the AEREncoder and the
  router 5-8 % each), and the culture's electrode noise (numpy's normal generator, about 0.04 s
  per culture s) cannot change without changing the culture's bytes.
"""


def spread(values, fmt="{:,.0f}"):
    """median (min..max) of repeated measurements."""
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}..{fmt.format(max(values))})"


def build_rows():
    if SMOKE:                                  # a cold build takes CPU-minutes: only the real bench
        cold = None
    else:
        saved = os.environ.get("CCACHE_DISABLE")
        os.environ["CCACHE_DISABLE"] = "1"         # cold: the compiler cache (ccache) does not serve it either
        try:
            with tempfile.TemporaryDirectory(prefix="bioloop-cold-") as tmp:
                cold = build_core_library(*CORE, directory=Path(tmp))
        finally:
            if saved is None:
                os.environ.pop("CCACHE_DISABLE", None)
            else:
                os.environ["CCACHE_DISABLE"] = saved
    t0 = time.perf_counter()
    lib = build_core_library(*CORE)
    cached = time.perf_counter() - t0
    t0 = time.perf_counter()
    VerilatorBus(*CORE, library=lib)
    bus_s = time.perf_counter() - t0
    return lib, [["cold build (`build_core_library`, empty cache, ccache off; gcc PGO: two compiles and a training run on the loop)", "-" if cold is None else f"{cold.build_s:.0f} s"],
                 ["cached (hash of the Verilog, shim and flags; library found)", f"{cached:.2f} s"],
                 ["`VerilatorBus(64, 64, 16)`: load, reset, 2080 start edges", f"{bus_s:.3f} s"]]


def raw_rows(lib):
    """Cycles per second of the compiled core with no Python between edges."""
    n_frames = 100 if SMOKE else 20_000
    beats = culture_frames(n_frames).view(np.uint32).reshape(n_frames, 32)
    bus = VerilatorBus(*CORE, library=lib)
    Driver(bus).enable()
    core = bus.core
    rows = []
    for what, run in (("idle (no input)", lambda: core.idle(n_frames * 66)),
                      ("the culture's frames back to back (one TLAST per call; LED and AER bookkeeping)",
                       lambda: core.push(beats, 2000))):
        wall, cpu = [], []
        for _ in range(1 if SMOKE else REPEATS):
            e0 = core.edges
            t0, c0 = time.perf_counter(), time.thread_time()
            run()
            w, c = time.perf_counter() - t0, time.thread_time() - c0
            cycles = core.edges - e0
            wall.append(cycles / w)
            cpu.append(cycles / c)
            core.pop_words()
        rows.append([what, f"{cycles:,}", spread(wall), spread(cpu)])
    return rows


class _Split:
    """Thread CPU seconds spent in the compiled core's C calls, in the culture and in the rest."""

    def __init__(self):
        from bioloop.host.culture import Culture
        from bioloop.sim.verilated_core import VerilatedCore
        self.targets = [(VerilatedCore, name, "core") for name in ("push", "idle", "csr")] + \
            [(Culture, "step", "culture")]
        self.spent = {"core": 0.0, "culture": 0.0}

    def __enter__(self):
        self.saved = []
        for cls, name, key in self.targets:
            fn = getattr(cls, name)
            self.saved.append((cls, name, fn))

            def timed(*args, _fn=fn, _key=key, **kwargs):
                c0 = time.thread_time()
                try:
                    return _fn(*args, **kwargs)
                finally:
                    self.spent[_key] += time.thread_time() - c0
            setattr(cls, name, timed)
        return self

    def __exit__(self, *exc):
        for cls, name, fn in self.saved:
            setattr(cls, name, fn)


def loop_rows(lib):
    """The demo's closed loop on each backend: culture seconds and core cycles per wall second.

    Each backend first runs a short loop untimed (imports, numba's kernels, the culture's tables),
    so the rows are the steady state a longer demo runs at."""
    rows = []
    d_fast = 0.05 if SMOKE else 1.0
    reps = 1 if SMOKE else REPEATS
    split = None
    for name, make in (("model", lambda: ModelBus(*CORE)),
                       ("verilator (compiled, in-process)", lambda: VerilatorBus(*CORE, library=lib))):
        warm = make()
        loop_session(Driver(warm), warm, 0.02)
        runs = []
        for i in range(reps):
            bus = make()
            if name.startswith("verilator") and i == 0:
                with _Split() as split:
                    runs.append(loop_session(Driver(bus), bus, d_fast))
                split.total = runs[-1]["cpu_s"]
            else:
                runs.append(loop_session(Driver(bus), bus, d_fast))
        rows.append(_loop_row(name, runs))
        if name.startswith("verilator"):
            compiled = runs
    # `bioloop demo`'s default experiment: the host rate controller on a 100 Hz stimulation clock
    for name, make, d, n in (
            ("model, demo experiment", lambda: ModelBus(*CORE), 0.02 if SMOKE else 0.1, 1),
            ("verilator, demo experiment", lambda: VerilatorBus(*CORE, library=lib), d_fast, reps)):
        warm = make()
        loop_session(Driver(warm), warm, 0.02, experiment="homeostasis")
        runs = []
        for _ in range(n):
            bus = make()
            runs.append(loop_session(Driver(bus), bus, d, experiment="homeostasis"))
        rows.append(_loop_row(name, runs))
        experiment_runs = runs
    d_slow = 0.02 if SMOKE else 0.1
    t0 = time.perf_counter()
    r = run_with_cocotb(partial(loop_session, duration_s=d_slow), n_channels=64, n_lanes=64, fanout=16,
                        quiet=True)
    outer = time.perf_counter() - t0
    rows.append(_loop_row("cocotb (cocotb + cocotbext-axi, one run)", [r]))
    return rows, outer, compiled, split, experiment_runs


def _loop_row(name, runs):
    r0 = runs[0]
    speed = [r["culture_s"] / r["wall_s"] for r in runs]
    cps = [r["edges"] / r["wall_s"] for r in runs]
    cpu = [r["edges"] / r["cpu_s"] for r in runs]
    per_cpu = [r["culture_s"] / r["cpu_s"] for r in runs]
    return [name, len(runs), f"{r0['culture_s']:.2f}", f"{r0['edges']:,}", spread(speed, "{:.3g}"),
            spread(per_cpu, "{:.3g}"), spread(cps), spread(cpu)]


def demo_rows():
    """What `bioloop demo --backend verilator --duration 10` prints as its "simulation speed" (the
    homeostasis experiment, controller on and its reference off; the CLI's own runner, codec
    recording included in the "on" run): closed-loop culture seconds over the wall time of each
    run, and over its CPU time."""
    import shutil

    from bioloop.host.cli import RUNNERS
    from bioloop.host.experiments import DEFAULT_TARGET_HZ, experiment
    from bioloop.host.loop import LoopSettings
    exp = experiment("homeostasis")
    duration = 0.05 if SMOKE else DEMO_S
    settings = exp.settings(LoopSettings(duration_s=duration, target_rate_hz=DEFAULT_TARGET_HZ))
    rows, runs = [], {}
    scratch = Path(tempfile.mkdtemp(prefix="bioloop-bench-demo-"))
    try:
        for arm, s, policies in (("on", settings, exp.policies()), ("off", exp.reference(settings), [])):
            load = os.getloadavg()[0]
            t0, c0 = time.perf_counter(), time.process_time()
            result, _ = RUNNERS["verilator"](1, s, None, policies=policies,
                                             recording=str(scratch / "rec.blsc") if arm == "on" else None)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            culture_s = float(result.t_s[-1])
            runs[arm] = {"wall": wall, "cpu": cpu, "culture_s": culture_s, "load": load}
            rows.append([f"controller {arm}", f"{culture_s:.1f}", f"{wall:.1f}", f"{cpu:.1f}",
                         f"{culture_s / wall:.3g}", f"{culture_s / cpu:.3g}", f"{load:.1f}"])
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return rows, runs


def latency_rows(lib):
    rows = []
    for name, traffic, frames in (("isolated spikes", "isolated", 4000), ("Poisson + bursts", "bursts", 3000),
                                  ("the culture (60 electrodes)", "culture", 10_000)):
        for bp in (0.0, 0.3):
            r = measure_latency_compiled(traffic, bp, frames // (100 if SMOKE else 1), library=lib)
            a, lp, probe = r["l_aer"], r["l_loop"], r["probe"]
            rows.append([name, "30 %" if bp else "none", r["detections"], probe["overflows"], r["merged"],
                         f'{a["p50"]:.0f} / {a["p99"]:.1f} / {a["max"]}',
                         f'{lp["p50"]:.0f} / {lp["p99"]:.1f} / {lp["max"]}',
                         f'{probe["latency_max"]} ({probe["latency_samples"]} of {probe["stim_fires"]} fires)'])
    return rows


def main(out: Path = DOCS_BENCH, smoke: bool = False) -> Path:
    global SMOKE
    SMOKE = smoke
    load0 = os.getloadavg()
    lib, build = build_rows()
    raw = raw_rows(lib)
    loop, cocotb_outer, loop_runs, split, exp_runs = loop_rows(lib)
    demo, demo_runs = demo_rows()
    lat = latency_rows(lib)
    load = os.getloadavg()
    wall_speed = statistics.median(r["culture_s"] / r["wall_s"] for r in loop_runs)
    cpu_speed = statistics.median(r["culture_s"] / r["cpu_s"] for r in loop_runs)
    wall_cps = statistics.median(r["edges"] / r["wall_s"] for r in loop_runs)
    cpu_cps = statistics.median(r["edges"] / r["cpu_s"] for r in loop_runs)
    per_culture_s = statistics.median(r["edges"] / r["culture_s"] for r in loop_runs)
    core_s, culture_s = split.spent["core"], split.spent["culture"]
    rest_s = max(0.0, split.total - core_s - culture_s)

    def met(ok):
        return "met" if ok else "not met"

    def share(x):
        return f"{x:.2f} s ({x / split.total:.0%})"
    demo_on = demo_runs["on"]["culture_s"] / demo_runs["on"]["wall"]
    targets = (
        f"Issue 13's targets for the demo loop at N = K = 64: at least 1.0 culture s per wall s "
        f"({met(wall_speed >= 1.0)} in the rows above: {wall_speed:.3g} with `run_loop`'s defaults, "
        f"{statistics.median(r['culture_s'] / r['wall_s'] for r in exp_runs):.3g} with the demo's experiment; "
        f"`bioloop demo --duration 10` itself: {demo_on:.3g} with the controller on, "
        f"{met(demo_on >= 1.0)}; per CPU second {cpu_speed:.3g} and "
        f"{statistics.median(r['culture_s'] / r['cpu_s'] for r in exp_runs):.3g}) and at least 2 M core cycles "
        f"per wall s through the loop ({met(wall_cps >= 2e6)}: {wall_cps:,.0f}; per CPU second {cpu_cps:,.0f}, "
        f"{'met' if cpu_cps >= 2e6 else 'not met'} in CPU time; the demo's experiment "
        f"{statistics.median(r['edges'] / r['cpu_s'] for r in exp_runs):,.0f} per CPU s). A wall-clock figure "
        "below its CPU-time figure is time the process waited for a CPU that another job held (the "
        "load average above); on an otherwise idle machine the two are close.\n\n"
        f"Where the time goes, in the first verilator run ({split.total:.2f} CPU s for "
        f"{loop_runs[0]['culture_s']:.2f} culture s): the compiled core's C calls {share(core_s)}, the "
        f"in-silico culture {share(culture_s)}, everything else (bioware, observation, the slow loop, "
        f"ctypes and numpy glue) {share(rest_s)}. The Core needs about {per_culture_s:,.0f} cycles per "
        "culture second (a frame lasts `min_frame_cycles` = K + 2 = 66 cycles since the StimUnit's "
        "per-frame sweep, plus drains and CSR accesses; the calibration sends none), so at N = K = 64 "
        f"the two targets are nearly one: 2 M cycles per second would be {2e6 / per_culture_s:.2g} culture s "
        "per second.\n")
    loads = (f"load average {load0[0]:.1f} at the start, {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} at "
             "the end")
    text = [
        "## Compiled Verilator backend (`--backend verilator`), N = K = 64, F = 16\n",
        f"Machine: {machine()}; {loads}"
        + (" (other jobs shared the 2 CPUs, so wall-clock figures are inflated: the CPU-time columns "
           "say what one core does, and even they are slowed by the shared caches and cores)"
           if max(load0[0], load[0]) > 1.5 else "")
        + ". Regenerate with `make bench` (`python -m bioloop.sim.benches verilator`).\n",
        "`bioloop.sim.verilator_bus.VerilatorBus`: `hdl/core.v` in its Vivado wrapper, inputs "
        "registered once (`sim/harness/core_sim.v`), Verilated with the pinned wheel into a shared "
        "library with a C++ shim (`sim/harness/core_shim.cpp`), loaded with ctypes; one C call per "
        "bus operation. Figures are median (min..max) over the repeats.\n",
        "### Build\n",
        markdown_table(["step", "time"], build),
        "\n### Raw speed of the compiled Core (no Python between edges)\n",
        f"One C call runs all the cycles; {REPEATS} repeats; CPU time of the calling thread.\n",
        markdown_table(["what", "cycles per call", "cycles per wall s", "cycles per CPU s"], raw),
        "\n### The demo loop, side by side\n",
        "`bioloop.sim.core_bench.loop_session`: the demo's closed loop (`run_loop` with the default "
        "`LoopSettings`: 0.2 s calibration, 5 ms blocks, 50 ms control periods, homeostasis on, the "
        "default culture simulated in Python), timed around `run_loop` after one short untimed loop "
        "(imports, compiled kernels); culture seconds include the calibration. Core cycles are the "
        "backend's clock edges (66 per frame at K = 64, plus CSR accesses and drains); the samples go "
        "with one TLAST per block, as on the board. The rows \"demo experiment\" run what `bioloop demo` "
        "runs by default (`--experiment homeostasis`, its \"on\" run: the host rate controller at 300 Hz "
        "on a 100 Hz stimulation clock on every lane); the others `run_loop`'s defaults (gateware "
        "homeostasis). Real time is 1.0 culture s per wall s.\n",
        markdown_table(["backend", "runs", "culture s", "core cycles", "culture s per wall s",
                        "culture s per CPU s", "core cycles per wall s", "core cycles per CPU s"], loop),
        f"\nThe cocotb row excludes the simulator start; with it the call took {cocotb_outer:.0f} s. "
        "The compiled and model rows include the culture and bioware work in Python, which the "
        "core cycles per wall second therefore understate for the core alone (see the raw table).\n",
        targets,
        "\n### `bioloop demo --backend verilator`\n",
        f"The demo's default run, {DEMO_S:g} culture s (`bioloop.host.cli`'s runner, as `bioloop demo "
        "--backend verilator --duration 10` runs it: controller on with its codec recording, then the "
        "reference with the controller off; one run each; the demo prints the first figure as its "
        "\"simulation speed\").\n",
        markdown_table(["run", "culture s", "wall s", "CPU s", "culture s per wall s", "culture s per CPU s",
                        "load average at its start"], demo),
        "\n" + TRIED,
        "### Latency through the compiled backend (DESIGN.md §6)\n",
        "`bioloop.sim.core_bench.measure_latency_compiled`: the traffic, programming and "
        "definitions of the cocotb bench (`docs/bench/core.md`), the edges recorded by the shim "
        "(`VerilatedCore.trace`). Backpressure: the AER ready low at random on 30 % of the edges "
        "(the shim's generator, not the cocotb bench's).\n",
        markdown_table(["traffic", "AER backpressure", "crossings", "lost", "merged", "L_aer p50 / p99 / max",
                        "L_loop p50 / p99 / max", "probe max (measured fires)"], lat),
        f"\nCycles at {FCLK_HZ / 1e6:.0f} MHz. Without backpressure the figures are those of the cocotb "
        "bench edge for edge (`tests/gateware/test_verilator_bus.py` asserts it for isolated spikes).\n",
    ]
    path = Path(out) / "verilator.md"
    path.write_text("\n".join(text))
    return path
