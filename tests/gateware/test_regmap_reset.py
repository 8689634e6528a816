"""The register map's reset values are what the core reads after reset (hdl/regmap.json is the truth
a user sees): every readable register and every θ, through the bus, on the model backend and on the
RTL (the compiled Verilator backend)."""

from __future__ import annotations

import json


from bioloop.gateware.export import ROOT
from bioloop.host.backends import ModelBus
from bioloop.host.regmap import RegisterMap

N, K, F = 64, 64, 16
JSON = json.loads((ROOT / "hdl" / "regmap.json").read_text())


def _expected():
    assert JSON["parameters"] == {"N": N, "K": K, "F": F}
    regs = {r["name"]: (r["offset"], r["reset"]) for r in JSON["registers"]}
    (theta,) = [t for t in JSON["tables"] if t["name"] == "theta"]
    return regs, [theta["fields"][0]["reset"]] * theta["depth"]


def _read_after_reset(bus):
    rm = RegisterMap(N, K, F)
    regs = {r.name: bus.read32(r.offset) for r in rm.registers}
    select, value = rm.register("theta_select").offset, rm.register("theta_value").offset
    thetas = []
    for k in range(K):
        bus.write32(select, k)
        thetas.append(bus.read32(value))
    return regs, thetas


def _check(bus):
    regs, thetas = _read_after_reset(bus)
    want_regs, want_thetas = _expected()
    wrong = {name: (hex(regs[name]), hex(reset)) for name, (_, reset) in want_regs.items()
             if regs[name] != reset}
    assert not wrong, f"read after reset differs from hdl/regmap.json (read, json): {wrong}"
    assert thetas == want_thetas
    return regs


def test_reset_values_on_the_model():
    regs = _check(ModelBus(N, K, F))
    # a few facts stated independently (DESIGN.md, docs/core.md)
    assert regs["theta_min"] == 64 and regs["theta_max"] == 512 and regs["theta_value"] == 256
    assert regs["safety_duty_window"] == 1_000_000


def test_reset_values_on_the_rtl(core_library):
    from bioloop.sim.verilator_bus import VerilatorBus
    _check(VerilatorBus(N, K, F, library=core_library))
