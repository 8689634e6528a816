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

__all__ = ["SpikeSorter"]


def _sklearn():
    try:
        from sklearn.cluster import KMeans
        from sklearn.decomposition import PCA
    except ImportError as e:  # pragma: no cover - exercised by monkeypatching
        raise ImportError("SpikeSorter needs scikit-learn; install the sorting extra: "
                          "pip install 'bioloop[sort]'") from e
    return PCA, KMeans


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
    """
    num_units: int = 4
    n_components: int = 3
    random_state: int = 0
    n_init: int = 10
    fitted: bool = field(default=False, init=False)

    def __post_init__(self):
        for n in ("num_units", "n_components", "n_init"):
            v = getattr(self, n)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{n} must be an integer >= 1, not {v!r}")

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
        PCA, KMeans = _sklearn()
        k = min(self.n_components, w.shape[0], w.shape[1])
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
