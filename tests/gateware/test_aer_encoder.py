"""AEREncoder against its cycle-exact model on Verilator (DESIGN.md §4), in both cadences.

The queue cadence takes one beat (a pair of addresses 2j, 2j+1) per cycle, as the Detector
produces it; its benches drive Detector-like traffic (each address at most every other sample of
its channel), the cycle cadence's any spike vector.
"""


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


def _factory(n_addresses, ts_bits, cadence="cycle", queue_depth=None, **_):
    return AEREncoder(n_addresses, ts_bits=ts_bits, cadence=cadence, queue_depth=queue_depth)


class EncoderTB(TB):
    def __init__(self, dut, backpressure=0.0):
        super().__init__(dut, seed=runner.seed())
        p = runner.params()
        self.n, self.ts_bits = p["n_addresses"], p["ts_bits"]
        self.cadence, self.queue_depth = p.get("cadence", "cycle"), p.get("queue_depth")
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
        m = model.AEREncoder(self.n, self.ts_bits, source, cadence=self.cadence, queue_depth=self.queue_depth)
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


def beat_schedule(rng, n, cycles, rate, burst_prob, idle=0.2):
    """Detector-like traffic for the queue cadence: beats of two addresses, one per cycle or an
    idle cycle (probability ``idle``), frames of ceil(n/2) beats; an address fires with
    probability ``rate`` (0.7 in a burst frame) unless it fired at its previous sample (a
    detection needs the sample before it below threshold)."""
    pairs = (n + 1) // 2
    sched = []
    prev = np.zeros(2 * pairs, bool)
    frame, pos, burst = 0, 0, False
    for _ in range(cycles):
        if rng.random() < idle:
            sched.append((0, frame, frame))
            continue
        if pos == 0:
            burst = rng.random() < burst_prob
        p = 0.7 if burst else rate
        bits = 0
        for a in (2 * pos, 2 * pos + 1):
            fire = a < n and not prev[a] and rng.random() < p
            prev[a] = fire
            bits |= int(fire) << a
        sched.append((bits, frame, frame))
        pos += 1
        if pos == pairs:
            pos, frame = 0, frame + 1
    return sched


def all_firing_schedule(n, frames):
    """The Detector's most: every address fires every other frame, frames back to back, one beat
    per cycle (the even frames' beats carry both addresses of their pair)."""
    pairs = (n + 1) // 2
    full = (1 << n) - 1
    return [((3 << 2 * j) & full if f % 2 == 0 else 0, f, f) for f in range(frames) for j in range(pairs)]


