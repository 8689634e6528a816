"""Codec: entropy coder, detector, quantizer, round trip, streaming, determinism, input checks.

Truths used: a bit-string Rice coder written here from the textbook
definition, a per-sample Python loop of the DESIGN.md §4 detection rule,
numpy's median for the MAD formula, the uniform quantizer's error bound
(step / 2), brute-force all-pairs for the locally exclusive rule, and the
detections handed to the encoder.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys

import numpy as np
import pytest

from bioloop.host.aer import AERType, pack
from bioloop.host.codec import CodecError, CodecParams, Decoder, Encoder, decode, encode, read_events
from bioloop.host.codec.entropy import PAYLOAD_ERRORS, decode_payload, encode_payload, unzigzag, zigzag
from bioloop.host.codec.events import (SCALE_TABLE, DetectorState, detect, locally_exclusive, mad_sigma,
                                       mad_sigma_codes, neighbour_matrix, quantize_snippets, thresholds)
from bioloop.host.codec.sources import aer_detections

FS = 30000.0


def column(c, pitch=20.0):
    """Electrodes in a line, ``pitch`` µm apart."""
    return np.c_[np.zeros(c), pitch * np.arange(c)]


def synthetic(n=6000, c=6, seed=0, rate_hz=40.0, noise=5.0, amp=(-120.0, -40.0)):
    """Gaussian noise plus negative biphasic spikes at known times."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, noise, (n, c)).astype(np.float32)
    shape = -np.exp(-0.5 * ((np.arange(24) - 6) / 2.0) ** 2) + 0.35 * np.exp(-0.5 * ((np.arange(24) - 13) / 3.0) ** 2)
    truth = []
    for ch in range(c):
        t = 30
        while True:
            t += int(rng.exponential(FS / rate_hz)) + 60
            if t + 24 >= n:
                break
            a = rng.uniform(*amp)
            x[t:t + 24, ch] += (-a) * shape.astype(np.float32)
            truth.append((t, ch))
    return x, truth


# -- entropy coding -----------------------------------------------------------

def _rice_bits(v, k):
    return "1" * (v >> k) + "0" + "".join(str((v >> i) & 1) for i in range(k))


def _fixed_bits(v, n):
    return "".join(str((v >> i) & 1) for i in range(n))


def _golden_payload(counts, gaps, scales, zq):
    """Textbook Rice codes, LSB-first bit strings, best k by exhaustive cost, the deltas of docs/codec.md."""
    def best(v, kmax):
        costs = [sum(len(_rice_bits(int(x), k)) for x in v) for k in range(kmax + 1)]
        return int(np.argmin(costs))
    bits = ""
    ds, prev_c, ds_prev = [], None, 0
    for c, s in zip(np.repeat(np.arange(counts.size), counts), scales, strict=True):
        ds.append(int(s) - (0 if c != prev_c else ds_prev))
        ds_prev, prev_c = int(s), c
    zds = [2 * v if v >= 0 else -2 * v - 1 for v in ds]
    for arr, kbits in ((counts, 4), (gaps, 5), (np.array(zds), 3)):
        k = best(arr, (1 << kbits) - 1)
        bits += _fixed_bits(k, kbits) + "".join(_rice_bits(int(v), k) for v in arr)
    q = unzigzag(zq)
    for j in range(q.shape[1]):
        d = q[:, j] - (q[:, j - 1] if j else 0)
        col = [2 * int(v) if v >= 0 else -2 * int(v) - 1 for v in d]
        k = best(col, 7)
        bits += _fixed_bits(k, 3) + "".join(_rice_bits(v, k) for v in col)
    bits += "0" * (-len(bits) % 8)
    return bytes(int(bits[i:i + 8][::-1], 2) for i in range(0, len(bits), 8))


@pytest.mark.parametrize("seed", range(4))
def test_payload_matches_textbook_rice_and_round_trips(seed):
    rng = np.random.default_rng(seed)
    n_ch, n_ev, L, qmax = 5, 40, 7, 3
    chans = np.sort(rng.integers(0, n_ch, n_ev))
    counts = np.bincount(chans, minlength=n_ch)
    gaps = rng.geometric(1 / (50 * (seed + 1)), n_ev) - 1
    gaps[rng.integers(0, n_ev)] = 5000          # a long run of ones in one code
    scales = rng.integers(0, 256, n_ev)
    q = rng.integers(-qmax, qmax + 1, (n_ev, L)).astype(np.int8)
    payload = encode_payload(counts, gaps, scales, q)
    assert payload == _golden_payload(counts, gaps, scales, zigzag(q))
    n_samples = int(max(np.bincount(chans, weights=gaps + 1, minlength=n_ch).max(), 1)) + 1
    ch, t, s, qq = decode_payload(payload, n_ch, n_samples, n_ev, L, qmax)
    assert np.array_equal(ch, chans) and np.array_equal(s, scales) and np.array_equal(qq, q)
    # times are cumulative gaps + 1 per channel
    for c in range(n_ch):
        assert np.array_equal(t[ch == c], np.cumsum(gaps[chans == c] + 1) - 1)


