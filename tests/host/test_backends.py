"""The ``model`` backend: the Bus protocol on the Core model, its timing contract and bad input.

The model's equality with the RTL is ``tests/gateware/test_core.py``; here the
model is checked against independent truths (the Detector model, the
AERRouter semantics, the DESIGN.md §6 latencies), its bulk path against its
own edge-by-edge path, and the Driver's behaviour on it when things go wrong.
"""

from __future__ import annotations

import numpy as np
import pytest

from bioloop.gateware.layouts import AERType
from bioloop.host.aer import unpack
from bioloop.host.backends import BusTiming, FrameLeds, ModelBus, WordQueue
from bioloop.host.bus import Bus, BusError, BusTimeout
from bioloop.host import jit
from bioloop.host.driver import Driver
from bioloop.host.models import core_kernel
from bioloop.host.models.detector import Detector as DetectorModel
from bioloop.sim.stimulus import spiking_frames


def _bus(n=8, k=4, f=2, **kw):
    bus = ModelBus(n, k, f, **kw)
    return bus, Driver(bus)


def test_model_bus_is_a_bus():
    bus, drv = _bus()
    assert isinstance(bus, Bus)
    assert drv.identity["n_channels"] == 8 and drv.identity["n_lanes"] == 4
    # every CSR access takes exactly csr_edges edges
    t = bus.timing
    assert bus.edges % t.csr_edges == t.start_edges % t.csr_edges
    before = bus.edges
    drv.scratch = 5
    bus.read32(0)
    assert bus.edges == before + 2 * t.csr_edges


def test_spike_words_match_the_detector_model():
    """Every crossing of random frames comes out as one SPIKE word, as the Detector model says."""
    rng = np.random.default_rng(4)
    th = rng.integers(300, 3000, 8)
    frames = spiking_frames(rng, 600, 8, th)
    bus, drv = _bus()
    drv.thresholds[:] = th.tolist()
    drv.polarity[:] = "both"
    drv.refractory = 3
    drv.enable()
    drv.send_samples(frames)
    words = unpack(drv.receive_words())
    spikes = np.asarray(words.type) == AERType.SPIKE.value
    got = sorted(zip(np.asarray(words.timestamp)[spikes].tolist(), np.asarray(words.address)[spikes].tolist(), strict=True))
    want = DetectorModel(8, th, [2] * 8, refractory=3).process(frames)
    assert drv.counters["overflows"] == 0 and len(want) > 50
    assert got == sorted(map(tuple, want.tolist()))
    assert drv.counters["detections"] == len(want) == drv.counters["unmapped_words"]
    assert drv.status["unmapped"] and not drv.status["overflow"]


def test_loop_latency_and_probe():
    """DESIGN.md §6 on the model: one crossing, fanout 1, weight = θ, code 0xFFFF: the LED is lit
    7 cycles after the beat, the probe says 7, and the LED fraction of that frame counts it."""
    bus, drv = _bus()
    drv.thresholds[:] = 1000
    drv.routes.set(2, [("stim", 1, 256)])
    drv.theta[:] = 256
    drv.lane_codes[:] = 0xFFFF
    drv.pulse_lengths[:] = 2
    drv.enable()
    frames = np.zeros((6, 8), dtype=np.int16)
    frames[2, 2] = -1500          # channel 2 is in beat 1 of frame 2
    drv.send_samples(frames)
    assert drv.latency_probe == (7, 7, 1)
    leds = bus.leds()
    assert leds.shape == (6, 4) and leds.dtype == np.float32
    # K = 4 lanes: a frame lasts at least K + 2 = 6 cycles (the last beat waits for the StimUnit's
    # sweep of the previous frame). Frame 0's beats are taken at s .. s + 3 (s: its first beat);
    # frame f >= 1 at e_f, e_f + 1, e_f + 2 and its last beat at e_f + 5, e_f = s + 4 + 6 (f - 1).
    # The crossing's beat (frame 2, beat 1) is taken at h = s + 11; the LED reads high from
    # h + 7 = s + 18. The StimUnit takes the entry at h + 4 = s + 15, before frame 2's last beat
    # (also taken at s + 15): the STIM word says frame 2. The fire (s + 16) loads 2 frames; the
    # sweeps after frame 2's and frame 3's last beats (s + 15, s + 21) write lane 1 at s + 19 and
    # s + 25, so the envelope ends at s + 25 and the LED reads low from s + 27. Frame 3's beats
    # (s + 16, 17, 18, 21): 2 of 4 lit; frame 4's (s + 22, 23, 24, 27): 3 of 4.
    assert leds[:3].sum() == 0 and leds[3, 1] == 0.5 and leds[4, 1] == 0.75 and leds[5].sum() == 0
    assert leds[:, [0, 2, 3]].sum() == 0
    words = unpack(drv.receive_words())
    assert list(np.asarray(words.type)) == [AERType.SPIKE.value, AERType.STIM.value]
    # the STIM word carries the frame in which the StimUnit took the routed entry (h + 4: frame 2)
    assert list(np.asarray(words.timestamp)) == [2, 2]


