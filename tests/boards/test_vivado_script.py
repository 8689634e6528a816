"""build.tcl sourced in a real Tcl interpreter with every Vivado command stubbed (vivado_stub.py).

Checked against truths written down here or parsed from the generated files,
not against bioloop.boards' own tables: the Xilinx IP pins (vivado_stub.py),
the PYNQ-Z2 pins of the board's master constraints (PYNQ_Z2_PINS below), the
register map's extent, the wrapper's ports and attributes.
"""

import re
import subprocess

import pytest

from bioloop.boards.build import generate
from bioloop.host.layouts import FCLK_HZ
from bioloop.host.regmap import RegisterMap

from vivado_stub import VivadoStub, parse_wrapper

#: Xilinx/PYNQ boards/Pynq-Z2/base/vivado/constraints/base.xdc: the user LEDs and the two
#: PMOD headers, pin -> (port in base.xdc, I/O standard). Typed from that file.
PYNQ_Z2_PINS = {
    "R14": ("leds_4bits_tri_o[0]", "LVCMOS33"), "P14": ("leds_4bits_tri_o[1]", "LVCMOS33"),
    "N16": ("leds_4bits_tri_o[2]", "LVCMOS33"), "M14": ("leds_4bits_tri_o[3]", "LVCMOS33"),
    "Y18": ("pmoda_rpi_gpio_tri_io[0]", "LVCMOS33"), "Y19": ("pmoda_rpi_gpio_tri_io[1]", "LVCMOS33"),
    "Y16": ("pmoda_rpi_gpio_tri_io[2]", "LVCMOS33"), "Y17": ("pmoda_rpi_gpio_tri_io[3]", "LVCMOS33"),
    "U18": ("pmoda_rpi_gpio_tri_io[4]", "LVCMOS33"), "U19": ("pmoda_rpi_gpio_tri_io[5]", "LVCMOS33"),
    "W18": ("pmoda_rpi_gpio_tri_io[6]", "LVCMOS33"), "W19": ("pmoda_rpi_gpio_tri_io[7]", "LVCMOS33"),
    "W14": ("pmodb_gpio_tri_io[0]", "LVCMOS33"), "Y14": ("pmodb_gpio_tri_io[1]", "LVCMOS33"),
    "T11": ("pmodb_gpio_tri_io[2]", "LVCMOS33"), "T10": ("pmodb_gpio_tri_io[3]", "LVCMOS33"),
    "V16": ("pmodb_gpio_tri_io[4]", "LVCMOS33"), "W16": ("pmodb_gpio_tri_io[5]", "LVCMOS33"),
    "V12": ("pmodb_gpio_tri_io[6]", "LVCMOS33"), "W13": ("pmodb_gpio_tri_io[7]", "LVCMOS33"),
}
#: Xilinx/PYNQ boards/Pynq-Z2/petalinux_bsp/hardware_project/pynqz2.tcl: the DDR3 device.
PYNQ_Z2_DDR_PART = "MT41J256M16 RE-125"

pytestmark = pytest.mark.xdist_group("boards_vivado_script")

PARAMS = [(8, 4, 2), (8, 32, 2)]     # 4 lanes all on LEDs; 32 lanes, 20 with pins


@pytest.fixture(scope="module", params=PARAMS, ids=lambda p: "N{}K{}F{}".format(*p))
def folder(request, tmp_path_factory):
    N, K, F = request.param
    root = tmp_path_factory.mktemp("build") / "pynq-z2"
    return generate(root, N=N, K=K, F=F), (N, K, F)


def _run(folder, board_part=""):
    built, _ = folder
    ports = parse_wrapper((built.root / "hdl" / "bioloop_core.v").read_text(), "bioloop_core")
    stub = VivadoStub(built.root, ports, "bioloop_core", board_part=board_part)
    stub.source(built.script)
    return stub, ports


@pytest.fixture(scope="module", params=["no board files", "board files"])
def sourced(request, folder):
    board_part = "tul.com.tw:pynq-z2:part0:1.0" if request.param == "board files" else ""
    stub, ports = _run(folder, board_part)
    return stub, ports, folder[1]


def _fanout(stub, source):
    """Every pin on a net whose first end is ``source``."""
    return {p for net in stub.nets if net[0] == source for p in net[1:]}


