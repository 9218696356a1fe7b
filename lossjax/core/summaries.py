"""Per-run results: what the training scan accumulates, and what a finished run reports.

The definitions of every quantity are in :mod:`lossjax.core.metrics`; this module holds the
:class:`Accumulator` carried through the scan (O(1) or O(layers) per run), the outcome rule,
and :data:`RESULTS`, the per-run quantities in the order of the results file.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from lossjax.core.metrics import (
    CONVERGED, DIVERGED, NEVER, NO_STALL, NOT_PROBED, OTHER_CAUSE, SLOW, STALLED, ZERO_GRADIENT, ZERO_UPDATE,
    Observation, Quantity, Thresholds, reached,
)

Array = jax.Array


def _field_bits(n_fields: int, words: tuple) -> int:
    """Bits per field of ``n_fields`` counters packed into ``words`` (fields fill words in order)."""
    return 32 // -(-n_fields // len(words))


def pack_zeros(n_fields: int, max_count: int) -> tuple[Array, ...]:
    """``n_fields`` counters at 0, packed into the fewest uint32 words whose fields all hold ``max_count``.

    A packed counter is a bit field of an unsigned word; adding 0 or 1 to several counters is then
    one integer addition: one XLA fusion per word and step instead of one per counter, which is
    what the neuron engine's step time is made of (uint32 words measured faster than uint64 ones).
    Counts are exact: no field ever exceeds ``max_count``, so no carry crosses into the next field.
    """
    needed = max(max_count.bit_length(), 1)
    if needed > 32:
        raise ValueError(f"a count of {max_count} does not fit in a 32-bit word")
    n_words = 1
    while 32 // -(-n_fields // n_words) < needed:
        n_words += 1
    return (jnp.zeros((), jnp.uint32),) * n_words


def pack_add(words: tuple[Array, ...], increments: tuple[Array, ...]) -> tuple[Array, ...]:
    """Adds ``increments[i]`` (bool or small non-negative int) to packed counter ``i``."""
    bits, per_word = _field_bits(len(increments), words), -(-len(increments) // len(words))
    out = []
    for w, word in enumerate(words):
        for i, inc in enumerate(increments[w * per_word:(w + 1) * per_word]):
            word = word + (inc.astype(word.dtype) << (bits * i))
        out.append(word)
    return tuple(out)


def pack_get(words: tuple[Array, ...], n_fields: int, i: int) -> Array:
    """Packed counter ``i`` of ``n_fields`` as an int32."""
    bits, per_word = _field_bits(n_fields, words), -(-n_fields // len(words))
    word = words[i // per_word] >> (bits * (i % per_word))
    return (word & jnp.asarray((1 << bits) - 1, word.dtype)).astype(jnp.int32)


#: The packed counters of an :class:`Accumulator`: ``counts`` (update steps of each kind, never
#: reset) and ``plateau`` (steps of the current plateau, all reset when a step is not flat).
COUNTS = ("zero_grad_steps", "zero_update_steps", "rounded_update_steps", "tiny_grad_steps")
PLATEAU = ("plateau_current", "plateau_zero_grad", "plateau_rounded")


def _counter(words: str, names: tuple[str, ...], name: str) -> property:
    """The packed counter ``name`` of the words in field ``words``, as an int32 attribute."""
    i = names.index(name)
    return property(lambda acc: pack_get(getattr(acc, words), len(names), i))


class Accumulator(NamedTuple):
    """Per-run reductions carried through the scan (all O(1) or O(layers) in size).

    The step counters of :data:`COUNTS` and :data:`PLATEAU` are packed (:func:`pack_zeros`) and
    read as attributes of the same names; ``plateau_zero_grad`` counts the zero-gradient steps and
    ``plateau_rounded`` the rounded-update steps of the current plateau (see ``stall_cause``).
    """

    loss_initial: Array
    loss_min: Array
    previous_loss: Array
    steps_to_target: Array
    counts: tuple  # packed COUNTS
    plateau: tuple  # packed PLATEAU
    longest_plateau: Array
    first_nonfinite: Array
    layer_saturated_sum: Array  # (L,) sum over update steps
    layer_grad_norm_sum: Array  # (L,) sum over update steps
    layer_zero_updates: Array | None  # (L,) int32 count over update steps; None for one layer (= zero_update_steps)
    init: Observation  # the observation at θ_0

    zero_grad_steps = _counter("counts", COUNTS, "zero_grad_steps")
    zero_update_steps = _counter("counts", COUNTS, "zero_update_steps")
    rounded_update_steps = _counter("counts", COUNTS, "rounded_update_steps")
    tiny_grad_steps = _counter("counts", COUNTS, "tiny_grad_steps")
    plateau_current = _counter("plateau", PLATEAU, "plateau_current")
    plateau_zero_grad = _counter("plateau", PLATEAU, "plateau_zero_grad")
    plateau_rounded = _counter("plateau", PLATEAU, "plateau_rounded")

    @property
    def layer_zero_update_steps(self) -> Array:
        """(L,) update steps leaving each layer unchanged."""
        return self.zero_update_steps[None] if self.layer_zero_updates is None else self.layer_zero_updates


def start(obs0: Observation, steps: int) -> Accumulator:
    """The accumulator before step 0 of a run of ``steps`` updates, holding the observation at θ_0.

    Its packed counters hold counts up to ``steps``: fold in steps t = 0..``steps`` only.
    """
    zero = jnp.zeros((), jnp.int32)
    n_layers = obs0.layer_grad_norm.shape[0]
    return Accumulator(
        loss_initial=obs0.loss,
        loss_min=jnp.full_like(obs0.loss, jnp.inf),
        previous_loss=obs0.loss,
        steps_to_target=jnp.full((), NEVER, jnp.int32),
        counts=pack_zeros(len(COUNTS), steps),
        plateau=pack_zeros(len(PLATEAU), steps),
        longest_plateau=zero,
        first_nonfinite=jnp.full((), NEVER, jnp.int32),
        layer_saturated_sum=jnp.zeros_like(obs0.layer_saturated),
        layer_grad_norm_sum=jnp.zeros_like(obs0.layer_grad_norm),
        layer_zero_updates=None if n_layers == 1 else jnp.zeros((n_layers,), jnp.int32),
        init=obs0,
    )


def accumulate(
    acc: Accumulator, obs: Observation, t: Array, thresholds: Thresholds, *, is_update: bool | Array,
    unchanged: Array | None = None,
) -> Accumulator:
    """Folds the observation at step ``t`` (0, 1, …, T in order) into the accumulator.

    ``is_update`` is True for t < T (an optimiser step follows, so gradient counts apply) and
    False for the final evaluation at θ_T; it may be traced. ``unchanged`` is, per layer, whether
    update t left the layer's parameters unchanged ((L,) bool, from
    :func:`~lossjax.core.metrics.layer_unchanged`); ``None`` (the final evaluation): no update.
    """
    t = jnp.asarray(t, jnp.int32)
    was_reached = acc.steps_to_target != NEVER
    now_reached = reached(obs, thresholds)
    steps_to_target = jnp.where(~was_reached & now_reached, t, acc.steps_to_target)

    denominator = jnp.maximum(jnp.abs(acc.previous_loss), jnp.finfo(obs.loss.dtype).tiny)
    improvement = (acc.previous_loss - obs.loss) / denominator
    # "Not reached at t or before" read from the new steps_to_target rather than from the old one
    # and now_reached: the same flag, and the old value then need not be kept (one copy less per step).
    flat = (t >= 1) & (steps_to_target == NEVER) & (improvement < thresholds.plateau_tau)

    first_nonfinite = jnp.where(
        (acc.first_nonfinite == NEVER) & ~obs.finite, t, acc.first_nonfinite
    )
    update = jnp.asarray(is_update)
    layer_same = jnp.zeros(obs.layer_grad_norm.shape, bool) if unchanged is None else update & unchanged
    zero_grad = update & obs.grad_is_zero
    all_same = jnp.all(layer_same)
    rounded = all_same & ~obs.grad_is_zero
    tiny = update & (obs.grad_norm < thresholds.tiny_grad)
    plateau = pack_add(
        acc.plateau, _by_name(PLATEAU, plateau_current=flat, plateau_zero_grad=zero_grad, plateau_rounded=rounded)
    )
    plateau = tuple(jnp.where(flat, word, jnp.zeros_like(word)) for word in plateau)
    layer_zero_updates = acc.layer_zero_updates
    if layer_zero_updates is not None:
        layer_zero_updates = layer_zero_updates + layer_same.astype(jnp.int32)
    acc = acc._replace(
        loss_min=jnp.fmin(acc.loss_min, obs.loss),
        previous_loss=obs.loss,
        steps_to_target=steps_to_target,
        first_nonfinite=first_nonfinite,
        counts=pack_add(acc.counts, _by_name(
            COUNTS, zero_grad_steps=zero_grad, zero_update_steps=all_same, rounded_update_steps=rounded,
            tiny_grad_steps=tiny,
        )),
        plateau=plateau,
        layer_zero_updates=layer_zero_updates,
        layer_saturated_sum=acc.layer_saturated_sum + jnp.where(update, obs.layer_saturated, 0),
        layer_grad_norm_sum=acc.layer_grad_norm_sum + jnp.where(update, obs.layer_grad_norm, 0),
    )
    return acc._replace(longest_plateau=jnp.maximum(acc.longest_plateau, acc.plateau_current))


def _by_name(names: tuple[str, ...], **increments: Array) -> tuple[Array, ...]:
    """Per-step increments of packed counters, in the order of ``names``."""
    return tuple(increments[name] for name in names)


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


def stall_cause(outcome_code: Array, plateau: Array, plateau_zero_grad: Array, plateau_rounded: Array) -> Array:
    """The stall-cause code (index into :data:`~lossjax.core.metrics.STALL_CAUSES`) by the rule
    in the metrics docstring: the majority kind of zero step on the final plateau of a stalled run."""
    cause = jnp.where(2 * plateau_zero_grad > plateau, ZERO_GRADIENT,
                      jnp.where(2 * plateau_rounded > plateau, ZERO_UPDATE, OTHER_CAUSE))
    return jnp.where(outcome_code == STALLED, cause, NO_STALL).astype(jnp.int8)


def weighted_fraction(layer_fractions: Array, layer_sizes: tuple[int, ...] | Array) -> Array:
    """Fraction over all units from per-layer fractions (weights: units per layer; a padded
    architecture's skipped layers weigh 0)."""
    sizes = jnp.asarray(layer_sizes, layer_fractions.dtype)
    return jnp.sum(layer_fractions * sizes, axis=-1) / jnp.sum(sizes)


class RunRecord(NamedTuple):
    """What a finished run hands to the per-run quantities of :data:`RESULTS`."""

    acc: Accumulator  # the accumulators after the final evaluation
    final: Observation  # the final evaluation at θ_T, on the whole training set
    born_dead: Array  # bool, see ``born_dead``
    output_spread_init: Array  # see ``output_spread_init``
    test_loss: Array  # NaN without a test set
    test_accuracy: Array
    steps: int  # T
    layer_sizes: tuple[int, ...] | Array  # units per layer, hidden layers first (padded: 0 for skipped layers)
    thresholds: Thresholds
    roundoff_decided: Array | None = None  # int8, see ``roundoff_decided``; None: not probed


def _outcome(r: RunRecord) -> Array:
    a = r.acc
    return outcome(a.loss_initial, r.final.loss, a.steps_to_target, a.longest_plateau, a.first_nonfinite, r.thresholds)


def roundoff_decided(run: RunRecord, probe: RunRecord, eps: Array) -> Array:
    """``roundoff_decided`` (int8 0/1) of a run and of the same run from the perturbed θ'_0
    (``probe``), ε the perturbation's relative size (definition in :mod:`lossjax.core.metrics`)."""
    loss, loss_probe = run.final.loss, probe.final.loss
    scale = jnp.maximum(jnp.maximum(jnp.abs(loss), jnp.abs(loss_probe)), eps * jnp.abs(run.acc.loss_initial))
    moved = jnp.abs(loss_probe - loss) > run.thresholds.roundoff_tolerance * scale  # False when either is NaN
    one_nan = jnp.isnan(loss) != jnp.isnan(loss_probe)
    return ((_outcome(run) != _outcome(probe)) | moved | one_nan).astype(jnp.int8)


def _roundoff(r: RunRecord) -> Array:
    return jnp.full((), NOT_PROBED, jnp.int8) if r.roundoff_decided is None else r.roundoff_decided


def _stall_cause(r: RunRecord) -> Array:
    a = r.acc
    return stall_cause(_outcome(r), a.plateau_current, a.plateau_zero_grad, a.plateau_rounded)


def _all_units(per_layer: Callable[[RunRecord], Array]) -> Callable[[RunRecord], Array]:
    return lambda r: weighted_fraction(per_layer(r), r.layer_sizes)


def _saturated_mean(r: RunRecord) -> Array:
    return r.acc.layer_saturated_sum / r.steps


#: Every per-run result, in the order of the results file. Removing a quantity is one line here.
RESULTS: tuple[Quantity, ...] = (
    Quantity("loss_initial", "loss L_0 at the initial parameters", "real", False, lambda r: r.acc.loss_initial),
    Quantity("loss_final", "loss L_T after the last of T updates (whole training set)", "real", False, lambda r: r.final.loss),
    Quantity("loss_min", "minimum loss over steps 0..T", "real", False, lambda r: r.acc.loss_min),
    Quantity("output_initial", "mean output a of the first output unit at θ_0", "real", False, lambda r: r.acc.init.output),
    Quantity("output_final", "mean output a of the first output unit at θ_T", "real", False, lambda r: r.final.output),
    Quantity("error_final", "mean |a − y| at θ_T", "real", False, lambda r: r.final.error),
    Quantity("accuracy_final", "training accuracy at θ_T", "real", False, lambda r: r.final.accuracy),
    Quantity("test_loss", "test loss at θ_T (NaN without a test set)", "real", False, lambda r: r.test_loss),
    Quantity("test_accuracy", "test accuracy at θ_T (NaN without a test set)", "real", False, lambda r: r.test_accuracy),
    Quantity(
        "steps_to_target", "first step t at which the target is reached; -1: never", "step", False,
        lambda r: r.acc.steps_to_target,
    ),
    Quantity(
        "zero_grad_steps", "update steps whose gradient is exactly 0 in every parameter", "count", False,
        lambda r: r.acc.zero_grad_steps,
    ),
    Quantity(
        "zero_update_steps", "update steps after which every parameter is unchanged (θ_{t+1} == θ_t)", "count",
        False, lambda r: r.acc.zero_update_steps,
    ),
    Quantity(
        "rounded_update_steps", "zero-update steps whose gradient is not 0 (the update was rounded away)", "count",
        False, lambda r: r.acc.rounded_update_steps,
    ),
    Quantity(
        "tiny_grad_steps", "update steps whose gradient norm is below tiny_grad", "count", False,
        lambda r: r.acc.tiny_grad_steps,
    ),
    Quantity("saturated_init", "fraction of units saturated at θ_0", "real", False, _all_units(lambda r: r.acc.init.layer_saturated)),
    Quantity("saturated_final", "fraction of units saturated at θ_T", "real", False, _all_units(lambda r: r.final.layer_saturated)),
    Quantity(
        "saturated_mean", "fraction of units saturated, averaged over update steps", "real", False,
        _all_units(_saturated_mean),
    ),
    Quantity("dead_init", "fraction of units dead at θ_0", "real", False, _all_units(lambda r: r.acc.init.layer_dead)),
    Quantity("dead_final", "fraction of units dead at θ_T", "real", False, _all_units(lambda r: r.final.layer_dead)),
    Quantity("born_dead", "1 if the output is the same for every training input at θ_0", "flag", False, lambda r: r.born_dead),
    Quantity(
        "output_spread_init", "largest spread of a logit over the training inputs at θ_0, in rounding steps of the "
        "largest |logit| (0: born dead; NaN with one example)", "real", False, lambda r: r.output_spread_init,
    ),
    Quantity(
        "longest_plateau", "longest run of steps with relative improvement < plateau_tau before the target", "count", False,
        lambda r: r.acc.longest_plateau,
    ),
    Quantity(
        "first_nonfinite", "first step with a NaN/inf loss or parameter; -1: never", "step", False,
        lambda r: r.acc.first_nonfinite,
    ),
    Quantity("outcome", "converged, slow, stalled or diverged (codes; see flag_meanings)", "outcome", False, _outcome),
    Quantity(
        "stall_cause", "stalled runs: none, zero_gradient, zero_update or other (codes; see flag_meanings)", "code",
        False, _stall_cause,
    ),
    Quantity(
        "roundoff_decided", "1 if θ_0 perturbed by a relative ε changes the outcome or the final loss beyond "
        "roundoff_tolerance; -1: not probed", "probe", False, _roundoff,
    ),
    Quantity(
        "layer_saturated_init", "per layer: fraction of saturated units at θ_0", "real", True,
        lambda r: r.acc.init.layer_saturated,
    ),
    Quantity(
        "layer_saturated_final", "per layer: fraction of saturated units at θ_T", "real", True,
        lambda r: r.final.layer_saturated,
    ),
    Quantity(
        "layer_saturated_mean", "per layer: fraction of saturated units, averaged over update steps", "real", True,
        _saturated_mean,
    ),
    Quantity("layer_dead_init", "per layer: fraction of dead units at θ_0", "real", True, lambda r: r.acc.init.layer_dead),
    Quantity("layer_dead_final", "per layer: fraction of dead units at θ_T", "real", True, lambda r: r.final.layer_dead),
    Quantity(
        "layer_dormant_init", "per layer: fraction of τ-dormant units at θ_0 (Sokar et al. 2023)", "real", True,
        lambda r: r.acc.init.layer_dormant,
    ),
    Quantity(
        "layer_dormant_final", "per layer: fraction of τ-dormant units at θ_T", "real", True,
        lambda r: r.final.layer_dormant,
    ),
    Quantity(
        "layer_zero_update_share", "per layer: fraction of update steps leaving its weights and bias unchanged", "real",
        True, lambda r: r.acc.layer_zero_update_steps.astype(r.acc.layer_grad_norm_sum.dtype) / r.steps,
    ),
    Quantity(
        "layer_grad_norm_init", "per layer: 2-norm of the weights' gradient at θ_0", "real", True,
        lambda r: r.acc.init.layer_grad_norm,
    ),
    Quantity(
        "layer_grad_norm_mean", "per layer: 2-norm of the weights' gradient, averaged over update steps", "real", True,
        lambda r: r.acc.layer_grad_norm_sum / r.steps,
    ),
    Quantity(
        "layer_grad_norm_final", "per layer: 2-norm of the weights' gradient at θ_T", "real", True,
        lambda r: r.final.layer_grad_norm,
    ),
)

#: Per-run results: one field per :data:`RESULTS` quantity ((L,): per layer).
Summary = NamedTuple("Summary", [(q.name, Array) for q in RESULTS])
Summary.__doc__ = "Per-run results (one field per quantity of :data:`RESULTS`; (L,): per layer)."


def summarize(record: RunRecord) -> Summary:
    """Every per-run quantity of :data:`RESULTS` from a finished run."""
    return Summary(*(q.compute(record) for q in RESULTS))
