"""Benchmark the AER path: L_aer, throughput, cocotb and raw Verilator speed -> docs/bench/aer_path.md."""
import os
import sys
from pathlib import Path

from bioloop.sim import runner
from bioloop.sim.measure import DOCS_BENCH, machine, markdown_table, verilator_speed

CASES = [
    ("ready high, Poisson + bursts", dict(idle=0.0, host_bp=0.0, stim_bp=0.0, rate=0.01, burst_prob=0.03)),
    ("ready high, Poisson only", dict(idle=0.0, host_bp=0.0, stim_bp=0.0, rate=0.01, burst_prob=0.0)),
    ("30% backpressure on host and stim, 20% input idle", dict(idle=0.2, host_bp=0.3, stim_bp=0.3, rate=0.01,
                                                              burst_prob=0.03)),
]


def main(out: Path = DOCS_BENCH, smoke: bool = False) -> Path:
    from bioloop.gateware.aer_path import AERPath
    # the cocotb bench module of the AER path and its design factory live with its tests
    sys.path.insert(0, str(runner.ROOT / "tests" / "gateware"))
    from test_aer_path import _factory
    rows = []
    speed = None
    load0 = os.getloadavg()[0]
    for name, case in CASES[:1] if smoke else CASES:
        params = {"n_channels": 8 if smoke else 64, "fanout": 16, "seed": 85, "source": 0,
                  "frames": 60 if smoke else 3000, **case}
        r = runner.run(_factory, design="bench_aer_path", test_module="test_aer_path",
                       bench_params=params, testcase="randomized")
        rows.append([name, r["detections"], r["lost"], r["l_aer_min"], r["l_aer_p50"], f'{r["l_aer_p99"]:.1f}',
                     r["l_aer_max"], r.get("beats_per_cycle", "-")])
        speed = speed or r["cocotb_cycles_per_s"]
    raw = verilator_speed(AERPath(), "aer_path", runner.ROOT / "sim" / "harness" / "aer_path_speed.cpp",
                          cycles=20_000 if smoke else 2_000_000)
    load1 = os.getloadavg()[0]
    text = ["## AER path (Detector -> AEREncoder -> AERRouter), N = 64, F = 16\n",
            f"Machine: {machine()}; load average {load0:.1f} at the start, {load1:.1f} at the end (the "
            "cycle counts are deterministic; the simulators' speeds vary with the load). "
            "Regenerate with `make bench`.\n",
            "L_aer in cycles at 100 MHz (10 ns each), DESIGN.md §6: handshake of the beat carrying the crossing "
            "to valid of its SPIKE word on the host port. Isolated crossings measure exactly 4 cycles (asserted "
            "in `tests/gateware/test_aer_path.py`); under traffic the spread comes from the router holding input "
            "while it fans a word out (up to F = 16 entries) and the encoder's queue during bursts (the AERPath's "
            "default \"queue\" cadence: words in arrival order). "
            "Routing tables are random with fanout 0..2 and rows of fanout 0, 1 and F. 3000 frames each.\n",
            markdown_table(["traffic", "detections", "lost", "min", "p50", "p99", "max", "beats/cycle"], rows),
            "\nThroughput (asserted in tests): Detector 1 beat/cycle; AEREncoder 1 word/cycle while words wait; "
            "at the Detector's most (every channel every other frame, frames back to back) its queue of N/2 "
            "entries loses nothing and no word waits more than N/2 cycles (the \"cycle\" cadence: worst wait "
            "of a pending address <= N + 1 cycles); AERRouter 1 word/cycle at fanout 0 or 1 and "
            "1 entry/cycle at fanout F.\n",
            markdown_table(["simulator", "cycles/s"],
                           [["cocotb 2.1 + Verilator 5.48 (bench above, ready high)", f"{speed:,.0f}"],
                            ["Verilator 5.48, C++ harness (-O3), one beat per cycle", f'{raw["cycles_per_s"]:,.0f}']])]
    path = Path(out) / "aer_path.md"
    path.write_text("\n".join(text))
    return path
