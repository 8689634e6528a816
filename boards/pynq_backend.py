"""The ``pynq`` backend: the bus protocol over PYNQ's Overlay, MMIO and AXI DMA.

Runs on the PYNQ-Z2's ARM with the ``[board]`` extra (``pip install
bioloop[board]``); ``pynq`` is imported only when a :class:`PynqBus` is
created, so the rest of bioloop imports anywhere. Elsewhere it raises
:class:`BoardUnavailable`.

Transport, as wired by the block design of ``docs/board.md``:

- CSRs: ``pynq.MMIO`` at :data:`~bioloop.boards.pynq_z2.CSR_BASE` (GP0).
- Samples: AXI DMA MM2S, in blocks of whole frames, by default 50 ms of
  frames per transfer (1,000 frames at 20 kHz). The core counts N/2 beats
  per frame and TLAST is optional (DESIGN.md §3); the DMA raises TLAST on
  the last beat of each transfer, which is a frame's last beat, so the core
  takes it as a consistent frame end. One transfer per frame (20,000 a
  second at 20 kHz) would be far more than a Cortex-A9 can issue from Python.
- AER words: AXI DMA S2MM into one ``allocate``d uint64 buffer. A receive
  completes at the core's TLAST (every ``aer_block_words`` words); the
  bytes written are read from the DMA's S2MM_LENGTH register (PG021).

Timeouts raise :class:`~bioloop.host.bus.BusTimeout` and leave the DMA
armed: the next call keeps waiting for the same transfer, so no word is
lost and the session can continue. The DMA sets its Idle bit only when a
transfer completes (PG021), so nothing waits for it before the first
transfer, as pynq's own channel does. An S2MM error (an AER block longer
than the buffer) raises :class:`~bioloop.host.bus.BusError`.

Tested against :mod:`bioloop.boards.pynq_standin` (the same pynq API, the
DMA's registers, the Core model behind them) and a recording fake.
"""

from __future__ import annotations

import time

import numpy as np

from bioloop.host.bus import BusError, BusTimeout

from .pynq_z2 import CORE_NAME, CSR_BASE, DMA_NAME, S2MM_LENGTH, csr_span

__all__ = ["BoardUnavailable", "PynqBus", "MAX_TRANSFER_BYTES"]

#: Longest AXI DMA transfer: the block design's 26-bit buffer length register (PG021).
MAX_TRANSFER_BYTES = (1 << 26) - 1


class BoardUnavailable(RuntimeError):
    """pynq cannot be imported here: the ``pynq`` backend runs only on the board."""


def _import_pynq():
    try:
        import pynq
    except ImportError as exc:
        raise BoardUnavailable(
            "the 'pynq' backend needs the pynq package, which runs only on a PYNQ board: "
            "install bioloop[board] on the PYNQ-Z2 image, or use the 'model' or 'verilator' "
            f"backend on this machine ({exc})") from None
    return pynq


