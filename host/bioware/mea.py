"""Multi-electrode array layouts and recording configuration.

The four canonical layouts and their electrode pitches are those of the
commercial arrays the bioware API was written for: 60 channels at 200 µm
(Multi Channel Systems 60MEA200), 120 at 100 µm, 256 at 100 µm, and the
4096-electrode CMOS array at 17.5 µm (3Brain BioCAM).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

__all__ = ["MEALayout", "MEAConfig"]


class MEALayout(Enum):
    """Canonical MEA layouts (value: the published layout name)."""
    MEA_60 = "60ch"
    MEA_120 = "120ch"
    MEA_256 = "256ch"
    MEA_4096 = "4096ch"
    CUSTOM = "custom"


#: layout -> (channels, electrode pitch in µm)
_CANONICAL = {
    MEALayout.MEA_60: (60, 200.0),
    MEALayout.MEA_120: (120, 100.0),
    MEALayout.MEA_256: (256, 100.0),
    MEALayout.MEA_4096: (4096, 17.5),
}


def _positive_finite(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a real number, not {type(value).__name__}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be finite and > 0, not {value!r}")
    return float(value)


@dataclass(frozen=True)
class MEAConfig:
    """How a recording looks: channels, sample rate, scale and noise.

    Parameters
    ----------
    layout : MEALayout
        Which array; ``CUSTOM`` for anything else.
    num_channels : int
        Electrodes recorded, 1..2**20 (the AER address space).
    sample_rate_hz : float
        Frames per second; one frame is one sample of every channel.
    voltage_gain : float
        Amplifier gain in front of the ADC (metadata for the user's records;
        detection works on the µV values given to it).
    noise_floor_uv : float
        Expected RMS noise in µV, used by :class:`CultureHealth`-style
        sanity checks and synthetic data, never by the detector, which
        measures the noise itself.
    spike_threshold_sigma : float
        Detection threshold in units of the robust noise σ (α, default 5).
    electrode_pitch_um : float
        Centre-to-centre electrode distance in µm.
    adc_uv_per_code : float
        µV per int16 ADC code (0.195 for Intan RHD headstages). Converts
        between the float µV the host works in and the codes the gateware
        Detector compares (DESIGN.md §2).
    """
    layout: MEALayout = MEALayout.MEA_60
    num_channels: int = 60
    sample_rate_hz: float = 20_000.0
    voltage_gain: float = 1000.0
    noise_floor_uv: float = 5.0
    spike_threshold_sigma: float = 5.0
    electrode_pitch_um: float = 200.0
    adc_uv_per_code: float = 0.195

    def __post_init__(self):
        if not isinstance(self.layout, MEALayout):
            raise TypeError(f"layout must be a MEALayout, not {self.layout!r}")
        n = self.num_channels
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(f"num_channels must be an int, not {type(n).__name__}")
        if not 1 <= n <= 1 << 20:
            raise ValueError(f"num_channels must be in 1..{1 << 20} (AER address space), not {n}")
        for name in ("sample_rate_hz", "voltage_gain", "noise_floor_uv",
                     "spike_threshold_sigma", "electrode_pitch_um", "adc_uv_per_code"):
            object.__setattr__(self, name, _positive_finite(name, getattr(self, name)))
        canon = _CANONICAL.get(self.layout)
        if canon is not None and n != canon[0]:
            # Published scripts write MEAConfig(num_channels=10) with the
            # default layout; a count that is not the layout's is a custom array.
            object.__setattr__(self, "layout", MEALayout.CUSTOM)

    @classmethod
    def from_layout(cls, layout: MEALayout, **overrides) -> "MEAConfig":
        """The canonical configuration of ``layout`` (channel count and pitch).

        Other fields keep their defaults unless given in ``overrides``.
        """
        if not isinstance(layout, MEALayout):
            raise TypeError(f"layout must be a MEALayout, not {layout!r}")
        if layout is MEALayout.CUSTOM:
            if "num_channels" not in overrides:
                raise ValueError("MEALayout.CUSTOM needs num_channels=...")
            return cls(layout=layout, **overrides)
        n, pitch = _CANONICAL[layout]
        kw = {"num_channels": n, "electrode_pitch_um": pitch}
        kw.update(overrides)
        return cls(layout=layout, **kw)

    @property
    def frame_period_s(self) -> float:
        """Seconds per frame (1 / sample rate)."""
        return 1.0 / self.sample_rate_hz
