"""Homeostasis on Verilator against bioloop.host.models.homeostasis.Homeostasis.

``homeo_scoreboard``: random thresholds (some outside the clamp bounds),
random homeo_src (with duplicates), random constants, random SPIKE and
non-SPIKE words with random idle cycles, frame ticks at random intervals
(some windows too short, so overruns happen), both cadences (the sweep one
counts per channel, N = 6, and some words carry addresses >= N); θ of every lane, ``busy``,
``window_done`` and ``overrun`` are compared with the cycle model at every
edge, and the input word count is checked against what the bench sent.

``homeo_bounds``: θ_min > θ_max and the widest bounds, with |Δ| far beyond 2^17.

``homeo_direction``: constants from ``homeostasis_constants``; a busy lane
rises to exactly θ_max, a silent lane falls to exactly θ_min, a lane at the
target stays put, and the cycles of one update of all lanes are reported.
"""

from __future__ import annotations

import random

import cocotb
import numpy as np
import pytest
from cocotb.triggers import RisingEdge

from bioloop.gateware.homeostasis import Homeostasis as HomeostasisRTL
from bioloop.host.aer import AERType, pack_one
from bioloop.host.models.homeostasis import (
    GAIN_BITS, TARGET_BITS, Homeostasis, HomeostasisConstants, homeostasis_constants,
)
from bioloop.sim import bench, runner


async def _setup(dut, thetas, srcs, k: HomeostasisConstants, window, lo, hi):
    """Reset, drive the registers, write θ, homeo_src and the targets (c*, scalar or per lane)."""
    from stim_tables import write_table
    tb = bench.TB(dut)
    dut.spikes__valid.value = 0
    dut.spikes__payload.value = 0
    dut.frame_tick.value = 0
    dut.theta_wr__en.value = 0
    dut.src_wr__en.value = 0
    dut.target_wr__en.value = 0
    dut.window.value = window
    dut.gain.value = k.gain
    dut.shift.value = k.shift
    dut.theta_min.value = lo
    dut.theta_max.value = hi
    dut.enable.value = 1
    await tb.reset()
    await write_table(dut, "theta_wr", thetas)
    await write_table(dut, "src_wr", srcs)
    await write_table(dut, "target_wr", np.broadcast_to(np.asarray(k.c_star), (len(thetas),)))
    return tb


async def _run(dut, K, spikes: dict, ticks: set, n: int):
    """Drive spikes[e] (a word) and ticks at edge e for e in 0..n-1; record outputs per edge."""
    def drive(e):
        w = spikes.get(e)
        dut.spikes__valid.value = int(w is not None)
        dut.spikes__payload.value = w if w is not None else 0
        dut.frame_tick.value = int(e in ticks)
        dut.theta_sel.value = e % K          # θ lives in memory: one lane read back per edge
        dut.theta_addr.value = _read_lane(e, K)  # and one through the StimUnit's synchronous port

    rec = []
    drive(0)
    for e in range(n):
        await RisingEdge(dut.clk)
        assert int(dut.spikes__ready.value) == 1, f"spikes stalled at edge {e}"
        rec.append(((e % K, int(dut.theta_value.value), int(dut.theta_data.value)), int(dut.busy.value),
                    int(dut.window_done.value), int(dut.overrun.value)))
        drive(e + 1)
    return rec


def _read_lane(e: int, K: int) -> int:
    """The lane the bench names on ``theta_addr`` in cycle e (a stride that is not the sweep's)."""
    return (7 * e + 3) % K


def _compare(model: Homeostasis, rec, spikes: dict, ticks: set, words_of, history=None):
    """The RTL's θ read-back (one lane per edge), its synchronous θ port (the lane named a
    cycle before), busy and strobes against the model at every edge; ``history`` (a list)
    receives the model's whole θ vector before each edge."""
    closes = overruns = 0
    prev = (False, False)
    K = len(model.theta)
    for e, (theta, busy, done, over) in enumerate(rec):
        lane, value, data = theta
        if history is not None:
            history.append(model.theta.tolist())
        assert value == model.theta[lane], f"edge {e}: θ of lane {lane} {value} != model {model.theta[lane]}"
        if e > 0:
            want = model.theta[_read_lane(e - 1, K)]
            assert data == want, f"edge {e}: theta_data {data} != model θ {want} of lane {_read_lane(e - 1, K)}"
        assert busy == int(model.busy()), f"edge {e}: busy {busy} != model {model.busy()}"
        assert (done, over) == tuple(map(int, prev)), f"edge {e}: strobes {(done, over)} != {prev}"
        prev = model.step(words_of(spikes.get(e)), e in ticks)
        closes += prev[0]
        overruns += prev[1]
    return closes, overruns


