"""Facts about the PYNQ-Z2 board that bioloop's build and backend rely on.

Stated once here; the build flow (:mod:`bioloop.boards.build`: wrapper,
constraints, Vivado script, manifest) and the ``pynq`` backend
(:mod:`bioloop.boards.pynq_backend`) take every board number from this module.

Sources
-------
- Pins and I/O standard: the board's master constraints as published by
  Xilinx/PYNQ, ``boards/Pynq-Z2/base/vivado/constraints/base.xdc``
  (sections "LEDs", "Pmoda", "Pmodb"; every pin LVCMOS33).
- Processing-system configuration without the TUL board files: Xilinx/PYNQ
  ``boards/Pynq-Z2/petalinux_bsp/hardware_project/pynqz2.tcl`` (the PS7
  settings of the PYNQ-Z2 image: DDR3 part and board delays, MIO map, clocks).
- Address map: Zynq-7000 TRM (UG585), system address map (M_AXI_GP0 window).
- AXI DMA register offsets: PG021 (AXI DMA product guide).
"""

from __future__ import annotations

from bioloop.host.layouts import FCLK_HZ
from bioloop.host.regmap import RegisterMap

__all__ = ["PART", "BOARD", "BOARD_PART_PATTERN", "FCLK0_HZ", "GP0_BASE", "GP0_END", "CSR_BASE",
           "DMA_BASE", "DMA_NAME", "CORE_NAME", "CORE_MODULE", "CORE_VLNV", "S2MM_LENGTH",
           "LED_PINS", "PMOD_A_PINS", "PMOD_B_PINS", "LANE_PINS", "IOSTANDARD", "PINS_SOURCE",
           "PS7_PRESET", "PS7_PRESET_SOURCE", "csr_span"]

#: The name ``bioloop build --board`` takes.
BOARD = "pynq-z2"
#: Zynq-7020 in the CLG400 package, speed grade -1 (the same part as Digilent's Arty Z7-20).
PART = "xc7z020clg400-1"
#: How TUL's board files name the board in Vivado (``get_board_parts``), when installed.
BOARD_PART_PATTERN = "*pynq-z2*"
#: Fabric clock FCLK_CLK0 from the PS, which clocks the whole core: the one clock constant.
FCLK0_HZ = FCLK_HZ
#: The PS M_AXI_GP0 window (Zynq-7000 TRM UG585, system address map).
GP0_BASE = 0x4000_0000
GP0_END = 0x7FFF_FFFF
#: Where the block design places the core's AXI4-Lite slave.
CSR_BASE = GP0_BASE
#: Where the block design places the AXI DMA's register slave (pynq reads it from the .hwh).
DMA_BASE = 0x4040_0000
#: Instance names the block design gives the IP (the overlay attributes).
DMA_NAME = "axi_dma_0"
CORE_NAME = "bioloop_core_0"
#: The top module of the core's Verilog (the Vivado wrapper of ``Core``).
CORE_MODULE = "bioloop_core"
#: The VLNV Vivado gives a module reference of ``CORE_MODULE``; the pynq driver binds to it.
CORE_VLNV = f"xilinx.com:module_ref:{CORE_MODULE}:1.0"
#: AXI DMA (PG021) register holding the bytes actually written by the last S2MM transfer.
S2MM_LENGTH = 0x58

#: User LEDs LD0..LD3 (base.xdc "LEDs", leds_4bits_tri_o[0..3]).
LED_PINS = ("R14", "P14", "N16", "M14")
#: PMOD header JA pins 1-4, 7-10 (base.xdc "Pmoda", pmoda_rpi_gpio_tri_io[0..7]).
PMOD_A_PINS = ("Y18", "Y19", "Y16", "Y17", "U18", "U19", "W18", "W19")
#: PMOD header JB pins 1-4, 7-10 (base.xdc "Pmodb", pmodb_gpio_tri_io[0..7]).
PMOD_B_PINS = ("W14", "Y14", "T11", "T10", "V16", "W16", "V12", "W13")
#: Stim lane k drives LANE_PINS[k]: LD0..LD3 first, then PMOD A, then PMOD B
#: (an external LED driver on the PMODs). Lanes beyond these have no pin.
LANE_PINS = LED_PINS + PMOD_A_PINS + PMOD_B_PINS
IOSTANDARD = "LVCMOS33"
PINS_SOURCE = "Xilinx/PYNQ boards/Pynq-Z2/base/vivado/constraints/base.xdc"

