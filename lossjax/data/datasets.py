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
* Sizes ``n_train`` and ``n_test`` must be positive integers (``single`` has no test set;
  for ``mnist`` / ``fashion_mnist`` the default ``None`` means every example in the files).
* ``mnist`` / ``fashion_mnist`` with ``flatten=False`` are the one exception to the 2-D
  ``x``: images keep their shape ``(n, rows, cols)``.

I/O is confined to two places: ``mnist1d`` caches its generated arrays (see
:func:`cache_dir`), and ``mnist`` / ``fashion_mnist`` read IDX files (:func:`read_idx`).
Missing files raise :class:`DatasetFileNotFoundError` (both a ``FileNotFoundError`` and
a ``ValueError``); malformed files raise ``ValueError`` naming the file and the problem.

Available datasets and their parameters are listed in :data:`DATASETS`.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import numbers
import operator
import os
import tempfile
import warnings
import zipfile
import zlib
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Mapping, NamedTuple

import numpy as np

__all__ = [
    "DATASETS",
    "Dataset",
    "DatasetFileNotFoundError",
    "DatasetInfo",
    "IDX_FILES",
    "cache_dir",
    "make_dataset",
    "parse_idx",
    "read_idx",
    "teacher_network",
]


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
            "single", "one training example, no test set", None, {"x": xs.tolist(), "y": y}
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
# moons and spirals


def _moons(rng: np.random.Generator, n: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    labels = _balanced_labels(rng, n)
    t = rng.uniform(0.0, math.pi, size=n)
    outer = np.stack([np.cos(t), np.sin(t)], axis=1)  # class 0
    inner = np.stack([1.0 - np.cos(t), 0.5 - np.sin(t)], axis=1)  # class 1
    x = np.where(labels[:, None] == 1, inner, outer) - np.array([0.5, 0.25])
    x = x + rng.normal(0.0, noise, size=(n, 2)) if noise > 0 else x
    return x, _binary_targets(labels)


def _make_moons(*, seed: int, n_train: int, n_test: int, noise: float) -> Dataset:
    """Two interleaving half circles (as in scikit-learn's ``make_moons``), centred at 0.

    Class 0: ``(cos t, sin t)``; class 1: ``(1 - cos t, 1/2 - sin t)``, ``t ~ U(0, pi)``;
    both shifted by ``-(1/2, 1/4)``, plus isotropic Gaussian noise of std ``noise``
    (not truncated: with large noise the classes overlap).
    """
    n_train = _check_int("n_train", n_train, minimum=1)
    n_test = _check_int("n_test", n_test, minimum=1)
    noise = _check_float("noise", noise, minimum=0.0)
    rng_train, rng_test = _streams(seed, 2)
    x_train, y_train = _moons(rng_train, n_train, noise)
    x_test, y_test = _moons(rng_test, n_test, noise)
    params = dict(n_train=n_train, n_test=n_test, noise=noise)
    summary = "two interleaving half circles"
    return Dataset(
        "moons", x_train, y_train, x_test, y_test, 2, _describe("moons", summary, seed, params)
    )


def _spirals(
    rng: np.random.Generator, n: int, turns: float, noise: float
) -> tuple[np.ndarray, np.ndarray]:
    labels = _balanced_labels(rng, n)
    t = rng.uniform(0.0, 1.0, size=n)
    angle = 2.0 * math.pi * turns * t + math.pi * labels
    x = t[:, None] * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    x = x + rng.normal(0.0, noise, size=(n, 2)) if noise > 0 else x
    return x, _binary_targets(labels)


def _make_spirals(*, seed: int, n_train: int, n_test: int, turns: float, noise: float) -> Dataset:
    """Two interleaved spiral arms, one per class, inside the unit disc.

    A point has ``t ~ U(0, 1)``, radius ``t`` and angle ``2 pi turns t + pi * label``, plus
    isotropic Gaussian noise of std ``noise``. Neighbouring arms are ``1 / (2 turns)`` apart
    radially (1/3 for the default 1.5 turns), so keep ``noise`` well below that.
    """
    n_train = _check_int("n_train", n_train, minimum=1)
    n_test = _check_int("n_test", n_test, minimum=1)
    turns = _check_float("turns", turns, positive=True)
    noise = _check_float("noise", noise, minimum=0.0)
    rng_train, rng_test = _streams(seed, 2)
    x_train, y_train = _spirals(rng_train, n_train, turns, noise)
    x_test, y_test = _spirals(rng_test, n_test, turns, noise)
    params = dict(n_train=n_train, n_test=n_test, turns=turns, noise=noise)
    summary = "two interleaved spiral arms"
    return Dataset(
        "spirals", x_train, y_train, x_test, y_test, 2, _describe("spirals", summary, seed, params)
    )


# --------------------------------------------------------------------------------------
# teacher


def teacher_network(
    seed: int, *, depth: int, width: int, n_features: int, classes: int
) -> list[np.ndarray]:
    """Weight matrices of the random teacher MLP used by the ``teacher`` dataset.

    The teacher is ``depth`` tanh hidden layers of ``width`` units, no biases, and a linear
    output layer with 1 unit (``classes == 2``) or ``classes`` units. Weights are
    ``N(0, 1/fan_in)``. Examples: ``depth=0`` is a linear teacher, one matrix
    ``(n_features, 1)`` (labels are then linearly separable); ``depth=1`` gives matrices
    ``(n_features, width)`` and ``(width, n_out)``.

    No biases makes the binary teacher an odd function, so on Gaussian inputs each class
    has probability 1/2.

    Args:
      seed: the dataset seed; the teacher uses its own stream, independent of the inputs.
      depth, width, n_features, classes: as the dataset parameters.

    Returns:
      ``depth + 1`` float64 matrices, applied as ``h = tanh(h @ W)`` except the last
      (``out = h @ W``).
    """
    seed = _check_int("seed", seed, minimum=0)
    depth = _check_int("depth", depth, minimum=0)
    width = _check_int("width", width, minimum=1)
    n_features = _check_int("n_features", n_features, minimum=1)
    classes = _check_int("classes", classes, minimum=2)
    n_out = 1 if classes == 2 else classes
    sizes = [n_features] + [width] * depth + [n_out]
    rng = _streams(seed, 3)[0]
    return [
        rng.normal(0.0, 1.0 / math.sqrt(fan_in), size=(fan_in, fan_out))
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:])
    ]


