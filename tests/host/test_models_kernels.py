"""The accelerated kernels of the block models equal the models' own steps, byte for byte,
with numba and without it (the board has no numba: DESIGN.md §7)."""

import subprocess
import sys

import numpy as np
import pytest

from bioloop.host.models import detector as detector_module
from bioloop.host.models import safety as safety_module
from bioloop.host.models import stochastic_lanes as lanes_module
from bioloop.host.models.detector import Detector
from bioloop.host.models.safety import Safety


def _safety():
    return Safety(16, duty_window=97, limit_pulse=40, limit_duty=30, limit_lanes=5,
                  max_pulse=25, max_duty=20, max_lanes=4, pulse_bits=8)


@pytest.mark.parametrize("kernel", safety_module.KERNELS)
def test_safety_run_edges_equals_steps(kernel):
    rng = np.random.default_rng(12)
    K, n = 16, 3000
    pulse = rng.random((n, K)) < 0.7
    pulse[:, :4] = True                      # long envelopes: the pulse cap and the run saturation
    states = rng.integers(0, 1 << 16, (n, K)).astype(np.uint16)
    codes = rng.integers(0, 1 << 16, K)
    a, b = _safety(), _safety()
    want = np.array([a.step(pulse[t], states[t] < codes)[0] for t in range(n)])
    out = np.concatenate([b.run_edges(pulse[i:i + 700], states[i:i + 700], codes, kernel)[0]
                          for i in range(0, n, 700)])
    assert out.tobytes() == want.tobytes() and want.any()
    assert a.clamps.tobytes() == b.clamps.tobytes() and a.clamps.min() > 0
    assert b.win == a.win and a.run.tobytes() == b.run.tobytes() and a.duty.tobytes() == b.duty.tobytes()
    assert b.led.tobytes() == a.led.tobytes()


def test_safety_idle_equals_steps():
    a, b = _safety(), _safety()
    rng = np.random.default_rng(3)
    warm = [(rng.random(16) < 0.8, rng.random(16) < 0.5) for _ in range(50)]
    for s in (a, b):                          # some state first: runs, duty counts, lit LEDs
        for pulse, bits in warm:
            s.step(pulse, bits)
    for n in (1, 5, 96, 97, 300):
        for _ in range(n):
            a.step(np.zeros(16, bool), np.ones(16, bool))
        b.idle(n)
        assert (a.win, a.run.tobytes(), a.duty.tobytes(), a.led.tobytes(), a.clamps.tobytes()) == \
               (b.win, b.run.tobytes(), b.duty.tobytes(), b.led.tobytes(), b.clamps.tobytes())


def _frames(rng, m, n, hit_at):
    f = rng.integers(-50, 50, (m, n)).astype(np.int16)
    if hit_at is not None:
        f[hit_at, n // 3] = -900
    return f


@pytest.mark.parametrize("kernel", detector_module.KERNELS)
@pytest.mark.parametrize("hit_at", [None, 0, 7])
def test_detector_quiet_frames_equal_steps(kernel, hit_at):
    """step_quiet_frames takes frames up to the first one with a detection, leaving the same
    state as stepping every beat of them."""
    rng = np.random.default_rng(hit_at or 5)
    n = 8
    pol = [0, 1, 2, 3, 0, 1, 2, 0]
    make = lambda: Detector(n, thresholds=[100] * n, polarity=pol, refractory=3)   # noqa: E731
    a, b = make(), make()
    warm = _frames(rng, 4, n, 1)                      # a detection: hold-off counts down after
    for d in (a, b):
        d.process(warm)
    frames = _frames(rng, 12, n, hit_at)
    m = b.step_quiet_frames(frames, kernel)
    assert m == (12 if hit_at is None else hit_at)
    from bioloop.host.models.detector import beats_from_frames
    beats, lasts = beats_from_frames(frames[:m])
    for beat, last in zip(beats, lasts, strict=True):
        a.step(int(beat) | (int(last) << 32))
    for attr in ("prev", "hold"):
        assert getattr(a, attr).tobytes() == getattr(b, attr).tobytes(), attr
    assert (a.frame, a.frames, a.pos, a.detections) == (b.frame, b.frames, b.pos, b.detections)


def test_core_model_without_numba():
    """With numba unimportable the models pick the numpy kernels and the Core model gives the
    same words, counters and LEDs as with it."""
    code = r"""
import sys, json
if sys.argv[1] == "block":
    sys.modules["numba"] = None          # import numba -> ImportError
import numpy as np
from bioloop.host.models import safety, detector
from bioloop.host.models.core import Core
from bioloop.host.models.detector import beats_from_frames
core = Core(8, 4, 2)
rm = core.regmap
def w(name, value, index=None):
    if index is None:
        core.csr_write(rm.register(name).offset, value)
    else:
        t = rm.table(name)
        core.csr_write(t.offset + 4 * t.words * index + 4 * (t.words - 1), value)
for c in range(8):
    w("thresholds", 300, c)
w("route_count", 1, 2)
t = rm.table("routes")
core.csr_write(t.offset + 8 * (2 * 2), 1)          # slot 0 of channel 2: target lane 1, STIM
core.csr_write(t.offset + 8 * (2 * 2) + 4, 256)    # weight 1.0 commits
w("lane_codes", 0xFFFF, 1)
w("control", 1)                                      # enable
core.idle(40)
rng = np.random.default_rng(1)
frames = rng.integers(-100, 100, (300, 8)).astype(np.int16)
frames[50::60, 2] = -2000
beats, lasts = beats_from_frames(frames)
core.run_beats(beats, lasts, frames=frames)
core.idle(500)
print(json.dumps({"kernels": [safety.KERNELS, detector.KERNELS], "words": core.words,
                  "regs": [core.csr_read(o)[0] for o in range(0x80, 0xa8, 4)]}))
"""
    import json
    runs = {}
    for mode in ("block", "allow"):
        res = subprocess.run([sys.executable, "-c", code, mode], capture_output=True, text=True)
        assert res.returncode == 0, res.stderr[-2000:]
        runs[mode] = json.loads(res.stdout)
    assert runs["block"]["kernels"] == [["numpy"], ["numpy"]]
    assert runs["block"]["words"] and runs["block"]["words"] == runs["allow"]["words"]
    assert runs["block"]["regs"] == runs["allow"]["regs"]


@pytest.mark.parametrize("kernel", lanes_module.KERNELS)
def test_sweep_lane_bits_equal_numpy(kernel):
    """The sweep cadence's bits from each kernel equal the numpy expression (the truth) and what
    StochasticLanes.bits gives, over stretches that start at and after the held bits, with codes
    changed between stretches."""
    rng = np.random.default_rng(21)
    a = lanes_module.StochasticLanes(12, 0x1234, cadence="sweep")
    b = lanes_module.StochasticLanes(12, 0x1234, cadence="sweep")
    edge = 0
    for _ in range(40):
        codes = rng.integers(0, 1 << 16, 12).astype(np.int64)
        n = int(rng.integers(0, 70))
        edge += int(rng.integers(0, 20))
        want = a._sweep_rows(codes, edge, n + 1, "numpy")
        got = b._sweep_rows(codes, edge, n + 1, kernel)
        assert got.tobytes() == want.tobytes()
        assert b.bits(codes, n, edge=edge).tobytes() == want[:-1].tobytes()
        a.held, a.edge = want[-1].copy(), edge + n
        assert b.held.tobytes() == a.held.tobytes() and b.edge == a.edge
        edge += n
    assert a.held.any() and not a.held.all()
