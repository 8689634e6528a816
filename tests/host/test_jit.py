"""numba is optional: the numba kernels and their Python/numpy paths give the same bytes.

Each case runs the same code twice, in subprocesses: once with numba
(``BIOLOOP_NUMBA=1``) and once on the plain path (``BIOLOOP_NUMBA=0``, which
is what a board without numba gets), and compares digests of every output:
codec container bytes and decoded samples, codec detections, the bioware
detector's detections and snippets, and culture blocks. The truth is the
numba path, itself tested against independent references elsewhere.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

numba = pytest.importorskip("numba", reason="comparing both paths needs numba (the [culture] extra)")

CASES = {
    "codec": """
        import numpy as np
        from bioloop.host.codec import CodecParams, decode, encode, read_events
        from bioloop.host.codec.events import DetectorState, detect, mad_sigma_codes, thresholds
        rng = np.random.default_rng(3)
        n, c = 6000, 8
        x = rng.normal(0, 6, (n, c))
        shape = -np.exp(-0.5 * ((np.arange(24) - 6) / 2.0) ** 2)
        for ch in range(c):
            for t in rng.integers(40, n - 40, 25):
                x[t:t + 24, ch] += rng.uniform(40, 150) * shape
        codes = np.round(x / 0.195 * 0.2).astype(np.int16)
        out["mad"] = digest(mad_sigma_codes(codes, 0.195))
        lo, hi = thresholds(mad_sigma_codes(codes, 0.195), 4.5, "both", np.int16, 0.195)
        st = DetectorState(c, 30)
        parts = [detect(codes[a:a + 1000], lo, hi, 30, a, st) for a in range(0, n, 1000)]
        out["detect"] = digest(*[p for pair in parts for p in pair], st.beyond, st.last)
        pos = np.c_[np.zeros(c), 20.0 * np.arange(c)]
        for name, data, kw in (("f32", x.astype(np.float32), {}),
                               ("i16", codes, {"uv_per_code": 0.195})):
            blob, _ = encode(data, 30000.0, CodecParams(block_size=1024), positions_um=pos, **kw)
            out["bytes_" + name] = digest(np.frombuffer(blob, np.uint8))
            dec = decode(blob)
            out["decoded_" + name] = digest(dec.samples_uv, dec.events.times, dec.events.channels)
            h, ev, total = read_events(blob)
            out["events_" + name] = digest(ev.snippets_uv, total)
    """,
    "detection": """
        import numpy as np
        from bioloop.host.bioware.detection import SpikeDetector
        from bioloop.host.bioware.mea import MEAConfig
        rng = np.random.default_rng(5)
        n, c = 8000, 16
        x = rng.normal(0, 8, (n, c))
        for ch in range(c):
            for t in rng.integers(20, n - 20, 30):
                x[t:t + 6, ch] -= rng.uniform(30, 90) * (1 if ch % 3 else -1)
        for pol in ("negative", "positive", "both"):
            for policy in ("per_frame", "calibrated"):
                cfg = MEAConfig(num_channels=c, sample_rate_hz=20000.0)
                for kind, v in (("f", x), ("i", np.round(x / cfg.adc_uv_per_code).astype(np.int16))):
                    d = SpikeDetector(cfg, refractory_samples=25, polarity=pol, noise_policy=policy)
                    if policy == "calibrated":
                        d.calibrate(v[:2000])
                    got = [d.detect_arrays(v[a:a + 1600]) for a in range(0, n, 1600)]
                    out[f"{pol}-{policy}-{kind}"] = digest(
                        *[a for b in got for a in (b.channel, b.sample_index, b.amplitude_uv, b.waveforms)],
                        d.export_thresholds_int16())
    """,
    "culture": """
        import numpy as np
        from bioloop.host.culture import Culture, CultureConfig
        cfg = CultureConfig().with_network(n_neurons=60, connection_probability=0.3).with_seed(4)
        culture = Culture(cfg)
        b1 = culture.step(600)
        led = np.zeros((400, culture.n_lanes)); led[50:250, :5] = 1.0; led[100:300, 5:9] = 0.37
        b2 = culture.step(400, led)
        for i, b in enumerate((b1, b2)):
            out[f"block{i}"] = digest(b.voltages_uv, b.codes, b.spikes.view(np.uint8), b.saturated)
    """,
}

PRELUDE = """
import hashlib, json, sys
import numpy as np
out = {}
def digest(*arrays):
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(np.asarray(a))
        h.update(str((a.dtype.str, a.shape)).encode()); h.update(a.tobytes())
    return h.hexdigest()
"""

EPILOGUE = """
from bioloop.host import jit
out["_numba"] = jit.ENABLED
print(json.dumps(out))
"""


def run_case(name: str, numba_on: bool) -> dict:
    env = dict(os.environ, BIOLOOP_NUMBA="1" if numba_on else "0")
    code = PRELUDE + textwrap.dedent(CASES[name]) + EPILOGUE
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", sorted(CASES))
def test_numpy_path_gives_the_same_bytes(name):
    fast, plain = run_case(name, True), run_case(name, False)
    assert fast.pop("_numba") is True and plain.pop("_numba") is False
    assert fast.keys() == plain.keys() and len(fast) > 1
    differ = sorted(k for k in fast if fast[k] != plain[k])
    assert not differ, f"numba and numpy paths differ in {differ}"


IMPORT_ALL = ("import sys\n"
              "import bioloop.host.codec, bioloop.host.bioware, bioloop.host.culture, bioloop.host.jit\n"
              "def loaded(): return sorted(m for m in sys.modules if m.split('.')[0] in ('numba', 'llvmlite'))\n"
              "print(loaded())\n")


@pytest.mark.parametrize("numba_on", [False, True])
def test_importing_the_kernels_imports_no_numba(numba_on):
    """numba is imported at the first kernel call, never at import (and never when disabled)."""
    code = IMPORT_ALL + (
        "import numpy as np\n"
        "from bioloop.host.codec import encode\n"
        "encode(np.zeros((2048, 4), np.int16), 30000.0, uv_per_code=0.195)\n"
        "print(bioloop.host.jit.ENABLED, bool(loaded()))\n")
    res = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, BIOLOOP_NUMBA=str(int(numba_on))),
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    lines = res.stdout.strip().splitlines()
    assert lines[0] == "[]"
    assert lines[1] == f"{numba_on} {numba_on}"
