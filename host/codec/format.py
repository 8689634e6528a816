"""The codec's binary container: header, data blocks, end block, CRC32.

Everything multi-byte is little-endian. The layout is specified in
``docs/codec.md``; this module is its executable form. Every field a reader
takes from a stream is validated before it is used to size anything, so a
corrupt or adversarial stream raises :class:`CodecError` naming where it
broke, never crashes, hangs or allocates without bound.
"""

from __future__ import annotations

import math
import struct
import zlib
from dataclasses import dataclass, field, replace

import numpy as np

__all__ = [
    "CodecError", "CodecTruncated", "CodecParams", "ms_to_samples", "StreamHeader", "BlockRecord", "EndRecord",
    "MAX_SAMPLE_UV", "MAX_NOISE_UV", "SAMPLE_RATE_RANGE_HZ", "MAX_POSITION_UM",
    "MAGIC", "VERSION", "KIND_DATA", "KIND_END", "MAX_CHANNELS", "MAX_CHANNELS_WITH_POSITIONS", "MAX_BLOCK_VALUES",
    "POLARITY_NEG", "POLARITY_POS", "POLARITY_BOTH", "DETECTOR_THRESHOLD", "DETECTOR_EXTERNAL",
    "pack_header", "pack_data_block", "pack_end_block", "read_header", "read_record",
]

MAGIC = b"BLSC"
VERSION = 1
KIND_DATA = 0x01
KIND_END = 0x02

#: Polarity codes stored in the header (same meaning as the gateware Detector's).
POLARITY_NEG, POLARITY_POS, POLARITY_BOTH = 0, 1, 2
_POLARITY_NAMES = {"neg": POLARITY_NEG, "pos": POLARITY_POS, "both": POLARITY_BOTH}
#: Detection source codes stored in the header.
DETECTOR_THRESHOLD, DETECTOR_EXTERNAL = 0, 1

#: block_size * n_channels limit: one decoded block stays under 128 MiB of float32.
MAX_BLOCK_VALUES = 1 << 25

# Physical ranges. The encoder refuses anything outside them and the decoder refuses a header
# outside them, so a decoded sample is always finite in float32: the largest is
# noise * 2**(255/4) = 1.5e12 * 1.5e19 = 2.2e31 µV, far below float32's 3.4e38.
#: Largest sample magnitude the encoder accepts, µV.
MAX_SAMPLE_UV = 1e12
#: Largest noise sigma, µV: the MAD sigma of samples within ±MAX_SAMPLE_UV (median / 0.6745).
MAX_NOISE_UV = MAX_SAMPLE_UV / 0.6745
#: Sample rates a stream may have, Hz.
SAMPLE_RATE_RANGE_HZ = (1.0, 1e7)
#: Largest |coordinate| of a channel position, µm (10 m).
MAX_POSITION_UM = 1e7

# Fixed part of the header: magic, version, header_bytes, sample_rate, n_channels,
# uv_per_code, block_size, pre, post, bits, polarity, detector, threshold_k, refractory,
# spatial_radius_um, spatial_window, has_positions.
_HEAD = struct.Struct("<4sHHdIdIBBBBBfHfBB")
_DATA = struct.Struct("<BIIII")       # kind, index, n_samples, n_events, payload_bytes
_END = struct.Struct("<BIQQ")         # kind, n_blocks, n_samples, n_events
_CRC = struct.Struct("<I")

# The header length is a u16 (offset 6) and the header grows by 4 bytes per channel (noise
# sigma) and 8 more with positions, so version 1 holds at most this many channels:
#: Channel count limit of version 1 without positions: (65535 - 53) // 4 = 16370.
MAX_CHANNELS = (0xFFFF - _HEAD.size - _CRC.size) // 4
#: Channel count limit of version 1 with positions: (65535 - 53) // 12 = 5456.
MAX_CHANNELS_WITH_POSITIONS = (0xFFFF - _HEAD.size - _CRC.size) // 12


class CodecError(ValueError):
    """A stream is not a valid codec stream; the message names where and why.

    Parameters
    ----------
    where : str
        ``"header"``, ``"block 12"``, ``"end block"`` or ``"stream"``.
    problem : str
        What is wrong, in words.
    """

    def __init__(self, where: str, problem: str):
        super().__init__(f"{where}: {problem}")
        self.where = where
        self.problem = problem


