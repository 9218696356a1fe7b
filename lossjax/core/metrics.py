"""Every quantity lossjax measures, defined once.

A run makes ``T`` updates θ_0 → θ_1 → … → θ_T. Step ``t`` evaluates the model at θ_t (on the
step's batch: the whole training set, or the step's mini-batch), which gives the loss ``L_t``,
the gradient ``g_t`` and the pre-activations of every layer; for ``t < T`` the optimiser then
makes update ``t``. After the last update the model is evaluated once more at θ_T on the whole
training set (the *final* evaluation). All reductions below happen inside the training scan,
so memory is O(runs), not O(runs × steps).

Definitions (thresholds are fields of :class:`Thresholds`, set in a sweep file's ``[metrics]``
table; defaults in brackets):

``loss_initial``, ``loss_final``, ``loss_min``
    ``L_0``, ``L_T`` (after the last of T updates) and ``min_t L_t`` over t = 0..T (NaN ignored).
``reached`` (at step t)
    ``target_metric = "loss"``: ``L_t <= target``; ``"error"``: mean absolute output error
    ``mean |a − y| <= target``; ``"accuracy"``: ``accuracy_t >= target``. [loss, 0.01]
``steps_to_target``
    The first t in 0..T at which the run has reached the target, i.e. the number of updates it
    needed; ``NEVER`` (-1) when it never does.
``zero_grad_steps``
    The number of update steps t < T whose gradient is exactly 0.0 in every parameter.
``tiny_grad_steps``
    The number of update steps t < T whose gradient 2-norm (over all parameters) is below
    ``tiny_grad`` [1e-6]. Exact zeros count as tiny too; a NaN gradient does not.
saturated unit (at step t)
    A unit whose activation derivative is below ``saturation_delta × max f'`` for every
    input of the batch [0.01] (σ' < 0.0025 for the sigmoid, i.e. |z| > 5.99).
dead unit (at step t)
    A unit whose activation derivative is exactly 0 for every input of the batch (ReLU with
    z <= 0 everywhere, the step function always).
``saturated_init``, ``saturated_final``, ``saturated_mean``; ``dead_init``, ``dead_final``
    The fraction of all units (every layer, output included) that are saturated (dead) at θ_0,
    at θ_T, and averaged over the T update steps. ``layer_*`` variants give it per layer.
dormant unit (Sokar et al. 2023)
    Unit i of layer ℓ with post-activation h is τ-dormant if
    ``mean_n |h_i| / mean_j mean_n |h_j| <= dormant_tau`` [0.025]. ``layer_dormant_init/final``.
``born_dead``
    At θ_0 the network's output is the same for every input of the training set (no input can
    change it, so no gradient can tell inputs apart). Always 0 for a one-example dataset.
``longest_plateau``
    The longest run of consecutive steps t in 1..T whose relative loss improvement
    ``(L_{t−1} − L_t) / |L_{t−1}|`` is below ``plateau_tau`` [1e-3], counted only while the
    target is not yet reached (a NaN improvement ends a plateau: the run has diverged).
``first_nonfinite``
    The first t at which the loss or any parameter is NaN or ±inf; ``NEVER`` when none is.
``outcome``
    ``diverged`` if ``first_nonfinite != NEVER`` or ``L_T > divergence_factor × L_0`` [10];
    otherwise ``slow`` if the target was reached after a plateau of at least
    ``slow_plateau_steps`` steps [50]; ``converged`` if it was reached otherwise;
    ``stalled`` if it was not reached within T steps.

With mini-batches the per-step quantities use the step's mini-batch; the final evaluation
(``loss_final``, ``*_final``, test metrics) uses the whole training (or test) set.
"""

from __future__ import annotations

import dataclasses
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp

Array = jax.Array

NEVER = -1
OUTCOMES = ("converged", "slow", "stalled", "diverged")
CONVERGED, SLOW, STALLED, DIVERGED = range(4)
TARGET_METRICS = ("loss", "error", "accuracy")


