"""Running a baseline over consecutive blocks of models, optionally on several threads.

The numpy and torch baselines train a cache-sized block of models at a time; the blocks are
independent, so their results are simply concatenated.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["over_blocks"]


def _concatenate(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def over_blocks(train_block: Callable[[slice], dict], n_models: int, block: int, threads: int) -> dict[str, np.ndarray]:
    """``train_block`` on consecutive slices of ``block`` models, on ``threads`` threads.

    numpy releases the GIL inside its loops, so independent blocks run in parallel.
    """
    slices = [slice(start, start + block) for start in range(0, n_models, block)]
    if threads <= 1:
        return _concatenate([train_block(s) for s in slices])
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(threads) as pool:
        return _concatenate(list(pool.map(train_block, slices)))