def _session(bus, drv, frames):
    rng = np.random.default_rng(9)
    drv.thresholds[:] = 900
    drv.polarity[:] = "both"
    drv.refractory = 2
    for c in range(8):
        drv.routes.set(c, [("stim", c % 4, 200), ("stim", (c + 1) % 4, 120)][: 1 + c % 2])
    drv.theta[:] = [256, 300, 200, 256]
    drv.lane_codes[:] = [0xFFFF, 0x8000, 0x3000, 0xC000]
    drv.pulse_lengths[:] = [1, 3, 2, 9]
    drv.safety_max_pulse = 100
    drv.safety_max_lanes = 2
    drv.homeo_window = 50
    drv.homeo_gain, drv.homeo_shift = 1 << 16, 20
    drv.homeo_target[:] = 256
    drv.homeo_enable = True
    drv.leak_shift = 2
    drv.aer_block_words = 5
    drv.enable()
    out = []
    for block in np.array_split(frames, 4):
        drv.send_samples(block)
        out.append((drv.receive_words(), bus.leds()))
        drv.lane_codes[int(rng.integers(0, 4))] = int(rng.integers(0, 1 << 16))
    drv.soft_reset()
    drv.send_samples(frames[:50])
    out.append((drv.receive_words(), bus.leds()))
    return out, drv.counters, drv.latency_probe, [drv.theta_now(k) for k in range(4)]


CADENCES = {"sweep": {}, "cycle": dict(safety_cadence="cycle", stim_cadence="cycle", homeo_cadence="cycle",
                                        lanes_cadence="cycle", encoder_cadence="cycle")}


@pytest.mark.parametrize("traffic", ["sparse", "busy"])
@pytest.mark.parametrize("cadence", sorted(CADENCES))
def test_bulk_path_is_exact(cadence, traffic):
    """The accelerated model (quiet stretches in bulk, the observers run over many edges at once)
    gives what edge-by-edge stepping gives, bit for bit: sparse traffic (mostly quiet frames) and
    busy traffic (crossings in most frames, pulses and the probe running), CSR writes between
    blocks, a soft reset, both cadences of the blocks."""
    rng = np.random.default_rng(2)
    rate = 0.004 if traffic == "sparse" else 0.05
    frames = spiking_frames(rng, 1200, 8, np.full(8, 900), rate=rate, burst_prob=0.01)
    results = []
    for fast in (True, False):
        bus, drv = _bus(**CADENCES[cadence])
        bus.core.fast = fast
        results.append(_session(bus, drv, frames))
    (a, ca, pa, ta), (b, cb, pb, tb) = results
    for (wa, la), (wb, lb) in zip(a, b, strict=True):
        assert np.array_equal(wa, wb) and np.array_equal(la, lb)
    assert ca == cb and pa == pb and ta == tb
    assert ca["stim_fires"] > 20 and ca["safety_clamps"] > 0 and pa.samples > 0
    assert ca["frames"] == 1250                      # counters run on through a soft reset ...
    ts = np.asarray(unpack(a[-1][0]).timestamp)
    assert ts.size and ts.max() < 50                 # ... the datapath's frame count restarts