def test_zigzag_is_the_standard_interleave():
    assert list(zigzag(np.array([0, -1, 1, -2, 2, -3]))) == [0, 1, 2, 3, 4, 5]
    v = np.arange(-300, 300)
    assert np.array_equal(unzigzag(zigzag(v)), v)


def test_payload_rejects_padding_and_extra_bytes():
    counts, gaps, scales = np.array([1]), np.array([3]), np.array([9])
    q = np.array([[1, -1]], np.int8)
    p = encode_payload(counts, gaps, scales, q)
    assert decode_payload(p + b"\0", 1, 10, 1, 2, 1) == 7
    bad = bytearray(p)
    bad[-1] |= 0x80
    assert isinstance(decode_payload(bytes(bad), 1, 10, 1, 2, 1), int)
    assert decode_payload(p, 1, 3, 1, 2, 1) == 4    # time 3 not inside a 3-sample block
    assert set(PAYLOAD_ERRORS) >= {1, 2, 3, 4, 5, 6, 7}


# -- detector, noise, quantizer ----------------------------------------------------

def _golden_detect(x, theta, polarity, refractory):
    out = []
    n, c = x.shape
    for ch in range(c):
        prev, last = False, None
        for t in range(n):
            v = x[t, ch]
            b = {"neg": v < -theta[ch], "pos": v > theta[ch], "both": v < -theta[ch] or v > theta[ch]}[polarity]
            if b and not prev and (last is None or t - last >= refractory):
                out.append((t, ch))
                last = t
            prev = b
    return sorted(out)


@pytest.mark.parametrize("polarity", ["neg", "pos", "both"])
@pytest.mark.parametrize("chunks", [1, 7])
def test_detector_follows_design_rule(polarity, chunks):
    x, _ = synthetic(n=3000, c=4, seed=3, noise=8.0)
    sigma = mad_sigma(x)
    lo, hi = thresholds(sigma, 3.0, polarity, np.float32, 1.0)
    theta = -lo.astype(np.float64) if polarity != "pos" else hi.astype(np.float64)
    st = DetectorState(4, 5)
    got = []
    edges = np.linspace(0, 3000, chunks + 1).astype(int)
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        t, c = detect(x[a:b], lo, hi, 5, a, st)
        got += list(zip(t.tolist(), c.tolist(), strict=True))
    assert sorted(got) == _golden_detect(x, theta, polarity, 5)


def test_int16_thresholds_equal_comparison_in_microvolts():
    rng = np.random.default_rng(1)
    x = rng.integers(-400, 400, (4000, 3)).astype(np.int16)
    sigma = np.array([33.3, 20.05, 51.0], np.float32)
    g = 0.195
    lo, hi = thresholds(sigma, 4.0, "both", np.int16, g)
    theta = 4.0 * sigma.astype(np.float64)
    xu = x * g
    assert np.array_equal((x < lo) | (x > hi), (xu < -theta) | (xu > theta))


def test_mad_sigma_is_median_abs_over_0_6745():
    rng = np.random.default_rng(2)
    x = rng.normal(0, 7.0, (20001, 3))
    assert np.allclose(mad_sigma(x), np.median(np.abs(x), axis=0) / 0.6745, rtol=1e-6)
    assert np.allclose(mad_sigma(x), 7.0, rtol=0.03)   # consistent estimator of a Gaussian's sigma
    codes = rng.integers(-30000, 30000, (1000, 4)).astype(np.int16)
    codes[:, 1] = rng.integers(-50, 50, 1000)
    assert np.allclose(mad_sigma_codes(codes, 0.195), mad_sigma(codes * 0.195), rtol=1e-6)


