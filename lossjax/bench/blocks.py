"""Running a baseline over consecutive blocks of models, optionally on several threads.

The numpy and torch baselines train a cache-sized block of models at a time; the blocks are
independent, so their results are simply concatenated. numpy's OpenBLAS is held to one thread
meanwhile (:func:`single_threaded_blas`): on products as large as ``mlp_wide``'s (64 × 64 ×
256) it starts threads of its own, which compete with the blocks' threads (or, one model at a
time, with other processes) for the cores; the commit that added this gives the measurements.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import os
from collections.abc import Callable, Iterator

import numpy as np

__all__ = ["over_blocks", "single_threaded_blas"]

_OPENBLAS_THREADS = ("scipy_openblas_{}_num_threads64_", "scipy_openblas_{}_num_threads", "openblas_{}_num_threads")


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[bool]:
    """Holds numpy's OpenBLAS (the one bundled in its wheel) to one thread, then restores its count.

    Yields whether it could: False where numpy's BLAS is not a bundled OpenBLAS (then nothing changes).
    """
    here = os.path.dirname(np.__file__)
    libs = glob.glob(os.path.join(here, os.pardir, "numpy.libs", "*openblas*"))  # Linux wheels
    libs += glob.glob(os.path.join(here, ".dylibs", "*openblas*"))  # macOS wheels
    for path in libs:
        try:
            lib = ctypes.CDLL(path)  # already loaded by numpy: the same handle
        except OSError:
            continue
        for name in _OPENBLAS_THREADS:
            get, set_ = getattr(lib, name.format("get"), None), getattr(lib, name.format("set"), None)
            if get is not None and set_ is not None:
                before = get()
                set_(1)
                try:
                    yield True
                finally:
                    set_(before)
                return
    yield False


def _concatenate(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def over_blocks(train_block: Callable[[slice], dict], n_models: int, block: int, threads: int) -> dict[str, np.ndarray]:
    """``train_block`` on consecutive slices of ``block`` models, on ``threads`` threads.

    numpy releases the GIL inside its loops, so independent blocks run in parallel, each with
    a single-threaded BLAS.
    """
    slices = [slice(start, start + block) for start in range(0, n_models, block)]
    with single_threaded_blas():
        if threads <= 1:
            return _concatenate([train_block(s) for s in slices])
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(threads) as pool:
            return _concatenate(list(pool.map(train_block, slices)))
