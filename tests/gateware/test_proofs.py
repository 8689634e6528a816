"""Formal proofs of the gateware's safety properties (bioloop.sim.proofs), each with a mutant that must fail.

Small sizes here (seconds each); the default sizes run under BIOLOOP_LONG=1 (make test-long).
See docs/verification.md for what is proved, at which sizes, and what is only tested.
"""

import os

import pytest

from bioloop.gateware.safety import Safety
from bioloop.sim.formal import prove, tools_available
from bioloop.sim.proofs import SafetyCaps, looser_safety

pytestmark = pytest.mark.skipif(bool(tools_available()),
                                reason=f"formal tools missing: {', '.join(tools_available())} "
                                       "(pip install 'bioloop[formal]')")

LONG = os.environ.get("BIOLOOP_LONG") == "1"
#: K, pulse_bits, duty_window, limit_pulse, limit_duty: small enough for k-induction in seconds.
SMALL = dict(n_lanes=4, pulse_bits=4, duty_window=8, limit_pulse=5, limit_duty=4)


@pytest.mark.parametrize("cap", ["pulse", "lanes"])
def test_safety_cap_is_proved_and_its_mutant_fails(cap, tmp_path):
    proof = prove(SafetyCaps(Safety(**SMALL), caps=(cap,)), name=f"safety_{cap}", depth=8, workdir=tmp_path)
    assert proof.proved, proof.describe()
    mutant = prove(SafetyCaps(looser_safety(Safety(**SMALL)), caps=(cap,)), name=f"mutant_{cap}",
                   depth=8, workdir=tmp_path)
    assert mutant.status == "fail", mutant.describe()
    first = mutant.failures[0]
    assert first.phase == "basecase" and first.source.endswith(".py:" + first.source.rsplit(":", 1)[1])
    assert "proofs.py" in first.source and first.trace.is_file()
