"""Formal proofs of the gateware (bioloop.sim.proofs.CATALOGUE), each with a mutant that must fail.

Small sizes here (seconds each); the default sizes that finish run under BIOLOOP_LONG=1 (make test-long).
See docs/verification.md for what is proved, at which sizes, and what is only tested.
"""

import pytest

from bioloop.sim.formal import tools_available
from bioloop.sim import proofs
from bioloop.sim.proofs import CATALOGUE, Mutant, Observer, attach

pytestmark = pytest.mark.skipif(bool(tools_available()),
                                reason=f"formal tools missing: {', '.join(tools_available())} "
                                       "(pip install 'bioloop[formal]')")

SMALL = [p for p in CATALOGUE if p.size == "small"]
LARGER = [p for p in CATALOGUE if p.size != "small"]     # "medium" and the blocks' "default" sizes


def _check(proof, tmp_path):
    result = proof.run(tmp_path)
    assert result.proved, result.describe()
    assert not result.failures


def test_catalogue_names_are_unique():
    assert len({p.name for p in CATALOGUE}) == len(CATALOGUE)


def _mutant_fails(proof, tmp_path):
    mutant = proof.run(tmp_path, mutant=True)
    assert mutant.status == "fail", mutant.describe()
    base = [f for f in mutant.failures if f.phase == "basecase"]
    # A real counterexample from reset (not only an unreachable induction state), with its source line and trace.
    assert base, mutant.describe()
    assert base[0].source.rsplit(":", 1)[1].isdigit() and base[0].step is not None and base[0].trace.is_file()
    # ... of the property itself (a harness assertion), not of a block's linking invariant.
    assert base[0].source.rsplit(":", 1)[0] == proofs.__file__, mutant.describe()


@pytest.mark.parametrize("proof", SMALL, ids=lambda p: p.name)
def test_small_proof_holds_and_its_mutant_fails(proof, tmp_path):
    _check(proof, tmp_path)
    _mutant_fails(proof, tmp_path)


@pytest.mark.long   # larger and default sizes: BIOLOOP_LONG=1 (make test-long), see tests/conftest.py
@pytest.mark.parametrize("proof", LARGER, ids=lambda p: p.name)
def test_larger_size_proof_holds(proof, tmp_path):
    _check(proof, tmp_path)
    if proof.check_mutant:
        _mutant_fails(proof, tmp_path)


def test_attach_reaches_the_block_inside_a_mutant():
    from bioloop.gateware.safety import Safety
    block = Safety(n_lanes=2, pulse_bits=4, duty_window=4, limit_pulse=3, limit_duty=2)
    spec = Observer()
    attach(Mutant(block, lambda m, inner, outputs: {}), spec)
    assert block.formal_observer is spec
    assert Safety.formal_observer is None
