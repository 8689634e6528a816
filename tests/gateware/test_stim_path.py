"""StimPath on Verilator against bioloop.host.models.stim_path.StimPath.

``stim_path_scoreboard``: all tables written through their write ports
(density codes, θ, homeo_src, pulse lengths), homeostasis constants that
move θ during the run, random routed entries and SPIKE words with random
idle cycles, frame ticks at random intervals, random backpressure on the
STIM stream. The LED vector is compared with the cycle model at every edge,
the STIM words in order (minus any the RTL reported lost, which the
OVERFLOW words must account for), and counts in and out are checked.

``stim_path_latency``: fire-to-LED latency in cycles with density code
0xFFFF and weight >= θ, asserted and reported.

``stim_path_intensity``: one long pulse per lane at density codes from 1/8
to 1; the mean LED intensity over the pulse is within a 5-sigma Bernoulli
bound of (code - 1)/65535.
"""

from __future__ import annotations

import random

import cocotb
import numpy as np
import pytest
from cocotb.triggers import RisingEdge

from bioloop.gateware.stim_path import StimPath as StimPathRTL
from bioloop.host.aer import AERType, pack_one, unpack_one
from bioloop.host.models.homeostasis import Homeostasis, HomeostasisConstants
from bioloop.host.models.safety import Safety
from bioloop.host.models.stim_path import ENTRY_TO_LED, StimPath
from bioloop.host.models.stim_unit import StimUnit
from bioloop.sim import bench, runner

from test_stim_unit import pack_routed

DESIGN = {"n_lanes": 4, "pulse_bits": 10, "pulse_init": 5, "fifo_depth": 32, "duty_window": 3000,
          "limit_pulse": 1000, "limit_duty": 3000, "limit_lanes": 3, "window_frames": 4}


def _lanes(value: int, K: int) -> np.ndarray:
    return np.array([(value >> k) & 1 for k in range(K)], dtype=bool)


async def _setup(dut, tables: dict, regs: dict) -> int:
    """Reset, drive the registers, write the tables; returns the edges since reset release."""
    from stim_tables import write_table
    tb = bench.TB(dut)
    for name in ("routed__valid", "spikes__valid", "frame_tick", "code_wr__en", "theta_wr__en",
                 "src_wr__en", "target_wr__en", "pulse_wr__en", "stim__ready"):
        getattr(dut, name).value = 0
    dut.routed__payload.value = 0
    dut.spikes__payload.value = 0
    dut.frame.value = 0
    for name, value in regs.items():
        getattr(dut, name).value = value
    await tb.reset()
    edges = 0
    for port, values in tables.items():
        edges += await write_table(dut, port, values)
    return edges


DEFAULT_REGS = {"window": 4, "gain": 0, "shift": 0, "theta_min": 64, "theta_max": 512,
                "enable": 1, "leak_shift": 0, "source": 0, "max_pulse": 40, "max_duty": 120,
                "max_lanes": 3}


