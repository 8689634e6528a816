"""Extracellular field and probe: spike templates, 1/r falloff, electrode noise.

Source-to-field in the spirit of forward models of extracellular potentials
(emitter -> source -> field -> probe): every spike adds a biphasic template,
scaled by a point-source gain ``A_n * r_min / max(r, r_min)`` (V ~ 1/r in a
homogeneous conductor; Nunez & Srinivasan 2006), to every electrode within
the cut-off distance. Electrode noise is white plus 1/f, independent per
channel, generated in fixed internal chunks so that how a caller splits the
samples into blocks never changes a single value.
"""

from __future__ import annotations

import numpy as np

from bioloop.host.jit import ENABLED as _JIT, njit

__all__ = ["biphasic_template", "point_source_gains", "render_spikes", "ElectrodeNoise",
           "PINK_B", "PINK_A"]


def biphasic_template(sample_rate_hz: float, ms_before: float, ms_after: float,
                      width: float = 1.0) -> np.ndarray:
    """Normalised extracellular action-potential waveform.

    A sharp negative trough (Gaussian, sd 0.12 ms x width) followed by a slow
    positive repolarisation hump (amplitude 0.3, centred 0.45 ms x width after
    the trough, sd 0.3 ms x width), the shape recorded from somata by planar
    MEAs. Cosine tapers over the first and last fifth bring both ends to
    exactly zero.

    Parameters
    ----------
    sample_rate_hz : float
    ms_before, ms_after : float
        Extent before and after the trough.
    width : float
        Time scale factor (fast-spiking interneurons have narrower spikes,
        about 0.6).

    Returns
    -------
    numpy.ndarray
        float32 (n_before + n_after,), minimum exactly -1 at index
        ``n_before = round(ms_before * sample_rate_hz / 1000)``.
    """
    nb = int(round(ms_before * sample_rate_hz / 1000.0))
    na = int(round(ms_after * sample_rate_hz / 1000.0))
    t = (np.arange(nb + na) - nb) * 1000.0 / sample_rate_hz  # ms from trough
    trough = -np.exp(-0.5 * (t / (0.12 * width)) ** 2)
    hump = 0.3 * np.exp(-0.5 * ((t - 0.45 * width) / (0.3 * width)) ** 2)
    w = trough + hump
    taper = np.ones(len(t))
    k = max(1, len(t) // 5)
    ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(k) / k)
    taper[:k] = ramp
    taper[-k:] = np.minimum(taper[-k:], ramp[::-1])
    w = w * taper
    w = w / -w[nb]
    return w.astype(np.float32)


def point_source_gains(neurons_um: np.ndarray, electrodes_um: np.ndarray,
                       amplitude_uv: np.ndarray, soma_height_um: float,
                       min_distance_um: float, cutoff_um: float):
    """Peak amplitude of every neuron at every electrode, sparse by neuron.

    ``gain = A_n * r_min / max(r, r_min)``, with r the 3-D distance from the
    soma (at ``soma_height_um`` above the plane) to the electrode, zero
    beyond ``cutoff_um``.

    Returns
    -------
    indptr, channel, gain : numpy.ndarray
        Channels reached by neuron n are ``channel[indptr[n]:indptr[n+1]]``
        with trough amplitude ``gain`` (µV, positive; the template supplies
        the sign).
    """
    n = len(neurons_um)
    indptr = np.zeros(n + 1, np.int64)
    chans, gains = [], []
    for i in range(n):
        dxy = electrodes_um - neurons_um[i]
        r = np.sqrt((dxy**2).sum(1) + soma_height_um**2)
        hit = np.flatnonzero(r <= cutoff_um)
        chans.append(hit.astype(np.int32))
        gains.append(amplitude_uv[i] * min_distance_um / np.maximum(r[hit], min_distance_um))
        indptr[i + 1] = indptr[i] + len(hit)
    return (indptr, np.concatenate(chans).astype(np.int32) if n else np.zeros(0, np.int32),
            np.concatenate(gains).astype(np.float32) if n else np.zeros(0, np.float32))


