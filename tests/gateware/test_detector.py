"""Detector against its model on Verilator: randomized and directed (DESIGN.md §4)."""


import numpy as np
import pytest

from bioloop.gateware.detector import Detector
from bioloop.gateware.layouts import Polarity
from bioloop.host.models import detector as model
from bioloop.sim import runner

#: Cycles from the handshake of a beat to its detections on `spikes` (two register stages:
#: the RAM read and the decision).
LATENCY = 2

try:
    import cocotb
    from cocotb.triggers import RisingEdge
    from bioloop.sim.bench import TB, wait_until, write_table
    from bioloop.sim.stimulus import beat_payloads, spiking_frames
except ImportError:  # collected outside the simulator without the [sim] extra
    cocotb = None


def _config(n, seed):
    rng = np.random.default_rng(seed)
    thresholds = rng.integers(200, 3000, n)
    polarity = rng.integers(0, 3, n)
    polarity[rng.integers(0, n)] = Polarity.OFF.value
    return thresholds.tolist(), polarity.tolist()


def _factory(n_channels, seed, **_):
    thresholds, polarity = _config(n_channels, seed)
    return Detector(n_channels, thresholds=thresholds, polarity=polarity)


if cocotb is not None:

    class DetectorTB(TB):
        def __init__(self, dut, idle=0.0):
            super().__init__(dut, seed=runner.seed())
            p = runner.params()
            self.n = p["n_channels"]
            self.thresholds, self.polarity = _config(self.n, p["seed"])
            self.src = self.source("samples", idle=idle)
            self.detections = []     # (cycle, timestamp, channel)
            for port in ("threshold_write", "polarity_write"):
                getattr(dut, f"{port}__en").value = 0
            dut.refractory.value = 0
            dut.clear.value = 0
            cocotb.start_soon(self._monitor())

        async def _monitor(self):
            while True:
                await RisingEdge(self.clk)
                v = int(self.dut.spikes.value)
                if v:
                    ts = int(self.dut.timestamp.value)
                    for c in range(self.n):
                        if v >> c & 1:
                            self.detections.append((self.cycle, ts, c))

        async def start(self, refractory=0):
            self.dut.refractory.value = refractory
            await self.reset()
            await wait_until(self, lambda: int(self.dut.samples__ready.value), 5000, "the reset sweep")

        def model(self, refractory):
            return model.Detector(self.n, self.thresholds, self.polarity, refractory)

        async def run_beats(self, payloads):
            self.src.send(payloads)
            await self.src.drain()
            await self.cycles(3)

        def check_against(self, det, payloads):
            """Scoreboard: every beat's detections, in order, LATENCY cycles after its handshake."""
            expected = []
            for (cycle, p) in self.src.sent[-len(payloads):]:
                hits, frame = det.step(p)
                expected += [(cycle + LATENCY, frame, c) for c in hits]
            got = self.detections[-len(expected):] if expected else []
            assert len(self.detections) >= len(expected)
            assert got == expected, f"first mismatch: {next((g, e) for g, e in zip(got, expected, strict=False) if g != e)}"
            return expected

    @cocotb.test()
    async def randomized(dut):
        """Poisson spiking plus bursts, random idle, random refractory: exact detections and counters."""
        p = runner.params()
        tb = DetectorTB(dut, idle=p["idle"])
        rng = np.random.default_rng(p["seed"])
        refractory = int(rng.integers(0, 6))
        await tb.start(refractory)
        frames = spiking_frames(rng, p["frames"], tb.n, tb.thresholds)
        payloads = beat_payloads(frames)
        await tb.run_beats(payloads)
        det = tb.model(refractory)
        expected = tb.check_against(det, payloads)
        assert len(tb.detections) == len(expected) == int(dut.detections.value)
        assert int(dut.frames.value) == p["frames"] == int(dut.frame.value)
        assert int(dut.framing_errors.value) == 0
        # The frame-vectorised model agrees with the beat model.
        rows = model.Detector(tb.n, tb.thresholds, tb.polarity, refractory).process(frames)
        assert [tuple(r) for r in rows.tolist()] == [(f, c) for _, f, c in expected]
        if isinstance(p["idle"], list) and p["idle"].count(0) == 1:
            # a deterministic idle pattern with one active cycle per period, and a Detector that
            # is always ready: exactly one handshake per period
            sent = np.diff([c for c, _ in tb.src.sent])
            assert set(sent.tolist()) == {len(p["idle"])}, sorted(set(sent.tolist()))
        if p["idle"] == 0:
            sent = [c for c, _ in tb.src.sent]
            # one beat per cycle: consecutive handshakes on consecutive cycles
            assert sent[-1] - sent[0] == len(sent) - 1
            runner.report(beats_per_cycle=len(sent) / (sent[-1] - sent[0] + 1))
        runner.report(detections=len(expected), beats=len(payloads))

    @cocotb.test()
    async def directed_edges(dut):
        """First frame and threshold equality, both polarities, OFF channels silent."""
        tb = DetectorTB(dut)
        n = tb.n
        await tb.start(0)
        th = np.array(tb.thresholds)
        pol = np.array(tb.polarity)
        side = np.where(pol == Polarity.POSITIVE.value, 1, -1)
        frames = np.zeros((6, n), np.int16)
        frames[0] = side * th            # exactly θ in the very first frame: a detection at frame 0
        frames[2] = side * (th - 1)      # one short of θ: nothing
        frames[4] = -side * th           # the opposite side: only BOTH channels fire
        payloads = beat_payloads(frames)
        await tb.run_beats(payloads)
        expected = tb.check_against(tb.model(0), payloads)
        got = {(f, c) for _, f, c in expected}
        on = pol != Polarity.OFF.value
        assert got == {(0, c) for c in range(n) if on[c]} | \
            {(4, c) for c in range(n) if pol[c] == Polarity.BOTH.value}

    @cocotb.test()
    async def directed_refractory_boundary(dut):
        """A crossing exactly R frames after a detection counts; R-1 frames after does not."""
        tb = DetectorTB(dut)
        n, R = tb.n, 5
        await tb.start(R)
        th = np.array(tb.thresholds)
        pol = np.array(tb.polarity)
        side = np.where(pol == Polarity.POSITIVE.value, 1, -1)
        frames = np.zeros((3 * R, n), np.int16)
        frames[1] = side * th
        even = np.arange(n) % 2 == 0
        frames[1 + R, even] = (side * th)[even]        # exactly R later: detected
        frames[R, ~even] = (side * th)[~even]          # R-1 later: refractory
        payloads = beat_payloads(frames)
        await tb.run_beats(payloads)
        expected = tb.check_against(tb.model(R), payloads)
        got = {(f, c) for _, f, c in expected}
        on = pol != Polarity.OFF.value
        assert got == {(1, c) for c in range(n) if on[c]} | {(1 + R, c) for c in range(n) if on[c] and even[c]}

    @cocotb.test()
    async def framing_by_count(dut):
        """Frames by count, TLAST optional (DESIGN.md §3): none, consistent, and one mid-frame
        (counted, the frame ends there, the next beat is channel 0 again)."""
        tb = DetectorTB(dut)
        n = tb.n
        nb = n // 2
        await tb.start(0)
        rng = np.random.default_rng(7)
        frames = spiking_frames(rng, 12, n, tb.thresholds, rate=0.2)
        th, pol = np.array(tb.thresholds), np.array(tb.polarity)
        side = np.where(pol == Polarity.POSITIVE.value, 1, -1)
        frames[10, 0], frames[11, 0] = 0, side[0] * th[0]   # channel 0 crosses in frame 11
        beats, last = model.beats_from_frames(frames)
        last[:] = False                       # no TLAST on frames 0-7 ...
        last[9 * nb - 1] = True               # ... a consistent one on frame 8's last beat
        beats, last = list(beats), list(last)
        errors = 0
        if nb >= 2:                           # a transfer cut in the middle of frame 10
            cut = 10 * nb + nb // 2
            del beats[cut:11 * nb], last[cut:11 * nb]
            last[cut - 1] = True
            errors = 1
        payloads = beat_payloads(np.array(beats, np.uint32), np.array(last))
        await tb.run_beats(payloads)
        det = tb.model(0)
        expected = tb.check_against(det, payloads)
        assert int(dut.framing_errors.value) == det.framing_errors == errors
        assert int(dut.frames.value) == det.frames == 12 == int(dut.frame.value)
        # Independent truth for the whole frames before the cut: the frame-vectorised model.
        rows = model.Detector(n, tb.thresholds, tb.polarity, 0).process(frames[:10])
        assert [(f, c) for _, f, c in expected if f < 10] == [tuple(r) for r in rows.tolist()]
        # After the resynchronising TLAST the first beat is channels 0 and 1 of frame 11.
        if pol[0] != Polarity.OFF.value:
            assert (11, 0) in {(f, c) for _, f, c in expected}

    @cocotb.test()
    async def all_channels_at_once(dut):
        """Every channel crosses in the same frame: N detections, two per cycle, none lost."""
        tb = DetectorTB(dut)
        n = tb.n
        await tb.start(0)
        pol = np.array(tb.polarity)
        side = np.where(pol == Polarity.POSITIVE.value, 1, -1)
        frames = np.zeros((3, n), np.int16)
        frames[1] = side * (np.array(tb.thresholds) + 1)
        payloads = beat_payloads(frames)
        await tb.run_beats(payloads)
        expected = tb.check_against(tb.model(0), payloads)
        assert len(expected) == int((pol != Polarity.OFF.value).sum())

    @cocotb.test()
    async def write_ports_and_clear(dut):
        """Thresholds and polarities written through the write ports take effect; clear zeroes counters."""
        tb = DetectorTB(dut)
        n = tb.n
        await tb.start(0)
        new_th = [1000 + 10 * c for c in range(n)]
        new_pol = [Polarity.POSITIVE.value if c % 2 else Polarity.BOTH.value for c in range(n)]
        await write_table(tb, "threshold_write", enumerate(new_th))
        await write_table(tb, "polarity_write", enumerate(new_pol))
        await RisingEdge(dut.clk)
        tb.thresholds, tb.polarity = new_th, new_pol
        frames = np.zeros((4, n), np.int16)
        frames[1] = np.array(new_th)            # equality, positive side: all channels
        frames[3] = np.array(new_th) - 1        # one below: none
        payloads = beat_payloads(frames)
        await tb.run_beats(payloads)
        expected = tb.check_against(tb.model(0), payloads)
        assert {c for _, _, c in expected} == set(range(n))
        assert int(dut.detections.value) == n
        dut.clear.value = 1
        await RisingEdge(dut.clk)
        dut.clear.value = 0
        await RisingEdge(dut.clk)
        await RisingEdge(dut.clk)
        assert int(dut.detections.value) == 0 and int(dut.frames.value) == 0


