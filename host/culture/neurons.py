"""Izhikevich emitters: presets, per-neuron parameters and the stepping kernel.

The membrane follows Izhikevich (2003)::

    v' = 0.04 v^2 + 5 v + 140 - u + I,    u' = a (b v - u),
    if v >= 30 mV:  v <- c,  u <- u + d,

with v in mV, t in ms and I in the model's current units (capacitance 1).
It is integrated with forward Euler at the sample step (0.05 ms at 20 kHz,
twenty times finer than the 1 ms of the original paper, so one step per
sample is accurate and every spike has a sample-exact time).

The input current is the sum of a fast and a slow (NMDA-like) excitatory
and an inhibitory exponential synaptic current (decay tau_exc, tau_slow,
tau_inh; the slow one carries ``slow_fraction`` of the excitatory charge),
an independent Poisson background into the fast excitatory current, the
ChR2 photocurrent (``optogenetics``), minus a spike-rate adaptation current
of the excitatory neurons (raised by ``adapt_increment`` per spike, decaying
with tau_adaptation). Spikes reach their targets after a per-synapse
conduction delay through a ring buffer; each presynaptic neuron's release is
scaled by its Tsodyks-Markram resource (depression U, recovery tau_rec;
Tsodyks & Markram 1997). Depression and adaptation end a network burst and
space the next one; the slow excitation makes it last hundreds of ms.

Everything is processed in sample order and, inside a sample, in neuron
order, and every random draw comes from one generator in that order, so the
result does not depend on how the samples are split into blocks.
"""

from __future__ import annotations

import math

import numpy as np

from bioloop.host.jit import njit

from .optogenetics import chr2_step

__all__ = ["PRESETS", "izhikevich_parameters", "advance"]

#: (a, b, c, d) of the standard Izhikevich presets (Izhikevich 2003, Fig. 2;
#: Izhikevich 2004).
PRESETS: dict[str, tuple[float, float, float, float]] = {
    "regular_spiking": (0.02, 0.2, -65.0, 8.0),
    "intrinsically_bursting": (0.02, 0.2, -55.0, 4.0),
    "chattering": (0.02, 0.2, -50.0, 2.0),
    "fast_spiking": (0.1, 0.2, -65.0, 2.0),
    "low_threshold_spiking": (0.02, 0.25, -65.0, 2.0),
}

#: Spike cut-off of the Izhikevich model, mV.
V_PEAK = 30.0


def izhikevich_parameters(is_excitatory: np.ndarray, excitatory_preset: str,
                          inhibitory_preset: str, heterogeneity: float,
                          rng: np.random.Generator):
    """Per-neuron (a, b, c, d) following Izhikevich (2003).

    Excitatory neurons: c += 15 h r^2, d -= 6 h r^2 (regular spiking drifts
    towards chattering). Inhibitory neurons: a += 0.08 h r, b -= 0.05 h r.
    Here r is uniform in [0, 1] per neuron and h the heterogeneity.

    Returns
    -------
    a, b, c, d : numpy.ndarray
        float64 arrays of length n_neurons.
    """
    n = len(is_excitatory)
    r = rng.random(n)
    ex, inh = np.asarray(PRESETS[excitatory_preset]), np.asarray(PRESETS[inhibitory_preset])
    p = np.where(is_excitatory[:, None], ex[None, :], inh[None, :]).copy()
    h = heterogeneity
    p[:, 2] += np.where(is_excitatory, 15.0 * h * r**2, 0.0)
    p[:, 3] -= np.where(is_excitatory, 6.0 * h * r**2, 0.0)
    p[:, 3] = np.maximum(p[:, 3], 0.0)
    p[:, 0] += np.where(is_excitatory, 0.0, 0.08 * h * r)
    p[:, 1] -= np.where(is_excitatory, 0.0, 0.05 * h * r)
    return p[:, 0].copy(), p[:, 1].copy(), p[:, 2].copy(), p[:, 3].copy()


