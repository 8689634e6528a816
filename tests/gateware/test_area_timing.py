"""The LUT-level measure of issue 14's budget, on hand-built netlists (no Yosys needed)."""

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
