"""The stepping in-silico culture: a spiking network on a virtual MEA.

``Culture(config).step(n_samples, led)`` advances the network by a block of
samples under the given LED drive and returns a :class:`CultureBlock`: the
electrode voltages (µV, float32), their int16 ADC codes and the
ground-truth spikes whose trough falls in the block. The result does not
depend on how a run is split into blocks, byte for byte.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from bioloop.host.bioware.bursts import BIN_MS, network_bursts
from .config import CultureConfig
from .field import ElectrodeNoise, biphasic_template, point_source_gains, render_spikes
from .network import assign_populations, random_synapses
from .neurons import advance, izhikevich_parameters
from .optogenetics import chr2_rates, illumination
from .placement import electrode_positions, mea_config, nearest_electrode, place_neurons

__all__ = ["SPIKE_DTYPE", "CultureBlock", "Culture"]

#: Ground-truth spike record: emitting neuron, absolute sample of the
#: extracellular trough, and the electrode nearest to the soma.
SPIKE_DTYPE = np.dtype([("neuron", np.int32), ("sample", np.int64),
                        ("nearest_channel", np.int32)])

#: Template width factors: fast-spiking interneurons have narrower spikes.
_WIDTH_EXC, _WIDTH_INH = 1.0, 0.6

#: Active population bins closer than this are one network burst in the run
#: summary: the reverberations inside one burst are tens of ms apart, and
#: 100 ms is the usual maximum inter-spike interval of MEA burst detectors.
BURST_MERGE_MS = 100.0


@dataclass(frozen=True)
class CultureBlock:
    """One block of culture output.

    Members
    -------
    t0_sample : int
        Absolute index of the block's first sample.
    voltages_uv : numpy.ndarray
        float32 (n_samples, n_channels) electrode voltage in µV.
    codes : numpy.ndarray
        int16 (n_samples, n_channels): ``round(voltage / uv_per_code)``,
        saturating at the int16 limits, never wrapping.
    spikes : numpy.ndarray
        Ground truth, a record array of :data:`SPIKE_DTYPE` sorted by sample
        then neuron: spikes whose trough sample lies in this block.
    saturated : int
        Number of codes clipped at the int16 limits in this block.
    """

    t0_sample: int
    voltages_uv: np.ndarray
    codes: np.ndarray
    spikes: np.ndarray
    saturated: int

    @property
    def n_samples(self) -> int:
        return self.voltages_uv.shape[0]

    @staticmethod
    def concatenate(blocks: list["CultureBlock"]) -> "CultureBlock":
        """Join consecutive blocks into one.

        Raises
        ------
        ValueError
            If the blocks are not contiguous in time.
        """
        if not blocks:
            raise ValueError("need at least one block to concatenate")
        for prev, nxt in zip(blocks, blocks[1:], strict=False):
            if nxt.t0_sample != prev.t0_sample + prev.n_samples:
                raise ValueError(f"blocks are not contiguous: one ends at sample "
                                 f"{prev.t0_sample + prev.n_samples}, the next starts at "
                                 f"{nxt.t0_sample}")
        return CultureBlock(blocks[0].t0_sample,
                            np.concatenate([b.voltages_uv for b in blocks]),
                            np.concatenate([b.codes for b in blocks]),
                            np.concatenate([b.spikes for b in blocks]),
                            sum(b.saturated for b in blocks))


class Culture:
    """A simulated dissociated culture on an MEA, advanced block by block.

    Parameters
    ----------
    config : CultureConfig, optional
        The culture; defaults to ``CultureConfig()`` (1024 neurons on a
        60-electrode MEA at 20 kHz).

    Attributes
    ----------
    config : CultureConfig
    mea : MEAConfig
        The host MEA configuration of the layout (sample rate, scale, noise).
    electrode_positions_um, neuron_positions_um : numpy.ndarray
        (n, 2) positions in µm.
    nearest_channel : numpy.ndarray
        int32 nearest electrode of every soma.
    is_excitatory : numpy.ndarray
        bool population mask.
    synapses : Synapses
    templates : numpy.ndarray
        float32 (2, length) normalised templates (excitatory, inhibitory).
    template_index : numpy.ndarray
        Template of every neuron.
    n_before : int
        Samples from a template's first sample to its trough; a ground-truth
        spike's ``sample`` is its trough.
    amplitude_uv : numpy.ndarray
        Trough amplitude of every neuron at the minimum distance.

    Notes
    -----
    Building draws, from independent streams spawned from the seed, the
    soma positions, populations, neuron parameters, synapses and spike
    amplitudes; stepping draws the Poisson background and the electrode
    noise. Same config, same bytes.
    """

    def __init__(self, config: CultureConfig | None = None):
        cfg = CultureConfig() if config is None else config
        if not isinstance(cfg, CultureConfig):
            raise TypeError(f"config must be a CultureConfig, got {type(cfg).__name__}")
        self.config = cfg
        self._n_lanes = cfg.n_stim_lanes             # derived from the layout: once, not per step
        fs = cfg.sample_rate_hz
        net = cfg.network
        s_place, s_net, s_field, s_drive, s_noise = np.random.SeedSequence(cfg.seed).spawn(5)
        rng_place, rng_net = np.random.default_rng(s_place), np.random.default_rng(s_net)
        rng_field = np.random.default_rng(s_field)
        self._rng_drive = np.random.default_rng(s_drive)

        # Geometry.
        self.mea = mea_config(cfg.layout.mea, sample_rate_hz=fs,
                              adc_uv_per_code=cfg.uv_per_code,
                              noise_floor_uv=max(1e-3, float(np.hypot(
                                  cfg.noise.white_uv_rms, cfg.noise.pink_uv_rms))))
        self.electrode_positions_um = electrode_positions(self.mea)
        self.neuron_positions_um = place_neurons(self.electrode_positions_um, net.n_neurons,
                                                 cfg.layout.margin_um, rng_place)
        self.nearest_channel = nearest_electrode(self.neuron_positions_um,
                                                 self.electrode_positions_um)

        # Emitters and synapses.
        self.is_excitatory = assign_populations(net.n_neurons, net.excitatory_fraction, rng_net)
        self._a, self._b, self._c, self._d = izhikevich_parameters(
            self.is_excitatory, net.excitatory_preset, net.inhibitory_preset,
            net.heterogeneity, rng_net)
        ms = fs / 1000.0
        dmin = max(1, int(round(net.delay_min_ms * ms)))
        dmax = max(dmin, int(round(net.delay_max_ms * ms)))
        self.synapses = random_synapses(self.is_excitatory, net.connection_probability,
                                        net.w_exc, net.w_inh, dmin, dmax, rng_net)

        # Field.
        fc = cfg.field
        self.templates = np.stack([
            biphasic_template(fs, fc.ms_before, fc.ms_after, _WIDTH_EXC),
            biphasic_template(fs, fc.ms_before, fc.ms_after, _WIDTH_INH)])
        self.n_before = int(round(fc.ms_before * ms))
        self.template_index = np.where(self.is_excitatory, 0, 1).astype(np.int32)
        self.amplitude_uv = fc.amplitude_median_uv * np.exp(
            fc.amplitude_log_sd * rng_field.standard_normal(net.n_neurons))
        self._gain_ptr, self._gain_channel, self._gain_value = point_source_gains(
            self.neuron_positions_um, self.electrode_positions_um, self.amplitude_uv,
            cfg.layout.soma_height_um, fc.min_distance_um, fc.cutoff_um)
        self._noise = ElectrodeNoise(self.n_channels, cfg.noise.white_uv_rms,
                                     cfg.noise.pink_uv_rms, np.random.default_rng(s_noise))

        # Optogenetics: lane k lights electrode k.
        oc = cfg.optogenetics
        self._light_ptr, self._light_lane, self._light_weight = illumination(
            self.neuron_positions_um, self.electrode_positions_um[:self.n_lanes],
            oc.disk_radius_um, oc.edge_um)
        # The same entries lane by lane (neurons ascending in each lane): the kernel adds each
        # lit lane's photocurrent to its neurons, which per neuron is the order of its own row.
        order = np.argsort(self._light_lane, kind="stable")
        self._lane_ptr = np.zeros(self.n_lanes + 1, np.int64)
        np.cumsum(np.bincount(self._light_lane, minlength=self.n_lanes), out=self._lane_ptr[1:])
        self._lane_neuron = np.repeat(np.arange(net.n_neurons), np.diff(self._light_ptr))[order].astype(np.int64)
        self._lane_weight = self._light_weight[order]
        self._chr2 = chr2_rates(oc.tau_on_ms, oc.tau_off_ms, fs)
        self._lane_o = np.zeros(self.n_lanes, np.float64)

        # Dynamic state: rest at v = c, u = b v.
        n = net.n_neurons
        self._v = self._c.copy()
        self._u = self._b * self._v
        self._i_exc = np.zeros(n)
        self._i_inh = np.zeros(n)
        self._i_slow = np.zeros(n)
        depth = int(self.synapses.delay.max()) + 1 if self.synapses.count else 2
        self._ring_exc = np.zeros((depth, n))
        self._ring_inh = np.zeros((depth, n))
        # Start with resources spread over [0, 1], as in a culture caught at a
        # random moment, instead of a synchronous first burst of a rested network.
        self._resource = rng_net.random(n)
        self._last_spike = np.zeros(n, np.int64)
        self._adapt = np.zeros(n)
        self._bg_interval = fs / net.background_rate_hz if net.background_rate_hz > 0 else np.inf
        self._bg_next = (self._rng_drive.exponential(self._bg_interval, n)
                         if net.background_rate_hz > 0 else np.full(n, np.inf))
        self._out_neuron = np.empty(4 * n + 4096, np.int32)
        self._out_sample = np.empty(4 * n + 4096, np.int64)
        self._overhang = np.zeros((self.templates.shape[1], self.n_channels), np.float32)
        self._pending = np.zeros(0, SPIKE_DTYPE)  # spikes whose trough is still ahead
        self._t = 0

        # Run statistics for receipts.
        self._bin_samples = max(1, int(round(BIN_MS * ms)))
        self._bins = np.zeros(0, np.int64)
        self._spikes_per_neuron = np.zeros(n, np.int64)
        self._saturated = 0

    # --- geometry and model, read-only --------------------------------------------

    @property
    def n_neurons(self) -> int:
        return self.config.network.n_neurons

    @property
    def n_channels(self) -> int:
        return len(self.electrode_positions_um)

    @property
    def n_lanes(self) -> int:
        return self._n_lanes

    @property
    def sample_rate_hz(self) -> float:
        return self.config.sample_rate_hz

    @property
    def t(self) -> int:
        """Absolute index of the next sample :meth:`step` will produce."""
        return self._t

    @property
    def lane_open_fraction(self) -> np.ndarray:
        """ChR2 open fraction per lane after the last sample (a copy)."""
        return self._lane_o.copy()

    def gain_matrix(self) -> np.ndarray:
        """Dense float64 (n_neurons, n_channels) trough amplitude in µV (0 beyond cut-off)."""
        g = np.zeros((self.n_neurons, self.n_channels))
        rows = np.repeat(np.arange(self.n_neurons), np.diff(self._gain_ptr))
        g[rows, self._gain_channel] = self._gain_value
        return g

    @property
    def noise_uv_rms(self) -> float:
        """Total electrode noise RMS, sqrt(white^2 + pink^2), µV."""
        return float(np.hypot(self.config.noise.white_uv_rms, self.config.noise.pink_uv_rms))

    def unit_snr(self) -> np.ndarray:
        """True peak SNR of every neuron: largest trough amplitude / noise RMS.

        Infinite in a noise-free configuration; 0 for a neuron that reaches
        no electrode.
        """
        peak = np.zeros(self.n_neurons)
        np.maximum.at(peak, np.repeat(np.arange(self.n_neurons), np.diff(self._gain_ptr)),
                      self._gain_value.astype(np.float64))
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(peak > 0, peak / self.noise_uv_rms, 0.0)

    def illumination_matrix(self) -> np.ndarray:
        """Dense float64 (n_neurons, n_lanes) relative irradiance at each soma."""
        w = np.zeros((self.n_neurons, self.n_lanes))
        rows = np.repeat(np.arange(self.n_neurons), np.diff(self._light_ptr))
        w[rows, self._light_lane] = self._light_weight
        return w

    # --- stepping ------------------------------------------------------------------

    def _led_array(self, n_samples: int, led):
        """Validate the LED drive; return (rows x lanes float64, per_sample)."""
        lanes = self.n_lanes
        if led is None:
            return np.zeros((1, 0)), False
        arr = np.asarray(led)
        if arr.dtype == bool:
            arr = arr.astype(np.float64)
        elif not np.issubdtype(arr.dtype, np.number):
            raise TypeError(f"led must be numeric or bool, got dtype {arr.dtype}")
        arr = np.ascontiguousarray(arr, dtype=np.float64)
        if arr.ndim == 1:
            if arr.shape != (lanes,):
                raise ValueError(f"led vector has {arr.shape[0]} lanes; this culture has "
                                 f"{lanes}")
            arr, per_sample = arr[None, :], False
        elif arr.ndim == 2:
            if arr.shape != (n_samples, lanes):
                raise ValueError(f"led array has shape {arr.shape}; expected (n_samples, "
                                 f"n_lanes) = ({n_samples}, {lanes})")
            per_sample = True
        else:
            raise ValueError(f"led must be None, (n_lanes,) or (n_samples, n_lanes), got "
                             f"shape {arr.shape}")
        if arr.size == 0:
            return np.zeros((1, 0)), False
        low, high = arr.min(), arr.max()
        if not (low >= 0.0 and high <= 1.0):  # also catches NaN, which min and max propagate
            bad = ~((arr >= 0.0) & (arr <= 1.0))
            row, lane = np.argwhere(bad)[0]
            where = f"sample {row}, lane {lane}" if per_sample else f"lane {lane}"
            raise ValueError(f"led intensity {arr[row, lane]!r} at {where} is outside [0, 1]")
        if high == 0.0:
            # All dark is the same as no light; skipping the lanes is exact.
            return np.zeros((1, 0)), False
        return arr, per_sample

    def step(self, n_samples: int, led=None) -> CultureBlock:
        """Advance the culture by ``n_samples`` samples.

        Parameters
        ----------
        n_samples : int
            Block length, >= 0.
        led : None or array_like
            LED drive: ``None`` (dark), a (n_lanes,) vector of intensities in
            [0, 1] held for the whole block, or a (n_samples, n_lanes) array
            (bool or float) giving the LED vector of every sample, e.g. the
            gateware's pulse-density-modulated lane outputs.

        Returns
        -------
        CultureBlock

        Raises
        ------
        ValueError, TypeError
            On a bad length or LED drive; the culture is then left untouched.
        """
        if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)):
            raise TypeError(f"n_samples must be an integer, got {n_samples!r}")
        n_samples = int(n_samples)
        if n_samples < 0:
            raise ValueError(f"n_samples must be >= 0, got {n_samples}")
        led_arr, per_sample = self._led_array(n_samples, led)
        t0 = self._t
        net = self.config.network
        fs = self.sample_rate_hz
        emitted_n, emitted_s = [], []
        done = 0
        while True:
            n_done, count = advance(
                n_samples - done, t0 + done, 1000.0 / fs,
                self._v, self._u, self._a, self._b, self._c, self._d, self.is_excitatory,
                self._i_exc, self._i_inh,
                np.exp(-1000.0 / fs / net.tau_exc_ms), np.exp(-1000.0 / fs / net.tau_inh_ms),
                self._ring_exc, self._ring_inh,
                self._i_slow, math.exp(-1000.0 / fs / net.tau_slow_ms), net.slow_fraction,
                net.slow_fraction * net.tau_exc_ms / net.tau_slow_ms,
                self.synapses.indptr, self.synapses.target, self.synapses.weight,
                self.synapses.delay,
                self._resource, self._last_spike, net.depression_u,
                net.tau_recovery_ms * fs / 1000.0,
                self._adapt, math.exp(-1000.0 / fs / net.tau_adaptation_ms), net.adaptation_increment,
                self._bg_next, self._bg_interval, net.background_weight, self._rng_drive,
                led_arr[done:] if per_sample else led_arr, per_sample, self._lane_o,
                *self._chr2, self._lane_ptr, self._lane_neuron, self._lane_weight,
                self.config.optogenetics.max_current,
                self._out_neuron, self._out_sample)
            emitted_n.append(self._out_neuron[:count].copy())
            emitted_s.append(self._out_sample[:count].copy())
            done += n_done
            if done == n_samples:
                break
            size = 2 * len(self._out_neuron) + self.n_neurons
            self._out_neuron = np.empty(size, np.int32)
            self._out_sample = np.empty(size, np.int64)
        emit_neuron = np.concatenate(emitted_n)
        emit_sample = np.concatenate(emitted_s)
        count = len(emit_neuron)

        # Field: templates start at the emission sample; the overhang carries
        # the tails of earlier spikes into this block.
        length = self.templates.shape[1]
        acc = np.zeros((n_samples + length, self.n_channels), np.float32)
        acc[:length] = self._overhang
        if count:
            render_spikes(acc, t0, emit_neuron, emit_sample, self._gain_ptr,
                          self._gain_channel, self._gain_value, self.templates,
                          self.template_index)
        self._overhang = acc[n_samples:].copy()
        voltages = acc[:n_samples]
        voltages += self._noise.take(n_samples)

        scaled = np.rint(voltages / np.float32(self.config.uv_per_code))
        saturated = int(np.count_nonzero((scaled > 32767) | (scaled < -32768)))
        codes = np.clip(scaled, -32768, 32767).astype(np.int16)

        # Ground truth: a spike is reported in the block holding its trough.
        new = np.empty(count, SPIKE_DTYPE)
        new["neuron"] = emit_neuron
        new["sample"] = emit_sample + self.n_before
        new["nearest_channel"] = self.nearest_channel[emit_neuron]
        # (structured arrays concatenate slowly: skip it when one side is empty)
        allspk = np.concatenate([self._pending, new]) if len(self._pending) and count else \
            (new if count else self._pending)
        end = t0 + n_samples
        spikes = allspk[allspk["sample"] < end]
        self._pending = allspk[allspk["sample"] >= end]

        self._t = end
        self._record(spikes, end, saturated)
        return CultureBlock(t0, voltages.copy(), codes, spikes, saturated)

    # --- run statistics ------------------------------------------------------------

    def _record(self, spikes: np.ndarray, end: int, saturated: int) -> None:
        n_bins = -(-end // self._bin_samples)
        if n_bins > len(self._bins):
            grown = np.zeros(max(n_bins, 2 * len(self._bins)), np.int64)
            grown[:len(self._bins)] = self._bins
            self._bins = grown
        np.add.at(self._bins, spikes["sample"] // self._bin_samples, 1)
        np.add.at(self._spikes_per_neuron, spikes["neuron"], 1)
        self._saturated += saturated

    def summary(self) -> dict:
        """JSON-safe statistics of the run so far.

        Keys: ``samples``, ``duration_s``, ``n_spikes``, ``rate_hz`` (mean,
        median, p10, p90 over neurons), ``fraction_in_0p1_10hz``,
        ``burst_count``, ``burst_duration_ms_median`` and
        ``inter_burst_interval_s_median`` (None without bursts),
        ``bursts_per_minute``, ``spikes_per_channel`` (ground-truth spikes by
        nearest channel), ``saturated_codes``.
        """
        duration = self._t / self.sample_rate_hz
        n_bins = -(-self._t // self._bin_samples)
        bins = self._bins[:n_bins]
        rates = self._spikes_per_neuron / duration if duration > 0 else \
            np.zeros(self.n_neurons)
        bursts = network_bursts(bins, self.n_neurons,
                                max_gap_bins=int(round(BURST_MERGE_MS / BIN_MS)))
        per_channel = np.bincount(self.nearest_channel, weights=self._spikes_per_neuron,
                                  minlength=self.n_channels).astype(np.int64)
        return {
            "samples": int(self._t),
            "duration_s": float(duration),
            "n_spikes": int(self._spikes_per_neuron.sum()),
            "rate_hz": {
                "mean": float(rates.mean()),
                "median": float(np.median(rates)),
                "p10": float(np.percentile(rates, 10)),
                "p90": float(np.percentile(rates, 90)),
            },
            "fraction_in_0p1_10hz": float(np.mean((rates >= 0.1) & (rates <= 10.0))),
            "burst_count": int(len(bursts)),
            "burst_duration_ms_median": (float(np.median(np.diff(bursts, axis=1)) * BIN_MS)
                                         if len(bursts) else None),
            "inter_burst_interval_s_median": (float(np.median(np.diff(bursts[:, 0])) * BIN_MS
                                                    / 1000.0) if len(bursts) > 1 else None),
            "bursts_per_minute": float(len(bursts) / duration * 60.0) if duration > 0 else 0.0,
            "spikes_per_channel": per_channel.tolist(),
            "saturated_codes": int(self._saturated),
        }

    def population_counts(self) -> np.ndarray:
        """Ground-truth spike count of the whole network per 10 ms bin so far."""
        return self._bins[:-(-self._t // self._bin_samples)].copy()