def test_runs_to_the_end_with_existing_pins_only(sourced):
    stub, _, _ = sourced
    assert stub.errors == []
    assert stub.project_props["part"] == "xc7z020clg400-1"
    assert stub.launched == ("impl_1", "write_bitstream")
    assert stub.puts and stub.puts[-1].startswith("bioloop: overlay written")
    names = [c[0] for c in stub.calls]
    assert names.index("validate_bd_design") > max(i for i, n in enumerate(names) if n.startswith("connect_"))
    assert names.index("validate_bd_design") < names.index("make_wrapper") < names.index("launch_runs")
    assert "report_utilization" in names and "report_timing_summary" in names


def test_bit_and_hwh_side_by_side_nothing_outside(sourced, folder):
    stub, _, _ = sourced
    built, _ = folder
    root = built.root.resolve()
    assert all(p.is_relative_to(root) for p in stub.written)
    assert (root / "overlay" / "bioloop.bit").read_text() == "stub bioloop_wrapper.bit\n"
    assert (root / "overlay" / "bioloop.hwh").read_text() == "stub bioloop.hwh\n"
    for report in ("utilization.rpt", "timing_summary.rpt"):
        assert any(c[0].startswith("report_") and str(root / "reports" / report) in c[1] for c in stub.calls)


def test_blocks_and_buses(sourced):
    stub, ports, _ = sourced
    assert stub.cells["bioloop_core_0"]["module"] == "bioloop_core"
    dma = stub.cells["axi_dma_0"]["config"]
    assert dma["c_include_sg"] == "0"
    nets = {frozenset(n) for n in stub.intf_nets}
    for a, b in [("ps7/M_AXI_GP0", "ctrl_interconnect/S00_AXI"),
                 ("ctrl_interconnect/M00_AXI", "bioloop_core_0/s_axi"),
                 ("ctrl_interconnect/M01_AXI", "axi_dma_0/S_AXI_LITE"),
                 ("axi_dma_0/M_AXIS_MM2S", "bioloop_core_0/s_axis_samples"),
                 ("bioloop_core_0/m_axis_aer", "axi_dma_0/S_AXIS_S2MM"),
                 ("mem_interconnect/M00_AXI", "ps7/S_AXI_HP0")]:
        assert frozenset((a, b)) in nets, (a, b)
    ps7 = stub.cells["ps7"]["config"]
    assert ps7["PCW_USE_M_AXI_GP0"] == "1" and ps7["PCW_USE_S_AXI_HP0"] == "1"
    assert ps7["PCW_S_AXI_HP0_DATA_WIDTH"] == "64"
    assert {"ps7/DDR", "ps7/FIXED_IO"} <= stub.external


def test_stream_widths_agree_with_the_core(sourced):
    stub, ports, _ = sourced
    dma = stub.cells["axi_dma_0"]["config"]
    assert int(dma["c_m_axis_mm2s_tdata_width"]) == ports["s_axis_samples_tdata"].width == 32
    assert int(dma["c_s_axis_s2mm_tdata_width"]) == ports["m_axis_aer_tdata"].width == 64
    for name in ("s_axis_samples_tdata", "m_axis_aer_tdata"):
        param = next(p.attrs["X_INTERFACE_PARAMETER"] for p in ports.values()
                     if "X_INTERFACE_PARAMETER" in p.attrs
                     and name.rsplit("_", 1)[0] in p.attrs["X_INTERFACE_PARAMETER"].split(",")[0])
        assert int(re.search(r"TDATA_NUM_BYTES (\d+)", param).group(1)) * 8 == ports[name].width


def test_one_100_mhz_clock(sourced):
    stub, ports, _ = sourced
    ps7 = stub.cells["ps7"]["config"]
    assert float(ps7["PCW_FPGA0_PERIPHERAL_FREQMHZ"]) * 1e6 == FCLK_HZ == 100_000_000
    assert all(ps7[f"PCW_EN_CLK{i}_PORT"] == "0" for i in (1, 2, 3))
    clocked = _fanout(stub, "ps7/FCLK_CLK0")
    clock_pins = set()
    for net in stub.nets:
        clock_pins |= {p for p in net if re.search(r"(?i)(aclk|/clk|sync_clk)$", p)}
    assert clock_pins - {"ps7/FCLK_CLK0"} == clocked
    assert {"bioloop_core_0/clk", "axi_dma_0/s_axi_lite_aclk", "axi_dma_0/m_axi_mm2s_aclk",
            "axi_dma_0/m_axi_s2mm_aclk", "ps7/M_AXI_GP0_ACLK", "ps7/S_AXI_HP0_ACLK"} <= clocked
    clk = ports["clk"].attrs["X_INTERFACE_PARAMETER"]
    assert f"FREQ_HZ {FCLK_HZ}" in clk
    assert set(re.search(r"ASSOCIATED_BUSIF ([\w:]+)", clk).group(1).split(":")) == \
        {"s_axi", "s_axis_samples", "m_axis_aer"}


