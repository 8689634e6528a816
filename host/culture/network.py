"""Populations and sparse recurrent synapses with conduction delays."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Synapses", "assign_populations", "random_synapses"]


@dataclass(frozen=True)
class Synapses:
    """Synapses in compressed rows by presynaptic neuron.

    Members
    -------
    indptr : numpy.ndarray
        int64 (n_neurons + 1,); the synapses of neuron j are
        ``indptr[j]:indptr[j+1]``.
    target : numpy.ndarray
        int32 postsynaptic neuron of each synapse, sorted within a row.
    weight : numpy.ndarray
        float64 current jump on a fresh synapse (positive; the sign comes
        from the presynaptic population).
    delay : numpy.ndarray
        int64 conduction delay in samples, >= 1.
    """

    indptr: np.ndarray
    target: np.ndarray
    weight: np.ndarray
    delay: np.ndarray

    @property
    def count(self) -> int:
        return int(self.indptr[-1])


def assign_populations(n_neurons: int, excitatory_fraction: float,
                       rng: np.random.Generator) -> np.ndarray:
    """Boolean mask of excitatory neurons: exactly round(f * n), spatially mixed."""
    n_exc = int(round(excitatory_fraction * n_neurons))
    mask = np.zeros(n_neurons, bool)
    mask[rng.permutation(n_neurons)[:n_exc]] = True
    return mask


def random_synapses(is_excitatory: np.ndarray, probability: float, w_exc: float,
                    w_inh: float, delay_min_samples: int, delay_max_samples: int,
                    rng: np.random.Generator) -> Synapses:
    """Erdos-Renyi recurrent connectivity without autapses.

    Each ordered pair (j, i), j != i, is connected with ``probability``.
    Weights are the population weight times a factor uniform in [0.5, 1.5]
    (after the 0.5 * rand spread of Izhikevich 2003); delays are uniform
    integers in [delay_min_samples, delay_max_samples].

    Returns
    -------
    Synapses
    """
    n = len(is_excitatory)
    counts = rng.binomial(n - 1, probability, size=n) if n > 1 else np.zeros(n, np.int64)
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(counts, out=indptr[1:])
    target = np.empty(indptr[-1], np.int32)
    for j in range(n):
        k = counts[j]
        if k:
            # Choose k of the n-1 other neurons, then skip over j itself.
            t = np.sort(rng.choice(n - 1, size=k, replace=False))
            t[t >= j] += 1
            target[indptr[j]:indptr[j + 1]] = t
    pre_exc = np.repeat(is_excitatory, counts)
    weight = np.where(pre_exc, w_exc, w_inh) * rng.uniform(0.5, 1.5, size=len(target))
    delay = rng.integers(delay_min_samples, delay_max_samples + 1, size=len(target))
    return Synapses(indptr, target, weight.astype(np.float64), delay.astype(np.int64))
