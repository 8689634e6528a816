"""Entropy coding of a block's events: Golomb-Rice codes in one bit stream.

Golomb (1966) codes with a power-of-two divisor 2**k (Rice 1979) are optimal
prefix codes for geometric sources, which is what inter-event gaps and
zigzag-mapped small quantized samples are close to. The encoder picks the
best ``k`` per section and stores it, so no tables are needed. Bits are
written LSB-first: bit ``i`` of the stream is bit ``i % 8`` of byte ``i // 8``.
A Rice code of ``v`` with parameter ``k`` is ``v >> k`` one-bits, a zero
bit, then the low ``k`` bits of ``v``, least significant first.

Block payload layout (``docs/codec.md`` is the normative text)::

    k_count:4  then n_channels x rice(count[c], k_count)
    k_gap:5    then for each channel c, each of its events: rice(gap, k_gap)
               with t = t_prev + 1 + gap, t_prev = -1 at the block start
    k_scale:3  then for each event (same order): rice(zigzag(s - s_prev), k_scale),
               s_prev = the previous event's code on the same channel, 0 for its first
    for j in 0..L-1: k_j:3 then for each event: rice(zigzag(q[e, j] - q[e, j-1]), k_j),
               q[e, -1] = 0
    zero bits up to the next byte boundary

A block without events has an empty payload.
"""

from __future__ import annotations

import numpy as np

from bioloop.host.jit import ENABLED as _JIT, njit

__all__ = ["rice_k", "rice_cost", "zigzag", "unzigzag", "encode_payload", "decode_payload",
           "PAYLOAD_ERRORS"]

_K_BITS_COUNT, _K_BITS_GAP, _K_BITS_SCALE, _K_BITS_SNIP = 4, 5, 3, 3


def zigzag(v: np.ndarray) -> np.ndarray:
    """Map signed integers to unsigned: 0, -1, 1, -2, 2 ... -> 0, 1, 2, 3, 4 ..."""
    v = np.asarray(v, dtype=np.int64)
    return ((v << 1) ^ (v >> 63)).astype(np.int64)


def unzigzag(u: np.ndarray) -> np.ndarray:
    """Inverse of :func:`zigzag`."""
    u = np.asarray(u, dtype=np.int64)
    return (u >> 1) ^ -(u & 1)


def rice_cost(v: np.ndarray, k: int) -> int:
    """Bits needed to Rice-code the non-negative values ``v`` with parameter ``k``."""
    v = np.asarray(v, dtype=np.int64)
    return int((v >> k).sum()) + v.size * (k + 1)


def rice_k(v: np.ndarray, kmax: int) -> int:
    """The ``k`` in ``0..kmax`` that codes ``v`` in the fewest bits (smallest ``k`` on ties)."""
    v = np.asarray(v, dtype=np.int64)
    if v.size == 0:
        return 0
    costs = [rice_cost(v, k) for k in range(kmax + 1)]
    return int(np.argmin(costs))


@njit(cache=True, nogil=True)
def _best_k(v, kmax):
    # argmin over k of sum(v >> k) + n (k + 1), smallest k on ties
    best, best_cost = 0, -1
    for k in range(kmax + 1):
        cost = v.size * (k + 1)
        for x in v:
            cost += x >> k
        if best_cost < 0 or cost < best_cost:
            best, best_cost = k, cost
    return best, best_cost


def _best_k_numpy(v, kmax):
    """The numpy path of :func:`_best_k` (same costs, smallest k on ties)."""
    best, best_cost = 0, -1
    for k in range(kmax + 1):
        cost = v.size * (k + 1) + int((v >> k).sum())
        if best_cost < 0 or cost < best_cost:
            best, best_cost = k, cost
    return best, best_cost


if not _JIT:      # the plain-Python _encode below looks _best_k up at call time
    _best_k = _best_k_numpy


# The writer keeps up to 7 pending bits in an accumulator and stores whole
# bytes; (bp, acc, na) = next byte, pending bits, their count.
@njit(cache=True, nogil=True, inline="always")
def _put(buf, bp, acc, na, value, n):
    acc |= (np.uint64(value) & np.uint64((1 << n) - 1)) << np.uint64(na)
    na += n
    while na >= 8:
        buf[bp] = np.uint8(acc & np.uint64(0xFF))
        acc >>= np.uint64(8)
        na -= 8
        bp += 1
    return bp, acc, na