@cocotb.test()
async def randomized(dut):
    """Poisson spikes plus bursts under random backpressure: cycle-exact, every spike out once or counted lost."""
    p = runner.params()
    tb = EncoderTB(dut, backpressure=p["backpressure"])
    await tb.start()
    rng = np.random.default_rng(p["seed"])
    n = tb.n
    frame_len = max(1, n // 2)
    if tb.cadence == "queue":
        sched = beat_schedule(rng, n, p["cycles"], rate=p.get("rate", 0.3), burst_prob=0.05)
    else:
        sched = poisson_schedule(rng, n, p["cycles"], frame_len, rate=0.4 / n * 2, burst_prob=0.01)
    await tb.drive(sched)
    end = sched[-1][2]
    for _ in range(50 * n + 200):          # drain, spikes idle, clock and frame running on
        await tb.drive([(0, 0, end)])
    m = tb.replay()
    f = aer.unpack(tb.words())
    spikes_in = sum(bin(s).count("1") for s, *_ in sched)
    n_spike = int((f.type == AERType.SPIKE.value).sum())
    reported_lost = int(f.address[f.type == AERType.OVERFLOW.value].sum())
    assert m.idle
    assert spikes_in == n_spike + reported_lost, (spikes_in, n_spike, reported_lost)
    assert int(dut.lost.value) == reported_lost == m.lost
    assert int(dut.words.value) == len(f.type)
    pairs = list(zip(f.address[f.type == 0].tolist(), f.timestamp[f.type == 0].tolist(), strict=True))
    assert len(set(pairs)) == len(pairs), "a spike was emitted twice"
    # per address, words leave in timestamp order
    for a in set(f.address[f.type == 0].tolist()):
        ts = [t for aa, t in pairs if aa == a]
        assert ts == sorted(ts)
    if tb.cadence == "queue":      # one queue: words leave in arrival order (timestamps never go back)
        assert f.timestamp[f.type == 0].tolist() == sorted(f.timestamp[f.type == 0].tolist())
    runner.report(spikes_in=spikes_in, lost=reported_lost)


@cocotb.test(skip=runner.params().get("cadence", "cycle") != "queue")
async def full_load_queue(dut):
    """The Detector's most (every address every other frame, frames back to back), ready high: one
    word per cycle while words wait; at the default depth nothing is lost and no word waits more than
    n/2 cycles; a shallower queue loses, counts and reports."""
    tb = EncoderTB(dut)
    await tb.start()
    n = tb.n
    frames = 8
    sched = all_firing_schedule(n, frames)
    await tb.drive(sched)
    await tb.drive([(0, frames, frames)] * (2 * n + 8))
    m = tb.replay()
    handed = [(i, w) for i, (*_, w) in enumerate(tb.trace) if w is not None]
    f = aer.unpack(np.array([w for _, w in handed], dtype=np.uint64))
    spikes_in = sum(bin(b).count("1") for b, *_ in sched)
    lost = int(f.address[f.type == AERType.OVERFLOW.value].sum())
    assert spikes_in == int((f.type == 0).sum()) + lost == n * frames // 2
    assert m.idle and lost == m.lost == int(dut.lost.value)
    # the cycle each input spike entered: edge index in the trace of its beat
    entered = {}
    for i, (bits, ts, _, _, _) in enumerate(tb.trace):
        for a in range(n):
            if bits >> a & 1:
                entered[(a, ts)] = i
    waits = [i - entered[(int(a), int(t))] for (i, _), a, t, ty in zip(handed, f.address, f.timestamp, f.type,
                                                                                 strict=True)
             if ty == AERType.SPIKE.value]
    first = handed[0][0]
    busy = [i for i, _ in handed]
    full_depth = tb.queue_depth is None or tb.queue_depth >= (n + 1) // 2
    if full_depth:
        assert lost == 0
        assert max(waits) <= n // 2 + 1, max(waits)
        # work-conserving: a word leaves at every edge after a cycle that had a word waiting or arriving
        backlog, expect = 0, []
        for i, (bits, *_rest) in enumerate(tb.trace):
            backlog += bin(bits).count("1")
            if backlog:
                expect.append(i + 1)
                backlog -= 1
        assert busy == expect
    else:
        assert lost > 0
    k = min(len(busy), max(1, n // 2))   # the first frame's beats bring two words each: no gap yet
    runner.report(worst_wait=max(waits), queue_lost=lost, words_per_cycle=k / (busy[k - 1] - first + 1))


@cocotb.test(skip=runner.params().get("cadence", "cycle") != "cycle")
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
@cocotb.test(skip=runner.params().get("ts_bits", 32) > 8 or runner.params().get("cadence", "cycle") != "cycle")
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


@cocotb.test(skip=runner.params().get("cadence", "cycle") != "queue")
async def stall_queue(dut):
    """A host stall far longer than a frame: the queue fills, later beats are lost, counted and
    reported; the queued words keep their exact timestamps (no epoch in this cadence)."""
    tb = EncoderTB(dut, backpressure=1.0)
    await tb.start()
    n = tb.n
    frames = 40
    sched = all_firing_schedule(n, frames)
    sched = [(b, ts * 1000 + 3, ts * 1000 + 3) for b, ts, _ in sched]   # frames far apart in time
    await tb.drive(sched)
    tb.sink.backpressure = 0.0
    end = sched[-1][2]
    await tb.drive([(0, end, end)] * (4 * n + 16))
    m = tb.replay()
    f = aer.unpack(tb.words())
    spikes_in = sum(bin(b).count("1") for b, *_ in sched)
    lost = int(f.address[f.type == AERType.OVERFLOW.value].sum())
    assert lost > 0 and spikes_in == int((f.type == 0).sum()) + lost and m.idle
    sent = {(a, ts) for b, ts, _ in sched for a in range(n) if b >> a & 1}
    assert {(int(a), int(t)) for a, t in zip(f.address[f.type == 0], f.timestamp[f.type == 0], strict=True)} <= sent


CASES = [   # (n_addresses, ts_bits, backpressure, cadence, queue_depth); 64 addresses: long (tests/conftest.py)
    pytest.param(64, 16, 0.0, "cycle", None, marks=pytest.mark.long),
    pytest.param(64, 16, 0.5, "cycle", None, marks=pytest.mark.long),
    (5, 6, 0.3, "cycle", None), (1, 4, 0.7, "cycle", None),
    pytest.param(64, 16, 0.0, "queue", None, marks=pytest.mark.long),
    pytest.param(64, 16, 0.5, "queue", None, marks=pytest.mark.long),
    (6, 16, 0.3, "queue", None), (7, 16, 0.6, "queue", None), (12, 16, 0.6, "queue", 2),
    (1, 16, 0.5, "queue", None),
]


@pytest.mark.parametrize("n_addresses,ts_bits,backpressure,cadence,queue_depth", CASES)
@pytest.mark.parametrize("cycles", [800, pytest.param(4000, marks=pytest.mark.long)])
def test_encoder(n_addresses, ts_bits, backpressure, cadence, queue_depth, cycles):
    report = runner.run(_factory, design="aer_encoder", test_module="test_aer_encoder",
                        bench_params={"n_addresses": n_addresses, "ts_bits": ts_bits,
                                      "backpressure": backpressure, "seed": n_addresses + 3,
                                      "cycles": cycles, "cadence": cadence, "queue_depth": queue_depth})
    if cadence == "cycle":
        assert report["worst_wait"] <= n_addresses + 1
    elif queue_depth is None:
        assert report["queue_lost"] == 0 and report["worst_wait"] <= n_addresses // 2 + 1
    else:
        assert report["queue_lost"] > 0
    assert report["words_per_cycle"] == 1.0 and report["latency_cycles"] == 1
    assert report["spikes_in"] > 0


@pytest.mark.parametrize("kwargs,exc,match", [
    ({"n_addresses": 0}, ValueError, "n_addresses"), ({"n_addresses": 4097}, ValueError, "n_addresses"),
    ({"n_addresses": 8.0}, TypeError, "n_addresses"), ({"n_addresses": 8, "ts_bits": 3}, ValueError, "ts_bits"),
    ({"n_addresses": 8, "ts_bits": 33}, ValueError, "ts_bits"),
    ({"n_addresses": 8, "cadence": "sweep"}, ValueError, "cadence"),
    ({"n_addresses": 8, "cadence": 1}, TypeError, "cadence"),
    ({"n_addresses": 8, "cadence": "queue", "queue_depth": 6}, ValueError, "power of two"),
    ({"n_addresses": 8, "cadence": "queue", "queue_depth": 1}, ValueError, "power of two"),
    ({"n_addresses": 8, "cadence": "queue", "queue_depth": 512}, ValueError, "512 entries of 36 bits"),
    ({"n_addresses": 8, "cadence": "queue", "queue_depth": 4.0}, TypeError, "queue_depth"),
    ({"n_addresses": 8, "queue_depth": 4}, ValueError, "cadence='queue' only")])
def test_bad_parameters(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        AEREncoder(**kwargs)
    with pytest.raises(exc, match=match):
        n = kwargs.pop("n_addresses")
        model.AEREncoder(n, kwargs.pop("ts_bits", 16), **kwargs)


def test_queue_defaults_and_input_rule():
    """The queue's default depth (N/2 rounded up to a power of two, at most 256) and the model's
    refusal of spikes outside one beat's pair."""
    assert [AEREncoder(n, cadence="queue").queue_depth for n in (1, 3, 8, 64, 100, 256, 4096)] == \
        [2, 2, 4, 32, 64, 128, 256]
    m = model.AEREncoder(8, cadence="queue")
    m.step(0b1100)                                 # addresses 2 and 3: one pair
    with pytest.raises(ValueError, match=r"one beat per cycle.*\[1, 2\]"):
        m.step(0b0110)                             # addresses 1 and 2: two pairs
    with pytest.raises(ValueError, match=r"\[8\]"):
        m.step(1 << 8)                             # beyond the addresses
