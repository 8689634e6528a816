"""Streaming encoder: samples in, container bytes out, block by block.

Blocks are cut at fixed sample counts of the stream (``block_size``), never
at the caller's chunk boundaries, and all state between blocks (detector
state, snippet context) is explicit, so any chunking of the input gives the
same bytes as a one-shot :func:`encode`. Memory is bounded by one block plus
the snippet context plus the caller's chunk.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .entropy import encode_payload
from .events import (DetectorState, detect, locally_exclusive, mad_sigma, mad_sigma_codes, neighbour_matrix,
                     peak_amplitudes, quantize_snippets, thresholds)
from .format import (DETECTOR_EXTERNAL, DETECTOR_THRESHOLD, MAX_CHANNELS, MAX_CHANNELS_WITH_POSITIONS,
                     MAX_NOISE_UV, MAX_POSITION_UM, MAX_SAMPLE_UV, SAMPLE_RATE_RANGE_HZ, CodecParams,
                     StreamHeader, pack_data_block, pack_end_block, pack_header)

__all__ = ["Encoder", "EncoderStats", "encode", "MAX_SAMPLE_UV"]

# MAX_SAMPLE_UV (format.py), the largest sample magnitude the encoder takes, in µV: a megavolt,
# far beyond any electrode, and far enough inside float32 that the noise sigma, thresholds and
# snippet scales the header and payload carry stay finite (near 3.4e38 the sigma would be inf).

_DTYPES = (np.dtype(np.int16), np.dtype(np.float32), np.dtype(np.float64))


@dataclass
class EncoderStats:
    """What the encoder did, for reports.

    Attributes
    ----------
    n_samples, n_blocks, n_events : int
        Totals written so far.
    n_clipped : int
        Events whose amplitude exceeded the largest scale code and were clipped.
    n_bytes : int
        Container bytes produced so far.
    """
    n_samples: int = 0
    n_blocks: int = 0
    n_events: int = 0
    n_clipped: int = 0
    n_bytes: int = 0


class Encoder:
    """Block-wise encoder.

    Parameters
    ----------
    n_channels : int
        Channel count; every chunk must have this many columns.
    sample_rate : float
        Samples per second per channel.
    params : CodecParams, optional
        Operating point; defaults documented in ``docs/codec.md``.
    uv_per_code : float
        µV per ADC code. int16 input is taken as codes and scaled by it; float
        input is taken as µV already and this value is only recorded.
    noise_uv : array_like, optional
        Per-channel noise sigma in µV. If omitted it is the MAD estimate of the
        first block (``block_size`` samples), written to the header, and used
        for the whole stream, like the host programming the gateware
        Detector's thresholds once.
    external : bool
        Take detections from :meth:`push` (``detections=``) instead of running
        the threshold detector, e.g. the gateware's AER SPIKE words.
    positions_um : array_like, optional
        ``(n_channels, 2)`` electrode positions in µm, stored in the header.
        The spatial rule (``params.spatial_radius_um``) needs them.

    Examples
    --------
    >>> enc = Encoder(4, 30000.0)                                  # doctest: +SKIP
    >>> out = b"".join(enc.push(chunk) for chunk in chunks) + enc.finish()
    """

    def __init__(self, n_channels: int, sample_rate: float, params: CodecParams | None = None, *,
                 uv_per_code: float = 1.0, noise_uv=None, external: bool = False, positions_um=None):
        lo, hi = SAMPLE_RATE_RANGE_HZ
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, float, np.integer, np.floating)):
            raise TypeError(f"sample_rate must be a number of Hz, not {type(sample_rate).__name__}")
        if not (np.isfinite(sample_rate) and lo <= sample_rate <= hi):
            raise ValueError(f"sample_rate must be in {lo:g}..{hi:g} Hz, not {sample_rate}")
        # durations in ms become sample counts at this rate; the header stores the counts
        self.params = params = (params or CodecParams()).at_rate(float(sample_rate))
        if isinstance(n_channels, bool) or not isinstance(n_channels, (int, np.integer)):
            raise TypeError(f"n_channels must be an integer, not {type(n_channels).__name__}")
        limit = MAX_CHANNELS if positions_um is None else MAX_CHANNELS_WITH_POSITIONS
        if not 1 <= n_channels <= limit:
            raise ValueError(f"n_channels = {n_channels} is outside 1..{limit}: the version-1 header holds at most "
                             f"{MAX_CHANNELS} channels, {MAX_CHANNELS_WITH_POSITIONS} with positions")
        if params.block_size * n_channels > (1 << 25):
            raise ValueError(f"block_size {params.block_size} x {n_channels} channels exceeds 2**25 values; "
                             "use a smaller block_size")
        if not (np.isfinite(uv_per_code) and 0 < uv_per_code <= MAX_SAMPLE_UV / 32768):
            raise ValueError(f"uv_per_code must be in (0, {MAX_SAMPLE_UV / 32768:g}] µV (int16 codes up to "
                             f"{MAX_SAMPLE_UV:g} µV), not {uv_per_code}")
        self.n_channels = int(n_channels)
        self.sample_rate = float(sample_rate)
        self.uv_per_code = float(uv_per_code)
        self.external = bool(external)
        if noise_uv is not None:
            noise_uv = np.asarray(noise_uv, dtype=np.float64)
            if noise_uv.shape != (n_channels,) or not np.all(np.isfinite(noise_uv) & (noise_uv > 0)
                                                              & (noise_uv <= MAX_NOISE_UV)):
                raise ValueError(f"noise_uv must be {n_channels} values in (0, {MAX_NOISE_UV:.3g}] µV")
            noise_uv = noise_uv.astype(np.float32)
        self.noise_uv = noise_uv
        self.positions_um = None
        self._neighbours = None
        if positions_um is not None:
            pos = np.asarray(positions_um, dtype=np.float64)
            if pos.shape != (n_channels, 2) or not np.all(np.isfinite(pos) & (np.abs(pos) <= MAX_POSITION_UM)):
                raise ValueError(f"positions_um must be {n_channels} finite (x, y) pairs within "
                                 f"±{MAX_POSITION_UM:g} µm, not shape {pos.shape}")
            self.positions_um = pos.astype(np.float32)
            if params.spatial_radius_um > 0:
                self._neighbours = neighbour_matrix(self.positions_um, params.spatial_radius_um)
        self.stats = EncoderStats()
        self._dtype = None      # dtype the samples are kept in (float64 input is kept as float32)
        self._in_dtype = None   # dtype of the pushed chunks; it must not change
        # rows = samples [block * block_size - pre, ... + fill); cap = pre + block_size + post
        self._buf = None
        self._fill = 0
        self._block = 0
        self._header = None
        self._det_state = DetectorState(n_channels, params.refractory)
        self._limits = None
        self._pending = []    # external detections not yet in an emitted block: (times, channels)
        # detections of the previous block's last spatial_window samples: (times, channels, peaks)
        self._tail = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
        self._finished = False
        # rows needed after a block: its snippets' tails and, with the spatial
        # rule, the next block's detections within the window and their peaks
        self._lookahead = max(params.post, 2 * params.spatial_window if self._neighbours is not None else 0)

    # -- input validation --------------------------------------------------
    def _check(self, x) -> np.ndarray:
        if not isinstance(x, np.ndarray):
            raise TypeError(f"samples must be a numpy array, not {type(x).__name__}")
        if x.dtype not in _DTYPES:
            raise TypeError(f"samples dtype {x.dtype} not supported: use int16 ADC codes "
                            "(scaled by uv_per_code) or float32/float64 µV")
        if x.ndim != 2 or x.shape[1] != self.n_channels:
            raise ValueError(f"samples must have shape (n_samples, {self.n_channels}), not {x.shape}")
        if self._in_dtype is not None and x.dtype != self._in_dtype:
            raise TypeError(f"samples dtype changed from {self._in_dtype} to {x.dtype} within a stream")
        if x.dtype.kind == "f":
            bad = ~np.isfinite(x)
            if bad.any():
                t, c = np.argwhere(bad)[0]
                what = "NaN" if np.isnan(x[t, c]) else "inf"
                raise ValueError(f"samples contain {what} at channel {c}, sample {self.stats.n_samples + t}; "
                                 "the codec needs finite values")
            big = np.abs(x) > MAX_SAMPLE_UV
            if big.any():
                t, c = np.argwhere(big)[0]
                raise ValueError(f"sample {self.stats.n_samples + t} of channel {c} is {float(x[t, c]):g} µV, beyond "
                                 f"±{MAX_SAMPLE_UV:g} µV; the codec takes voltages in µV (is the input in "
                                 "another unit?)")
            if x.dtype == np.float64:
                x = x.astype(np.float32)
        return x

    def _check_detections(self, detections, n_new):
        times, channels = (np.asarray(a) for a in detections)
        if times.shape != channels.shape or times.ndim != 1:
            raise ValueError("detections must be two 1-D arrays of equal length: (sample times, channels)")
        if times.size == 0:
            return None
        if times.dtype.kind not in "iu" or channels.dtype.kind not in "iu":
            raise TypeError("detection times and channels must be integers")
        times = times.astype(np.int64)
        channels = channels.astype(np.int64)
        if channels.min() < 0 or channels.max() >= self.n_channels:
            raise ValueError(f"detection channel outside 0..{self.n_channels - 1}")
        # Each detection comes with the chunk holding its sample: then every
        # block (and the spatial rule's lookahead) sees the same detections
        # whatever the chunking.
        start, end = self.stats.n_samples, self.stats.n_samples + n_new
        if times.min() < start or times.max() >= end:
            raise ValueError(f"detection times must lie in this chunk's samples {start}..{end - 1}, "
                             f"not {times.min()}..{times.max()}")
        return times, channels

    # -- public API ---------------------------------------------------------
    def push(self, samples: np.ndarray, detections=None) -> bytes:
        """Add samples (rows are consecutive sample instants); return the bytes ready so far.

        Parameters
        ----------
        samples : numpy.ndarray
            ``(n, n_channels)``, int16 codes or float µV.
        detections : tuple of arrays, optional
            External mode only: ``(sample_times, channels)`` of the events whose
            sample is in this chunk (global sample indices).

        Raises
        ------
        TypeError, ValueError
            On a bad dtype, shape, non-finite value or bad detection; the
            chunk is rejected whole and the stream so far stays valid.
        """
        if self._finished:
            raise RuntimeError("encoder already finished")
        in_dtype = getattr(samples, "dtype", None)
        x = self._check(samples)
        if detections is not None and not self.external:
            raise ValueError("detections are only accepted by an encoder made with external=True")
        det = self._check_detections(detections, x.shape[0]) if detections is not None else None
        if self._dtype is None:
            self._dtype, self._in_dtype = x.dtype, in_dtype
            cap = self.params.pre + self.params.block_size + self._lookahead
            self._buf = np.zeros((cap, self.n_channels), dtype=x.dtype)
            self._fill = self.params.pre     # zeros before the stream start
        if det is not None:
            self._pending.append(det)
        self.stats.n_samples += x.shape[0]
        out = []
        cap = self._buf.shape[0]
        i = 0
        while i < x.shape[0]:
            n = min(cap - self._fill, x.shape[0] - i)
            self._buf[self._fill:self._fill + n] = x[i:i + n]
            self._fill += n
            i += n
            if self._fill == cap:
                out.append(self._emit(self.params.block_size))
        return self._account(b"".join(out))

    def finish(self) -> bytes:
        """Encode what is left and the end block; return those bytes."""
        if self._finished:
            raise RuntimeError("encoder already finished")
        if self.stats.n_samples == 0:
            raise ValueError("no samples were pushed; an empty stream has nothing to encode")
        self._finished = True
        out = []
        p = self.params
        # real samples from the current block start to the end of the stream
        while (left := self._fill - p.pre) > 0:
            n = min(left, p.block_size)
            self._buf[self._fill:] = 0        # samples past the end count as zero
            out.append(self._emit(n))
        out.append(pack_end_block(self.stats.n_blocks, self.stats.n_samples, self.stats.n_events))
        return self._account(b"".join(out))

    def _account(self, b: bytes) -> bytes:
        self.stats.n_bytes += len(b)
        return b

    # -- one block -----------------------------------------------------------
    def _emit(self, n: int) -> bytes:
        p = self.params
        buf = self._buf
        out = b""
        if self._header is None:
            if self.noise_uv is None:
                first = buf[p.pre:p.pre + n]
                self.noise_uv = (mad_sigma_codes(first, self.uv_per_code) if first.dtype == np.int16
                                 else mad_sigma(first))
            self._header = StreamHeader(self.sample_rate, self.n_channels, self.uv_per_code, p,
                                        DETECTOR_EXTERNAL if self.external else DETECTOR_THRESHOLD,
                                        self.noise_uv, self.positions_um)
            self._limits = thresholds(self.noise_uv, p.threshold_k, p.polarity, buf.dtype, self.uv_per_code)
            out = pack_header(self._header)
        t_start = self._block * p.block_size
        if self.external:
            times, chans = self._take_external(t_start, t_start + n)
        else:
            lo, hi = self._limits
            times, chans = detect(buf[p.pre:p.pre + n], lo, hi, p.refractory, t_start, self._det_state)
        if self._neighbours is not None:
            times, chans = self._spatial(times, chans, t_start, n)
        # channel-major order: the payload codes per-channel gaps
        order = np.lexsort((times, chans))
        times, chans = times[order], chans[order]
        rel = times - t_start
        L = p.snippet_length
        idx = (rel[:, None] + np.arange(L)[None, :])  # row in buf: rel - pre + pre
        snip = buf[idx, chans[:, None]].astype(np.float64)
        if buf.dtype == np.int16:
            snip *= self.uv_per_code
        scales, q, n_clip = quantize_snippets(snip, chans, self.noise_uv, p.qmax)
        counts = np.bincount(chans, minlength=self.n_channels)
        prev = np.concatenate(([-1], rel[:-1]))
        new_channel = np.ones(rel.size, bool)
        new_channel[1:] = chans[1:] != chans[:-1]
        prev[new_channel] = -1
        gaps = rel - prev - 1
        payload = encode_payload(counts, gaps, scales, q)
        out += pack_data_block(self._block, n, rel.size, payload)
        self.stats.n_blocks += 1
        self.stats.n_events += int(rel.size)
        self.stats.n_clipped += n_clip
        self._block += 1
        # keep the context rows [block_size, fill) as the next block's first rows
        keep = self._fill - p.block_size
        if keep > 0:
            buf[:keep] = buf[p.block_size:self._fill].copy()
        self._fill = max(keep, 0)
        return out

    def _spatial(self, times, chans, t_start, n):
        """Apply the locally exclusive rule; competitors come from both neighbouring blocks."""
        p, buf = self.params, self._buf
        w = p.spatial_window
        amps = peak_amplitudes(buf, times - t_start + p.pre, chans, w, p.polarity)
        # The next block's detections in its first w samples, from a copy of the
        # detector state: exactly what that block will detect there.
        if self.external:
            la_t, la_c = self._peek_external(t_start + n, t_start + n + w)
        else:
            st = DetectorState(self.n_channels, p.refractory)
            st.beyond[:], st.last[:] = self._det_state.beyond, self._det_state.last
            lo, hi = self._limits
            la_t, la_c = detect(buf[p.pre + n:p.pre + n + w], lo, hi, p.refractory, t_start + n, st)
        la_a = peak_amplitudes(buf, la_t - t_start + p.pre, la_c, w, p.polarity)
        tt, tc, ta = self._tail
        all_t = np.concatenate((tt, times, la_t))
        all_c = np.concatenate((tc, chans, la_c))
        all_a = np.concatenate((ta, amps, la_a))
        target = np.zeros(all_t.size, bool)
        target[tt.size:tt.size + times.size] = True
        keep = locally_exclusive(all_t, all_c, all_a, target, self._neighbours, w)[tt.size:tt.size + times.size]
        m = times >= t_start + n - w
        self._tail = (times[m], chans[m], amps[m])
        return times[keep], chans[keep]

    def _peek_external(self, t0: int, t1: int):
        ts = [t[(t >= t0) & (t < t1)] for t, _ in self._pending]
        cs = [c[(t >= t0) & (t < t1)] for t, c in self._pending]
        return (np.concatenate(ts) if ts else np.zeros(0, np.int64),
                np.concatenate(cs) if cs else np.zeros(0, np.int64))

    def _take_external(self, t0: int, t1: int):
        ts, cs, rest = [], [], []
        for times, chans in self._pending:
            m = (times >= t0) & (times < t1)
            ts.append(times[m])
            cs.append(chans[m])
            if not m.all():
                rest.append((times[~m], chans[~m]))
        self._pending = rest
        times = np.concatenate(ts) if ts else np.zeros(0, np.int64)
        chans = np.concatenate(cs) if cs else np.zeros(0, np.int64)
        key = chans * (1 << 40) + times
        if np.unique(key).size != key.size:
            raise ValueError(f"duplicate detection (same sample and channel) in samples {t0}..{t1 - 1}")
        return times, chans


def encode(samples: np.ndarray, sample_rate: float, params: CodecParams | None = None, *,
           uv_per_code: float = 1.0, noise_uv=None, detections=None,
           positions_um=None) -> tuple[bytes, EncoderStats]:
    """One-shot encode of a whole ``(n_samples, n_channels)`` array.

    ``detections=(sample_times, channels)`` switches to external detections.
    Returns the container bytes and the encoder's statistics.
    """
    if not isinstance(samples, np.ndarray) or samples.ndim != 2:
        raise ValueError(f"samples must be a 2-D numpy array (n_samples, n_channels), "
                         f"not {getattr(samples, 'shape', type(samples).__name__)}")
    enc = Encoder(samples.shape[1], sample_rate, params, uv_per_code=uv_per_code,
                  noise_uv=noise_uv, external=detections is not None, positions_um=positions_um)
    data = enc.push(samples, detections) + enc.finish()
    return data, enc.stats
