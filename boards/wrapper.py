"""The Vivado top of the core: bus names and interface attributes around ``core.v``.

Amaranth flattens the ports of :class:`~bioloop.gateware.core.Core` as
``s_axil__awaddr``, ``samples__payload`` and so on. The wrapper module
:data:`~bioloop.boards.pynq_z2.CORE_MODULE` gives them AXI names and marks
every bus with Vivado's ``X_INTERFACE_INFO`` / ``X_INTERFACE_PARAMETER``
attributes (UG994, "Inferring AXI interfaces" and "Vivado IP Integrator
interface attributes"), so IP integrator infers the buses from the
attributes instead of guessing from names:

- ``s_axi``: AXI4-Lite slave, 32-bit data, ``ADDR_WIDTH`` of the register map;
- ``s_axis_samples``: AXI4-Stream slave, TDATA 32 bits, TLAST;
- ``m_axis_aer``: AXI4-Stream master, TDATA 64 bits, TLAST;
- ``clk``: the clock of all three (``ASSOCIATED_BUSIF``), ``FREQ_HZ`` from
  :data:`~bioloop.boards.pynq_z2.FCLK0_HZ`;
- ``rst``: active-high reset (``POLARITY ACTIVE_HIGH``; Vivado assumes
  active-low otherwise);
- ``led``: the LED drive after Safety, lanes ``0 .. led_width-1``.

``make hdl`` writes it as ``hdl/bioloop_core.v`` (every lane on ``led``);
``bioloop build`` writes it with only the lanes the board has pins for.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Shape
from amaranth.lib.wiring import Out

from bioloop.gateware.csr import AXI4LiteSignature
from bioloop.host.regmap import DATA_BITS, RegisterMap

from .pynq_z2 import CORE_MODULE, FCLK0_HZ

__all__ = ["WrapperPort", "INTERFACES", "CLOCK", "RESET", "SAMPLE_BITS", "AER_BITS",
           "wrapper_ports", "top_wrapper"]

#: TDATA widths of the two streams (DESIGN.md §3).
SAMPLE_BITS = 32
AER_BITS = 64
CLOCK = "clk"
RESET = "rst"

_AXIMM = "xilinx.com:interface:aximm:1.0"
_AXIS = "xilinx.com:interface:axis:1.0"
#: Bus interface name -> (VLNV of its bus definition, mode).
INTERFACES = {
    "s_axi": (_AXIMM, "slave"),
    "s_axis_samples": (_AXIS, "slave"),
    "m_axis_aer": (_AXIS, "master"),
}


@dataclass(frozen=True)
class WrapperPort:
    """One port of the wrapper: Verilog name, direction, width, and its bus role."""
    name: str
    direction: str          # "input" | "output"
    width: int
    interface: str | None   # bus interface name, "clk"/"rst" for the signals, None for led
    logical: str | None     # logical port name in the bus definition (AWADDR, TDATA, CLK, ...)
    inner: str | None       # the Amaranth port it connects to (None: wired by hand)


def wrapper_ports(N: int = 64, K: int = 64, F: int = 16, *, led_width: int | None = None
                  ) -> list[WrapperPort]:
    """The wrapper's ports in declaration order (validates N, K, F through the register map)."""
    regmap = RegisterMap(N, K, F)
    led_width = K if led_width is None else led_width
    if not isinstance(led_width, int) or not 1 <= led_width <= K:
        raise ValueError(f"led_width must be 1..K = {K}, not {led_width!r}")
    ports = [WrapperPort(CLOCK, "input", 1, CLOCK, "CLK", "clk"),
             WrapperPort(RESET, "input", 1, RESET, "RST", "rst")]
    for member, flow in AXI4LiteSignature(regmap.addr_width).members.items():
        # Members that flow out of the master are inputs of this slave.
        ports.append(WrapperPort(f"s_axi_{member}", "input" if flow.flow == Out else "output",
                                 Shape.cast(flow.shape).width, "s_axi", member.upper(),
                                 f"s_axil__{member}"))
    ports += [
        WrapperPort("s_axis_samples_tdata", "input", SAMPLE_BITS, "s_axis_samples", "TDATA", None),
        WrapperPort("s_axis_samples_tlast", "input", 1, "s_axis_samples", "TLAST", None),
        WrapperPort("s_axis_samples_tvalid", "input", 1, "s_axis_samples", "TVALID", "samples__valid"),
        WrapperPort("s_axis_samples_tready", "output", 1, "s_axis_samples", "TREADY", "samples__ready"),
        WrapperPort("m_axis_aer_tdata", "output", AER_BITS, "m_axis_aer", "TDATA", None),
        WrapperPort("m_axis_aer_tlast", "output", 1, "m_axis_aer", "TLAST", None),
        WrapperPort("m_axis_aer_tvalid", "output", 1, "m_axis_aer", "TVALID", "aer__valid"),
        WrapperPort("m_axis_aer_tready", "input", 1, "m_axis_aer", "TREADY", "aer__ready"),
        WrapperPort("led", "output", led_width, None, None, None),
    ]
    return ports