def test_active_high_reset(sourced):
    stub, ports, _ = sourced
    assert "bioloop_core_0/rst" in _fanout(stub, "rst_fclk0/peripheral_reset")
    assert "rst_fclk0/ext_reset_in" in _fanout(stub, "ps7/FCLK_RESET0_N")
    assert "POLARITY ACTIVE_HIGH" in ports["rst"].attrs["X_INTERFACE_PARAMETER"]


def test_csr_segment_covers_the_map(sourced):
    stub, ports, (N, K, F) = sourced
    regmap = RegisterMap(N, K, F)
    end = max([t.offset + t.size for t in regmap.tables] + [r.offset + 4 for r in regmap.registers])
    csr = [a for a in stub.addresses if a["seg"] == "bioloop_core_0/s_axi/reg0"]
    assert len(csr) == 1 and csr[0]["space"] == "ps7/Data"
    rng = int(csr[0]["range"], 0)
    assert int(csr[0]["offset"], 0) == 0x4000_0000
    assert rng >= end and rng & (rng - 1) == 0 and rng >= 4096
    assert 1 << ports["s_axi_awaddr"].width >= end
    dma = {a["space"] for a in stub.addresses if a["seg"] == "ps7/S_AXI_HP0/HP0_DDR_LOWOCM"}
    assert dma == {"axi_dma_0/Data_MM2S", "axi_dma_0/Data_S2MM"}


def test_ps_configured_without_board_files(folder):
    stub, _ = _run(folder, board_part="")
    ps7 = stub.cells["ps7"]["config"]
    assert "preset" not in stub.cells["ps7"]
    assert ps7["PCW_UIPARAM_DDR_PARTNO"] == PYNQ_Z2_DDR_PART
    assert ps7["PCW_UART0_UART0_IO"] == "MIO 14 .. 15"
    stub, _ = _run(folder, board_part="tul.com.tw:pynq-z2:part0:1.0")
    assert stub.cells["ps7"]["preset"] == "board"
    assert stub.project_props["board_part"] == "tul.com.tw:pynq-z2:part0:1.0"


def test_constraints_pins_are_pynq_z2_pins_on_existing_ports(sourced, folder):
    stub, ports, (N, K, F) = sourced
    built, _ = folder
    xdc = (built.root / "constraints" / "bioloop.xdc").read_text()
    assert "Xilinx/PYNQ boards/Pynq-Z2/base/vivado/constraints/base.xdc" in xdc
    found = re.findall(r"set_property -dict \{PACKAGE_PIN (\w+) IOSTANDARD (\w+)\} "
                       r"\[get_ports \{(\w+)(?:\[(\d+)\])?\}\]", xdc)
    assert len(found) == min(K, 20) == stub.ports["led"] == ports["led"].width
    pins = [pin for pin, *_ in found]
    assert len(set(pins)) == len(pins)
    for pin, std, port, index in found:
        assert pin in PYNQ_Z2_PINS and std == PYNQ_Z2_PINS[pin][1]
        assert port == "led" and int(index or 0) < stub.ports["led"]
    # LD0..LD3 carry lanes 0..3.
    assert [PYNQ_Z2_PINS[p][0] for p in pins[:4]] == [f"leds_4bits_tri_o[{i}]" for i in range(min(K, 4))]
    assert _fanout(stub, "bioloop_core_0/led") == {"led"}
    # Every constrained port exists in the design: nothing else is constrained.
    assert len(re.findall(r"get_ports", xdc)) == len(found)


def test_wrapper_lints_in_verilator(folder):
    from bioloop.sim.runner import toolchain_env
    built, _ = folder
    import os
    waivers = __import__("bioloop.gateware.export", fromlist=["ROOT"]).ROOT / "sim" / "verilator_waivers.vlt"
    res = subprocess.run(["verilator", "--lint-only", "-Wall", str(waivers),
                          str(built.root / "hdl" / "core.v"), str(built.root / "hdl" / "bioloop_core.v"),
                          "--top-module", "bioloop_core"],
                         capture_output=True, text=True, env={**os.environ, **toolchain_env()})
    assert res.returncode == 0 and "%Warning" not in res.stderr, res.stderr[-3000:]
