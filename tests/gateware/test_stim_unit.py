"""StimUnit on Verilator against bioloop.host.models.stim_unit.StimUnit.

Random routed entries (some to lanes that do not exist, some with weights
that saturate the accumulator) with random idle cycles, random frame ticks,
random θ, pulse lengths and leak shift; random backpressure on the STIM word
stream. At every edge the pulse envelopes and the fire strobe are compared
with the cycle model. The STIM words received must be the model's words,
in order, minus those the RTL reported lost (``stim_lost``), and the
OVERFLOW words must add up to exactly the number lost. ``stim_overflow``
holds the host port nearly stalled so that losses happen.
"""

from __future__ import annotations

import random

import cocotb
import pytest
from cocotb.triggers import FallingEdge, RisingEdge

from bioloop.gateware.layouts import RoutedEntry
from bioloop.gateware.stim_unit import StimUnit as StimUnitRTL
from bioloop.host.aer import AERType, unpack_one
from bioloop.host.models.stim_unit import StimUnit
from bioloop.sim import bench, runner


def pack_routed(target: int, weight: int, address: int = 0, timestamp: int = 0) -> int:
    """Pack a RoutedEntry payload through the shared layout's field offsets."""
    word = 0
    for name, value in (("target", target), ("weight", weight), ("address", address),
                        ("timestamp", timestamp)):
        f = RoutedEntry[name]
        word |= (value & ((1 << f.width) - 1)) << f.offset
    return word


async def stim_run(dut, *, backpressure: float, n: int, seed: int, entry_rate: float):
    from stim_tables import write_table
    p = runner.params()
    K = p["n_lanes"]
    rng = random.Random(seed)
    tb = bench.TB(dut)
    dut.routed__valid.value = 0
    dut.routed__payload.value = 0
    dut.stim__ready.value = 0
    dut.frame_tick.value = 0
    dut.frame.value = 0
    dut.pulse_wr__en.value = 0
    thetas = [rng.choice([0, rng.randrange(1, 64), rng.randrange(64, 600)]) for _ in range(K)]
    lengths = [rng.choice([0, 1, rng.randrange(2, 6)]) for _ in range(K)]      # frames
    leak_shift = rng.choice([0, 1, 3, 15])
    source = rng.randrange(256)

    async def theta_memory():
        """θ as Homeostasis' memory serves it, a synchronous read: in each cycle, θ of the lane
        ``theta_addr`` named in the cycle before, set here between the edges."""
        last = 0
        while True:
            await FallingEdge(dut.clk)
            dut.theta_data.value = thetas[last] if last < K else 0
            last = int(dut.theta_addr.value)

    dut.theta_data.value = 0
    cocotb.start_soon(theta_memory())
    dut.leak_shift.value = leak_shift
    dut.source.value = source
    await tb.reset()
    await write_table(dut, "pulse_wr", lengths)

    # Stimulus per edge: entries wait in a queue, offered with random idle cycles.
    pending = []
    for _ in range(int(n * entry_rate)):
        weight = rng.choice([rng.randrange(-300, 600), rng.choice([-32768, 32767])]
                            if rng.random() < 0.05 else [rng.randrange(-300, 600)])
        target = rng.randrange(K + 2) if rng.random() < 0.05 else rng.randrange(K)
        pending.append((target, int(weight)))
    ticks = {e for e in range(n) if rng.random() < 0.05}

    handshakes = {}      # edge -> (target, weight)
    frames = []
    rec_pulse, rec_fire, rec_lost = [], [], []
    received = []
    offered = None
    frame = 0
    qi = 0

    def drive(e):
        nonlocal offered, qi
        if offered is None and qi < len(pending) and rng.random() < entry_rate * 1.3:
            offered = pending[qi]
            qi += 1
            dut.routed__payload.value = pack_routed(*offered, address=rng.randrange(1 << 20),
                                                    timestamp=rng.randrange(1 << 32))
        dut.routed__valid.value = int(offered is not None)
        dut.frame_tick.value = int(e in ticks)
        dut.frame.value = frame
        dut.stim__ready.value = int(rng.random() >= backpressure)

    drive(0)
    for e in range(n):
        await RisingEdge(dut.clk)
        frames.append(frame)
        if offered is not None and int(dut.routed__ready.value):
            handshakes[e] = offered
            offered = None
        if int(dut.stim__valid.value) and int(dut.stim__ready.value):
            received.append(int(dut.stim__payload.value))
        rec_pulse.append(int(dut.pulse.value))
        rec_fire.append((int(dut.fire.value), int(dut.fire_lane.value)))
        rec_lost.append(int(dut.stim_lost.value))
        if e in ticks:
            frame += 1
        drive(e + 1)
    # Drain the STIM FIFO with ready held high.
    dut.routed__valid.value = 0
    dut.stim__ready.value = 1
    for _ in range(64):
        await RisingEdge(dut.clk)
        if int(dut.stim__valid.value):
            received.append(int(dut.stim__payload.value))

    model = StimUnit(K, pulse_lengths=lengths, leak_shift=leak_shift, source=source, cadence=p["cadence"])
    expected, lost = [], 0
    prev_word = None
    for e in range(n):
        pulse = sum(int(b) << k for k, b in enumerate(model.pulse))
        assert rec_pulse[e] == pulse, f"edge {e}: pulse {rec_pulse[e]:b} != model {pulse:b}"
        fire, lane = rec_fire[e]
        assert fire == int(prev_word is not None), f"edge {e}: fire strobe {fire}, model {prev_word}"
        if prev_word is not None:
            assert lane == unpack_one(prev_word)[0]
            if rec_lost[e]:
                lost += 1
            else:
                expected.append(prev_word)
        else:
            assert not rec_lost[e]
        prev_word = model.step(handshakes.get(e), e in ticks, frames[e], thetas)

    stims = [w for w in received if unpack_one(w)[2] == AERType.STIM]
    overflow = [unpack_one(w)[0] for w in received if unpack_one(w)[2] == AERType.OVERFLOW]
    assert stims == expected, "STIM words differ from the model (order, lane, source or timestamp)"
    assert sum(overflow) == lost, f"OVERFLOW words report {sum(overflow)} lost, RTL lost {lost}"
    assert len(stims) + lost == model.fires
    assert len(handshakes) == qi - (offered is not None), "an offered entry was neither taken nor pending"
    return {"entries": len(handshakes), "fires": model.fires, "lost": lost,
            "bad_lane": model.bad_lane, "received": len(received)}


