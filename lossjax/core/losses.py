"""Loss functions and batch objectives, and the registry the training engine uses.

Two layers, optax style:

* Elementwise functions (``quadratic``, ``squared_error``, ``huber``, ``hinge``, ...): pure,
  no reduction, hyperparameters keyword-only. Each docstring gives the formula, the gradient
  with respect to the model output and where that gradient is zero. ``softmax_cross_entropy``
  reduces over the class axis only (like optax).
* Batch objectives (``zero_one``, ``one_minus_f1``, ``one_minus_iou``, ``soft_f1``,
  ``soft_iou``, ``lovasz_hinge``): scalar functions of a whole batch.

The registry (:data:`LOSSES`, :func:`get_loss`) wraps them as ``fn(predictions, targets)``
with ``predictions``/``targets`` of shape ``(n, K)`` returning a scalar: the mean over the n
samples of the per-sample loss summed over the K output units (batch objectives: the
objective of the whole batch). Targets are ``{0, 1}`` floats (binary, K = 1) or one-hot.
Targets are cast to the dtype of the predictions, and the result has that dtype.

Conventions worth knowing:

* ``quadratic`` is ½(y − a)² (the text on the saturated sigmoid neuron); ``squared_error`` is (y − a)² and ``mse`` its mean
  (the survey of loss functions). ``quadratic`` = ``optax.l2_loss``, ``squared_error`` = ``optax.squared_error``.
* The introduction to loss functions guards ``log 0`` with ``log(a + 1e-7)``. The guard is a Python float, so it is
  rounded to the prediction dtype (float16: 1.19e-7; bfloat16: 1.0e-7 but ``a + 1e-7 == a``
  for ``a > ~2e-5``).
* Reductions of float16/bfloat16 arrays accumulate in float32 inside ``jnp.sum``/``jnp.mean``
  and are cast back. The counts of the hard objectives and the cumulative sums of the
  Lovász gradient are accumulated in ``promote_types(dtype, float32)`` and the result is cast
  back to the prediction dtype.
"""

from __future__ import annotations

from typing import Callable, Literal, NamedTuple

import jax
import jax.numpy as jnp

from lossjax.core.losses_base import _check
from lossjax.core.objectives import (
    lovasz_hinge,
    one_minus_f1,
    one_minus_iou,
    soft_f1,
    soft_iou,
    zero_one,
)
from lossjax.core.params import Param
from lossjax.core.specs import Factory, format_number, lookup

__all__ = [
    "Loss",
    "LOSSES",
    "get_loss",
    "GUARD",
    "quadratic",
    "squared_error",
    "absolute_error",
    "huber",
    "binary_cross_entropy_logits",
    "binary_cross_entropy_guarded",
    "cross_entropy_guarded_one_sided",
    "one_sided_cross_entropy",
    "softmax_cross_entropy",
    "hinge",
    "squared_hinge",
    "zero_one",
    "one_minus_f1",
    "one_minus_iou",
    "soft_f1",
    "soft_iou",
    "lovasz_hinge",
]

GUARD = 1e-7
"""The guard of the introduction to loss functions against ``log 0``: ``log(a + 1e-7)``."""


def quadratic(a: jax.Array, y: jax.Array) -> jax.Array:
    """Quadratic cost ``½(y − a)²`` (``(y - a)^2/2`` in the text on the saturated sigmoid neuron, ``0.5*sum`` in the introduction to loss functions).

    Gradient: ``∂/∂a = a − y``. Through a sigmoid output ``a = σ(z)`` this becomes
    ``(a − y)·σ'(z)``, the saturation factor of the text on the saturated sigmoid neuron.

    Zero gradient: only at ``a = y``.

    Args:
      a: predictions (model output).
      y: targets, same shape.

    Returns:
      Elementwise loss, same shape as ``a``. Equal to ``optax.l2_loss(a, y)``.
    """
    a, y = _check("quadratic", a, y)
    return 0.5 * jnp.square(y - a)


def squared_error(a: jax.Array, y: jax.Array) -> jax.Array:
    """Squared error ``(y − a)²`` (the survey of loss functions; its mean is MSE). Twice :func:`quadratic`.

    Gradient: ``∂/∂a = 2(a − y)``. Zero gradient: only at ``a = y``.

    Returns:
      Elementwise loss, equal to ``optax.squared_error(a, y)``.
    """
    a, y = _check("squared_error", a, y)
    return jnp.square(y - a)