def _interface_parameter(interface: str, regmap: RegisterMap) -> str:
    if interface == CLOCK:
        busifs = ":".join(INTERFACES)
        return (f"XIL_INTERFACENAME {CLOCK}, ASSOCIATED_BUSIF {busifs}, ASSOCIATED_RESET {RESET}, "
                f"FREQ_HZ {FCLK0_HZ}")
    if interface == RESET:
        return f"XIL_INTERFACENAME {RESET}, POLARITY ACTIVE_HIGH"
    if interface == "s_axi":
        return (f"XIL_INTERFACENAME s_axi, PROTOCOL AXI4LITE, DATA_WIDTH {DATA_BITS}, "
                f"ADDR_WIDTH {regmap.addr_width}, READ_WRITE_MODE READ_WRITE, FREQ_HZ {FCLK0_HZ}")
    width = SAMPLE_BITS if interface == "s_axis_samples" else AER_BITS
    return (f"XIL_INTERFACENAME {interface}, TDATA_NUM_BYTES {width // 8}, HAS_TLAST 1, "
            f"HAS_TREADY 1, HAS_TKEEP 0, HAS_TSTRB 0, TUSER_WIDTH 0, TID_WIDTH 0, TDEST_WIDTH 0, "
            f"FREQ_HZ {FCLK0_HZ}")


def top_wrapper(N: int = 64, K: int = 64, F: int = 16, *, led_width: int | None = None,
                inner: str = "core", name: str = CORE_MODULE) -> str:
    """Verilog of the top module that wraps ``inner`` (the Verilog of a ``Core(N, K, F)``).

    Parameters
    ----------
    led_width : int, optional
        Lanes brought out on ``led`` (default all K). Lanes ``led_width .. K-1``
        still run (their STIM words reach the host) but drive no output.
    """
    regmap = RegisterMap(N, K, F)
    ports = wrapper_ports(N, K, F, led_width=led_width)
    led_width = ports[-1].width
    decls, named, seen = [], [], set()
    for p in ports:
        attrs = []
        if p.interface in (CLOCK, RESET):
            vlnv = f"xilinx.com:signal:{'clock' if p.interface == CLOCK else 'reset'}:1.0"
            attrs.append(f'(* X_INTERFACE_INFO = "{vlnv} {p.name} {p.logical}" *)')
        elif p.interface is not None:
            attrs.append(f'(* X_INTERFACE_INFO = "{INTERFACES[p.interface][0]} {p.interface} '
                         f'{p.logical}" *)')
        if p.interface is not None and p.interface not in seen:
            seen.add(p.interface)
            attrs.append(f'(* X_INTERFACE_PARAMETER = "{_interface_parameter(p.interface, regmap)}" *)')
        rng = f"[{p.width - 1}:0] " if p.width > 1 else ""
        decls.append("".join(f"  {a}\n" for a in attrs) + f"  {p.direction} wire {rng}{p.name}")
        if p.inner is not None:
            named.append(f"    .{p.inner}({p.name})")
    named += ["    .samples__payload({s_axis_samples_tlast, s_axis_samples_tdata})",
              "    .aer__payload(aer_payload)"]
    body = [f"  wire [{AER_BITS}:0] aer_payload;",
            f"  assign m_axis_aer_tdata = aer_payload[{AER_BITS - 1}:0];",
            f"  assign m_axis_aer_tlast = aer_payload[{AER_BITS}];"]
    if led_width == K:
        named.append("    .led(led)")
    else:
        # Lanes without a pin: their drive is computed (and Safety counts it) but not brought out.
        body += ["  /* verilator lint_off UNUSEDSIGNAL */",
                 f"  wire [{K - 1}:0] led_all;",
                 "  /* verilator lint_on UNUSEDSIGNAL */",
                 f"  assign led = led_all[{led_width - 1}:0];"]
        named.append("    .led(led_all)")
    return "\n".join([
        f"// Generated by bioloop.boards.wrapper.top_wrapper (N={N}, K={K}, F={F}, "
        f"led_width={led_width}); do not edit.",
        f"module {name} (", ",\n".join(decls), ");", *body,
        f"  {inner} u_core (", ",\n".join(named), "  );", "endmodule", ""])
