"""A stand-in for the pynq objects bioloop uses, whose programmable logic is the Core model.

pynq drives real hardware only on a PYNQ board. This module offers the same
objects :class:`~bioloop.boards.pynq_backend.PynqBus` touches, so the real
board code path runs anywhere, against the real core behaviour:

- :class:`Overlay` loads an overlay directory's bitstream (here the
  manifest beside it says which Core to model), exposes ``ip_dict`` and the
  AXI DMA as ``overlay.axi_dma_0``;
- :class:`MMIO` maps physical addresses: the core's AXI4-Lite slave at
  ``CSR_BASE`` (each access is a CSR access of the Core model, with the
  edge timing of :class:`~bioloop.host.backends.BusTiming`) and the DMA's
  register file;
- :func:`allocate` returns contiguous buffers with a physical address,
  ``flush``/``invalidate``/``freebuffer``, which the DMA reads and writes by
  that address;
- the AXI DMA (PG021, simple mode) is modelled by its registers: writing
  ``MM2S_LENGTH`` streams ``length`` bytes from ``MM2S_SA`` into the core's
  sample port with TLAST on the transfer's last beat (as the real DMA does:
  it cannot mark frames); writing ``S2MM_LENGTH`` arms a receive into
  ``S2MM_DA`` that completes at the core's TLAST, after which
  ``S2MM_LENGTH`` holds the bytes written; ``DMASR`` reports Idle (bit 1),
  IOC (bit 12), and DMAIntErr (bit 4, with Halted) when a packet overruns
  the armed length. A transfer the core does not take (``enable`` is 0)
  stays busy; each status poll lets the core try again.
- channels (``overlay.axi_dma_0.sendchannel``/``recvchannel``) offer
  pynq's ``transfer(array, start, nbytes)``, ``idle``, ``running``,
  ``error`` and ``wait()``, implemented through those registers only.

What is simplified, and why it does not change the AER words: the core
advances only while the host touches the bus (a CSR access, a DMA transfer
or status poll), as in the ``model`` backend, not in wall-clock time; the
S2MM side accepts every word the core emits (an armed DMA that keeps up,
words queued while no receive is armed), where the real AXI DMA holds
TREADY low between receives and the core's FIFOs absorb it.

Use :func:`installed` to put it in ``sys.modules["pynq"]``::

    with pynq_standin.installed():
        bus = PynqBus(overlay_dir / "bioloop.bit")
"""

from __future__ import annotations

import contextlib
import json
import sys
import types
from pathlib import Path

import numpy as np

from .pynq_z2 import CORE_NAME, CORE_VLNV, CSR_BASE, DMA_BASE, DMA_NAME, S2MM_LENGTH, csr_span

__all__ = ["Device", "Overlay", "MMIO", "allocate", "installed", "module",
           "MM2S_DMACR", "MM2S_DMASR", "MM2S_SA", "MM2S_LENGTH", "S2MM_DMACR", "S2MM_DMASR",
           "S2MM_DA"]

# AXI DMA register offsets (PG021, "Register Space", simple mode).
MM2S_DMACR, MM2S_DMASR, MM2S_SA, MM2S_LENGTH = 0x00, 0x04, 0x18, 0x28
S2MM_DMACR, S2MM_DMASR, S2MM_DA = 0x30, 0x34, 0x48
_HALTED, _IDLE, _INT_ERR, _IOC = 1 << 0, 1 << 1, 1 << 4, 1 << 12
# The block design's DMA (docs/board.md): 26-bit length register, 64-bit memory side, no DRE,
# so a transfer starts on an 8-byte boundary (pynq refuses others, as here).
_MAX_LENGTH = (1 << 26) - 1
_ALIGN = 8
_DMA_SPAN = 0x1_0000


class Device:
    """The stand-in board: physical memory (allocated buffers) and the loaded programmable logic."""

    current: "Device | None" = None

    def __init__(self):
        self.buffers: dict[int, np.ndarray] = {}
        self._next = 0x1600_0000
        self.pl: _Logic | None = None

    @classmethod
    def get(cls) -> "Device":
        if cls.current is None:
            cls.current = Device()
        return cls.current

    def memory(self, phys: int, nbytes: int) -> np.ndarray:
        """The bytes at physical address ``phys`` (a view into the buffer that holds them)."""
        for base, buf in self.buffers.items():
            if base <= phys and phys + nbytes <= base + buf.nbytes:
                return buf.view(np.uint8).reshape(-1)[phys - base:phys - base + nbytes]
        raise RuntimeError(f"DMA access to {nbytes} bytes at {phys:#x}, outside every allocated "
                           "buffer (on the board: a bus error or memory corruption)")