def absolute_error(a: jax.Array, y: jax.Array) -> jax.Array:
    """Absolute error ``|y − a|`` (the survey of loss functions; its mean is MAE).

    Gradient: ``∂/∂a = sign(a − y)``: constant magnitude 1 however small the error.
    Zero gradient: at ``a = y`` (``jnp.abs`` takes the subgradient 0 there).
    """
    a, y = _check("absolute_error", a, y)
    return jnp.abs(y - a)


def huber(a: jax.Array, y: jax.Array, *, delta: float = 1.0) -> jax.Array:
    """Huber loss: ``½e²`` for ``|e| ≤ δ`` else ``δ(|e| − ½δ)``, with ``e = a − y``.

    Gradient: ``∂/∂a = e`` for ``|e| ≤ δ`` else ``δ·sign(e)`` (clipped to ``[−δ, δ]``).
    Zero gradient: only at ``a = y``.

    Args:
      a: predictions.
      y: targets.
      delta: threshold between the quadratic and linear parts, > 0.

    Returns:
      Elementwise loss; equal to ``optax.huber_loss(a, y, delta)``.
    """
    a, y = _check("huber", a, y)
    abs_e = jnp.abs(a - y)
    quad = jnp.minimum(abs_e, delta)
    lin = abs_e - quad
    return 0.5 * quad * quad + delta * lin


def binary_cross_entropy_logits(z: jax.Array, y: jax.Array) -> jax.Array:
    """Numerically stable binary cross-entropy on logits.

    ``−[y log σ(z) + (1 − y) log(1 − σ(z))] = y·softplus(−z) + (1 − y)·softplus(z)``
    ``= max(z, 0) − z·y + log(1 + e^{−|z|})``.

    Gradient: ``∂/∂z = σ(z) − y``: no ``σ'`` factor (the text on the saturated sigmoid neuron), never underflows to 0 when
    the prediction is wrong, however saturated.
    Zero gradient: only in the limit ``σ(z) = y`` (``z → ±∞`` for hard targets).

    Returns:
      Elementwise loss; equal to ``optax.sigmoid_binary_cross_entropy(z, y)``.
    """
    z, y = _check("binary_cross_entropy_logits", z, y)
    # Written with softplus (= logaddexp(., 0)), whose derivative is exactly sigma: the
    # max(z,0) + log1p(exp(-|z|)) form has the same value but jax's subgradients of max and
    # abs at z = 0 cancel, giving dL/dz = -y instead of 0.5 - y there. Two softplus terms
    # (rather than softplus(z) - z*y) also keep the tiny loss of a confident correct
    # prediction (e^{-|z|}) instead of cancelling it to 0.
    return y * jax.nn.softplus(-z) + (1.0 - y) * jax.nn.softplus(z)


def binary_cross_entropy_guarded(a: jax.Array, y: jax.Array) -> jax.Array:
    """Two-sided guarded binary cross-entropy on probabilities.

    ``−[y·log(a + 1e-7) + (1 − y)·log(1 − a + 1e-7)]``: the ``log(y + 1e-7)`` guard of the introduction to loss functions
    applied to both terms.

    Gradient: ``∂/∂a = −y/(a + 1e-7) + (1 − y)/(1 − a + 1e-7)``; through ``a = σ(z)`` it is
    multiplied by ``σ'(z) = a(1 − a)``.
    Zero gradient: at ``a = y`` only w.r.t. ``a``; but w.r.t. the logit it is exactly 0
    wherever ``σ(z)`` has rounded to exactly 0 or 1 (float32: ``|z| ≳ 16.6``) even when the
    prediction is wrong, and the loss is then stuck at ``−log(1e-7) ≈ 16.1``.
    """
    a, y = _check("binary_cross_entropy_guarded", a, y)
    return -(y * jnp.log(a + GUARD) + (1.0 - y) * jnp.log(1.0 - a + GUARD))


