"""Architectures padded to a common shape: a grid of depths and widths in one compiled program.

A *padded* MLP (``ModelConfig(kind="mlp", padded=True)``) has ``depth`` hidden layers of
``width`` units: the largest depth and width of a group of architectures. The architecture a run
trains inside it, ``(D, W)`` with ``1 <= D <= depth`` and ``1 <= W <= width``, is given per compiled
call as an :class:`ArchShape` (unbatched: every run of a call has the same architecture, so the
program branches on it instead of computing both sides):

- *masked units*: units ``W..width−1`` of every hidden layer output exactly 0
  (``where(unit < W, f(z), 0)``); their weights and biases are 0 at θ_0 and their gradient is
  exactly 0 (the mask's derivative), so they stay 0 under every optimiser; no per-layer metric
  counts them (:class:`~lossjax.core.metrics.Evaluation`'s unit masks);
- *skipped layers*: hidden layers ``D..depth−1`` pass their input through unchanged
  (:func:`hidden_stack` loops over the ``D − 1`` real stacked layers only: they cost nothing);
  their parameters are 0 and stay 0, and their per-layer results are dropped
  (:func:`true_layers` moves the output layer to position ``D``; later positions are NaN, as for
  a shallower network in a sweep's results);
- *the same θ_0*: :func:`init_padded` draws every real entry from the key, position and
  distribution the unpadded architecture's :func:`~lossjax.core.initializers.init_from_scheme` uses.
  JAX's counter-based random bits (partitionable threefry, the default) make a draw of ``n``
  values the first ``n`` values of a longer draw from the same key, and a 2-D draw the reshape of
  the flat one, so the padded draw reads the unpadded values at their flat positions.

A run trained padded therefore gives the numbers of its architecture trained alone, up to the
float rounding of sums that gain zero terms (matrix products over the padded fan-in, the
per-layer means); ``tests/test_padded.py`` checks θ_0 bit for bit and every result within
float32 rounding. What the runner groups, and when, is :mod:`lossjax.programs`'s cost model.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from lossjax.core import initializers, layout, models

Array = jax.Array

#: Layer kinds of :class:`ArchShape`'s tables: the first hidden layer, the others, the output layer.
FIRST, HIDDEN, OUTPUT = range(3)


class ArchShape(NamedTuple):
    """The architecture a padded program trains in one call (built on the host by :func:`arch_shape`).

    Attributes:
      depth: int32 (): hidden layers D.
      width: int32 (): units per hidden layer W.
      std: float32 (3, schemes): each init scheme's weight standard deviation for the first
        hidden layer, the other hidden layers and the output layer of (D, W), rounded to float32
        from the same double-precision value the unpadded draw uses.
      rai_std: float32 (3,): RAI's σ/√fan_in for the same three kinds of layer.
      loss: int32 (): which of the program's losses the call trains (an index into
        ``TrainConfig.losses``; 0 for a program of one loss).
      activation: int32 (): which of the program's hidden activations the call trains (an index
        into ``TrainConfig.hidden_activations``; 0 for a program of one).
    """

    depth: Array
    width: Array
    std: Array
    rai_std: Array
    loss: Array
    activation: Array


def arch_shape(config: models.ModelConfig, loss: int = 0, activation: int = 0) -> ArchShape:
    """The :class:`ArchShape` of an unpadded MLP ``config`` trained with the program's loss number
    ``loss`` and hidden activation number ``activation`` (numpy arrays, ready to pass to a call)."""
    if config.kind != "mlp" or config.padded or config.depth < 1:
        raise ValueError(f"a padded program trains unpadded MLPs of depth >= 1, got {config}")
    fans = ((config.n_inputs, config.width), (config.width, config.width), (config.width, config.n_outputs))
    std = np.asarray([[s.std(fi, fo) for s in initializers.INIT_SCHEMES.values()] for fi, fo in fans], np.float32)
    rai_std = np.asarray([initializers.RAI_SIGMA / math.sqrt(fi) for fi, _ in fans], np.float32)
    return ArchShape(np.int32(config.depth), np.int32(config.width), std, rai_std, np.int32(loss), np.int32(activation))


def shape_struct() -> ArchShape:
    """Shapes and dtypes of an :class:`ArchShape` (to compile a program ahead of time)."""
    n = len(initializers.INIT_SCHEMES)
    return ArchShape(*(jax.ShapeDtypeStruct(s, d) for s, d in (((), jnp.int32), ((), jnp.int32), ((3, n), jnp.float32),
                                                                ((3,), jnp.float32), ((), jnp.int32), ((), jnp.int32))))


def unit_mask(width: int, shape: ArchShape) -> Array:
    """(width,) bool: which units of a padded hidden layer are real."""
    return jnp.arange(width, dtype=jnp.int32) < shape.width


def layer_sizes(config: models.ModelConfig, shape: ArchShape) -> Array:
    """Units per layer of the padded layout (hidden layers then output), 0 for skipped layers."""
    hidden = jnp.where(jnp.arange(config.depth, dtype=jnp.int32) < shape.depth, shape.width, jnp.zeros((), jnp.int32))
    return jnp.concatenate([hidden, jnp.full((1,), config.n_outputs, hidden.dtype)])


def mlp_apply_padded(
    params: models.Params, x: Array, hidden_activation: Callable[[Array], Array], shape: ArchShape
) -> layout.Forward:
    """The padded MLP's forward pass, in :func:`~lossjax.core.models.mlp_apply_scan`'s layout.

    Pre-activations of masked units are whatever the zero weights give (0 for finite inputs);
    a skipped layer's are 0. The metrics mask both out. The stacked hidden layers run in
    :func:`hidden_stack`: a loop of ``D − 1`` iterations, so that skipped layers cost nothing.
    """
    layers = params["params"]
    width = layers["hidden_0"]["kernel"].shape[1]
    first = layout.units_major(x.shape[0], width)
    units = unit_mask(width, shape)
    units = units[:, None] if first else units[None, :]
    z = layout.dense(x.T if first else x, layers["hidden_0"]["kernel"], layers["hidden_0"]["bias"], first)
    hidden = [z]
    h = _activate(hidden_activation, z, units)
    if "hidden" in layers:
        stacked = layers["hidden"]
        h, zs = hidden_stack(hidden_activation, first, h, stacked["kernel"], stacked["bias"], units, shape.depth)
        hidden.append(zs)
    return models.output_forward(h, layers["output"], first, hidden)


def _activate(fn: Callable[[Array], Array], z: Array, units: Array) -> Array:
    """A padded hidden layer's output: ``fn(z)`` on real units, exactly 0 on masked ones."""
    return jnp.where(units, fn(z), jnp.zeros_like(z))


@partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def hidden_stack(
    fn: Callable[[Array], Array], first: bool, h: Array, kernels: Array, biases: Array, units: Array, depth: Array
) -> tuple[Array, Array]:
    """Hidden layers 1..D−1 of a padded MLP (``kernels`` (depth_max − 1, width, width)) applied to
    the first hidden layer's output ``h``: ``(h_D, zs)``, with ``zs`` the stacked pre-activations,
    exactly 0 for the skipped layers D..depth_max−1.

    A ``lax.fori_loop`` of ``D − 1`` iterations (``depth`` is traced but the same for every run of
    a call, so the loop is not unrolled into both branches of a select): a skipped layer costs no
    iteration. A ``lax.scan`` over every stacked layer with a ``lax.cond`` inside carried the
    stacked residuals through each skipped layer too: in the dying-ReLU study's width-10, depth-20
    program (64 samples, one step, 2-core CPU; ``experiments/mlp/padded_call_timing.py``) a depth-1
    net took 65 µs per run that way and 35.5 µs in this loop (depth 20: 125 and 93.5 µs).

    Reverse mode cannot differentiate a loop of traced length, so the gradient is the custom VJP
    below: the same loop backwards, each layer's cotangents from ``jax.vjp`` of its own dense
    product and activation (any activation, its own derivative; the layer's input recomputed from
    the previous pre-activations), equal to autodiff of the unrolled layers (``tests/test_padded.py``).
    """
    return _stack_forward(fn, first, h, kernels, biases, units, depth)[:2]


def _stack_forward(fn, first, h, kernels, biases, units, depth):
    """(h_D, zs): the forward loop."""

    def layer(i, carry):
        h, zs = carry
        z = layout.dense(h, kernels[i], biases[i], first)
        return _activate(fn, z, units), zs.at[i].set(z)

    return jax.lax.fori_loop(0, depth - 1, layer, (h, jnp.zeros((kernels.shape[0],) + h.shape, h.dtype)))


def _stack_fwd(fn, first, h, kernels, biases, units, depth):
    out, zs = _stack_forward(fn, first, h, kernels, biases, units, depth)
    return (out, zs), (h, zs, kernels, biases, units, depth)


def _stack_bwd(fn, first, residuals, cotangents):
    h0, zs, kernels, biases, units, depth = residuals
    d_out, d_zs = cotangents

    def layer(j, carry):  # layer i = D−2−j: the last real layer first
        d_h, d_kernels, d_biases = carry
        i = depth - 2 - j
        _, activate_vjp = jax.vjp(lambda z: _activate(fn, z, units), zs[i])
        d_z = activate_vjp(d_h)[0] + d_zs[i]
        # the layer's input, recomputed from the previous pre-activations rather than kept
        h = jnp.where(i == 0, h0, _activate(fn, zs[jnp.maximum(i - 1, 0)], units))
        _, dense_vjp = jax.vjp(lambda h, k, b: layout.dense(h, k, b, first), h, kernels[i], biases[i])
        d_h, d_kernel, d_bias = dense_vjp(d_z)
        return d_h, d_kernels.at[i].set(d_kernel), d_biases.at[i].set(d_bias)

    start = (d_out, jnp.zeros_like(kernels), jnp.zeros_like(biases))
    d_h, d_kernels, d_biases = jax.lax.fori_loop(0, depth - 1, layer, start)
    return d_h, d_kernels, d_biases, None, None


