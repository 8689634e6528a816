"""ADC samples: the one rule for integer samples, shared by the driver and the host detector.

Integer samples are int16 ADC codes (DESIGN.md §2): any integer array is
accepted when every value lies in -32768..32767, and is then the same codes
as its ``astype(np.int16)``; a value outside that range is a ``ValueError``
naming its channel and sample, never wrapped around or clipped. Booleans are
not codes (``TypeError``).
"""

from __future__ import annotations

import numpy as np

__all__ = ["CODE_MIN", "CODE_MAX", "check_codes"]

CODE_MIN, CODE_MAX = -(1 << 15), (1 << 15) - 1


def check_codes(a: np.ndarray, what: str = "samples") -> np.ndarray:
    """Check that the integer array ``a`` holds int16 ADC codes; return it as int16.

    Parameters
    ----------
    a : numpy.ndarray
        An integer array, ``(samples, channels)`` when 2-D.
    what : str
        How messages name the array.

    Raises
    ------
    TypeError
        If ``a`` is not an integer array.
    ValueError
        If a value lies outside -32768..32767 (the first one is named).
    """
    if a.dtype.kind not in "iu":
        raise TypeError(f"{what} must be integer ADC codes, not {a.dtype}")
    if a.dtype == np.int16 or a.size == 0:
        return a
    if a.dtype.itemsize > 2 or a.dtype.kind == "u":
        bad = (a < CODE_MIN) | (a > CODE_MAX)
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            where = f"channel {idx[1]}, sample {idx[0]}" if a.ndim == 2 else f"index {idx}"
            raise ValueError(f"{what} hold {int(a[idx])} at {where}, outside the int16 ADC code range "
                             f"{CODE_MIN}..{CODE_MAX}; integer samples are ADC codes (pass float µV for "
                             "anything else)")
    return a.astype(np.int16)
