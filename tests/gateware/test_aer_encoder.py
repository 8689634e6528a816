"""AEREncoder against its cycle-exact model on Verilator (DESIGN.md §4)."""


import numpy as np
import pytest

from bioloop.gateware.aer_encoder import AEREncoder
from bioloop.gateware.layouts import AERType
from bioloop.host import aer
from bioloop.host.models import aer_encoder as model
from bioloop.sim import runner


import cocotb
from cocotb.triggers import RisingEdge

from bioloop.sim.bench import TB


def _factory(n_addresses, ts_bits, **_):
    return AEREncoder(n_addresses, ts_bits=ts_bits)


class EncoderTB(TB):
    def __init__(self, dut, backpressure=0.0):
        super().__init__(dut, seed=runner.seed())
        p = runner.params()
        self.n, self.ts_bits = p["n_addresses"], p["ts_bits"]
        self.sink = self.sink("aer", backpressure=backpressure)
        dut.spikes.value = 0
        dut.timestamp.value = 0
        dut.now.value = 0
        dut.source.value = p.get("source", 0)
        dut.clear.value = 0
        self.trace = self.record(self._sample)

    def _sample(self):
        """Per edge: spikes, timestamp, now, ready, and the word handed over (or None)."""
        d = self.dut
        ready = int(d.aer__ready.value)
        word = int(d.aer__payload.value) if int(d.aer__valid.value) and ready else None
        return int(d.spikes.value), int(d.timestamp.value), int(d.now.value), ready, word

    async def start(self):
        await self.reset()
        self.recording = True

    async def drive(self, schedule):
        """schedule: iterable of (spikes, timestamp, now), one per cycle."""
        for spikes, ts, now in schedule:
            self.dut.spikes.value = spikes
            self.dut.timestamp.value = ts
            self.dut.now.value = now
            await RisingEdge(self.clk)
        self.dut.spikes.value = 0

    def replay(self, source=0):
        m = model.AEREncoder(self.n, self.ts_bits, source)
        for i, (spikes, ts, now, ready, word) in enumerate(self.trace):
            expect = m.step(spikes, ts, now, bool(ready))
            assert word == expect, (f"edge {i}: RTL handed over {word and hex(word)}, model "
                                    f"{expect and hex(expect)}")
        return m

    def words(self):
        return np.array([w for *_, w in self.trace if w is not None], dtype=np.uint64)


def poisson_schedule(rng, n, cycles, frame_len, rate, burst_prob):
    """At most one spike per address per frame, as the Detector produces them."""
    sched = []
    fired = np.zeros(n, bool)
    for c in range(cycles):
        now = c // frame_len
        if c % frame_len == 0:
            fired[:] = False
        bits = rng.random(n) < rate
        if rng.random() < burst_prob:
            bits |= rng.random(n) < 0.7
        bits &= ~fired
        fired |= bits
        sched.append((int(sum(1 << int(a) for a in np.flatnonzero(bits))), now, now))
    return sched