class _Logic:
    """The programmable logic: the Core model behind its AXI4-Lite slave and the AXI DMA."""

    def __init__(self, manifest: dict):
        from bioloop.host.backends import ModelBus
        self.n_channels = int(manifest.get("N", 64))
        self.n_lanes = int(manifest.get("K", 64))
        self.fanout = int(manifest.get("F", 16))
        params = dict(manifest.get("standin", {}).get("core", {}))
        self.bus = ModelBus(self.n_channels, self.n_lanes, self.fanout, **params)
        self.span = csr_span(self.n_channels, self.n_lanes, self.fanout)
        # After reset a channel is halted and not idle; PG021 sets Idle only when a transfer
        # completes, which is why pynq lets the first transfer start without it.
        self.regs = {MM2S_DMACR: 0, MM2S_DMASR: _HALTED, S2MM_DMACR: 0, S2MM_DMASR: _HALTED,
                     S2MM_LENGTH: 0}
        self._busy = {MM2S_DMASR: False, S2MM_DMASR: False}
        self._mm2s: tuple[np.ndarray, int] | None = None    # (beats, taken) of a running send
        self._s2mm: tuple[int, int] | None = None           # (address, capacity) of an armed receive
        self._queue: list[tuple[int, bool]] = []             # words the core emitted, with TLAST
        # Faults to inject, for tests of the error paths: {"version": value the version register
        # reads, "stall_after_frames": frames after which the core takes no more samples}.
        self.faults = {k: v for k, v in manifest.get("standin", {}).items() if k != "core"}
        self._beats_in = 0
        #: Transfers started on each channel (a measurement the board's DMA does not offer).
        self.transfers = {"mm2s": 0, "s2mm": 0}

    # -- AXI4-Lite slave of the core ----------------------------------------------------------

    def csr_read(self, offset: int) -> int:
        value = self.bus.read32(offset)
        if "version" in self.faults and offset == self.bus.core.regmap.register("version").offset:
            value = int(self.faults["version"])
        self._advance()
        return value

    def csr_write(self, offset: int, value: int) -> None:
        self.bus.write32(offset, value)
        self._advance()

    # -- DMA registers ------------------------------------------------------------------------

    def dma_read(self, offset: int) -> int:
        if offset in (MM2S_DMASR, S2MM_DMASR):
            self._advance()
        return self.regs.get(offset, 0)

    def dma_write(self, offset: int, value: int) -> None:
        value &= 0xFFFF_FFFF
        if offset in (MM2S_DMASR, S2MM_DMASR):                 # write 1 to clear IOC/errors
            self.regs[offset] &= ~(value & 0x7000)
            return
        if offset in (MM2S_DMACR, S2MM_DMACR):
            sr = MM2S_DMASR if offset == MM2S_DMACR else S2MM_DMASR
            if value & 0x4:                                    # Reset
                self.regs[sr] = _HALTED
                self._busy[sr] = False
                self.regs[offset] = 0
                if offset == MM2S_DMACR:
                    self._mm2s = None
                else:
                    self._s2mm = None
                return
            self.regs[offset] = value
            if value & 1:                                      # RS: run
                self.regs[sr] &= ~_HALTED
            else:
                self.regs[sr] |= _HALTED
            return
        self.regs[offset] = value
        if offset == MM2S_LENGTH:
            self._start_mm2s(value)
        elif offset == S2MM_LENGTH:
            self._start_s2mm(value)

    def _running(self, cr: int, sr: int) -> bool:
        return bool(self.regs[cr] & 1) and not self.regs[sr] & _HALTED

    def _start_mm2s(self, nbytes: int) -> None:
        if not self._running(MM2S_DMACR, MM2S_DMASR) or self._busy[MM2S_DMASR]:
            self.regs[MM2S_DMASR] |= _INT_ERR | _HALTED
            return
        if nbytes % 4:
            raise RuntimeError(f"MM2S length {nbytes} is not whole 32-bit beats")
        data = Device.get().memory(self.regs[MM2S_SA], nbytes)
        beats = np.frombuffer(data.tobytes(), dtype="<u4").astype(np.uint32)
        self.regs[MM2S_DMASR] &= ~(_IDLE | _IOC)
        self._busy[MM2S_DMASR] = True
        self._mm2s = (beats, 0)
        self.transfers["mm2s"] += 1
        self._advance()

    def _start_s2mm(self, nbytes: int) -> None:
        if not self._running(S2MM_DMACR, S2MM_DMASR) or self._busy[S2MM_DMASR]:
            self.regs[S2MM_DMASR] |= _INT_ERR | _HALTED
            return
        self.regs[S2MM_DMASR] &= ~(_IDLE | _IOC)
        self._busy[S2MM_DMASR] = True
        self._s2mm = (self.regs[S2MM_DA], nbytes)
        self.transfers["s2mm"] += 1
        self._advance()

    # -- the hardware moving ------------------------------------------------------------------

    def _advance(self) -> None:
        """Let the core take what the MM2S channel offers and the S2MM channel receive it."""
        if self._mm2s is not None:
            beats, taken = self._mm2s
            taken += self._stream(beats[taken:])
            if taken == len(beats):
                self._mm2s = None
                self._busy[MM2S_DMASR] = False
                self.regs[MM2S_DMASR] |= _IDLE | _IOC
            else:
                self._mm2s = (beats, taken)
        self.bus._collect()
        words, lasts = self.bus._queue.take_all()
        self._queue.extend(zip(words, lasts, strict=True))
        if self._s2mm is not None:
            self._receive()

    def _stream(self, beats: np.ndarray) -> int:
        """Offer ``beats`` with TLAST on the last one (the DMA's end of transfer); returns beats taken."""
        if not len(beats):
            return 0
        bus, core = self.bus, self.bus.core
        nb = self.n_channels // 2
        lasts = np.zeros(len(beats), bool)
        lasts[-1] = True
        stall = self.faults.get("stall_after_frames")
        if stall is not None:                  # the core takes no beat past the stall, mid-transfer too
            room = max(0, int(stall) * nb - self._beats_in)
            beats, lasts = beats[:room], lasts[:room]
            if not len(beats):
                return 0
        # The core counts N/2 beats per frame (TLAST optional, DESIGN.md §3): a transfer of whole
        # frames, TLAST on its last beat, may go through the model's bulk path as frames.
        # (run_beats itself falls back to edge by edge when the core is inside a frame).
        frames = beats.view(np.int16).reshape(-1, self.n_channels) if len(beats) % nb == 0 else None
        core.frame_leds = bus._leds
        try:
            taken = core.run_beats(beats, lasts, timeout=bus.timing.send_timeout_edges, frames=frames)
        finally:
            core.frame_leds = None
        if taken == len(beats) and lasts[-1]:
            core.idle(bus.timing.drain_edges)
        self._beats_in += taken
        return taken

    def _receive(self) -> None:
        addr, capacity = self._s2mm
        n = None
        for i, (_, last) in enumerate(self._queue):
            if last:
                n = i + 1
                break
        cap_words = capacity // 8
        if n is None and len(self._queue) < cap_words:
            return                                   # the packet is still coming
        overrun = n is None or n > cap_words
        n = min(n or cap_words, cap_words)
        words = np.array([w for w, _ in self._queue[:n]], dtype="<u8")
        del self._queue[:n]
        Device.get().memory(addr, words.nbytes)[:] = words.view(np.uint8)
        self.regs[S2MM_LENGTH] = words.nbytes
        self._s2mm = None
        self._busy[S2MM_DMASR] = False
        self.regs[S2MM_DMASR] |= _IDLE | _IOC
        if overrun:                                  # PG021: packet longer than the buffer length
            self.regs[S2MM_DMASR] |= _INT_ERR | _HALTED
            self.regs[S2MM_DMACR] &= ~1

    def leds(self) -> np.ndarray:
        """The per-frame LED vectors (not visible over the bus on the board; for measurements)."""
        return self.bus.leds()


