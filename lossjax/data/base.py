"""What every dataset module shares: the :class:`Dataset` and :class:`DatasetInfo` types, the
``seed`` and size declarations, and small numpy helpers.

Each dataset declares its parameters once, as a tuple of :class:`~lossjax.core.params.Param`
next to its maker; :func:`lossjax.data.make_dataset` validates with them before calling the maker,
so a maker receives every parameter, checked and normalised.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, NamedTuple

import numpy as np

from lossjax.core.params import Param

#: Upper bound on ``n_train`` / ``n_test`` of the generated sets: a larger request fails in one
#: line instead of trying to allocate it.
MAX_EXAMPLES = 10**7

SEED = Param(
    "seed",
    int,
    "random seed; the same dataset, seed and parameters give identical arrays",
    default=0,
    minimum=0,
    below=2**32,
)


class Dataset(NamedTuple):
    """A generated or loaded dataset; all arrays are float64."""

    name: str
    x_train: np.ndarray  # (n_train, n_features)
    y_train: np.ndarray  # (n_train, 1) in {0, 1} for binary tasks, (n_train, K) one-hot otherwise
    x_test: np.ndarray  # (n_test, n_features); 0 rows for `single`
    y_test: np.ndarray
    n_classes: int  # 2 for binary (one output unit), K for one-hot
    description: str


class DatasetInfo(NamedTuple):
    """Registry entry: how to make a dataset and which parameters it accepts.

    Build one with :meth:`declare`, which derives ``params`` from ``declared``.
    """

    maker: Callable[..., Dataset]  # maker(seed=..., **params) with every parameter given, checked
    description: str  # one line
    params: Mapping[str, Any]  # allowed parameters -> defaults (read-only)
    declared: tuple[Param, ...]  # the parameters' declarations: type, range, meaning

    @classmethod
    def declare(
        cls, maker: Callable[..., Dataset], description: str, declared: Sequence[Param]
    ) -> DatasetInfo:
        declared = tuple(declared)
        defaults = MappingProxyType({p.name: p.default for p in declared})
        return cls(maker, description, defaults, declared)


def sizes(n_train: int, n_test: int) -> tuple[Param, Param]:
    """The ``n_train`` / ``n_test`` declarations of a generated set, with these defaults."""
    return (
        Param("n_train", int, "number of training examples, at most 10**7", n_train,
              minimum=1, maximum=MAX_EXAMPLES),
        Param("n_test", int, "number of test examples, at most 10**7", n_test,
              minimum=1, maximum=MAX_EXAMPLES),
    )


def streams(seed: int, n: int) -> list[np.random.Generator]:
    """``n`` independent generators spawned from ``seed`` (stream i never depends on others)."""
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(n)]


def binary_targets(labels: np.ndarray) -> np.ndarray:
    """Integer labels in {0, 1} -> float64 column of shape (n, 1)."""
    return labels.astype(np.float64).reshape(-1, 1)


def one_hot(labels: np.ndarray, k: int) -> np.ndarray:
    return np.eye(k, dtype=np.float64)[labels]


def balanced_labels(rng: np.random.Generator, n: int, k: int = 2) -> np.ndarray:
    """``n`` labels in ``0..k-1``, as balanced as possible (counts differ by <= 1), shuffled."""
    return rng.permutation(np.arange(n) % k)


def description(name: str, summary: str, seed: int | None, params: Mapping[str, Any]) -> str:
    """The one-line ``Dataset.description``: ``"name: summary (param=value, ..., seed=s)"``."""
    args = ", ".join(f"{k}={v!r}" for k, v in params.items())
    if seed is not None:
        args = f"{args}, seed={seed}" if args else f"seed={seed}"
    return f"{name}: {summary} ({args})"
