"""AER control observation: a spike buffer decoded into bounded controller features.

See ``docs/observation.md`` for the semantics and the differences from the
published scpn_control version. Import from :mod:`bioloop.host.observation`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from scipy.special import expit

from .checks import checked_int
from .decoders import decode_isi, decode_rate, decode_temporal
from .spike_buffer import NEURON_ID_MAX, TIMESTAMP_NS_MAX, EventArrays, SpikeBuffer

__all__ = [
    "AERControlObservation", "NonMonotonicInputError", "normalise_features",
    "DECODE_STRATEGIES", "FEATURE_NORMALISATIONS",
]

DecodeStrategy = Literal["rate", "temporal", "isi"]
FeatureNormalisation = Literal["unit", "max", "zscore"]
DECODE_STRATEGIES = ("rate", "temporal", "isi")
FEATURE_NORMALISATIONS = ("unit", "max", "zscore")


class NonMonotonicInputError(ValueError):
    """Strict observation refused a buffer that admitted out-of-order events."""


def normalise_features(features, mode: FeatureNormalisation) -> np.ndarray:
    """Map decoded features into ``[0, 1]``.

    Parameters
    ----------
    features : array_like
        1-D finite values.
    mode : {"unit", "max", "zscore"}
        ``unit`` clips to ``[0, 1]``; ``max`` clips then divides by the peak
        (all zeros stay zeros); ``zscore`` standardises with the population
        mean and standard deviation and maps through the logistic function,
        ``1 / (1 + exp(-(x - mean) / std))``, which bounds the z-score to
        ``(0, 1)``; with zero variance there is no contrast and the result is
        all zeros.

    Returns
    -------
    numpy.ndarray
        float64 in ``[0, 1]``, same shape.
    """
    if mode not in FEATURE_NORMALISATIONS:
        raise ValueError(f"feature_normalisation must be one of: "
                         f"{', '.join(FEATURE_NORMALISATIONS)}; got {mode!r}")
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"features must be one-dimensional, got shape {x.shape}")
    bad = np.flatnonzero(~np.isfinite(x))
    if bad.size:
        raise ValueError(f"features must be finite, got {x[bad[0]]} at index {int(bad[0])}")
    if mode == "unit":
        return np.clip(x, 0.0, 1.0)
    if mode == "max":
        c = np.clip(x, 0.0, 1.0)
        peak = c.max() if c.size else 0.0
        return c / peak if peak > 0.0 else c
    if x.size == 0:
        return x.copy()
    sd = x.std()
    if sd == 0.0:
        return np.zeros_like(x)
    return np.clip(expit((x - x.mean()) / sd), 0.0, 1.0)


_DECODERS = {"rate": decode_rate, "temporal": decode_temporal, "isi": decode_isi}


@dataclass(frozen=True)
class AERControlObservation:
    """One controller observation decoded from a :class:`SpikeBuffer`.

    Parameters
    ----------
    timestamp_ns : int
        Observation time, the end of the decode window, in ns.
    spike_stream : SpikeBuffer
        Buffer to drain.
    decode_window_ns : int
        Window length in ns, >= 1; the observation covers
        ``[timestamp_ns - decode_window_ns, timestamp_ns]``.
    decode_strategy : {"rate", "temporal", "isi"}
        Decoder from :mod:`bioloop.host.observation.decoders`.
    n_features : int
        Feature vector length (neurons ``0..n_features-1``).
    feature_normalisation : {"unit", "max", "zscore"}
        See :func:`normalise_features`.
    require_monotonic : bool
        Fail closed: refuse to decode (raising
        :class:`NonMonotonicInputError`) when the buffer has latched an
        out-of-order arrival. The check runs before draining, so the
        rejected events stay in the buffer for inspection.

    Notes
    -----
    The first call of :meth:`to_features` or :meth:`to_feature_mapping`
    drains the window from the buffer and decodes it; later calls return
    the same features, so the vector and the mapping always agree.
    """

    timestamp_ns: int
    spike_stream: SpikeBuffer
    decode_window_ns: int
    decode_strategy: DecodeStrategy = "rate"
    n_features: int = 64
    feature_normalisation: FeatureNormalisation = "unit"
    require_monotonic: bool = False
    _decoded: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "timestamp_ns", checked_int(
            "timestamp_ns", self.timestamp_ns, minimum=0, maximum=TIMESTAMP_NS_MAX))
        object.__setattr__(self, "decode_window_ns", checked_int(
            "decode_window_ns", self.decode_window_ns, minimum=1, maximum=TIMESTAMP_NS_MAX))
        object.__setattr__(self, "n_features", checked_int(
            "n_features", self.n_features, minimum=1, maximum=NEURON_ID_MAX + 1))
        if not isinstance(self.spike_stream, SpikeBuffer):
            raise TypeError(f"spike_stream must be a SpikeBuffer, "
                            f"got {type(self.spike_stream).__name__}")
        if self.decode_strategy not in DECODE_STRATEGIES:
            raise ValueError(f"decode_strategy must be one of: {', '.join(DECODE_STRATEGIES)}; "
                             f"got {self.decode_strategy!r}")
        if self.feature_normalisation not in FEATURE_NORMALISATIONS:
            raise ValueError(f"feature_normalisation must be one of: "
                             f"{', '.join(FEATURE_NORMALISATIONS)}; "
                             f"got {self.feature_normalisation!r}")
        if not isinstance(self.require_monotonic, bool):
            raise TypeError(f"require_monotonic must be a boolean, got {self.require_monotonic!r}")

    def _decode(self) -> np.ndarray:
        if "features" not in self._decoded:
            buffer = self.spike_stream
            if self.require_monotonic and not buffer.monotonic_input:
                raise NonMonotonicInputError(
                    f"require_monotonic=True but the buffer admitted "
                    f"{buffer.out_of_order_event_count} event(s) out of monotonic timestamp "
                    f"order; they are left in the buffer. Inspect them with snapshot() and "
                    f"clear() the buffer to resume")
            events = buffer.drain_window_arrays(self.decode_window_ns, self.timestamp_ns)
            decoder = _DECODERS[self.decode_strategy]
            if self.decode_strategy == "temporal":
                raw = decoder(events, self.decode_window_ns, self.n_features,
                              now_ns=self.timestamp_ns)
            else:
                raw = decoder(events, self.decode_window_ns, self.n_features)
            self._decoded["events"] = events
            self._decoded["features"] = normalise_features(raw, self.feature_normalisation)
        return self._decoded["features"]

    def to_features(self) -> np.ndarray:
        """Decoded features, float64 of shape ``(n_features,)`` in ``[0, 1]``."""
        return self._decode().copy()

    def to_feature_mapping(self, prefix: str = "aer_") -> dict[str, float]:
        """Features as ``{f"{prefix}{i}": value}`` for dictionary consumers."""
        if not isinstance(prefix, str):
            raise TypeError(f"prefix must be a str, got {type(prefix).__name__}")
        if not prefix:
            raise ValueError("prefix must not be empty")
        return {f"{prefix}{i}": float(v) for i, v in enumerate(self._decode())}

    @property
    def window_events(self) -> EventArrays | None:
        """Events drained for this observation (None before the first decode)."""
        return self._decoded.get("events")

    def admission_report(self) -> dict[str, int | bool]:
        """The buffer's current :meth:`SpikeBuffer.admission_report`."""
        return self.spike_stream.admission_report()