def cross_entropy_guarded_one_sided(a: jax.Array, t: jax.Array) -> jax.Array:
    """The cross-entropy term of the introduction to loss functions, exactly as written: ``−t·log(a + 1e-7)``.

    Meant for one-hot targets with a softmax output (summed over classes it is the introduction to loss functions'
    ``-sum(t*log(y+1e-7))``).

    Gradient: ``∂/∂a = −t/(a + 1e-7)``.
    Zero gradient: wherever ``t = 0``: for a single output unit (K = 1) every sample with
    target 0 contributes nothing.
    """
    a, t = _check("cross_entropy_guarded_one_sided", a, t)
    return -t * jnp.log(a + GUARD)


def one_sided_cross_entropy(a: jax.Array, y: jax.Array) -> jax.Array:
    """The one-sided cross-entropy of the text on the saturated sigmoid neuron, ``−y·log(a)`` (``-mean(ys*log(y))``), unguarded.

    Gradient: ``∂/∂a = −y/a``.
    Zero gradient: identically 0 (loss and gradient) when ``y = 0``: the warning of the text on the saturated sigmoid neuron that
    ``ys`` must not be 0. ``a = 0`` with ``y = 1`` gives ``inf``; with ``y = 0`` it gives
    ``nan`` (``0·log 0``) -- exactly as the seed's formula does.
    """
    a, y = _check("one_sided_cross_entropy", a, y)
    return -y * jnp.log(a)


def softmax_cross_entropy(logits: jax.Array, onehot: jax.Array) -> jax.Array:
    """Softmax cross-entropy over the last axis: ``−Σ_k y_k log softmax(z)_k``.

    Gradient: ``∂/∂z_k = softmax(z)_k − y_k``.
    Zero gradient: only when ``softmax(z) = y``. With a single class (K = 1) softmax is
    identically 1, so the loss and its gradient are identically 0.

    Args:
      logits: ``(..., K)`` logits.
      onehot: ``(..., K)`` one-hot (or probability) targets.

    Returns:
      ``(...)``: one value per sample. Equal to ``optax.softmax_cross_entropy``.
    """
    logits, onehot = _check("softmax_cross_entropy", logits, onehot)
    return -jnp.sum(onehot * jax.nn.log_softmax(logits, axis=-1), axis=-1)


def hinge(score: jax.Array, t: jax.Array) -> jax.Array:
    """Hinge loss ``max(0, 1 − t·score)`` with labels ``t ∈ {−1, +1}`` (the survey of loss functions).

    Gradient: ``∂/∂score = −t`` where ``t·score < 1``, else 0.
    Zero gradient: from the margin on, ``t·score ≥ 1``: correctly classified samples with
    margin stop contributing. Written with ``jax.nn.relu``, whose derivative at 0 is 0, so
    the gradient is 0 at ``t·score = 1`` exactly (``jnp.maximum``, as in optax, would split
    it and give ``−t/2`` there).

    Returns:
      Elementwise loss; equal in value to ``optax.hinge_loss(score, t)``.
    """
    score, t = _check("hinge", score, t)
    return jax.nn.relu(1.0 - t * score)


def squared_hinge(score: jax.Array, t: jax.Array) -> jax.Array:
    """Squared hinge ``max(0, 1 − t·score)²``, ``t ∈ {−1, +1}``.

    Gradient: ``∂/∂score = −2t·max(0, 1 − t·score)``, continuous.
    Zero gradient: ``t·score ≥ 1``.
    """
    score, t = _check("squared_hinge", score, t)
    return jnp.square(jax.nn.relu(1.0 - t * score))


# --------------------------------------------------------------------------------------
# Registry.
# --------------------------------------------------------------------------------------


class Loss(NamedTuple):
    """A batch loss as the engine uses it.

    Attributes:
      name: canonical registry spec, e.g. ``"huber"`` or ``"huber:delta=0.5"``.
      fn: ``(predictions (n, K), targets (n, K)) -> scalar`` with the dtype of predictions.
      input: ``"output"`` (predictions are the output activation ``a``) or ``"logits"``
        (predictions are the output pre-activation ``z``; the loss applies sigmoid/softmax
        itself, or, for the hinge family, uses ``z`` as the score).
      description: one line for ``lossjax list`` with the formula.
      zero_grad: one line: where the gradient w.r.t. the prediction vanishes.
    """

    name: str
    fn: Callable[[jax.Array, jax.Array], jax.Array]
    input: Literal["output", "logits"]
    description: str
    zero_grad: str


