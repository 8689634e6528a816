"""The ``cocotb`` backend: :class:`bioloop.host.bus.Bus` on the Verilated ``Core`` under cocotb.

Inside a cocotb test, :class:`CocotbBus` owns the clock, the reset, a
cocotbext-axi ``AxiLiteMaster`` on ``s_axil`` and the two streams
(``samples__valid/ready/payload`` in, ``aer__valid/ready/payload`` out,
Amaranth's flattened ``lib.stream`` names). Its methods are synchronous:
the :class:`~bioloop.host.driver.Driver` runs in a thread started with
``cocotb.task.bridge`` and each bus call enters the simulator with
``cocotb.task.resume`` (DESIGN.md §7). Between calls simulated time stands
still, so the clock edges follow :class:`bioloop.host.backends.BusTiming`
exactly, as the ``model`` backend's do; :func:`bioloop.sim.hil.run_with_cocotb`
sets all of it up from ordinary Python.

One coroutine drives everything edge by edge (no per-cycle helper tasks),
which keeps cocotb's per-edge overhead to one wake-up. It runs about 30k edges
per second; :class:`bioloop.sim.verilator_bus.VerilatorBus` runs the same RTL
compiled, in-process, with the same timing, for sessions (docs/core.md says
which to use for what).
"""

from __future__ import annotations

import logging

import numpy as np

import cocotb
from cocotb.clock import Clock
from cocotb.task import resume
from cocotb.triggers import RisingEdge
from cocotbext.axi import AxiLiteBus, AxiLiteMaster

from bioloop.host.regmap import SLVERR
from bioloop.host.layouts import FCLK_HZ
from bioloop.host.regmap import RegisterMap
from bioloop.host.backends import (BusTiming, FrameLeds, SimulatedBus, WordQueue, check_address, check_beats,
                                   send_timeout)
from bioloop.host.bus import BusError

__all__ = ["CocotbBus"]

_AER_LAST = 1 << 64
_WORD = (1 << 64) - 1


