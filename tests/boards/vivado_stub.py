"""A recording stand-in for Vivado's Tcl commands, for sourcing build.tcl in ``tkinter.Tcl()``.

Every Vivado command the script may call is a Python stub that records its
arguments and checks them against what exists: the Xilinx IP the design
instantiates (pins and interfaces below, from the product guides) and the
module reference (the ports and ``X_INTERFACE_INFO`` attributes parsed from
the generated wrapper). A command that is not stubbed is an error in Tcl, so
the script must use nothing else. Tcl's own ``file`` and ``open`` are
wrapped to record every path written.

The IP facts are written down here independently of ``bioloop.boards``:
- processing_system7 5.5 (PG082): interfaces M_AXI_GP0 (when
  PCW_USE_M_AXI_GP0), S_AXI_HP0 (when PCW_USE_S_AXI_HP0), DDR, FIXED_IO;
  pins FCLK_CLK0..3 (when PCW_EN_CLKn_PORT), FCLK_RESET0_N (PCW_EN_RST0_PORT),
  M_AXI_GP0_ACLK, S_AXI_HP0_ACLK; address space Data; segment
  S_AXI_HP0/HP0_DDR_LOWOCM.
- axi_dma 7.1 (PG021): S_AXI_LITE, M_AXI_MM2S, M_AXIS_MM2S (c_include_mm2s),
  M_AXI_S2MM, S_AXIS_S2MM (c_include_s2mm), M_AXI_SG (c_include_sg); pins
  s_axi_lite_aclk, m_axi_mm2s_aclk, m_axi_s2mm_aclk, m_axi_sg_aclk (SG only),
  axi_resetn, mm2s_introut, s2mm_introut; address spaces Data_MM2S,
  Data_S2MM (Data_SG with SG); segment S_AXI_LITE/Reg.
- proc_sys_reset 5.0 (PG164): slowest_sync_clk, ext_reset_in, aux_reset_in,
  mb_debug_sys_rst, dcm_locked, mb_reset, bus_struct_reset,
  peripheral_reset, interconnect_aresetn, peripheral_aresetn.
- axi_interconnect 2.1 (PG059): Sxx_AXI / Mxx_AXI for xx below NUM_SI /
  NUM_MI (defaults 1 and 2), ACLK, ARESETN, Sxx_ACLK, Sxx_ARESETN, Mxx_ACLK,
  Mxx_ARESETN.
"""

from __future__ import annotations

import re
import tkinter
from dataclasses import dataclass, field
from pathlib import Path


def _flag(cfg, key, default):
    return str(cfg.get(key, default)) in ("1", "true", "True")


def ps7_ports(cfg):
    intf = {"DDR", "FIXED_IO"}
    if _flag(cfg, "PCW_USE_M_AXI_GP0", 1):
        intf.add("M_AXI_GP0")
    if _flag(cfg, "PCW_USE_S_AXI_HP0", 0):
        intf.add("S_AXI_HP0")
    pins = {f"FCLK_CLK{i}" for i in range(4) if _flag(cfg, f"PCW_EN_CLK{i}_PORT", i == 0)}
    if _flag(cfg, "PCW_EN_RST0_PORT", 1):
        pins.add("FCLK_RESET0_N")
    if "M_AXI_GP0" in intf:
        pins.add("M_AXI_GP0_ACLK")
    if "S_AXI_HP0" in intf:
        pins.add("S_AXI_HP0_ACLK")
    segs = {"S_AXI_HP0/HP0_DDR_LOWOCM"} if "S_AXI_HP0" in intf else set()
    return intf, pins, {"Data"}, segs


def dma_ports(cfg):
    intf, pins, spaces = {"S_AXI_LITE"}, {"s_axi_lite_aclk", "axi_resetn"}, set()
    if _flag(cfg, "c_include_mm2s", 1):
        intf |= {"M_AXI_MM2S", "M_AXIS_MM2S"}
        pins |= {"m_axi_mm2s_aclk", "mm2s_introut"}
        spaces.add("Data_MM2S")
    if _flag(cfg, "c_include_s2mm", 1):
        intf |= {"M_AXI_S2MM", "S_AXIS_S2MM"}
        pins |= {"m_axi_s2mm_aclk", "s2mm_introut"}
        spaces.add("Data_S2MM")
    if _flag(cfg, "c_include_sg", 1):
        intf.add("M_AXI_SG")
        pins.add("m_axi_sg_aclk")
        spaces.add("Data_SG")
    return intf, pins, spaces, {"S_AXI_LITE/Reg"}


def reset_ports(cfg):
    return set(), {"slowest_sync_clk", "ext_reset_in", "aux_reset_in", "mb_debug_sys_rst",
                   "dcm_locked", "mb_reset", "bus_struct_reset", "peripheral_reset",
                   "interconnect_aresetn", "peripheral_aresetn"}, set(), set()