@njit(cache=True)
def render_spikes(acc, first_sample, spike_neuron, spike_emit, gain_ptr, gain_channel,
                  gain_value, templates, template_of):
    """Add the templates of spikes to a field accumulator in place.

    Parameters
    ----------
    acc : numpy.ndarray
        float32 (rows, n_channels); row 0 is absolute sample ``first_sample``.
    spike_neuron, spike_emit : numpy.ndarray
        Emitting neuron and emission sample (the template's first sample).
    gain_ptr, gain_channel, gain_value
        Sparse gains from :func:`point_source_gains`.
    templates : numpy.ndarray
        float32 (n_templates, length).
    template_of : numpy.ndarray
        Template index of each neuron.
    """
    length = templates.shape[1]
    for s in range(spike_neuron.shape[0]):
        n = spike_neuron[s]
        row0 = spike_emit[s] - first_sample
        tp = templates[template_of[n]]
        # Row-major walk (sample outer, channel inner) keeps large arrays in
        # cache; each (sample, channel) still gets one term per spike, in
        # spike order, so the sums do not depend on the block split.
        for k in range(length):
            row = acc[row0 + k]
            tk = tp[k]
            for j in range(gain_ptr[n], gain_ptr[n + 1]):
                row[gain_channel[j]] += gain_value[j] * tk


def _render_spikes_numpy(acc, first_sample, spike_neuron, spike_emit, gain_ptr, gain_channel,
                         gain_value, templates, template_of):
    """The numpy path of :func:`render_spikes`: one outer product per spike, in spike order."""
    length = templates.shape[1]
    for s in range(spike_neuron.shape[0]):
        n = spike_neuron[s]
        row0 = spike_emit[s] - first_sample
        j0, j1 = gain_ptr[n], gain_ptr[n + 1]
        if j1 > j0:
            tp = templates[template_of[n]]
            acc[row0:row0 + length, gain_channel[j0:j1]] += gain_value[j0:j1][None, :] * tp[:, None]


if not _JIT:
    render_spikes = _render_spikes_numpy


# 1/f ("pink") noise filter of J. O. Smith, Spectral Audio Signal Processing
# (CCRMA), "Example: Synthesis of 1/F Noise": three pole-zero pairs that hold
# a -10 dB/decade slope within about 0.5 dB over three decades of normalised
# frequency.
PINK_B = np.array([0.049922035, -0.095993537, 0.050612699, -0.004408786])
PINK_A = np.array([1.0, -2.494956002, 2.017265875, -0.522189400])


def _pink_gain() -> float:
    """RMS of the pink filter's output for unit-variance white input."""
    from scipy.signal import lfilter
    impulse = np.zeros(1 << 17)
    impulse[0] = 1.0
    h = lfilter(PINK_B, PINK_A, impulse)
    return float(np.sqrt((h**2).sum()))


def _pink_state_cholesky() -> np.ndarray:
    """Cholesky factor of the stationary covariance of the pink filter's state.

    The transposed direct form II state s evolves as s' = A s + B x for unit
    white input x; its stationary covariance solves the discrete Lyapunov
    equation P = A P A^T + B B^T.
    """
    from scipy.linalg import solve_discrete_lyapunov
    b, a = PINK_B, PINK_A
    A = np.array([[-a[1], 1.0, 0.0], [-a[2], 0.0, 1.0], [-a[3], 0.0, 0.0]])
    B = np.array([b[1] - a[1] * b[0], b[2] - a[2] * b[0], b[3] - a[3] * b[0]])
    return np.linalg.cholesky(solve_discrete_lyapunov(A, np.outer(B, B)))


_PINK_STATE_CHOL = _pink_state_cholesky()


