"""Datasets for lossjax: small synthetic tasks and loaders, as float64 numpy arrays.

Everything here is pure numpy (no jax) and deterministic given ``seed``; the training
engine casts the arrays to the run's dtype. Use :func:`make_dataset`::

    ds = make_dataset("blobs2d", seed=3, n_train=128)
    ds.x_train.shape   # (128, 2)
    ds.y_train.shape   # (128, 1), values in {0., 1.}

Conventions (every dataset):

* ``x_*`` has shape ``(n, n_features)``.
* Two-class tasks have ONE output unit: ``y_*`` has shape ``(n, 1)`` with values in
  ``{0., 1.}`` and ``n_classes == 2``. Tasks with ``K > 2`` classes are one-hot:
  ``y_*`` has shape ``(n, K)`` and ``n_classes == K``.
* Train and test sets are drawn from independent random streams spawned from ``seed``,
  so the training set does not change when ``n_test`` changes (and vice versa).
* Sizes ``n_train`` and ``n_test`` must be positive integers (``single`` has no test set).

Available datasets and their parameters are listed in :data:`DATASETS`.
"""

from __future__ import annotations

import math
import numbers
import operator
from types import MappingProxyType
from typing import Any, Callable, Mapping, NamedTuple

import numpy as np

__all__ = ["Dataset", "DatasetInfo", "DATASETS", "make_dataset"]


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
    """Registry entry: how to make a dataset and which parameters it accepts."""

    maker: Callable[..., Dataset]  # maker(seed=..., **params) with every parameter given
    description: str  # one line
    params: Mapping[str, Any]  # allowed parameters -> defaults (read-only)


# --------------------------------------------------------------------------------------
# Parameter checking. Each raises ValueError naming the parameter.


def _check_int(name: str, value: Any, *, minimum: int) -> int:
    if isinstance(value, bool):
        raise ValueError(f"parameter {name!r} must be an integer, got bool {value!r}")
    try:
        value = operator.index(value)
    except TypeError:
        raise ValueError(
            f"parameter {name!r} must be an integer, got {type(value).__name__} {value!r}"
        ) from None
    if value < minimum:
        raise ValueError(f"parameter {name!r} must be >= {minimum}, got {value}")
    return value


def _check_float(
    name: str, value: Any, *, minimum: float | None = None, positive: bool = False
) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(
            f"parameter {name!r} must be a real number, got {type(value).__name__} {value!r}"
        )
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"parameter {name!r} must be finite, got {value}")
    if positive and value <= 0:
        raise ValueError(f"parameter {name!r} must be > 0, got {value}")
    if minimum is not None and value < minimum:
        raise ValueError(f"parameter {name!r} must be >= {minimum}, got {value}")
    return value


def _streams(seed: int, n: int) -> list[np.random.Generator]:
    """``n`` independent generators spawned from ``seed`` (stream i never depends on others)."""
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(n)]


def _binary_targets(labels: np.ndarray) -> np.ndarray:
    """Integer labels in {0, 1} -> float64 column of shape (n, 1)."""
    return labels.astype(np.float64).reshape(-1, 1)


def _one_hot(labels: np.ndarray, k: int) -> np.ndarray:
    return np.eye(k, dtype=np.float64)[labels]


def _balanced_labels(rng: np.random.Generator, n: int, k: int = 2) -> np.ndarray:
    """``n`` labels in ``0..k-1``, as balanced as possible (counts differ by <= 1), shuffled."""
    return rng.permutation(np.arange(n) % k)


def _describe(name: str, summary: str, seed: int | None, params: Mapping[str, Any]) -> str:
    args = ", ".join(f"{k}={v!r}" for k, v in params.items())
    if seed is not None:
        args = f"{args}, seed={seed}" if args else f"seed={seed}"
    return f"{name}: {summary} ({args})"


def _truncated_normal(
    rng: np.random.Generator, size: int, scale: float, bound: float, name: str
) -> np.ndarray:
    """``size`` draws of N(0, scale^2) conditioned on |e| < bound (rejection sampling).

    ``scale == 0`` gives zeros. Raises ValueError (naming ``name``) when the acceptance
    probability is so small that rejection sampling would be impractical.
    """
    if scale == 0.0:
        return np.zeros(size)
    accept = math.erf(bound / (scale * math.sqrt(2.0)))
    if accept < 1e-3:
        raise ValueError(
            f"parameter {name!r}={scale} is too large for the class margin {bound} "
            f"(only {accept:.2g} of Gaussian draws would stay on their side)"
        )
    out = np.empty(size)
    filled = 0
    while filled < size:
        need = size - filled
        draw = rng.normal(0.0, scale, size=int(need / accept * 1.2) + 16)
        keep = draw[np.abs(draw) < bound][:need]
        out[filled : filled + keep.size] = keep
        filled += keep.size
    return out


