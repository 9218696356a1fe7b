"""The ``teacher`` task: Gaussian inputs labelled by a random tanh MLP (:func:`teacher_network`).

A teacher of ``depth`` 0 is linear, so its labels are linearly separable; deeper teachers make
harder tasks of the same input distribution. Parameters are declared in :data:`TEACHER_PARAMS`.
"""

from __future__ import annotations

import math

import numpy as np

from lossjax.core.params import Param
from lossjax.data.base import (
    SEED,
    Dataset,
    DatasetInfo,
    binary_targets,
    description,
    one_hot,
    sizes,
    streams,
)

#: At most this many float64 values (about 800 MB) in the teacher's weights or activations.
_MAX_VALUES = 10**8


TEACHER_PARAMS = (
    Param("depth", int, "tanh hidden layers of the teacher (0: linear), at most 100", 1,
          minimum=0, maximum=100),
    Param("width", int, "units per hidden layer of the teacher, at most 10**4", 16,
          minimum=1, maximum=10**4),
    Param("n_features", int, "inputs per example, at most 10**4", 8, minimum=1, maximum=10**4),
    *sizes(256, 1024),
    Param("classes", int, "classes: 2 is one output unit, more are one-hot; at most 1000", 2,
          minimum=2, maximum=1000),
)
_TEACHER = {p.name: p for p in TEACHER_PARAMS}


def _check_values(count: int, what: str) -> None:
    if count > _MAX_VALUES:
        raise ValueError(f"{what} would hold {count} values, more than 10**8 (800 MB of float64)")


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
      depth, width, n_features, classes: as the dataset parameters (checked against their
        declarations in :data:`TEACHER_PARAMS`).

    Returns:
      ``depth + 1`` float64 matrices, applied as ``h = tanh(h @ W)`` except the last
      (``out = h @ W``).
    """
    seed = SEED.check(seed)
    depth = _TEACHER["depth"].check(depth)
    width = _TEACHER["width"].check(width)
    n_features = _TEACHER["n_features"].check(n_features)
    classes = _TEACHER["classes"].check(classes)
    n_out = 1 if classes == 2 else classes
    dims = [n_features] + [width] * depth + [n_out]
    _check_values(
        sum(a * b for a, b in zip(dims[:-1], dims[1:])),
        f"the teacher of 'depth'={depth}, 'width'={width}, 'n_features'={n_features}",
    )
    rng = streams(seed, 3)[0]
    return [
        rng.normal(0.0, 1.0 / math.sqrt(fan_in), size=(fan_in, fan_out))
        for fan_in, fan_out in zip(dims[:-1], dims[1:])
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
    widest = max(n_features, width if depth else 0, classes)
    _check_values(
        (n_train + n_test) * widest,
        f"a teacher set of 'n_train'={n_train} + 'n_test'={n_test} examples, {widest} wide,",
    )
    weights = teacher_network(
        seed, depth=depth, width=width, n_features=n_features, classes=classes
    )
    _, rng_train, rng_test = streams(seed, 3)
    x_train = rng_train.normal(size=(n_train, n_features))
    x_test = rng_test.normal(size=(n_test, n_features))

    def targets(x: np.ndarray) -> np.ndarray:
        labels = _teacher_labels(weights, x)
        return binary_targets(labels) if classes == 2 else one_hot(labels, classes)

    params = dict(
        depth=depth, width=width, n_features=n_features, n_train=n_train, n_test=n_test,
        classes=classes,
    )
    summary = "Gaussian inputs labelled by a random tanh MLP teacher"
    return Dataset(
        "teacher", x_train, targets(x_train), x_test, targets(x_test), classes,
        description("teacher", summary, seed, params),
    )


ENTRIES = {
    "teacher": DatasetInfo.declare(
        _make_teacher,
        "N(0, I) inputs labelled by a random tanh MLP teacher (sign or argmax of its output)",
        TEACHER_PARAMS,
    ),
}
