"""Every component checks its parameters through bioloop.host.parameters, with the model's
messages, and a refused component never also warns that it was not elaborated."""

import gc
import warnings

import pytest
from amaranth.hdl import UnusedElaboratable

from bioloop.gateware.aer_encoder import AEREncoder
from bioloop.gateware.aer_path import AERPath
from bioloop.gateware.aer_router import AERRouter
from bioloop.gateware.core import Core
from bioloop.gateware.csr import CSRBank
from bioloop.gateware.detector import Detector
from bioloop.gateware.homeostasis import Homeostasis
from bioloop.gateware.safety import Safety
from bioloop.gateware.stim_path import StimPath
from bioloop.gateware.stim_unit import StimUnit
from bioloop.gateware.stochastic_lanes import StochasticLanes
from bioloop.host.models import aer_encoder as m_enc, aer_path as m_path, aer_router as m_router, core as m_core
from bioloop.host.models import detector as m_det

REFUSED = [
    (lambda: AEREncoder(0), ValueError), (lambda: AEREncoder(8, ts_bits=3), ValueError),
    (lambda: AERRouter(8, 0), ValueError), (lambda: Detector(3), ValueError),
    (lambda: AERPath(8, 300), ValueError), (lambda: Core(8, 4, 0), ValueError),
    (lambda: Core(8, 4, 2, lane_mode="x"), ValueError), (lambda: CSRBank("map"), TypeError),
    (lambda: Homeostasis(0), ValueError), (lambda: Safety(0), ValueError),
    (lambda: StimPath(0), ValueError), (lambda: StimUnit(0), ValueError),
    (lambda: StochasticLanes(8, seed0=1 << 16), ValueError),
    (lambda: AEREncoder(8, cadence="queue", queue_depth=3), ValueError),
    (lambda: AERPath(8, 4, encoder_cadence="round"), ValueError),
    (lambda: Core(8, 4, 2, encoder_cadence="round"), ValueError),
]


@pytest.mark.parametrize("make,exc", REFUSED)
def test_refused_component_does_not_warn_unused(make, exc):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(exc):
            make()
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, UnusedElaboratable)]


@pytest.mark.parametrize("rtl,model", [
    (lambda: AEREncoder(5000), lambda: m_enc.AEREncoder(5000)),
    (lambda: AEREncoder(8, ts_bits=40), lambda: m_enc.AEREncoder(8, ts_bits=40)),
    (lambda: AERRouter(8, 257), lambda: m_router.AERRouter(8, 257)),
    (lambda: Detector(7), lambda: m_det.Detector(7)),
    (lambda: AEREncoder(8, cadence="queue", queue_depth=512),
     lambda: m_enc.AEREncoder(8, cadence="queue", queue_depth=512)),
    (lambda: AERPath(8, 4, encoder_cadence="round"), lambda: m_path.AERPath(8, 4, encoder_cadence="round")),
    (lambda: Core(8, 4, 2, encoder_cadence="round"), lambda: m_core.Core(8, 4, 2, encoder_cadence="round")),
])
def test_block_and_model_refuse_alike(rtl, model):
    with pytest.raises(ValueError) as a:
        rtl()
    with pytest.raises(ValueError) as b:
        model()
    assert str(a.value) == str(b.value)