@cocotb.test()
async def stim_path_scoreboard(dut):
    p = runner.params()
    K = p["n_lanes"]
    rng = random.Random(runner.seed(31))
    codes = [rng.choice([0xFFFF, 0xC000, 0x8000, 0x2000]) for _ in range(K)]
    thetas = [rng.randrange(100, 500) for _ in range(K)]
    srcs = [rng.randrange(0, 8) for _ in range(K)]
    lengths = [rng.randrange(1, 5) for _ in range(K)]          # frames
    consts = HomeostasisConstants(2 * 256, 1 << 16, 20)     # g/2^s = 1/16, c* = 2 spikes
    regs = dict(DEFAULT_REGS, gain=consts.gain, shift=consts.shift,
                leak_shift=2, source=0x5A, max_pulse=30, max_duty=250, max_lanes=2)
    setup_edges = await _setup(dut, {"code_wr": codes, "theta_wr": thetas, "src_wr": srcs,
                                     "target_wr": [consts.c_star] * K, "pulse_wr": lengths}, regs)

    n = 12000
    entries = [(rng.randrange(K), rng.randrange(-150, 400)) for _ in range(int(n * 0.3))]
    ticks = set()
    e = 0
    while e < n:
        e += rng.randrange(1, 30)
        ticks.add(e)
    spike_at = {e: pack_one(rng.randrange(0, 10), 0, rng.choice([AERType.SPIKE] * 5 + [AERType.TICK]), e)
                for e in range(n) if rng.random() < 0.2}

    handshakes, frames, leds, fires, losts, received = {}, [], [], [], [], []
    offered, qi, frame = None, 0, 0

    def drive(e):
        nonlocal offered, qi
        if offered is None and qi < len(entries) and rng.random() < 0.4:
            offered = entries[qi]
            qi += 1
            dut.routed__payload.value = pack_routed(*offered, address=rng.randrange(1 << 20), timestamp=e)
        dut.routed__valid.value = int(offered is not None)
        w = spike_at.get(e)
        dut.spikes__valid.value = int(w is not None)
        dut.spikes__payload.value = w if w is not None else 0
        dut.frame_tick.value = int(e in ticks)
        dut.frame.value = frame
        dut.stim__ready.value = int(rng.random() >= 0.3)

    drive(0)
    for e in range(n):
        await RisingEdge(dut.clk)
        frames.append(frame)
        assert int(dut.spikes__ready.value) == 1, "SPIKE words must never be stalled"
        if offered is not None and int(dut.routed__ready.value):
            handshakes[e] = offered
            offered = None
        if int(dut.stim__valid.value) and int(dut.stim__ready.value):
            received.append(int(dut.stim__payload.value))
        leds.append(int(dut.led.value))
        fires.append(int(dut.fire.value))
        losts.append(int(dut.stim_lost.value))
        if e in ticks:
            frame += 1
        drive(e + 1)
    dut.routed__valid.value = 0
    dut.stim__ready.value = 1
    for _ in range(80):
        await RisingEdge(dut.clk)
        if int(dut.stim__valid.value):
            received.append(int(dut.stim__payload.value))

    model = StimPath(
        K, codes,
        StimUnit(K, pulse_lengths=lengths, leak_shift=regs["leak_shift"], source=regs["source"]),
        Homeostasis(K, constants=consts, theta_min=64, theta_max=512, window_frames=regs["window"], src=srcs),
        Safety(K, p["duty_window"], p["limit_pulse"], p["limit_duty"], p["limit_lanes"],
               regs["max_pulse"], regs["max_duty"], regs["max_lanes"], pulse_bits=p["pulse_bits"],
               cadence="sweep"),
        lane_steps=setup_edges)
    model.homeostasis.theta[:] = thetas
    model.safety.idle(setup_edges)
    model.homeostasis.since_reset(setup_edges)
    spikes = {e: (w & 0xFFFFF, (w >> 28) & 0xF) for e, w in spike_at.items()}
    trace = model.run(n, {e: h for e, h in handshakes.items()}, spikes, ticks, np.array(frames))

    got = np.array([_lanes(v, K) for v in leds])
    bad = np.argwhere(got[1:] != trace.led[:-1])
    assert bad.size == 0, f"LED differs from the model first at edge {bad[0][0]} (lane {bad[0][1]})"
    assert got.any(), "no LED ever lit"
    fire_edges = [e for e, _ in trace.stim]
    assert [e for e in range(1, n) if fires[e]] == [e + 1 for e in fire_edges if e + 1 < n]
    lost_edges = {e - 1 for e in range(1, n) if losts[e]}
    expected = [w for e, w in trace.stim if e not in lost_edges]
    stims = [w for w in received if unpack_one(w)[2] == AERType.STIM]
    overflow = sum(unpack_one(w)[0] for w in received if unpack_one(w)[2] == AERType.OVERFLOW)
    assert stims == expected, "STIM words differ from the model"
    assert overflow == len(lost_edges)
    assert len(stims) + overflow == len(trace.stim)
    assert len(handshakes) == qi - (offered is not None)
    assert len(trace.closes) > 20 and model.homeostasis.theta.tolist() != thetas, "θ never moved"
    runner.report(entries=len(handshakes), spikes=len(spike_at), fires=len(trace.stim),
                  stim_received=len(stims), stim_lost=len(lost_edges), led_cycles=int(got.sum()),
                  windows=len(trace.closes), overruns=trace.overruns, clamps=trace.clamps.tolist())