def _wait_idle(channel, timeout_s: float, what: str, poll_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not channel.idle:
        if time.monotonic() >= deadline:
            raise BusTimeout(f"{what} did not complete within {timeout_s} s; the DMA stays "
                             "armed and the next call continues waiting for it")
        if poll_s:
            time.sleep(poll_s)


class PynqBus:
    """The bus protocol (:class:`bioloop.host.bus.Bus`) on a PYNQ-Z2.

    Parameters
    ----------
    bitfile : str
        Overlay bitstream (with its ``.hwh`` beside it).
    N, K, F : int
        Parameters the bitstream was built with (sizes the CSR window).
    frames_per_transfer : int, optional
        Frames per MM2S transfer; default ``transfer_s * sample_rate_hz``
        (see the module docstring). A transfer never exceeds the AXI DMA's
        26-bit length register (``MAX_TRANSFER_BYTES``).
    transfer_s, sample_rate_hz : float
        Duration of sample data per transfer (default 0.05 s) at the
        recording's sample rate (default 20 kHz).
    max_words : int
        Capacity of the S2MM buffer in AER words; at least the core's
        ``aer_block_words``.
    send_timeout_s : float
        How long a sample transfer may take before :class:`BusTimeout`.
    overlay : pynq.Overlay, optional
        An overlay already loaded (then ``bitfile`` is not loaded again).
    """

    def __init__(self, bitfile: str | None = None, *, N: int = 64, K: int = 64, F: int = 16,
                 frames_per_transfer: int | None = None, transfer_s: float = 0.05,
                 sample_rate_hz: float = 20_000.0, max_words: int = 1 << 16,
                 send_timeout_s: float = 1.0, dma_name: str = DMA_NAME, overlay=None,
                 poll_s: float = 0.0):
        pynq = _import_pynq()
        if overlay is None and bitfile is None:
            raise ValueError("give the overlay's bitfile (or an already loaded overlay)")
        for name, value in (("transfer_s", transfer_s), ("sample_rate_hz", sample_rate_hz)):
            if not isinstance(value, (int, float)) or not value > 0 or value == float("inf"):
                raise ValueError(f"{name} must be a positive number, not {value!r}")
        if frames_per_transfer is None:
            frames_per_transfer = max(1, round(transfer_s * sample_rate_hz))
        for name, value in (("frames_per_transfer", frames_per_transfer), ("max_words", max_words)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, not {value!r}")
        self.span = csr_span(N, K, F)
        self.overlay = overlay if overlay is not None else pynq.Overlay(str(bitfile))
        # The block design's address, where the overlay describes it (docs/board.md: 0x4000_0000).
        core = getattr(self.overlay, "ip_dict", {}).get(CORE_NAME, {})
        self.csr_base = int(core.get("phys_addr", CSR_BASE))
        self.span = max(self.span, int(core.get("addr_range", 0)))
        self.mmio = pynq.MMIO(self.csr_base, self.span)
        try:
            self.dma = getattr(self.overlay, dma_name)
        except AttributeError:
            raise BusError(f"the overlay has no DMA named {dma_name!r}") from None
        self._allocate = pynq.allocate
        self.frames_per_transfer = frames_per_transfer
        self.send_timeout_s = send_timeout_s
        self.poll_s = poll_s
        self._send_buf = None
        self._sent_before = False
        self._recv_buf = pynq.allocate(shape=(max_words,), dtype=np.uint64)
        self._recv_armed = False
        self._leftover = np.zeros(0, np.uint64)

    # -- CSRs -----------------------------------------------------------------------------

    def _check(self, addr: int) -> int:
        if not isinstance(addr, (int, np.integer)) or addr % 4 or not 0 <= addr < self.span:
            raise ValueError(f"CSR offset {addr!r} is not a word inside the {self.span}-byte map")
        return int(addr)

    def read32(self, addr: int) -> int:
        return int(self.mmio.read(self._check(addr))) & 0xFFFF_FFFF

    def write32(self, addr: int, value: int) -> None:
        if not 0 <= int(value) <= 0xFFFF_FFFF:
            raise ValueError(f"CSR value {value!r} is not a 32-bit word")
        self.mmio.write(self._check(addr), int(value))

    # -- streams --------------------------------------------------------------------------

    def send_samples(self, beats: np.ndarray) -> None:
        beats = np.asarray(beats)
        if beats.dtype != np.uint32 or beats.ndim != 2:
            raise TypeError(f"sample beats must be uint32 of shape (frames, N/2), not "
                            f"{beats.dtype} {beats.shape}")
        frames, per_frame = beats.shape
        if frames > self.frames_per_transfer and (per_frame * 4 * self.frames_per_transfer) % 8:
            # The block design's DMA reads 64-bit words without realignment: every transfer
            # after the first would start off an 8-byte boundary (pynq refuses it).
            raise ValueError(f"{self.frames_per_transfer} frame(s) of {per_frame * 4} bytes per transfer "
                             "leave the next transfer off an 8-byte boundary; use an even "
                             "frames_per_transfer (or N a multiple of 4)")
        channel = self.dma.sendchannel
        # Never touch (or free) a buffer the DMA may still be reading. Idle is set only by a
        # completed transfer (PG021), so before the first one there is nothing to wait for.
        if self._sent_before:
            _wait_idle(channel, self.send_timeout_s, "the previous sample transfer", self.poll_s)
        if self._send_buf is None or self._send_buf.shape[0] < frames or \
                self._send_buf.shape[1] != per_frame:
            if self._send_buf is not None:
                self._send_buf.freebuffer()
            self._send_buf = self._allocate(shape=(frames, per_frame), dtype=np.uint32)
        buf = self._send_buf
        buf[:frames] = beats
        row_bytes = per_frame * 4
        per_transfer = max(1, min(self.frames_per_transfer, MAX_TRANSFER_BYTES // row_bytes))
        if per_transfer < self.frames_per_transfer and per_transfer > 1 and (per_transfer * row_bytes) % 8:
            per_transfer -= 1          # keep later transfers 8-byte aligned (checked above)
        first = 0
        try:
            while first < frames:
                n = min(per_transfer, frames - first)
                if first:
                    _wait_idle(channel, self.send_timeout_s, "a sample transfer", self.poll_s)
                channel.transfer(buf, start=first * row_bytes, nbytes=n * row_bytes)
                self._sent_before = True
                first += n
            _wait_idle(channel, self.send_timeout_s, "the last sample transfer", self.poll_s)
        except BusTimeout as exc:
            # Say exactly how much the core has been given, so the caller can resume.
            handed = first
            err = BusTimeout(f"{exc} ({handed} of {frames} frames were handed to the DMA)")
            err.frames_sent = handed
            raise err from None

    def receive_words(self, max_words: int, timeout_s: float) -> np.ndarray:
        if self._leftover.size:
            out, self._leftover = self._leftover[:max_words], self._leftover[max_words:]
            return out
        channel = self.dma.recvchannel
        if not self._recv_armed:
            channel.transfer(self._recv_buf)
            self._recv_armed = True
        _wait_idle(channel, timeout_s, "the AER receive", self.poll_s)
        self._recv_armed = False
        if channel.error:
            raise BusError("the DMA's S2MM channel reports an error (an AER block longer than the "
                           f"{self._recv_buf.nbytes}-byte buffer? keep aer_block_words <= max_words)")
        nbytes = int(self.dma.mmio.read(S2MM_LENGTH))
        if nbytes % 8 or nbytes > self._recv_buf.nbytes:
            raise BusError(f"the DMA reports {nbytes} bytes received, not whole AER words "
                           f"within the {self._recv_buf.nbytes}-byte buffer")
        self._recv_buf.invalidate()
        words = np.array(self._recv_buf[:nbytes // 8], dtype=np.uint64)   # the buffer is re-armed
        out, self._leftover = words[:max_words], words[max_words:]
        return out

    def close(self) -> None:
        """Free the DMA buffers."""
        for buf in (self._send_buf, self._recv_buf):
            if buf is not None:
                buf.freebuffer()
        self._send_buf = self._recv_buf = None