def _spike_address(word):
    if word is None:
        return None
    address, typ = word & 0xFFFFF, (word >> 28) & 0xF
    return address if typ == AERType.SPIKE.value else None


@cocotb.test()
async def homeo_scoreboard(dut):
    p = runner.params()
    K = p["n_lanes"]
    rng = random.Random(runner.seed(11))
    lo, hi = 64, 512
    thetas = [rng.choice([rng.randrange(0, 1 << 16), rng.randrange(lo, hi)]) for _ in range(K)]
    srcs = [rng.randrange(0, 6) for _ in range(K)]
    targets = np.array([rng.randrange(0, 8 * 256) for _ in range(K)])      # c* per lane
    consts = HomeostasisConstants(targets, rng.randrange(0, 1 << GAIN_BITS), rng.randrange(8, 20))
    window = 3
    await _setup(dut, thetas, srcs, consts, window, lo, hi)

    n = 6000
    spikes, ticks, e = {}, set(), 0
    for e in range(n):
        if rng.random() < 0.5:
            typ = rng.choice([AERType.SPIKE] * 6 + [AERType.STIM, AERType.TICK])
            spikes[e] = pack_one(rng.randrange(0, 8), rng.randrange(0, 256), typ, rng.randrange(0, 1 << 32))
    e = 0
    while e < n:
        e += rng.choice([1, 2, 3] + [rng.randrange(4, 40)] * 6)
        ticks.add(e)
    rec = await _run(dut, K, spikes, ticks, n)

    model = Homeostasis(K, constants=consts, theta_min=lo, theta_max=hi, window_frames=window,
                        src=srcs, n_channels=p["n_channels"], cadence=p["cadence"])
    model.since_reset(1 << 20)            # the count banks were cleared during the setup
    model.theta[:] = thetas
    closes, overruns = _compare(model, rec, spikes, ticks, _spike_address)
    counted = sum(1 for w in spikes.values() if _spike_address(w) is not None)
    assert closes > 50 and overruns > 0, (closes, overruns)
    runner.report(scoreboard_words=len(spikes), scoreboard_spikes=counted, closes=closes, overruns=overruns)


@cocotb.test()
async def homeo_bounds(dut):
    """θ_min > θ_max (θ_max wins) and the widest bounds (0, 65535), with gains and shifts that
    make |Δ| far larger than 2^17 (the gateware adds only Δ's low 18 bits to θ and
    decides a Δ outside them by its sign): θ of every
    lane against the model at every edge, from a reset for each pair of bounds."""
    p = runner.params()
    K = p["n_lanes"]
    rng = random.Random(runner.seed(13))
    extremes = 0
    for lo, hi in ((700, 300), (0, 65535), (65535, 0)):
        thetas = [rng.randrange(0, 1 << 16) for _ in range(K)]
        srcs = [rng.randrange(0, 6) for _ in range(K)]
        targets = np.array([rng.randrange(0, 4 * 256) for _ in range(K)])
        consts = HomeostasisConstants(targets, rng.randrange(1 << (GAIN_BITS - 1), 1 << GAIN_BITS),
                                      rng.randrange(0, 6))
        await _setup(dut, thetas, srcs, consts, 2, lo, hi)
        n = 1200
        spikes = {e: pack_one(rng.randrange(0, 8), 0, AERType.SPIKE, 0) for e in range(n) if rng.random() < 0.4}
        ticks = set(range(5, n, 9))
        rec = await _run(dut, K, spikes, ticks, n)
        model = Homeostasis(K, constants=consts, theta_min=lo, theta_max=hi, window_frames=2,
                            src=srcs, n_channels=p["n_channels"], cadence=p["cadence"])
        model.since_reset(1 << 20)
        model.theta[:] = thetas
        history = []
        closes, _ = _compare(model, rec, spikes, ticks, _spike_address, history)
        assert closes > 50
        extremes += sum(v in (0, 65535) for v in history[-1])
    assert extremes > 0, "no θ reached 0 or 65535: the wide bounds were not exercised"


