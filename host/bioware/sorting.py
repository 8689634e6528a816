"""PCA + k-means spike sorting (Lewicki 1998), on scikit-learn.

Waveforms are projected on their first principal components and clustered
with k-means (k = ``num_units``, ``n_init`` = 10 restarts, seeded). After
:meth:`SpikeSorter.fit`, assignment is the nearest centroid in PCA space;
it is computed here with numpy from the fitted ``components_``,
``mean_`` and ``cluster_centers_`` (the same arithmetic as scikit-learn's
``predict``, without its per-call overhead, which would dominate a
closed-loop frame).

Units are numbered 1..num_units; 0 means "not sorted".
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .detection import DetectedSpike

__all__ = ["SpikeSorter", "ChannelSorter"]


def _sklearn():
    try:
        from sklearn.cluster import KMeans
        from sklearn.decomposition import PCA
    except ImportError as e:  # pragma: no cover - exercised by monkeypatching
        raise ImportError("SpikeSorter needs scikit-learn; install the sorting extra: "
                          "pip install 'bioloop[sort]'") from e
    return PCA, KMeans


def _kmeans_pp(z: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding: each next centre drawn with probability proportional to the squared distance."""
    centers = [z[rng.integers(len(z))]]
    for _ in range(1, k):
        d = np.min(((z[:, None, :] - np.array(centers)[None]) ** 2).sum(axis=2), axis=1)
        total = d.sum()
        centers.append(z[rng.choice(len(z), p=d / total)] if total > 0 else z[rng.integers(len(z))])
    return np.array(centers, np.float64)


