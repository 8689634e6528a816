"""SpikeInterface interoperability: export culture runs, replay any recording.

Needs the ``[sort]`` extra (spikeinterface, probeinterface). Probes are built
locally from the culture's electrode positions; nothing is downloaded
(``probeinterface.get_probe`` would fetch from the network and is never used).
"""

from __future__ import annotations

import numpy as np

from .culture import SPIKE_DTYPE, CultureBlock

__all__ = ["make_probe", "to_recording", "to_sorting", "sorting_spikes", "RecordingSource"]

#: Contact radius drawn for the probe (MCS 60MEA200/30: 30 µm diameter).
CONTACT_RADIUS_UM = 15.0


def make_probe(positions_um: np.ndarray, radius_um: float = CONTACT_RADIUS_UM):
    """A planar ``probeinterface.Probe`` with circular contacts, wired 1:1.

    Parameters
    ----------
    positions_um : numpy.ndarray
        (n_channels, 2) contact centres; contact k is device channel k.
    radius_um : float
        Contact radius.
    """
    from probeinterface import Probe

    probe = Probe(ndim=2, si_units="um")
    probe.set_contacts(positions=np.asarray(positions_um, float), shapes="circle",
                       shape_params={"radius": radius_um})
    probe.set_device_channel_indices(np.arange(len(positions_um)))
    return probe


def to_recording(block: CultureBlock, culture, as_codes: bool = False):
    """Export a block as a SpikeInterface ``NumpyRecording`` with its probe.

    Parameters
    ----------
    block : CultureBlock
        Output of ``Culture.step`` (possibly concatenated); the recording's
        frame 0 is ``block.t0_sample``.
    culture : Culture
        The culture that produced the block (geometry, sample rate, scale).
    as_codes : bool
        Export the int16 codes with gain ``uv_per_code`` instead of float32 µV.

    Returns
    -------
    spikeinterface.core.BaseRecording
        ``get_traces(return_in_uV=True)`` gives µV in both cases.
    """
    from spikeinterface.core import NumpyRecording

    traces = block.codes if as_codes else block.voltages_uv
    rec = NumpyRecording([traces], sampling_frequency=culture.sample_rate_hz,
                         channel_ids=np.arange(traces.shape[1]))
    gain = culture.config.uv_per_code if as_codes else 1.0
    rec.set_channel_gains(gain)
    rec.set_channel_offsets(0.0)
    # SpikeInterface >= 0.105 attaches the probe in place.
    rec.set_probe(make_probe(culture.electrode_positions_um), group_mode="by_probe")
    return rec


def to_sorting(block: CultureBlock, culture):
    """Export the block's ground truth as a SpikeInterface ``NumpySorting``.

    Units are the culture's neurons (unit id = neuron index, every neuron a
    unit even if silent); spike frames are relative to ``block.t0_sample``.
    The nearest channel of each unit is stored as the unit property
    ``"nearest_channel"``.
    """
    from spikeinterface.core import NumpySorting

    spikes = block.spikes
    sorting = NumpySorting.from_samples_and_labels(
        [spikes["sample"] - block.t0_sample], [spikes["neuron"].astype(np.int64)],
        culture.sample_rate_hz, unit_ids=np.arange(culture.n_neurons))
    sorting.set_property("nearest_channel", culture.nearest_channel.astype(np.int64))
    return sorting


def sorting_spikes(sorting, segment_index: int = 0):
    """All spikes of a SpikeInterface sorting as flat arrays.

    Returns
    -------
    samples, unit_index : numpy.ndarray
        int64 frames sorted by time, and the index of each spike's unit in
        ``sorting.unit_ids``.
    """
    samples, labels = [], []
    for i, uid in enumerate(sorting.unit_ids):
        st = np.asarray(sorting.get_unit_spike_train(uid, segment_index=segment_index), np.int64)
        samples.append(st)
        labels.append(np.full(len(st), i, np.int64))
    s = np.concatenate(samples) if samples else np.zeros(0, np.int64)
    u = np.concatenate(labels) if labels else np.zeros(0, np.int64)
    order = np.lexsort((u, s))
    return s[order], u[order]


