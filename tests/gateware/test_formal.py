"""The formal runner (bioloop.sim.formal) on a toy design whose truth is known by hand."""

import inspect

import pytest
from amaranth import Elaboratable, Module, Mux, Signal
from amaranth.asserts import AnyConst, AnySeq
from amaranth.hdl import Assert

from bioloop.sim import formal
from bioloop.sim.formal import FormalToolMissing, prove, tools_available

needs_tools = pytest.mark.skipif(bool(tools_available()),
                                 reason=f"formal tools missing: {', '.join(tools_available())} "
                                        "(pip install 'bioloop[formal]')")


class Burst(Elaboratable):
    """Output high for at most ``cap`` consecutive cycles (``slack`` = 1 makes it one cycle looser)."""

    def __init__(self, cap, slack=0):
        self.cap, self.slack = cap, slack
        self.assert_line = None

    def elaborate(self, platform):
        m = Module()
        limit = AnyConst(4)
        cnt, out, run = Signal(4), Signal(), Signal(5)
        go = AnySeq(1) & (cnt < Mux(limit > self.cap, self.cap, limit) + self.slack)
        m.d.sync += [cnt.eq(Mux(go, cnt + 1, 0)), out.eq(go), run.eq(Mux(out, run + 1, 0))]
        self.assert_line = inspect.currentframe().f_lineno + 1
        m.d.comb += Assert(run <= self.cap)
        return m


@needs_tools
def test_a_true_property_is_proved_by_induction(tmp_path):
    r = prove(Burst(5), name="burst", depth=8, workdir=tmp_path)
    assert r.status == "pass" and r.proved and not r.failures, r.describe()
    assert "k-induction" in r.log


@needs_tools
def test_a_false_property_fails_with_its_source_line_step_and_trace(tmp_path):
    design = Burst(5, slack=1)
    r = prove(design, name="burst_looser", depth=8, workdir=tmp_path)
    assert r.status == "fail", r.describe()
    base = [f for f in r.failures if f.phase == "basecase"]
    assert base, r.describe()
    assert base[0].source == f"{__file__}:{design.assert_line}"
    assert base[0].step == 7            # 6 lit cycles need 1 + 6 steps from reset
    assert base[0].trace.is_file() and base[0].trace.read_text().startswith("$")


@needs_tools
def test_bmc_is_bounded(tmp_path):
    # The looser design fails only at step 7: a bound of 5 cycles cannot see it.
    r = prove(Burst(5, slack=1), name="burst_bmc", depth=5, workdir=tmp_path, mode="bmc")
    assert r.status == "pass" and r.mode == "bmc", r.describe()


def test_bad_arguments_and_missing_tools(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="mode must be"):
        prove(Burst(5), name="x", depth=4, workdir=tmp_path, mode="magic")
    with pytest.raises(ValueError, match="depth must be a positive integer"):
        prove(Burst(5), name="x", depth=0, workdir=tmp_path)
    monkeypatch.setattr(formal, "tools_available", lambda: ["yowasp-sby"])
    with pytest.raises(FormalToolMissing, match=r"yowasp-sby.*bioloop\[formal\]"):
        prove(Burst(5), name="x", depth=4, workdir=tmp_path)


@needs_tools
def test_a_bmc_failure_names_its_source_line_and_trace(tmp_path):
    design = Burst(5, slack=1)
    r = prove(design, name="burst_bmc_fail", depth=8, workdir=tmp_path, mode="bmc")
    assert r.status == "fail", r.describe()
    assert r.failures and r.failures[0].phase == "basecase" and r.failures[0].step == 7
    assert r.failures[0].source == f"{__file__}:{design.assert_line}" and r.failures[0].trace.is_file()


@needs_tools
def test_a_timeout_ends_the_proof_and_says_so(tmp_path):
    r = prove(Burst(5), name="burst_timeout", depth=8, workdir=tmp_path, timeout_s=0.01)
    assert r.status == "timeout" and not r.proved and r.seconds < 30, r.describe()


@needs_tools
def test_cpu_time_is_reported(tmp_path):
    r = prove(Burst(5), name="burst_cpu", depth=8, workdir=tmp_path)
    assert r.proved and 0 < r.cpu_seconds and "CPU" in r.describe(), r.describe()
