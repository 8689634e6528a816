"""AERRouter against its cycle-exact model on Verilator (DESIGN.md §4)."""


import numpy as np
import pytest

import cocotb

from bioloop.gateware.layouts import AERType, Port
from bioloop.gateware.aer_router import AERRouter
from bioloop.host import aer
from bioloop.host.models import aer_router as model
from bioloop.sim import runner
from bioloop.sim.bench import TB, write_routes



def _factory(n_addresses, fanout, **_):
    return AERRouter(n_addresses, fanout)


def random_table(rng, n, F, host_fraction=0.1):
    """Rows with fanout 0, 1 and F on addresses 0, 1, 2; random fanouts elsewhere."""
    table = {}
    for a in range(n):
        k = {0: 0, 1: 1, 2: F}.get(a, int(rng.integers(0, F + 1)))
        table[a] = [(Port.HOST if rng.random() < host_fraction else Port.STIM,
                     int(rng.integers(0, 4096)), int(rng.integers(-32768, 32768))) for _ in range(k)]
    return table


class RouterTB(TB):
    def __init__(self, dut, idle=0.0, host_bp=0.0, stim_bp=0.0):
        super().__init__(dut, seed=runner.seed())
        p = runner.params()
        self.n, self.F = p["n_addresses"], p["fanout"]
        for port in ("table_write", "fanout_write"):
            getattr(dut, f"{port}__en").value = 0
        dut.clear.value = 0
        self.src = self.source("aer", idle=idle)
        self.host = self.sink("host", backpressure=host_bp)
        self.stim = self.sink("stim", backpressure=stim_bp)
        self.trace = self.record(self._sample)

    def _sample(self):
        """Per edge: word offered, host and stim ready, accepted, host and stim handshakes."""
        d = self.dut
        offered = int(d.aer__payload.value) if int(d.aer__valid.value) else None
        hr, sr = int(d.host__ready.value), int(d.stim__ready.value)
        acc = offered is not None and bool(int(d.aer__ready.value))
        host = int(d.host__payload.value) if int(d.host__valid.value) and hr else None
        stim = int(d.stim__payload.value) if int(d.stim__valid.value) and sr else None
        return offered, hr, sr, acc, host, stim

    def replay(self, table):
        m = model.AERRouter(self.n, self.F)
        for a, routes in table.items():
            m.set_route(a, routes)
        for i, (offered, hr, sr, acc, host, stim) in enumerate(self.trace):
            out = m.step(offered, bool(hr), bool(sr))
            exp_stim = None if stim is None else model.unpack_routed(stim)
            assert (acc, host, exp_stim) == (out.accepted, out.host, out.stim), (
                f"edge {i}: RTL {(acc, host, exp_stim)} model {tuple(out)}")
        return m


def random_words(rng, n, count):
    words = []
    for _ in range(count):
        r = rng.random()
        t = AERType.SPIKE if r < 0.85 else AERType.OVERFLOW if r < 0.9 else AERType.TICK if r < 0.95 \
            else AERType.STIM
        a = int(rng.integers(0, n + 3)) if t == AERType.SPIKE else int(rng.integers(0, 1 << 20))
        words.append(aer.pack_one(a, int(rng.integers(0, 256)), t, int(rng.integers(0, 1 << 32))))
    return words


@cocotb.test()
async def randomized(dut):
    """Random table and traffic, random idle and backpressure on both outputs: cycle-exact, counted."""
    p = runner.params()
    tb = RouterTB(dut, idle=p["idle"], host_bp=p["host_bp"], stim_bp=p["stim_bp"])
    rng = np.random.default_rng(p["seed"])
    await tb.reset()
    table = random_table(rng, tb.n, tb.F)
    await write_routes(tb, table, tb.F)
    tb.recording = True
    words = random_words(rng, tb.n, p["words"])
    tb.src.send(words)
    await tb.src.drain()
    await tb.cycles(tb.F + 20)
    while int(dut.stim__valid.value) or int(dut.host__valid.value):
        await tb.cycles(10)
    m = tb.replay(table)
    # Counts: nothing lost, nothing duplicated.
    assert [w for _, w in tb.src.sent] == words
    exp_host, exp_stim, unmapped = [], [], 0
    for w in words:
        a, src, t, ts = aer.unpack_one(w)
        exp_host.append(w)
        if t != AERType.SPIKE:
            continue
        routes = table.get(a, [])
        if not routes:
            unmapped += 1
        for port, target, weight in routes:
            if port == Port.STIM:
                exp_stim.append(model.Routed(target, weight, a, ts))
            else:
                exp_host.append(aer.pack_one(target, src, AERType.SPIKE, ts))
    assert sorted(tb.host.payloads) == sorted(exp_host)
    assert [model.unpack_routed(s) for s in tb.stim.payloads] == exp_stim
    assert int(dut.unmapped.value) == unmapped == m.unmapped
    assert int(dut.routed.value) == len(exp_stim) + len(exp_host) - len(words)
    runner.report(words=len(words), entries=len(exp_stim))


