"""Closed-loop studies at scale: sweep files, runs on Dask distributed, result tables.

Needs the ``sweep`` extra (dask[distributed], pyarrow, jsonschema). See docs/sweep.md.
"""

from .plan import Run, Sweep, SweepError, load_sweep, parse_sweep

__all__ = ["Run", "Sweep", "SweepError", "load_sweep", "parse_sweep"]