@njit(cache=True)
def _pink_filter(x, state, b, a):
    """Direct form II transposed IIR of order 3 along axis 0, per channel, in place."""
    n, ch = x.shape
    for i in range(n):
        for c in range(ch):
            xi = np.float64(x[i, c])
            y = b[0] * xi + state[0, c]
            state[0, c] = b[1] * xi - a[1] * y + state[1, c]
            state[1, c] = b[2] * xi - a[2] * y + state[2, c]
            state[2, c] = b[3] * xi - a[3] * y
            x[i, c] = y


def _pink_filter_numpy(x, state, b, a):
    """The numpy path of :func:`_pink_filter`: the same recursion, all channels at once."""
    for i in range(x.shape[0]):
        xi = x[i].astype(np.float64)
        y = b[0] * xi + state[0]
        state[0] = b[1] * xi - a[1] * y + state[1]
        state[1] = b[2] * xi - a[2] * y + state[2]
        state[2] = b[3] * xi - a[3] * y
        x[i] = y


if not _JIT:
    _pink_filter = _pink_filter_numpy


class ElectrodeNoise:
    """White plus 1/f electrode noise, reproducible and block-size independent.

    Samples are produced in fixed chunks of ``chunk`` samples; a chunk draws
    ``chunk x n_channels`` standard normals for the white part and as many for
    the 1/f part, in that order, from one seeded generator, and the 1/f
    filter state carries over between chunks.

    Parameters
    ----------
    n_channels : int
    white_uv_rms, pink_uv_rms : float
        Target RMS of each component (the 1/f filter is normalised by its
        impulse-response energy, so its stationary RMS is exact).
    rng : numpy.random.Generator
    chunk : int, optional
        Samples per chunk; by default about 2**20 values per chunk.
    """

    def __init__(self, n_channels: int, white_uv_rms: float, pink_uv_rms: float,
                 rng: np.random.Generator, chunk: int | None = None):
        self.n_channels = n_channels
        self.white = float(white_uv_rms)
        self.pink = float(pink_uv_rms)
        self._rng = rng
        # About a million values per chunk whatever the channel count; the
        # chunk depends only on n_channels, never on how callers step.
        self._chunk = chunk if chunk is not None else max(256, (1 << 20) // max(1, n_channels))
        self._buf = np.zeros((0, n_channels), np.float32)
        self._pos = 0
        self._state = np.zeros((3, n_channels), np.float64)
        self._pink_scale = self.pink / _pink_gain() if self.pink > 0 else 0.0
        self._warm = False

    @property
    def silent(self) -> bool:
        """True when both components are zero (noise-free configuration)."""
        return self.white == 0.0 and self.pink == 0.0

    def _refill(self) -> None:
        n, c = self._chunk, self.n_channels
        out = np.empty((n, c), np.float32)
        if self.white > 0:
            self._rng.standard_normal(dtype=np.float32, out=out)
            out *= np.float32(self.white)
        else:
            out[:] = 0.0
        if self.pink > 0:
            if not self._warm:
                # Start the 1/f filter in its stationary state, so the first
                # samples already have the configured RMS.
                self._warm = True
                self._state[:] = _PINK_STATE_CHOL @ self._rng.standard_normal((3, c))
            x = self._rng.standard_normal((n, c), dtype=np.float32)
            _pink_filter(x, self._state, PINK_B, PINK_A)
            x *= np.float32(self._pink_scale)
            out += x
        self._buf = out
        self._pos = 0

    def take(self, n_samples: int) -> np.ndarray:
        """Next ``n_samples`` of noise, float32 (n_samples, n_channels) in µV."""
        out = np.empty((n_samples, self.n_channels), np.float32)
        if self.silent:
            out[:] = 0.0
            return out
        done = 0
        while done < n_samples:
            if self._pos == len(self._buf):
                self._refill()
            k = min(n_samples - done, len(self._buf) - self._pos)
            out[done:done + k] = self._buf[self._pos:self._pos + k]
            self._pos += k
            done += k
        return out
