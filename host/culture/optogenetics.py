"""ChR2-like optogenetic actuator driven by the LED vector.

Each stim lane k lights a disk around electrode k. The channel population
under lane k follows the two-state (closed/open) kinetic scheme of
channelrhodopsin (Nagel et al. 2003; Nikolic et al. 2009, reduced)::

    dO/dt = k_a * I(t) * (1 - O) - k_d * O,
    k_d = 1 / tau_off,   k_a = 1 / tau_on - 1 / tau_off,

so the channel opens with time constant ``tau_on`` at full light (I = 1)
and closes with ``tau_off`` in the dark. Over one sample I is constant and
the equation is solved exactly. Because the opening is slow compared with
one sample (tau_on = 1 ms = 20 samples at 20 kHz), a pulse-density-modulated
LED (a 0/1 stream per sample) drives O to the same trajectory as a constant
light of the stream's mean density, up to a ripple of order dt / tau_on.

The photocurrent into neuron n is ``max_current * sum_k w_nk O_k`` with
``w_nk`` the irradiance of lane k at the soma: 1 inside the disk, a Gaussian
edge outside, exactly 0 beyond three edge deviations (so a far neuron
receives no light at all).
"""

from __future__ import annotations

import math

import numpy as np

from bioloop.host.jit import njit

__all__ = ["illumination", "chr2_rates", "chr2_open_fraction", "chr2_step"]

#: Open fractions below this are flushed to zero: the photocurrent is then
#: below 1e-8 current units, and the simulation can skip dark lanes.
FLUSH = 1e-9


def illumination(neurons_um: np.ndarray, lane_centres_um: np.ndarray,
                 disk_radius_um: float, edge_um: float):
    """Irradiance of every lane at every soma, as a sparse CSR by neuron.

    Parameters
    ----------
    neurons_um : numpy.ndarray
        (n_neurons, 2) soma positions.
    lane_centres_um : numpy.ndarray
        (n_lanes, 2) centre of each lane's light disk (electrode k for lane k).
    disk_radius_um, edge_um : float
        Full irradiance inside the disk, Gaussian edge of this deviation
        outside, cut at three deviations.

    Returns
    -------
    indptr, lanes, weights : numpy.ndarray
        Lanes lighting neuron n are ``lanes[indptr[n]:indptr[n+1]]`` with
        relative irradiance ``weights[...]`` in (0, 1].
    """
    reach = disk_radius_um + 3.0 * edge_um
    indptr = np.zeros(len(neurons_um) + 1, np.int64)
    lanes, weights = [], []
    for n, p in enumerate(neurons_um):
        r = np.hypot(*(lane_centres_um - p).T) if len(lane_centres_um) else np.zeros(0)
        hit = np.flatnonzero(r <= reach)
        excess = np.maximum(r[hit] - disk_radius_um, 0.0)
        if edge_um > 0:
            w = np.exp(-0.5 * (excess / edge_um) ** 2)
        else:
            w = (excess == 0).astype(np.float64)
        keep = w > 0
        lanes.append(hit[keep])
        weights.append(w[keep])
        indptr[n + 1] = indptr[n] + int(keep.sum())
    def cat(xs, dt):
        return np.concatenate(xs).astype(dt) if xs else np.zeros(0, dt)
    return indptr, cat(lanes, np.int32), cat(weights, np.float64)


def chr2_rates(tau_on_ms: float, tau_off_ms: float, sample_rate_hz: float) -> tuple:
    """Rate constants per sample for :func:`chr2_step`.

    Returns
    -------
    tuple
        ``(ka_dt, kd_dt, e0, e1, o_inf1)``: opening and closing rates times
        dt, the dark decay factor exp(-k_d dt), the full-light factor
        exp(-(k_a + k_d) dt) and the full-light steady state k_a / (k_a + k_d).
    """
    dt_ms = 1000.0 / sample_rate_hz
    kd = 1.0 / tau_off_ms
    ka = 1.0 / tau_on_ms - kd
    return (ka * dt_ms, kd * dt_ms, math.exp(-kd * dt_ms),
                      math.exp(-(ka + kd) * dt_ms), ka / (ka + kd))


@njit(cache=True, inline="always")
def chr2_step(o, intensity, ka_dt, kd_dt, e0, e1, o_inf1):
    """Advance one lane's open fraction by one sample of constant intensity.

    Exact solution of the linear ODE over the sample; the two common
    intensities (dark and full PDM "on") use precomputed factors.
    """
    if intensity == 0.0:
        o = o * e0
    elif intensity == 1.0:
        o = o_inf1 + (o - o_inf1) * e1
    else:
        rate = ka_dt * intensity + kd_dt
        o_inf = ka_dt * intensity / rate
        o = o_inf + (o - o_inf) * math.exp(-rate)
    if o < FLUSH:
        o = 0.0
    return o


@njit(cache=True)
def _open_fraction_kernel(led, o0, ka_dt, kd_dt, e0, e1, o_inf1):
    n, lanes = led.shape
    out = np.empty((n, lanes), np.float64)
    o = o0.copy()
    for i in range(n):
        for k in range(lanes):
            o[k] = chr2_step(o[k], float(led[i, k]), ka_dt, kd_dt, e0, e1, o_inf1)
            out[i, k] = o[k]
    return out


def chr2_open_fraction(led, tau_on_ms: float = 1.0, tau_off_ms: float = 10.0,
                       sample_rate_hz: float = 20_000.0, o0=None) -> np.ndarray:
    """Open-fraction trajectory of independent lanes under an LED drive.

    Parameters
    ----------
    led : array_like
        (n_samples, n_lanes) intensities in [0, 1] (bool accepted).
    tau_on_ms, tau_off_ms, sample_rate_hz : float
        Kinetics and sample rate.
    o0 : array_like, optional
        Initial open fraction per lane (default closed).

    Returns
    -------
    numpy.ndarray
        float64 (n_samples, n_lanes): O after each sample.
    """
    led = np.asarray(led, dtype=np.float64)
    if led.ndim != 2:
        raise ValueError(f"led must be 2-D (n_samples, n_lanes), got shape {led.shape}")
    o0 = np.zeros(led.shape[1]) if o0 is None else np.asarray(o0, np.float64)
    return _open_fraction_kernel(led, o0, *chr2_rates(tau_on_ms, tau_off_ms, sample_rate_hz))