class CodecTruncated(CodecError):
    """The stream ends inside a record; ``needed`` is the record's total byte count if known.

    A streaming reader waits for more bytes on this error; a whole-stream
    reader reports it like any other :class:`CodecError`.
    """

    def __init__(self, where: str, problem: str, needed: int | None = None):
        super().__init__(where, problem)
        self.needed = needed


#: (time field, sample field, smallest, largest sample count) of every operating point given in time.
_TIMED = (("pre_ms", "pre", 0, 255), ("post_ms", "post", 1, 255), ("refractory_ms", "refractory", 1, 65535),
          ("block_ms", "block_size", 1, MAX_BLOCK_VALUES), ("spatial_window_ms", "spatial_window", 1, 255))


def ms_to_samples(ms: float, sample_rate: float) -> int:
    """``ms`` milliseconds in whole samples at ``sample_rate`` Hz, rounded half up."""
    return int(math.floor(ms * sample_rate / 1000.0 + 0.5))


@dataclass(frozen=True)
class CodecParams:
    """Operating point of the codec (documented defaults in ``docs/codec.md``).

    Durations are given in time, so a 20 kHz and a 30 kHz recording get the
    same snippet span, refractory period and spatial window; the encoder turns
    them into samples at the stream's rate (:meth:`at_rate`, rounding half up,
    at least the smallest allowed count) and the header stores the samples.
    A sample field (``pre``, ``post``, ``refractory``, ``block_size``,
    ``spatial_window``) given explicitly pins that count instead, at any
    rate; a decoded header has all of them set.

    Parameters
    ----------
    threshold_k : float
        Detection threshold in units of the channel's noise sigma (MAD estimate).
    pre_ms, post_ms : float
        Snippet span kept before and from the event sample: the snippet is
        ``[t - pre, t + post)`` samples; ``pre`` 0..255, ``post`` 1..255 samples.
    bits : int
        Bits per quantized snippet sample, 2..8 (values in ``-(2**(bits-1)-1) ..
        2**(bits-1)-1``).
    refractory_ms : float
        Minimum time between two detections on a channel (threshold detector
        only), 1..65535 samples.
    polarity : str
        ``"neg"``, ``"pos"`` or ``"both"``: which excursions are detected.
    block_ms : float
        Time per block. Blocks are the unit of streaming, CRC and memory.
    spatial_radius_um : float
        With channel positions known, a detection is kept only if no other
        detection on a channel within ``spatial_radius_um`` µm and within
        ``spatial_window`` has a larger peak (the locally exclusive rule of
        SpikeInterface's peak detection): one event per spike instead of one
        per channel that sees it. 0, or no positions, keeps every detection.
    spatial_window_ms : float
        The exclusion's time half-width and the span after the event sample in
        which its peak is measured, 1..255 samples.
    pre, post, refractory, block_size, spatial_window : int or None
        The same in samples; None (the default) derives them from the time
        fields at the stream's rate.
    """

    threshold_k: float = 5.0
    # 0.13 / 0.4 / 0.33 ms are 4 / 12 / 10 samples at 30 kHz, the operating point the codec
    # was tuned at (docs/codec.md), and 3 / 8 / 7 at 20 kHz.
    pre_ms: float = 0.13
    post_ms: float = 0.4
    bits: int = 3
    refractory_ms: float = 1.0
    polarity: str = "neg"
    block_ms: float = 1000.0
    spatial_radius_um: float = 50.0
    spatial_window_ms: float = 0.33
    pre: int | None = None
    post: int | None = None
    refractory: int | None = None
    block_size: int | None = None
    spatial_window: int | None = None

    def __post_init__(self):
        if not (np.isfinite(self.threshold_k) and 0 < self.threshold_k <= 1000):
            raise ValueError(f"threshold_k must be finite and in (0, 1000], not {self.threshold_k}")
        b = self.bits
        if not isinstance(b, (int, np.integer)) or isinstance(b, bool) or not 2 <= b <= 8:
            raise ValueError(f"bits must be an integer in 2..8, not {b!r}")
        for ms_name, name, lo, hi in _TIMED:
            ms = getattr(self, ms_name)
            if isinstance(ms, bool) or not isinstance(ms, (int, float, np.integer, np.floating)) \
                    or not (np.isfinite(ms) and ms >= 0):
                raise ValueError(f"{ms_name} must be a finite duration >= 0 ms, not {ms!r}")
            v = getattr(self, name)
            if v is not None and (not isinstance(v, (int, np.integer)) or isinstance(v, bool)
                                  or not lo <= v <= hi):
                raise ValueError(f"{name} must be an integer in {lo}..{hi} samples, not {v!r}")
        if not (np.isfinite(self.spatial_radius_um) and 0 <= self.spatial_radius_um <= 1e6):
            raise ValueError(f"spatial_radius_um must be in 0..1e6 µm, not {self.spatial_radius_um}")
        if self.polarity not in _POLARITY_NAMES:
            raise ValueError(f"polarity must be one of {sorted(_POLARITY_NAMES)}, not {self.polarity!r}")

    @property
    def resolved(self) -> bool:
        """True when every sample count is set (after :meth:`at_rate`, or read from a header)."""
        return all(getattr(self, name) is not None for _, name, _, _ in _TIMED)

    def at_rate(self, sample_rate: float) -> CodecParams:
        """This operating point with every sample count set for ``sample_rate`` Hz.

        Raises
        ------
        ValueError
            A duration that is more samples at this rate than the format allows
            (for example ``pre_ms`` above 255 samples), naming both.
        """
        if not (np.isfinite(sample_rate) and sample_rate > 0):
            raise ValueError(f"sample_rate must be positive and finite, not {sample_rate}")
        counts = {}
        for ms_name, name, lo, hi in _TIMED:
            if getattr(self, name) is not None:
                continue
            ms = getattr(self, ms_name)
            n = max(lo, ms_to_samples(ms, sample_rate))
            if n > hi:
                raise ValueError(f"{ms_name} = {ms:g} ms is {n} samples at {sample_rate:g} Hz; "
                                 f"{name} allows {lo}..{hi} samples")
            counts[name] = n
        return replace(self, **counts)

    @property
    def snippet_length(self) -> int:
        """Samples per snippet, ``pre + post``."""
        return self.pre + self.post

    @property
    def qmax(self) -> int:
        """Largest quantized magnitude, ``2**(bits-1) - 1``."""
        return (1 << (self.bits - 1)) - 1

    @property
    def polarity_code(self) -> int:
        return _POLARITY_NAMES[self.polarity]