def interconnect_ports(cfg):
    si, mi = int(cfg.get("NUM_SI", 1)), int(cfg.get("NUM_MI", 2))
    intf = {f"S{i:02d}_AXI" for i in range(si)} | {f"M{i:02d}_AXI" for i in range(mi)}
    pins = {"ACLK", "ARESETN"}
    for side, n in (("S", si), ("M", mi)):
        for i in range(n):
            pins |= {f"{side}{i:02d}_ACLK", f"{side}{i:02d}_ARESETN"}
    return intf, pins, set(), set()


XILINX_IP = {
    "xilinx.com:ip:processing_system7": ps7_ports,
    "xilinx.com:ip:axi_dma": dma_ports,
    "xilinx.com:ip:proc_sys_reset": reset_ports,
    "xilinx.com:ip:axi_interconnect": interconnect_ports,
}


@dataclass
class VerilogPort:
    name: str
    direction: str
    width: int
    attrs: dict = field(default_factory=dict)


def parse_wrapper(text: str, module: str) -> dict[str, VerilogPort]:
    """The ports of ``module`` with the attributes written before each (ANSI port list)."""
    start = text.index(f"module {module} (")
    header = text[start:text.index(");", start)]
    ports, attrs = {}, {}
    for line in header.splitlines()[1:]:
        line = line.strip().rstrip(",")
        m = re.fullmatch(r'\(\*\s*(\w+)\s*=\s*"([^"]*)"\s*\*\)', line)
        if m:
            attrs[m.group(1)] = m.group(2)
            continue
        m = re.fullmatch(r"(input|output)\s+wire\s+(?:\[(\d+):0\]\s+)?(\w+)", line)
        assert m, f"unparsed wrapper line {line!r}"
        width = int(m.group(2)) + 1 if m.group(2) else 1
        ports[m.group(3)] = VerilogPort(m.group(3), m.group(1), width, attrs)
        attrs = {}
    return ports


def module_ref_ports(ports: dict[str, VerilogPort]):
    """Interfaces and pins IP integrator infers for a module reference from the attributes."""
    intf, members = {}, set()
    for p in ports.values():
        info = p.attrs.get("X_INTERFACE_INFO")
        if info and not info.startswith("xilinx.com:signal:"):
            vlnv, name, logical = info.split()
            intf.setdefault(name, {"vlnv": vlnv, "ports": {}})["ports"][logical] = p
            members.add(p.name)
    pins = {name for name in ports if name not in members}
    return intf, pins


