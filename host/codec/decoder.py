"""Decoder: container bytes in, events and a float32 µV array out.

:func:`read_events` parses and validates a whole stream into the event list
(memory proportional to the stream). :func:`decode` also renders the dense
array. :class:`Decoder` does the same block by block from bytes fed in any
pieces, keeping only the few blocks whose snippets can still reach the
block being rendered.

Rendering: every sample is zero (or, with ``fill="noise"``, Gaussian noise of
the channel's recorded sigma, seeded per block) except inside event
snippets ``[t - pre, t + post)``, which carry the dequantized snippet. Where
two snippets of a channel overlap, the later event's samples win.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, NamedTuple

import numpy as np

from bioloop.host.jit import ENABLED as _JIT, njit

from .entropy import PAYLOAD_ERRORS, decode_payload
from .events import dequantize_snippets
from .format import (DETECTOR_THRESHOLD, BlockRecord, CodecError, CodecTruncated, EndRecord, StreamHeader,
                     read_header, read_record)

__all__ = ["Events", "Decoded", "Decoder", "read_events", "decode"]


class Events(NamedTuple):
    """Decoded events, in stream order (block by block, channel-major inside a block).

    Attributes
    ----------
    times : numpy.ndarray
        int64 sample index of each event (the first sample beyond threshold).
    channels : numpy.ndarray
        int64 channel of each event.
    snippets_uv : numpy.ndarray
        float32 ``(n_events, pre + post)`` reconstructed snippets in µV.
    """
    times: np.ndarray
    channels: np.ndarray
    snippets_uv: np.ndarray


@dataclass
class Decoded:
    """A decoded stream: header, event list, dense samples ``(n_samples, n_channels)`` in µV."""
    header: StreamHeader
    events: Events
    samples_uv: np.ndarray


@njit(cache=True, nogil=True)
def _render_kernel(out, t0, times, channels, values, pre):
    n_t = out.shape[0]
    L = values.shape[1]
    for e in range(times.size):
        start = times[e] - pre - t0
        c = channels[e]
        for j in range(L):
            r = start + j
            if 0 <= r < n_t:
                out[r, c] = values[e, j]


def _render_numpy(out, t0, times, channels, values, pre):
    """The numpy path of :func:`_render_kernel` (later events overwrite earlier ones, as there)."""
    n_t, L = out.shape[0], values.shape[1]
    rows = (np.asarray(times, np.int64) - pre - t0)[:, None] + np.arange(L)[None, :]
    cols = np.broadcast_to(np.asarray(channels, np.int64)[:, None], rows.shape)
    ok = (rows >= 0) & (rows < n_t)
    out[rows[ok], cols[ok]] = values[ok]


_render = _render_kernel if _JIT else _render_numpy


def _background(header: StreamHeader, block: int, n: int, fill: str, seed: int) -> np.ndarray:
    if fill == "zeros":
        return np.zeros((n, header.n_channels), np.float32)
    rng = np.random.default_rng([seed, block])
    return rng.standard_normal((n, header.n_channels), dtype=np.float32) * header.noise_uv[None, :]


class _Parser:
    """Validates records one by one and turns data blocks into events."""

    def __init__(self, header: StreamHeader):
        self.h = header
        self.index = 0
        self.n_samples = 0
        self.n_events = 0
        self.short_seen = False
        self.last = np.full(header.n_channels, -(1 << 40), np.int64)
        self.ended = False

    def block(self, rec: BlockRecord) -> Events:
        h, p = self.h, self.h.params
        where = f"block {rec.index}"
        if self.short_seen:
            raise CodecError(where, "follows a block shorter than block_size; only the last block may be short")
        res = decode_payload(rec.payload, h.n_channels, rec.n_samples, rec.n_events, p.snippet_length, p.qmax)
        if isinstance(res, int):
            raise CodecError(where, f"payload invalid: {PAYLOAD_ERRORS[res]}")
        chans, rel, scales, q = res
        times = rel + self.index * p.block_size
        if h.detector == DETECTOR_THRESHOLD and times.size:
            # per channel, successive events are >= refractory apart, also across blocks
            first = np.ones(times.size, bool)
            first[1:] = chans[1:] != chans[:-1]
            prev = np.where(first, self.last[chans], np.concatenate(([0], times[:-1])))
            bad = np.flatnonzero(times - prev < p.refractory)
            if bad.size:
                e = bad[0]
                raise CodecError(where, f"events on channel {chans[e]} at samples {prev[e]} and {times[e]} "
                                        f"are closer than the refractory period {p.refractory}")
            last_idx = np.flatnonzero(np.append(first[1:], True))
            self.last[chans[last_idx]] = times[last_idx]
        self.short_seen = rec.n_samples < p.block_size
        self.index += 1
        self.n_samples += rec.n_samples
        self.n_events += rec.n_events
        snips = dequantize_snippets(q, chans, scales, h.noise_uv, p.qmax)
        return Events(times, chans, snips)

    def end(self, rec: EndRecord):
        got = (self.index, self.n_samples, self.n_events)
        if (rec.n_blocks, rec.n_samples, rec.n_events) != got:
            raise CodecError("end block", f"totals (blocks, samples, events) {(rec.n_blocks, rec.n_samples, rec.n_events)}"
                                          f" do not match the stream's {got}")
        if self.index == 0:
            raise CodecError("end block", "stream has no data block")
        self.ended = True


def _concat(evs: list[Events], L: int) -> Events:
    if not evs:
        return Events(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, L), np.float32))
    return Events(np.concatenate([e.times for e in evs]), np.concatenate([e.channels for e in evs]),
                  np.concatenate([e.snippets_uv for e in evs]))


def _parse_all(data) -> tuple[StreamHeader, list[Events], list[int]]:
    header, off = read_header(data)
    parser = _Parser(header)
    evs, sizes = [], []
    while True:
        rec, off = read_record(data, off, header, parser.index)
        if isinstance(rec, EndRecord):
            parser.end(rec)
            break
        evs.append(parser.block(rec))
        sizes.append(rec.n_samples)
    if off != len(data):
        raise CodecError("stream", f"{len(data) - off} bytes after the end block")
    return header, evs, sizes


def read_events(data: bytes) -> tuple[StreamHeader, Events, int]:
    """Parse and validate a stream; return its header, events and total sample count.

    Raises
    ------
    CodecError
        Naming the header, block or end block that is invalid and why.
    """
    header, evs, sizes = _parse_all(data)
    return header, _concat(evs, header.params.snippet_length), int(sum(sizes))


def _check_fill(fill, seed) -> None:
    if fill not in ("zeros", "noise"):
        raise ValueError(f"fill must be 'zeros' or 'noise', not {fill!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int in 0..2**63-1, not {type(seed).__name__}")
    if not 0 <= seed < 2**63:
        raise ValueError(f"seed must be in 0..2**63-1, not {seed}")


def decode(data: bytes, fill: str = "zeros", seed: int = 0) -> Decoded:
    """Decode a whole stream.

    Parameters
    ----------
    data : bytes
        The container.
    fill : {"zeros", "noise"}
        What samples outside events hold: zeros, or seeded Gaussian noise of
        the channel's recorded sigma.
    seed : int
        Seed of the synthetic noise, 0..2**63-1.

    Returns
    -------
    Decoded
    """
    _check_fill(fill, seed)
    header, evs, sizes = _parse_all(data)   # validates everything before allocating the output
    events = _concat(evs, header.params.snippet_length)
    out = np.concatenate([_background(header, b, n, fill, seed) for b, n in enumerate(sizes)])
    _render(out, 0, events.times, events.channels, events.snippets_uv, header.params.pre)
    return Decoded(header, events, out)


class Decoder:
    """Incremental decoder: :meth:`feed` bytes in any pieces, get rendered blocks.

    Parameters
    ----------
    fill, seed
        As for :func:`decode`; the blocks joined equal ``decode(...).samples_uv``.
    max_buffer : int
        Largest number of bytes held while waiting for a record to complete;
        a longer record raises :class:`CodecError` (bounded memory).
    """

    def __init__(self, fill: str = "zeros", seed: int = 0, max_buffer: int = 1 << 28):
        _check_fill(fill, seed)
        self.fill, self.seed, self.max_buffer = fill, seed, max_buffer
        self.header: StreamHeader | None = None
        self._buf = bytearray()
        self._parser = None
        self._blocks: list[tuple[int, int, Events]] = []  # (index, n_samples, events), not yet dropped
        self._next_render = 0
        self._sizes: dict[int, int] = {}

    def feed(self, data: bytes) -> Iterator[tuple[int, np.ndarray, Events]]:
        """Add bytes; yield ``(first_sample, samples_uv, events_of_block)`` for each block now final."""
        self._buf += data
        while True:
            if self._parser is not None and self._parser.ended:
                if self._buf:
                    raise CodecError("stream", f"{len(self._buf)} bytes after the end block")
                return
            try:
                if self.header is None:
                    self.header, off = read_header(self._buf)
                    self._parser = _Parser(self.header)
                else:
                    rec, off = read_record(self._buf, 0, self.header, self._parser.index)
                    if isinstance(rec, EndRecord):
                        self._parser.end(rec)
                    else:
                        self._blocks.append((rec.index, rec.n_samples, self._parser.block(rec)))
            except CodecTruncated as e:
                if e.needed is not None and e.needed > self.max_buffer:
                    raise CodecError(e.where, f"record of {e.needed} bytes exceeds max_buffer="
                                              f"{self.max_buffer}: corrupt length or raise max_buffer") from None
                return   # wait for more bytes
            del self._buf[:off]
            yield from self._render_ready()

    def close(self) -> None:
        """Check that the stream ended properly."""
        if self._parser is None or not self._parser.ended:
            where = "header" if self.header is None else "stream"
            raise CodecError(where, f"truncated after {0 if self._parser is None else self._parser.index} "
                                    "blocks: no end block")

    def _render_ready(self):
        p = self.header.params
        B = p.block_size
        while self._blocks and self._next_render <= self._blocks[-1][0]:
            b = self._next_render
            ended = self._parser.ended
            # snippets of events up to sample (b+1)*B + pre - 1 can reach block b
            need = ((b + 1) * B + p.pre - 1) // B
            if not ended and self._blocks[-1][0] < need:
                return
            n = next(ns for (i, ns, _) in self._blocks if i == b)
            out = _background(self.header, b, n, self.fill, self.seed)
            for _, _, ev in self._blocks:
                _render(out, b * B, ev.times, ev.channels, ev.snippets_uv, p.pre)
            ev_b = next(ev for (i, _, ev) in self._blocks if i == b)
            yield b * B, out, ev_b
            self._next_render += 1
            # a snippet of block j ends before sample (j+1)*B + post - 1, so older blocks cannot reach b+1
            oldest = (b * B - p.post + 1) // B
            self._blocks = [blk for blk in self._blocks if blk[0] >= oldest]