def _teacher_labels(weights: list[np.ndarray], x: np.ndarray) -> np.ndarray:
    h = x
    for w in weights[:-1]:
        h = np.tanh(h @ w)
    out = h @ weights[-1]
    return (out[:, 0] > 0).astype(np.int64) if out.shape[1] == 1 else out.argmax(axis=1)


def _make_teacher(
    *,
    seed: int,
    depth: int,
    width: int,
    n_features: int,
    n_train: int,
    n_test: int,
    classes: int,
) -> Dataset:
    """Inputs ``N(0, I)`` labelled by a random teacher MLP (see :func:`teacher_network`).

    Label = ``output > 0`` for 2 classes (one output unit), ``argmax(output)`` otherwise
    (one-hot targets).
    """
    weights = teacher_network(
        seed, depth=depth, width=width, n_features=n_features, classes=classes
    )
    n_train = _check_int("n_train", n_train, minimum=1)
    n_test = _check_int("n_test", n_test, minimum=1)
    _, rng_train, rng_test = _streams(seed, 3)
    x_train = rng_train.normal(size=(n_train, n_features))
    x_test = rng_test.normal(size=(n_test, n_features))

    def targets(x: np.ndarray) -> np.ndarray:
        labels = _teacher_labels(weights, x)
        return _binary_targets(labels) if classes == 2 else _one_hot(labels, classes)

    params = dict(
        depth=depth, width=width, n_features=n_features, n_train=n_train, n_test=n_test,
        classes=classes,
    )
    summary = "Gaussian inputs labelled by a random tanh MLP teacher"
    return Dataset(
        "teacher", x_train, targets(x_train), x_test, targets(x_test), classes,
        _describe("teacher", summary, seed, params),
    )


# --------------------------------------------------------------------------------------
# MNIST-1D (generated by the `mnist1d` package; cached on disk)

MNIST1D_TRAIN = 4000  # the package's default: 5000 samples, 80/20 split
MNIST1D_TEST = 1000
_CACHE_FORMAT = 1