PS7_PRESET_SOURCE = "Xilinx/PYNQ boards/Pynq-Z2/petalinux_bsp/hardware_project/pynqz2.tcl"
#: The PYNQ-Z2's processing-system settings, for Vivado installs without TUL's
#: board files (:data:`PS7_PRESET_SOURCE`): the DDR3 device (MT41J256M16 RE-125,
#: 16-bit bus, 525 MHz) and its trace delays, the MIO map (QSPI 1-6, UART0
#: 14-15, ENET0 16-27 with MDIO 52-53, USB0 28-39 with reset on 46, SD0 40-45
#: with card detect on 47), bank voltages and the CPU at 650 MHz. The bus and
#: clock settings bioloop needs (GP0, HP0, FCLK0) are applied on top of this,
#: board files or not (:mod:`bioloop.boards.vivado`).
PS7_PRESET = {
    "PCW_CRYSTAL_PERIPHERAL_FREQMHZ": "50",
    "PCW_APU_PERIPHERAL_FREQMHZ": "650",
    "PCW_PRESET_BANK0_VOLTAGE": "LVCMOS 3.3V",
    "PCW_PRESET_BANK1_VOLTAGE": "LVCMOS 1.8V",
    "PCW_PACKAGE_NAME": "clg400",
    "PCW_UIPARAM_DDR_ENABLE": "1",
    "PCW_UIPARAM_DDR_MEMORY_TYPE": "DDR 3",
    "PCW_UIPARAM_DDR_PARTNO": "MT41J256M16 RE-125",
    "PCW_UIPARAM_DDR_BUS_WIDTH": "16 Bit",
    "PCW_UIPARAM_DDR_DRAM_WIDTH": "16 Bits",
    "PCW_UIPARAM_DDR_DEVICE_CAPACITY": "4096 MBits",
    "PCW_UIPARAM_DDR_SPEED_BIN": "DDR3_1066F",
    "PCW_UIPARAM_DDR_FREQ_MHZ": "525",
    "PCW_UIPARAM_DDR_BANK_ADDR_COUNT": "3",
    "PCW_UIPARAM_DDR_ROW_ADDR_COUNT": "15",
    "PCW_UIPARAM_DDR_COL_ADDR_COUNT": "10",
    "PCW_UIPARAM_DDR_CL": "7",
    "PCW_UIPARAM_DDR_CWL": "6",
    "PCW_UIPARAM_DDR_T_RCD": "7",
    "PCW_UIPARAM_DDR_T_RP": "7",
    "PCW_UIPARAM_DDR_T_RC": "48.91",
    "PCW_UIPARAM_DDR_T_RAS_MIN": "35.0",
    "PCW_UIPARAM_DDR_T_FAW": "40.0",
    "PCW_UIPARAM_DDR_ECC": "Disabled",
    "PCW_UIPARAM_DDR_TRAIN_WRITE_LEVEL": "1",
    "PCW_UIPARAM_DDR_TRAIN_READ_GATE": "1",
    "PCW_UIPARAM_DDR_TRAIN_DATA_EYE": "1",
    "PCW_UIPARAM_DDR_USE_INTERNAL_VREF": "0",
    "PCW_UIPARAM_DDR_BOARD_DELAY0": "0.223",
    "PCW_UIPARAM_DDR_BOARD_DELAY1": "0.212",
    "PCW_UIPARAM_DDR_BOARD_DELAY2": "0.085",
    "PCW_UIPARAM_DDR_BOARD_DELAY3": "0.092",
    "PCW_UIPARAM_DDR_DQS_TO_CLK_DELAY_0": "0.040",
    "PCW_UIPARAM_DDR_DQS_TO_CLK_DELAY_1": "0.058",
    "PCW_UIPARAM_DDR_DQS_TO_CLK_DELAY_2": "-0.009",
    "PCW_UIPARAM_DDR_DQS_TO_CLK_DELAY_3": "-0.033",
    "PCW_QSPI_PERIPHERAL_ENABLE": "1",
    "PCW_QSPI_GRP_SINGLE_SS_ENABLE": "1",
    "PCW_QSPI_GRP_FBCLK_ENABLE": "1",
    "PCW_UART0_PERIPHERAL_ENABLE": "1",
    "PCW_UART0_UART0_IO": "MIO 14 .. 15",
    "PCW_UART0_BAUD_RATE": "115200",
    "PCW_ENET0_PERIPHERAL_ENABLE": "1",
    "PCW_ENET0_ENET0_IO": "MIO 16 .. 27",
    "PCW_ENET0_GRP_MDIO_ENABLE": "1",
    "PCW_ENET0_GRP_MDIO_IO": "MIO 52 .. 53",
    "PCW_ENET0_RESET_ENABLE": "1",
    "PCW_ENET0_RESET_IO": "MIO 9",
    "PCW_USB0_PERIPHERAL_ENABLE": "1",
    "PCW_USB0_USB0_IO": "MIO 28 .. 39",
    "PCW_USB0_RESET_ENABLE": "1",
    "PCW_USB0_RESET_IO": "MIO 46",
    "PCW_SD0_PERIPHERAL_ENABLE": "1",
    "PCW_SD0_SD0_IO": "MIO 40 .. 45",
    "PCW_SD0_GRP_CD_ENABLE": "1",
    "PCW_SD0_GRP_CD_IO": "MIO 47",
    "PCW_GPIO_MIO_GPIO_ENABLE": "1",
}


def csr_span(N: int = 64, K: int = 64, F: int = 16) -> int:
    """Bytes of address space the core's CSR slave needs (assign at least this in Vivado).

    A power of two, at least 4 KiB (the smallest range Vivado's address
    editor assigns).

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