# -- the pynq API ----------------------------------------------------------------------------

class PynqBuffer(np.ndarray):
    """What ``pynq.allocate`` returns: an ndarray in physically contiguous memory."""

    physical_address: int

    @property
    def device_address(self) -> int:
        return self.physical_address

    def flush(self) -> None:
        """Write the CPU cache back (the stand-in's memory is coherent)."""

    def invalidate(self) -> None:
        """Drop the CPU cache (the stand-in's memory is coherent)."""

    def freebuffer(self) -> None:
        Device.get().buffers.pop(getattr(self, "physical_address", None), None)

    close = freebuffer

    def __array_finalize__(self, obj):
        if obj is not None and not hasattr(self, "physical_address"):
            base = getattr(obj, "physical_address", None)
            if base is not None:
                self.physical_address = base


def allocate(shape, dtype="u4", target=None, **kwargs) -> PynqBuffer:
    """A zeroed buffer with a physical address the DMA can use (``pynq.allocate``)."""
    dev = Device.get()
    buf = np.zeros(shape, dtype=dtype).view(PynqBuffer)
    buf.physical_address = dev._next
    dev.buffers[dev._next] = buf
    dev._next += (buf.nbytes + 0xFFF) & ~0xFFF or 0x1000
    return buf


class MMIO:
    """``pynq.MMIO(base_addr, length)``: 32-bit reads and writes at physical addresses."""

    def __init__(self, base_addr: int, length: int = 4, **kwargs):
        self.base_addr, self.length = int(base_addr), int(length)

    def _target(self, offset: int):
        pl = Device.get().pl
        if pl is None:
            raise RuntimeError("no overlay is loaded: the access would hang the AXI bus")
        if offset % 4 or not 0 <= offset < self.length:
            raise ValueError(f"MMIO offset {offset:#x} outside the {self.length}-byte window")
        phys = self.base_addr + offset
        if CSR_BASE <= phys < CSR_BASE + pl.span:
            return pl.csr_read, pl.csr_write, phys - CSR_BASE
        if DMA_BASE <= phys < DMA_BASE + _DMA_SPAN:
            return pl.dma_read, pl.dma_write, phys - DMA_BASE
        raise RuntimeError(f"nothing answers at {phys:#x} (on the board: the AXI interconnect "
                           "returns DECERR, a bus fault in Linux)")

    def read(self, offset: int = 0, length: int = 4, **kwargs) -> int:
        read, _, off = self._target(offset)
        return int(read(off))

    def write(self, offset: int, data) -> None:
        _, write, off = self._target(offset)
        write(off, int(data))


