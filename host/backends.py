"""Bus backends that simulate ``Core``: the timing contract they share and the ``model`` backend.

:class:`ModelBus` implements :class:`bioloop.host.bus.Bus` on the cycle-exact
transaction model :class:`bioloop.host.models.core.Core`;
:class:`bioloop.sim.verilator_bus.VerilatorBus` implements it on the Verilated
RTL compiled in-process, :class:`bioloop.sim.cocotb_bus.CocotbBus` on the
Verilated RTL under cocotb. All follow one :class:`BusTiming`, so for the same
calls they put the same beats on the same clock edges, and the AER word streams
and LED vectors they return are identical bit for bit
(``tests/gateware/test_core.py``, ``tests/gateware/test_verilator_bus.py``).

The timing contract, in clock edges of the core (``FCLK_HZ``):

- after reset, the bus waits ``start_edges`` idle edges (the Detector's
  state sweep takes ``N/2``);
- every CSR access lasts exactly ``csr_edges`` edges; the CSR bank performs
  a write at edge ``write_edge`` of the access and samples a read at edge
  ``read_edge`` (what cocotbext-axi's AXI-Lite master takes on the RTL);
  the sample stream is idle meanwhile;
- ``send_samples`` offers one beat per edge, frames back to back, each beat
  held until accepted, then ``drain_edges`` idle edges; TLAST goes on the
  block's last beat only (``tlast="block"``, as the board's DMA transfers
  end) or on every frame's last beat (``tlast="frame"``): the core counts
  N/2 beats per frame either way, so the words and LEDs are the same; if
  no beat is taken for ``send_timeout_edges`` edges (``control.enable`` is 0), the rest of
  the block is dropped and :class:`~bioloop.host.bus.BusTimeout` says how
  many frames went in;
- the AER output is always ready (a DMA that keeps up);
- ``receive_words`` does not advance the clock: it hands over what the
  output produced so far. With ``dma_blocks=True`` it delivers only whole
  TLAST blocks, like the PYNQ AXI DMA, and raises ``BusTimeout`` when no
  block is complete (the words stay queued for the next call).

``leds()`` returns, for each frame whose TLAST beat went in since the last
call, the fraction of that frame's cycles (the edges at which its beats were
taken) in which each LED was lit: the light the culture sees during that
frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bioloop.host.regmap import SLVERR

from .bus import BusError, BusTimeout
from .models.core import Core

__all__ = ["BusTiming", "FrameLeds", "WordQueue", "SimulatedBus", "ModelBus", "check_beats", "check_tlast",
           "send_timeout"]


@dataclass(frozen=True)
class BusTiming:
    """Clock-edge timing shared by the simulated backends (see the module docstring)."""
    start_edges: int = 2080
    csr_edges: int = 16
    write_edge: int = 3
    read_edge: int = 2
    drain_edges: int = 96
    send_timeout_edges: int = 2000

    def __post_init__(self):
        for name in ("start_edges", "csr_edges", "write_edge", "read_edge", "drain_edges",
                     "send_timeout_edges"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"BusTiming.{name} must be a positive integer, not {value!r}")
        if not self.write_edge <= self.csr_edges or not self.read_edge <= self.csr_edges:
            raise ValueError("BusTiming: write_edge and read_edge must fall inside csr_edges")


def check_beats(beats, n_channels: int) -> np.ndarray:
    """``beats`` as a C-contiguous ``uint32`` array of shape (frames, N/2), or a ``TypeError``/``ValueError``."""
    a = np.asarray(beats)
    if a.dtype != np.uint32:
        raise TypeError(f"sample beats must be uint32 (two int16 per beat), not {a.dtype}")
    if a.ndim != 2 or a.shape[1] != n_channels // 2:
        raise ValueError(f"sample beats must have shape (frames, {n_channels // 2}), not {a.shape}")
    return np.ascontiguousarray(a)


def check_tlast(tlast) -> str:
    """``tlast`` of a simulated bus: ``"block"`` (TLAST at the end of each ``send_samples`` block) or
    ``"frame"`` (on every frame's last beat)."""
    if not isinstance(tlast, str):
        raise TypeError(f"tlast must be 'block' or 'frame', not {tlast!r}")
    if tlast not in ("block", "frame"):
        raise ValueError(f"tlast must be 'block' (TLAST at the end of each send) or 'frame' (on every "
                         f"frame's last beat), not {tlast!r}")
    return tlast


def check_address(addr, addr_width: int) -> int:
    if not isinstance(addr, (int, np.integer)) or isinstance(addr, bool):
        raise TypeError(f"CSR address must be an integer, not {addr!r}")
    if addr % 4 or not 0 <= addr < (1 << addr_width):
        raise ValueError(f"CSR address {addr:#x} is not a 32-bit word inside the "
                         f"{1 << addr_width}-byte register map")
    return int(addr)


class FrameLeds:
    """Sums the LED vector over the cycles of each frame; :meth:`take` returns the fractions."""

    def __init__(self, n_lanes: int):
        self.n_lanes = n_lanes
        self._sum = np.zeros(n_lanes, dtype=np.int64)
        self._cycles = 0
        self._rows: list[np.ndarray] = []

    def add(self, led: np.ndarray, last: bool) -> None:
        """One accepted beat: ``led`` is the LED vector (bool, K) read at its edge."""
        self._sum += led
        self._cycles += 1
        if last:
            self.close()

    def add_sum(self, lit: np.ndarray, cycles: int, last: bool) -> None:
        """``cycles`` accepted beats whose LED vectors sum to ``lit``; ``last``: the frame ends."""
        self._sum += lit
        self._cycles += cycles
        if last:
            self.close()

    def add_frames(self, sums: np.ndarray, cycles: np.ndarray) -> None:
        """Whole frames at once: ``sums`` (frames, K) lit cycles, ``cycles`` (frames,)."""
        for s, c in zip(sums, cycles, strict=True):
            self._sum += s
            self._cycles += int(c)
            self.close()

    def add_counts(self, lit: np.ndarray, cycles: np.ndarray) -> None:
        """Whole frames counted elsewhere (no frame of this object's is open): ``lit`` (frames, K)
        lit cycles, ``cycles`` (frames,) their cycles; the same fractions as :meth:`close`."""
        if self._cycles:
            raise ValueError("add_counts needs whole frames, but a frame is open")
        self._rows.append((lit / np.asarray(cycles)[:, None]).astype(np.float32))

    def close(self) -> None:
        self._rows.append((self._sum / max(self._cycles, 1)).astype(np.float32)[None, :])
        self._sum = np.zeros(self.n_lanes, dtype=np.int64)
        self._cycles = 0

    def take(self) -> np.ndarray:
        rows = (np.concatenate(self._rows) if self._rows
                else np.zeros((0, self.n_lanes), dtype=np.float32))
        self._rows = []
        return rows


class WordQueue:
    """AER words produced by the core and not yet received."""

    def __init__(self, dma_blocks: bool = False):
        self.dma_blocks = dma_blocks
        self._words: list[int] = []
        self._lasts: list[bool] = []

    def extend(self, words, lasts) -> None:
        self._words.extend(np.asarray(words, dtype=np.uint64).tolist())      # Python ints, converted in C
        self._lasts.extend(np.asarray(lasts, dtype=bool).tolist())

    def __len__(self):
        return len(self._words)

    def take_all(self) -> tuple[list[int], list[bool]]:
        """Every queued word with its TLAST flag (the pynq stand-in's S2MM side takes them so)."""
        out = (self._words, self._lasts)
        self._words, self._lasts = [], []
        return out

    def take(self, max_words: int, timeout_s: float) -> np.ndarray:
        n = min(max_words, len(self._words))
        if self.dma_blocks:
            ends = [i for i in range(n) if self._lasts[i]]
            if not ends:
                raise BusTimeout(f"no complete AER block (TLAST) within {timeout_s} s: "
                                 f"{len(self._words)} words are waiting for the block to fill; "
                                 "the receive stays armed, call again")
            n = ends[-1] + 1
        out = np.array(self._words[:n], dtype=np.uint64)
        del self._words[:n]
        del self._lasts[:n]
        return out


def send_timeout(timing: BusTiming, taken: int, total: int, frames: int, n_frames: int) -> BusTimeout:
    """The error both simulated backends raise when the core stopped taking beats mid-block."""
    err = BusTimeout(f"the core took no sample beat for {timing.send_timeout_edges} cycles after "
                     f"{taken} of {total} beats ({frames} of {n_frames} frames); is control.enable "
                     "set? The rest of the block was not sent")
    err.frames_sent = frames
    return err


class SimulatedBus:
    """What the simulated backends share: the AER word queue and the per-frame LEDs."""

    _queue: WordQueue
    _leds: FrameLeds

    def receive_words(self, max_words: int, timeout_s: float) -> np.ndarray:
        return self._queue.take(max_words, timeout_s)

    def leds(self) -> np.ndarray:
        """float32 (frames, K): per frame sent since the last call, the lit fraction of each LED."""
        return self._leds.take()


class ModelBus(SimulatedBus):
    """The ``model`` backend: :class:`~bioloop.host.bus.Bus` on the cycle-exact Core model.

    Parameters
    ----------
    n_channels, n_lanes, fanout : int
        N, K, F of the modelled core.
    timing : BusTiming, optional
        The edge timing (default ``BusTiming()``), the same as the Verilator backends'.
    dma_blocks : bool
        Deliver AER words only in whole TLAST blocks (as the PYNQ DMA does).
    tlast : {"block", "frame"}
        Sample TLAST at the end of each ``send_samples`` block (the board's way) or on every frame.
    **core_params
        Further parameters of :class:`bioloop.gateware.core.Core` (``seed0``,
        ``pulse_init``, ``duty_window``...).
    """

    def __init__(self, n_channels: int = 64, n_lanes: int = 64, fanout: int = 16, *,
                 timing: BusTiming | None = None, dma_blocks: bool = False, tlast: str = "block",
                 **core_params):
        self.timing = timing or BusTiming()
        self.tlast = check_tlast(tlast)
        if self.timing.start_edges < n_channels // 2:
            raise ValueError(f"start_edges = {self.timing.start_edges} is shorter than the "
                             f"Detector's reset sweep of {n_channels // 2} edges")
        self.core = Core(n_channels, n_lanes, fanout, **core_params)
        self.n_channels, self.n_lanes, self.fanout = n_channels, n_lanes, fanout
        self._queue = WordQueue(dma_blocks)
        self._leds = FrameLeds(n_lanes)
        self.core.idle(self.timing.start_edges)
        self._collect()

    @property
    def edges(self) -> int:
        """Clock edges since reset."""
        return self.core.edge_count

    def _collect(self) -> None:
        c = self.core
        if c.words:
            self._queue.extend(c.words, c.lasts)
            c.words.clear()
            c.lasts.clear()

    def read32(self, addr: int) -> int:
        addr = check_address(addr, self.core.regmap.addr_width)
        t = self.timing
        self.core.idle(t.read_edge - 1)
        data, resp = self.core.csr_read(addr)
        self.core.idle(t.csr_edges - t.read_edge + 1)
        self._collect()
        if resp == SLVERR:
            raise BusError(f"read of {addr:#x}: SLVERR (no register there)")
        return int(data)

    def write32(self, addr: int, value: int) -> None:
        addr = check_address(addr, self.core.regmap.addr_width)
        if not isinstance(value, (int, np.integer)) or not 0 <= value <= 0xFFFF_FFFF:
            raise ValueError(f"CSR value {value!r} is not a 32-bit word")
        t = self.timing
        self.core.idle(t.write_edge - 1)
        resp = self.core.csr_write(addr, int(value))
        self.core.idle(t.csr_edges - t.write_edge + 1)
        self._collect()
        if resp == SLVERR:
            raise BusError(f"write of {addr:#x}: SLVERR (no register there)")

    def send_samples(self, beats: np.ndarray) -> None:
        beats = check_beats(beats, self.n_channels)
        if beats.shape[0] == 0:
            return
        flat = beats.reshape(-1)
        lasts = np.zeros(flat.shape, dtype=bool)
        lasts[beats.shape[1] - 1::beats.shape[1]] = self.tlast == "frame"
        lasts[-1] = True
        c = self.core
        c.frame_leds = self._leds
        try:
            frames = beats.view(np.int16).reshape(beats.shape[0], self.n_channels)
            taken = c.run_beats(flat, lasts, timeout=self.timing.send_timeout_edges, frames=frames)
        finally:
            c.frame_leds = None
        if taken == len(flat):
            c.idle(self.timing.drain_edges)
        self._collect()
        if taken < len(flat):
            raise send_timeout(self.timing, taken, len(flat), taken // beats.shape[1], beats.shape[0])

    def idle(self, edges: int) -> None:
        """Let the core run ``edges`` edges with no input (words produced meanwhile are queued)."""
        self.core.idle(int(edges))
        self._collect()
