"""Benchmark the stim path: SCC of adjacent lanes, latency and update cycles -> docs/bench/stim.md."""
import sys
from pathlib import Path

import numpy as np

from bioloop.gateware.homeostasis import Homeostasis
from bioloop.gateware.stochastic_lanes import StochasticLanes as StochasticLanesRTL
from bioloop.gateware.stim_path import StimPath
from bioloop.host.models.stochastic_lanes import LFSR_PERIOD, StochasticLanes, scc
from bioloop.sim import runner
from bioloop.sim.measure import DOCS_BENCH, machine, markdown_table

LANES = 64
CODES = [("0x2000 (p = 0.125)", 0x2000), ("0x4000 (p = 0.25)", 0x4000), ("0x8000 (p = 0.5)", 0x8000),
         ("0xC000 (p = 0.75)", 0xC000)]


def adjacent_scc(mode: str, codes, n_lanes: int = LANES) -> list[float]:
    """SCC of lanes k and k+1 over one full LFSR period (model; bit-exact with the RTL)."""
    bits = StochasticLanes(n_lanes, mode=mode).run(codes, LFSR_PERIOD)
    return [scc(bits[:, k], bits[:, k + 1]) for k in range(n_lanes - 1)]


def main(out: Path = DOCS_BENCH, smoke: bool = False) -> Path:
    # the cocotb bench modules of the stim path's blocks live with their tests
    sys.path.insert(0, str(runner.ROOT / "tests" / "gateware"))
    K = 4 if smoke else LANES
    rng = np.random.default_rng(2013)
    rows = []
    for name, code in [*CODES[:1 if smoke else None], ("random code per lane", None)]:
        codes = rng.integers(1, 1 << 16, K) if code is None else code
        cells = [name]
        for mode in ("independent", "shared"):
            s = np.array(adjacent_scc(mode, codes, K))
            cells += [f"{s.mean():+.4f}", f"{np.abs(s).max():.4f}"]
        rows.append(cells)

    # The RTL bench at K = 64 (independent) and K = 8 (shared) checks the streams bit for bit over
    # more than a period and measures SCC at code 0x8000 on the RTL's own output.
    rtl = []
    for k, mode in ((8, "shared"),) if smoke else ((64, "independent"), (8, "shared")):
        # The cycle cadence: a new bit every cycle (the sweep cadence holds each bit S cycles and has
        # no shared mode; its streams are the same sequences, docs/stim_path.md).
        r = runner.run(lambda n_lanes, mode, cadence: StochasticLanesRTL(n_lanes, mode=mode, cadence=cadence),
                       design=f"stochastic_lanes_k{k}_{mode}_cycle", test_module="test_stochastic_lanes",
                       bench_params={"n_lanes": k, "mode": mode, "cadence": "cycle"})
        rtl.append([f"{mode}, K = {k}", r["cycles"], f'{r["scc_mean"]:+.6f}', f'{r["scc_max_abs"]:.6f}'])

    homeo = {cadence: runner.run(lambda n_lanes, n_channels, cadence: Homeostasis(
                                     n_lanes, n_channels=n_channels, cadence=cadence),
                                 design=f"homeo_bench_k{K}_{cadence}", test_module="test_homeostasis",
                                 bench_params={"n_lanes": K, "n_channels": K, "cadence": cadence},
                                 testcase="homeo_direction")
             for cadence in ("cycle", "sweep")}
    path = runner.run(lambda n_lanes: StimPath(n_lanes, pulse_init=10), design=f"stim_path_bench_k{K}",
                      test_module="test_stim_path", bench_params={"n_lanes": K},
                      testcase="stim_path_latency")

    assert homeo["cycle"]["update_cycles"] == K + 3 and path["entry_to_led"] == 3, (homeo, path)
    text = [
        f"## Stim path (StimUnit, StochasticLanes, Homeostasis, Safety), K = {K}\n",
        f"Machine: {machine()}. Regenerate with `make bench` (`bioloop.sim.benches.stim`).\n",
        "### Cycle figures (100 MHz, 10 ns per cycle; asserted in `make test`)\n",
        markdown_table(["figure", "cycles", "ns"], [
            ["routed entry handshake -> first LED-high cycle (code 0xFFFF, weight >= θ)",
             path["entry_to_led"], path["entry_to_led"] * 10],
            ["fire (accumulator crosses θ) -> first LED-high cycle", path["fire_to_led"], path["fire_to_led"] * 10],
            *([f"homeostasis ({c} cadence): window close -> first θ written (lane 0)",
               homeo[c]["first_write"] - 1, (homeo[c]["first_write"] - 1) * 10] for c in homeo),
            [f"homeostasis (cycle cadence): update of all K = {K} lanes (busy cycles; K + 3)",
             homeo["cycle"]["update_cycles"], homeo["cycle"]["update_cycles"] * 10],
            ["homeostasis (sweep cadence, N = K): update, then the count bank cleared (busy cycles, "
             "measured)", homeo["sweep"]["update_cycles"], homeo["sweep"]["update_cycles"] * 10],
        ]),
        "L_loop of DESIGN.md §6 is L_aer (AER path, above) with the router's stim port in place of its "
        f"host-port hop, plus the {path['entry_to_led']} cycles here: 4 + {path['entry_to_led']} = "
        f"{4 + path['entry_to_led']} cycles, as measured on Core. One homeostasis update per window; in the cycle "
        f"cadence a window must last at least K + 4 = {K + 4} cycles (a window that closes while the update runs is counted as an overrun "
        "and its counts carry into the next window). Fire-to-LED and entry-to-LED do not depend on K.\n",
        "### Stream correlation of adjacent lanes\n",
        "SCC (Alaghi & Hayes 2013) of lanes k and k+1 over one full LFSR period (65535 cycles), "
        f"63 adjacent pairs of K = {K} lanes, seed0 0xACE1, from the model, which the RTL matches "
        "bit for bit (below). *independent*: one LFSR per lane, lane k seeded (0xACE1 + 7919 k) mod 2^16; "
        "*shared*: one LFSR, lane k reads it through the bit permutation i -> (a i + b) mod 16, "
        "a = 2 (k mod 8) + 1, b = k div 8 (16 flip-flops instead of 16 K). Both keep the exact density "
        "(code - 1)/65535.\n",
        markdown_table(["density code", "independent: mean SCC", "independent: max abs SCC",
                        "shared: mean SCC", "shared: max abs SCC"], rows),
        "On the RTL's own output (code 0x8000 on every lane, one full period, all bits checked against the "
        "model first):\n",
        markdown_table(["mode", "cycles compared", "mean SCC", "max abs SCC"], rtl),
        "Independent lanes are phases of one m-sequence 7919 states apart, so at equal codes their SCC is "
        "at the m-sequence's floor (about -1/65535 at p = 0.5); with different codes it stays within about "
        "0.2 (the largest values come from pairs of high densities, where SCC's denominator is small). "
        "The shared mode is as good at p = 1/4, 1/2, 3/4 (the comparison then reads one or two bits, "
        "different for each lane), worse at p = 1/8, and with different codes per lane it can make two "
        "lanes *nested* (SCC = +1): lane k+1's comparison may need a state bit to be 0 that by itself "
        "puts lane k's permuted value below its code (for example codes 0x324C and 0xF810 on lanes 5 and "
        "4). The shared mode saves 16 (K - 1) flip-flops (1008 at K = 64) and keeps the exact density of "
        "each lane, so it suits lanes that drive separate tissue; where lanes' light is combined or "
        "compared, use the independent mode (the default). Lanes k and k + 128 of the shared mode carry "
        "identical streams.\n",
    ]
    fragment = Path(out) / "stim.md"
    fragment.write_text("\n".join(text))
    return fragment
