"""The shared vocabulary of the cocotb benches.

A bench builds a :class:`TB` (clock, reset, cycle counter), attaches a
:class:`StreamSource` to each ``lib.stream`` input and a :class:`StreamSink`
to each output, and compares what the sink collected with the model. Every
source takes an ``idle`` and every sink a ``backpressure`` setting, so each
interface is tested stalled and unstalled. A setting is either a probability
(each cycle pauses with that probability, from the bench's seeded RNG) or,
as cocotbext-axi's pause generators, a deterministic pattern: an iterable of
per-cycle values, truthy meaning pause, advanced once per clock cycle, e.g.
``itertools.cycle([1, 1, 1, 0])`` for one beat in four (see :func:`pauses`).

Amaranth flattens a stream port ``name`` into ``name__valid``,
``name__ready`` and ``name__payload``; payloads are handled as integers
packed by the port's ``StructLayout``.

Sampling convention: right after ``RisingEdge(clk)`` cocotb reads the values
that were present at that edge, so a handshake is ``valid and ready`` read
then, and a value written then is seen by the design at the next edge.
"""

from __future__ import annotations

import itertools
import numbers
import random
from collections import deque
from collections.abc import Iterable, Iterator

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge

from bioloop.host.layouts import FCLK_HZ

__all__ = ["TB", "StreamSource", "StreamSink", "pauses", "wait_until", "write_table", "write_routes"]

CLOCK_PERIOD_NS = 1e9 / FCLK_HZ


def pauses(setting, rng: random.Random) -> Iterator[bool]:
    """Per-cycle pause decisions (True: pause this cycle) from an idle/backpressure setting.

    Parameters
    ----------
    setting : float or iterable
        A probability in [0, 1] (0: never pause, 1: always), drawn from
        ``rng`` each cycle; or an iterable of per-cycle values, truthy
        meaning pause (``itertools.cycle([1, 1, 1, 0])``; a list is
        repeated; a finite iterator stops pausing when it ends).

    Raises
    ------
    TypeError
        Neither a real number nor an iterable (a bool or a string too).
    ValueError
        A probability outside [0, 1].
    """
    if isinstance(setting, (bool, str, bytes)):
        raise TypeError(f"idle/backpressure must be a probability or an iterable of per-cycle "
                        f"pauses, not {setting!r}")
    if isinstance(setting, numbers.Real):
        p = float(setting)
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"idle/backpressure probability must be in [0, 1], not {setting!r}")
        if p == 0.0:
            return itertools.repeat(False)
        if p == 1.0:
            return itertools.repeat(True)
        return (rng.random() < p for _ in itertools.repeat(None))
    if isinstance(setting, (list, tuple)):
        if not setting:
            raise ValueError("an idle/backpressure pattern needs at least one value")
        setting = itertools.cycle(setting)
    if not isinstance(setting, Iterable):
        raise TypeError(f"idle/backpressure must be a probability or an iterable of per-cycle "
                        f"pauses, not {type(setting).__name__}")
    return itertools.chain((bool(v) for v in setting), itertools.repeat(False))


class TB:
    """Clock, reset and a free-running cycle counter for one design.

    ``tb.cycle`` is the number of rising edges since reset was released, so
    cycle stamps taken by sources and sinks are directly comparable.
    """

    def __init__(self, dut, seed: int = 1):
        self.dut = dut
        self.clk = dut.clk
        self.rng = random.Random(seed)
        self.cycle = 0
        cocotb.start_soon(Clock(dut.clk, CLOCK_PERIOD_NS, unit="ns").start())
        cocotb.start_soon(self._count())

    async def _count(self):
        while True:
            await RisingEdge(self.clk)
            self.cycle += 1

    def record(self, sample) -> list:
        """Append ``sample()`` at every edge while ``self.recording`` is true; return that list.

        The per-edge trace a bench replays through its cycle-exact model.
        """
        trace: list = []
        self.recording = False

        async def run():
            while True:
                await RisingEdge(self.clk)
                if self.recording:
                    trace.append(sample())
        cocotb.start_soon(run())
        return trace

    async def reset(self, cycles: int = 2):
        self.dut.rst.value = 1
        await ClockCycles(self.clk, cycles)
        self.dut.rst.value = 0
        self.cycle = 0

    async def cycles(self, n: int):
        await ClockCycles(self.clk, n)

    def source(self, name: str, idle=0.0, seed: int | None = None) -> "StreamSource":
        """A :class:`StreamSource` on input ``name``; ``idle``: see :func:`pauses`."""
        return StreamSource(self, name, idle, random.Random(self.rng.random() if seed is None else seed))

    def sink(self, name: str, backpressure=0.0, seed: int | None = None) -> "StreamSink":
        """A :class:`StreamSink` on output ``name``; ``backpressure``: see :func:`pauses`."""
        return StreamSink(self, name, backpressure, random.Random(self.rng.random() if seed is None else seed))


