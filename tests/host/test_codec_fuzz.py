"""Robustness: mutated valid streams raise CodecError naming where, never anything else.

Mutations: truncation, bit flips, byte insertions and deletions, and
adversarial values written over length and count fields. Half of the cases
re-seal every CRC32 after mutating, so the parser's own checks (not only
the CRC) are exercised. ``BIOLOOP_LONG=1`` adds a run of 50,000 cases.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bioloop.host.codec import CodecError, CodecParams, Decoder, decode, encode, read_events



def _stream(params, n=4000, c=3, seed=0, positions=True):
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 5, (n, c)).astype(np.float32)
    for t in range(100, n - 40, 173):
        x[t:t + 8, t % c] -= 70
    pos = np.c_[np.zeros(c), 25.0 * np.arange(c)] if positions else None
    return encode(x, 30000.0, params, positions_um=pos)[0]


STREAMS = [
    _stream(CodecParams(block_size=1000)),
    _stream(CodecParams(block_size=333, pre=2, post=5, bits=2, spatial_radius_um=0), positions=False),
    _stream(CodecParams(block_size=64, pre=20, post=90, bits=6, polarity="both"), n=600),
]


def _records(data: bytes):
    """(start, end) of every CRC-protected record; the CRC32 sits at data[end:end+4]."""
    (hbytes,) = struct.unpack_from("<H", data, 6)
    out = [(0, hbytes - 4)]
    off = hbytes
    while off < len(data):
        if data[off] == 1:
            (pb,) = struct.unpack_from("<I", data, off + 13)
            out.append((off, off + 17 + pb))
            off += 17 + pb + 4
        else:
            out.append((off, off + 21))
            off += 25
    return out


def _reseal(buf: bytearray, records) -> None:
    for a, b in records:
        if b + 4 <= len(buf):
            struct.pack_into("<I", buf, b, zlib.crc32(bytes(buf[a:b])) & 0xFFFFFFFF)


_ADVERSARIAL = st.sampled_from([0, 1, 2, 0x7F, 0xFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF, 12345, 64, 1000])


@st.composite
def mutated(draw):
    data = STREAMS[draw(st.integers(0, len(STREAMS) - 1))]
    recs = _records(data)
    buf = bytearray(data)
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["flip", "field", "byte", "insert", "delete", "truncate"]))
        if not buf:
            break
        pos = draw(st.integers(0, len(buf) - 1))
        if kind == "flip":
            buf[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "field":
            a, _ = recs[draw(st.integers(0, len(recs) - 1))]
            off = a + draw(st.integers(0, 40))
            if off + 4 <= len(buf):
                struct.pack_into("<I", buf, off, draw(_ADVERSARIAL))
        elif kind == "byte":
            buf[pos] = draw(st.integers(0, 255))
        elif kind == "insert":
            buf[pos:pos] = bytes(draw(st.binary(min_size=1, max_size=8)))
        elif kind == "delete":
            del buf[pos:pos + draw(st.integers(1, 8))]
        else:
            del buf[pos:]
    if draw(st.booleans()):
        _reseal(buf, recs)
    return bytes(buf)


def _check_one(data: bytes):
    try:
        header, events, n = read_events(data)
    except CodecError as e:
        assert e.where == "header" or e.where.startswith(("block ", "end block", "stream")), e
        assert e.problem
        ok = False
    else:
        ok = True
        assert events.times.size == events.channels.size
        assert np.all((events.times >= 0) & (events.times < n))
        if n * header.n_channels <= 1 << 22:
            d = decode(data)
            assert d.samples_uv.shape == (n, header.n_channels)
            assert np.all(np.isfinite(d.samples_uv))
    # the incremental decoder agrees on validity
    dec = Decoder(max_buffer=1 << 16)
    try:
        for i in range(0, len(data), 97):
            for _ in dec.feed(data[i:i + 97]):
                pass
        dec.close()
        assert ok
    except CodecError:
        assert not ok


@pytest.mark.parametrize("cases", [400, pytest.param(50_000, marks=pytest.mark.long)])
def test_mutated_streams_raise_codec_error_or_decode_cleanly(cases):
    @settings(max_examples=cases, suppress_health_check=list(HealthCheck))
    @given(mutated())
    def check(data):
        _check_one(data)

    check()


def test_valid_streams_pass_the_same_checks():
    for s in STREAMS:
        _check_one(s)


@pytest.mark.parametrize("cut", range(0, 60))
def test_every_short_prefix_is_a_truncation_error(cut):
    with pytest.raises(CodecError, match="truncated|no end block"):
        read_events(STREAMS[0][:cut])


def test_adversarial_event_count_does_not_allocate():
    """A re-sealed block claiming 2**32-1 events fails on its own length, before any allocation."""
    buf = bytearray(STREAMS[0])
    recs = _records(bytes(buf))
    a, _ = recs[1]
    struct.pack_into("<I", buf, a + 9, 0xFFFFFFFF)
    _reseal(buf, recs)
    with pytest.raises(CodecError, match="block 0: event count"):
        read_events(bytes(buf))
    struct.pack_into("<I", buf, a + 9, 1000 * 3)   # plausible count, payload far too short
    _reseal(buf, recs)
    with pytest.raises(CodecError, match="block 0: payload invalid"):
        read_events(bytes(buf))
