"""sim.bench.pauses: the idle/backpressure settings of every bench source and sink."""

import itertools
import random

import pytest

pytest.importorskip("cocotb", reason="sim.bench needs cocotb (the [sim] extra)")
from bioloop.sim.bench import pauses  # noqa: E402


def take(it, n):
    return list(itertools.islice(it, n))


def test_patterns_are_deterministic_and_advance_once_per_cycle():
    rng = random.Random(0)
    assert take(pauses(itertools.cycle([1, 1, 1, 0]), rng), 9) == [True, True, True, False] * 2 + [True]
    assert take(pauses([0, 1], rng), 5) == [False, True, False, True, False]   # a list repeats
    # a finite iterator stops pausing when it ends
    assert take(pauses(iter([1, 1]), rng), 4) == [True, True, False, False]
    assert rng.random() == random.Random(0).random(), "a pattern must not draw from the RNG"


def test_probabilities_draw_from_the_seeded_rng():
    assert take(pauses(0.0, random.Random(1)), 100) == [False] * 100
    assert take(pauses(1.0, random.Random(1)), 100) == [True] * 100
    got = take(pauses(0.3, random.Random(7)), 20_000)
    ref = random.Random(7)
    assert got == [ref.random() < 0.3 for _ in range(20_000)]
    assert 0.28 < sum(got) / len(got) < 0.32


@pytest.mark.parametrize("bad, error", [
    (1.5, ValueError), (-0.1, ValueError), ([], ValueError), (True, TypeError), ("1110", TypeError),
    (None, TypeError),
])
def test_bad_settings_are_refused(bad, error):
    with pytest.raises(error):
        pauses(bad, random.Random(0))