# --------------------------------------------------------------------------------------
# single


def _make_single(*, seed: int, x: Any, y: Any) -> Dataset:
    """One training example (the texts' single neuron: input 1, target 0); no test set.

    ``x`` is a number (one input) or a sequence of numbers (one example with
    ``len(x)`` inputs). ``y`` is the target of the single sigmoid-style output unit and
    must lie in [0, 1]. ``seed`` has no effect.
    """
    del seed
    if isinstance(x, (bool, np.bool_)):
        raise ValueError(f"parameter 'x' must be a number or a sequence of numbers, got {x!r}")
    try:
        xs = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            f"parameter 'x' must be a number or a sequence of numbers, got {x!r}"
        ) from None
    if xs.ndim > 1 or xs.size == 0:
        raise ValueError(
            f"parameter 'x' must be a number or a non-empty 1-D sequence, got shape {xs.shape}"
        )
    if not np.all(np.isfinite(xs)):
        raise ValueError(f"parameter 'x' must be finite, got {x!r}")
    y = _check_float("y", y)
    if not 0.0 <= y <= 1.0:
        raise ValueError(f"parameter 'y' must lie in [0, 1] (one output unit), got {y}")
    n_features = xs.size
    return Dataset(
        name="single",
        x_train=xs.reshape(1, n_features),
        y_train=np.full((1, 1), y),
        x_test=np.zeros((0, n_features)),
        y_test=np.zeros((0, 1)),
        n_classes=2,
        description=_describe(
            "single", "one training example, no test set", None, {"x": x, "y": y}
        ),
    )


# --------------------------------------------------------------------------------------
# blobs


def _blobs(
    rng: np.random.Generator, n: int, direction: np.ndarray, separation: float, noise: float
) -> tuple[np.ndarray, np.ndarray]:
    """Two Gaussian blobs at ``±separation/2 * direction`` (class 0 at minus, class 1 at plus).

    The noise component along ``direction`` is truncated to ``|e| < separation/2``, so no
    point crosses the hyperplane ``x . direction = 0``: the classes are linearly separable
    by construction. Components orthogonal to ``direction`` are plain Gaussian.
    """
    labels = _balanced_labels(rng, n)
    d = direction.size
    along = _truncated_normal(rng, n, noise, separation / 2.0, "noise")
    iso = rng.normal(0.0, noise, size=(n, d)) if noise > 0 else np.zeros((n, d))
    iso -= np.outer(iso @ direction, direction)  # keep only the orthogonal part
    sign = 2.0 * labels - 1.0
    x = np.outer(sign * separation / 2.0 + along, direction) + iso
    return x, _binary_targets(labels)


def _make_blobs(name: str, direction: np.ndarray, summary: str) -> Callable[..., Dataset]:
    def maker(*, seed: int, n_train: int, n_test: int, separation: float, noise: float) -> Dataset:
        n_train = _check_int("n_train", n_train, minimum=1)
        n_test = _check_int("n_test", n_test, minimum=1)
        separation = _check_float("separation", separation, positive=True)
        noise = _check_float("noise", noise, minimum=0.0)
        rng_train, rng_test = _streams(seed, 2)
        x_train, y_train = _blobs(rng_train, n_train, direction, separation, noise)
        x_test, y_test = _blobs(rng_test, n_test, direction, separation, noise)
        params = dict(n_train=n_train, n_test=n_test, separation=separation, noise=noise)
        return Dataset(
            name, x_train, y_train, x_test, y_test, 2, _describe(name, summary, seed, params)
        )

    maker.__name__ = f"_make_{name}"
    return maker


_BLOBS1D_DIRECTION = np.array([1.0])
_BLOBS2D_DIRECTION = np.array([1.0, 1.0]) / math.sqrt(2.0)

