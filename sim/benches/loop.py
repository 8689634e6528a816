"""The gateware homeostasis in the closed loop, measured: on vs off, at the default light
density and at full density -> docs/bench/loop.md."""
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from bioloop.host.cli import CORE, closed_loop
from bioloop.host.backends import ModelBus
from bioloop.host.driver import Driver
from bioloop.host.loop import LoopSettings
from bioloop.sim.measure import DOCS_BENCH, machine, markdown_table

#: Light densities measured: the ``LoopSettings`` default and full density (light on for the whole pulse).
CODES = (LoopSettings.lane_code, 0xFFFF)


def main(out: Path = DOCS_BENCH, smoke: bool = False, seeds=(1, 2, 3), duration=10.0) -> Path:
    if smoke:
        seeds, duration = (1,), 0.3
    s = LoopSettings(duration_s=duration)
    rows = []
    for code in CODES:
        for seed in seeds:
            cells = [f"{code:#06x}", seed]
            for on in (True, False):
                bus = ModelBus(**CORE)
                t0 = time.process_time()
                r, _ = closed_loop(Driver(bus), bus, seed, replace(s, homeostasis=on, lane_code=code))
                cpu = time.process_time() - t0
                sm = r.summary()
                w = r.window_rates(min(1.0, duration / 3))    # 1 s; shorter in the smoke run
                tail = w[len(w) - max(1, len(w) // 3):]
                cells += [f'{sm["rate_first_third_hz"]:.1f}', f'{sm["rate_last_third_hz"]:.1f}',
                          f"{tail.min():.0f}-{tail.max():.0f}", f'{sm["abs_error_last_third_hz"]:.1f}',
                          f'{sm["theta_mean_last_q88"] / 256:.2f}']
                if on:
                    cells += [f"{float(np.mean(r.theta[-1, r.controlled] == s.theta_min_q88)):.2f}",
                              f"{duration / cpu:.2f}"]
            rows.append(cells)
    head = (["lane code", "seed"]
            + [f"{k} (on)" for k in ("rate 1st third Hz", "rate last third Hz", "1 s windows, last third, Hz",
                                     "|err| Hz", "θ end", "share of lanes at θ_min", "culture s / CPU s")]
            + [f"{k} (off)" for k in ("rate 1st third Hz", "rate last third Hz", "1 s windows, last third, Hz",
                                      "|err| Hz", "θ end")])
    text = ["## Closed loop: the gateware homeostasis on vs off, model backend\n",
            f"Machine: {machine()}. `bioloop.sim.benches.loop`; settings: `LoopSettings()` defaults "
            f"(target {s.target_rate_hz:g} Hz per channel, τ {s.tau_homeo_ms:g} ms, window {s.window_ms:g} ms, "
            f"θ₀ {s.theta0_q88 / 256:g}, θ_min {s.theta_min_q88 / 256:g}, weight {s.weight_q88 / 256:g}, "
            f"pulse {s.pulse_ms:g} ms), {duration:g} s of culture time per run, 60 controlled channels, "
            "each channel routed to its own lane; the lane density code is the row's: the default "
            f"{CODES[0]:#06x} (light on 1/8 of the pulse) or 0xffff (on for the whole pulse). Rates are "
            "detections per second per controlled channel; the culture fires in network bursts, so one "
            "second can hold several times the mean or nothing (the window column gives the spread). This "
            "is the gateware homeostasis alone (`run_loop`, no host policy), not the demo's default "
            "experiment (a host rate controller on a stimulation clock, measured in the slow-loop section "
            "below). Speed in culture seconds per CPU second of the process (robust to other jobs).\n",
            markdown_table(head, rows)]
    path = Path(out) / "loop.md"
    path.write_text("\n".join(text))
    return path