@cocotb.test()
async def stim_scoreboard(dut):
    r = await stim_run(dut, backpressure=0.3, n=8000, seed=runner.seed(21), entry_rate=0.5)
    assert r["fires"] > 500 and r["bad_lane"] > 0
    runner.report(**{f"scoreboard_{k}": v for k, v in r.items()})


@cocotb.test()
async def stim_overflow(dut):
    r = await stim_run(dut, backpressure=0.97, n=3000, seed=runner.seed(22), entry_rate=0.8)
    assert r["lost"] > 0
    runner.report(**{f"overflow_{k}": v for k, v in r.items()})


@pytest.mark.parametrize("n_lanes,fifo_depth,cadence", [(4, 8, "sweep"), (4, 8, "cycle")])
def test_stim_unit_bench(n_lanes, fifo_depth, cadence):
    result = runner.run(lambda n_lanes, fifo_depth, cadence: StimUnitRTL(
                            n_lanes, pulse_bits=8, pulse_init=10, fifo_depth=fifo_depth, cadence=cadence),
                        design=f"stim_unit_k{n_lanes}_{cadence}", test_module="test_stim_unit",
                        bench_params={"n_lanes": n_lanes, "fifo_depth": fifo_depth, "cadence": cadence})
    assert result["scoreboard_fires"] > 500 and result["overflow_lost"] > 0


@pytest.mark.parametrize("kwargs,exc,word", [
    ({"n_lanes": 0}, ValueError, "n_lanes"),
    ({"pulse_bits": 0}, ValueError, "pulse_bits"),
    ({"pulse_bits": 8, "pulse_init": 256}, ValueError, "pulse_init"),
    ({"fifo_depth": 1}, ValueError, "fifo_depth"),
    ({"fifo_depth": 8.0}, TypeError, "fifo_depth"),
    ({"cadence": "often"}, ValueError, "cadence"),
])
def test_stim_unit_validation(kwargs, exc, word):
    with pytest.raises(exc, match=word):
        StimUnitRTL(**kwargs)


@pytest.mark.parametrize("depth", [2, 3, 5, 16])
def test_staged_fifo_is_sync_fifo_buffered(depth):
    """StagedFIFO against amaranth.lib.fifo.SyncFIFOBuffered of the same depth, side by side in
    Amaranth's simulator under random writes and reads (bursts, stalls): w_rdy, r_rdy, r_data
    and the level agree at every edge."""
    from amaranth import Module
    from amaranth.lib.fifo import SyncFIFOBuffered
    from amaranth.sim import Simulator

    from bioloop.gateware.stim_unit import StagedFIFO

    m = Module()
    m.submodules.dut = dut = StagedFIFO(width=8, depth=depth)
    m.submodules.ref = ref = SyncFIFOBuffered(width=8, depth=depth)
    rng = random.Random(depth)
    seen = {"writes": 0, "reads": 0, "full": 0}

    async def bench(ctx):
        for e in range(3000):
            phase = (e // 200) % 3                    # filling, draining, mixed
            w = rng.random() < (0.9, 0.2, 0.5)[phase]
            r = rng.random() < (0.2, 0.9, 0.5)[phase]
            data = rng.randrange(256)
            for q in (dut, ref):
                ctx.set(q.w_en, w)
                ctx.set(q.w_data, data)
                ctx.set(q.r_en, r)
            got = [ctx.get(getattr(dut, n)) for n in ("w_rdy", "r_rdy", "r_data", "w_level")]
            want = [ctx.get(getattr(ref, n)) for n in ("w_rdy", "r_rdy", "r_data", "w_level")]
            assert got == want, f"depth {depth}, edge {e}: (w_rdy, r_rdy, r_data, level) {got} != {want}"
            seen["writes"] += w and want[0]
            seen["reads"] += r and want[1]
            seen["full"] += not want[0]
            await ctx.tick()

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert seen["writes"] > 500 and seen["reads"] > 500 and seen["full"] > 50, seen


@pytest.mark.parametrize("depth,exc", [(1, ValueError), (4.0, TypeError)])
def test_staged_fifo_validation(depth, exc):
    from bioloop.gateware.stim_unit import StagedFIFO
    with pytest.raises(exc, match="depth"):
        StagedFIFO(width=8, depth=depth)