@njit(cache=True)
def advance(n_samples, t0, dt_ms,
            v, u, a, b, c, d, is_exc,
            i_exc, i_inh, decay_exc, decay_inh, ring_exc, ring_inh,
            i_slow, decay_slow, slow_fraction, slow_scale,
            syn_ptr, syn_target, syn_weight, syn_delay,
            resource, last_spike, dep_u, tau_rec_samples,
            adapt, adapt_decay, adapt_increment,
            bg_next, bg_interval, bg_weight, rng,
            led, led_per_sample, lane_o, ka_dt, kd_dt, e0, e1, o_inf1,
            lane_ptr, lane_neuron, lane_weight, max_current,
            out_neuron, out_sample):
    """Advance the network by ``n_samples`` samples starting at sample ``t0``.

    All state arrays are updated in place. ``led`` is (rows, n_lanes) float64;
    row ``i`` is used for sample ``i`` when ``led_per_sample`` is true, row 0
    for every sample otherwise; a (1, 0) array means no light this block.

    Returns
    -------
    done, count
        Samples processed (fewer than ``n_samples`` only when the output
        arrays could overflow; call again with larger ones for the rest) and
        spikes written to ``out_neuron`` / ``out_sample`` (threshold
        crossings, in sample then neuron order).
    """
    n_neurons = v.shape[0]
    n_lanes = lane_o.shape[0]
    depth = ring_exc.shape[0]
    count = 0
    has_led = led.shape[1] > 0
    # Lanes are simulated only while some lane is open or lit.
    lanes_live = False
    for k in range(n_lanes):
        if lane_o[k] != 0.0:
            lanes_live = True
            break
    capacity = out_neuron.shape[0]
    current = np.empty(n_neurons)
    photo = np.empty(n_neurons)
    for i in range(n_samples):
        # One sample emits at most n_neurons spikes; hand back to the caller
        # to grow the output before it could overflow (growing in here
        # stops numba from optimising the loop).
        if count + n_neurons > capacity:
            return i, count
        t = t0 + i
        slot = t % depth
        if has_led or lanes_live:
            row = i if led_per_sample else 0
            lanes_live = False
            for k in range(n_lanes):
                intensity = led[row, k] if has_led else 0.0
                if intensity != 0.0 or lane_o[k] != 0.0:
                    lane_o[k] = chr2_step(lane_o[k], intensity, ka_dt, kd_dt, e0, e1, o_inf1)
                    if lane_o[k] != 0.0:
                        lanes_live = True
        # A sample in passes over the neurons, each in neuron order: the background, the
        # synaptic and photo currents, the membrane, the spikes. Every neuron goes through the
        # same operations in the same order as in one pass (delays are >= 1 sample, so no spike
        # reaches this sample's slot); the passes without branches let the compiler vectorise
        # them (issue 13).
        for n in range(n_neurons):
            # Poisson background: event times are continuous, delivered at
            # the first sample at or after them.
            while bg_next[n] <= t:
                i_exc[n] += bg_weight
                bg_next[n] += rng.exponential(bg_interval)
        for n in range(n_neurons):
            arriving = ring_exc[slot, n]
            # a select, not a branch (vectorisable), and no addition of a 0.0 that could turn
            # a -0.0 into +0.0
            fast, slow = i_exc[n] + (1.0 - slow_fraction) * arriving, i_slow[n] + slow_scale * arriving
            i_exc[n] = fast if arriving != 0.0 else i_exc[n]
            i_slow[n] = slow if arriving != 0.0 else i_slow[n]
            ring_exc[slot, n] = 0.0 if arriving != 0.0 else arriving     # (a -0.0 stays)
            i_inh[n] += ring_inh[slot, n]
            ring_inh[slot, n] = 0.0
            current[n] = i_exc[n] + i_slow[n] - i_inh[n] - adapt[n]
        if lanes_live:
            # photo[n] = sum over the lanes k lighting n, in ascending k, of w_nk O_k: lane by
            # lane, skipping closed lanes (their w O is +0.0, which changes no sum here).
            for n in range(n_neurons):
                photo[n] = 0.0
            for k in range(n_lanes):
                o = lane_o[k]
                if o != 0.0:
                    for j in range(lane_ptr[k], lane_ptr[k + 1]):
                        photo[lane_neuron[j]] += lane_weight[j] * o
            for n in range(n_neurons):
                current[n] += max_current * photo[n]
        for n in range(n_neurons):
            vn = v[n]
            vn += dt_ms * (0.04 * vn * vn + 5.0 * vn + 140.0 - u[n] + current[n])
            u[n] += dt_ms * a[n] * (b[n] * vn - u[n])
            v[n] = vn
        for n in range(n_neurons):
            i_exc[n] *= decay_exc
        for n in range(n_neurons):
            i_inh[n] *= decay_inh
        for n in range(n_neurons):
            i_slow[n] *= decay_slow
        for n in range(n_neurons):
            adapt[n] *= adapt_decay
        for n in range(n_neurons):
            if v[n] >= 30.0:
                v[n] = c[n]
                u[n] += d[n]
                if is_exc[n]:
                    adapt[n] += adapt_increment
                # Tsodyks-Markram depression, recovered exactly since the
                # neuron's previous spike.
                res = 1.0 - (1.0 - resource[n]) * math.exp(-(t - last_spike[n]) / tau_rec_samples)
                scale = res  # release U*res relative to a fresh synapse's U
                resource[n] = res - dep_u * res
                last_spike[n] = t
                ring = ring_exc if is_exc[n] else ring_inh
                for j in range(syn_ptr[n], syn_ptr[n + 1]):
                    at = slot + syn_delay[j]            # (t + delay) % depth: 1 <= delay < depth
                    if at >= depth:
                        at -= depth
                    ring[at, syn_target[j]] += syn_weight[j] * scale
                out_neuron[count] = n
                out_sample[count] = t
                count += 1
    return n_samples, count
