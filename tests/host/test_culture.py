"""In-silico culture: determinism, block invariance, field, noise, light, rates and bursts.

Truths used: byte equality for determinism; an independent numpy sum of
templates at point-source gains recomputed from the geometry; the analytic
solution of the ChR2 two-state ODE; the 1/f law of the pink component; the
culture-physiology ranges of the issue (0.1-10 Hz, recurring network bursts
recruiting much of the network, Wagenaar et al. 2006).
"""


import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.signal import welch
from scipy.spatial import cKDTree

from bioloop.host.culture.culture import BURST_MERGE_MS
from bioloop.host.culture import (Culture, CultureBlock, CultureConfig, chr2_open_fraction,
                                  network_bursts)

FS = 20_000

SMALL = (CultureConfig().with_network(n_neurons=200, connection_probability=0.3)
         .with_seed(11))


def _run_in_blocks(cfg, sizes, led_fn=None):
    culture = Culture(cfg)
    blocks = []
    for n in sizes:
        led = None if led_fn is None else led_fn(culture.t, n, culture.n_lanes)
        blocks.append(culture.step(n, led))
    return culture, CultureBlock.concatenate(blocks)


def _same_bytes(a: CultureBlock, b: CultureBlock):
    assert a.t0_sample == b.t0_sample
    assert a.voltages_uv.dtype == np.float32 and a.codes.dtype == np.int16
    assert a.voltages_uv.tobytes() == b.voltages_uv.tobytes()
    assert a.codes.tobytes() == b.codes.tobytes()
    assert a.spikes.tobytes() == b.spikes.tobytes()
    assert a.saturated == b.saturated


def test_same_seed_same_bytes_other_seed_differs():
    a = Culture(SMALL).step(8000)
    b = Culture(SMALL).step(8000)
    _same_bytes(a, b)
    c = Culture(SMALL.with_seed(12)).step(8000)
    assert a.voltages_uv.tobytes() != c.voltages_uv.tobytes()
    assert len(a.spikes) > 0