def cache_dir() -> Path:
    """Directory for cached generated data: ``$LOSSJAX_CACHE``, else ``$XDG_CACHE_HOME/lossjax``,
    else ``~/.cache/lossjax``."""
    if os.environ.get("LOSSJAX_CACHE"):
        return Path(os.environ["LOSSJAX_CACHE"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "lossjax"


def _mnist1d_arrays(seed: int) -> dict[str, np.ndarray]:
    """The full MNIST-1D train/test arrays for ``seed``, from the cache or generated.

    Generation calls ``mnist1d.data.make_dataset`` with the package's default arguments
    (``get_dataset_args()``) and ``seed`` replacing its seed 42; it never downloads.
    ``mnist1d`` reseeds numpy's and Python's global RNGs, so both are saved and restored.
    """
    import importlib.metadata

    args = _mnist1d_default_args()
    args["seed"] = seed
    version = importlib.metadata.version("mnist1d")
    key_src = json.dumps(
        {"format": _CACHE_FORMAT, "mnist1d": version, "args": args}, sort_keys=True
    )
    key = hashlib.sha256(key_src.encode()).hexdigest()[:20]
    path = cache_dir() / f"mnist1d-{key}.npz"
    names = ("x", "y", "x_test", "y_test")

    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in names}
        shapes = {k: v.shape for k, v in arrays.items()}
        if shapes == {
            "x": (MNIST1D_TRAIN, 40),
            "y": (MNIST1D_TRAIN,),
            "x_test": (MNIST1D_TEST, 40),
            "y_test": (MNIST1D_TEST,),
        }:
            return arrays
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        pass  # missing or unreadable cache entry: regenerate and overwrite it

    import random

    from mnist1d.data import make_dataset as mnist1d_make_dataset
    from mnist1d.utils import ObjectView

    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        data = mnist1d_make_dataset(ObjectView(dict(args)))
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    arrays = {k: np.asarray(data[k]) for k in names}
    _atomic_savez(path, arrays)
    return arrays


def _mnist1d_default_args() -> dict[str, Any]:
    from mnist1d.data import get_dataset_args

    args = dict(get_dataset_args(as_dict=True))
    args.pop("url", None)  # only used by the package's download helper
    return args


def _atomic_savez(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``arrays`` to ``path`` via a temporary file and ``os.replace``; on failure warn."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
        tmp = None
    except OSError as e:
        warnings.warn(f"could not cache {path.name} in {path.parent}: {e}", stacklevel=3)
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)


def _make_mnist1d(*, seed: int, n_train: int, n_test: int) -> Dataset:
    """MNIST-1D (Greydanus 2020): 10 classes of 40-sample 1-D signals, one-hot targets.

    The package's default generator (5000 samples, 80/20 split, then standardised to
    mean 0 and std 1) run with ``seed``; ``seed=42`` uses the package's default seed.
    ``n_train`` / ``n_test`` keep the first rows of the 4000 / 1000 generated ones (the
    package already shuffles), so smaller sets are nested in larger ones.
    The first call per seed takes about a second; the arrays are then cached (see
    :func:`cache_dir`).
    """
    n_train = _check_int("n_train", n_train, minimum=1)
    n_test = _check_int("n_test", n_test, minimum=1)
    if n_train > MNIST1D_TRAIN:
        raise ValueError(f"parameter 'n_train' must be <= {MNIST1D_TRAIN}, got {n_train}")
    if n_test > MNIST1D_TEST:
        raise ValueError(f"parameter 'n_test' must be <= {MNIST1D_TEST}, got {n_test}")
    if seed >= 2**32:
        raise ValueError(f"parameter 'seed' must be < 2**32 for mnist1d, got {seed}")
    a = _mnist1d_arrays(seed)
    params = dict(n_train=n_train, n_test=n_test)
    return Dataset(
        "mnist1d",
        np.asarray(a["x"][:n_train], dtype=np.float64),
        _one_hot(a["y"][:n_train].astype(np.int64), 10),
        np.asarray(a["x_test"][:n_test], dtype=np.float64),
        _one_hot(a["y_test"][:n_test].astype(np.int64), 10),
        10,
        _describe("mnist1d", "MNIST-1D, 10 classes, 40 features", seed, params),
    )


# --------------------------------------------------------------------------------------
# MNIST and Fashion-MNIST from IDX files


class DatasetFileNotFoundError(FileNotFoundError, ValueError):
    """A dataset path or file is missing. Also a ValueError: ``path`` has a bad value."""


# IDX type code -> big-endian numpy dtype (http://yann.lecun.com/exdb/mnist/, "IDX format").
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def parse_idx(data: bytes, source: str = "<bytes>") -> np.ndarray:
    """Parse the bytes of an IDX file into an array with native byte order.

    Layout: two zero bytes, a type code (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
    0x0D float32, 0x0E float64), the number of dimensions ``d``, then ``d`` big-endian
    uint32 sizes, then the big-endian data in C order.

    Raises:
      ValueError: naming ``source`` and the problem (bad magic number, unknown type code,
        truncated header or data, trailing bytes).
    """
    if len(data) < 4:
        raise ValueError(
            f"{source}: truncated IDX header ({len(data)} bytes, need at least 4)"
        )
    zero0, zero1, code, ndim = data[0], data[1], data[2], data[3]
    if zero0 != 0 or zero1 != 0:
        raise ValueError(
            f"{source}: bad magic number 0x{data[:4].hex()} (an IDX file starts with two "
            f"zero bytes, a type code and the number of dimensions)"
        )
    if code not in _IDX_DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in _IDX_DTYPES)
        raise ValueError(
            f"{source}: bad magic number 0x{data[:4].hex()}: unknown IDX type code "
            f"0x{code:02X} (known: {known})"
        )
    if ndim == 0:
        raise ValueError(f"{source}: bad magic number 0x{data[:4].hex()}: 0 dimensions")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(
            f"{source}: truncated IDX header: {ndim} dimensions need {header} bytes, "
            f"file has {len(data)}"
        )
    shape = tuple(int(s) for s in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = _IDX_DTYPES[code]
    expected = math.prod(shape) * dtype.itemsize
    found = len(data) - header
    if found < expected:
        raise ValueError(
            f"{source}: truncated IDX data: shape {shape} of {dtype.name} needs "
            f"{expected} bytes, found {found}"
        )
    if found > expected:
        raise ValueError(
            f"{source}: {found - expected} unexpected trailing bytes after IDX data of "
            f"shape {shape}"
        )
    array = np.frombuffer(data, dtype=dtype, count=math.prod(shape), offset=header)
    return array.reshape(shape).astype(dtype.newbyteorder("="))


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (gzip-compressed when its name ends in ``.gz``); see :func:`parse_idx`."""
    path = Path(path)
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                data = f.read()
        else:
            data = path.read_bytes()
    except FileNotFoundError:
        raise DatasetFileNotFoundError(f"IDX file not found: {path}") from None
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        raise ValueError(f"{path}: corrupt or truncated gzip file ({e})") from None
    return parse_idx(data, source=str(path))


def _find_idx_files(path: Path) -> dict[str, Path]:
    expected = ", ".join(f"{n}[.gz]" for n in IDX_FILES.values())
    if not path.exists():
        raise DatasetFileNotFoundError(
            f"parameter 'path': directory {path} does not exist; it should hold {expected}"
        )
    if not path.is_dir():
        raise DatasetFileNotFoundError(
            f"parameter 'path': {path} is not a directory; it should hold {expected}"
        )
    found, missing = {}, []
    for role, base in IDX_FILES.items():
        for candidate in (path / base, path / f"{base}.gz"):
            if candidate.is_file():
                found[role] = candidate
                break
        else:
            missing.append(f"{base}[.gz]")
    if missing:
        raise DatasetFileNotFoundError(
            f"parameter 'path': {path} lacks {', '.join(missing)} (expected files: {expected})"
        )
    return found


def _load_split(
    images_path: Path, labels_path: Path, n: int | None, n_name: str
) -> tuple[np.ndarray, np.ndarray]:
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3:
        raise ValueError(
            f"{images_path}: expected 3 dimensions (n, rows, cols), got {images.shape}"
        )
    if labels.ndim != 1:
        raise ValueError(f"{labels_path}: expected 1 dimension (n,), got {labels.shape}")
    if images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"label/image count mismatch: {images_path.name} has {images.shape[0]} images, "
            f"{labels_path.name} has {labels.shape[0]} labels"
        )
    if images.dtype != np.uint8:
        raise ValueError(f"{images_path}: expected uint8 pixels, got {images.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(
            f"{labels_path}: labels must lie in 0..9, found {labels.min()}..{labels.max()}"
        )
    if n is not None:
        if n > images.shape[0]:
            raise ValueError(
                f"parameter {n_name!r}={n} exceeds the {images.shape[0]} examples in "
                f"{images_path.name}"
            )
        images, labels = images[:n], labels[:n]
    return images, labels.astype(np.int64)


def _make_idx_dataset(name: str, summary: str) -> Callable[..., Dataset]:
    def maker(
        *,
        seed: int,
        path: Any,
        n_train: int | None,
        n_test: int | None,
        flatten: bool,
        normalise: bool,
    ) -> Dataset:
        del seed  # the first n_train / n_test examples are used, in file order
        if path is None:
            raise ValueError(
                f"parameter 'path' is required for {name!r}: a directory holding "
                + ", ".join(f"{n}[.gz]" for n in IDX_FILES.values())
            )
        if not isinstance(path, (str, os.PathLike)):
            raise ValueError(f"parameter 'path' must be a str or path, got {path!r}")
        n_train = None if n_train is None else _check_int("n_train", n_train, minimum=1)
        n_test = None if n_test is None else _check_int("n_test", n_test, minimum=1)
        for flag, value in (("flatten", flatten), ("normalise", normalise)):
            if not isinstance(value, (bool, np.bool_)):
                raise ValueError(f"parameter {flag!r} must be a bool, got {value!r}")
        files = _find_idx_files(Path(path).expanduser())
        splits = [
            _load_split(files["train_images"], files["train_labels"], n_train, "n_train"),
            _load_split(files["test_images"], files["test_labels"], n_test, "n_test"),
        ]
        if splits[0][0].shape[1:] != splits[1][0].shape[1:]:
            raise ValueError(
                f"train images are {splits[0][0].shape[1:]} but test images are "
                f"{splits[1][0].shape[1:]}"
            )
        out = []
        for images, labels in splits:
            x = images.astype(np.float64)
            if normalise:
                x /= 255.0
            if flatten:
                x = x.reshape(x.shape[0], -1)
            out += [x, _one_hot(labels, 10)]
        params = dict(
            path=str(path), n_train=n_train, n_test=n_test, flatten=flatten, normalise=normalise
        )
        return Dataset(name, *out, 10, _describe(name, summary, None, params))

    maker.__name__ = f"_make_{name}"
    return maker


_make_mnist = _make_idx_dataset("mnist", "MNIST digits from IDX files")
_make_fashion_mnist = _make_idx_dataset("fashion_mnist", "Fashion-MNIST from IDX files")


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
    "moons": _info(
        _make_moons,
        "two interleaving half circles (scikit-learn style), centred, Gaussian noise",
        n_train=256,
        n_test=1024,
        noise=0.1,
    ),
    "spirals": _info(
        _make_spirals,
        "two interleaved spiral arms of radius <= 1, Gaussian noise",
        n_train=256,
        n_test=1024,
        turns=1.5,
        noise=0.05,
    ),
    "teacher": _info(
        _make_teacher,
        "N(0, I) inputs labelled by a random tanh MLP teacher (sign or argmax of its output)",
        depth=1,
        width=16,
        n_features=8,
        n_train=256,
        n_test=1024,
        classes=2,
    ),
    "mnist1d": _info(
        _make_mnist1d,
        "MNIST-1D (Greydanus 2020) generated by the mnist1d package: 10 classes, 40 features",
        n_train=MNIST1D_TRAIN,
        n_test=MNIST1D_TEST,
    ),
    "mnist": _info(
        _make_mnist,
        "MNIST from IDX files in directory `path` (all examples unless n_train/n_test)",
        path=None,
        n_train=None,
        n_test=None,
        flatten=True,
        normalise=True,
    ),
    "fashion_mnist": _info(
        _make_fashion_mnist,
        "Fashion-MNIST from IDX files in directory `path` (all examples unless n_train/n_test)",
        path=None,
        n_train=None,
        n_test=None,
        flatten=True,
        normalise=True,
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
        the offending parameter), or a malformed data file (the message names the file).
      DatasetFileNotFoundError: a data directory or file is missing (a ValueError too).
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