@pytest.mark.parametrize("n_channels,idle", [(2, 0.0), pytest.param(64, 0.0, marks=pytest.mark.long),
                                              pytest.param(64, 0.3, marks=pytest.mark.long), (6, 0.5),
                                              (6, [1, 1, 1, 0])])   # one beat in four, deterministic
@pytest.mark.parametrize("frames", [150, pytest.param(600, marks=pytest.mark.long)])
def test_detector(n_channels, idle, frames):
    frames *= 4 if n_channels <= 6 else 1
    report = runner.run(_factory, design="detector", test_module="test_detector",
                        bench_params={"n_channels": n_channels, "seed": 11 + n_channels,
                                      "idle": idle, "frames": frames})
    assert report["detections"] > 0
    if idle == 0.0:
        assert report["beats_per_cycle"] == 1.0


@pytest.mark.parametrize("n", [0, 1, 3, 4097, 4098])
def test_bad_channel_counts(n):
    with pytest.raises(ValueError, match="n_channels"):
        Detector(n)


def test_bad_types_and_values():
    with pytest.raises(TypeError, match="n_channels"):
        Detector(64.0)
    with pytest.raises(ValueError, match="threshold of channel 3"):
        Detector(4, thresholds=[1, 2, 3, 40000])
    with pytest.raises(ValueError, match="polarity has 3 entries"):
        Detector(4, polarity=[0, 0, 0])


@pytest.mark.long   # the largest size, 4096 channels: about 12 CPU s of elaboration (tests/conftest.py)
def test_max_channels_elaborates():
    from amaranth.back import rtlil
    assert "state_mem" in rtlil.convert(Detector(4096))
