"""AER control observation: AER words into a bounded spike buffer, decoded into controller features.

Re-implements the published scpn_control AER observation contract from its
documented behaviour, so scripts written against
``scpn_control.scpn.observation`` run with only the import changed::

    from bioloop.host.observation import AERControlObservation, SpikeBuffer, SpikeEvent

This package's public surface is what it exports here; the modules hold

- :mod:`.spike_buffer`: the bounded buffer and its AER ingest,
- :mod:`.decoders`: rate, temporal and ISI codes of a batch of events,
- :mod:`.aer_control`: :class:`AERControlObservation`, one decoded observation,
- :mod:`.checks`: the argument checks the three share.

See ``docs/observation.md``.
"""

from .aer_control import (
    DECODE_STRATEGIES, FEATURE_NORMALISATIONS, AERControlObservation, NonMonotonicInputError,
    normalise_features,
)
from .decoders import as_event_arrays, decode_isi, decode_rate, decode_temporal
from .spike_buffer import (
    NEURON_ID_MAX, TIMESTAMP_NS_MAX, AERIngestCounts, EventArrays, ReservedAERTypeError,
    SpikeBuffer, SpikeEvent,
)

__all__ = [
    "AERControlObservation", "NonMonotonicInputError", "normalise_features",
    "DECODE_STRATEGIES", "FEATURE_NORMALISATIONS",
    "SpikeEvent", "SpikeBuffer", "EventArrays", "AERIngestCounts", "ReservedAERTypeError",
    "NEURON_ID_MAX", "TIMESTAMP_NS_MAX",
    "decode_rate", "decode_temporal", "decode_isi", "as_event_arrays",
]