@dataclasses.dataclass(frozen=True)
class Thresholds:
    """The thresholds of the measured quantities (see the module docstring)."""

    target_metric: Literal["loss", "error", "accuracy"] = "loss"
    target: float = 0.01
    tiny_grad: float = 1e-6
    saturation_delta: float = 0.01
    plateau_tau: float = 1e-3
    slow_plateau_steps: int = 50
    divergence_factor: float = 10.0
    dormant_tau: float = 0.025

    def __post_init__(self):
        if self.target_metric not in TARGET_METRICS:
            raise ValueError(
                f"metrics.target_metric = {self.target_metric!r}; allowed: {', '.join(TARGET_METRICS)}"
            )
        for name in ("tiny_grad", "saturation_delta", "plateau_tau", "divergence_factor"):
            if not getattr(self, name) > 0:
                raise ValueError(f"metrics.{name} must be > 0, got {getattr(self, name)!r}")
        if self.slow_plateau_steps < 1:
            raise ValueError(f"metrics.slow_plateau_steps must be >= 1, got {self.slow_plateau_steps!r}")
        if self.dormant_tau < 0:
            raise ValueError(f"metrics.dormant_tau must be >= 0, got {self.dormant_tau!r}")
        if self.target_metric == "accuracy" and not 0 <= self.target <= 1:
            raise ValueError(f"metrics.target for 'accuracy' must be in [0, 1], got {self.target!r}")


class Observation(NamedTuple):
    """What one evaluation of the model at θ_t yields (scalars unless marked (L,): per layer)."""

    loss: Array
    error: Array  # mean |a - y| over the batch and output units
    accuracy: Array
    grad_norm: Array
    grad_is_zero: Array  # bool: every gradient entry is exactly 0
    finite: Array  # bool: loss and every parameter are finite
    output: Array  # mean over the batch of the first output unit's activation a
    logit: Array  # mean over the batch of the first output unit's pre-activation z
    grad_w: Array  # dC/dw of the output layer's first weight
    grad_b: Array  # dC/db of the output layer's first bias
    layer_grad_norm: Array  # (L,) 2-norm of the gradient of each layer's weights
    layer_saturated: Array  # (L,) fraction of saturated units
    layer_dead: Array  # (L,) fraction of dead units
    layer_dormant: Array  # (L,) fraction of τ-dormant units
    layer_act_mean: Array  # (L,) mean post-activation over batch and units
    layer_act_std: Array  # (L,) its standard deviation


def unit_fractions(
    derivatives: Array, activations: Array, max_slope: float, thresholds: Thresholds
) -> tuple[Array, Array, Array]:
    """Saturated, dead and dormant fractions of one layer's units.

    Args:
      derivatives: f'(z) for the layer, shape (batch, units).
      activations: f(z), shape (batch, units).
      max_slope: the activation's largest derivative, sup f'.
      thresholds: supplies ``saturation_delta`` and ``dormant_tau``.
    Returns:
      Three scalars in [0, 1].
    """
    magnitude = jnp.abs(derivatives)
    # all(... < threshold) rather than max(...) < threshold: the same units, and XLA on CPU runs
    # the boolean reduction over the batch faster (the per-step saturation is in every MLP step).
    saturated = jnp.mean(jnp.all(magnitude < thresholds.saturation_delta * max_slope, axis=0))
    dead = jnp.mean(jnp.all(magnitude == 0, axis=0))
    score = jnp.mean(jnp.abs(activations), axis=0)
    layer_mean = jnp.mean(score)
    dormant_units = jnp.where(layer_mean > 0, score <= thresholds.dormant_tau * layer_mean, True)
    return saturated, dead, jnp.mean(dormant_units)


def reached(obs: Observation, thresholds: Thresholds) -> Array:
    """Whether the run has learned at this observation (see ``reached`` in the module doc)."""
    if thresholds.target_metric == "loss":
        return obs.loss <= thresholds.target
    if thresholds.target_metric == "error":
        return obs.error <= thresholds.target
    return obs.accuracy >= thresholds.target


class Accumulator(NamedTuple):
    """Per-run reductions carried through the scan (all O(1) or O(layers) in size)."""

    loss_initial: Array
    loss_min: Array
    previous_loss: Array
    steps_to_target: Array
    zero_grad_steps: Array
    tiny_grad_steps: Array
    plateau_current: Array
    longest_plateau: Array
    first_nonfinite: Array
    layer_saturated_sum: Array  # (L,) sum over update steps
    layer_grad_norm_sum: Array  # (L,) sum over update steps
    init: Observation  # the observation at θ_0