@cocotb.test()
async def throughput(dut):
    """Ready high, no idle: one word per cycle at fanout 0 or 1, one entry per cycle at fanout F."""
    tb = RouterTB(dut)
    await tb.reset()
    n, F = tb.n, tb.F
    table = {a: ([(Port.STIM, a, 256)] if a % 2 else []) for a in range(n)}
    table[0] = [(Port.STIM, k, 256) for k in range(F)]
    await write_routes(tb, table, F)
    tb.recording = True
    light = [aer.pack_one(a, 0, AERType.SPIKE, a) for a in range(1, n)] * 4
    tb.src.send(light)
    await tb.src.drain()
    sent = [c for c, _ in tb.src.sent]
    words_per_cycle = len(sent) / (sent[-1] - sent[0] + 1)
    assert words_per_cycle == 1.0
    await tb.cycles(4)
    heavy = [aer.pack_one(0, 0, AERType.SPIKE, t) for t in range(8)]
    start = len(tb.stim.received)
    tb.src.send(heavy)
    await tb.src.drain()
    await tb.cycles(F + 4)
    cyc = [c for c, _ in tb.stim.received[start:]]
    assert len(cyc) == 8 * F
    entries_per_cycle = len(cyc) / (cyc[-1] - cyc[0] + 1)
    assert entries_per_cycle == 1.0
    # latency: host copy and first stim entry valid one cycle after the input handshake
    c_in = tb.src.sent[-1][0]
    first_stim = [c for c, _ in tb.stim.received if c > c_in][0]
    assert tb.host.received[-1][0] == c_in + 1
    assert first_stim == c_in + 1
    tb.replay(table)
    runner.report(words_per_cycle=words_per_cycle, entries_per_cycle=entries_per_cycle,
                  host_copy_latency=tb.host.received[-1][0] - c_in)


@pytest.mark.parametrize("n_addresses,fanout,idle,host_bp,stim_bp", [   # 64 addresses: long (tests/conftest.py)
    pytest.param(64, 16, 0.0, 0.0, 0.0, marks=pytest.mark.long),
    pytest.param(64, 16, 0.3, 0.4, 0.4, marks=pytest.mark.long), (8, 1, 0.2, 0.6, 0.1), (5, 3, 0.5, 0.1, 0.7)])
@pytest.mark.parametrize("words", [400, pytest.param(2000, marks=pytest.mark.long)])
def test_router(n_addresses, fanout, idle, host_bp, stim_bp, words):
    report = runner.run(_factory, design="aer_router", test_module="test_aer_router",
                        bench_params={"n_addresses": n_addresses, "fanout": fanout, "idle": idle,
                                      "host_bp": host_bp, "stim_bp": stim_bp, "seed": 5 + fanout,
                                      "words": words})
    assert report["words_per_cycle"] == 1.0 and report["entries_per_cycle"] == 1.0
    assert report["host_copy_latency"] == 1


@pytest.mark.parametrize("kwargs,exc", [
    ({"fanout": 0}, ValueError), ({"fanout": 257}, ValueError), ({"fanout": 2.0}, TypeError),
    ({"n_addresses": 0}, ValueError)])
def test_bad_parameters(kwargs, exc):
    with pytest.raises(exc, match="fanout|n_addresses"):
        AERRouter(**kwargs)


def test_model_rejects_bad_routes():
    m = model.AERRouter(4, 2)
    with pytest.raises(ValueError, match="fanout is 2"):
        m.set_route(0, [(Port.STIM, 0, 0)] * 3)
    with pytest.raises(ValueError, match="weight 40000"):
        m.set_route(0, [(Port.STIM, 0, 40000)])
    with pytest.raises(ValueError, match="address 4 outside"):
        m.set_route(4, [])
    with pytest.raises(ValueError, match="target 5000"):
        m.set_route(1, [(Port.STIM, 5000, 0)])
