"""Gradient estimators: how a training step obtains its gradient.

An estimator is an object, not a name tested with string operations: it may replace the
activations' backward pass (:class:`StraightThrough`), replace the gradient itself
(:class:`ScoreFunction`), and refuse a loss it cannot be used with (:meth:`Estimator.check`).
:data:`ESTIMATORS` is the registry (``[train] estimator`` in a sweep file).

References:
  Bengio, Léonard & Courville (2013), "Estimating or Propagating Gradients Through Stochastic
  Neurons for Conditional Computation": the straight-through estimator.
  Williams (1992), "Simple statistical gradient-following algorithms for connectionist
  reinforcement learning": the score-function (REINFORCE) estimator.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Literal

import jax
import jax.numpy as jnp

from lossjax.core.activations import Activation, _sigmoid_slope
from lossjax.core.losses import Loss

Array = jax.Array
BACKWARDS = ("identity", "sigmoid")


@dataclasses.dataclass(frozen=True)
class Estimator:
    """The exact autodiff gradient; the base of every estimator.

    Attributes:
      name: registry name.
      description: one line for ``lossjax list``.
    """

    name: str
    description: str

    def activation(self, act: Activation) -> Activation:
        """The activation the forward and backward passes use (``act`` itself by default)."""
        return act

    def check(self, loss: Loss) -> None:
        """Raises ``ValueError`` if this estimator cannot be used with ``loss``."""

    def gradient(self, exact: Any, score: Callable[[], Any]) -> Any:
        """The gradient the optimiser receives.

        Args:
          exact: the autodiff gradient of the loss (through :meth:`activation`).
          score: ``score() -> gradient``, the score-function estimate at the same parameters
            (only :class:`ScoreFunction` calls it).
        """
        return exact

    def _replace(self, **changes) -> "Estimator":
        return dataclasses.replace(self, **changes)


@dataclasses.dataclass(frozen=True)
class StraightThrough(Estimator):
    """Forward the true activation, backward a surrogate slope (see :func:`straight_through`)."""

    backward: Literal["identity", "sigmoid"] = "identity"

    def activation(self, act: Activation) -> Activation:
        return straight_through(act, self.backward)


@dataclasses.dataclass(frozen=True)
class ScoreFunction(Estimator):
    """REINFORCE with a leave-one-out baseline (see :func:`score_function_gradient`)."""

    def check(self, loss: Loss) -> None:
        if loss.input != "output":
            raise ValueError(
                f"estimator 'score_function' needs a loss defined on outputs, and {loss.name!r} "
                "is defined on logits; use e.g. zero_one, one_minus_f1, one_minus_iou, quadratic"
            )

    def gradient(self, exact: Any, score: Callable[[], Any]) -> Any:
        return score()


ESTIMATORS: dict[str, Estimator] = {
    e.name: e
    for e in (
        Estimator("exact", "exact autodiff gradient (default)"),
        StraightThrough(
            "ste_identity", "straight-through: forward f(z), backward slope 1 (Bengio et al. 2013)", "identity"
        ),
        StraightThrough("ste_sigmoid", "straight-through: forward f(z), backward the slope of σ(z)", "sigmoid"),
        ScoreFunction(
            "score_function",
            "REINFORCE: sample outputs ŷ ~ Bernoulli(σ(z)) (categorical(softmax(z)) for K classes), "
            "gradient of mean_s (L(ŷ_s) − b_s) log p(ŷ_s), leave-one-out baseline b_s",
        ),
    )
}


def get_estimator(name: str) -> Estimator:
    """Looks up an estimator by name; raises ``ValueError`` listing the allowed names."""
    if name not in ESTIMATORS:
        raise ValueError(f"unknown estimator {name!r}; allowed: {', '.join(ESTIMATORS)}")
    return ESTIMATORS[name]


def score_function_gradient(
    logits_fn: Callable[[Any], Array], params: Any, loss_fn: Callable[[Array, Array], Array],
    targets: Array, key: Array, samples: int, dtype: Any, metric_dtype: Any,
) -> Any:
    """Leave-one-out REINFORCE estimate of ∇θ E_ŷ[L(ŷ, y)].

    Draws ``samples`` hard outputs ŷ_s ~ Bernoulli(σ(z)) (one output unit) or
    categorical(softmax(z)) (K units), and differentiates ``mean_s (L(ŷ_s) − b_s) log p(ŷ_s)``
    with the baseline ``b_s`` the mean loss of the other samples (held constant).

    Args:
      logits_fn: ``params -> logits (batch, K)``.
      params: the parameters at which the gradient is estimated.
      loss_fn: the batch loss ``(outputs, targets) -> scalar``.
      targets: (batch, K).
      key: PRNG key of this step.
      samples: number of samples s >= 2.
      dtype: the run's dtype (the loss sees samples in it); metric_dtype: the dtype of the
        log-probabilities and advantages.
    """

    def log_prob_and_samples(p):
        logits = logits_fn(p).astype(metric_dtype)
        n_outputs = logits.shape[-1]
        if n_outputs == 1:
            u = jax.random.uniform(key, (samples,) + logits.shape, metric_dtype)
            drawn = (u < jax.nn.sigmoid(jax.lax.stop_gradient(logits))[None]).astype(metric_dtype)
            logp = drawn * jax.nn.log_sigmoid(logits)[None] + (1 - drawn) * jax.nn.log_sigmoid(-logits)[None]
        else:
            classes = jax.random.categorical(key, jax.lax.stop_gradient(logits), shape=(samples, logits.shape[0]))
            drawn = jax.nn.one_hot(classes, n_outputs, dtype=metric_dtype)
            logp = drawn * jax.nn.log_softmax(logits)[None]
        return jnp.sum(logp, axis=(1, 2)), drawn

    def surrogate(p):
        logp, drawn = log_prob_and_samples(p)
        rewards = jax.vmap(lambda smp: loss_fn(smp.astype(dtype), targets))(drawn).astype(metric_dtype)
        baseline = (jnp.sum(rewards) - rewards) / (samples - 1)
        advantage = jax.lax.stop_gradient(rewards - baseline)
        return jnp.mean(advantage * logp)

    return jax.grad(surrogate)(params)


def straight_through(act: Activation, backward: Literal["identity", "sigmoid"]) -> Activation:
    """Straight-through estimator: forward ``act.fn`` exactly, backward a surrogate slope.

    Implemented with ``jax.custom_jvp`` (not ``z + stop_gradient(f(z) − z)``, whose forward
    value is ``f(z)`` only up to rounding: for ``|z| ≫ 1`` it loses ``f(z)``). The JVP rule is
    ``t ↦ t`` (``"identity"``, slope 1) or ``t ↦ t·σ(z)(1 − σ(z))`` (``"sigmoid"``, the slope
    of the logistic sigmoid, max 1/4), so ``jax.grad``, ``jax.jvp`` and reverse mode all see the
    surrogate; the surrogate is itself differentiable, so second order works.

    Args:
      act: the activation whose forward pass is kept (typically ``step``).
      backward: ``"identity"`` or ``"sigmoid"``.

    Returns:
      An :class:`Activation` named ``f"{act.name}+ste_{backward}"`` whose ``max_slope`` is the
      surrogate's (1 or 0.25).

    Raises:
      ValueError: unknown ``backward``.
    """
    if backward not in BACKWARDS:
        raise ValueError(f"unknown straight-through backward {backward!r}; allowed: {list(BACKWARDS)}")
    forward = act.fn

    @jax.custom_jvp
    def fn(z):
        return forward(z)

    if backward == "identity":

        @fn.defjvp
        def _jvp(primals, tangents):
            (z,), (t,) = primals, tangents
            return forward(z), t

        max_slope = 1.0
        flat = "nowhere: surrogate f' = 1 everywhere"
    else:

        @fn.defjvp
        def _jvp(primals, tangents):
            (z,), (t,) = primals, tangents
            return forward(z), t * _sigmoid_slope(z)

        max_slope = 0.25
        flat = "|z| > 5: surrogate f' = sigma'(z) < 0.0066"
    return Activation(
        name=f"{act.name}+ste_{backward}",
        fn=fn,
        max_slope=max_slope,
        description=f"{act.name} forward, straight-through backward with slope of {backward}",
        flat_region=flat,
    )