@cocotb.test()
async def randomized(dut):
    """Poisson spikes plus bursts under random backpressure: cycle-exact, every spike out once or counted lost."""
    p = runner.params()
    tb = EncoderTB(dut, backpressure=p["backpressure"])
    await tb.start()
    rng = np.random.default_rng(p["seed"])
    n = tb.n
    frame_len = max(1, n // 2)
    sched = poisson_schedule(rng, n, p["cycles"], frame_len, rate=0.4 / n * 2, burst_prob=0.01)
    await tb.drive(sched)
    for _ in range(50 * n + 200):          # drain, spikes idle, clock and frame running on
        await tb.drive([(0, 0, p["cycles"] // frame_len)])
    m = tb.replay()
    f = aer.unpack(tb.words())
    spikes_in = sum(bin(s).count("1") for s, *_ in sched)
    n_spike = int((f.type == AERType.SPIKE.value).sum())
    reported_lost = int(f.address[f.type == AERType.OVERFLOW.value].sum())
    assert m.pending == 0 and m.lost_pending == 0
    assert spikes_in == n_spike + reported_lost, (spikes_in, n_spike, reported_lost)
    assert int(dut.lost.value) == reported_lost == m.lost
    assert int(dut.words.value) == len(f.type)
    pairs = list(zip(f.address[f.type == 0].tolist(), f.timestamp[f.type == 0].tolist(), strict=True))
    assert len(set(pairs)) == len(pairs), "a spike was emitted twice"
    # per address, words leave in timestamp order
    for a in set(f.address[f.type == 0].tolist()):
        ts = [t for aa, t in pairs if aa == a]
        assert ts == sorted(ts)
    runner.report(spikes_in=spikes_in, lost=reported_lost)


@cocotb.test()
async def full_load_wait_bound(dut):
    """Every address spiking every cycle, ready high: one word per cycle, each address served within n+1 cycles."""
    tb = EncoderTB(dut)
    await tb.start()
    n = tb.n
    cycles = 6 * (n + 1)
    await tb.drive([((1 << n) - 1, c, c) for c in range(cycles)])
    tb.replay()
    handed = [(i, w) for i, (*_, w) in enumerate(tb.trace) if w is not None]
    # one word per cycle once the first word is out
    first = handed[0][0]
    assert [i for i, _ in handed[:cycles - 2]] == list(range(first, first + cycles - 2))
    last_seen = {}
    worst = 0
    for i, w in handed:
        a, _, t, _ = aer.unpack_one(w)
        if t == AERType.SPIKE:
            if a in last_seen:
                worst = max(worst, i - last_seen[a])
            last_seen[a] = i
    assert len(last_seen) == n
    assert worst <= n + 1, f"an address waited {worst} cycles, bound is {n + 1}"
    idx = [i for i, _ in handed[:cycles - 2]]
    runner.report(worst_wait=worst, words_per_cycle=len(idx) / (idx[-1] - idx[0] + 1))


@cocotb.test()
async def latency_and_hold(dut):
    """An idle encoder hands a new spike over one edge later; a word is held unchanged while ready is low."""
    tb = EncoderTB(dut, backpressure=1.0)     # ready held low
    await tb.start()
    await tb.drive([(1 << (tb.n - 1), 5, 5)])       # the spike is sampled at this edge
    latency = 0
    while not int(dut.aer__valid.value):            # valid as present at each following edge
        await tb.drive([(0, 5, 5)])
        latency += 1
        assert latency < 10, "no word after 10 cycles"
    assert latency == 1
    await tb.drive([(0, 5, 5)] * 10)
    assert int(dut.aer__valid.value) == 1
    held = int(dut.aer__payload.value)
    assert aer.unpack_one(held)[0] == tb.n - 1 and aer.unpack_one(held)[3] == 5
    dut.aer__ready.value = 1
    tb.sink.backpressure = 0.0
    await tb.drive([(0, 5, 5)] * 4)
    tb.replay()
    got = [(i, w) for i, (*_, w) in enumerate(tb.trace) if w is not None]
    assert [w for _, w in got] == [held]
    runner.report(latency_cycles=latency)


# The flush needs a stall of several epochs of 2^(ts_bits-2) frames: run it on the narrow-timestamp builds.
@cocotb.test(skip=runner.params().get("ts_bits", 32) > 8)
async def stale_flush(dut):
    """A host stall of more than an epoch: stale pending spikes are dropped and counted, never mis-stamped."""
    tb = EncoderTB(dut, backpressure=1.0)
    await tb.start()
    n, b = tb.n, tb.ts_bits
    epoch = 1 << (b - 2)
    await tb.drive([((1 << n) - 1, 0, 0)])
    sched = [(0, 0, f) for f in range(3 * epoch)]
    await tb.drive(sched)
    tb.sink.backpressure = 0.0
    await tb.drive([(0, 0, 3 * epoch)] * (4 * n + 8))
    m = tb.replay()
    f = aer.unpack(tb.words())
    held = min(n, 2)                               # the output and the skid register
    assert int(f.address[f.type == AERType.OVERFLOW.value].sum()) == m.lost == n - held
    assert ((f.type == 0) | (f.type == AERType.OVERFLOW.value)).all()
    assert (f.timestamp[f.type == 0] == 0).all()   # the words held in the output and skid registers
    assert int((f.type == 0).sum()) + m.lost == n


@pytest.mark.parametrize("n_addresses,ts_bits,backpressure", [   # 64 addresses: long (tests/conftest.py)
    pytest.param(64, 16, 0.0, marks=pytest.mark.long), pytest.param(64, 16, 0.5, marks=pytest.mark.long),
    (5, 6, 0.3), (1, 4, 0.7)])
@pytest.mark.parametrize("cycles", [800, pytest.param(4000, marks=pytest.mark.long)])
def test_encoder(n_addresses, ts_bits, backpressure, cycles):
    report = runner.run(_factory, design="aer_encoder", test_module="test_aer_encoder",
                        bench_params={"n_addresses": n_addresses, "ts_bits": ts_bits,
                                      "backpressure": backpressure, "seed": n_addresses + 3,
                                      "cycles": cycles})
    assert report["worst_wait"] <= n_addresses + 1
    assert report["words_per_cycle"] == 1.0 and report["latency_cycles"] == 1
    assert report["spikes_in"] > 0


@pytest.mark.parametrize("kwargs,exc", [
    ({"n_addresses": 0}, ValueError), ({"n_addresses": 4097}, ValueError),
    ({"n_addresses": 8.0}, TypeError), ({"n_addresses": 8, "ts_bits": 3}, ValueError),
    ({"n_addresses": 8, "ts_bits": 33}, ValueError)])
def test_bad_parameters(kwargs, exc):
    with pytest.raises(exc, match="n_addresses|ts_bits"):
        AEREncoder(**kwargs)
