"""The small generated tasks: ``single``, ``blobs1d``, ``blobs2d``, ``xor``, ``moons``, ``spirals``.

Each is deterministic given ``seed``; train and test sets come from independent streams spawned
from it, so the training set does not change with ``n_test``. All are two-class tasks with one
output unit (targets in {0, 1}). Each maker's parameters are declared next to it and arrive
checked (see :func:`lossjax.data.make_dataset`). The ``teacher`` task is in
:mod:`lossjax.data.teacher`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from lossjax.core.params import Param
from lossjax.data.base import (
    Dataset,
    DatasetInfo,
    balanced_labels,
    binary_targets,
    description,
    sizes,
    streams,
)


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


def _noise(doc: str, default: float) -> Param:
    return Param("noise", float, doc, default, minimum=0.0)


# --------------------------------------------------------------------------------------
# single


@dataclasses.dataclass(frozen=True)
class _RealOrList(Param):
    """A real number, or a non-empty list of them (``single``'s input ``x``).

    Returns a ``float`` or a list of ``float``; each item is checked as a ``float`` parameter.
    """

    def check(self, value: Any, where: str | None = None) -> Any:
        label = where or f"parameter {self.name!r}"
        real = Param(self.name, float, self.doc)
        if isinstance(value, np.ndarray):
            value = value.tolist()
        if isinstance(value, (list, tuple)):
            if not value:
                raise ValueError(f"{label} must be {self.describe_type()}, got an empty list")
            return [real.check(v, f"{label} item {i}") for i, v in enumerate(value)]
        if isinstance(value, str):
            raise ValueError(f"{label} must be {self.describe_type()}, got str {value!r}")
        return real.check(value, label)

    def describe_type(self) -> str:
        return "a real number or a non-empty list of them"


SINGLE_PARAMS = (
    _RealOrList("x", float, "the input; a list gives one example with several inputs", 1.0),
    Param("y", float, "the target of the one output unit, in [0, 1]", 0.0, minimum=0.0,
          maximum=1.0),
)


def _make_single(*, seed: int, x: float | list[float], y: float) -> Dataset:
    """One training example, no test set; by default input 1 and target 0: the saturated
    sigmoid neuron that learns slowly under the quadratic cost.

    ``x`` is a number (one input) or a list of numbers (one example with ``len(x)`` inputs).
    ``y`` is the target of the single sigmoid-style output unit. ``seed`` has no effect.
    """
    del seed
    xs = np.asarray(x, dtype=np.float64)
    n_features = xs.size
    return Dataset(
        name="single",
        x_train=xs.reshape(1, n_features),
        y_train=np.full((1, 1), y),
        x_test=np.zeros((0, n_features)),
        y_test=np.zeros((0, 1)),
        n_classes=2,
        description=description(
            "single", "one training example, no test set", None, {"x": xs.tolist(), "y": y}
        ),
    )


# --------------------------------------------------------------------------------------
# blobs


BLOBS_PARAMS = (
    *sizes(64, 256),
    Param("separation", float, "distance between the two class centres", 2.0, above=0.0),
    _noise("std of the Gaussian noise; truncated along the separating direction", 0.5),
)


def _blobs(
    rng: np.random.Generator, n: int, direction: np.ndarray, separation: float, noise: float
) -> tuple[np.ndarray, np.ndarray]:
    """Two Gaussian blobs at ``±separation/2 * direction`` (class 0 at minus, class 1 at plus).

    The noise component along ``direction`` is truncated to ``|e| < separation/2``, so no
    point crosses the hyperplane ``x . direction = 0``: the classes are linearly separable
    by construction. Components orthogonal to ``direction`` are plain Gaussian.
    """
    labels = balanced_labels(rng, n)
    d = direction.size
    along = _truncated_normal(rng, n, noise, separation / 2.0, "noise")
    iso = rng.normal(0.0, noise, size=(n, d)) if noise > 0 else np.zeros((n, d))
    iso -= np.outer(iso @ direction, direction)  # keep only the orthogonal part
    sign = 2.0 * labels - 1.0
    x = np.outer(sign * separation / 2.0 + along, direction) + iso
    return x, binary_targets(labels)


def _make_blobs(name: str, direction: np.ndarray, summary: str) -> Callable[..., Dataset]:
    def maker(*, seed: int, n_train: int, n_test: int, separation: float, noise: float) -> Dataset:
        rng_train, rng_test = streams(seed, 2)
        x_train, y_train = _blobs(rng_train, n_train, direction, separation, noise)
        x_test, y_test = _blobs(rng_test, n_test, direction, separation, noise)
        params = dict(n_train=n_train, n_test=n_test, separation=separation, noise=noise)
        return Dataset(
            name, x_train, y_train, x_test, y_test, 2, description(name, summary, seed, params)
        )

    maker.__name__ = f"_make_{name}"
    return maker


_make_blobs1d = _make_blobs(
    "blobs1d",
    np.array([1.0]),
    "two 1-D Gaussian blobs at ±separation/2, separable at x = 0",
)
_make_blobs2d = _make_blobs(
    "blobs2d",
    np.array([1.0, 1.0]) / math.sqrt(2.0),
    "two 2-D Gaussian blobs at ±separation/2 along (1, 1)/√2, separable by x1 + x2 = 0",
)


# --------------------------------------------------------------------------------------
# xor


XOR_PARAMS = (
    *sizes(4, 4),
    _noise("std of the Gaussian noise per coordinate, truncated to |e| < 1", 0.0),
)
_XOR_CORNERS = np.array([[-1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [1.0, 1.0]])
_XOR_LABELS = np.array([0, 1, 1, 0])


def _xor(rng: np.random.Generator, n: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    corner = rng.permutation(np.arange(n) % 4)
    e = _truncated_normal(rng, 2 * n, noise, 1.0, "noise").reshape(n, 2)
    return _XOR_CORNERS[corner] + e, binary_targets(_XOR_LABELS[corner])


def _make_xor(*, seed: int, n_train: int, n_test: int, noise: float) -> Dataset:
    """2-D XOR with corners at (±1, ±1): bits (a, b) sit at (2a-1, 2b-1), label a XOR b.

    Sample ``i`` uses corner ``i mod 4`` (then shuffled), so ``n_train=4, noise=0`` is the
    truth table. Gaussian noise per coordinate is truncated to |e| < 1, so every point
    stays in its corner's quadrant: label == 1 exactly when x1 * x2 < 0.
    """
    rng_train, rng_test = streams(seed, 2)
    x_train, y_train = _xor(rng_train, n_train, noise)
    x_test, y_test = _xor(rng_test, n_test, noise)
    params = dict(n_train=n_train, n_test=n_test, noise=noise)
    summary = "XOR of the signs of 2 inputs, corners (±1, ±1) plus truncated Gaussian noise"
    return Dataset(
        "xor", x_train, y_train, x_test, y_test, 2, description("xor", summary, seed, params)
    )


# --------------------------------------------------------------------------------------
# moons and spirals


MOONS_PARAMS = (*sizes(256, 1024), _noise("std of the isotropic Gaussian noise", 0.1))
SPIRALS_PARAMS = (
    *sizes(256, 1024),
    Param("turns", float, "turns of each arm", 1.5, above=0.0),
    _noise("std of the isotropic Gaussian noise; arms are 1/(2 turns) apart", 0.05),
)


def _moons(rng: np.random.Generator, n: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    labels = balanced_labels(rng, n)
    t = rng.uniform(0.0, math.pi, size=n)
    outer = np.stack([np.cos(t), np.sin(t)], axis=1)  # class 0
    inner = np.stack([1.0 - np.cos(t), 0.5 - np.sin(t)], axis=1)  # class 1
    x = np.where(labels[:, None] == 1, inner, outer) - np.array([0.5, 0.25])
    x = x + rng.normal(0.0, noise, size=(n, 2)) if noise > 0 else x
    return x, binary_targets(labels)


def _make_moons(*, seed: int, n_train: int, n_test: int, noise: float) -> Dataset:
    """Two interleaving half circles (as in scikit-learn's ``make_moons``), centred at 0.

    Class 0: ``(cos t, sin t)``; class 1: ``(1 - cos t, 1/2 - sin t)``, ``t ~ U(0, pi)``;
    both shifted by ``-(1/2, 1/4)``, plus isotropic Gaussian noise of std ``noise``
    (not truncated: with large noise the classes overlap).
    """
    rng_train, rng_test = streams(seed, 2)
    x_train, y_train = _moons(rng_train, n_train, noise)
    x_test, y_test = _moons(rng_test, n_test, noise)
    params = dict(n_train=n_train, n_test=n_test, noise=noise)
    summary = "two interleaving half circles"
    return Dataset(
        "moons", x_train, y_train, x_test, y_test, 2, description("moons", summary, seed, params)
    )


def _spirals(
    rng: np.random.Generator, n: int, turns: float, noise: float
) -> tuple[np.ndarray, np.ndarray]:
    labels = balanced_labels(rng, n)
    t = rng.uniform(0.0, 1.0, size=n)
    angle = 2.0 * math.pi * turns * t + math.pi * labels
    x = t[:, None] * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    x = x + rng.normal(0.0, noise, size=(n, 2)) if noise > 0 else x
    return x, binary_targets(labels)


def _make_spirals(*, seed: int, n_train: int, n_test: int, turns: float, noise: float) -> Dataset:
    """Two interleaved spiral arms, one per class, inside the unit disc.

    A point has ``t ~ U(0, 1)``, radius ``t`` and angle ``2 pi turns t + pi * label``, plus
    isotropic Gaussian noise of std ``noise``. Neighbouring arms are ``1 / (2 turns)`` apart
    radially (1/3 for the default 1.5 turns), so keep ``noise`` well below that.
    """
    rng_train, rng_test = streams(seed, 2)
    x_train, y_train = _spirals(rng_train, n_train, turns, noise)
    x_test, y_test = _spirals(rng_test, n_test, turns, noise)
    params = dict(n_train=n_train, n_test=n_test, turns=turns, noise=noise)
    summary = "two interleaved spiral arms"
    return Dataset(
        "spirals", x_train, y_train, x_test, y_test, 2,
        description("spirals", summary, seed, params),
    )


ENTRIES = {
    "single": DatasetInfo.declare(
        _make_single,
        "one example (input x, target y), no test set; x may be a list for several inputs",
        SINGLE_PARAMS,
    ),
    "blobs1d": DatasetInfo.declare(
        _make_blobs1d,
        "two 1-D Gaussian blobs at ±separation/2, noise truncated so x=0 separates them",
        BLOBS_PARAMS,
    ),
    "blobs2d": DatasetInfo.declare(
        _make_blobs2d,
        "two 2-D Gaussian blobs along (1,1)/√2, noise truncated so x1+x2=0 separates them",
        BLOBS_PARAMS,
    ),
    "xor": DatasetInfo.declare(
        _make_xor,
        "2-D XOR: corners (±1,±1), label 1 iff x1*x2<0; default is the 4-point truth table",
        XOR_PARAMS,
    ),
    "moons": DatasetInfo.declare(
        _make_moons,
        "two interleaving half circles (scikit-learn style), centred, Gaussian noise",
        MOONS_PARAMS,
    ),
    "spirals": DatasetInfo.declare(
        _make_spirals,
        "two interleaved spiral arms of radius <= 1, Gaussian noise",
        SPIRALS_PARAMS,
    ),
}
