"""The in-silico culture answers distributed stimulation as cortical cultures do: its network bursts stop."""

import numpy as np

from bioloop.host.bioware.bursts import BIN_MS, network_bursts
from bioloop.host.culture import Culture, CultureConfig
from bioloop.host.culture.culture import BURST_MERGE_MS

FS = 20_000


def _bursts(rate_per_s: float, seconds: float = 10.0, seed: int = 1) -> tuple[int, float]:
    """Network bursts after a 1 s start-up, with one 2 ms full-intensity pulse on one lane at a time, cycling
    over a shuffled order of the 60 lanes at ``rate_per_s`` pulses per second (0: dark)."""
    c = Culture(CultureConfig(seed=seed))
    c.step(FS)
    order = np.random.default_rng(seed).permutation(60)
    block = 100
    period = FS / rate_per_s if rate_per_s else np.inf
    t_next, j = 0.0, 0
    for b in range(int(seconds * FS / block)):
        led = np.zeros((block, 60))
        while t_next < (b + 1) * block:
            s = int(t_next) - b * block
            led[s:s + 40, order[j % 60]] = 1.0
            j += 1
            t_next += period
        c.step(block, led if led.any() else None)
    counts = c.population_counts()[int(1000 / BIN_MS):]
    found = network_bursts(counts, c.n_neurons, max_gap_bins=int(round(BURST_MERGE_MS / BIN_MS)))
    return len(found), counts.sum() / c.n_neurons / seconds


def test_distributed_stimulation_stops_the_bursts_without_adding_activity():
    """Wagenaar, Madhavan, Pine & Potter 2005: 50 stimuli per second spread over the electrodes."""
    dark, rate_dark = _bursts(0.0)
    stim, rate_stim = _bursts(50.0)
    assert dark >= 2 and stim == 0, (dark, stim)
    assert 0.5 < rate_stim / rate_dark < 1.5          # dispersed firing, not a busier culture