async def wait_until(tb: TB, predicate, timeout: int = 10_000, what: str = "condition"):
    """Advance clock cycles until ``predicate()`` holds; fail after ``timeout`` cycles."""
    for _ in range(timeout):
        if predicate():
            return
        await RisingEdge(tb.clk)
    raise AssertionError(f"timed out after {timeout} cycles waiting for {what}")


async def write_table(tb: TB, port: str, entries) -> None:
    """Write ``(addr, data)`` pairs through the ``WritePort`` named ``port``, one per cycle."""
    dut = tb.dut
    en = getattr(dut, f"{port}__en")
    for addr, data in entries:
        getattr(dut, f"{port}__addr").value = addr
        getattr(dut, f"{port}__data").value = data
        en.value = 1
        await RisingEdge(tb.clk)
    en.value = 0


async def write_routes(tb: TB, table: dict, fanout: int) -> None:
    """Write a routing table ``{address: [(port, target, weight), ...]}`` into an AERRouter's ports."""
    from bioloop.host.models.aer_router import Route, pack_route
    await write_table(tb, "table_write", [(a * fanout + j, pack_route(Route(*r)))
                                          for a, routes in table.items() for j, r in enumerate(routes)])
    await write_table(tb, "fanout_write", [(a, len(routes)) for a, routes in table.items()])


class StreamSource:
    """Drives a ``lib.stream`` input with payloads from a queue, with idle cycles.

    ``idle`` (:func:`pauses`) decides, each cycle, whether the source may
    start a new beat; a beat once valid is held until its handshake (valid
    never drops early). ``sent`` records ``(cycle, payload)`` for every
    completed handshake, where ``cycle`` is the edge at which the handshake
    happened.
    """

    def __init__(self, tb: TB, name: str, idle, rng: random.Random):
        self.tb = tb
        self.valid = getattr(tb.dut, f"{name}__valid")
        self.ready = getattr(tb.dut, f"{name}__ready")
        self.payload = getattr(tb.dut, f"{name}__payload")
        self.idle = idle
        self._pause = pauses(idle, rng)
        self._pattern = not isinstance(idle, numbers.Real)
        self.queue: deque[int] = deque()
        self.sent: list[tuple[int, int]] = []
        self.valid.value = 0
        self.payload.value = 0
        cocotb.start_soon(self._run())

    def send(self, payloads):
        """Queue one payload (int) or an iterable of them."""
        if isinstance(payloads, int):
            self.queue.append(payloads)
        else:
            self.queue.extend(payloads)

    @property
    def idle_now(self) -> bool:
        return not self.queue and not int(self.valid.value)

    async def drain(self, timeout: int = 1_000_000):
        await wait_until(self.tb, lambda: self.idle_now, timeout, "the source to drain")

    async def _run(self):
        driving = False
        while True:
            await RisingEdge(self.tb.clk)
            if driving and int(self.ready.value):
                self.sent.append((self.tb.cycle, self.queue.popleft()))
                driving = False
            # A pattern advances every cycle; a probability is drawn only when it decides
            # something (so random benches keep the stimulus they always had).
            pause = next(self._pause) if self._pattern else False
            if not driving and self.queue and not (pause or (not self._pattern and next(self._pause))):
                self.payload.value = self.queue[0]
                driving = True
            self.valid.value = int(driving)


class StreamSink:
    """Accepts a ``lib.stream`` output with backpressure (``ready`` low on paused cycles, :func:`pauses`).

    ``received`` records ``(cycle, payload)`` for every handshake;
    ``first_valid`` records the cycle at which each received word first
    showed ``valid`` (for latency measured "to valid").
    """

    def __init__(self, tb: TB, name: str, backpressure, rng: random.Random):
        self.tb = tb
        self.valid = getattr(tb.dut, f"{name}__valid")
        self.ready = getattr(tb.dut, f"{name}__ready")
        self.payload = getattr(tb.dut, f"{name}__payload")
        self._rng = rng
        self.backpressure = backpressure
        self.received: list[tuple[int, int]] = []
        self.first_valid: list[int] = []
        self._valid_since = None
        # before the first edge: a pattern's first value; a probability only when it is 1
        # (no draw, so random benches keep the stimulus they always had)
        first = next(self._pause) if not isinstance(backpressure, numbers.Real) else backpressure >= 1
        self.ready.value = 0 if first else 1
        cocotb.start_soon(self._run())

    @property
    def backpressure(self):
        """The probability or pattern of paused cycles; setting it takes effect from the next edge."""
        return self._backpressure

    @backpressure.setter
    def backpressure(self, value):
        self._backpressure = value
        self._pause = pauses(value, self._rng)

    @property
    def payloads(self) -> list[int]:
        return [p for _, p in self.received]

    async def _run(self):
        while True:
            await RisingEdge(self.tb.clk)
            valid = int(self.valid.value)
            if valid and self._valid_since is None:
                self._valid_since = self.tb.cycle
            if valid and int(self.ready.value):
                self.received.append((self.tb.cycle, int(self.payload.value)))
                self.first_valid.append(self._valid_since)
                self._valid_since = None
            self.ready.value = 0 if next(self._pause) else 1
