"""bioloop.host.culture: an in-silico culture on a virtual MEA that responds to light.

A computational stand-in for closed-loop tests, demos and CI, not a
biological model (see docs/culture.md).
"""

from .config import (ConfigError, CultureConfig, FieldConfig, LayoutConfig, NetworkConfig,
                     NoiseConfig, OptoConfig)
from .culture import SPIKE_DTYPE, Culture, CultureBlock

__all__ = [
    "ConfigError", "CultureConfig", "NetworkConfig", "LayoutConfig", "FieldConfig",
    "NoiseConfig", "OptoConfig", "Culture", "CultureBlock", "SPIKE_DTYPE",
]