@cocotb.test()
async def homeo_direction(dut):
    p = runner.params()
    K = p["n_lanes"]
    # 1 kHz frames, windows of 20 frames, target 100 Hz = 2 spikes per window, τ = 20 s.
    consts = homeostasis_constants(100.0, 20000.0, 20, 1000.0)
    assert consts.c_star == 2 * 256
    lo, hi = 64, 512
    await _setup(dut, [256] * K, list(range(K)), consts, 20, lo, hi)
    per_window = {0: 12, 1: 0, 2: 2, 3: 3}            # spikes per window on channel k
    frame_cycles, windows = 10, 12
    spikes, ticks = {}, set()
    for w in range(windows):
        base = w * 20 * frame_cycles
        for f in range(20):
            ticks.add(base + f * frame_cycles + frame_cycles - 1)
        e = base
        for ch, c in per_window.items():
            for _ in range(c):
                spikes[e] = pack_one(ch, 0, AERType.SPIKE, 0)
                e += 1
    n = windows * 20 * frame_cycles + K + 8
    rec = await _run(dut, K, spikes, ticks, n)
    model = Homeostasis(K, constants=consts, theta_min=lo, theta_max=hi, window_frames=20,
                        n_channels=p["n_channels"], cadence=p["cadence"])
    model.since_reset(1 << 20)            # the count banks were cleared during the setup
    thetas = []                           # θ of every lane per edge: the model's, checked against the RTL
    _compare(model, rec, spikes, ticks, _spike_address, thetas)

    final = thetas[-1]
    assert final[0] == hi, f"busy lane should clamp at exactly {hi}, got {final[0]}"
    assert final[1] == lo, f"silent lane should clamp at exactly {lo}, got {final[1]}"
    assert final[2] == 256, "a lane at the target rate must not move"
    assert 256 < final[3] < hi, "a lane above target must rise"
    history = [t[3] for t in thetas]
    assert all(b >= a for a, b in zip(history, history[1:], strict=False)), "θ of an over-active lane never falls"
    # Cycles from the closing tick to the last lane written.
    close = min(t for t in ticks if t >= 19 * frame_cycles)
    span = range(close, close + K + 16)       # ends before the next window closes
    changed = [e for e in span if thetas[e] != thetas[e - 1]]
    busy = [e for e in span if rec[e][1]]
    runner.report(update_cycles=len(busy), first_write=changed[0] - close if changed else None)


@pytest.mark.parametrize("cadence", ["sweep", "cycle"])
def test_homeostasis_bench(cadence):
    # N = 6 channels: the scoreboard's words also carry addresses 6 and 7, which count nowhere.
    params = {"n_lanes": 4, "n_channels": 6, "cadence": cadence}
    result = runner.run(lambda n_lanes, n_channels, cadence: HomeostasisRTL(
                            n_lanes, n_channels=n_channels, cadence=cadence),
                        design=f"homeo_{cadence}", test_module="test_homeostasis", bench_params=params)
    assert result["closes"] > 50 and result["overruns"] > 0
    K, N = params["n_lanes"], params["n_channels"]
    # busy from close+1 to close+K+3 (cycle) or to close+K+max(5, N) (sweep: update, then clear)
    assert result["update_cycles"] == (K + 3 if cadence == "cycle" else K + max(5, N))


@pytest.mark.parametrize("kwargs,exc,word", [
    ({"n_lanes": 0}, ValueError, "n_lanes"),
    ({"window_frames": 1 << 24}, ValueError, "window_frames"),
    ({"theta_init": -1}, ValueError, "theta_init"),
    ({"target": 1 << TARGET_BITS}, ValueError, "target"),
    ({"gain": 1 << GAIN_BITS}, ValueError, "gain"),
    ({"shift": 64}, ValueError, "shift"),
    ({"theta_max": "512"}, TypeError, "theta_max"),
    ({"cadence": "often"}, ValueError, "cadence"),
    ({"n_channels": 0}, ValueError, "n_channels"),
])
def test_homeostasis_validation(kwargs, exc, word):
    with pytest.raises(exc, match=word):
        HomeostasisRTL(**kwargs)