@dataclass
class SpikeSorter:
    """PCA + k-means sorter.

    Parameters
    ----------
    num_units : int
        Clusters (k).
    n_components : int
        Principal components kept (capped by the data).
    random_state : int
        Seed of the k-means restarts (same seed, same units).
    n_init : int
        k-means restarts.
    engine : str
        ``"sklearn"`` (scikit-learn's PCA and KMeans) or ``"numpy"``: PCA by
        SVD and Lloyd's k-means with k-means++ seeding (Arthur &
        Vassilvitskii 2007), ``n_init`` restarts, the lowest inertia kept. The
        numpy engine needs no extra and costs milliseconds per fit, which a
        closed-loop control period can afford (scikit-learn's per-call
        overhead and thread start-up cannot).
    max_iter : int
        Lloyd iterations per restart (numpy engine).
    """
    num_units: int = 4
    n_components: int = 3
    random_state: int = 0
    n_init: int = 10
    engine: str = "sklearn"
    max_iter: int = 50
    fitted: bool = field(default=False, init=False)

    def __post_init__(self):
        for n in ("num_units", "n_components", "n_init"):
            v = getattr(self, n)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{n} must be an integer >= 1, not {v!r}")
        if self.engine not in ("sklearn", "numpy"):
            raise ValueError(f"engine must be 'sklearn' or 'numpy', not {self.engine!r}")

    @staticmethod
    def _stack(spikes) -> tuple[np.ndarray, list[int]]:
        idx = [i for i, s in enumerate(spikes) if s.waveform is not None]
        if not idx:
            return np.empty((0, 0)), idx
        lengths = {np.asarray(spikes[i].waveform).shape for i in idx}
        if len(lengths) != 1 or len(next(iter(lengths))) != 1:
            raise ValueError(f"waveforms must be 1-D and of one length, got shapes {sorted(lengths)}")
        return np.stack([np.asarray(spikes[i].waveform, dtype=np.float64) for i in idx]), idx

    def fit_waveforms(self, waveforms) -> bool:
        """Fit on a (M, D) waveform matrix; a no-op (False) when M < num_units."""
        w = np.asarray(waveforms, dtype=np.float64)
        if w.ndim != 2:
            raise ValueError(f"waveforms must be (M, D), not shape {w.shape}")
        if w.shape[0] < self.num_units:
            return False
        if not np.isfinite(w).all():
            raise ValueError("waveforms must be finite")
        k = min(self.n_components, w.shape[0], w.shape[1])
        if self.engine == "numpy":
            self._fit_numpy(w, k)
            return True
        PCA, KMeans = _sklearn()
        pca = PCA(n_components=k, random_state=self.random_state).fit(w)
        z = pca.transform(w)
        km = KMeans(n_clusters=self.num_units, n_init=self.n_init,
                    random_state=self.random_state).fit(z)
        self.pca_, self.kmeans_ = pca, km
        self._mean = pca.mean_
        self._components = pca.components_.T.copy()
        self._centers = km.cluster_centers_.copy()
        self._center_sq = np.einsum("ij,ij->i", self._centers, self._centers)
        self.fitted = True
        return True

    def _fit_numpy(self, w: np.ndarray, k: int) -> None:
        mean = w.mean(axis=0)
        _, _, vt = np.linalg.svd(w - mean, full_matrices=False)
        comps = vt[:k].T.copy()
        z = (w - mean) @ comps
        rng = np.random.default_rng(self.random_state)
        best, best_inertia = None, np.inf
        for _ in range(self.n_init):
            centers = _kmeans_pp(z, self.num_units, rng)
            for _ in range(self.max_iter):
                lab = np.argmin(((z[:, None, :] - centers[None]) ** 2).sum(axis=2), axis=1)
                new = np.array([z[lab == j].mean(axis=0) if np.any(lab == j) else centers[j]
                                for j in range(self.num_units)])
                if np.allclose(new, centers):
                    break
                centers = new
            lab = np.argmin(((z[:, None, :] - centers[None]) ** 2).sum(axis=2), axis=1)
            inertia = float(((z - centers[lab]) ** 2).sum())
            if inertia < best_inertia:
                best, best_inertia = centers, inertia
        self._mean, self._components, self._centers = mean, comps, best
        self._center_sq = np.einsum("ij,ij->i", best, best)
        self.fitted = True

    def fit(self, spikes: list[DetectedSpike]) -> bool:
        """Fit on the spikes that carry waveforms; no-op (False) below num_units of them.

        scikit-learn is imported only when there is enough to fit.
        """
        w, _ = self._stack(spikes)
        return self.fit_waveforms(w) if len(w) >= self.num_units else False

    def predict_waveforms(self, waveforms) -> np.ndarray:
        """Unit (1..num_units) of each waveform row: nearest centroid in PCA space."""
        if not self.fitted:
            raise RuntimeError("SpikeSorter is not fitted; call fit() first")
        w = np.asarray(waveforms, dtype=np.float64)
        if w.ndim != 2 or w.shape[1] != self._mean.shape[0]:
            raise ValueError(f"waveforms must be (M, {self._mean.shape[0]}), not shape {w.shape}")
        if w.shape[0] == 0:
            return np.empty(0, np.int64)
        z = (w - self._mean) @ self._components
        # argmin ||z - c||² = argmin (||c||² - 2 z·c); ties go to the lower index, as in sklearn.
        d = self._center_sq[None, :] - 2.0 * (z @ self._centers.T)
        return np.argmin(d, axis=1).astype(np.int64) + 1

    def assign(self, spikes: list[DetectedSpike]) -> list[DetectedSpike]:
        """Set ``unit_id`` of the spikes with waveforms (in place; returns the list).

        Unfitted, it returns the spikes unchanged.
        """
        if not self.fitted:
            return spikes
        w, idx = self._stack(spikes)
        if idx:
            for i, u in zip(idx, self.predict_waveforms(w).tolist(), strict=True):
                spikes[i].unit_id = u
        return spikes


