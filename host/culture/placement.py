"""Electrode geometry and neuron placement on the virtual MEA.

The culture keeps its own minimal electrode geometry (named layouts that
match the common commercial arrays); when the host ``MEAConfig`` becomes
available the culture takes positions from it instead of from here.
Coordinates are micrometres in the array plane, electrode 0 at the lowest
row and column, channels numbered row-major.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["MEALayoutSpec", "MEA_LAYOUTS", "electrode_positions", "place_neurons",
           "nearest_electrode"]


@dataclass(frozen=True)
class MEALayoutSpec:
    """A square grid of electrodes, optionally without its four corners.

    Parameters
    ----------
    rows : int
        Electrodes per side.
    pitch_um : float
        Centre-to-centre spacing.
    drop_corners : bool
        True for the Multi Channel Systems 60MEA layout (8x8 minus corners).
    """

    rows: int
    pitch_um: float
    drop_corners: bool = False

    @property
    def n_electrodes(self) -> int:
        return self.rows * self.rows - (4 if self.drop_corners else 0)


#: Named layouts: MCS 60MEA200/30 (8x8 without corners, 200 µm), a 16x16
#: 200 µm array, and a 3Brain-like 64x64 high-density array at 42 µm.
MEA_LAYOUTS: dict[str, MEALayoutSpec] = {
    "mea60": MEALayoutSpec(rows=8, pitch_um=200.0, drop_corners=True),
    "mea256": MEALayoutSpec(rows=16, pitch_um=200.0),
    "mea4096": MEALayoutSpec(rows=64, pitch_um=42.0),
}


def electrode_positions(name: str) -> np.ndarray:
    """Electrode centres of a named layout.

    Parameters
    ----------
    name : str
        A key of :data:`MEA_LAYOUTS`.

    Returns
    -------
    numpy.ndarray
        float64 (n_electrodes, 2) of x, y in µm, row-major channel order.
    """
    if name not in MEA_LAYOUTS:
        raise ValueError(f"unknown MEA layout {name!r}; known: {sorted(MEA_LAYOUTS)}")
    spec = MEA_LAYOUTS[name]
    r = spec.rows
    row, col = np.divmod(np.arange(r * r), r)
    keep = np.ones(r * r, bool)
    if spec.drop_corners:
        corner = ((row == 0) | (row == r - 1)) & ((col == 0) | (col == r - 1))
        keep &= ~corner
    return np.stack([col[keep], row[keep]], axis=1).astype(np.float64) * spec.pitch_um


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
