"""Numba compilation shared by the models' compiled kernels."""

from __future__ import annotations

import numba


def compiled(func):
    """``numba.njit`` with the compiled code cached on disk; where no cache location is writable (a read-only
    install without a writable home), compiled anew in each process instead of failing at import."""
    try:
        return numba.njit(cache=True)(func)
    except RuntimeError:  # numba: "cannot cache function ...: no locator available"
        return numba.njit(func)
