"""The ``verilator`` backend: :class:`bioloop.host.bus.Bus` on the Core's RTL, compiled, in-process.

::

    from bioloop.host.driver import Driver
    from bioloop.sim.verilator_bus import VerilatorBus

    bus = VerilatorBus(64, 64, 16)      # builds the Core once (cached), then resets it
    driver = Driver(bus)                # the same Driver as on the board and the model
    driver.enable()
    driver.send_samples(block)
    words, leds = driver.receive_words(), bus.leds()

:class:`VerilatorBus` drives a :class:`~bioloop.sim.verilated_core.VerilatedCore`
(the Verilated ``hdl/core.v`` in a shared library, one C++ call per bus
operation) with the :class:`~bioloop.host.backends.BusTiming` of the ``model``
and ``cocotb`` backends: the same calls put the same beats on the same clock
edges, so the AER words and per-frame LED vectors are the same bit for bit
(``tests/gateware/test_verilator_bus.py``). It is ordinary synchronous Python:
a notebook can hold a ``Driver`` on it, and the loop and the demo run on it
unchanged (``bioloop demo --backend verilator``).

The AER output goes to a buffer of ``aer_capacity`` words that
:meth:`receive_words` empties, as a DMA buffer that the host re-arms. While it is
full, the core's AER ready is low, exactly as a full DMA holds the stream: the
core applies its own backpressure (its AEREncoder counts what it loses and
reports it in OVERFLOW words), nothing is dropped by the bus, and the bus warns
with :class:`AERBackpressure` and counts the stalled edges in :attr:`aer_stalls`.
"""

from __future__ import annotations

import warnings

import numpy as np

from bioloop.host.regmap import SLVERR, RegisterMap
from bioloop.host.backends import BusTiming, FrameLeds, SimulatedBus, WordQueue, check_address, check_beats, \
    check_tlast, send_timeout
from bioloop.host.bus import BusError

from .verilated_core import CoreLibrary, VerilatedCore

__all__ = ["VerilatorBus", "AERBackpressure"]


class AERBackpressure(RuntimeWarning):
    """The AER buffer was full, so the core's AER ready was held low (words were delayed, not dropped)."""


class VerilatorBus(SimulatedBus):
    """The compiled Core as a bus: build (or reuse) the library, reset, wait ``timing.start_edges``.

    Parameters
    ----------
    n_channels, n_lanes, fanout : int
        N, K, F of the Core.
    timing : BusTiming, optional
        The edge timing (default ``BusTiming()``), the same as the other simulated backends'.
    dma_blocks : bool
        Deliver AER words only in whole TLAST blocks (as the PYNQ DMA does).
    tlast : {"block", "frame"}
        Sample TLAST at the end of each ``send_samples`` block (the board's way, default) or on
        every frame's last beat; the core counts N/2 beats per frame either way.
    aer_capacity : int
        Words the AER buffer holds between two :meth:`receive_words` calls (default 2^20).
    library : CoreLibrary or path, optional
        A library built by :func:`~bioloop.sim.verilated_core.build_core_library` (default:
        the cached build for these parameters); one built for other N, K, F raises
        :class:`~bioloop.sim.verilated_core.LibraryMismatch`.
    **core_params
        Further :class:`bioloop.gateware.core.Core` parameters (``seed0``, ``pulse_init``...),
        built into the library.
    """

    def __init__(self, n_channels: int = 64, n_lanes: int = 64, fanout: int = 16, *,
                 timing: BusTiming | None = None, dma_blocks: bool = False, tlast: str = "block",
                 aer_capacity: int = 1 << 20, library: CoreLibrary | None = None, **core_params):
        self.timing = timing or BusTiming()
        self.tlast = check_tlast(tlast)
        if self.timing.start_edges < n_channels // 2:
            raise ValueError(f"start_edges = {self.timing.start_edges} is shorter than the "
                             f"Detector's reset sweep of {n_channels // 2} edges")
        self.core = VerilatedCore(n_channels, n_lanes, fanout, library=library, aer_capacity=aer_capacity,
                                  **core_params)
        self.regmap = RegisterMap(n_channels, n_lanes, fanout)
        self.n_channels, self.n_lanes, self.fanout = n_channels, n_lanes, fanout
        self._queue = WordQueue(dma_blocks)
        self._leds = FrameLeds(n_lanes)
        self._stalls = 0
        self.core.idle(self.timing.start_edges)
        self._check_stalls("reset")

    def close(self) -> None:
        """Free the simulated core now (it is also freed when the bus is collected)."""
        self.core.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def edges(self) -> int:
        """Clock edges since reset release."""
        return self.core.edges

    @property
    def aer_stalls(self) -> int:
        """Edges at which the core offered an AER word that the full buffer refused."""
        return self.core.aer_stalls

    def _check_stalls(self, what: str) -> None:
        stalls = self.core.aer_stalls
        if stalls > self._stalls:
            warnings.warn(AERBackpressure(
                f"the AER buffer ({self.core.aer_capacity} words) was full for {stalls - self._stalls} "
                f"edges during {what}: the core's AER ready was held low, as a full DMA does (words "
                "delayed, not dropped; the core counts any it lost in OVERFLOW words). Call "
                "receive_words more often or raise aer_capacity"), stacklevel=3)
            self._stalls = stalls

    def _csr(self, write: bool, addr: int, value: int) -> int:
        resp, data = self.core.csr(write, addr, value, self.timing.csr_edges)
        op = "write" if write else "read"
        self._check_stalls(f"a CSR {op}")
        if resp < 0:
            raise BusError(f"AXI-Lite {op} of {addr:#x} did not complete within {self.timing.csr_edges} cycles")
        if resp == SLVERR:
            raise BusError(f"{op} of {addr:#x}: SLVERR (no register there)")
        return data

    # -- the Bus protocol -----------------------------------------------------------------

    def read32(self, addr: int) -> int:
        return self._csr(False, check_address(addr, self.regmap.addr_width), 0)

    def write32(self, addr: int, value: int) -> None:
        addr = check_address(addr, self.regmap.addr_width)
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
            raise TypeError(f"CSR value must be an integer, not {value!r}")
        if not 0 <= value <= 0xFFFF_FFFF:
            raise ValueError(f"CSR value {value!r} is not a 32-bit word")
        self._csr(True, addr, int(value))

    def send_samples(self, beats: np.ndarray) -> None:
        beats = check_beats(beats, self.n_channels)
        if beats.shape[0] == 0:
            return
        taken, lit, cycles = self.core.push(beats, self.timing.send_timeout_edges, self.tlast)
        if len(cycles):
            self._leds.add_counts(lit, cycles)
        total = beats.size
        if taken == total:
            self.core.idle(self.timing.drain_edges)
        self._check_stalls("send_samples")
        if taken < total:
            raise send_timeout(self.timing, taken, total, taken // beats.shape[1], beats.shape[0])

    def receive_words(self, max_words: int, timeout_s: float) -> np.ndarray:
        words, lasts = self.core.pop_words()
        if len(words):
            self._queue.extend(words, lasts)
        return super().receive_words(max_words, timeout_s)

    def idle(self, edges: int) -> None:
        """Let the core run ``edges`` edges with no input (words produced meanwhile are queued)."""
        if not isinstance(edges, (int, np.integer)) or isinstance(edges, bool):
            raise TypeError(f"edges must be an integer, not {edges!r}")
        if edges < 0:
            raise ValueError(f"edges must be >= 0, not {edges}")
        self.core.idle(int(edges))
        self._check_stalls("idle")