def test_scale_table_and_quantizer_error_bound():
    assert np.allclose(SCALE_TABLE, 2.0 ** (np.arange(256) / 4), rtol=1e-15, atol=0)
    rng = np.random.default_rng(4)
    sn = rng.normal(0, 40, (500, 12))
    ch = rng.integers(0, 3, 500)
    sig = np.array([3.0, 5.5, 9.0], np.float32)
    for bits in (2, 3, 5, 8):
        qmax = (1 << (bits - 1)) - 1
        s, q, nclip = quantize_snippets(sn, ch, sig, qmax)
        amp = np.abs(sn).max(1)
        sd = sig.astype(np.float64)[ch]
        assert nclip == 0
        assert np.all(sd * SCALE_TABLE[s] >= amp)
        assert np.all((s == 0) | (sd * SCALE_TABLE[np.maximum(s - 1, 0)] < amp))
        step = sd * SCALE_TABLE[s] / qmax
        assert np.all(np.abs(q * step[:, None] - sn) <= step[:, None] / 2 + 1e-9)


def test_spatial_rule_keeps_one_event_per_spike_on_the_largest_channel():
    x = np.random.default_rng(0).normal(0, 2, (3000, 6)).astype(np.float32)
    spikes = [(500, 1), (1500, 4), (2500, 0)]
    for t, c in spikes:          # the spike shows on its neighbours at 60% and 30%
        for dc, f in ((0, 1.0), (-1, 0.6), (1, 0.6), (-2, 0.3), (2, 0.3)):
            if 0 <= c + dc < 6:
                x[t + abs(dc):t + abs(dc) + 6, c + dc] -= 100 * f
    for radius, want in ((50.0, set(spikes)), (0.0, None)):
        data, _ = encode(x, FS, CodecParams(spatial_radius_um=radius, block_size=1000), positions_um=column(6))
        _, ev, _ = read_events(data)
        got = set(zip(ev.times.tolist(), ev.channels.tolist(), strict=True))
        if want is not None:
            assert got == want
        else:
            assert len(got) > 3 * len(spikes)


def test_locally_exclusive_equals_brute_force():
    rng = np.random.default_rng(5)
    n = 300
    t = rng.integers(0, 400, n)
    c = rng.integers(0, 12, n)
    a = rng.integers(0, 6, n).astype(float)     # many ties
    target = rng.random(n) < 0.7
    pos = rng.uniform(0, 100, (12, 2))
    got = locally_exclusive(t, c, a, target, neighbour_matrix(pos, 40.0), 5)
    for i in range(n):
        near = np.hypot(*(pos[c[i]] - pos[c]).T) <= 40.0
        beaten = any(j != i and abs(t[i] - t[j]) <= 5 and near[j]
                     and (a[j] > a[i] or (a[j] == a[i] and (t[j], c[j]) < (t[i], c[i]))) for j in range(n))
        assert got[i] == (target[i] and not beaten)


# -- round trip -------------------------------------------------------------------

@pytest.mark.parametrize("params", [CodecParams(block_size=1000), CodecParams(block_size=777, spatial_radius_um=0),
                                    CodecParams(pre=0, post=1, bits=2, block_size=5000),
                                    CodecParams(pre=30, post=40, bits=8, block_size=50, polarity="both")])
def test_round_trip_reconstructs_snippets_within_half_a_step(params):
    x, _ = synthetic(n=7000, c=5, seed=6)
    data, stats = encode(x, FS, params)
    d = decode(data)
    assert d.samples_uv.shape == x.shape and d.samples_uv.dtype == np.float32
    ev = d.events
    assert ev.times.size == stats.n_events > 0
    h = d.header
    params = h.params             # the sample counts the encoder derived from the durations
    L = params.snippet_length
    for t, c, sn in zip(ev.times, ev.channels, ev.snippets_uv, strict=True):
        lo, hi = max(t - params.pre, 0), min(t + params.post, x.shape[0])
        orig = x[lo:hi, c]
        rec = sn[lo - (t - params.pre):L - (t + params.post - hi)]
        sig = np.float64(h.noise_uv[c])
        step = sig * SCALE_TABLE[np.argmax(sig * SCALE_TABLE >= np.abs(orig).max())] / params.qmax
        assert np.all(np.abs(rec - orig) <= step / 2 + 1e-3), (t, c)
    # outside snippets the decoded array is zero
    covered = np.zeros(x.shape, bool)
    for t, c in zip(ev.times, ev.channels, strict=True):
        covered[max(t - params.pre, 0):t + params.post, c] = True
    assert not d.samples_uv[~covered].any()