@dataclass(frozen=True)
class StreamHeader:
    """Everything the header carries.

    Parameters
    ----------
    sample_rate : float
        Samples per second per channel.
    n_channels : int
        Channel count.
    uv_per_code : float
        ADC scale of the source in µV per code (informational for float input).
    params : CodecParams
        The operating point.
    detector : int
        :data:`DETECTOR_THRESHOLD` or :data:`DETECTOR_EXTERNAL`.
    noise_uv : numpy.ndarray
        float32 per-channel noise sigma in µV (positive, finite).
    positions_um : numpy.ndarray or None
        float32 ``(n_channels, 2)`` electrode positions in µm, if known.
    """

    sample_rate: float
    n_channels: int
    uv_per_code: float
    params: CodecParams
    detector: int
    noise_uv: np.ndarray = field(repr=False)
    positions_um: np.ndarray | None = field(default=None, repr=False)

    @property
    def nbytes(self) -> int:
        return _HEAD.size + (4 + (8 if self.positions_um is not None else 0)) * self.n_channels + _CRC.size


@dataclass(frozen=True)
class BlockRecord:
    """One data block as read from a stream (payload still entropy coded)."""
    index: int
    n_samples: int
    n_events: int
    payload: bytes


@dataclass(frozen=True)
class EndRecord:
    """The end block: totals the reader checks against what it decoded."""
    n_blocks: int
    n_samples: int
    n_events: int


def _crc(*parts: bytes) -> int:
    c = 0
    for p in parts:
        c = zlib.crc32(p, c)
    return c & 0xFFFFFFFF