@njit(cache=True, nogil=True, inline="always")
def _put_rice(buf, bp, acc, na, value, k):
    q = value >> k
    while q >= 32:
        bp, acc, na = _put(buf, bp, acc, na, 0xFFFFFFFF, 32)
        q -= 32
    bp, acc, na = _put(buf, bp, acc, na, (1 << q) - 1, q + 1)   # q ones, then the zero
    return _put(buf, bp, acc, na, value, k)


@njit(cache=True, nogil=True)
def _encode(counts, gaps, scales, zq):
    n_ev, L = zq.shape
    kc, cc = _best_k(counts, 15)
    kg, cg = _best_k(gaps, 31)
    ks, cs = _best_k(scales, 7)
    kq = np.zeros(L, np.int64)
    nbits = 4 + cc + 5 + cg + 3 + cs
    col = np.empty(n_ev, np.int64)
    for j in range(L):
        for e in range(n_ev):
            col[e] = zq[e, j]
        kq[j], cj = _best_k(col, 7)
        nbits += 3 + cj
    buf = np.zeros((nbits + 7) // 8, np.uint8)
    bp, acc, na = 0, np.uint64(0), 0
    bp, acc, na = _put(buf, bp, acc, na, kc, 4)
    for c in range(counts.size):
        bp, acc, na = _put_rice(buf, bp, acc, na, counts[c], kc)
    bp, acc, na = _put(buf, bp, acc, na, kg, 5)
    for e in range(n_ev):
        bp, acc, na = _put_rice(buf, bp, acc, na, gaps[e], kg)
    bp, acc, na = _put(buf, bp, acc, na, ks, 3)
    for e in range(n_ev):
        bp, acc, na = _put_rice(buf, bp, acc, na, scales[e], ks)
    for j in range(L):
        bp, acc, na = _put(buf, bp, acc, na, kq[j], 3)
        for e in range(n_ev):
            bp, acc, na = _put_rice(buf, bp, acc, na, zq[e, j], kq[j])
    if na:
        buf[bp] = np.uint8(acc & np.uint64(0xFF))
    return buf


def encode_payload(counts: np.ndarray, gaps: np.ndarray, scales: np.ndarray, q: np.ndarray) -> bytes:
    """Code one block's events (channel-major order) into its payload bytes.

    Parameters
    ----------
    counts : numpy.ndarray
        Events per channel, length ``n_channels``.
    gaps : numpy.ndarray
        Per event, samples since the previous event on its channel minus one.
    scales : numpy.ndarray
        Per event scale code, 0..255.
    q : numpy.ndarray
        Quantized snippets, shape ``(n_events, L)``.

    Notes
    -----
    Each section's ``k`` minimises its coded length,
    ``sum(v >> k) + n (k + 1)`` bits, smallest ``k`` on ties.
    """
    if gaps.size == 0:
        return b""
    counts = np.asarray(counts, np.int64)
    scales = np.asarray(scales, np.int64)
    # Scale codes: difference to the previous event of the same channel (0
    # before a channel's first): a unit's spikes on a channel have similar
    # amplitudes. Snippets: first difference along time (DPCM), since a
    # spike waveform at 30 kHz is smooth; both cut the bits about a quarter.
    first = np.zeros(scales.size, bool)
    first[np.cumsum(counts)[counts > 0] - counts[counts > 0]] = True
    ds = scales - np.where(first, 0, np.concatenate(([0], scales[:-1])))
    q = np.asarray(q, np.int64)
    dq = np.diff(q, axis=1, prepend=0)
    return _encode(counts, np.asarray(gaps, np.int64), zigzag(ds), np.ascontiguousarray(zigzag(dq))).tobytes()


#: Error codes of :func:`_decode` and what they mean.
PAYLOAD_ERRORS = {
    1: "bit stream ends inside a code",
    2: "a Rice code exceeds the range of its field",
    3: "channel event counts do not add up to the block's event count",
    4: "event time beyond the end of the block",
    5: "scale code outside 0..255",
    6: "quantized sample beyond the snippet range",
    7: "payload has bytes or non-zero padding after the last code",
}


@njit(cache=True, nogil=True)
def _get(buf, pos, n, nbits):
    # Returns (value, pos); pos = -1 if the stream ends first.
    if pos + n > nbits:
        return 0, -1
    v = 0
    for i in range(n):
        v |= ((int(buf[pos >> 3]) >> (pos & 7)) & 1) << i
        pos += 1
    return v, pos


@njit(cache=True, nogil=True)
def _get_rice(buf, pos, k, nbits, vmax):
    # Returns (value, pos); pos = -1 at end of stream, -2 if value > vmax.
    # The unary run is cut at vmax >> k, so it is bounded by the field's range
    # and by the stream length: no hang, whatever the bits.
    qmax = vmax >> k
    q = 0
    while True:
        if pos >= nbits:
            return 0, -1
        bit = (int(buf[pos >> 3]) >> (pos & 7)) & 1
        pos += 1
        if bit == 0:
            break
        q += 1
        if q > qmax:
            return 0, -2
    low, pos = _get(buf, pos, k, nbits)
    if pos < 0:
        return 0, -1
    v = (q << k) | low
    if v > vmax:
        return 0, -2
    return v, pos


@njit(cache=True, nogil=True)
def _decode(buf, n_channels, n_samples, n_events, L, qmax, channels, times, scales, q):
    nbits = buf.size * 8
    kc, pos = _get(buf, 0, 4, nbits)
    if pos < 0:
        return 1
    total = 0
    counts = np.zeros(n_channels, dtype=np.int64)
    for c in range(n_channels):
        v, pos = _get_rice(buf, pos, kc, nbits, n_samples)
        if pos < 0:
            return 1 if pos == -1 else 2
        counts[c] = v
        total += v
        if total > n_events:
            return 3
    if total != n_events:
        return 3
    kg, pos = _get(buf, pos, 5, nbits)
    if pos < 0:
        return 1
    e = 0
    for c in range(n_channels):
        t = -1
        for _ in range(counts[c]):
            g, pos = _get_rice(buf, pos, kg, nbits, n_samples)
            if pos < 0:
                return 1 if pos == -1 else 2
            t = t + 1 + g
            if t >= n_samples:
                return 4
            channels[e] = c
            times[e] = t
            e += 1
    ks, pos = _get(buf, pos, 3, nbits)
    if pos < 0:
        return 1
    for i in range(n_events):
        z, pos = _get_rice(buf, pos, ks, nbits, 510)
        if pos < 0:
            return 1 if pos == -1 else 5
        s = (z >> 1) ^ -(z & 1)
        if i > 0 and channels[i] == channels[i - 1]:
            s += int(scales[i - 1])
        if s < 0 or s > 255:
            return 5
        scales[i] = s
    for j in range(L):
        kq, pos = _get(buf, pos, 3, nbits)
        if pos < 0:
            return 1
        for i in range(n_events):
            z, pos = _get_rice(buf, pos, kq, nbits, 4 * qmax)
            if pos < 0:
                return 1 if pos == -1 else 6
            v = (z >> 1) ^ -(z & 1)
            if j > 0:
                v += int(q[i, j - 1])
            if v < -qmax or v > qmax:
                return 6
            q[i, j] = v
    # Strictness: the payload is exactly the codes plus < 8 zero padding bits.
    if (nbits - pos) >= 8:
        return 7
    while pos < nbits:
        if (int(buf[pos >> 3]) >> (pos & 7)) & 1:
            return 7
        pos += 1
    return 0


def decode_payload(payload: bytes, n_channels: int, n_samples: int, n_events: int,
                   snippet_length: int, qmax: int):
    """Decode one block's payload.

    Returns
    -------
    channels, times, scales, q, or an error code (key of :data:`PAYLOAD_ERRORS`) as ``int``.
    ``times`` are relative to the block start; events are in channel-major order.
    """
    if n_events == 0:
        if len(payload):
            return 7
        return (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64),
                np.zeros((0, snippet_length), np.int8))
    # Every event costs at least one bit for its gap, scale and each snippet
    # sample, so this bounds the allocation by the payload's own length.
    if n_events * (snippet_length + 2) > 8 * len(payload):
        return 1
    buf = np.frombuffer(payload, dtype=np.uint8)
    channels = np.empty(n_events, np.int64)
    times = np.empty(n_events, np.int64)
    scales = np.empty(n_events, np.int64)
    q = np.empty((n_events, snippet_length), np.int8)
    err = _decode(buf, n_channels, n_samples, n_events, snippet_length, qmax, channels, times, scales, q)
    if err:
        return int(err)
    return channels, times, scales, q