def test_detections_survive_and_spikes_are_found_again():
    """Every planted spike of amplitude >= 6 sigma is an event, and is re-detected after decoding."""
    x, truth = synthetic(n=30000, c=4, seed=7, amp=(-150.0, -60.0), noise=5.0)
    data, _ = encode(x, FS, CodecParams(spatial_radius_um=0))
    d = decode(data)
    p = d.header.params
    ev = set(zip(d.events.times.tolist(), d.events.channels.tolist(), strict=True))
    ok = sum(any((t + dt, c) in ev for dt in range(-3, 10)) for t, c in truth)
    assert ok / len(truth) >= 0.98
    lo, hi = thresholds(d.header.noise_uv, p.threshold_k, "neg", np.float32, 1.0)
    t2, c2 = detect(d.samples_uv, lo, hi, p.refractory, 0, DetectorState(4, p.refractory))
    again = set(zip(t2.tolist(), c2.tolist(), strict=True))
    tol = 12   # 0.4 ms: quantizing the crossing's neighbourhood may move it by a few samples
    found = sum(any((t + dt, c) in again for dt in range(-tol, tol + 1)) for t, c in ev)
    assert found / len(ev) >= 0.95


def test_external_detections_from_aer_words_become_the_events():
    x, truth = synthetic(n=9000, c=4, seed=8)
    rng = np.random.default_rng(0)
    t = np.array([a for a, _ in truth] + [8999, 0])
    c = np.array([b for _, b in truth] + [3, 0])
    words = pack(c, 0, AERType.SPIKE.value, t)
    words = np.concatenate([words, pack(np.array([1]), 0, AERType.TICK.value, np.array([77]))])
    words = words[rng.permutation(words.size)]
    dt, dc = aer_detections(words)
    assert dt.size == t.size
    for radius in (0, 30.0):
        data, _ = encode(x, FS, CodecParams(spatial_radius_um=radius, block_size=2000), detections=(dt, dc),
                         positions_um=column(4))
        _, ev, n = read_events(data)
        assert n == x.shape[0]
        got = set(zip(ev.times.tolist(), ev.channels.tolist(), strict=True))
        if radius == 0:
            assert got == set(zip(t.tolist(), c.tolist(), strict=True))
        else:
            assert got <= set(zip(t.tolist(), c.tolist(), strict=True)) and len(got) > 0
    with pytest.raises(ValueError, match="duplicate"):
        encode(x, FS, detections=(np.array([5, 5]), np.array([1, 1])))
    with pytest.raises(ValueError, match="channel"):
        encode(x, FS, detections=(np.array([5]), np.array([4])))
    enc = Encoder(4, FS, external=True)
    enc.push(x[:100], (np.array([50]), np.array([1])))
    with pytest.raises(ValueError, match="this chunk"):
        enc.push(x[100:200], (np.array([60]), np.array([1])))     # a sample of the previous chunk
    # chunked pushes, each with its own detections, give the one-shot bytes
    one, _ = encode(x, FS, CodecParams(block_size=2000), detections=(dt, dc), positions_um=column(4))
    enc = Encoder(4, FS, CodecParams(block_size=2000), external=True, positions_um=column(4))
    parts = []
    for a in range(0, x.shape[0], 1234):
        m = (dt >= a) & (dt < a + 1234)
        parts.append(enc.push(x[a:a + 1234], (dt[m], dc[m])))
    assert b"".join(parts) + enc.finish() == one


# -- streaming and determinism ----------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.int16, np.float64])
@pytest.mark.parametrize("params", [CodecParams(block_size=1000), CodecParams(block_size=64, pre=20, post=90),
                                    CodecParams(block_size=3001, spatial_radius_um=0)])
def test_blockwise_encode_equals_one_shot(dtype, params):
    x, _ = synthetic(n=10000, c=5, seed=9)
    if dtype == np.int16:
        x = np.rint(x / 0.195).astype(np.int16)
    x = x.astype(dtype)
    one, _ = encode(x, FS, params, uv_per_code=0.195, positions_um=column(5))
    rng = np.random.default_rng(10)
    for _ in range(3):
        enc = Encoder(5, FS, params, uv_per_code=0.195, positions_um=column(5))
        out, i = [], 0
        while i < x.shape[0]:
            n = int(rng.choice([1, 2, 63, 999, 4000]))
            out.append(enc.push(x[i:i + n]))
            i += n
        out.append(enc.finish())
        assert b"".join(out) == one
    # the incremental decoder, fed in odd pieces, equals the one-shot decode, with both fills
    for fill in ("zeros", "noise"):
        ref = decode(one, fill=fill, seed=3).samples_uv
        dec = Decoder(fill=fill, seed=3)
        parts = []
        for i in range(0, len(one), 37):
            parts += [blk for _, blk, _ in dec.feed(one[i:i + 37])]
        dec.close()
        assert np.array_equal(np.concatenate(parts), ref)


