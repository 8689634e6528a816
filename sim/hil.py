"""Hardware in the loop on the simulator: run a synchronous host function against the Verilated Core.

::

    from bioloop.sim.hil import run_with_cocotb

    def session(driver, bus):          # plain synchronous code, as on the board
        driver.enable()
        driver.send_samples(block)
        return driver.receive_words(), bus.leds()

    words, leds = run_with_cocotb(session, n_channels=64, n_lanes=64, fanout=16)

:func:`run_with_cocotb` builds ``Core`` with Verilator (one cached build
per parameter set, through :func:`bioloop.sim.runner.run`), starts the
simulator with the cocotb test of this module, which creates a
:class:`~bioloop.sim.cocotb_bus.CocotbBus` and a
:class:`~bioloop.host.driver.Driver` and calls ``fn(driver, bus)`` in a
``cocotb.task.bridge`` thread. The function travels to the simulator
process by pickle (so it must be importable: a module-level function), and
its result, or the exception it raised, comes back the same way.
"""

from __future__ import annotations

import os
import pickle
import tempfile
import traceback
from dataclasses import asdict
from pathlib import Path

import cocotb

from bioloop.host.backends import BusTiming
from bioloop.sim import runner

__all__ = ["run_with_cocotb", "HILError"]

_CALL = "BIOLOOP_HIL_CALL"
_RESULT = "BIOLOOP_HIL_RESULT"


class HILError(RuntimeError):
    """The simulation did not return a result (the simulator failed, not the function)."""


def _factory(n_channels, n_lanes, fanout, core):
    from bioloop.gateware.core import Core
    return Core(n_channels, n_lanes, fanout, **core)


def run_with_cocotb(fn, *args, n_channels: int = 64, n_lanes: int = 64, fanout: int = 16,
                       timing: BusTiming | None = None, dma_blocks: bool = False,
                       quiet: bool = False, on_phase=None, **core_params):
    """Call ``fn(driver, bus, *args)`` inside a Verilator simulation of ``Core``; return its result.

    Parameters
    ----------
    fn : callable
        A picklable (module-level) function of ``(driver, bus, *args)``; ``bus`` is the
        :class:`~bioloop.sim.cocotb_bus.CocotbBus`, ``driver`` a
        :class:`~bioloop.host.driver.Driver` on it. Its return value must be
        picklable.
    *args
        Further (picklable) arguments of ``fn``.
    n_channels, n_lanes, fanout : int
        N, K, F of the Core.
    timing : BusTiming, optional
        The bus timing (the same object makes a ``ModelBus`` match edge for edge).
    dma_blocks : bool
        Deliver AER words in whole TLAST blocks only.
    quiet, on_phase
        As for :func:`bioloop.sim.runner.run`: the build and simulator logs go
        to files in the build directory; ``on_phase`` sees "build", "simulate".
    **core_params
        Further ``Core`` parameters (``seed0``, ``pulse_init``, ``duty_window``...).

    Raises
    ------
    Exception
        Whatever ``fn`` raised, re-raised here (its simulator-side traceback in
        the message of a chained :class:`HILError`).
    HILError
        If the simulation ended without a result.
    """
    params = {"n_channels": n_channels, "n_lanes": n_lanes, "fanout": fanout, "core": core_params}
    with tempfile.TemporaryDirectory(prefix="bioloop-hil-") as tmp:
        call, result = Path(tmp) / "call.pkl", Path(tmp) / "result.pkl"
        call.write_bytes(pickle.dumps({"fn": fn, "args": args, "timing": asdict(timing or BusTiming()),
                                       "dma_blocks": dma_blocks, **params}))
        saved = {k: os.environ.get(k) for k in (_CALL, _RESULT)}
        os.environ[_CALL], os.environ[_RESULT] = str(call), str(result)
        try:
            runner.run(_factory, design=f"core_n{n_channels}_k{n_lanes}_f{fanout}",
                       test_module="bioloop.sim.hil", bench_params=params, testcase="hil_call",
                       quiet=quiet, on_phase=on_phase)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        if not result.exists():
            raise HILError("the simulation ended without a result; see the cocotb log in "
                           f"{runner.ROOT / 'sim_build'}")
        out = pickle.loads(result.read_bytes())
    if out["ok"]:
        return out["value"]
    exc = out["error"]
    raise exc from HILError(f"raised inside the simulator:\n{out['trace']}")


@cocotb.test()
async def hil_call(dut):
    """The simulator side of :func:`run_with_cocotb`."""
    from cocotb.task import bridge

    from bioloop.host.driver import Driver
    from bioloop.sim.cocotb_bus import CocotbBus

    call = pickle.loads(Path(os.environ[_CALL]).read_bytes())
    bus = CocotbBus(dut, call["n_channels"], call["n_lanes"], call["fanout"],
                       timing=BusTiming(**call["timing"]), dma_blocks=call["dma_blocks"])
    await bus.start()
    fn, args = call["fn"], call["args"]

    def body():
        return fn(Driver(bus), bus, *args)

    try:
        value = await bridge(body)()
        out = {"ok": True, "value": value}
    except Exception as exc:                       # handed back to the caller, not a bench failure
        out = {"ok": False, "error": exc, "trace": traceback.format_exc()}
        try:
            pickle.dumps(out)
        except Exception:
            out = {"ok": False, "error": HILError(f"{type(exc).__name__}: {exc}"),
                   "trace": out["trace"]}
    Path(os.environ[_RESULT]).write_bytes(pickle.dumps(out))