@pytest.mark.parametrize("encoder_cadence", ["queue", "cycle"])
@pytest.mark.parametrize("form", ["compiled", "python"])
def test_core_kernel_equals_core_step(form, encoder_cadence, monkeypatch):
    """The compiled kernel of the Core model (host/models/core_kernel.py) gives what Core.step gives
    edge by edge, byte for byte: busy traffic (crossings in most frames, every lane routed, pulses,
    clamps and the probe running), CSR accesses long enough that configuration changes act inside
    the kernel's stretches, a soft reset, the AEREncoder in either cadence. ``python``: the kernel's
    plain Python form (what numba compiles), which also runs without numba."""
    if form == "compiled" and not jit.ENABLED:
        pytest.skip("the compiled form needs numba (the [culture] extra)")
    if form == "python":
        monkeypatch.setattr(jit, "ENABLED", True)
        monkeypatch.setattr(core_kernel, "core_edges", getattr(core_kernel.core_edges, "py_func",
                                                               core_kernel.core_edges))
    taken = []
    run = core_kernel.run
    monkeypatch.setattr(core_kernel, "run", lambda core, *a, **kw: taken.append(1) or run(core, *a, **kw))
    rng = np.random.default_rng(7)
    frames = spiking_frames(rng, 400 if form == "python" else 1200, 8, np.full(8, 900), rate=0.06,
                            burst_prob=0.02)
    timing = BusTiming(csr_edges=120)
    results = []
    for fast in (True, False):
        bus, drv = _bus(timing=timing, encoder_cadence=encoder_cadence)
        bus.core.fast = fast
        results.append(_session(bus, drv, frames))
    assert len(taken) > 10
    (a, ca, pa, ta), (b, cb, pb, tb) = results
    for (wa, la), (wb, lb) in zip(a, b, strict=True):
        assert np.array_equal(wa, wb) and np.array_equal(la, lb)
    assert ca == cb and pa == pb and ta == tb
    assert ca["stim_fires"] > 20 and ca["safety_clamps"] > 0 and pa.samples > 0 and ca["overflows"] == 0


def test_core_kernel_equals_core_step_with_encoder_losses(monkeypatch):
    """The kernel's queue-cadence encoder when its queue overflows: every channel crossing every
    other frame, every row fanning out to 2 lanes (the router takes a word every other cycle), and
    a 2-entry queue (the model's encoder made shallower than the Core's default N/2): spikes are
    lost, counted and reported in OVERFLOW words, byte for byte as Core.step."""
    if not jit.ENABLED:     # without numba, the kernel's plain Python form (what numba compiles)
        monkeypatch.setattr(jit, "ENABLED", True)
        monkeypatch.setattr(core_kernel, "core_edges", getattr(core_kernel.core_edges, "py_func",
                                                               core_kernel.core_edges))
    frames = np.zeros((400, 8), np.int16)
    frames[::2] = 2000
    taken = []
    run = core_kernel.run
    monkeypatch.setattr(core_kernel, "run", lambda core, *a, **kw: taken.append(1) or run(core, *a, **kw))
    results = []
    for fast in (True, False):
        bus, drv = _bus()
        bus.core.path.encoder.queue_depth = 2
        bus.core.fast = fast
        drv.thresholds[:] = 900
        drv.polarity[:] = "both"
        for c in range(8):
            drv.routes.set(c, [("stim", c % 4, 100), ("stim", (c + 1) % 4, 100)])
        drv.enable()
        drv.send_samples(frames)
        results.append((drv.receive_words(), drv.counters, bus.core.path.encoder.lost))
    (wa, ca, la), (wb, cb, lb) = results
    assert taken and np.array_equal(wa, wb) and ca == cb and la == lb
    words = unpack(wa)
    reported = int(words.address[(words.type == AERType.OVERFLOW.value)].sum())
    assert la > 0 and reported == la == ca["overflows"]


