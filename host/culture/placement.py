"""Electrode geometry and neuron placement on the virtual MEA.

Channel counts and pitches come from the host ``MEAConfig``
(``bioloop.host.bioware.mea``); the grid geometry of each canonical layout
is added here. Coordinates are micrometres in the array plane, electrode 0 at the lowest
row and column, channels numbered row-major.
"""

from __future__ import annotations

import numpy as np

from ..bioware.mea import MEAConfig, MEALayout

__all__ = ["MEA_LAYOUTS", "mea_config", "electrode_positions", "place_neurons",
           "nearest_electrode"]

#: Grid side and corner cut of each canonical layout. The corner cut k drops
#: the electrodes whose row and column distances to a corner sum to < k:
#: 60MEA is 8x8 without the 4 corners, 120MEA is 12x12 without 6 per corner.
_GRID = {
    MEALayout.MEA_60: (8, 1),
    MEALayout.MEA_120: (12, 3),
    MEALayout.MEA_256: (16, 0),
    MEALayout.MEA_4096: (64, 0),
}

#: Layout names accepted by ``LayoutConfig.mea`` (the ``MEALayout`` values).
MEA_LAYOUTS: dict[str, MEALayout] = {layout.value: layout for layout in _GRID}


def mea_config(name: str, **overrides) -> MEAConfig:
    """The host :class:`~bioloop.host.bioware.mea.MEAConfig` of a named layout."""
    if name not in MEA_LAYOUTS:
        raise ValueError(f"unknown MEA layout {name!r}; known: {sorted(MEA_LAYOUTS)}")
    return MEAConfig.from_layout(MEA_LAYOUTS[name], **overrides)


def electrode_positions(mea: MEAConfig) -> np.ndarray:
    """Electrode centres of a canonical MEA layout.

    ``MEAConfig`` carries the channel count and the pitch; the grid shape
    (square, corners cut as on the commercial arrays) is added here.

    Parameters
    ----------
    mea : MEAConfig
        A canonical layout (not ``CUSTOM``).

    Returns
    -------
    numpy.ndarray
        float64 (num_channels, 2) of x, y in µm, row-major channel order.
    """
    if mea.layout not in _GRID:
        raise ValueError(f"layout {mea.layout} has no known geometry; use one of "
                         f"{sorted(MEA_LAYOUTS)}")
    r, cut = _GRID[mea.layout]
    row, col = np.divmod(np.arange(r * r), r)
    corner_distance = np.minimum(row, r - 1 - row) + np.minimum(col, r - 1 - col)
    keep = corner_distance >= cut
    pos = np.stack([col[keep], row[keep]], axis=1).astype(np.float64) * mea.electrode_pitch_um
    if len(pos) != mea.num_channels:
        raise ValueError(f"{mea.layout} geometry has {len(pos)} electrodes but the "
                         f"MEAConfig says {mea.num_channels}")
    return pos


def place_neurons(electrodes_um: np.ndarray, n_neurons: int, margin_um: float,
                  rng: np.random.Generator) -> np.ndarray:
    """Scatter somata uniformly over the array, between and around electrodes.

    Parameters
    ----------
    electrodes_um : numpy.ndarray
        (n_electrodes, 2) electrode centres.
    n_neurons : int
        Number of somata.
    margin_um : float
        The placement box is the electrodes' bounding box grown by this.
    rng : numpy.random.Generator
        Seeded generator.

    Returns
    -------
    numpy.ndarray
        float64 (n_neurons, 2) soma positions in µm.
    """
    lo = electrodes_um.min(axis=0) - margin_um
    hi = electrodes_um.max(axis=0) + margin_um
    return lo + rng.random((n_neurons, 2)) * (hi - lo)


def nearest_electrode(points_um: np.ndarray, electrodes_um: np.ndarray) -> np.ndarray:
    """Index of the nearest electrode (in the plane) for every point.

    Ties go to the lower channel index.
    """
    out = np.empty(len(points_um), np.int32)
    # Chunked so 4096 electrodes x many neurons stays small in memory.
    for start in range(0, len(points_um), 1024):
        p = points_um[start:start + 1024]
        d2 = ((p[:, None, :] - electrodes_um[None, :, :]) ** 2).sum(-1)
        out[start:start + 1024] = d2.argmin(axis=1)
    return out