def _prepare(name: str, p: jax.Array, t: jax.Array) -> tuple[jax.Array, jax.Array]:
    p = jnp.asarray(p)
    t = jnp.asarray(t)
    if p.ndim != 2:
        raise ValueError(f"loss {name!r}: predictions must have shape (n, K), got {p.shape}")
    if p.shape != t.shape:
        raise ValueError(
            f"loss {name!r}: predictions {p.shape} and targets {t.shape} differ (no broadcasting)"
        )
    if not jnp.issubdtype(p.dtype, jnp.floating):
        raise ValueError(f"loss {name!r}: predictions must be floating point, got {p.dtype}")
    return p, t.astype(p.dtype)


def _per_sample(name: str, elem: Callable[[jax.Array, jax.Array], jax.Array], *, pm: bool = False):
    """Mean over samples of the elementwise loss summed over the K units."""

    def fn(p: jax.Array, t: jax.Array) -> jax.Array:
        p, t = _prepare(name, p, t)
        if pm:  # {0, 1} -> {-1, +1}
            t = 2.0 * t - 1.0
        return jnp.mean(jnp.sum(elem(p, t), axis=-1))

    fn.__name__ = f"{name}_loss"
    fn.__doc__ = f"Registry loss {name!r}: mean over samples of sum over units of {elem.__name__}."
    return fn


def _batch(name: str, obj: Callable[[jax.Array, jax.Array], jax.Array]):
    def fn(p: jax.Array, t: jax.Array) -> jax.Array:
        p, t = _prepare(name, p, t)
        return obj(p, t)

    fn.__name__ = f"{name}_loss"
    fn.__doc__ = f"Registry loss {name!r}: batch objective {obj.__name__}."
    return fn


def _softmax_ce(p: jax.Array, t: jax.Array) -> jax.Array:
    return jnp.mean(softmax_cross_entropy(p, t))


def _make_huber(delta: float) -> Loss:
    delta = float(delta)
    name = "huber" if delta == 1.0 else f"huber:delta={format_number(delta)}"
    return Loss(
        name,
        _per_sample(name, lambda a, y: huber(a, y, delta=delta)),
        "output",
        f"Huber, delta={format_number(delta)}: 0.5 e^2 if |e|<=delta else delta(|e|-delta/2), e=a-y",
        "only at a = y (gradient clipped to [-delta, delta] elsewhere)",
    )


