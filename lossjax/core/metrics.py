"""Every quantity lossjax measures, defined once.

A run makes ``T`` updates θ_0 → θ_1 → … → θ_T. Step ``t`` evaluates the model at θ_t (on the
step's batch: the whole training set, or the step's mini-batch), which gives the loss ``L_t``,
the gradient ``g_t`` and the pre-activations of every layer; for ``t < T`` the optimiser then
makes update ``t``. After the last update the model is evaluated once more at θ_T on the whole
training set (the *final* evaluation). All reductions below happen inside the training scan,
so memory is O(runs), not O(runs × steps). With ``T = 0`` (``steps = 0``) θ_0 is observed alone:
the results at θ_T are θ_0's, counts of update steps are 0, averages over them NaN (0/0), and
``outcome`` is converged or stalled by whether θ_0 reaches the target.

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
    The number of update steps t < T whose gradient is exactly 0.0 in every parameter, as the
    backend computes it. XLA on CPU flushes subnormal results to 0 and reads subnormal inputs as
    0 (flush-to-zero, denormals-are-zero), so a gradient that IEEE arithmetic would leave
    subnormal (float32: below 1.18e-38, e.g. σ(−88.5) ≈ 3.7e-39) counts as 0 here. Steps after
    the loss itself became exactly 0 (a hinge past its margin, a linear fit that hit its
    target) count too: a zero gradient is counted whatever its cause, and ``steps_to_target``
    tells a stall from a finished run.
``zero_update_steps``
    The number of update steps t < T after which every parameter is unchanged:
    θ_{t+1} == θ_t element by element (IEEE equality: a NaN parameter is never unchanged, so a
    diverged run does not count; +0 and −0 are equal). It counts zero gradients under plain SGD
    (η·0 = 0) and non-zero updates that rounding to the parameters' dtype cancels (θ ⊕ Δθ == θ
    when |Δθ| is below half an ulp of θ; see :mod:`lossjax.core.rounding`). Under
    ``update_rounding = "kahan"`` it counts steps where θ stays put while the compensation
    buffer grows.
``rounded_update_steps``
    The update steps counted by ``zero_update_steps`` whose gradient is not exactly 0 in every
    parameter: the update was non-zero, or an optimiser scaled a non-zero gradient to 0, and
    the parameters did not move (the rounding stall). A step with a zero gradient and a zero
    update counts in ``zero_grad_steps`` and ``zero_update_steps``, not here.
``layer_zero_update_share``
    Per layer, the fraction of the T update steps after which that layer's weights and bias
    are all unchanged (same comparison as ``zero_update_steps``).
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
    Compared exactly in the run's dtype: an output whose spread over the inputs is below its
    rounding counts as constant. Lu et al. (2020) ask for a constant output over the whole input
    domain, which implies this one (docs/mlp_study.md, "He against RAI", measures both effects).
``output_spread_init``
    How far from born dead: at θ_0, the largest spread over the training inputs of one output
    unit's logit (max − min), in rounding steps of the run's dtype at the largest |logit|
    (:func:`output_spread`). 0 exactly when ``born_dead``; a net that is not born dead has at least
    0.5. A spread of a few steps is decided by the order in which the forward pass sums: another
    program (a padded one, another block size) may round such a net to constant, or away from it.
    NaN for a one-example dataset.
``longest_plateau``
    The longest run of consecutive steps t in 1..T whose relative loss improvement
    ``(L_{t−1} − L_t) / |L_{t−1}|`` is below ``plateau_tau`` [1e-3], counted only while the
    target is not yet reached (a NaN improvement ends a plateau: the run has diverged).
    A rising loss has a negative improvement, below τ, so it counts as flat (a linear neuron
    whose loss quadruples at every step of T has a plateau of T): a stall study counts the
    steps that made no progress, and a rise is no progress. Whether the loss rose far is
    ``outcome``'s question (``diverged``), not the plateau's.
``first_nonfinite``
    The first t at which the loss or any parameter is NaN or ±inf; ``NEVER`` when none is.
``outcome``
    ``diverged`` if ``first_nonfinite != NEVER`` or ``L_T > divergence_factor × L_0`` [10];
    otherwise ``slow`` if the target was reached after a plateau of at least
    ``slow_plateau_steps`` steps [50]; ``converged`` if it was reached otherwise;
    ``stalled`` if it was not reached within T steps.
``stall_cause``
    Why a stalled run stalled, read from its *final plateau*: the run of consecutive steps
    ending at T on which the loss did not improve by ``plateau_tau`` (as in
    ``longest_plateau``; length P, 0 if the last update still made progress). Step t of the
    plateau is the loss change made by update t−1; it is attributed to the update made at
    step t, which is the same update once the parameters stop moving. Among the P plateau
    steps, ``zero_gradient`` if more than half had a gradient exactly 0 in every parameter,
    ``zero_update`` if more than half were rounded updates (counted in
    ``rounded_update_steps``), ``other`` otherwise (small but effective steps, a plateau
    still moving, or P = 0); ``none`` for a run that did not stall. A sigmoid neuron
    saturated in float32 stalls as ``other``; the same neuron in bfloat16 whose η·g is
    below half an ulp of w and b stalls as ``zero_update``.

``roundoff_decided`` (only with ``[train] roundoff_probe = true``; -1 "not probed" otherwise)
    The run is trained a second time, in the same program, from θ_0 perturbed parameter by
    parameter: ``θ'_0 = θ_0 · (1 + ε·s)`` where θ_0 ≠ 0, and ``θ'_0 = ε·s`` where θ_0 = 0 (a
    relative perturbation leaves a zero unchanged, and a scale-0 init, whose symmetry only
    round-off can break, is all zeros). ``s`` = ±1 is a random sign per parameter entry, keyed
    from the run's seed alone (``fold_in(key(seed), 3)``; 0, 1, 2 key the init, the batches and
    the score samples), and ``ε`` is :data:`ROUNDOFF_EPSILON` of the run's dtype: 1e-14 for
    float64 and 1e-7 for float32 (what the two dtypes round away: 45 and 0.84 units in the last
    place of 1), 2^-7 for bfloat16 and 2^-10 for float16 (one unit in the last place of 1; their
    unit round-off 2^-8, 2^-11 is a tie that rounds back to θ_0). It is computed in the metric
    dtype and rounded once to the run's dtype, so every non-zero entry moves by 1 or 2 units in
    its last place (float32, bfloat16, float16) and by ε relative (float64). Batches and score
    samples are those of the run. The flag is 1 if the perturbed run's ``outcome`` differs from
    the run's, or if its final loss differs by more than ``roundoff_tolerance`` [1e-3] relative:
    ``|L'_T − L_T| > roundoff_tolerance · max(|L_T|, |L'_T|, ε·|L_0|)`` (two final losses both
    below the round-off of L_0 are not told apart; two NaN losses are equal: both runs
    diverged). 1e-3 is ``plateau_tau``'s default, the relative change the outcome rule treats
    as no change, and 10^4 (float32) to 10^11 (float64) times ε: a run whose final loss moves
    that much has amplified round-off, not inherited it. Such a run's outcome is decided by
    round-off: another correct implementation, order of summation or backend can get another.

With mini-batches the per-step quantities use the step's mini-batch; the final evaluation
(``loss_final``, ``*_final``, test metrics) uses the whole training (or test) set.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp

Array = jax.Array

NEVER = -1
OUTCOMES = ("converged", "slow", "stalled", "diverged")
CONVERGED, SLOW, STALLED, DIVERGED = range(4)
STALL_CAUSES = ("none", "zero_gradient", "zero_update", "other")
NO_STALL, ZERO_GRADIENT, ZERO_UPDATE, OTHER_CAUSE = range(4)
#: The code names of each coded result (kind ``"outcome"`` or ``"code"``), by quantity name.
CODES = {"outcome": OUTCOMES, "stall_cause": STALL_CAUSES}
TARGET_METRICS = ("loss", "error", "accuracy")
#: ``roundoff_decided`` of a run trained without the round-off probe.
NOT_PROBED = -1
#: The relative size ε of the round-off probe's perturbation, per dtype (see ``roundoff_decided``).
ROUNDOFF_EPSILON = {"float64": 1e-14, "float32": 1e-7, "bfloat16": 2.0**-7, "float16": 2.0**-10}


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
    roundoff_tolerance: float = 1e-3

    def __post_init__(self):
        if self.target_metric not in TARGET_METRICS:
            raise ValueError(
                f"metrics.target_metric = {self.target_metric!r}; allowed: {', '.join(TARGET_METRICS)}"
            )
        for name in ("tiny_grad", "saturation_delta", "plateau_tau", "divergence_factor", "roundoff_tolerance"):
            if not getattr(self, name) > 0:
                raise ValueError(f"metrics.{name} must be > 0, got {getattr(self, name)!r}")
        if self.slow_plateau_steps < 1:
            raise ValueError(f"metrics.slow_plateau_steps must be >= 1, got {self.slow_plateau_steps!r}")
        if self.dormant_tau < 0:
            raise ValueError(f"metrics.dormant_tau must be >= 0, got {self.dormant_tau!r}")
        if self.target_metric == "accuracy" and not 0 <= self.target <= 1:
            raise ValueError(f"metrics.target for 'accuracy' must be in [0, 1], got {self.target!r}")


class Quantity(NamedTuple):
    """The declaration of one measured quantity: everything about it, in one place.

    Attributes:
      name: the variable's name in results (``traj_`` is prefixed for trajectories).
      doc: one line of meaning (netCDF ``description`` attribute, ``lossjax list``, the docs).
      kind: ``"real"`` (float, NaN where absent), ``"count"`` (int32), ``"step"`` (int32 step
        index, :data:`NEVER` when it never happens), ``"flag"`` (int8 0/1), ``"probe"`` (int8 0/1, or
        :data:`NOT_PROBED` for a run not probed), ``"outcome"`` (int8 code into :data:`OUTCOMES`) or
        ``"code"`` (int8 code into ``CODES[name]``).
      per_layer: True if it has one value per layer (a ``layer`` dimension in results).
      compute: how it is computed: from an :class:`Evaluation` (per-step quantities) or from a
        :class:`~lossjax.core.summaries.RunRecord` (per-run results).
    """

    name: str
    doc: str
    kind: Literal["real", "count", "step", "flag", "probe", "outcome", "code"]
    per_layer: bool
    compute: Callable


class Evaluation(NamedTuple):
    """The model evaluated once at θ_t on a batch: what every per-step quantity is computed from.

    ``layers`` holds, per group of layers (hidden layers first, output last), the activation
    (the true one, not a straight-through surrogate), the pre-activations ``z`` of shape
    (batch, units), or (units, batch) where the group's last entry ``units_first`` is True (the
    units-major layout of :mod:`lossjax.core.layout`, read as it is: reducing over a transposed
    copy cost the benchmark MLP 11 % of its step), whether the group is stacked (then ``z`` has a
    leading layer axis, and so do the group's entries of ``layer_grads``; see
    ``ModelConfig.layer_groups``), and which units are real: ``None`` (all), or a (units,) bool
    mask for the hidden layers of a padded architecture (:mod:`lossjax.core.padded`), whose masked
    units no per-layer quantity counts.
    """

    loss: Array
    logits: Array  # (batch, K)
    outputs: Array  # (batch, K)
    targets: Array  # (batch, K)
    loss_input: str | Array  # "logits" or "output": which of the two the loss reads (a bool array, True: logits,
    # in a program that switches between losses that read different ones)
    grads: Any  # the gradient pytree
    params: Any  # the parameter pytree
    layer_grads: tuple  # per group: (weight gradient, bias gradient, stacked)
    layers: tuple  # per group: (Activation, z, stacked, unit mask or None, units_first)
    thresholds: "Thresholds"
    dtype: Any  # the metric dtype: float32 (float64 for float64 runs)


def every(flags: Array, axis: int | tuple[int, ...] | None = None) -> Array:
    """``jnp.all(flags, axis)`` of boolean ``flags``, computed as a minimum over bytes: the same
    booleans (True over no element), faster on XLA's CPU. Over a block's 2 × 3 × 128 × 128 weights (2-core CPU,
    ``python experiments/bench/reductions.py``), ``jnp.all(w == w')`` took 2.9× as long as this,
    ``jnp.all(isfinite(w))`` 4.9× and ``jnp.all(g == 0)`` 4.5×. Every per-step flag of the
    training step (unchanged layers, finite parameters, zero gradient, saturated and dead units) is one.
    A reduction over one element stays ``jnp.all``: the byte detour made the neuron step (scalar
    parameters) 29 % slower (``python experiments/bench/neuron_profile.py trace``: 50.6 against 39.3 µs).
    """
    if flags.dtype != jnp.bool_:
        raise TypeError(f"every reduces boolean flags, got {flags.dtype}")
    axes = range(flags.ndim) if axis is None else (axis,) if isinstance(axis, numbers.Integral) else tuple(axis)
    if math.prod(flags.shape[a] for a in axes) <= 1:  # nothing to reduce (a neuron's weight): no byte detour
        return jnp.all(flags, axis=axis)
    return jnp.min(flags.astype(jnp.uint8), axis=axis, initial=1) == 1


def _layer_stat(e: Evaluation, stat: Callable[[Any, Array, Array | None, Evaluation, bool], Array]) -> Array:
    """``stat(act, z, units, e, units_first)`` of every layer, as an (L,) array (vmapped over a stacked group)."""
    parts = []
    for act, z, stacked, units, first in e.layers:
        if stacked:
            parts.append(jax.vmap(lambda z_layer, act=act, units=units, first=first: stat(act, z_layer, units, e, first))(z))
        else:
            parts.append(stat(act, z, units, e, first)[None])
    return jnp.concatenate([part.astype(e.dtype) for part in parts])


def _layer_grad_norms(e: Evaluation) -> Array:
    """2-norm of each layer's weight gradient, as an (L,) array."""
    parts = []
    for w, _, stacked in e.layer_grads:
        square = jnp.square(w.astype(e.dtype))
        parts.append(jnp.sqrt(jnp.sum(square, axis=tuple(range(1, w.ndim)))) if stacked else jnp.sqrt(jnp.sum(square))[None])
    return jnp.concatenate(parts)


def layer_unchanged(old: tuple, new: tuple) -> Array:
    """Per layer, whether its weights and bias are all equal before and after an update, as
    an (L,) bool array. ``old`` and ``new`` hold per group of layers (weights, bias, stacked)."""
    parts = []
    for (w0, b0, stacked), (w1, b1, _) in zip(old, new):
        if stacked:
            same = lambda a, b: every((a == b).reshape(a.shape[0], -1), axis=1)  # noqa: E731
            parts.append(same(w0, w1) & same(b0, b1))
        else:
            parts.append((every(w0 == w1) & every(b0 == b1))[None])
    return jnp.concatenate(parts)


def _derivative(act, z):
    _, tangent = jax.jvp(act.fn, (z,), (jnp.ones_like(z),))
    return tangent


def _unit_fraction(which: int) -> Callable[[Any, Array, Array | None, "Evaluation", bool], Array]:
    """The saturated (0), dead (1) or dormant (2) fraction of one layer's units (:func:`unit_fractions`)."""
    return lambda act, z, units, e, first: unit_fractions(
        _derivative(act, z), act.fn(z), act.max_slope, e.thresholds, units, samples_axis=1 if first else 0
    )[which]


def _unit_mean(values: Array, units: Array | None, units_axis: int = -1) -> Array:
    """Mean over every axis, counting only the real ``units`` along ``units_axis``."""
    if units is None:
        return jnp.mean(values)
    wide = jnp.float32 if jnp.dtype(values.dtype).itemsize < 4 else values.dtype  # as jnp.mean: bfloat16/float16 in float32
    count = jnp.sum(units.astype(wide)) * (values.size // values.shape[units_axis])
    shape = [1] * values.ndim
    shape[units_axis] = units.shape[0]
    mask = units.reshape(shape)
    return (jnp.sum(jnp.where(mask, values, jnp.zeros_like(values)), dtype=wide) / count).astype(values.dtype)


def _act_mean(act, z: Array, units: Array | None, e: "Evaluation", first: bool) -> Array:
    return _unit_mean(act.fn(z).astype(e.dtype), units, -2 if first else -1)


def _act_std(act, z: Array, units: Array | None, e: "Evaluation", first: bool) -> Array:
    h = act.fn(z).astype(e.dtype)
    if units is None:
        return jnp.std(h)
    axis = -2 if first else -1
    return jnp.sqrt(_unit_mean(jnp.square(jnp.abs(h - _unit_mean(h, units, axis))), units, axis))


def _leaves(tree) -> list[Array]:
    return jax.tree_util.tree_leaves(tree)


#: Every quantity observed at one step (the trajectory variables ``traj_<name>``).
OBSERVED: tuple[Quantity, ...] = (
    Quantity("loss", "loss L_t", "real", False, lambda e: e.loss.astype(e.dtype)),
    Quantity(
        "error", "mean |a − y| over the batch and output units", "real", False,
        lambda e: jnp.mean(jnp.abs(e.outputs.astype(e.dtype) - e.targets.astype(e.dtype))),
    ),
    Quantity(
        "accuracy", "share of correctly classified samples (see accuracy)", "real", False,
        lambda e: accuracy(e.logits, e.outputs, e.targets, e.loss_input),
    ),
    Quantity(
        "grad_norm", "gradient 2-norm over all parameters", "real", False,
        lambda e: jnp.sqrt(sum(jnp.sum(jnp.square(g.astype(e.dtype))) for g in _leaves(e.grads))),
    ),
    Quantity(
        "grad_is_zero", "1 if the gradient is exactly 0 in every parameter", "flag", False,
        lambda e: jnp.all(jnp.stack([every(g == 0) for g in _leaves(e.grads)])),
    ),
    Quantity(
        "finite", "1 if the loss and every parameter are finite", "flag", False,
        lambda e: jnp.isfinite(e.loss) & jnp.all(jnp.stack([every(jnp.isfinite(p)) for p in _leaves(e.params)])),
    ),
    Quantity(
        "output", "mean output a of the first output unit", "real", False,
        lambda e: jnp.mean(e.outputs[:, 0].astype(e.dtype)),
    ),
    Quantity(
        "logit", "mean pre-activation z of the first output unit", "real", False,
        lambda e: jnp.mean(e.logits[:, 0].astype(e.dtype)),
    ),
    Quantity(
        "grad_w", "dC/dw of the output layer's first weight", "real", False,
        lambda e: e.layer_grads[-1][0].reshape(-1)[0].astype(e.dtype),
    ),
    Quantity(
        "grad_b", "dC/db of the output layer's first bias", "real", False,
        lambda e: e.layer_grads[-1][1].reshape(-1)[0].astype(e.dtype),
    ),
    Quantity(
        "layer_grad_norm", "per layer: 2-norm of the weights' gradient", "real", True,
        _layer_grad_norms,
    ),
    Quantity("layer_saturated", "per layer: fraction of saturated units", "real", True, lambda e: _layer_stat(e, _unit_fraction(0))),
    Quantity("layer_dead", "per layer: fraction of dead units", "real", True, lambda e: _layer_stat(e, _unit_fraction(1))),
    Quantity("layer_dormant", "per layer: fraction of τ-dormant units", "real", True, lambda e: _layer_stat(e, _unit_fraction(2))),
    Quantity(
        "layer_act_mean", "per layer: mean activation over batch and units", "real", True,
        lambda e: _layer_stat(e, _act_mean),
    ),
    Quantity(
        "layer_act_std", "per layer: standard deviation of the activations", "real", True,
        lambda e: _layer_stat(e, _act_std),
    ),
)

#: What one evaluation of the model at θ_t yields: one field per :data:`OBSERVED` quantity.
Observation = NamedTuple("Observation", [(q.name, Array) for q in OBSERVED])
Observation.__doc__ = "What one evaluation at θ_t yields (see :data:`OBSERVED`; (L,): per layer)."


def output_spread(logits: Array, dtype) -> Array:
    """``output_spread_init`` of ``logits`` (n, K), in ``dtype``: the largest max − min over the n
    samples of one column, over the rounding step (``jnp.spacing``) of the logits' own dtype at the
    largest |logit|."""
    z = logits.astype(dtype)
    spread = jnp.max(jnp.max(z, axis=0) - jnp.min(z, axis=0))
    step = jnp.spacing(jnp.max(jnp.abs(logits))).astype(dtype)
    # 0 for a constant output even where the step underflows (XLA on CPU flushes subnormals to 0).
    return jnp.where(spread == 0, jnp.zeros_like(spread), spread / step)


def observe(e: Evaluation) -> Observation:
    """Every per-step quantity of :data:`OBSERVED` from one evaluation."""
    return Observation(*(q.compute(e) for q in OBSERVED))


def accuracy(logits: Array, outputs: Array, targets: Array, loss_input: str | Array) -> Array:
    """Share of correctly classified samples.

    K classes: argmax of the logits against argmax of the one-hot target. Binary: the
    prediction is ``z > 0`` for losses on logits and ``a > 0.5`` for losses on outputs
    (``loss_input``: ``"logits"``, ``"output"``, or a traced bool, True for logits).
    """
    if logits.shape[-1] > 1:
        correct = jnp.argmax(logits, axis=-1) == jnp.argmax(targets, axis=-1)
    else:
        if isinstance(loss_input, str):
            positive = logits[:, 0] > 0 if loss_input == "logits" else outputs[:, 0] > 0.5
        else:
            positive = jnp.where(loss_input, logits[:, 0] > 0, outputs[:, 0] > 0.5)
        correct = positive == (targets[:, 0] > 0.5)
    return jnp.mean(correct.astype(jnp.float32))


def unit_fractions(
    derivatives: Array, activations: Array, max_slope: float, thresholds: Thresholds, units: Array | None = None,
    samples_axis: int = 0,
) -> tuple[Array, Array, Array]:
    """Saturated, dead and dormant fractions of one layer's units.

    Args:
      derivatives: f'(z) for the layer, shape (batch, units), or (units, batch) with ``samples_axis`` 1.
      activations: f(z), shaped as ``derivatives``.
      max_slope: the activation's largest derivative, sup f' (a traced scalar for a switched
        activation, :func:`~lossjax.core.activations.switched`).
      thresholds: supplies ``saturation_delta`` and ``dormant_tau``.
      units: (units,) bool, the real units (a padded layer's); ``None``: all.
      samples_axis: the axis of the batch.
    Returns:
      Three scalars in [0, 1], fractions of the real units.
    """
    magnitude = jnp.abs(derivatives)
    # every(... < threshold) rather than max(...) < threshold: the same units, and XLA on CPU runs the
    # byte reduction over the batch faster (the per-step saturation is in every MLP step).
    # In the derivatives' dtype, whether the slope is a Python float or a switched activation's traced one.
    limit = jnp.asarray(thresholds.saturation_delta * max_slope, magnitude.dtype)
    saturated = every(magnitude < limit, axis=samples_axis)
    dead = every(magnitude == 0, axis=samples_axis)
    score = jnp.mean(jnp.abs(activations), axis=samples_axis)
    layer_mean = _unit_mean(score, units)
    dormant_units = jnp.where(layer_mean > 0, score <= thresholds.dormant_tau * layer_mean, True)
    share = lambda flags: _unit_mean(flags.astype(jnp.float32), units)  # noqa: E731  (as jnp.mean of bools)
    return share(saturated), share(dead), share(dormant_units)


def reached(obs: Observation, thresholds: Thresholds) -> Array:
    """Whether the run has learned at this observation (see ``reached`` in the module doc)."""
    if thresholds.target_metric == "loss":
        return obs.loss <= thresholds.target
    if thresholds.target_metric == "error":
        return obs.error <= thresholds.target
    return obs.accuracy >= thresholds.target