def test_noise_fill_has_the_recorded_level_and_is_seeded():
    x, _ = synthetic(n=20000, c=3, seed=11, rate_hz=5)
    data, _ = encode(x, FS)
    a = decode(data, fill="noise", seed=1)
    pre, post = a.header.params.pre, a.header.params.post
    for c in range(3):
        bg = np.ones(x.shape[0], bool)
        for t in a.events.times[a.events.channels == c]:
            bg[max(t - pre, 0):t + post] = False
        assert abs(a.samples_uv[bg, c].std() / a.header.noise_uv[c] - 1) < 0.03
    assert np.array_equal(a.samples_uv, decode(data, fill="noise", seed=1).samples_uv)
    assert not np.array_equal(a.samples_uv, decode(data, fill="noise", seed=2).samples_uv)


def test_same_input_same_bytes_across_processes():
    code = ("import hashlib,numpy as np;from bioloop.host.codec import encode;"
            "x=np.random.default_rng(12).normal(0,5,(20000,4)).astype(np.float32);x[100:110]-=80;"
            "print(hashlib.sha256(encode(x,30000.0)[0]).hexdigest())")
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
            for _ in range(2)}
    x = np.random.default_rng(12).normal(0, 5, (20000, 4)).astype(np.float32)
    x[100:110] -= 80
    assert outs == {hashlib.sha256(encode(x, FS)[0]).hexdigest() + "\n"}


# -- input checks -----------------------------------------------------------------------

def test_encoder_rejects_bad_input_and_keeps_what_it_accepted():
    x, _ = synthetic(n=4000, c=3, seed=13)
    ref, _ = encode(np.concatenate([x, x]), FS, CodecParams(block_size=1500))
    enc = Encoder(3, FS, CodecParams(block_size=1500))
    out = [enc.push(x)]
    bad = x.copy()
    bad[17, 2] = np.nan
    with pytest.raises(ValueError, match=r"NaN at channel 2, sample 4017"):
        enc.push(bad)
    bad[17, 2] = np.inf
    with pytest.raises(ValueError, match="inf at channel 2"):
        enc.push(bad)
    with pytest.raises(TypeError, match="int32"):
        enc.push(x.astype(np.int32))
    with pytest.raises(TypeError, match="dtype changed"):
        enc.push(x.astype(np.int16))
    with pytest.raises(ValueError, match="shape"):
        enc.push(x[:, :2])
    with pytest.raises(ValueError, match="shape"):
        enc.push(x[:, 0])
    with pytest.raises(TypeError, match="numpy array"):
        enc.push(x.tolist())
    out.append(enc.push(x))
    out.append(enc.finish())
    assert b"".join(out) == ref
    with pytest.raises(ValueError, match="2-D"):
        encode(x[None], FS)
    with pytest.raises(ValueError, match="no samples"):
        encode(x[:0], FS)
    with pytest.raises(ValueError, match="n_channels"):
        encode(x[:, :0], FS)
    with pytest.raises(TypeError):
        encode(x.astype(np.complex64), FS)
    with pytest.raises(ValueError, match=r"beyond ±1e\+12 µV"):
        encode(np.full((10, 1), 1e300), FS)
    with pytest.raises(ValueError, match="bits"):
        CodecParams(bits=9)
    with pytest.raises(ValueError, match="polarity"):
        CodecParams(polarity="up")


def test_dead_channel_and_saturated_snippets_are_counted_not_silent():
    x, _ = synthetic(n=3000, c=3, seed=14)
    x[:, 1] = 0.0
    x[1000, 1] = -50.0
    data, st = encode(x, FS, CodecParams(spatial_radius_um=0))
    d = decode(data)
    assert d.header.noise_uv[1] > 0
    assert 1000 in d.events.times[d.events.channels == 1]
    y = np.zeros((100, 1), np.float32)
    y[50] = -1e12        # the largest sample the encoder takes (MAX_SAMPLE_UV), 1e21 sigma
    _, st = encode(y, FS, noise_uv=[1e-9])
    assert st.n_clipped == 1


def test_corruption_is_named():
    x, _ = synthetic(n=5000, c=3, seed=15)
    data = bytearray(encode(x, FS, CodecParams(block_size=1000))[0])
    with pytest.raises(CodecError, match="header: bad magic"):
        decode(b"NOPE" + bytes(data[4:]))
    b = bytearray(data)
    b[200] ^= 0x10
    with pytest.raises(CodecError, match=r"block \d+: CRC32 mismatch"):
        decode(bytes(b))
    with pytest.raises(CodecError, match="no end block|truncated"):
        decode(bytes(data[:-30]))
    with pytest.raises(CodecError, match="bytes after the end block"):
        decode(bytes(data) + b"\0")
