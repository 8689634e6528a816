"""Spike-train decoders of the AER control-observation contract.

Each decoder turns a batch of events into an ``(n_features,)`` float64 vector
in ``[0, 1]``; feature ``i`` describes neuron ``i`` and events of neurons
``>= n_features`` only count towards the rate denominator. The equations are
those of the published scpn_control AER contract:

- rate: ``x_i = count_i / max(1, N_events)``
- temporal: ``x_i = 1 - (t_first_i - (t_now - window)) / window`` for the
  first spike of neuron ``i`` in ``[t_now - window, t_now]``, 0 without one
- ISI: ``x_i = 1 - mean(diff(t_i)) / window`` for neurons with two or more
  spikes, 0 otherwise; ``t_i`` is the neuron's spike train in time order, so
  the mean interval is ``(t_last - t_first) / (k - 1)``

Every output is clipped to ``[0, 1]``. All arithmetic on times is int64 until
the final division, so results are exact up to one float64 rounding and are
the same bytes for the same input.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .checks import checked_index_array, checked_int
from .spike_buffer import NEURON_ID_MAX, TIMESTAMP_NS_MAX, EventArrays, SpikeEvent

__all__ = ["decode_rate", "decode_temporal", "decode_isi", "as_event_arrays"]

Events = Sequence[SpikeEvent] | EventArrays


def as_event_arrays(events: Events) -> EventArrays:
    """Validate ``events`` and return them as uint32 / int64 arrays.

    Parameters
    ----------
    events : sequence of SpikeEvent or EventArrays
        The batch to decode.
    """
    if isinstance(events, EventArrays):
        ids = checked_index_array("neuron_id", events.neuron_id, maximum=NEURON_ID_MAX)
        ts = checked_index_array("timestamp_ns", events.timestamp_ns, maximum=TIMESTAMP_NS_MAX)
        if ids.shape != ts.shape:
            raise ValueError(f"neuron_id and timestamp_ns differ in length: "
                             f"{ids.size} != {ts.size}")
        return EventArrays(ids.astype(np.uint32, copy=False), ts.astype(np.int64, copy=False))
    if isinstance(events, (str, bytes)) or not hasattr(events, "__iter__"):
        raise TypeError(f"events must be a sequence of SpikeEvent or EventArrays, "
                        f"got {type(events).__name__}")
    return EventArrays.from_events(events)


def _shape(window_ns, n_features) -> tuple[int, int]:
    window = checked_int("window_ns", window_ns, minimum=1, maximum=TIMESTAMP_NS_MAX)
    n = checked_int("n_features", n_features, minimum=1, maximum=NEURON_ID_MAX + 1)
    return window, n


def decode_rate(events: Events, window_ns: int, n_features: int) -> np.ndarray:
    """Fraction of the batch's events fired by each neuron.

    Parameters
    ----------
    events : sequence of SpikeEvent or EventArrays
        The batch (normally one drained window).
    window_ns : int
        Window length in ns, >= 1. Validated for a uniform signature; the
        fraction itself does not depend on it.
    n_features : int
        Length of the output, neurons ``0..n_features-1``.

    Returns
    -------
    numpy.ndarray
        float64, shape ``(n_features,)``, in ``[0, 1]``, summing to at most 1.
    """
    _, n = _shape(window_ns, n_features)
    ids, _ = as_event_arrays(events)
    counts = np.bincount(ids[ids < n], minlength=n).astype(np.float64)
    return np.clip(counts / max(1, ids.size), 0.0, 1.0)


def decode_temporal(events: Events, window_ns: int, n_features: int, *,
                    now_ns: int | None = None) -> np.ndarray:
    """Time-to-first-spike code: earlier first spikes in the window map higher.

    Parameters
    ----------
    events : sequence of SpikeEvent or EventArrays
        The batch.
    window_ns : int
        Window length in ns, >= 1.
    n_features : int
        Length of the output.
    now_ns : int, optional
        End of the window; defaults to the latest timestamp in ``events``.

    Returns
    -------
    numpy.ndarray
        float64, shape ``(n_features,)``, in ``[0, 1]``: 1 for a first spike
        at ``now_ns - window_ns``, 0 at ``now_ns`` or without a spike.
    """
    window, n = _shape(window_ns, n_features)
    ids, ts = as_event_arrays(events)
    out = np.zeros(n, dtype=np.float64)
    if now_ns is None:
        if ts.size == 0:
            return out
        now = int(ts.max())
    else:
        now = checked_int("now_ns", now_ns, minimum=0, maximum=TIMESTAMP_NS_MAX)
    start = now - window
    keep = (ts >= start) & (ts <= now) & (ids < n)
    first = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, ids[keep], ts[keep])
    fired = first <= now
    out[fired] = 1.0 - (first[fired] - start) / window
    return np.clip(out, 0.0, 1.0)


def decode_isi(events: Events, window_ns: int, n_features: int) -> np.ndarray:
    """Inter-spike-interval code: shorter mean intervals map higher.

    Parameters
    ----------
    events : sequence of SpikeEvent or EventArrays
        The batch; arrival order does not matter (intervals are taken in
        time order).
    window_ns : int
        Window length in ns, >= 1; a mean interval of one window maps to 0.
    n_features : int
        Length of the output.

    Returns
    -------
    numpy.ndarray
        float64, shape ``(n_features,)``, in ``[0, 1]``; 0 for neurons with
        fewer than two spikes.
    """
    window, n = _shape(window_ns, n_features)
    ids, ts = as_event_arrays(events)
    sel = ids < n
    ids, ts = ids[sel], ts[sel]
    count = np.bincount(ids, minlength=n)
    t_first = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    t_last = np.full(n, np.iinfo(np.int64).min, dtype=np.int64)
    np.minimum.at(t_first, ids, ts)
    np.maximum.at(t_last, ids, ts)
    out = np.zeros(n, dtype=np.float64)
    rep = count >= 2
    # mean(diff(sorted t)) telescopes to (t_last - t_first) / (k - 1).
    mean_isi = (t_last[rep] - t_first[rep]) / (count[rep] - 1)
    out[rep] = 1.0 - mean_isi / window
    return np.clip(out, 0.0, 1.0)
