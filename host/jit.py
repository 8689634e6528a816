"""numba as an optional accelerator: :func:`njit` compiles when numba is there, else runs Python.

The host runtime runs on the PYNQ-Z2 image (armv7l, Python 3.10), where
PyPI has no numba or llvmlite wheels (issue 11, DESIGN.md §7). Every kernel
of the host is written once, in the subset of Python that numba compiles,
and decorated with :func:`njit`:

- with numba installed (``pip install bioloop[culture]``) it becomes
  ``numba.njit`` with the same options. numba is imported only when the
  first kernel is called, so importing bioloop never imports numba;
- without numba, or with ``BIOLOOP_NUMBA=0`` in the environment, the
  decorator returns the function unchanged, so the same source runs as
  plain Python on numpy arrays. The kernels take care that integer
  arithmetic does not depend on numba's type promotion (explicit ``int()``
  on array elements that are shifted or summed), so both paths give the same
  bytes.

Where a kernel sits on a hot path, its module also provides a vectorised
numpy version, chosen when :data:`ENABLED` is false. ``tests/host/test_jit.py``
runs both paths and compares their outputs byte for byte.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys

__all__ = ["ENABLED", "njit", "numba_version"]


def _wanted() -> bool:
    if os.environ.get("BIOLOOP_NUMBA", "1").strip().lower() in ("0", "off", "false", "no"):
        return False
    return importlib.util.find_spec("numba") is not None


#: True when kernels are compiled by numba; False on the plain Python/numpy path.
ENABLED: bool = _wanted()

_pending: list["_Lazy"] = []
_numba = None


def numba_version() -> str | None:
    """The numba version the kernels use (imports numba), or None on the Python/numpy path."""
    return _load().__version__ if ENABLED else None


def _load():
    global _numba
    if _numba is None:
        _numba = importlib.import_module("numba")
    return _numba


class _Lazy:
    """A kernel that becomes ``numba.njit(**options)(py_func)`` at the first call of any kernel."""

    def __init__(self, fn, options):
        self.py_func = fn
        self.options = options
        self.dispatcher = None
        self.__name__ = fn.__name__
        self.__qualname__ = getattr(fn, "__qualname__", fn.__name__)
        self.__module__ = fn.__module__
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn

    def __call__(self, *args, **kwargs):
        if self.dispatcher is None:
            _activate()
        return self.dispatcher(*args, **kwargs)

    def __repr__(self):
        return f"<bioloop kernel {self.__module__}.{self.__qualname__}>"


def _activate() -> None:
    """Import numba, wrap every kernel, and put the dispatchers where the modules name them.

    numba resolves a kernel's callees from its module's globals when it
    compiles, so every global that still names a lazy kernel is replaced by
    the dispatcher first (kernels imported from another module included).
    """
    numba = _load()
    for lazy in _pending:
        if lazy.dispatcher is None:
            lazy.dispatcher = numba.njit(**lazy.options)(lazy.py_func)
    _pending.clear()
    for name, mod in list(sys.modules.items()):
        if mod is None or not (name == "bioloop" or name.startswith("bioloop.")):
            continue
        for key, value in list(vars(mod).items()):
            if isinstance(value, _Lazy) and value.dispatcher is not None:
                setattr(mod, key, value.dispatcher)


def njit(*args, **options):
    """``numba.njit(*args, **options)`` when numba is enabled, else the identity decorator.

    Used bare (``@njit``) or with options (``@njit(cache=True, nogil=True)``).
    """
    def decorate(fn):
        if not ENABLED:
            return fn
        if _numba is not None and not _pending:      # already active: compile as numba would
            return _numba.njit(**options)(fn)
        lazy = _Lazy(fn, options)
        _pending.append(lazy)
        return lazy

    if args and callable(args[0]) and not options:
        return decorate(args[0])
    return decorate