class RecordingSource:
    """Any SpikeInterface recording as a block source with the culture's API.

    ``step(n_samples, led=None)`` returns a :class:`CultureBlock` of the next
    samples (µV float32 and int16 codes), so bioloop pipelines written
    against ``Culture`` run unchanged on recorded or generated data. A
    recording cannot respond to light: the LED drive is validated for shape
    and counted in ``ignored_led_samples``, never applied.

    Parameters
    ----------
    recording : spikeinterface.core.BaseRecording
    segment_index : int
    uv_per_code : float
        ADC scale of the codes.
    sorting : spikeinterface.core.BaseSorting, optional
        Ground truth; when given, blocks carry its spikes (unit index as
        ``neuron``; as ``nearest_channel`` the unit property
        ``nearest_channel``, else the index of ``main_channel_id`` as set by
        ``generate_ground_truth_recording``, else -1).
    n_lanes : int, optional
        Number of LED lanes accepted (default: one per channel).
    """

    def __init__(self, recording, segment_index: int = 0, uv_per_code: float = 0.195,
                 sorting=None, n_lanes: int | None = None):
        if not uv_per_code > 0:
            raise ValueError(f"uv_per_code must be > 0, got {uv_per_code!r}")
        self.recording = recording
        self.segment_index = segment_index
        self.uv_per_code = float(uv_per_code)
        self.sample_rate_hz = float(recording.get_sampling_frequency())
        self.n_channels = recording.get_num_channels()
        self.n_lanes = self.n_channels if n_lanes is None else int(n_lanes)
        self.n_total = recording.get_num_samples(segment_index=segment_index)
        self.ignored_led_samples = 0
        self._t = 0
        self._gt = None
        if sorting is not None:
            s, u = sorting_spikes(sorting, segment_index)
            keys = sorting.get_property_keys()
            if "nearest_channel" in keys:
                ch = np.asarray(sorting.get_property("nearest_channel"))[u]
            elif "main_channel_id" in keys:
                # generate_ground_truth_recording stores each unit's main channel id.
                main = recording.ids_to_indices(list(sorting.get_property("main_channel_id")))
                ch = np.asarray(main)[u]
            else:
                ch = np.full(len(u), -1)
            gt = np.empty(len(s), SPIKE_DTYPE)
            gt["neuron"], gt["sample"], gt["nearest_channel"] = u, s, ch
            self._gt = gt

    @property
    def t(self) -> int:
        """Index of the next sample."""
        return self._t

    @property
    def remaining(self) -> int:
        return self.n_total - self._t

    def step(self, n_samples: int, led=None) -> CultureBlock:
        """Next ``min(n_samples, remaining)`` samples as a :class:`CultureBlock`."""
        if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)):
            raise TypeError(f"n_samples must be an integer, got {n_samples!r}")
        if n_samples < 0:
            raise ValueError(f"n_samples must be >= 0, got {n_samples}")
        n = min(int(n_samples), self.remaining)
        if led is not None:
            arr = np.asarray(led)
            ok = arr.shape == (self.n_lanes,) or arr.shape == (n_samples, self.n_lanes)
            if not ok:
                raise ValueError(f"led has shape {arr.shape}; expected ({self.n_lanes},) "
                                 f"or ({n_samples}, {self.n_lanes})")
            self.ignored_led_samples += n
        t0 = self._t
        traces = self.recording.get_traces(segment_index=self.segment_index, start_frame=t0,
                                           end_frame=t0 + n, return_in_uV=True)
        volts = np.ascontiguousarray(traces, dtype=np.float32)
        if not np.isfinite(volts).all():
            row, ch = np.argwhere(~np.isfinite(volts))[0]
            raise ValueError(f"recording has a non-finite value at channel {ch}, sample "
                             f"{t0 + row}; the culture pipeline needs finite values")
        scaled = np.rint(volts / np.float32(self.uv_per_code))
        saturated = int(np.count_nonzero((scaled > 32767) | (scaled < -32768)))
        codes = np.clip(scaled, -32768, 32767).astype(np.int16)
        if self._gt is not None:
            sel = (self._gt["sample"] >= t0) & (self._gt["sample"] < t0 + n)
            spikes = self._gt[sel]
        else:
            spikes = np.zeros(0, SPIKE_DTYPE)
        self._t = t0 + n
        return CultureBlock(t0, volts, codes, spikes, saturated)
