"""Validated, fluent configuration of the in-silico culture, with JSON round-trip.

A :class:`CultureConfig` is an immutable tree of small sections
(:class:`NetworkConfig`, :class:`LayoutConfig`, :class:`FieldConfig`,
:class:`NoiseConfig`, :class:`OptoConfig`) plus the seed, the sample rate and
the ADC scale. Every ``with_*`` method returns a new, re-validated config, so a
culture is described by one value that can be hashed, saved and compared::

    cfg = (CultureConfig()
           .with_network(n_neurons=256)
           .with_noise(white_uv_rms=3.0)
           .with_seed(7))
    assert CultureConfig.from_json(cfg.to_json()) == cfg

Unknown keys and out-of-range values raise :class:`ConfigError` (a
``ValueError``) that names the offending key, e.g. ``network.n_neurons``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, fields, replace
from dataclasses import field as _dc_field
from typing import Any

from .neurons import PRESETS
from .placement import MEA_LAYOUTS, mea_config

__all__ = [
    "ConfigError",
    "NetworkConfig",
    "LayoutConfig",
    "FieldConfig",
    "NoiseConfig",
    "OptoConfig",
    "CultureConfig",
]

#: Version of the JSON schema written by :meth:`CultureConfig.to_json`.
SCHEMA_VERSION = 1


class ConfigError(ValueError):
    """A culture configuration value or key is invalid; the message names it."""


# --- validation helpers -------------------------------------------------------------

def _number(path: str, value: Any, lo: float | None = None, hi: float | None = None,
            lo_open: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{path} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ConfigError(f"{path} must be finite, got {value!r}")
    if lo is not None and (value < lo or (lo_open and value == lo)):
        op = ">" if lo_open else ">="
        raise ConfigError(f"{path} must be {op} {lo}, got {value!r}")
    if hi is not None and value > hi:
        raise ConfigError(f"{path} must be <= {hi}, got {value!r}")


def _integer(path: str, value: Any, lo: int | None = None, hi: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{path} must be an integer, got {value!r}")
    _number(path, value, lo, hi)


def _choice(path: str, value: Any, choices) -> None:
    if value not in choices:
        raise ConfigError(f"{path} must be one of {sorted(choices)}, got {value!r}")


def _coerce_floats(obj) -> None:
    """Store ints given for float fields as floats, so equal configs hash equally."""
    for f in fields(obj):
        value = getattr(obj, f.name)
        if f.type in ("float", float) and isinstance(value, int) and not isinstance(value, bool):
            object.__setattr__(obj, f.name, float(value))


# --- sections -----------------------------------------------------------------------

@dataclass(frozen=True)
class NetworkConfig:
    """Emitters and synapses.

    Parameters
    ----------
    n_neurons : int
        Number of Izhikevich neurons.
    excitatory_fraction : float
        Fraction of excitatory neurons (cortex and cortical cultures: about 0.8).
    excitatory_preset, inhibitory_preset : str
        Izhikevich (2003, 2004) preset names, see ``neurons.PRESETS``.
    heterogeneity : float
        Scale of Izhikevich's (2003) per-neuron parameter spread, 0 = identical
        neurons, 1 = the published spread (excitatory c += 15 r^2, d -= 6 r^2;
        inhibitory a += 0.08 r, b -= 0.05 r, r uniform in [0, 1]).
    connection_probability : float
        Probability of a directed synapse between any two distinct neurons.
    w_exc, w_inh : float
        Current jump (Izhikevich units, pA-like, membrane capacitance 1) of one
        excitatory / inhibitory spike on a fresh (undepressed) synapse.
    tau_exc_ms, tau_inh_ms : float
        Decay time constants of the exponential synaptic currents.
    slow_fraction, tau_slow_ms : float
        Share of the excitatory charge carried by a slow, NMDA-like current
        decaying with tau_slow (the rest decays with tau_exc); it lets a
        network burst last hundreds of ms.
    delay_min_ms, delay_max_ms : float
        Conduction delays are drawn uniformly in this range (rounded to samples,
        at least one sample).
    depression_u, tau_recovery_ms : float
        Tsodyks-Markram short-term depression: each spike releases the fraction
        U of the presynaptic resource, which recovers with tau_recovery. This
        ends a network burst and sets the inter-burst interval, with the
        adaptation below (Tsodyks & Markram 1997).
    adaptation_increment, tau_adaptation_ms : float
        Spike-rate adaptation of the excitatory neurons: an outward current
        raised by ``adaptation_increment`` at every spike, decaying with
        tau_adaptation (0 turns it off).
    background_rate_hz, background_weight : float
        Independent Poisson input per neuron (an excitatory current jump of
        ``background_weight`` at ``background_rate_hz``), standing in for
        spontaneous release and unmodelled afferents.
    """

    n_neurons: int = 1024
    excitatory_fraction: float = 0.8
    excitatory_preset: str = "regular_spiking"
    inhibitory_preset: str = "fast_spiking"
    heterogeneity: float = 1.0
    connection_probability: float = 0.1
    w_exc: float = 6.0
    w_inh: float = 8.0
    tau_exc_ms: float = 5.0
    tau_inh_ms: float = 10.0
    slow_fraction: float = 0.8
    tau_slow_ms: float = 150.0
    delay_min_ms: float = 0.5
    delay_max_ms: float = 5.0
    depression_u: float = 0.4
    tau_recovery_ms: float = 3000.0
    adaptation_increment: float = 1.0
    tau_adaptation_ms: float = 2000.0
    background_rate_hz: float = 8.0
    background_weight: float = 5.0

    def validate(self, p: str = "network") -> None:
        _coerce_floats(self)
        _integer(f"{p}.n_neurons", self.n_neurons, 1, 1_000_000)
        _number(f"{p}.excitatory_fraction", self.excitatory_fraction, 0.0, 1.0)
        _choice(f"{p}.excitatory_preset", self.excitatory_preset, PRESETS)
        _choice(f"{p}.inhibitory_preset", self.inhibitory_preset, PRESETS)
        _number(f"{p}.heterogeneity", self.heterogeneity, 0.0, 1.0)
        _number(f"{p}.connection_probability", self.connection_probability, 0.0, 1.0)
        _number(f"{p}.w_exc", self.w_exc, 0.0, 1000.0)
        _number(f"{p}.w_inh", self.w_inh, 0.0, 1000.0)
        _number(f"{p}.tau_exc_ms", self.tau_exc_ms, 0.0, 1000.0, lo_open=True)
        _number(f"{p}.tau_inh_ms", self.tau_inh_ms, 0.0, 1000.0, lo_open=True)
        _number(f"{p}.slow_fraction", self.slow_fraction, 0.0, 1.0)
        _number(f"{p}.tau_slow_ms", self.tau_slow_ms, 0.0, 10_000.0, lo_open=True)
        _number(f"{p}.delay_min_ms", self.delay_min_ms, 0.0, 100.0)
        _number(f"{p}.delay_max_ms", self.delay_max_ms, 0.0, 100.0)
        if self.delay_max_ms < self.delay_min_ms:
            raise ConfigError(f"{p}.delay_max_ms ({self.delay_max_ms}) must be >= "
                              f"{p}.delay_min_ms ({self.delay_min_ms})")
        _number(f"{p}.depression_u", self.depression_u, 0.0, 1.0, lo_open=True)
        _number(f"{p}.tau_recovery_ms", self.tau_recovery_ms, 0.0, 1e6, lo_open=True)
        _number(f"{p}.adaptation_increment", self.adaptation_increment, 0.0, 1000.0)
        _number(f"{p}.tau_adaptation_ms", self.tau_adaptation_ms, 0.0, 1e6, lo_open=True)
        _number(f"{p}.background_rate_hz", self.background_rate_hz, 0.0, 10_000.0)
        _number(f"{p}.background_weight", self.background_weight, 0.0, 1000.0)


@dataclass(frozen=True)
class LayoutConfig:
    """Electrode array and where the neurons sit.

    Parameters
    ----------
    mea : str
        Canonical layout of the host ``MEAConfig``: ``"60ch"`` (8x8 grid
        without corners, 200 µm pitch), ``"120ch"`` (12x12 without 6 per
        corner, 100 µm), ``"256ch"`` (16x16, 100 µm) or ``"4096ch"`` (64x64,
        17.5 µm).
    margin_um : float
        Neurons are scattered uniformly over the electrodes' bounding box
        grown by this margin.
    soma_height_um : float
        Height of the somata above the electrode plane; it keeps the
        point-source distance away from zero.
    n_stim_lanes : int or None
        Number of LED lanes; ``None`` means one per electrode (lane k lights
        electrode k).
    """

    mea: str = "60ch"
    margin_um: float = 100.0
    soma_height_um: float = 15.0
    n_stim_lanes: int | None = None

    def validate(self, p: str = "layout") -> None:
        _coerce_floats(self)
        _choice(f"{p}.mea", self.mea, MEA_LAYOUTS)
        _number(f"{p}.margin_um", self.margin_um, 0.0, 10_000.0)
        _number(f"{p}.soma_height_um", self.soma_height_um, 0.0, 1000.0)
        if self.n_stim_lanes is not None:
            n_el = mea_config(self.mea).num_channels
            _integer(f"{p}.n_stim_lanes", self.n_stim_lanes, 0, n_el)


@dataclass(frozen=True)
class FieldConfig:
    """Extracellular field: templates and point-source falloff.

    The peak (trough) amplitude of neuron n at an electrode at distance r is
    ``A_n * min_distance_um / max(r, min_distance_um)`` (point source in a
    homogeneous medium, V proportional to 1/r; Nunez & Srinivasan 2006),
    with ``A_n`` log-normal around ``amplitude_median_uv``.

    Parameters
    ----------
    amplitude_median_uv : float
        Median trough amplitude at ``min_distance_um``.
    amplitude_log_sd : float
        Standard deviation of ln(A_n).
    min_distance_um : float
        Distance below which the field no longer grows.
    cutoff_um : float
        Beyond this distance a neuron contributes nothing (keeps large
        arrays sparse; at 400 µm the 1/r field is already below the noise).
    ms_before, ms_after : float
        Template extent before and after the trough.
    """

    amplitude_median_uv: float = 200.0
    amplitude_log_sd: float = 0.35
    min_distance_um: float = 20.0
    cutoff_um: float = 400.0
    ms_before: float = 0.5
    ms_after: float = 1.5

    def validate(self, p: str = "field") -> None:
        _coerce_floats(self)
        _number(f"{p}.amplitude_median_uv", self.amplitude_median_uv, 0.0, 100_000.0)
        _number(f"{p}.amplitude_log_sd", self.amplitude_log_sd, 0.0, 3.0)
        _number(f"{p}.min_distance_um", self.min_distance_um, 0.0, 10_000.0, lo_open=True)
        _number(f"{p}.cutoff_um", self.cutoff_um, 0.0, 1e6, lo_open=True)
        _number(f"{p}.ms_before", self.ms_before, 0.1, 5.0)
        _number(f"{p}.ms_after", self.ms_after, 0.5, 10.0)


@dataclass(frozen=True)
class NoiseConfig:
    """Electrode noise, independent per channel.

    Parameters
    ----------
    white_uv_rms : float
        RMS of the white (thermal / amplifier) component.
    pink_uv_rms : float
        RMS of the 1/f component (electrode-electrolyte interface noise).
    """

    white_uv_rms: float = 4.0
    pink_uv_rms: float = 2.0

    def validate(self, p: str = "noise") -> None:
        _coerce_floats(self)
        _number(f"{p}.white_uv_rms", self.white_uv_rms, 0.0, 10_000.0)
        _number(f"{p}.pink_uv_rms", self.pink_uv_rms, 0.0, 10_000.0)


@dataclass(frozen=True)
class OptoConfig:
    """ChR2-like optogenetic actuator.

    Parameters
    ----------
    disk_radius_um : float
        LED k lights a disk of this radius around electrode k at full
        irradiance.
    edge_um : float
        Beyond the disk the irradiance falls as a Gaussian of this standard
        deviation, cut to zero three deviations out.
    tau_on_ms, tau_off_ms : float
        Opening time constant at full light and closing time constant in
        the dark (ChR2: about 1 ms and 10 ms; Nagel et al. 2003,
        Nikolic et al. 2009).
    max_current : float
        Photocurrent (Izhikevich units) of a fully open channel population
        at full irradiance.
    """

    disk_radius_um: float = 60.0
    edge_um: float = 30.0
    tau_on_ms: float = 1.0
    tau_off_ms: float = 10.0
    max_current: float = 12.0

    def validate(self, p: str = "optogenetics") -> None:
        _coerce_floats(self)
        _number(f"{p}.disk_radius_um", self.disk_radius_um, 0.0, 10_000.0)
        _number(f"{p}.edge_um", self.edge_um, 0.0, 10_000.0)
        _number(f"{p}.tau_on_ms", self.tau_on_ms, 0.0, 1000.0, lo_open=True)
        _number(f"{p}.tau_off_ms", self.tau_off_ms, 0.0, 10_000.0, lo_open=True)
        if self.tau_off_ms <= self.tau_on_ms:
            raise ConfigError(f"{p}.tau_off_ms ({self.tau_off_ms}) must be > "
                              f"{p}.tau_on_ms ({self.tau_on_ms}): the channel opens "
                              "faster in light than it closes in the dark")
        _number(f"{p}.max_current", self.max_current, 0.0, 10_000.0)


_SECTIONS = {
    "network": NetworkConfig,
    "layout": LayoutConfig,
    "field": FieldConfig,
    "noise": NoiseConfig,
    "optogenetics": OptoConfig,
}


@dataclass(frozen=True)
class CultureConfig:
    """Complete description of an in-silico culture.

    Parameters
    ----------
    seed : int
        Seed of every random draw (placement, synapses, amplitudes, drive,
        noise). Same config, same bytes out.
    sample_rate_hz : float
        Sample rate of the virtual MEA; the network is integrated at the
        same step (forward Euler, dt = 1 / sample_rate).
    uv_per_code : float
        ADC scale of the int16 codes (Intan RHD: 0.195 µV per code).
    network, layout, field, noise, optogenetics
        The sections, see their classes.
    """

    seed: int = 0
    sample_rate_hz: float = 20_000.0
    uv_per_code: float = 0.195
    network: NetworkConfig = _dc_field(default_factory=NetworkConfig)
    layout: LayoutConfig = _dc_field(default_factory=LayoutConfig)
    field: FieldConfig = _dc_field(default_factory=FieldConfig)
    noise: NoiseConfig = _dc_field(default_factory=NoiseConfig)
    optogenetics: OptoConfig = _dc_field(default_factory=OptoConfig)

    def __post_init__(self) -> None:
        _coerce_floats(self)
        _integer("seed", self.seed, 0, 2**63 - 1)
        # Euler on Izhikevich's equations needs dt <= ~0.1 ms to stay accurate.
        _number("sample_rate_hz", self.sample_rate_hz, 10_000.0, 100_000.0)
        _number("uv_per_code", self.uv_per_code, 0.0, 1000.0, lo_open=True)
        for name, cls in _SECTIONS.items():
            section = getattr(self, name)
            if not isinstance(section, cls):
                raise ConfigError(f"{name} must be a {cls.__name__}, got {type(section).__name__}")
            section.validate(name)
        # Across sections: the field must reach beyond the distance where it stops growing, and
        # beyond the somata's height (the nearest an electrode can be), or no neuron is recorded.
        f, lay = self.field, self.layout
        if f.cutoff_um <= f.min_distance_um:
            raise ConfigError(f"field.cutoff_um = {f.cutoff_um:g} must exceed field.min_distance_um = "
                              f"{f.min_distance_um:g}: a neuron's field would end before it falls off")
        if f.cutoff_um <= lay.soma_height_um:
            raise ConfigError(f"field.cutoff_um = {f.cutoff_um:g} must exceed layout.soma_height_um = "
                              f"{lay.soma_height_um:g}: no electrode would be within reach of any neuron")

    # --- fluent API --------------------------------------------------------------

    def _with_section(self, name: str, changes: dict) -> "CultureConfig":
        section = getattr(self, name)
        known = {f.name for f in fields(section)}
        for key in changes:
            if key not in known:
                raise ConfigError(f"unknown key {name}.{key}; known keys: {sorted(known)}")
        return replace(self, **{name: replace(section, **changes)})

    def with_network(self, **changes) -> "CultureConfig":
        """Return a copy with network fields changed (see :class:`NetworkConfig`)."""
        return self._with_section("network", changes)

    def with_layout(self, **changes) -> "CultureConfig":
        """Return a copy with layout fields changed (see :class:`LayoutConfig`)."""
        return self._with_section("layout", changes)

    def with_field(self, **changes) -> "CultureConfig":
        """Return a copy with field fields changed (see :class:`FieldConfig`)."""
        return self._with_section("field", changes)

    def with_noise(self, **changes) -> "CultureConfig":
        """Return a copy with noise fields changed (see :class:`NoiseConfig`)."""
        return self._with_section("noise", changes)

    def with_optogenetics(self, **changes) -> "CultureConfig":
        """Return a copy with optogenetics fields changed (see :class:`OptoConfig`)."""
        return self._with_section("optogenetics", changes)

    def with_seed(self, seed: int) -> "CultureConfig":
        """Return a copy with another seed."""
        return replace(self, seed=seed)

    def with_sample_rate(self, sample_rate_hz: float) -> "CultureConfig":
        """Return a copy with another sample rate."""
        return replace(self, sample_rate_hz=sample_rate_hz)

    def with_uv_per_code(self, uv_per_code: float) -> "CultureConfig":
        """Return a copy with another ADC scale."""
        return replace(self, uv_per_code=uv_per_code)

    # --- derived -----------------------------------------------------------------

    @property
    def n_electrodes(self) -> int:
        """Number of recording electrodes of the layout."""
        return mea_config(self.layout.mea).num_channels

    @property
    def n_stim_lanes(self) -> int:
        """Number of LED lanes (default: one per electrode)."""
        n = self.layout.n_stim_lanes
        return self.n_electrodes if n is None else n

    # --- serialisation -----------------------------------------------------------

    def to_dict(self) -> dict:
        """JSON-safe nested dict, with a schema version."""
        d = {"schema": SCHEMA_VERSION, "seed": self.seed,
             "sample_rate_hz": self.sample_rate_hz, "uv_per_code": self.uv_per_code}
        for name in _SECTIONS:
            d[name] = dataclasses.asdict(getattr(self, name))
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "CultureConfig":
        """Build from :meth:`to_dict` output; missing keys take their defaults.

        Raises
        ------
        ConfigError
            On an unknown key (named with its section), a wrong schema version
            or any invalid value.
        """
        if not isinstance(d, dict):
            raise ConfigError(f"a culture config must be a JSON object, got {type(d).__name__}")
        d = dict(d)
        schema = d.pop("schema", SCHEMA_VERSION)
        if schema != SCHEMA_VERSION:
            raise ConfigError(f"schema {schema!r} is not supported; this bioloop reads "
                              f"schema {SCHEMA_VERSION}")
        top = {"seed", "sample_rate_hz", "uv_per_code"}
        kwargs = {}
        for key, value in d.items():
            if key in top:
                kwargs[key] = value
            elif key in _SECTIONS:
                section_cls = _SECTIONS[key]
                if not isinstance(value, dict):
                    raise ConfigError(f"{key} must be a JSON object, got {value!r}")
                known = {f.name for f in fields(section_cls)}
                for sub in value:
                    if sub not in known:
                        raise ConfigError(f"unknown key {key}.{sub}; known keys: {sorted(known)}")
                kwargs[key] = section_cls(**value)
            else:
                raise ConfigError(f"unknown key {key}; known keys: "
                                  f"{sorted(top | set(_SECTIONS) | {'schema'})}")
        return cls(**kwargs)

    def to_json(self) -> str:
        """Canonical JSON (sorted keys, no whitespace variation)."""
        return json.dumps(self.to_dict(), sort_keys=True, indent=2)

    @classmethod
    def from_json(cls, text: str) -> "CultureConfig":
        """Parse :meth:`to_json` output (see :meth:`from_dict`)."""
        try:
            d = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"culture config is not valid JSON: {exc}") from exc
        return cls.from_dict(d)

    def digest(self) -> str:
        """SHA-256 of the canonical JSON: the configuration hash of receipts."""
        canon = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canon.encode()).hexdigest()