class _Channel:
    """One direction of the AXI DMA in simple mode, driven through its registers.

    The same API and rules as pynq 4.0's ``_SDMAChannel``: ``transfer`` needs a
    running channel that is idle, except for the first transfer after
    ``start`` (Idle is set only by a completed transfer); MM2S flushes the
    buffer before, ``wait`` invalidates an S2MM buffer after and sets
    ``transferred`` from the length register.
    """

    def __init__(self, mmio: MMIO, offset: int, address_reg: int, length_reg: int, tx: bool):
        self._mmio, self._offset = mmio, offset
        self._address_reg, self._length_reg = address_reg, length_reg
        self._flush_before = tx
        self._active_buffer = None
        self.transferred = 0
        self.start()

    @property
    def _status(self) -> int:
        return self._mmio.read(self._offset + 4)

    @property
    def running(self) -> bool:
        return not self._status & _HALTED

    @property
    def idle(self) -> bool:
        return bool(self._status & _IDLE)

    @property
    def error(self) -> bool:
        return bool(self._status & 0x70)

    def start(self) -> None:
        self._mmio.write(self._offset, 0x1001)        # RS, IOC interrupt enable
        self._first_transfer = True

    def stop(self) -> None:
        self._mmio.write(self._offset, 0)

    def transfer(self, array, start: int = 0, nbytes: int = 0) -> None:
        if not self.running:
            raise RuntimeError("DMA channel not started")
        if not self.idle and not self._first_transfer:
            raise RuntimeError("DMA channel not idle")
        nbytes = nbytes or array.nbytes - start
        if start < 0 or nbytes <= 0 or start + nbytes > array.nbytes:
            raise ValueError(f"transfer of {nbytes} bytes from byte {start} of a {array.nbytes}-byte buffer")
        if nbytes > _MAX_LENGTH:
            raise ValueError(f"Transfer size is {nbytes} bytes, which exceeds the maximum DMA buffer "
                             f"size {_MAX_LENGTH}.")
        if (array.physical_address + start) % _ALIGN:
            raise RuntimeError("DMA does not support unaligned transfers; Starting address must be "
                               f"aligned to {_ALIGN} bytes.")
        if self._flush_before:
            array.flush()
        self.transferred = 0
        self._mmio.write(self._address_reg, array.physical_address + start)
        self._mmio.write(self._length_reg, nbytes)
        self._active_buffer = array
        self._first_transfer = False

    def wait(self) -> None:
        """Block until the transfer completes (pynq has no timeout here either)."""
        while not self.idle:
            if self.error:
                raise RuntimeError("DMA channel reports an error")
        if not self._flush_before and self._active_buffer is not None:
            self._active_buffer.invalidate()
        self.transferred = self._mmio.read(self._length_reg)