_make_blobs1d = _make_blobs(
    "blobs1d",
    _BLOBS1D_DIRECTION,
    "two 1-D Gaussian blobs at ±separation/2, separable at x = 0",
)
_make_blobs2d = _make_blobs(
    "blobs2d",
    _BLOBS2D_DIRECTION,
    "two 2-D Gaussian blobs at ±separation/2 along (1, 1)/√2, separable by x1 + x2 = 0",
)


# --------------------------------------------------------------------------------------
# xor


_XOR_CORNERS = np.array([[-1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [1.0, 1.0]])
_XOR_LABELS = np.array([0, 1, 1, 0])


def _xor(rng: np.random.Generator, n: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    corner = rng.permutation(np.arange(n) % 4)
    e = _truncated_normal(rng, 2 * n, noise, 1.0, "noise").reshape(n, 2)
    return _XOR_CORNERS[corner] + e, _binary_targets(_XOR_LABELS[corner])


def _make_xor(*, seed: int, n_train: int, n_test: int, noise: float) -> Dataset:
    """2-D XOR with corners at (±1, ±1): bits (a, b) sit at (2a-1, 2b-1), label a XOR b.

    Sample ``i`` uses corner ``i mod 4`` (then shuffled), so ``n_train=4, noise=0`` is the
    truth table. Gaussian noise per coordinate is truncated to |e| < 1, so every point
    stays in its corner's quadrant: label == 1 exactly when x1 * x2 < 0.
    """
    n_train = _check_int("n_train", n_train, minimum=1)
    n_test = _check_int("n_test", n_test, minimum=1)
    noise = _check_float("noise", noise, minimum=0.0)
    rng_train, rng_test = _streams(seed, 2)
    x_train, y_train = _xor(rng_train, n_train, noise)
    x_test, y_test = _xor(rng_test, n_test, noise)
    params = dict(n_train=n_train, n_test=n_test, noise=noise)
    summary = "XOR of the signs of 2 inputs, corners (±1, ±1) plus truncated Gaussian noise"
    return Dataset(
        "xor", x_train, y_train, x_test, y_test, 2, _describe("xor", summary, seed, params)
    )


# --------------------------------------------------------------------------------------
# Registry


def _info(maker: Callable[..., Dataset], description: str, **params: Any) -> DatasetInfo:
    return DatasetInfo(maker, description, MappingProxyType(params))


DATASETS: dict[str, DatasetInfo] = {
    "single": _info(
        _make_single,
        "one example (input x, target y), no test set; x may be a list for several inputs",
        x=1.0,
        y=0.0,
    ),
    "blobs1d": _info(
        _make_blobs1d,
        "two 1-D Gaussian blobs at ±separation/2, noise truncated so x=0 separates them",
        n_train=64,
        n_test=256,
        separation=2.0,
        noise=0.5,
    ),
    "blobs2d": _info(
        _make_blobs2d,
        "two 2-D Gaussian blobs along (1,1)/√2, noise truncated so x1+x2=0 separates them",
        n_train=64,
        n_test=256,
        separation=2.0,
        noise=0.5,
    ),
    "xor": _info(
        _make_xor,
        "2-D XOR: corners (±1,±1), label 1 iff x1*x2<0; default is the 4-point truth table",
        n_train=4,
        n_test=4,
        noise=0.0,
    ),
}


def make_dataset(name: str, *, seed: int = 0, **params: Any) -> Dataset:
    """Make the dataset ``name`` with ``params`` overriding its defaults.

    Args:
      name: a key of :data:`DATASETS`.
      seed: non-negative integer; the same ``(name, seed, params)`` gives identical arrays.
      **params: any of the dataset's parameters (see ``DATASETS[name].params``).

    Returns:
      A :class:`Dataset` of float64 arrays.

    Raises:
      ValueError: unknown ``name``, unknown parameter, or a bad value (the message names
        the offending parameter).
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; allowed: {', '.join(sorted(DATASETS))}")
    info = DATASETS[name]
    unknown = sorted(set(params) - set(info.params))
    if unknown:
        allowed = ", ".join(info.params) or "(none)"
        raise ValueError(
            f"unknown parameter(s) {', '.join(map(repr, unknown))} for dataset {name!r}; "
            f"allowed: {allowed}"
        )
    seed = _check_int("seed", seed, minimum=0)
    return info.maker(seed=seed, **{**info.params, **params})
