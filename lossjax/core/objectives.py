"""Batch objectives: scalar functions of a whole batch of predictions (hard or soft).

``zero_one`` (1 − accuracy), ``one_minus_f1``, ``one_minus_iou`` compare hard predictions and
have a zero gradient everywhere (they are piecewise constant); ``soft_f1``, ``soft_iou`` and
``lovasz_hinge`` are their differentiable surrogates. The registry of :mod:`lossjax.core.losses`
wraps them for the engine. Counts are accumulated in ``promote_types(dtype, float32)`` and the
result is cast back to the prediction dtype.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lossjax.core.losses_base import _acc_dtype, _check



def _hard(a: jax.Array) -> jax.Array:
    """Hard predictions in ``{0, 1}``: threshold at 0.5 for K = 1, one-hot argmax for K > 1."""
    if a.ndim >= 1 and a.shape[-1] > 1:
        return jax.nn.one_hot(jnp.argmax(a, axis=-1), a.shape[-1], dtype=_acc_dtype(a.dtype))
    return (a > 0.5).astype(_acc_dtype(a.dtype))


def _safe_ratio(num: jax.Array, den: jax.Array, empty: float) -> jax.Array:
    """``num/den``, or ``empty`` where ``den == 0`` (double ``where``: finite gradients)."""
    ok = den > 0
    return jnp.where(ok, num / jnp.where(ok, den, 1.0), empty)


def _counts(a: jax.Array, y: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    p = _hard(a)
    y = y.astype(p.dtype)
    tp = jnp.sum(p * y)
    fp = jnp.sum(p * (1.0 - y))
    fn = jnp.sum((1.0 - p) * y)
    return tp, fp, fn


def zero_one(a: jax.Array, y: jax.Array) -> jax.Array:
    """0-1 loss ``1 − accuracy`` of the batch on hard predictions (the text on accuracy as an objective).

    Hard prediction: ``a > 0.5`` for one output unit (K = 1); for K > 1 the arg-max class
    (a sample is correct when the arg-max of ``a`` equals the arg-max of the one-hot ``y``).

    Gradient: 0 almost everywhere (the thresholding is piecewise constant; ``jax.grad``
    returns exactly 0 everywhere). Zero gradient: everywhere.

    Args:
      a: ``(n, K)`` probabilities (model output).
      y: ``(n, K)`` targets in ``{0, 1}`` / one-hot.

    Returns:
      Scalar in ``[0, 1]``, dtype of ``a``.
    """
    a, y = _check("zero_one", a, y)
    if a.ndim >= 1 and a.shape[-1] > 1:
        correct = (jnp.argmax(a, axis=-1) == jnp.argmax(y, axis=-1)).astype(_acc_dtype(a.dtype))
    else:
        correct = ((a > 0.5) == (y > 0.5)).astype(_acc_dtype(a.dtype))
    return (1.0 - jnp.mean(correct)).astype(a.dtype)


def one_minus_f1(a: jax.Array, y: jax.Array) -> jax.Array:
    """``1 − F1`` of the batch on hard predictions (the text on non-differentiable metrics).

    ``F1 = 2TP / (2TP + FP + FN)`` counted over all ``(n, K)`` entries (micro average) with
    hard predictions as in :func:`zero_one`. A batch with no positive targets and no
    predicted positives has ``F1 = 1`` by definition (loss 0).

    Zero gradient: everywhere (``jax.grad`` returns exactly 0).
    """
    a, y = _check("one_minus_f1", a, y)
    tp, fp, fn = _counts(a, y)
    return (1.0 - _safe_ratio(2.0 * tp, 2.0 * tp + fp + fn, 1.0)).astype(a.dtype)


def one_minus_iou(a: jax.Array, y: jax.Array) -> jax.Array:
    """``1 − IoU`` (Jaccard) of the batch on hard predictions (the text on non-differentiable metrics).

    ``IoU = TP / (TP + FP + FN)`` over all ``(n, K)`` entries, hard predictions as in
    :func:`zero_one`; ``IoU = 1`` for a batch with no positives and no predicted positives.

    Zero gradient: everywhere (``jax.grad`` returns exactly 0).
    """
    a, y = _check("one_minus_iou", a, y)
    tp, fp, fn = _counts(a, y)
    return (1.0 - _safe_ratio(tp, tp + fp + fn, 1.0)).astype(a.dtype)


def soft_f1(a: jax.Array, y: jax.Array) -> jax.Array:
    """Soft ``1 − F1`` on probabilities: ``1 − 2Σa·y / (Σa + Σy)`` (sums over all entries).

    The counts of :func:`one_minus_f1` with the hard predictions replaced by ``a``
    (TP = Σay, FP = Σa(1−y), FN = Σ(1−a)y). ``Σa + Σy = 0`` gives loss 0 (F1 = 1).

    Gradient: ``∂/∂a_i = −2[y_i(Σa + Σy) − Σay] / (Σa + Σy)²``.
    Zero gradient: when ``a = y`` exactly, and when there are no positive targets
    (then the loss is 1 for any ``a > 0``: gradient 0 in every direction that keeps ``Σa > 0``).
    """
    a, y = _check("soft_f1", a, y)
    tp = jnp.sum(a * y)
    den = jnp.sum(a) + jnp.sum(y)
    return 1.0 - _safe_ratio(2.0 * tp, den, 1.0)


def soft_iou(a: jax.Array, y: jax.Array) -> jax.Array:
    """Soft ``1 − IoU`` on probabilities: ``1 − Σa·y / (Σa + Σy − Σa·y)``.

    ``Σa + Σy − Σay = 0`` gives loss 0 (IoU = 1).

    Gradient: ``∂/∂a_i = −[y_i·U − I(1 − y_i)] / U²`` with ``I = Σay``, ``U = Σa + Σy − I``.
    Zero gradient: when ``a = y`` exactly, and when there are no positive targets.
    """
    a, y = _check("soft_iou", a, y)
    inter = jnp.sum(a * y)
    union = jnp.sum(a) + jnp.sum(y) - inter
    return 1.0 - _safe_ratio(inter, union, 1.0)


def _lovasz_grad(gt_sorted: jax.Array) -> jax.Array:
    """Gradient of the Lovász extension of the Jaccard loss w.r.t. sorted errors."""
    gts = jnp.sum(gt_sorted)
    intersection = gts - jnp.cumsum(gt_sorted)
    union = gts + jnp.cumsum(1.0 - gt_sorted)  # >= 1 everywhere when p >= 1
    jaccard = 1.0 - intersection / union
    return jnp.concatenate([jaccard[:1], jaccard[1:] - jaccard[:-1]])


def lovasz_hinge(score: jax.Array, y: jax.Array) -> jax.Array:
    """Binary Lovász hinge (Berman, Rannen Triki & Blaschko, CVPR 2018): a convex surrogate
    of ``1 − IoU`` on scores/logits.

    With ``t = 2y − 1`` and hinge errors ``m_i = 1 − t_i·score_i``, sort the errors in
    decreasing order and take ``Σ_i max(m_(i), 0)·g_i``, where ``g`` is the gradient of the
    Lovász extension of the Jaccard loss at the sorted labels (``lovasz_grad`` of the
    reference code). Computed over all ``(n, K)`` entries at once (the reference's
    ``per_image=False``). When every ``m_i ∈ {0, 1}`` it equals the Jaccard loss of the
    mispredicted set ``M = {i: m_i = 1}``, ``Δ_J(M) = |M| / |{y = 1} ∪ M|`` (the extension
    agrees with the set function on indicator vectors).

    Gradient: ``∂/∂score_i = −t_i·g_(rank i)`` for ``m_i > 0``, else 0.
    Zero gradient: entries past the margin (``t·score ≥ 1``); all entries when every one is.

    Args:
      score: ``(n, K)`` logits or scores (pre-activation).
      y: ``(n, K)`` targets in ``{0, 1}``.

    Returns:
      Scalar, dtype of ``score``.
    """
    score, y = _check("lovasz_hinge", score, y)
    acc = _acc_dtype(score.dtype)
    s = score.reshape(-1)
    labels = y.reshape(-1).astype(acc)
    signs = 2.0 * labels - 1.0
    errors = 1.0 - s.astype(acc) * signs
    order = jnp.argsort(-jax.lax.stop_gradient(errors))
    errors_sorted = errors[order]
    grad = _lovasz_grad(labels[order])
    return jnp.dot(jax.nn.relu(errors_sorted), grad).astype(score.dtype)


