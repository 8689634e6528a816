"""Argument checks shared by the observation modules (spike buffer, decoders, observation).

Times are integer nanoseconds and ids are integers: a float, a bool or a
string where an integer is expected is a caller bug, reported as a
``TypeError`` naming the argument, never rounded.
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["checked_int", "checked_index_array"]


def checked_int(name: str, value, *, minimum: int, maximum: int | None = None) -> int:
    """Return ``value`` as a Python int, or raise a typed error naming it.

    Booleans, floats (including NaN and inf) and strings are rejected: times
    are integer nanoseconds and ids are integers, so a float here is a caller
    bug, not something to round.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    v = int(value)
    if v < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {v}")
    if maximum is not None and v > maximum:
        raise OverflowError(f"{name} must be <= {maximum}, got {v}")
    return v


def checked_index_array(name: str, values, *, maximum: int) -> np.ndarray:
    """Validate a 1-D integer array with entries in ``0..maximum``.

    Raises
    ------
    TypeError
        Non-integer dtype (floats are rejected even when integral).
    ValueError
        Wrong shape, NaN/inf, or negative entries (the first offender is named).
    OverflowError
        Entries above ``maximum``.
    """
    a = np.asarray(values)
    if a.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array, got shape {a.shape}")
    if a.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(a))
        if bad.size:
            i = int(bad[0])
            raise ValueError(f"{name} contains {a[i]} at index {i}; {name} must be finite integers")
    if a.dtype.kind not in "iu":
        raise TypeError(f"{name} must have an integer dtype, got {a.dtype}")
    if a.size == 0:
        return a
    if a.dtype.kind == "i":
        neg = np.flatnonzero(a < 0)
        if neg.size:
            i = int(neg[0])
            raise ValueError(f"{name} must be non-negative, got {int(a[i])} at index {i}")
    if int(a.max()) > maximum:
        i = int(np.argmax(a))
        raise OverflowError(f"{name} must be <= {maximum}, got {int(a[i])} at index {i}")
    return a
