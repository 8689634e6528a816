"""The model backend's speed on the demo's default experiment, per path of the Core model -> docs/bench/model.md.

The Core model (``bioloop.host.models.core``) gives the same bits on three
paths (docs/core.md, "The model"): the compiled kernel (numba), the Python
path (deferred observers and quiet stretches) and the edge-by-edge reference
(``Core.fast = False``). Each row is one closed loop of the homeostasis
experiment (``bioloop demo``'s default: a 100 Hz stimulation clock on all 64
lanes, the host rate controller at 300 Hz), timed around ``closed_loop`` in
CPU seconds of this process (the culture and the slow loop included), which
does not depend on what else runs on the machine, and in wall seconds, which
does; the 1-minute load average is given.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

from bioloop.sim.measure import DOCS_BENCH, machine, markdown_table

#: (path, experiment arm, culture seconds, seeds); the reference is slow, so it runs short.
CASES = [("compiled kernel", "on", 2.0, (1, 2, 3)), ("compiled kernel", "off", 2.0, (1, 2, 3)),
         ("Python path", "on", 0.5, (1, 2, 3)), ("reference (fast = False)", "on", 0.5, (1,))]
SMOKE = [("compiled kernel", "on", 0.05, (1,)), ("Python path", "on", 0.05, (1,))]


def _run(path: str, arm: str, duration: float, seed: int) -> dict:
    from bioloop.host.backends import ModelBus
    from bioloop.host.cli import CORE, closed_loop
    from bioloop.host.driver import Driver
    from bioloop.host.experiments import DEFAULT_TARGET_HZ, experiment
    from bioloop.host.loop import LoopSettings
    from bioloop.host.models import core_kernel
    exp = experiment("homeostasis")
    settings = exp.settings(LoopSettings(duration_s=duration, target_rate_hz=DEFAULT_TARGET_HZ))
    policies = exp.policies()
    if arm == "off":
        settings, policies = exp.reference(settings), []
    bus = ModelBus(**CORE)
    bus.core.fast = path != "reference (fast = False)"
    core_kernel.active = path == "compiled kernel"
    try:
        load = os.getloadavg()[0]
        t0, c0 = time.perf_counter(), time.process_time()
        r, _ = closed_loop(Driver(bus), bus, seed, settings, policies=policies)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    finally:
        core_kernel.active = True
    # closed-loop culture seconds over the whole call's time (the calibration's included), as the
    # demo's own "simulation speed"
    return {"cpu": cpu, "wall": wall, "culture_s": duration, "load": load, "words": len(r.words)}


def main(out: Path = DOCS_BENCH, smoke: bool = False) -> Path:
    from bioloop.host import jit
    _run("compiled kernel", "on", 0.05, 1)           # numba's compile or cache load, untimed
    rows = []
    for path, arm, duration, seeds in SMOKE if smoke else CASES:
        if path == "compiled kernel" and not jit.ENABLED:
            continue
        runs = [_run(path, arm, duration, seed) for seed in seeds]
        per_cpu = [r["culture_s"] / r["cpu"] for r in runs]
        per_wall = [r["culture_s"] / r["wall"] for r in runs]
        spread = (lambda v: f"{statistics.median(v):.3f} [{min(v):.3f}, {max(v):.3f}]")  # noqa: E731
        rows.append([path, arm, f"{duration:g}", len(seeds), spread(per_cpu), spread(per_wall),
                     f"{min(r['load'] for r in runs):.1f}-{max(r['load'] for r in runs):.1f}"])
    head = ["Core model path", "controller", "culture s of closed loop per run", "seeds",
            "culture s per CPU s, median [min, max]", "culture s per wall s, median [min, max]",
            "load average"]
    text = ["## Model backend: the demo's default experiment per path of the Core model\n",
            f"Machine: {machine()}. `bioloop.sim.benches.model`. The homeostasis experiment of `bioloop demo` "
            "(100 Hz stimulation clock on all 64 lanes, host rate controller at 300 Hz; `off`: its reference "
            "run without the controller), N = K = 64, F = 16, timed around `closed_loop` (culture, Core "
            "model and slow loop, after numba's compile or cache load): culture seconds of closed loop over "
            "the time of the whole run, whose 0.2 s of calibration (dark, cheap) is included. All paths give "
            "the same AER words, "
            "LEDs and counters (tests/host/test_backends.py). CPU seconds do not depend on the machine's "
            "load; wall seconds do.\n",
            markdown_table(head, rows)]
    path = Path(out) / "model.md"
    path.write_text("\n".join(text))
    return path
