"""AERPath against its cycle-exact model and an event scoreboard on Verilator; L_aer (DESIGN.md §6)."""

import time

import numpy as np
import pytest

import cocotb

from bioloop.gateware.aer_path import AERPath
from bioloop.gateware.layouts import AERType, Polarity, Port
from bioloop.host import aer
from bioloop.host.models import aer_path as model
from bioloop.host.models import aer_router as router_model
from bioloop.host.models.detector import Detector as DetectorModel
from bioloop.sim import runner
from bioloop.sim.bench import TB, wait_until, write_routes
from bioloop.sim.stimulus import beat_payloads, spiking_frames



def _config(n, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(300, 3000, n).tolist(), rng.integers(0, 3, n).tolist()


def _factory(n_channels, fanout, seed, encoder_cadence="queue", **_):
    thresholds, polarity = _config(n_channels, seed)
    return AERPath(n_channels, fanout, thresholds=thresholds, polarity=polarity, encoder_cadence=encoder_cadence)


class PathTB(TB):
    def __init__(self, dut, idle=0.0, host_bp=0.0, stim_bp=0.0):
        super().__init__(dut, seed=runner.seed())
        p = runner.params()
        self.n, self.F = p["n_channels"], p["fanout"]
        self.thresholds, self.polarity = _config(self.n, p["seed"])
        for port in ("threshold_write", "polarity_write", "table_write", "fanout_write"):
            getattr(dut, f"{port}__en").value = 0
        dut.clear.value = 0
        dut.refractory.value = 0
        dut.source.value = p["source"]
        self.src = self.source("samples", idle=idle)
        self.host = self.sink("host", backpressure=host_bp)
        self.stim = self.sink("stim", backpressure=stim_bp)
        self.trace = self.record(self._sample)

    def _sample(self):
        """Per edge: beat offered, host and stim ready, host and stim payloads while valid."""
        d = self.dut
        beat = int(d.samples__payload.value) if int(d.samples__valid.value) else None
        hr, sr = int(d.host__ready.value), int(d.stim__ready.value)
        hv = int(d.host__payload.value) if int(d.host__valid.value) else None
        sv = int(d.stim__payload.value) if int(d.stim__valid.value) else None
        return beat, hr, sr, hv, sv

    async def program(self, table, refractory):
        self.dut.refractory.value = refractory
        await write_routes(self, table, self.F)

    def replay(self, table, refractory, source):
        m = model.AERPath(self.n, self.F, self.thresholds, self.polarity, refractory, source,
                          encoder_cadence=runner.params().get("encoder_cadence", "queue"))
        for a, routes in table.items():
            m.router.set_route(a, routes)
        for i, (beat, hr, sr, hv, sv) in enumerate(self.trace):
            out = m.step(beat, bool(hr), bool(sr))
            got_host = hv if hr else None
            got_stim = router_model.unpack_routed(sv) if (sv is not None and sr) else None
            assert (got_host, got_stim) == (out.host, out.stim), (
                f"edge {i}: RTL host {got_host and hex(got_host)} stim {got_stim}; model {out}")
        return m

    def l_aer(self):
        """Edges from each crossing beat's handshake to the first edge its SPIKE word is valid on host."""
        det = DetectorModel(self.n, self.thresholds, self.polarity, self.refractory)
        beat_edge = {}
        for i, (beat, *_rest) in enumerate(self.trace):
            if beat is None:
                continue
            hits, frame = det.step(beat)
            for c in hits:
                beat_edge[(frame, c)] = i
        lat, prev = [], None
        for i, (_, hr, _, hv, _) in enumerate(self.trace):
            if hv is not None and hv != prev:
                a, _, t, ts = aer.unpack_one(hv)
                if t == AERType.SPIKE and (ts, a) in beat_edge:
                    lat.append(i - beat_edge.pop((ts, a)))
            prev = hv if (hv is not None and not hr) else None
        return np.array(lat)


@cocotb.test()
async def randomized(dut):
    """Poisson spiking and bursts through the whole path: cycle-exact, every detection accounted for."""
    p = runner.params()
    tb = PathTB(dut, idle=p["idle"], host_bp=p["host_bp"], stim_bp=p["stim_bp"])
    rng = np.random.default_rng(p["seed"])
    await tb.reset()
    await wait_until(tb, lambda: int(dut.samples__ready.value), 5000, "the reset sweep")
    tb.refractory = int(rng.integers(0, 4))
    table = {a: [(Port.STIM, int(rng.integers(0, 64)), int(rng.integers(-512, 512)))
                 for _ in range({0: 0, 1: 1, 2: tb.F}.get(a, int(rng.integers(0, 3))))]
             for a in range(tb.n)}
    await tb.program(table, tb.refractory)
    tb.recording = True
    frames = spiking_frames(rng, p["frames"], tb.n, tb.thresholds, rate=p["rate"],
                            burst_prob=p.get("burst_prob", 0.03))
    tb.src.send(beat_payloads(frames))
    t0, c0 = time.perf_counter(), tb.cycle
    await tb.src.drain(timeout=10 ** 7)
    wall, sim_cycles = time.perf_counter() - t0, tb.cycle - c0
    for _ in range(200):
        await tb.cycles(10 * tb.F)
        if not (int(dut.host__valid.value) or int(dut.stim__valid.value)):
            break
    m = tb.replay(table, tb.refractory, p["source"])

    detections = DetectorModel(tb.n, tb.thresholds, tb.polarity, tb.refractory).process(frames)
    f = aer.unpack(np.array(tb.host.payloads, dtype=np.uint64))
    spike = f.type == AERType.SPIKE.value
    lost = int(f.address[f.type == AERType.OVERFLOW.value].sum())
    got = list(zip(f.timestamp[spike].tolist(), f.address[spike].tolist(), strict=True))
    assert len(got) == len(set(got)), "a detection was emitted twice"
    assert set(got) <= {tuple(r) for r in detections.tolist()}
    assert len(got) + lost == len(detections) == int(dut.detections.value)
    assert lost == int(dut.lost.value) == m.encoder.lost
    assert (f.source == p["source"]).all()
    for a in set(f.address[spike].tolist()):
        ts = f.timestamp[spike][f.address[spike] == a]
        assert (np.diff(ts.astype(np.int64)) > 0).all(), f"address {a} out of order"
    expected_stim = [router_model.Routed(t, w, a, ts) for ts, a in got for (_, t, w) in table[a]]
    assert [router_model.unpack_routed(s) for s in tb.stim.payloads] == expected_stim
    assert int(dut.routed.value) == len(expected_stim)
    assert int(dut.unmapped.value) == sum(1 for _, a in got if not table[a])
    assert int(dut.frames.value) == p["frames"]
    lat = tb.l_aer()
    assert len(lat) > 0
    report = {"detections": len(detections), "lost": lost, "words": len(got),
              "l_aer_p50": float(np.percentile(lat, 50)), "l_aer_p99": float(np.percentile(lat, 99)),
              "l_aer_max": int(lat.max()), "l_aer_min": int(lat.min()),
              "cocotb_cycles_per_s": sim_cycles / wall}
    if p["host_bp"] == 0 and p["stim_bp"] == 0 and p["idle"] == 0:
        sent = [c for c, _ in tb.src.sent]
        report["beats_per_cycle"] = len(sent) / (sent[-1] - sent[0] + 1)
    runner.report(**report)


@cocotb.test()
async def isolated_latency(dut):
    """A lone crossing with ready high: its SPIKE word is valid on host exactly 4 edges after the beat."""
    tb = PathTB(dut)
    await tb.reset()
    await wait_until(tb, lambda: int(dut.samples__ready.value), 5000, "the reset sweep")
    tb.refractory = 0
    await tb.program({}, 0)
    tb.recording = True
    for c in range(tb.n):
        frames = np.zeros((2, tb.n), np.int16)
        side = 1 if tb.polarity[c] == Polarity.POSITIVE.value else -1
        frames[1, c] = side * tb.thresholds[c]
        tb.src.send(beat_payloads(frames))
        await tb.src.drain()
        await tb.cycles(8)
    lat = tb.l_aer()
    assert len(lat) == tb.n and set(lat.tolist()) == {4}
    runner.report(l_aer_isolated=int(lat.max()))


@pytest.mark.parametrize("n_channels,fanout,idle,host_bp,stim_bp,rate,encoder_cadence", [   # N = 64: long
    pytest.param(64, 16, 0.0, 0.0, 0.0, 0.01, "queue", marks=pytest.mark.long),
    pytest.param(64, 16, 0.2, 0.3, 0.3, 0.01, "queue", marks=pytest.mark.long),
    pytest.param(64, 16, 0.2, 0.3, 0.3, 0.01, "cycle", marks=pytest.mark.long),
    (8, 4, 0.0, 0.0, 0.0, 0.05, "queue"), (8, 4, 0.4, 0.5, 0.2, 0.05, "queue"),   # unstalled: full throughput
    (8, 4, 0.0, 0.0, 0.0, 0.05, "cycle"), (8, 4, 0.4, 0.5, 0.2, 0.05, "cycle"),
    # deterministic idle and backpressure patterns (sim.bench.pauses: 1 = pause that cycle)
    (8, 4, [1, 0], [0, 0, 1], [1, 1, 1, 0], 0.05, "queue")])
@pytest.mark.parametrize("frames", [200, pytest.param(1000, marks=pytest.mark.long)])
def test_aer_path(n_channels, fanout, idle, host_bp, stim_bp, rate, encoder_cadence, frames):
    report = runner.run(_factory, design="aer_path", test_module="test_aer_path",
                        bench_params={"n_channels": n_channels, "fanout": fanout, "idle": idle,
                                      "host_bp": host_bp, "stim_bp": stim_bp, "rate": rate,
                                      "seed": 21 + n_channels, "source": 0x5A,
                                      "frames": frames, "encoder_cadence": encoder_cadence})
    assert report["detections"] > 50
    assert report["l_aer_isolated"] == 4
    if host_bp == 0 and stim_bp == 0 and idle == 0:
        assert report["beats_per_cycle"] == 1.0
        assert report["l_aer_min"] == 4