hidden_stack.defvjp(_stack_fwd, _stack_bwd)


def _padded_layer(
    kernel_key: Array, bias_key: Array, padded: tuple[int, int], fans: tuple[Array, Array], kind: int,
    shape: ArchShape, scheme: Array, scale: Array, bias: Array, bias_std: Array, dtype, draws: initializers.SchemeDraws,
) -> tuple[Array, Array]:
    """One layer of :func:`init_padded`: the unpadded layer's draw with fans ``fans`` (traced),
    embedded at the top left of a ``padded`` (fan_in, fan_out) layer of zeros."""
    (n_in, n_out), (fan_in, fan_out) = padded, fans
    rows, cols = jnp.arange(n_in, dtype=jnp.int32)[:, None], jnp.arange(n_out, dtype=jnp.int32)[None, :]
    real = (rows < fan_in) & (cols < fan_out)
    flat = jnp.where(real, rows * fan_out + cols, jnp.zeros((), jnp.int32))  # where the unpadded (fan_in, fan_out) draw has each entry
    unit = initializers.unit_draw(kernel_key, (n_in * n_out,), scheme, draws.standard)[flat]
    kernel = initializers.scale_draw(unit, shape.std[kind][scheme], scale, dtype)
    plain = initializers.run_bias(bias_key, n_out, bias, bias_std)
    if not draws.rai:
        bias_values = plain.astype(dtype)
    else:
        rai_scale = scale * shape.rai_std[kind].astype(jnp.asarray(scale).dtype)
        symmetric = initializers.rai_bias_draw(bias_key, n_out, rai_scale, dtype)
        kernel, symmetric = initializers.rai_layer(kernel_key, kernel, symmetric, scheme, fan_in)
        bias_values = initializers.rai_bias(symmetric, scheme, plain, dtype)
    return jnp.where(real, kernel, jnp.zeros_like(kernel)), jnp.where(cols[0] < fan_out, bias_values, 0).astype(dtype)


def init_padded(
    config: models.ModelConfig,
    shape: ArchShape,
    key: Array,
    scheme: Array,
    scale: Array,
    bias: Array,
    bias_std: Array,
    dtype,
    *,
    schemes: Sequence[str] | None = None,
) -> models.Params:
    """θ_0 of a padded MLP: the unpadded ``shape``'s :func:`~lossjax.core.initializers.init_from_scheme`
    draw from ``key``, every other entry 0 (arguments as there; ``config`` is the padded model).

    Layer j of the unpadded net (hidden layers 0..D−1, then the output layer as layer D) draws
    from keys 2j and 2j+1 of ``split(key, 2(D+1))``, the first 2(D+1) keys of
    ``split(key, 2(depth+1))``: the output layer reads keys 2D and 2D+1 at a traced position.
    """
    depth, width, n_inputs, n_outputs = config.depth, config.width, config.n_inputs, config.n_outputs
    keys = jax.random.split(key, 2 * (depth + 1))
    common = dict(shape=shape, scheme=scheme, scale=scale, bias=bias, bias_std=bias_std, dtype=dtype,
                  draws=initializers.scheme_draws(schemes))
    w = shape.width
    layers = {"hidden_0": _padded_layer(keys[0], keys[1], (n_inputs, width), (n_inputs, w), FIRST, **common)}
    if depth >= 2:
        draw = lambda k_kernel, k_bias: _padded_layer(k_kernel, k_bias, (width, width), (w, w), HIDDEN, **common)  # noqa: E731
        skipped = lambda k_kernel, k_bias: (jnp.zeros((width, width), dtype), jnp.zeros((width,), dtype))  # noqa: E731

        def layer(i_keys):  # layers D..depth-1 are skipped: all zero, and not drawn
            i, k_kernel, k_bias = i_keys
            return jax.lax.cond(i < shape.depth, draw, skipped, k_kernel, k_bias)

        layers["hidden"] = jax.lax.map(layer, (jnp.arange(1, depth, dtype=jnp.int32), keys[2 : 2 * depth : 2],
                                               keys[3 : 2 * depth : 2]))
    out = 2 * shape.depth
    layers["output"] = _padded_layer(keys[out], keys[out + 1], (width, n_outputs), (w, n_outputs), OUTPUT, **common)
    return {"params": {name: {"kernel": k, "bias": b} for name, (k, b) in layers.items()}}


def true_layers(values: Array, depth: Array) -> Array:
    """A per-layer array of the padded layout (last axis: ``depth_max`` hidden layers then the
    output layer) in the unpadded layout: hidden layers 0..D−1, the output layer at D, NaN after."""
    n = values.shape[-1]
    position = jnp.arange(n, dtype=jnp.int32)
    source = jnp.where(position < depth, position, n - 1)
    moved = jnp.take(values, source, axis=-1)
    return jnp.where(position <= depth, moved, jnp.full_like(moved, jnp.nan))