def pack_header(h: StreamHeader) -> bytes:
    """Serialise a header, CRC32 included.

    Raises
    ------
    ValueError
        If the header would be longer than its u16 length field can say
        (more than :data:`MAX_CHANNELS` channels, :data:`MAX_CHANNELS_WITH_POSITIONS` with positions).
    """
    if h.nbytes > 0xFFFF:
        raise ValueError(f"{h.n_channels} channels{' with positions' if h.positions_um is not None else ''} need a "
                         f"{h.nbytes}-byte header; version 1 holds at most {MAX_CHANNELS} channels, "
                         f"{MAX_CHANNELS_WITH_POSITIONS} with positions")
    p = h.params.at_rate(h.sample_rate)   # durations to samples, if not done yet
    body = _HEAD.pack(MAGIC, VERSION, h.nbytes, float(h.sample_rate), h.n_channels,
                      float(h.uv_per_code), p.block_size, p.pre, p.post, p.bits,
                      p.polarity_code, h.detector, float(p.threshold_k), p.refractory,
                      float(p.spatial_radius_um), p.spatial_window, int(h.positions_um is not None))
    body += np.asarray(h.noise_uv, dtype="<f4").tobytes()
    if h.positions_um is not None:
        body += np.asarray(h.positions_um, dtype="<f4").tobytes()
    return body + _CRC.pack(_crc(body))


def pack_data_block(index: int, n_samples: int, n_events: int, payload: bytes) -> bytes:
    """Serialise one data block, CRC32 included."""
    body = _DATA.pack(KIND_DATA, index, n_samples, n_events, len(payload))
    return body + payload + _CRC.pack(_crc(body, payload))


def pack_end_block(n_blocks: int, n_samples: int, n_events: int) -> bytes:
    """Serialise the end block, CRC32 included."""
    body = _END.pack(KIND_END, n_blocks, n_samples, n_events)
    return body + _CRC.pack(_crc(body))


def read_header(buf, offset: int = 0) -> tuple[StreamHeader, int]:
    """Parse and validate the header at ``buf[offset:]``.

    Returns
    -------
    header, next_offset

    Raises
    ------
    CodecError
        If the magic, version, length, CRC or any field is invalid.
    """
    mv = memoryview(buf)
    if len(mv) - offset < _HEAD.size:
        raise CodecTruncated("header", f"truncated: {len(mv) - offset} bytes, need at least {_HEAD.size}",
                             _HEAD.size)
    (magic, version, hbytes, fs, nch, uvpc, bsize, pre, post, bits, pol, det, k,
     refr, srad, swin, has_pos) = _HEAD.unpack_from(mv, offset)
    if magic != MAGIC:
        raise CodecError("header", f"bad magic {magic!r}, expected {MAGIC!r}: not a bioloop codec stream")
    if version != VERSION:
        raise CodecError("header", f"unsupported version {version}; this reader knows version {VERSION}")
    if not 1 <= nch <= MAX_CHANNELS:
        raise CodecError("header", f"channel count {nch} outside 1..{MAX_CHANNELS}")
    if has_pos not in (0, 1):
        raise CodecError("header", f"positions flag {has_pos} is neither 0 nor 1")
    expected = _HEAD.size + (4 + 8 * has_pos) * nch + _CRC.size
    if hbytes != expected:
        raise CodecError("header", f"header length field {hbytes} does not match {expected} for {nch} channels")
    if len(mv) - offset < expected:
        raise CodecTruncated("header", f"truncated: {len(mv) - offset} bytes, header needs {expected}",
                             expected)
    (crc,) = _CRC.unpack_from(mv, offset + expected - 4)
    if crc != _crc(mv[offset:offset + expected - 4]):
        raise CodecError("header", "CRC32 mismatch: the header is corrupt")
    lo, hi = SAMPLE_RATE_RANGE_HZ
    if not (np.isfinite(fs) and lo <= fs <= hi):
        raise CodecError("header", f"sample rate {fs} Hz is outside {lo:g}..{hi:g} Hz")
    if not (np.isfinite(uvpc) and 0 < uvpc <= MAX_SAMPLE_UV / 32768):
        raise CodecError("header", f"µV per code {uvpc} is outside (0, {MAX_SAMPLE_UV / 32768:g}]")
    if bsize < 1 or bsize * nch > MAX_BLOCK_VALUES:
        raise CodecError("header", f"block size {bsize} x {nch} channels outside 1..{MAX_BLOCK_VALUES} values")
    if pol not in (POLARITY_NEG, POLARITY_POS, POLARITY_BOTH):
        raise CodecError("header", f"unknown polarity code {pol}")
    if det not in (DETECTOR_THRESHOLD, DETECTOR_EXTERNAL):
        raise CodecError("header", f"unknown detector code {det}")
    try:
        ms = 1000.0 / fs
        params = CodecParams(threshold_k=float(k), pre=pre, post=post, bits=bits, refractory=refr,
                             polarity={v: n for n, v in _POLARITY_NAMES.items()}[pol],
                             block_size=bsize, spatial_radius_um=float(srad), spatial_window=swin,
                             pre_ms=pre * ms, post_ms=post * ms, refractory_ms=refr * ms,
                             block_ms=bsize * ms, spatial_window_ms=swin * ms)
    except ValueError as e:
        raise CodecError("header", f"invalid codec parameters: {e}") from None
    noise = np.frombuffer(mv, dtype="<f4", count=nch, offset=offset + _HEAD.size).astype(np.float32)
    bad = np.flatnonzero(~(np.isfinite(noise) & (noise > 0) & (noise <= MAX_NOISE_UV)))
    if bad.size:
        raise CodecError("header", f"noise level of channel {bad[0]} is {noise[bad[0]]} µV, outside "
                                   f"(0, {MAX_NOISE_UV:.3g}] µV")
    pos = None
    if has_pos:
        pos = np.frombuffer(mv, dtype="<f4", count=2 * nch, offset=offset + _HEAD.size + 4 * nch)
        pos = pos.astype(np.float32).reshape(nch, 2)
        if not np.all(np.isfinite(pos) & (np.abs(pos) <= MAX_POSITION_UM)):
            raise CodecError("header", f"channel positions contain values that are not finite or beyond "
                                       f"±{MAX_POSITION_UM:g} µm")
    return StreamHeader(fs, nch, uvpc, params, det, noise, pos), offset + expected


