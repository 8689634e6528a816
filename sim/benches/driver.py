"""Benchmark the host driver and the CSR bank: Python-side costs and AXI-Lite on Verilator.

Writes ``docs/bench/driver.md``:

- Driver CSR writes and table writes per second over a bus backed by
  ``CSRBankModel`` (the driver's own overhead: range checks, encoding,
  shadows), and ``send_samples`` packing throughput for N = 64;
- AXI4-Lite transactions per wall second and simulated cycles per wall
  second for ``CSRBank`` (N, K, F = 64, 64, 16) under cocotb + cocotbext-axi
  on Verilator, from the bench's random-traffic test.
"""

from __future__ import annotations

import datetime
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from bioloop.host.models.csr import CSRBankModel
from bioloop.host.regmap import SLVERR
from bioloop.host.regmap import RegisterMap
from bioloop.host.driver import Driver
from bioloop.sim.measure import DOCS_BENCH, cpu_model

REPEATS = 5


class ModelCSRBus:
    """The smallest bus over CSRBankModel: CSRs only, streams dropped."""

    def __init__(self, regmap):
        self.model = CSRBankModel(regmap)

    def read32(self, addr):
        data, resp = self.model.read(addr)
        assert resp != SLVERR
        return data

    def write32(self, addr, value):
        assert self.model.write(addr, value) != SLVERR

    def send_samples(self, beats):
        self.last = beats

    def receive_words(self, max_words, timeout_s):
        return np.zeros(0, np.uint64)




def median_rate(fn, n, repeats=REPEATS) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return n / statistics.median(times)


def bench_host():
    drv = Driver(ModelCSRBus(RegisterMap()))
    n = 2000

    def scalars():
        for i in range(n):
            drv.refractory = i & 0xFFFF

    def table_slice():
        drv.thresholds[:] = np.arange(64) * 7          # 64 entries per call

    def routes():
        for c in range(64):
            drv.routes.set(c, [("stim", c % 64, 256), ("host", c, 128)])

    samples = np.random.default_rng(1).integers(-2000, 2000, (30_000, 64)).astype(np.int16)
    return {
        "scalar register writes/s": median_rate(scalars, n),
        "table entries/s (64-entry slice)": median_rate(table_slice, 64),
        "routes.set calls/s (2 entries)": median_rate(routes, 64),
        "send_samples calls/s (30k frames of N = 64, checked and viewed as beats, no copy)":
            median_rate(lambda: drv.send_samples(samples), 1),
    }


def bench_verilator(smoke: bool = False):
    from bioloop.sim import runner
    sys.path.insert(0, str(runner.ROOT / "tests" / "gateware"))
    import test_csr  # the bench module: its factory and its cocotb tests

    params = ({"N": 4, "K": 4, "F": 2, "counter_bits": 6, "ops": 20} if smoke else
              {"N": 64, "K": 64, "F": 16, "counter_bits": 32, "ops": 2000})
    runner.run(test_csr._factory, design="csr_bank", test_module="test_csr",
               bench_params=params, testcase="unpaused_traffic")   # build once, warm
    report = runner.run(test_csr._factory, design="csr_bank", test_module="test_csr",
                        bench_params=params, testcase="unpaused_traffic")
    wall = report["unpaused_wall_s"]          # measured inside the simulation, start-up excluded
    transactions = sum(report.get(k, 0) for k in ("unpaused_reads", "unpaused_writes",
                                           "unpaused_overlapped"))
    return {"transactions": transactions, "wall_s": wall, "cycles": report["unpaused_cycles"],
            "transactions/s": transactions / wall}


def main(out: Path = DOCS_BENCH, smoke: bool = False) -> Path:
    host = bench_host()
    try:
        sim = bench_verilator(smoke)
    except Exception as exc:  # report, do not hide, a missing simulator
        if smoke:
            raise
        sim = {"error": f"{type(exc).__name__}: {exc}"}
    lines = [
        "## Driver and CSR bank",
        "",
        f"Measured {datetime.date.today().isoformat()} on {platform.machine()}, {cpu_model()}, "
        f"Python {platform.python_version()} (`bioloop.sim.benches.driver`, median of {REPEATS}).",
        "",
        "| Host-side operation (Driver over CSRBankModel) | Rate |",
        "|---|---|",
    ]
    lines += [f"| {k} | {v:,.0f} |" for k, v in host.items()]
    lines += ["", "| CSRBank on Verilator (N, K, F = 64, 64, 16), cocotbext-axi AxiLiteMaster, "
              "with the bench's monitors and model scoreboard | Value |",
              "|---|---|"]
    if "error" in sim:
        lines.append(f"| not measured | {sim['error']} |")
    else:
        lines.append(f"| AXI4-Lite transactions (reads, writes, overlapped) | {sim['transactions']} |")
        lines.append(f"| wall time of the test (simulator start excluded) | {sim['wall_s']:.2f} s |")
        lines.append(f"| transactions per wall second | {sim['transactions/s']:,.0f} |")
        lines.append(f"| simulated cycles | {sim['cycles']} |")
        if sim["cycles"]:
            lines.append(f"| simulated cycles per wall second | {sim['cycles'] / sim['wall_s']:,.0f} |")
    lines += ["", "The driver's costs are Python overhead per access; on the board each CSR access "
              "adds an MMIO round trip over GP0, and each `send_samples` frame one DMA transfer "
              "(see docs/board.md).", ""]
    path = Path(out) / "driver.md"
    path.write_text("\n".join(lines))
    return path