class DMA:
    """The overlay's ``axi_dma_0``: its register file and both channels."""

    def __init__(self, description: dict):
        self.description = description
        self.mmio = MMIO(description["phys_addr"], description["addr_range"])
        self.sendchannel = _Channel(self.mmio, MM2S_DMACR, MM2S_SA, MM2S_LENGTH, tx=True)
        self.recvchannel = _Channel(self.mmio, S2MM_DMACR, S2MM_DA, S2MM_LENGTH, tx=False)


class Overlay:
    """``pynq.Overlay(bitfile)``: loads the bitstream and binds the IP by instance name.

    The stand-in's "bitstream" is modelled from the overlay manifest beside
    it (``bioloop.json``: N, K, F; an optional ``standin`` entry adds Core
    parameters under ``core`` and faults to inject); the ``.hwh`` must sit
    beside the ``.bit`` as pynq requires.
    """

    def __init__(self, bitfile, download: bool = True, **kwargs):
        bitfile = Path(bitfile)
        if not bitfile.is_file():
            raise IOError(f"Bitstream file {bitfile} does not exist.")
        if not bitfile.with_suffix(".hwh").is_file():
            raise ValueError(f"Cannot find HWH file {bitfile.with_suffix('.hwh')}.")
        manifest_path = bitfile.with_suffix(".json")
        manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
        self.bitfile_name = str(bitfile)
        logic = _Logic(manifest)
        self.ip_dict = {
            CORE_NAME: {"phys_addr": CSR_BASE, "addr_range": logic.span, "type": CORE_VLNV},
            DMA_NAME: {"phys_addr": DMA_BASE, "addr_range": _DMA_SPAN,
                       "type": "xilinx.com:ip:axi_dma:7.1"},
        }
        if download:
            self.download(logic)

    def download(self, logic: _Logic | None = None) -> None:
        Device.get().pl = logic
        setattr(self, DMA_NAME, DMA(self.ip_dict[DMA_NAME]))

    @property
    def logic(self) -> _Logic:
        """The stand-in's programmable logic (for measurements the board cannot make)."""
        return Device.get().pl

    def is_loaded(self) -> bool:
        return Device.get().pl is not None


def module() -> types.ModuleType:
    """A fresh ``pynq`` stand-in module (and a fresh stand-in board)."""
    Device.current = Device()
    mod = types.ModuleType("pynq")
    mod.__doc__ = "bioloop's pynq stand-in (bioloop.boards.pynq_standin)"
    mod.__version__ = "4.0.0-standin"
    mod.BIOLOOP_STANDIN = True
    mod.Overlay, mod.MMIO, mod.allocate = Overlay, MMIO, allocate
    mod.PynqBuffer = PynqBuffer
    return mod


@contextlib.contextmanager
def installed():
    """Put the stand-in in ``sys.modules["pynq"]`` for the duration of the block."""
    saved = sys.modules.get("pynq")
    mod = module()
    sys.modules["pynq"] = mod
    try:
        yield mod
    finally:
        if saved is None:
            sys.modules.pop("pynq", None)
        else:
            sys.modules["pynq"] = saved
        Device.current = None
