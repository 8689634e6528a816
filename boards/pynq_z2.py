"""Facts about the PYNQ-Z2 board that bioloop's build and backend rely on.

Stated once here; the Vivado block design of ``docs/board.md`` and the
``pynq`` backend (:mod:`bioloop.boards.pynq_backend`) use these values.
"""

from __future__ import annotations

from bioloop.gateware.layouts import FCLK_HZ
from bioloop.gateware.regmap import RegisterMap

__all__ = ["PART", "FCLK0_HZ", "GP0_BASE", "GP0_END", "CSR_BASE", "DMA_NAME", "CORE_NAME",
           "S2MM_LENGTH", "csr_span"]

#: Zynq-7020 in the CLG400 package, speed grade -1 (the same part as Digilent's Arty Z7-20).
PART = "xc7z020clg400-1"
#: Fabric clock FCLK_CLK0 from the PS, which clocks the whole core.
FCLK0_HZ = FCLK_HZ
#: The PS M_AXI_GP0 window (Zynq-7000 TRM UG585, system address map).
GP0_BASE = 0x4000_0000
GP0_END = 0x7FFF_FFFF
#: Where the block design places the core's AXI4-Lite slave.
CSR_BASE = GP0_BASE
#: Instance names the block design gives the IP (the overlay attributes).
DMA_NAME = "axi_dma_0"
CORE_NAME = "bioloop_core_0"
#: AXI DMA (PG021) register holding the bytes actually written by the last S2MM transfer.
S2MM_LENGTH = 0x58


def csr_span(N: int = 64, K: int = 64, F: int = 16) -> int:
    """Bytes of address space the core's CSR slave needs (assign at least this in Vivado).

    Raises
    ------
    ValueError
        If the map does not fit in the GP0 window above ``CSR_BASE``.
    """
    span = 1 << RegisterMap(N, K, F).addr_width
    span = max(span, 4096)  # Vivado's address editor assigns at least 4 KiB
    if CSR_BASE + span - 1 > GP0_END:
        raise ValueError(f"a {span}-byte register map does not fit GP0 above {CSR_BASE:#x}")
    return span