def _pdm_led(t0, n, lanes):
    """A deterministic LED drive: PDM on lane 20 by absolute sample, lane 3 held at 0.4."""
    t = np.arange(t0, t0 + n)
    led = np.zeros((n, lanes))
    led[:, 20] = ((t * 2654435761) % 1000) < 500   # density 0.5, pseudo-random
    led[(t // 4000) % 2 == 1, 3] = 0.4               # 200 ms on, 200 ms off
    return led


@pytest.mark.parametrize("with_light", [False, True])
def test_block_size_does_not_change_a_byte(with_light):
    total = 20_000
    led_fn = _pdm_led if with_light else None
    _, whole = _run_in_blocks(SMALL, [total], led_fn)
    rng = np.random.default_rng(2)
    sizes = [1, 0, 7, 33, 31, 4096, 2]
    sizes += list(rng.integers(1, 3000, size=40))
    sizes = [int(s) for s in sizes]
    cut = []
    left = total
    for s in sizes:
        s = min(s, left)
        cut.append(s)
        left -= s
    cut.append(left)
    culture, pieces = _run_in_blocks(SMALL, cut, led_fn)
    _same_bytes(whole, pieces)
    if with_light:   # the light did something
        _, dark = _run_in_blocks(SMALL, [total])
        lit = np.flatnonzero(culture.illumination_matrix()[:, 20] > 0.5)
        assert np.isin(whole.spikes["neuron"], lit).sum() > \
            2 * np.isin(dark.spikes["neuron"], lit).sum()


def test_held_led_vector_equals_the_same_per_sample_array():
    vec = np.zeros(60)
    vec[[5, 30]] = [1.0, 0.25]
    a = Culture(SMALL).step(5000, vec)
    b = Culture(SMALL).step(5000, np.tile(vec, (5000, 1)))
    _same_bytes(a, b)
    dark = Culture(SMALL).step(5000, np.zeros(60, bool))
    _same_bytes(dark, Culture(SMALL).step(5000))


def test_bad_led_is_rejected_by_name_and_loses_nothing():
    culture = Culture(SMALL)
    first = culture.step(1000)
    bad = np.zeros((500, 60))
    bad[123, 7] = np.nan
    with pytest.raises(ValueError, match="sample 123, lane 7"):
        culture.step(500, bad)
    with pytest.raises(ValueError, match="lane 2 is outside"):
        culture.step(500, np.r_[0.0, 0.0, 1.5, np.zeros(57)])
    with pytest.raises(ValueError, match="expected"):
        culture.step(500, np.zeros((499, 60)))
    with pytest.raises(ValueError, match="59 lanes"):
        culture.step(500, np.zeros(59))
    with pytest.raises(ValueError, match="n_samples"):
        culture.step(-1)
    with pytest.raises(TypeError, match="n_samples"):
        culture.step(2.5)
    assert culture.t == 1000
    rest = culture.step(1000)
    _, ref = _run_in_blocks(SMALL, [2000])
    _same_bytes(CultureBlock.concatenate([first, rest]), ref)


def test_noise_free_voltage_is_the_sum_of_templates_at_point_source_gains():
    cfg = (CultureConfig().with_network(n_neurons=120, connection_probability=0.3,
                                     background_rate_hz=40.0)
           .with_noise(white_uv_rms=0.0, pink_uv_rms=0.0).with_seed(4))
    culture = Culture(cfg)
    blocks = [culture.step(n) for n in (3000, 17, 2983)]   # cuts through templates
    run = CultureBlock.concatenate(blocks)
    assert len(run.spikes) > 50

    # Gains recomputed from the geometry: A_n * r_min / max(r, r_min), r in 3-D.
    fc, lc = cfg.field, cfg.layout
    d = culture.neuron_positions_um[:, None, :] - culture.electrode_positions_um[None]
    r = np.sqrt((d**2).sum(-1) + lc.soma_height_um**2)
    gains = culture.amplitude_uv[:, None] * fc.min_distance_um / np.maximum(r, fc.min_distance_um)
    gains[r > fc.cutoff_um] = 0.0
    np.testing.assert_allclose(culture.gain_matrix(), gains, rtol=1e-6)

    # Expected field: every ground-truth spike's template, trough at its sample.
    # Spikes emitted near the end have their trough after the run; include them
    # from a longer noise-free continuation of an identical culture.
    twin = Culture(cfg)
    tail = CultureBlock.concatenate([twin.step(6000), twin.step(200)])
    length = culture.templates.shape[1]
    nb = culture.n_before
    expected = np.zeros((6000 + length, culture.n_channels))
    for neuron, sample in zip(tail.spikes["neuron"], tail.spikes["sample"], strict=True):
        start = sample - nb
        if start >= 6000:
            continue
        tpl = culture.templates[culture.template_index[neuron]].astype(np.float64)
        expected[start:start + length] += tpl[:, None] * gains[neuron][None, :]
    np.testing.assert_allclose(run.voltages_uv, expected[:6000], atol=2e-3, rtol=1e-5)
    # Spike amplitudes at the nearest electrode: tens to a few hundred µV.
    near = gains[np.arange(len(gains)), culture.nearest_channel]
    assert np.median(near) > 30 and np.percentile(near, 95) < 600


def test_template_shape():
    tpl = Culture(SMALL).templates
    nb = Culture(SMALL).n_before
    assert nb == 10   # 0.5 ms at 20 kHz
    for t in tpl:
        assert t[nb] == pytest.approx(-1.0) and int(np.argmin(t)) == nb
        assert t[0] == 0.0 and abs(t[-1]) < 1e-6
        assert t[nb:].max() > 0.1   # repolarisation hump after the trough
    # Fast-spiking template is narrower (fewer samples below half the trough).
    assert (tpl[1] < -0.5).sum() < (tpl[0] < -0.5).sum()


def test_codes_scale_round_and_saturate_never_wrap():
    cfg = SMALL.with_uv_per_code(0.002)   # ±65 µV full scale: spikes saturate
    culture = Culture(cfg)
    block = culture.step(10_000)
    v = block.voltages_uv.astype(np.float64) / 0.002
    over, under = v > 32767.5, v < -32768.5
    assert under.sum() > 0
    assert block.saturated == int(over.sum() + under.sum())
    assert (block.codes[under] == -32768).all() and (block.codes[over] == 32767).all()
    inside = ~(over | under)
    # float32 division inside: allow its rounding on top of the half code.
    assert np.abs(block.codes[inside] - v[inside]).max() <= 0.5 + 1e-2
    assert culture.summary()["saturated_codes"] == block.saturated


def test_noise_rms_and_one_over_f_spectrum():
    quiet = CultureConfig().with_network(n_neurons=1, background_rate_hz=0.0)
    white = Culture(quiet.with_noise(white_uv_rms=5.0, pink_uv_rms=0.0)).step(40_000)
    assert np.std(white.voltages_uv, axis=0) == pytest.approx(np.full(60, 5.0), rel=0.03)
    pink = Culture(quiet.with_noise(white_uv_rms=0.0, pink_uv_rms=3.0)).step(80_000)
    assert np.std(pink.voltages_uv) == pytest.approx(3.0, rel=0.1)
    f, p = welch(pink.voltages_uv[:, :8], fs=FS, nperseg=8192, axis=0)
    band = (f >= 50) & (f <= 2000)
    slope = np.polyfit(np.log10(f[band]), np.log10(p[band].mean(axis=1)), 1)[0]
    assert slope == pytest.approx(-1.0, abs=0.15)
    # The 1/f filter starts stationary: the very first samples have the RMS.
    first = Culture(quiet.with_layout(mea="256ch")
                    .with_noise(white_uv_rms=0.0, pink_uv_rms=3.0)).step(20)
    assert np.std(first.voltages_uv) == pytest.approx(3.0, rel=0.1)
    # Channels are independent.
    c = np.corrcoef(white.voltages_uv[:, :4].T)
    assert np.abs(c[np.triu_indices(4, 1)]).max() < 0.05


def test_chr2_kinetics_match_the_two_state_solution():
    tau_on, tau_off = 1.0, 10.0
    ka, kd = 1 / tau_on - 1 / tau_off, 1 / tau_off
    t_ms = np.arange(1, 401) / 20.0
    led = np.ones((400, 1))
    o = chr2_open_fraction(led, tau_on, tau_off)[:, 0]
    o_inf = ka / (ka + kd)
    np.testing.assert_allclose(o, o_inf * (1 - np.exp(-(ka + kd) * t_ms)), rtol=1e-9)
    # Off kinetics: decay with tau_off from the plateau.
    off = chr2_open_fraction(np.zeros((400, 1)), tau_on, tau_off, o0=[o[-1]])[:, 0]
    np.testing.assert_allclose(off, o[-1] * np.exp(-kd * t_ms), rtol=1e-9)
    # Constant 0.3: steady state ka*0.3 / (ka*0.3 + kd).
    c = chr2_open_fraction(np.full((4000, 1), 0.3))[:, 0]
    assert c[-1] == pytest.approx(ka * 0.3 / (ka * 0.3 + kd), rel=1e-6)


@pytest.mark.parametrize("density", [0.1, 0.3, 0.7])
def test_pdm_light_is_felt_as_its_mean(density):
    rng = np.random.default_rng(0)
    pdm = (rng.random((4000, 1)) < density).astype(float)
    mean_level = pdm.mean()
    o_pdm = chr2_open_fraction(pdm)[:, 0]
    o_const = chr2_open_fraction(np.full((4000, 1), mean_level))[:, 0]
    # After 50 ms both have settled; the PDM trajectory rides on the constant one.
    assert o_pdm[1000:].mean() == pytest.approx(o_const[1000:].mean(), rel=0.03)
    # Its ripple is the Bernoulli input filtered by the linearised ODE, an
    # AR(1) process: var = dt ka^2 (1-O)^2 p(1-p) / (2 r), r = ka p + kd.
    ka, kd, dt = 0.9, 0.1, 0.05
    o_ss = o_const[-1]
    r = ka * mean_level + kd
    sd = np.sqrt(dt * ka**2 * (1 - o_ss) ** 2 * mean_level * (1 - mean_level) / (2 * r))
    assert np.std(o_pdm[1000:] - o_const[1000:]) == pytest.approx(sd, rel=0.35)
    assert sd < 0.05 * o_ss / mean_level   # small next to the signal


def _rates_near_far(cfg, lane, seconds, intensity=1.0):
    n = int(seconds * FS)
    led = np.zeros(Culture(cfg).n_lanes)
    led[lane] = intensity
    runs = {}
    for name, drive in (("dark", None), ("lit", led)):
        culture = Culture(cfg)
        block = culture.step(n, drive)
        runs[name] = (culture, block)
    culture = runs["dark"][0]
    w = culture.illumination_matrix()[:, lane]
    dist = np.hypot(*(culture.neuron_positions_um - culture.electrode_positions_um[lane]).T)
    return runs, w, dist


def test_light_drives_only_the_neurons_under_the_lit_electrode():
    # Without recurrent synapses the direct effect is isolated: every neuron
    # outside the light disk must fire exactly as in the dark.
    cfg = (CultureConfig().with_network(n_neurons=600, connection_probability=0.0)
           .with_noise(white_uv_rms=0.0, pink_uv_rms=0.0).with_seed(5))
    lane = 27
    runs, w, dist = _rates_near_far(cfg, lane, 0.5)
    dark, lit = runs["dark"][1].spikes, runs["lit"][1].spikes
    lit_neurons = np.flatnonzero(w > 0.5)
    unlit = np.flatnonzero(w == 0)
    assert len(lit_neurons) >= 3 and dist[unlit].min() > 100
    def count(s, ids):
        return np.isin(s["neuron"], ids).sum()
    assert count(lit, lit_neurons) >= 5 * max(1, count(dark, lit_neurons))
    assert count(lit, lit_neurons) / len(lit_neurons) / 0.5 > 20   # > 20 Hz under light
    def keep(s):
        return s[np.isin(s["neuron"], unlit)]
    assert keep(lit).tobytes() == keep(dark).tobytes()


def test_light_in_the_full_network_raises_firing_near_far_more_than_far():
    cfg = CultureConfig().with_seed(8)
    lane = 27
    runs, w, dist = _rates_near_far(cfg, lane, 1.0)
    culture = runs["dark"][0]
    near = np.flatnonzero(dist < 60)
    far = np.flatnonzero(dist > 400)
    def per(s, ids):
        return np.isin(s["neuron"], ids).sum() / len(ids)
    dark, lit = runs["dark"][1].spikes, runs["lit"][1].spikes
    near_gain = per(lit, near) - per(dark, near)
    far_gain = per(lit, far) - per(dark, far)
    assert near_gain > 10.0              # more than 10 extra spikes per near neuron per second
    assert far_gain < 0.2 * near_gain
    # The electrode under the light records the extra spikes.
    def ch(s):
        return (s["nearest_channel"] == lane).sum()
    assert ch(lit) > 3 * ch(dark) + 10
    assert culture.lane_open_fraction[lane] == 0.0 and runs["lit"][0].lane_open_fraction[lane] > 0.8


@pytest.mark.parametrize("seconds", [12.0, pytest.param(60.0, marks=pytest.mark.long)])
def test_default_culture_rates_and_recurring_network_bursts(seconds):
    culture = Culture(CultureConfig())
    spikes = []
    for _ in range(int(seconds)):
        spikes.append(culture.step(FS).spikes)
    spikes = np.concatenate(spikes)
    summary = culture.summary()
    rates = np.bincount(spikes["neuron"], minlength=culture.n_neurons) / seconds
    # Sparse firing: nearly every neuron between 0.1 and 10 Hz.
    assert np.mean((rates >= 0.1) & (rates <= 10.0)) >= 0.95
    assert 0.3 <= np.median(rates) <= 5.0
    assert summary["fraction_in_0p1_10hz"] == pytest.approx(
        np.mean((rates >= 0.1) & (rates <= 10.0)))
    # Recurring network bursts that recruit a large part of the network,
    # separated by quiet periods.
    counts = culture.population_counts()
    bursts = network_bursts(counts, culture.n_neurons, max_gap_bins=int(BURST_MERGE_MS / 10))
    assert len(bursts) == summary["burst_count"]
    assert len(bursts) >= max(3, int(seconds / 6))
    # Bursts of cortical cultures last about 0.1 to 1 s (Wagenaar, Pine & Potter 2006).
    durations = np.diff(bursts, axis=1).ravel() * 10.0
    assert 100.0 <= np.median(durations) <= 1000.0, durations
    assert summary["burst_duration_ms_median"] == np.median(durations)
    bin_samples = FS // 100
    for start, stop in bursts:
        inside = (spikes["sample"] >= start * bin_samples) & (spikes["sample"] < stop * bin_samples)
        assert len(np.unique(spikes["neuron"][inside])) >= 0.2 * culture.n_neurons
    gaps = np.diff(bursts[:, 0]) * 10.0   # ms
    assert gaps.min() >= 1000.0
    in_burst = np.zeros(len(counts), bool)
    for start, stop in bursts:
        in_burst[start:stop] = True
    quiet_rate = counts[~in_burst].mean() / culture.n_neurons * 100.0   # Hz per neuron
    assert quiet_rate < 2.0


def test_summary_counts_match_the_ground_truth():
    culture = Culture(SMALL)
    spikes = np.concatenate([culture.step(n).spikes for n in (5000, 5000)])
    s = culture.summary()
    assert s["n_spikes"] == len(spikes)
    assert s["spikes_per_channel"] == np.bincount(
        spikes["nearest_channel"], minlength=60).tolist()
    assert s["duration_s"] == 0.5
    assert culture.population_counts().sum() == len(spikes)
    # Ground truth is sorted and its nearest channel is the geometric nearest.
    assert np.all(np.diff(spikes["sample"]) >= 0)
    d = np.hypot(*(culture.neuron_positions_um[spikes["neuron"]][:, None, :]
                   - culture.electrode_positions_um[None]).transpose(2, 0, 1))
    assert np.array_equal(spikes["nearest_channel"], d.argmin(axis=1))


@pytest.mark.parametrize("mea, n", [("120ch", 120), ("256ch", 256), ("4096ch", 4096)])
def test_other_layouts(mea, n):
    cfg = CultureConfig().with_network(n_neurons=50).with_layout(mea=mea)
    culture = Culture(cfg)
    block = culture.step(400, np.ones(n) * 0.5)
    assert block.voltages_uv.shape == (400, n) and culture.n_lanes == n
    pos = culture.electrode_positions_um
    pitch = culture.mea.electrode_pitch_um
    nn = cKDTree(pos).query(pos, k=2)[0][:, 1]
    assert np.allclose(nn, pitch)
    assert len(np.unique(pos, axis=0)) == n


def test_gateware_pdm_lanes_drive_the_opsin_like_their_density():
    from bioloop.host.models.stochastic_lanes import StochasticLanes

    cfg = SMALL.with_noise(white_uv_rms=0.0, pink_uv_rms=0.0)
    codes = np.zeros(60, np.int64)
    codes[[4, 20, 33]] = [6554, 32768, 52429]        # densities ~0.1, 0.5, 0.8
    bits = StochasticLanes(60).run(codes, 6000)         # one LFSR step per sample
    culture = Culture(cfg)
    culture.step(6000, bits)
    # The culture's lanes follow the same kinetics as the stand-alone solver...
    trajectory = chr2_open_fraction(bits)
    np.testing.assert_array_equal(culture.lane_open_fraction, trajectory[-1])
    assert (culture.lane_open_fraction[codes == 0] == 0).all()
    # ...and, once settled, the LFSR stream is felt as its density (c-1)/65535.
    # Stepping the LFSR once per sample clusters the ones of low codes
    # (consecutive states are shifted copies), and with the opsin's saturation
    # that costs a few percent at density 0.1 (docs/culture.md); the hardware
    # steps 5000 times per sample, where the per-sample mean is exact.
    density = (codes - 1).clip(0) / 65535
    const = chr2_open_fraction(np.tile(density, (6000, 1)))
    lit = codes > 0
    np.testing.assert_allclose(trajectory[2000:, lit].mean(0), const[2000:, lit].mean(0),
                               rtol=0.08)
    # The per-sample mean of a 5000-cycle-per-sample stream is the density.
    fast = StochasticLanes(60).run(codes, 5000 * 40).reshape(40, 5000, 60).mean(1)
    np.testing.assert_allclose(fast[:, lit].mean(0), density[lit], atol=0.02)


TINY = (CultureConfig().with_network(n_neurons=60, connection_probability=0.5,
                                     background_rate_hz=30.0).with_seed(2))


@pytest.mark.parametrize("examples", [6, pytest.param(60, marks=pytest.mark.long)])
def test_block_split_property(examples):
    """Any cut of a run into blocks gives the same bytes as the whole run."""
    @settings(max_examples=examples)
    @given(cuts=st.lists(st.integers(0, 900), min_size=1, max_size=12),
           lanes=st.lists(st.integers(0, 59), min_size=0, max_size=4, unique=True),
           density=st.floats(0.0, 1.0))
    def check(cuts, lanes, density):
        total = 3000

        def led_fn(t0, n, n_lanes):
            t = np.arange(t0, t0 + n)
            led = np.zeros((n, n_lanes))
            led[:, lanes] = (((t * 40503) % 1024) < density * 1024)[:, None]
            return led

        sizes, left = [], total
        for c in cuts:
            sizes.append(min(c, left))
            left -= sizes[-1]
        sizes.append(left)
        _, whole = _run_in_blocks(TINY, [total], led_fn)
        _, pieces = _run_in_blocks(TINY, sizes, led_fn)
        _same_bytes(whole, pieces)

    check()