def read_record(buf, offset: int, header: StreamHeader, index: int) -> tuple[BlockRecord | EndRecord, int]:
    """Parse and validate the block starting at ``buf[offset:]``.

    ``index`` is the index the next data block must carry. Payload contents
    are checked by the decoder; here the framing, lengths and CRC are.
    """
    mv = memoryview(buf)
    left = len(mv) - offset
    where = f"block {index}"
    if left < 1:
        raise CodecTruncated("stream", f"truncated after {index} blocks: no end block", 1)
    kind = mv[offset]
    if kind == KIND_END:
        if left < _END.size + 4:
            raise CodecTruncated("end block", f"truncated: {left} bytes, need {_END.size + 4}", _END.size + 4)
        _, nb, ns, ne = _END.unpack_from(mv, offset)
        (crc,) = _CRC.unpack_from(mv, offset + _END.size)
        if crc != _crc(mv[offset:offset + _END.size]):
            raise CodecError("end block", "CRC32 mismatch: the end block is corrupt")
        return EndRecord(nb, ns, ne), offset + _END.size + 4
    if kind != KIND_DATA:
        raise CodecError(where, f"unknown block kind 0x{kind:02x} at byte {offset}")
    if left < _DATA.size + 4:
        raise CodecTruncated(where, f"truncated: {left} bytes left, a block needs at least {_DATA.size + 4}",
                             _DATA.size + 4)
    _, idx, ns, ne, pb = _DATA.unpack_from(mv, offset)
    if pb > left - _DATA.size - 4:
        raise CodecTruncated(where, f"payload length {pb} exceeds the {left - _DATA.size - 4} bytes left: "
                                    "truncated or corrupt length", _DATA.size + pb + 4)
    end = offset + _DATA.size + pb
    (crc,) = _CRC.unpack_from(mv, end)
    if crc != _crc(mv[offset:end]):
        raise CodecError(where, "CRC32 mismatch: the block is corrupt")
    if idx != index:
        raise CodecError(where, f"carries index {idx}: blocks missing, duplicated or reordered")
    if not 1 <= ns <= header.params.block_size:
        raise CodecError(where, f"sample count {ns} outside 1..{header.params.block_size}")
    if ne > ns * header.n_channels:
        raise CodecError(where, f"event count {ne} exceeds one per sample per channel ({ns} x {header.n_channels})")
    return BlockRecord(idx, ns, ne, bytes(mv[offset + _DATA.size:end])), end + 4