class CocotbBus(SimulatedBus):
    """The Verilated Core as a bus (construct inside a cocotb test, then ``await start()``).

    Parameters
    ----------
    dut : cocotb handle
        The top level: a :class:`bioloop.gateware.core.Core`.
    n_channels, n_lanes, fanout : int
        The Core's parameters (they must match the build).
    timing : BusTiming, optional
        Edge timing (default ``BusTiming()``).
    dma_blocks : bool
        Deliver AER words only in whole TLAST blocks.

    Attributes
    ----------
    edges : int
        Rising edges since reset release.
    """

    def __init__(self, dut, n_channels: int = 64, n_lanes: int = 64, fanout: int = 16, *,
                 timing: BusTiming | None = None, dma_blocks: bool = False):
        self.dut = dut
        self.timing = timing or BusTiming()
        self.regmap = RegisterMap(n_channels, n_lanes, fanout)
        self.n_channels, self.n_lanes = n_channels, n_lanes
        self.edges = 0
        self._queue = WordQueue(dma_blocks)
        self._leds = FrameLeds(n_lanes)
        self._led_bytes = (n_lanes + 7) // 8
        self._frame_leds: list[int] = []
        self._frame_cycles = 0
        self._words: list[int] = []
        self._rising = RisingEdge(dut.clk)          # one trigger object, awaited every edge
        self._aer_valid, self._aer_payload = dut.aer__valid, dut.aer__payload
        bus = AxiLiteBus.from_prefix(dut, "s_axil", bus_separator="__")
        self.axil = AxiLiteMaster(bus, dut.clk, dut.rst)
        for log in (self.axil.write_if.log, self.axil.read_if.log):
            log.setLevel(logging.WARNING)

    async def start(self) -> None:
        """Start the clock, reset the core and wait ``timing.start_edges`` edges."""
        d = self.dut
        cocotb.start_soon(Clock(d.clk, 1e9 / FCLK_HZ, unit="ns").start())
        d.samples__valid.value = 0
        d.samples__payload.value = 0
        d.aer__ready.value = 1
        d.rst.value = 1
        for _ in range(2):
            await RisingEdge(d.clk)
        d.rst.value = 0
        self.edges = 0
        await self._idle(self.timing.start_edges)

    # -- edge loop ------------------------------------------------------------------------

    async def _edge(self) -> None:
        await self._rising
        self.edges += 1
        if self._aer_valid.value:                   # ready is held high
            self._words.append(int(self._aer_payload.value))

    async def _idle(self, n: int) -> None:
        for _ in range(n):
            await self._edge()
        self._collect()

    def _collect(self) -> None:
        if self._words:
            self._queue.extend([w & _WORD for w in self._words], [bool(w & _AER_LAST) for w in self._words])
            self._words = []

    async def _csr(self, op):
        """Run an AXI-Lite master operation inside an access of exactly ``csr_edges`` edges."""
        t = self.timing
        task = cocotb.start_soon(op)
        for _ in range(t.csr_edges):
            await self._edge()
        self._collect()
        if not task.done():
            task.cancel()
            raise BusError(f"AXI-Lite access did not complete within {t.csr_edges} cycles")
        return task.result()

    async def _read32(self, addr: int) -> int:
        resp = await self._csr(self.axil.read(addr, 4))
        if int(resp.resp) == SLVERR:
            raise BusError(f"read of {addr:#x}: SLVERR (no register there)")
        return int.from_bytes(resp.data, "little")

    async def _write32(self, addr: int, value: int) -> None:
        resp = await self._csr(self.axil.write(addr, int(value).to_bytes(4, "little")))
        if int(resp.resp) == SLVERR:
            raise BusError(f"write of {addr:#x}: SLVERR (no register there)")

    def _close_frame(self) -> None:
        K = self.n_lanes
        if self._frame_leds:
            raw = b"".join(v.to_bytes(self._led_bytes, "little") for v in self._frame_leds)
            bits = np.unpackbits(np.frombuffer(raw, dtype=np.uint8), bitorder="little")
            lit = bits.reshape(len(self._frame_leds), -1)[:, :K].sum(axis=0, dtype=np.int64)
        else:
            lit = np.zeros(K, dtype=np.int64)
        self._leds.add_frames(lit[None, :], np.array([self._frame_cycles]))
        self._frame_leds = []
        self._frame_cycles = 0

    async def _send(self, beats: np.ndarray) -> int:
        d = self.dut
        valid, ready, payload, led = d.samples__valid, d.samples__ready, d.samples__payload, d.led
        per_frame = beats.shape[1]
        flat = beats.reshape(-1).tolist()
        n = len(flat)
        timeout = self.timing.send_timeout_edges
        i = waited = 0
        payload.value = flat[0] | ((per_frame == 1) << 32)
        valid.value = 1
        while i < n:
            await self._edge()
            if ready.value:
                lit = int(led.value)
                if lit:
                    self._frame_leds.append(lit)
                self._frame_cycles += 1
                i += 1
                waited = 0
                if i % per_frame == 0:
                    self._close_frame()
                if i < n:
                    payload.value = flat[i] | ((i % per_frame == per_frame - 1) << 32)
                else:
                    valid.value = 0
            else:
                waited += 1
                if waited >= timeout:
                    valid.value = 0
                    break
        if i == n:
            await self._idle(self.timing.drain_edges)
        self._collect()
        return i

    # -- the Bus protocol (synchronous, for a bridge thread) ------------------------------

    def read32(self, addr: int) -> int:
        addr = check_address(addr, self.regmap.addr_width)
        return resume(self._read32)(addr)

    def write32(self, addr: int, value: int) -> None:
        addr = check_address(addr, self.regmap.addr_width)
        if not isinstance(value, (int, np.integer)) or not 0 <= value <= 0xFFFF_FFFF:
            raise ValueError(f"CSR value {value!r} is not a 32-bit word")
        resume(self._write32)(addr, int(value))

    def send_samples(self, beats: np.ndarray) -> None:
        beats = check_beats(beats, self.n_channels)
        if beats.shape[0] == 0:
            return
        taken = resume(self._send)(beats)
        total = beats.size
        if taken < total:
            raise send_timeout(self.timing, taken, total, taken // beats.shape[1], beats.shape[0])

    def idle(self, edges: int) -> None:
        """Let the core run ``edges`` edges with no input (words produced meanwhile are queued)."""
        resume(self._idle)(int(edges))
