"""Writing the stim path's per-lane tables from a cocotb bench.

Every table of the stim path (density codes, θ, homeo_src, pulse lengths) is
written through a ``WritePort`` (``<name>__addr``, ``<name>__data``,
``<name>__en``), one entry per cycle, as the CSR bank will.
"""

from __future__ import annotations

from cocotb.triggers import RisingEdge

__all__ = ["write_table", "write_entry"]


async def write_entry(dut, port: str, addr: int, value: int) -> None:
    """Drive one write; it is sampled at the next edge and in force after it."""
    getattr(dut, f"{port}__addr").value = addr
    getattr(dut, f"{port}__data").value = value
    getattr(dut, f"{port}__en").value = 1
    await RisingEdge(dut.clk)
    getattr(dut, f"{port}__en").value = 0


async def write_table(dut, port: str, values) -> int:
    """Write ``values[k]`` to entry k for every k; returns the number of edges it took."""
    n = 0
    for k, v in enumerate(values):
        await write_entry(dut, port, k, int(v))
        n += 1
    return n
