"""The layout of an MLP's activations in the forward pass: samples-major, (samples, units) as flax
lays them out, or units-major, (units, samples), chosen by the shape of the batch and the first
layer. Used by the unpadded passes (:mod:`lossjax.core.models`) and the padded one
(:mod:`lossjax.core.padded`), which return their pre-activations as they computed them, with
their layout (:class:`Forward`): the metrics read them so, without a transposed copy."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

Array = jax.Array


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Forward:
    """A model's forward pass on ``n`` samples: what every model's ``apply(params, x)`` returns.

    Attributes:
      logits: the output layer's pre-activations, (n, n_outputs).
      pre_activations: per group of layers (:attr:`~lossjax.core.models.ModelConfig.layer_groups`:
        the hidden layers first, the output layer last), its pre-activations in the pass's layout:
        (…, n, units) samples-major, or (…, units, n) units-major. A stacked group has a leading
        layer axis.
      units_first: per group, whether it is units-major (static: a pytree's metadata, so that a
        ``Forward`` passes through ``jax.grad``'s auxiliary output and ``vmap``). The output group is
        samples-major (it holds the logits).
    """

    logits: Array
    pre_activations: tuple[Array, ...]
    units_first: tuple[bool, ...] = dataclasses.field(metadata=dict(static=True))

    def samples_major(self) -> tuple[Array, ...]:
        """Every group's pre-activations samples-major, (…, n, units)."""
        return tuple(samples_major(z, first) for z, first in zip(self.pre_activations, self.units_first))


def units_major(n_samples: int, width: int) -> bool:
    """Whether the MLP passes lay activations out units-major, (units, samples): when the batch is
    at least as wide as the first layer. Vmapped over a block of models, XLA on CPU then runs a
    hidden layer's product as a loop vectorised over the samples (and the first layer as one product
    over all models, which share the input): the benchmark MLP (128 samples, width 16) trained 1.9×
    faster than samples-major. With a short batch the samples axis is too short to vectorise: at 10
    samples on width 128 units-major ran 1.5× slower, at 64 samples the two were level (bare JAX,
    2-core CPU; README, benchmark section)."""
    return n_samples >= width


def dense(h: Array, kernel: Array, bias: Array, units_first: bool) -> Array:
    """One dense layer, ``kernel`` (fan_in, fan_out) in flax's layout: on ``h`` (n, fan_in) giving
    (n, fan_out), or units-major (``units_first``) on ``h`` (fan_in, n) giving (fan_out, n)."""
    if units_first:
        return jax.lax.dot_general(kernel, h, (((0,), (0,)), ((), ()))) + bias[:, None]
    return h @ kernel + bias[None, :]


def samples_major(z: Array, units_first: bool) -> Array:
    """A layer's (or a stack of layers') pre-activations as the metrics read them: (…, n, units)."""
    return jnp.swapaxes(z, -1, -2) if units_first else z
