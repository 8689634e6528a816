"""bioloop.host.culture: an in-silico culture on a virtual MEA that responds to light.

A computational stand-in for closed-loop tests, demos and CI, not a
biological model (see docs/culture.md). SpikeInterface export and import
(``interop``) need the ``[sort]`` extra; everything else needs numpy, numba
and scipy.
"""

from bioloop.host.bioware.bursts import network_bursts, population_counts
from .config import (ConfigError, CultureConfig, FieldConfig, LayoutConfig, NetworkConfig,
                     NoiseConfig, OptoConfig)
from .culture import SPIKE_DTYPE, Culture, CultureBlock
from .interop import RecordingSource, make_probe, sorting_spikes, to_recording, to_sorting
from .neurons import PRESETS
from .optogenetics import chr2_open_fraction
from .receipt import RunReceipt
from .scoring import MATCH_WINDOW_MS, DetectionScore, score_detections, unit_snr

__all__ = [
    "ConfigError", "CultureConfig", "NetworkConfig", "LayoutConfig", "FieldConfig",
    "NoiseConfig", "OptoConfig", "Culture", "CultureBlock", "SPIKE_DTYPE", "PRESETS",
    "RunReceipt", "chr2_open_fraction", "network_bursts", "population_counts",
    "to_recording", "to_sorting", "sorting_spikes", "make_probe", "RecordingSource",
    "score_detections", "DetectionScore", "unit_snr", "MATCH_WINDOW_MS",
]
