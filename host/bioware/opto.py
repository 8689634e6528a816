"""Stochastic bitstreams to optogenetic pulses, inside a tissue power budget.

For a stream of density d: irradiance I = d · I_max (mW/mm²) and duration
T = T_min + (T_max - T_min) · d (ms): bright, long pulses for dense
streams. Optical power on the tissue is P = I · A (mW) for illuminated
area A (mm²). Channels are taken in ascending id; a channel whose pulse
would push the summed power over the budget is skipped and reported,
never clipped or let through, and the next channels are still tried. This
budget is a software consistency guard on top of the gateware Safety
block (DESIGN.md §4), not a biological safety certification.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["OptogeneticPulse", "SCToOptoEncoder"]


@dataclass(slots=True)
class OptogeneticPulse:
    """One light pulse on one stimulation channel.

    Parameters
    ----------
    wavelength_nm : int
    intensity_mw_mm2 : float
        Irradiance.
    duration_ms : float
    channel_id : int
        Stimulation channel (stim lane).
    onset_ms : float
        Start time.
    illuminated_area_mm2 : float
    """
    wavelength_nm: int
    intensity_mw_mm2: float
    duration_ms: float
    channel_id: int
    onset_ms: float = 0.0
    illuminated_area_mm2: float = 1.0

    @property
    def power_mw(self) -> float:
        """Optical power P = I · A in mW."""
        return self.intensity_mw_mm2 * self.illuminated_area_mm2


def _pos(name, v, allow_zero=False):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) \
            or v < 0 or (v == 0 and not allow_zero):
        raise ValueError(f"{name} must be finite and {'>=' if allow_zero else '>'} 0, not {v!r}")
    return float(v)


@dataclass
class SCToOptoEncoder:
    """Bitstream density to pulse irradiance and duration, within a power budget.

    Parameters
    ----------
    wavelength_nm : int
        470 nm for ChR2.
    max_intensity_mw_mm2 : float
        I_max.
    min_pulse_ms, max_pulse_ms : float
        T_min <= T_max.
    max_total_power_mw : float
        Budget for the summed power of one :meth:`encode` call.
    illuminated_area_mm2 : float
        Area lit by each channel.

    Attributes
    ----------
    last_skipped : tuple of int
        Channels skipped for the budget by the last :meth:`encode`.
    skipped_total : int
        Channels skipped since construction.
    """
    wavelength_nm: int = 470
    max_intensity_mw_mm2: float = 5.0
    min_pulse_ms: float = 1.0
    max_pulse_ms: float = 50.0
    max_total_power_mw: float = 50.0
    illuminated_area_mm2: float = 1.0
    last_skipped: tuple = field(default=(), init=False)
    skipped_total: int = field(default=0, init=False)

    def __post_init__(self):
        if isinstance(self.wavelength_nm, bool) or not isinstance(self.wavelength_nm, (int, np.integer)) \
                or self.wavelength_nm <= 0:
            raise ValueError(f"wavelength_nm must be a positive integer, not {self.wavelength_nm!r}")
        self.max_intensity_mw_mm2 = _pos("max_intensity_mw_mm2", self.max_intensity_mw_mm2, True)
        self.min_pulse_ms = _pos("min_pulse_ms", self.min_pulse_ms)
        self.max_pulse_ms = _pos("max_pulse_ms", self.max_pulse_ms)
        if self.max_pulse_ms < self.min_pulse_ms:
            raise ValueError(f"max_pulse_ms {self.max_pulse_ms} < min_pulse_ms {self.min_pulse_ms}")
        self.max_total_power_mw = _pos("max_total_power_mw", self.max_total_power_mw, True)
        self.illuminated_area_mm2 = _pos("illuminated_area_mm2", self.illuminated_area_mm2)

    def pulse_for(self, channel_id: int, density: float, onset_ms: float = 0.0) -> OptogeneticPulse:
        """The pulse for one channel at density d in [0, 1] (no budget check)."""
        if not math.isfinite(density) or not 0.0 <= density <= 1.0:
            raise ValueError(f"density must be within [0, 1], not {density!r}")
        return OptogeneticPulse(
            self.wavelength_nm, density * self.max_intensity_mw_mm2,
            self.min_pulse_ms + (self.max_pulse_ms - self.min_pulse_ms) * density,
            int(channel_id), float(onset_ms), self.illuminated_area_mm2)

    def encode_densities(self, channel_ids, densities, t_start_ms: float = 0.0) -> list[OptogeneticPulse]:
        """Pulses for (channel, density) pairs in ascending channel order, within the budget."""
        ch = np.asarray(channel_ids, dtype=np.int64)
        d = np.asarray(densities, dtype=np.float64)
        if ch.shape != d.shape:
            raise ValueError(f"{ch.size} channels but {d.size} densities")
        if ch.size and ch.min() < 0:
            raise ValueError(f"channel id {int(ch.min())} is negative")
        if not math.isfinite(t_start_ms) or t_start_ms < 0:
            raise ValueError(f"t_start_ms must be finite and >= 0, not {t_start_ms!r}")
        order = np.argsort(ch, kind="stable")
        pulses, skipped, total = [], [], 0.0
        for c, dens in zip(ch[order].tolist(), d[order].tolist(), strict=True):
            p = self.pulse_for(c, dens, t_start_ms)
            if total + p.power_mw > self.max_total_power_mw:
                skipped.append(c)
                continue
            total += p.power_mw
            pulses.append(p)
        self.last_skipped = tuple(skipped)
        self.skipped_total += len(skipped)
        return pulses

    def encode(self, bitstreams: dict, t_start_ms: float = 0.0) -> list[OptogeneticPulse]:
        """Pulses for a {channel: bitstream} mapping; see the module notes for the budget."""
        ids = list(bitstreams.keys())
        dens = []
        for c in ids:
            b = np.asarray(bitstreams[c])
            if b.ndim != 1 or b.size == 0:
                raise ValueError(f"bitstream of channel {c} must be a non-empty 1-D array")
            dens.append(np.count_nonzero(b) / b.size)
        return self.encode_densities(ids, dens, t_start_ms)
