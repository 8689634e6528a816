"""Issue 18, what the user sees: figures say what they show, legends never cover data, one unit for θ."""

from __future__ import annotations

import re

import numpy as np
import pytest

from bioloop.host import figures
from bioloop.host.aer import AERType, pack
from bioloop.host.loop import LoopResult, LoopSettings


def synthetic_result(duration_s=2.0, homeostasis=True, latency=True, stims=True, seed=0):
    """A LoopResult with data everywhere in the panels (where a legend inside the axes would sit)."""
    rng = np.random.default_rng(seed)
    s = LoopSettings(duration_s=duration_s, homeostasis=homeostasis)
    fs, B = 20000.0, 100
    n = int(round(duration_s * fs / B))
    t = np.arange(n) * B / fs
    N = K = 8
    rate = np.clip(60 + 40 * np.sin(t * 7)[:, None] + rng.normal(0, 20, (n, N)), 0, None)
    theta = (1500 + 800 * np.cos(t * 3))[:, None].repeat(K, 1).astype(np.int64)
    st = (rng.random((n, K)) < 0.3).astype(np.int64) if stims else np.zeros((n, K), np.int64)
    ts = np.sort(rng.integers(0, n * B, 500))
    words = pack(rng.integers(0, N, 500), 0, np.where(rng.random(500) < 0.8, AERType.SPIKE.value,
                                                         AERType.STIM.value), ts)
    lat = rng.integers(300, 340, 200) if latency else np.zeros(0, np.int64)
    return LoopResult(settings=s, sample_rate_hz=fs, block_frames=B, t_s=t, rate_hz=rate, stims=st, theta=theta,
                      led_duty=rng.random((n, K)) * 0.1, latency_cycles=lat, words=words,
                      truth_rate_hz=np.full(n, 30.0), counters={}, controlled=np.arange(K))


def _inside(points, bbox):
    return (points[:, 0] >= bbox.x0) & (points[:, 0] <= bbox.x1) & (points[:, 1] >= bbox.y0) & (points[:, 1] <= bbox.y1)


def _data_under_legends(fig):
    """Display-space data points (lines, scatter) that fall inside any legend of the figure."""
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    hits = 0
    for ax in fig.axes:
        leg = ax.get_legend()
        if leg is None:
            continue
        box = leg.get_window_extent(r)
        for line in ax.get_lines():
            xy = np.column_stack(line.get_data()).astype(float)
            if xy.size:
                hits += int(_inside(line.get_transform().transform(xy), box).sum())
        for coll in ax.collections:
            off = coll.get_offsets()
            if len(off):
                hits += int(_inside(coll.get_offset_transform().transform(np.asarray(off, float)), box).sum())
    return hits


@pytest.mark.parametrize("make", [lambda r, ref: figures.control_figure(r, ref),
                                  lambda r, ref: figures.raster_figure(r),
                                  lambda r, ref: figures.latency_figure(r)])
def test_legends_cover_no_data(make):
    fig = make(synthetic_result(), synthetic_result(homeostasis=False, seed=1))
    assert _data_under_legends(fig) == 0


def test_control_smoothing_title_matches_what_was_plotted():
    for duration in (0.2, 2.0):
        res = synthetic_result(duration_s=duration)
        fig = figures.control_figure(res)
        ax1 = fig.axes[0]
        window, window_s = figures.smoothing_window(res)
        claimed = float(re.search(r"\(([\d.]+) s moving average", ax1.get_title()).group(1))
        assert claimed == pytest.approx(window * res.block_frames / res.sample_rate_hz, rel=1e-3)
        assert claimed <= duration / 4 + 1e-9                  # a 0.2 s run never claims 0.25 s
        mean_line = ax1.get_lines()[0]
        want = np.convolve(res.rate_hz.mean(axis=1), np.ones(window) / window, mode="valid")
        np.testing.assert_allclose(mean_line.get_ydata(), want)    # that window, no zero-padded edges


def test_theta_has_one_unit_in_table_and_figure():
    res = synthetic_result()
    fig = figures.control_figure(res)
    theta_line = fig.axes[1].get_lines()[0]
    assert "code / 256" in fig.axes[1].get_ylabel()
    assert theta_line.get_ydata()[-1] == pytest.approx(res.summary()["theta_mean_last_q88"] / 256)


def test_raster_says_which_condition_it_shows():
    from dataclasses import replace

    from bioloop.host.loop import PolicyReport
    gateware = replace(synthetic_result(), policies=(PolicyReport("homeostasis", 0),))
    assert "homeostasis on" in figures.raster_figure(gateware).axes[0].get_title()
    off = replace(synthetic_result(homeostasis=False), policies=(PolicyReport("homeostasis", 0),))
    assert "homeostasis off" in figures.raster_figure(off).axes[0].get_title()
    assert "no policy" in figures.raster_figure(synthetic_result()).axes[0].get_title()
    burst = replace(synthetic_result(), policies=(PolicyReport("burst-control", 0),))
    assert "burst-control" in figures.raster_figure(burst).axes[0].get_title()
    title = figures.raster_figure(synthetic_result(duration_s=0.2)).axes[0].get_title()
    assert 0.15 < float(re.search(r"last ([\d.]+) s", title).group(1)) <= 0.2     # not "last 2 s" of a 0.2 s run


def test_latency_marks_p50_and_p99_and_an_empty_figure_says_why():
    res = synthetic_result()
    ax = figures.latency_figure(res).axes[0]
    marks = {t.get_text().split(" = ")[0]: line.get_xdata()[0]
             for t, line in zip(ax.get_legend().get_texts(), ax.get_lines(), strict=False)}
    assert marks["p50"] == pytest.approx(np.percentile(res.latency_cycles, 50))
    assert marks["p99"] == pytest.approx(np.percentile(res.latency_cycles, 99))
    empty = figures.latency_figure(synthetic_result(latency=False, stims=False)).axes[0]
    text = " ".join(t.get_text() for t in empty.texts)
    assert "no latency readings" in text and "no stimulation pulse fired" in text


def test_figures_are_written_aside_with_plain_permissions(tmp_path):
    import os
    import stat
    (tmp_path / "plain").write_text("x")
    paths = figures.write_all(synthetic_result(), tmp_path, reference=synthetic_result(homeostasis=False))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["control.png", "latency.png", "plain", "raster.png"]
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert stat.S_IMODE(os.stat(p).st_mode) == stat.S_IMODE(os.stat(tmp_path / "plain").st_mode)


def test_controlled_spikes_and_the_bursts_figure(tmp_path):
    """The controlled channels' SPIKE words, read word by word with the layout, and the bursts figure drawn."""
    from bioloop.host.layouts import AER_WORD, unpack
    r = synthetic_result()
    t, addresses, dur = figures.controlled_spikes(r)
    fields = [unpack(AER_WORD, int(w)) for w in r.words]
    want = [f for f in fields if f["type"] == AERType.SPIKE and f["address"] in set(r.controlled.tolist())]
    assert len(want) > 0 and addresses.tolist() == [f["address"] for f in want]
    assert np.allclose(t, [f["timestamp"] / r.sample_rate_hz for f in want])
    assert dur == len(r.t_s) * r.block_frames / r.sample_rate_hz
    assert figures.bursts(r, tmp_path / "bursts.png", reference=r).stat().st_size > 0