def test_core_kernel_mirrors_the_block_models():
    """The kernel restates the block models' edges; it is used only while they are those it was
    written against. A failure here means a block model changed: bring core_kernel.core_edges to
    the new model (test_core_kernel_equals_core_step tells when it is), then its MIRRORS digests."""
    now = core_kernel.mirror_digests()
    changed = [name for name, digest in core_kernel.MIRRORS.items() if now[name] != digest]
    assert not changed, f"changed since core_kernel.core_edges was written: {changed}"


def test_send_timeout_then_continue():
    """A core that takes no beat (enable off) turns into BusTimeout; nothing is lost after."""
    bus, drv = _bus(timing=BusTiming(send_timeout_edges=40))
    frames = np.zeros((3, 8), dtype=np.int16)
    with pytest.raises(BusTimeout, match="control.enable") as info:
        drv.send_samples(frames)
    assert info.value.frames_sent == 0
    assert bus.leds().shape == (0, 4)
    drv.enable()
    drv.send_samples(frames)
    assert drv.counters["frames"] == 3 and bus.leds().shape == (3, 4)


def test_dma_blocks_receive_timeout_keeps_words():
    """With DMA-like delivery a short block raises BusTimeout and stays queued for later."""
    bus, drv = _bus(dma_blocks=True)
    drv.thresholds[:] = 1000
    drv.refractory = 1
    drv.aer_block_words = 3
    drv.enable()
    frames = np.zeros((10, 8), dtype=np.int16)
    frames[[1, 3], 0] = -2000
    drv.send_samples(frames)                         # two SPIKE words: no TLAST yet
    with pytest.raises(BusTimeout, match="TLAST"):
        drv.receive_words(timeout_s=0.01)
    more = np.zeros((5, 8), dtype=np.int16)
    more[2, 0] = -2000
    drv.send_samples(more)                           # the third word (frame 12) closes the block
    words = drv.receive_words(timeout_s=0.01)
    assert list(np.asarray(unpack(words).timestamp)) == [1, 3, 12]


def test_bad_input():
    bus, drv = _bus()
    with pytest.raises(TypeError, match="uint32"):
        bus.send_samples(np.zeros((2, 4), dtype=np.int32))
    with pytest.raises(ValueError, match=r"\(frames, 4\)"):
        bus.send_samples(np.zeros((2, 5), dtype=np.uint32))
    with pytest.raises(ValueError, match="32-bit word"):
        bus.read32(0x2)
    with pytest.raises(ValueError, match="32-bit word"):
        bus.write32(0x40, 1 << 32)
    hole = next(a for a in range(0, 1 << drv.regmap.addr_width, 4) if drv.regmap.decode(a) is None)
    with pytest.raises(BusError, match="SLVERR"):
        bus.read32(hole)
    with pytest.raises(BusError, match="SLVERR"):
        bus.write32(hole, 0)
    with pytest.raises(ValueError, match="start_edges"):
        ModelBus(64, 4, 2, timing=BusTiming(start_edges=8))
    with pytest.raises(ValueError, match="csr_edges"):
        BusTiming(csr_edges=2, write_edge=3)
    with pytest.raises(ValueError, match="positive integer"):
        BusTiming(drain_edges=0)
    # the driver's own checks still come first, and the session goes on
    with pytest.raises(TypeError, match="int16"):
        drv.send_samples(np.zeros((2, 8)))
    drv.scratch = 0x1234
    assert drv.scratch == 0x1234


def test_frame_leds_and_word_queue():
    fl = FrameLeds(3)
    fl.add(np.array([1, 0, 1], bool), False)
    fl.add(np.array([1, 1, 0], bool), True)
    fl.add_frames(np.array([[4, 0, 2]]), np.array([4]))
    assert np.array_equal(fl.take(), np.array([[1, 0.5, 0.5], [1, 0, 0.5]], np.float32))
    assert fl.take().shape == (0, 3)
    q = WordQueue()
    q.extend([1, 2, 3], [False, True, False])
    assert q.take(2, 0.1).tolist() == [1, 2] and len(q) == 1