LOSSES: dict[str, Loss] = {
    "quadratic": Loss(
        "quadratic",
        _per_sample("quadratic", quadratic),
        "output",
        "quadratic cost 0.5(y-a)^2 (the introduction to loss functions and the text on the saturated sigmoid neuron), dL/da = a-y",
        "only at a = y; through a sigmoid the factor sigma'(z) vanishes when saturated",
    ),
    "mse": Loss(
        "mse",
        _per_sample("mse", squared_error),
        "output",
        "squared error (y-a)^2 (the survey of loss functions; twice quadratic), dL/da = 2(a-y)",
        "only at a = y; through a sigmoid the factor sigma'(z) vanishes when saturated",
    ),
    "mae": Loss(
        "mae",
        _per_sample("mae", absolute_error),
        "output",
        "absolute error |y-a| (the survey of loss functions), dL/da = sign(a-y)",
        "only at a = y (constant magnitude 1 elsewhere, however small the error)",
    ),
    "huber": _make_huber(1.0),
    "bce": Loss(
        "bce",
        _per_sample("bce", binary_cross_entropy_logits),
        "logits",
        "binary cross-entropy on logits, stable: y softplus(-z) + (1-y) softplus(z), dL/dz = sigma(z)-y",
        "only as sigma(z) -> y (never for a wrong prediction)",
    ),
    "bce_guarded": Loss(
        "bce_guarded",
        _per_sample("bce_guarded", binary_cross_entropy_guarded),
        "output",
        "-[y log(a+1e-7) + (1-y) log(1-a+1e-7)] on probabilities (the guard of the introduction to loss functions, two-sided)",
        "w.r.t. the logit: wherever sigma(z) rounds to 0 or 1 (float32 |z| > ~16.6), even if wrong",
    ),
    "ce_guarded": Loss(
        "ce_guarded",
        _per_sample("ce_guarded", cross_entropy_guarded_one_sided),
        "output",
        "cross-entropy of the introduction to loss functions: -t log(a+1e-7), summed over units",
        "every unit with target 0 (with K=1: every sample of class 0)",
    ),
    "ce_one_sided": Loss(
        "ce_one_sided",
        _per_sample("ce_one_sided", one_sided_cross_entropy),
        "output",
        "one-sided cross-entropy of the text on the saturated sigmoid neuron: -y log(a), unguarded",
        "identically 0 (loss and gradient) where y = 0",
    ),
    "softmax_ce": Loss(
        "softmax_ce",
        _batch("softmax_ce", _softmax_ce),
        "logits",
        "softmax cross-entropy -sum_k y_k log softmax(z)_k, dL/dz = softmax(z)-y",
        "only as softmax(z) -> y; identically 0 when K = 1",
    ),
    "hinge": Loss(
        "hinge",
        _per_sample("hinge", hinge, pm=True),
        "logits",
        "hinge max(0, 1 - t z), t = 2y-1 (the survey of loss functions), dL/dz = -t inside the margin",
        "past the margin: t z >= 1",
    ),
    "squared_hinge": Loss(
        "squared_hinge",
        _per_sample("squared_hinge", squared_hinge, pm=True),
        "logits",
        "squared hinge max(0, 1 - t z)^2, t = 2y-1",
        "past the margin: t z >= 1",
    ),
    "zero_one": Loss(
        "zero_one",
        _batch("zero_one", zero_one),
        "output",
        "1 - accuracy on hard predictions (a > 0.5; argmax for K > 1) (the text on accuracy as an objective)",
        "everywhere (piecewise constant)",
    ),
    "one_minus_f1": Loss(
        "one_minus_f1",
        _batch("one_minus_f1", one_minus_f1),
        "output",
        "1 - F1 = 1 - 2TP/(2TP+FP+FN) on hard predictions, micro over (n,K); empty batch F1 = 1",
        "everywhere (piecewise constant)",
    ),
    "one_minus_iou": Loss(
        "one_minus_iou",
        _batch("one_minus_iou", one_minus_iou),
        "output",
        "1 - IoU = 1 - TP/(TP+FP+FN) (Jaccard) on hard predictions; empty batch IoU = 1",
        "everywhere (piecewise constant)",
    ),
    "soft_f1": Loss(
        "soft_f1",
        _batch("soft_f1", soft_f1),
        "output",
        "soft 1 - F1 = 1 - 2 sum(a y)/(sum a + sum y) on probabilities",
        "at a = y, and everywhere when the batch has no positive targets",
    ),
    "soft_iou": Loss(
        "soft_iou",
        _batch("soft_iou", soft_iou),
        "output",
        "soft 1 - IoU = 1 - sum(a y)/(sum a + sum y - sum(a y)) on probabilities",
        "at a = y, and everywhere when the batch has no positive targets",
    ),
    "lovasz_hinge": Loss(
        "lovasz_hinge",
        _batch("lovasz_hinge", lovasz_hinge),
        "logits",
        "Lovasz hinge (Berman et al. 2018): Lovasz extension of 1 - IoU on hinge errors 1 - t z",
        "entries past the margin t z >= 1 (all of them when every entry is)",
    ),
}

_FACTORIES = {"huber": Factory(_make_huber, (Param("delta", float, "the Huber threshold", 1.0, above=0),))}


def get_loss(spec: str) -> Loss:
    """Look up a loss by registry spec ``name`` or ``name:key=value[,key=value]``.

    Args:
      spec: e.g. ``"bce"``, ``"huber"``, ``"huber:delta=0.5"``.

    Returns:
      The :class:`Loss`; ``name`` is the spec in canonical form (parameters as given, even at
      their default, numbers without a trailing ``.0``, no whitespace), so
      ``get_loss(loss.name)`` round-trips.

    Raises:
      ValueError: unknown name or unknown/malformed/out-of-range parameter; the message
        names the bad value and lists the allowed ones.
    """
    return lookup("loss", spec, LOSSES, _FACTORIES)