def start(obs0: Observation) -> Accumulator:
    """The accumulator before step 0, holding the observation at θ_0."""
    zero = jnp.zeros((), jnp.int32)
    return Accumulator(
        loss_initial=obs0.loss,
        loss_min=jnp.full_like(obs0.loss, jnp.inf),
        previous_loss=obs0.loss,
        steps_to_target=jnp.full((), NEVER, jnp.int32),
        zero_grad_steps=zero,
        tiny_grad_steps=zero,
        plateau_current=zero,
        longest_plateau=zero,
        first_nonfinite=jnp.full((), NEVER, jnp.int32),
        layer_saturated_sum=jnp.zeros_like(obs0.layer_saturated),
        layer_grad_norm_sum=jnp.zeros_like(obs0.layer_grad_norm),
        init=obs0,
    )


def accumulate(
    acc: Accumulator, obs: Observation, t: Array, thresholds: Thresholds, *, is_update: bool | Array
) -> Accumulator:
    """Folds the observation at step ``t`` (0, 1, …, T in order) into the accumulator.

    ``is_update`` is True for t < T (an optimiser step follows, so gradient counts apply) and
    False for the final evaluation at θ_T; it may be traced.
    """
    t = jnp.asarray(t, jnp.int32)
    was_reached = acc.steps_to_target != NEVER
    now_reached = reached(obs, thresholds)
    steps_to_target = jnp.where(~was_reached & now_reached, t, acc.steps_to_target)

    denominator = jnp.maximum(jnp.abs(acc.previous_loss), jnp.finfo(obs.loss.dtype).tiny)
    improvement = (acc.previous_loss - obs.loss) / denominator
    flat = (t >= 1) & ~was_reached & ~now_reached & (improvement < thresholds.plateau_tau)
    plateau_current = jnp.where(flat, acc.plateau_current + 1, 0)
    longest_plateau = jnp.maximum(acc.longest_plateau, plateau_current)

    first_nonfinite = jnp.where(
        (acc.first_nonfinite == NEVER) & ~obs.finite, t, acc.first_nonfinite
    )
    acc = acc._replace(
        loss_min=jnp.fmin(acc.loss_min, obs.loss),
        previous_loss=obs.loss,
        steps_to_target=steps_to_target,
        plateau_current=plateau_current,
        longest_plateau=longest_plateau,
        first_nonfinite=first_nonfinite,
    )
    update = jnp.asarray(is_update)
    return acc._replace(
        zero_grad_steps=acc.zero_grad_steps + (update & obs.grad_is_zero).astype(jnp.int32),
        tiny_grad_steps=acc.tiny_grad_steps + (update & (obs.grad_norm < thresholds.tiny_grad)).astype(jnp.int32),
        layer_saturated_sum=acc.layer_saturated_sum + jnp.where(update, obs.layer_saturated, 0),
        layer_grad_norm_sum=acc.layer_grad_norm_sum + jnp.where(update, obs.layer_grad_norm, 0),
    )


def outcome(
    loss_initial: Array,
    loss_final: Array,
    steps_to_target: Array,
    longest_plateau: Array,
    first_nonfinite: Array,
    thresholds: Thresholds,
) -> Array:
    """The outcome code (index into :data:`OUTCOMES`) by the rule in the module docstring."""
    diverged = (first_nonfinite != NEVER) | (loss_final > thresholds.divergence_factor * loss_initial)
    was_reached = steps_to_target != NEVER
    slow = longest_plateau >= thresholds.slow_plateau_steps
    code = jnp.where(was_reached, jnp.where(slow, SLOW, CONVERGED), STALLED)
    return jnp.where(diverged, DIVERGED, code).astype(jnp.int8)


def weighted_fraction(layer_fractions: Array, layer_sizes: tuple[int, ...]) -> Array:
    """Fraction over all units from per-layer fractions (weights: units per layer)."""
    sizes = jnp.asarray(layer_sizes, layer_fractions.dtype)
    return jnp.sum(layer_fractions * sizes, axis=-1) / jnp.sum(sizes)