@dataclass
class ChannelSorter:
    """Per-electrode sorting of detections cut from the recorded samples, for the closed loop.

    The gateware sends spike *times* (SPIKE words); the host still has the
    samples it streamed to the core. For every detection (channel, frame)
    this cuts a snippet of the channel's int16 codes around it, aligned on
    the most negative sample within ``align`` frames after the crossing
    (the trough of a negative spike follows its threshold crossing), and
    sorts it with one :class:`SpikeSorter` (PCA + k-means, Lewicki 1998; its
    numpy engine) per electrode into ``units_per_channel`` units. A channel is fitted once,
    on its first ``fit_spikes`` snippets; after that every snippet is
    assigned to the nearest centroid (numpy, no scikit-learn call).

    Units are ``1..units_per_channel`` per channel; 0 means "not sorted yet"
    (the channel has not collected ``fit_spikes`` snippets) or "no snippet"
    (the detection is too close to the edge of the samples kept).

    Parameters
    ----------
    n_channels : int
        Recording channels (the loop's electrodes).
    units_per_channel : int
        k of every channel's k-means.
    fit_spikes : int
        Snippets a channel collects before it is fitted.
    n_before, n_after : int
        Snippet frames before and after the trough.
    align : int
        Frames after the detection searched for the trough.
    n_components, n_init, random_state
        Of each channel's :class:`SpikeSorter`.
    max_fits_per_call : int
        At most this many electrodes are fitted in one call (0: no limit);
        an electrode that is ready waits for a later call, its detections
        unit 0 meanwhile. The loop uses 1, so the fits (about 3 ms of CPU
        each) are spread over the first periods instead of landing in one.
    """
    n_channels: int
    units_per_channel: int = 2
    fit_spikes: int = 150
    n_before: int = 10
    n_after: int = 22
    align: int = 12
    n_components: int = 3
    n_init: int = 3
    random_state: int = 0
    max_fits_per_call: int = 0

    def __post_init__(self):
        for n in ("n_channels", "units_per_channel", "fit_spikes", "n_before", "n_after", "align"):
            v = getattr(self, n)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{n} must be an integer >= 1, not {v!r}")
        if self.fit_spikes < self.units_per_channel:
            raise ValueError(f"fit_spikes = {self.fit_spikes} is below units_per_channel = "
                             f"{self.units_per_channel}")
        self.sorters = [SpikeSorter(self.units_per_channel, self.n_components, self.random_state, self.n_init,
                                    engine="numpy") for _ in range(self.n_channels)]
        self._pending: list[list[np.ndarray]] = [[] for _ in range(self.n_channels)]
        self._n_pending = np.zeros(self.n_channels, np.int64)
        self._tail = None                     # the last `margin` frames of samples pushed
        self._tail_first = 0
        self._wait_f = np.zeros(0, np.int64)  # detections waiting for samples after them
        self._wait_c = np.zeros(0, np.int64)
        self.n_sorted = 0                     # detections given a unit
        self.n_unsorted = 0                   # detections given 0 (channel not fitted yet, or no snippet)

    @property
    def margin(self) -> int:
        """Frames of samples needed around a detection: before it and after it."""
        return self.n_before + self.align + self.n_after

    @property
    def fitted(self) -> np.ndarray:
        """Per channel: fitted yet."""
        return np.array([s.fitted for s in self.sorters], bool)

    def snippets(self, codes: np.ndarray, first_frame: int, frames, channels) -> tuple[np.ndarray, np.ndarray]:
        """Aligned snippets ``(M, n_before + n_after)`` float64 and a mask of the detections that have one.

        ``codes`` (T, ≥ n_channels) are the samples of frames ``first_frame ..
        first_frame + T - 1``; ``frames`` and ``channels`` the detections.
        """
        codes = np.asarray(codes)
        f = np.asarray(frames, np.int64) - int(first_frame)
        c = np.asarray(channels, np.int64)
        T = codes.shape[0]
        ok = (f - self.n_before >= 0) & (f + self.align + self.n_after <= T) & (c >= 0) & (c < self.n_channels)
        f, c = f[ok], c[ok]
        if not f.size:
            return np.zeros((0, self.n_before + self.n_after)), ok
        look = codes[f[:, None] + np.arange(self.align + 1)[None, :], c[:, None]]
        trough = f + np.argmin(look, axis=1)
        w = codes[trough[:, None] + np.arange(-self.n_before, self.n_after)[None, :], c[:, None]]
        return w.astype(np.float64), ok

    def sort(self, codes: np.ndarray, first_frame: int, frames, channels) -> np.ndarray:
        """Unit of every detection (0: not sorted); fits a channel once it has ``fit_spikes`` snippets."""
        c_all = np.asarray(channels, np.int64)
        units = np.zeros(c_all.size, np.int64)
        w, ok = self.snippets(codes, first_frame, frames, channels)
        idx = np.flatnonzero(ok)
        c = c_all[ok]
        fits = 0
        for ch in np.unique(c).tolist():
            at = idx[c == ch]
            wc = w[c == ch]
            s = self.sorters[ch]
            if not s.fitted:
                # The first fit_spikes snippets of a channel fit it (and stay unit 0): the same
                # units whatever the chunking of the calls.
                need = self.fit_spikes - int(self._n_pending[ch])
                self._pending[ch].append(wc[:need])
                self._n_pending[ch] += min(need, len(wc))
                if self._n_pending[ch] < self.fit_spikes or (self.max_fits_per_call
                                                              and fits >= self.max_fits_per_call):
                    continue
                fits += 1
                s.fit_waveforms(np.concatenate(self._pending[ch]))
                self._pending[ch] = []
                at, wc = at[need:], wc[need:]
            if len(wc):
                units[at] = s.predict_waveforms(wc)
        return units

    def push(self, codes: np.ndarray, first_frame: int, frames, channels) -> tuple[np.ndarray, np.ndarray]:
        """Streaming :meth:`sort`: the next contiguous samples and the detections in them.

        ``codes`` (T, ≥ n_channels) are frames ``first_frame ..
        first_frame + T - 1``, following the previous push without a gap.
        A detection whose snippet needs samples after these waits for the
        next push (at most ``align + n_after`` frames), so every detection is
        sorted exactly once whatever the chunking. Returns the channels and
        units of the detections sorted now (in the order they arrived).
        """
        codes = np.asarray(codes)[:, :self.n_channels]
        if self._tail is None:
            self._tail, self._tail_first = codes, int(first_frame)
        else:
            if int(first_frame) != self._tail_first + len(self._tail):
                raise ValueError(f"push: samples start at frame {first_frame}, expected "
                                 f"{self._tail_first + len(self._tail)} (contiguous)")
            self._tail = np.concatenate([self._tail, codes])
        f = np.concatenate([self._wait_f, np.asarray(frames, np.int64)])
        c = np.concatenate([self._wait_c, np.asarray(channels, np.int64)])
        end = self._tail_first + len(self._tail)
        ready = f + self.align + self.n_after <= end
        units = self.sort(self._tail, self._tail_first, f[ready], c[ready])
        self._wait_f, self._wait_c = f[~ready], c[~ready]
        keep = min(len(self._tail), self.margin)
        self._tail = self._tail[-keep:].copy()
        self._tail_first = end - keep
        n = int(np.count_nonzero(units))
        self.n_sorted += n
        self.n_unsorted += int(units.size) - n
        return c[ready], units

    @property
    def waiting(self) -> int:
        """Detections waiting for samples after them."""
        return int(self._wait_f.size)

    def unit_rates(self, channels, units, duration_s: float) -> np.ndarray:
        """Spikes per second of every (channel, unit), shape ``(n_channels, units_per_channel)``."""
        c = np.asarray(channels, np.int64)
        u = np.asarray(units, np.int64)
        keep = (u > 0) & (c >= 0) & (c < self.n_channels)
        k = self.units_per_channel
        counts = np.bincount(c[keep] * k + u[keep] - 1, minlength=self.n_channels * k)
        return counts.reshape(self.n_channels, k) / duration_s