@cocotb.test()
async def stim_path_latency(dut):
    K = runner.params()["n_lanes"]
    # Safety's sweep cadence grants light S cycles at a time (S = K rounded up to a power of two) and
    # its caps are S * floor(cap / S): the caps must be a few visits long, or nothing is ever lit.
    S = 1 << max(0, (K - 1).bit_length())
    regs = dict(DEFAULT_REGS, max_pulse=max(DEFAULT_REGS["max_pulse"], 4 * S),
                max_duty=max(DEFAULT_REGS["max_duty"], 12 * S))
    await _setup(dut, {"code_wr": [0xFFFF] * K, "theta_wr": [256] * K, "pulse_wr": [10] * K}, regs)
    dut.stim__ready.value = 1
    ticker = cocotb.start_soon(_ticks(dut, K + 2))      # frames as short as the StimUnit allows
    results = []
    for lane in range(K):
        dut.routed__payload.value = pack_routed(lane, 256)
        dut.routed__valid.value = 1
        e = 0
        handshake = fire = None
        while True:
            await RisingEdge(dut.clk)
            if handshake is None and int(dut.routed__ready.value):
                handshake = e
                dut.routed__valid.value = 0
            if fire is None and int(dut.fire.value):
                fire = e - 1          # the strobe is registered: the fire happened one edge earlier
            if (int(dut.led.value) >> lane) & 1:
                break
            e += 1
            assert e < 50, f"lane {lane}: LED never lit"
        results.append((e - handshake, e - fire))
        for _ in range(12 * (K + 2) + 10):     # the 10-frame pulse ends; Safety frees the slot
            await RisingEdge(dut.clk)
    ticker.cancel()
    entry_to_led = {r[0] for r in results}
    fire_to_led = {r[1] for r in results}
    assert entry_to_led == {ENTRY_TO_LED}, f"entry-to-LED latency {entry_to_led}, expected {ENTRY_TO_LED}"
    runner.report(entry_to_led=ENTRY_TO_LED, fire_to_led=fire_to_led.pop())


@cocotb.test()
async def stim_path_intensity(dut):
    p = runner.params()
    K = p["n_lanes"]
    length = p["limit_pulse"] - 16    # Safety's sweep cadence counts whole 4-cycle (S) intervals
    period = K + 2                    # frames as short as the StimUnit allows
    codes = [0x2000, 0x8000, 0xC000, 0xFFFF, 0x5555, 0x1000][:K]
    frames = length // period + 2     # a pulse longer than the measured stretch
    await _setup(dut, {"code_wr": codes, "theta_wr": [256] * K, "pulse_wr": [frames] * K},
                 dict(DEFAULT_REGS, max_pulse=p["limit_pulse"], max_duty=p["limit_duty"], max_lanes=K))
    dut.stim__ready.value = 1
    ticker = cocotb.start_soon(_ticks(dut, period))
    means = {}
    for lane in range(K):
        dut.routed__payload.value = pack_routed(lane, 256)
        dut.routed__valid.value = 1
        await RisingEdge(dut.clk)
        dut.routed__valid.value = 0
        for _ in range(2):                       # entry -> pulse visible -> LED register
            await RisingEdge(dut.clk)
        on = 0
        for _ in range(length):
            await RisingEdge(dut.clk)
            on += (int(dut.led.value) >> lane) & 1
        for _ in range(3 * period + 4):
            await RisingEdge(dut.clk)
        assert int(dut.led.value) == 0, "LED still on after the pulse"
        density = (codes[lane] - 1) / 65535
        bound = 5 * (density * (1 - density) / length) ** 0.5 + 1 / length
        means[f"{codes[lane]:#06x}"] = on / length
        assert abs(on / length - density) <= bound, (
            f"lane {lane}: mean LED intensity {on / length:.4f} outside {density:.4f} ± {bound:.4f}")
    ticker.cancel()
    runner.report(intensity=means)


async def _ticks(dut, period: int):
    """Drive frame_tick high one cycle in every ``period``."""
    while True:
        for i in range(period):
            dut.frame_tick.value = int(i == 0)
            await RisingEdge(dut.clk)


@pytest.mark.parametrize("n_lanes", [4])
def test_stim_path_bench(n_lanes):
    params = dict(DESIGN, n_lanes=n_lanes)

    def factory(n_lanes, pulse_bits, pulse_init, fifo_depth, duty_window, limit_pulse, limit_duty,
                limit_lanes, window_frames):
        return StimPathRTL(n_lanes, pulse_bits=pulse_bits, pulse_init=pulse_init, fifo_depth=fifo_depth,
                           duty_window=duty_window, limit_pulse=limit_pulse, limit_duty=limit_duty,
                           limit_lanes=limit_lanes, window_frames=window_frames)
    result = runner.run(factory, design=f"stim_path_k{n_lanes}", test_module="test_stim_path",
                        bench_params=params)
    assert result["entry_to_led"] == 3 and result["fire_to_led"] == 2
    assert result["fires"] > 100 and result["windows"] > 20
    assert all(c > 0 for c in result["clamps"]), "each Safety cap should clamp in the scoreboard"
    assert len(result["intensity"]) == n_lanes


def test_stim_path_validation():
    with pytest.raises(ValueError, match="n_lanes"):
        StimPathRTL(0)
    with pytest.raises(ValueError, match="mode"):
        StimPathRTL(4, lane_mode="other")
    with pytest.raises(ValueError, match="limit_lanes"):
        StimPathRTL(4, limit_lanes=5)