class VivadoStub:
    """Sources a script with every Vivado command stubbed; see the module docstring."""

    def __init__(self, folder: Path, wrapper_ports: dict[str, VerilogPort], module: str,
                 board_part: str = ""):
        self.folder = Path(folder).resolve()
        self.module = module
        self.ref_intf, self.ref_pins = module_ref_ports(wrapper_ports)
        self.board_part = board_part
        self.errors: list[str] = []
        self.calls: list[tuple] = []
        self.cells: dict[str, dict] = {}       # name -> {"vlnv" | "module", "config"}
        self.ports: dict[str, int] = {}        # top-level BD ports -> width
        self.external: set[str] = set()        # interface pins made external
        self.intf_nets: list[tuple[str, str]] = []
        self.nets: list[list[str]] = []
        self.addresses: list[dict] = []
        self.written: list[Path] = []          # every path the script (or Vivado) writes
        self.project_props: dict[str, str] = {}
        self.added_files: list[tuple[str, Path]] = []
        self.puts: list[str] = []
        self.tcl = tkinter.Tcl()
        for name in ("create_project", "get_board_parts", "set_property", "get_property",
                     "current_project", "current_fileset", "add_files", "update_compile_order",
                     "create_bd_design", "create_bd_cell", "apply_bd_automation",
                     "make_bd_intf_pins_external", "get_bd_intf_pins", "get_bd_pins",
                     "connect_bd_intf_net", "connect_bd_net", "create_bd_port", "get_bd_ports",
                     "get_bd_addr_spaces", "get_bd_addr_segs", "assign_bd_address",
                     "validate_bd_design", "save_bd_design", "get_files", "make_wrapper",
                     "launch_runs", "wait_on_run", "get_runs", "open_run", "report_utilization",
                     "report_timing_summary", "get_timing_paths", "_record_write", "_record_puts"):
            self.tcl.createcommand(name, self._dispatch(name))
        # Tcl's own commands that write: record the destination, then do it.
        self.tcl.eval("""
            rename file _tcl_file
            proc file {sub args} {
                switch -- $sub {
                    mkdir  { foreach p $args { _record_write $p } }
                    copy - rename { _record_write [lindex $args end] }
                    delete { foreach p $args { if {[string index $p 0] ne "-"} { _record_write $p } } }
                    link - attributes { error "build.tcl must not call file $sub" }
                }
                return [uplevel 1 [list _tcl_file $sub {*}$args]]
            }
            rename open _tcl_open
            proc open {path {mode r} args} {
                if {[string match {*[wa+]*} $mode]} { _record_write $path }
                return [uplevel 1 [list _tcl_open $path $mode {*}$args]]
            }
            rename exec _tcl_exec
            proc exec {args} { error "build.tcl must not call exec" }
            rename puts _tcl_puts
            proc puts {args} { _record_puts [lindex $args end] }
        """)

    # -- plumbing --------------------------------------------------------------------------

    def _dispatch(self, name):
        method = getattr(self, "_" + name.lstrip("_"))

        def call(*args):
            self.calls.append((name, args))
            result = method(list(args))
            return "" if result is None else result
        return call

    def error(self, msg):
        self.errors.append(msg)

    def _inside(self, path) -> Path:
        p = Path(path)
        p = (p if p.is_absolute() else self.folder / p).resolve()
        if not p.is_relative_to(self.folder):
            self.error(f"writes outside the build folder: {p}")
        return p

    def source(self, script: Path):
        self.tcl.eval(f"source {{{Path(script).resolve()}}}")

    @staticmethod
    def _opts(args, flags=()):
        """Split Vivado-style ``-opt value`` pairs (``flags`` take no value) from positionals."""
        opts, pos, i = {}, [], 0
        while i < len(args):
            a = args[i]
            if a.startswith("-") and len(a) > 1 and not re.fullmatch(r"-?\d+(\.\d+)?", a):
                if a in flags:
                    opts[a] = True
                    i += 1
                else:
                    opts[a] = args[i + 1]
                    i += 2
            else:
                pos.append(a)
                i += 1
        return opts, pos

    def _ports_of(self, cell):
        c = self.cells[cell]
        if "module" in c:
            return set(self.ref_intf), set(self.ref_pins), set(), {f"{i}/reg0" for i in self.ref_intf
                                                                    if "aximm" in self.ref_intf[i]["vlnv"]}
        return XILINX_IP[c["vlnv"]](c["config"])

    def _split(self, path, kind):
        cell, _, rest = path.partition("/")
        if cell not in self.cells:
            self.error(f"{kind} {path}: no cell {cell}")
            return None, None
        return cell, rest

    # -- project and files -----------------------------------------------------------------

    def _create_project(self, args):
        opts, pos = self._opts(args, flags=("-force",))
        self._inside(pos[1])
        self.project_props["part"] = opts.get("-part")
        return pos[0]

    def _get_board_parts(self, args):
        opts, pos = self._opts(args, flags=("-quiet", "-latest_file_version"))
        return self.board_part

    def _current_project(self, args):
        return "project:bioloop"

    def _current_fileset(self, args):
        return "fileset:sources_1"

    def _add_files(self, args):
        opts, pos = self._opts(args, flags=("-norecurse",))
        for p in (self.tcl.splitlist(pos[0]) if len(pos) == 1 else pos):
            path = Path(p)
            if not path.is_relative_to(self.folder) and not path.resolve().is_relative_to(self.folder):
                self.error(f"add_files outside the build folder: {p}")
            if not path.exists() and "bioloop.gen" not in p and "bioloop.srcs" not in p:
                self.error(f"add_files of a missing file: {p}")
            self.added_files.append((opts.get("-fileset", "sources_1"), path))

    def _update_compile_order(self, args):
        pass

    def _set_property(self, args):
        if args[0] == "-dict":
            items, obj = self.tcl.splitlist(args[1]), args[2]
            pairs = list(zip(items[::2], items[1::2], strict=True))
        else:
            pairs, obj = [(args[0], args[1])], args[2]
        if obj.startswith("/"):
            cell = obj[1:]
            if cell not in self.cells:
                self.error(f"set_property on unknown cell {obj}")
                return
            for k, v in pairs:
                if not k.startswith("CONFIG."):
                    self.error(f"set_property {k} on {obj}")
                self.cells[cell]["config"][k[len("CONFIG."):]] = v
        else:
            for k, v in pairs:
                self.project_props[k] = v

    def _get_property(self, args):
        name, obj = args[0], args[1]
        if name == "PROGRESS":
            return "100%"
        if name == "DIRECTORY":
            return str(self.folder / "vivado" / "bioloop.runs" / "impl_1")
        if name == "SLACK":
            return "0.412"
        self.error(f"get_property {name} {obj} is not modelled")
        return ""

    def _get_files(self, args):
        return str(self.folder / "vivado" / "bioloop.srcs" / "sources_1" / "bd" / "bioloop" / args[-1])

    # -- block design ----------------------------------------------------------------------

    def _create_bd_design(self, args):
        self.bd = args[0]

    def _create_bd_cell(self, args):
        opts, pos = self._opts(args)
        name = pos[0]
        if name in self.cells:
            self.error(f"cell {name} created twice")
        if opts.get("-type") == "module":
            if opts.get("-reference") != self.module:
                self.error(f"module reference {opts.get('-reference')} is not the wrapper {self.module}")
            self.cells[name] = {"module": opts["-reference"], "config": {}}
        else:
            vlnv = opts.get("-vlnv", "")
            base = ":".join(vlnv.split(":")[:3])
            if base not in XILINX_IP:
                self.error(f"unknown IP {vlnv}")
            self.cells[name] = {"vlnv": base, "config": {}}
        return "/" + name

    def _apply_bd_automation(self, args):
        opts, pos = self._opts(args)
        if opts.get("-rule") != "xilinx.com:bd_rule:processing_system7":
            self.error(f"unexpected automation {opts.get('-rule')}")
        cfg = opts.get("-config", "")
        if "apply_board_preset" in cfg and not self.board_part:
            self.error("board preset applied without board files")
        self.cells[pos[0].lstrip("/")]["preset"] = "board"
        self.external |= {"ps7/DDR", "ps7/FIXED_IO"}

    def _make_bd_intf_pins_external(self, args):
        for handle in args:
            self.external.add(handle.split(":", 1)[1])

    def _get_bd_intf_pins(self, args):
        path = args[-1]
        cell, rest = self._split(path, "interface")
        if cell is not None and rest not in self._ports_of(cell)[0]:
            self.error(f"no interface {rest} on {cell} ({self._ports_of(cell)[0]})")
        return "intf:" + path

    def _get_bd_pins(self, args):
        path = args[-1]
        cell, rest = self._split(path, "pin")
        if cell is not None and rest not in self._ports_of(cell)[1]:
            self.error(f"no pin {rest} on {cell}")
        return "pin:" + path

    def _connect_bd_intf_net(self, args):
        a, b = [x for x in args if x.startswith("intf:")]
        self.intf_nets.append((a[5:], b[5:]))

    def _connect_bd_net(self, args):
        ends = [x.split(":", 1)[1] for x in args if x.startswith(("pin:", "port:"))]
        self.nets.append(ends)

    def _create_bd_port(self, args):
        opts, pos = self._opts(args)
        width = int(opts["-from"]) - int(opts.get("-to", 0)) + 1 if "-from" in opts else 1
        self.ports[pos[0]] = width

    def _get_bd_ports(self, args):
        if args[-1] not in self.ports:
            self.error(f"no top-level port {args[-1]}")
        return "port:" + args[-1]

    def _get_bd_addr_spaces(self, args):
        cell, rest = self._split(args[-1], "address space")
        if cell is not None and rest not in self._ports_of(cell)[2]:
            self.error(f"no address space {rest} on {cell}")
        return "space:" + args[-1]

    def _get_bd_addr_segs(self, args):
        cell, rest = self._split(args[-1], "address segment")
        if cell is not None and rest not in self._ports_of(cell)[3]:
            self.error(f"no address segment {rest} on {cell}")
        return "seg:" + args[-1]

    def _assign_bd_address(self, args):
        opts, pos = self._opts(args, flags=("-force",))
        self.addresses.append({"offset": opts.get("-offset"), "range": opts.get("-range"),
                               "space": opts.get("-target_address_space", "")[6:],
                               "seg": pos[0][4:] if pos else None})

    def _validate_bd_design(self, args):
        pass

    def _save_bd_design(self, args):
        self._inside(self.folder / "vivado")

    def _make_wrapper(self, args):
        path = self.folder / "vivado" / "bioloop.gen" / "sources_1" / "bd" / "bioloop" / "hdl" / "bioloop_wrapper.v"
        self._inside(path)
        return str(path)

    # -- runs ------------------------------------------------------------------------------

    def _launch_runs(self, args):
        opts, pos = self._opts(args)
        self.launched = (pos[0], opts.get("-to_step"))

    def _wait_on_run(self, args):
        # What Vivado leaves behind: the bitstream and the hardware handoff, inside vivado/.
        for rel in ("vivado/bioloop.runs/impl_1/bioloop_wrapper.bit",
                    "vivado/bioloop.gen/sources_1/bd/bioloop/hw_handoff/bioloop.hwh"):
            p = self.folder / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(f"stub {p.name}\n")

    def _get_runs(self, args):
        return args[-1]

    def _open_run(self, args):
        pass

    def _report_utilization(self, args):
        opts, _ = self._opts(args)
        self._inside(opts["-file"])

    _report_timing_summary = _report_utilization

    def _get_timing_paths(self, args):
        return "path:worst"

    # -- Tcl builtins ----------------------------------------------------------------------

    def _record_write(self, args):
        self.written.append(self._inside(args[0]))

    def _record_puts(self, args):
        self.puts.append(args[0])
