"""Block models share one verb; facts of the contract are written once."""

import re
from pathlib import Path

import numpy as np
import pytest

from bioloop.host import layouts as L
from bioloop.host.models.aer_encoder import AEREncoder
from bioloop.host.models.aer_merge import AERMerge
from bioloop.host.models.aer_path import AERPath
from bioloop.host.models.aer_router import AERRouter
from bioloop.host.models.clocked import Clocked
from bioloop.host.models.core import Core
from bioloop.host.models.detector import Detector
from bioloop.host.models.homeostasis import Homeostasis
from bioloop.host.models.safety import Safety
from bioloop.host.models.stim_unit import StimUnit
from bioloop.host.models.stochastic_lanes import StochasticLanes
from bioloop.host.regmap import RegisterMap

ROOT = Path(__file__).resolve().parents[2]

MODELS = [
    lambda: Detector(4), lambda: AEREncoder(4), lambda: AERRouter(4, 2), lambda: AERPath(4, 2),
    lambda: StimUnit(3), lambda: StochasticLanes(3), lambda: Homeostasis(3),
    lambda: Safety(3, 100, 10, 50, 3), lambda: Core(4, 3, 2), lambda: AERMerge(),
]


@pytest.mark.parametrize("make", MODELS)
def test_every_block_model_steps(make):
    model = make()
    assert isinstance(model, Clocked)
    for old in ("clock", "beat", "edge"):
        assert not callable(getattr(model, old, None)), f"{type(model).__name__}.{old} is another verb for step"


def test_lanes_step_is_one_cycle_of_run():
    a, b = StochasticLanes(5), StochasticLanes(5)
    codes = [0, 1, 30000, 65535, 40000]
    want = a.run(codes, 50)
    got = np.array([b.step(codes) for _ in range(50)])
    assert np.array_equal(got, want)
    b.reset()
    assert np.array_equal(b.step(codes), want[0])


# -- facts written once ----------------------------------------------------------------

#: (pattern of a definition with a literal, the one file allowed to hold it)
DEFINITIONS = [
    (r"=\s*7919\b|\b7919\s*\*\s*[a-z(]", "host/models/stochastic_lanes.py"),
    (r"\bPROBE_OFFSET\s*=\s*\d", "host/layouts.py"),
    (r"\bLATENCY_BITS\s*=\s*\d", "host/layouts.py"),
    (r"\b(HOMEO_)?(COUNT|TARGET|GAIN|SHIFT|WINDOW)_BITS\s*=\s*\d", "host/layouts.py"),
    (r"\bTHETA_(MIN|MAX|INIT)(_Q88)?\s*=\s*\d", "host/layouts.py"),
    (r"theta_(min|max|init)\s*:\s*int\s*=\s*\d", None),
    (r"\b4\s*<=\s*ts_bits", None),
    (r"\bTS_BITS_MIN\s*=\s*\d", "host/parameters.py"),
    (r"_TAPS\s*=\s*\(", "host/models/stochastic_lanes.py"),
]


@pytest.mark.parametrize("pattern,home", DEFINITIONS)
def test_fact_is_defined_once(pattern, home):
    """A constant of the contract has one definition: gateware, models and the register map
    import it, so changing it in one place cannot leave another behind."""
    hits = []
    for folder in ("gateware", "host", "sim", "boards"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            text = "\n".join(line.split("#")[0] for line in path.read_text().splitlines())
            if re.search(pattern, text):
                hits.append(str(path.relative_to(ROOT)))
    assert hits == ([home] if home else []), hits


def test_register_map_uses_the_contract_widths():
    rm = RegisterMap()
    width = lambda name: rm.field(name)[1].width      # noqa: E731
    assert width("homeo_window") == L.HOMEO_WINDOW_BITS
    assert width("homeo_gain") == L.HOMEO_GAIN_BITS
    assert width("homeo_shift") == L.HOMEO_SHIFT_BITS
    assert width("latency_last") == width("latency_max") == L.LATENCY_BITS
    assert rm.field("theta_min")[1].reset == L.THETA_MIN
    assert rm.field("theta_max")[1].reset == L.THETA_MAX
    assert rm.table("homeo_target").fields[0].width == L.HOMEO_TARGET_BITS


def test_gateware_uses_the_contract_widths():
    from bioloop.gateware.homeostasis import Homeostasis as HomeostasisRTL
    h = HomeostasisRTL(4)
    assert len(h.window) == L.HOMEO_WINDOW_BITS and len(h.gain) == L.HOMEO_GAIN_BITS
    assert len(h.shift) == L.HOMEO_SHIFT_BITS
    assert h.theta_min.init == L.THETA_MIN and h.theta_max.init == L.THETA_MAX
    m = Homeostasis(4)
    assert (m.theta_min, m.theta_max) == (L.THETA_MIN, L.THETA_MAX)
    assert (m.theta == L.THETA_INIT).all()
