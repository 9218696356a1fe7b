"""Models: a single neuron and a multi-layer perceptron (their θ_0: :mod:`lossjax.core.initializers`).

Both models map inputs ``x`` of shape ``(n, n_inputs)`` to a :class:`~lossjax.core.layout.Forward`:

- ``logits``: the output layer's pre-activation ``z``, shape ``(n, n_outputs)``;
- ``pre_activations``: a tuple with the pre-activations of every group of layers that have units
  (:attr:`ModelConfig.layer_groups`), hidden layers first and the output layer last (so a single
  neuron has one entry, an unstacked MLP of depth ``D`` has ``D + 1``), each in the layout the
  pass computed it in (``units_first``). The engine uses them to measure saturated and dead
  units per layer.

The output activation is applied by the engine, not the model, so that losses defined on
logits (numerically stable cross-entropy, hinge) and losses defined on outputs (the texts'
quadratic cost) see the same model.

Parameters are plain pytrees of arrays. A neuron has ``{"w": (n_inputs,), "b": ()}``. An MLP
has flax's layout ``{"params": {"hidden_0": {"kernel", "bias"}, ..., "output": {...}}}``;
it is defined with ``flax.linen`` (``impl="flax"``, the default) and, for the benchmark and
the equivalence tests, again as a plain function of the same pytree (``impl="pytree"``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Literal

import flax.linen as nn
import jax
import jax.numpy as jnp

from lossjax.core.layout import Forward, dense, samples_major, units_major

Array = jax.Array
Params = dict

MODEL_IMPLS = ("auto", "scan", "flax", "pytree")
#: ``impl = "auto"`` writes an MLP this deep or deeper with ``lax.scan``, shallower ones unrolled.
SCAN_MIN_DEPTH = 4
MODEL_KINDS = ("neuron", "mlp")  # the keys of ARCHITECTURES


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Static description of a model: everything that changes the compiled program.

    Attributes:
      kind: ``"neuron"`` (one unit: ``z = w·x + b``) or ``"mlp"``.
      n_inputs: number of input features.
      n_outputs: number of output units (1 for binary tasks, K for K classes).
      depth: number of hidden layers of an MLP (0 for a neuron; an MLP of depth 0 is a
        generalised linear model with ``n_outputs`` units).
      width: units per hidden layer.
      hidden_activation: registry name of the hidden layers' activation.
      activation: registry name of the output activation.
      impl: how an MLP is written: ``"scan"`` (hidden layers 2..depth stacked and run by
        ``lax.scan``, so the compiled program does not grow with depth), ``"flax"``
        (``flax.linen`` module, one layer after another) or ``"pytree"`` (the same as a plain
        function); ``"auto"`` (default) is ``"scan"`` from depth :data:`SCAN_MIN_DEPTH` on and
        ``"pytree"`` below it, where unrolled layers compile faster (measured in ``lossjax
        bench``). All give the same numbers up to float rounding (tested in float64 to 1e-12).
      padded: an MLP whose ``depth`` and ``width`` are the largest of a group of architectures,
        each trained inside it with its own depth and width given per call (see
        :mod:`lossjax.core.padded`); laid out as ``impl = "scan"``.
    """

    kind: Literal["neuron", "mlp"] = "neuron"
    n_inputs: int = 1
    n_outputs: int = 1
    depth: int = 0
    width: int = 0
    hidden_activation: str = "identity"
    activation: str = "sigmoid"
    impl: Literal["auto", "scan", "flax", "pytree"] = "auto"
    padded: bool = False

    def __post_init__(self):
        if self.padded:
            if self.kind != "mlp" or self.depth < 1:
                raise ValueError(f"only MLPs of depth >= 1 can be padded, got kind {self.kind!r}, depth {self.depth}")
            object.__setattr__(self, "impl", "scan")
        if self.impl == "auto":
            object.__setattr__(self, "impl", "scan" if self.depth >= SCAN_MIN_DEPTH else "pytree")
        if self.kind not in ARCHITECTURES:
            raise ValueError(f"unknown model kind {self.kind!r}; allowed: {', '.join(ARCHITECTURES)}")
        if self.impl not in MODEL_IMPLS:
            raise ValueError(f"unknown model impl {self.impl!r}; allowed: {', '.join(MODEL_IMPLS)}")

    @property
    def architecture(self) -> "Architecture":
        """The object that knows this kind of model's layers and parameter layout."""
        return ARCHITECTURES[self.kind]

    @property
    def layer_sizes(self) -> tuple[int, ...]:
        """Units per layer that has units: hidden layers then the output layer."""
        return self.architecture.layer_sizes(self)

    @property
    def fan_ins(self) -> tuple[int, ...]:
        """Inputs feeding each layer, in the order of ``layer_sizes``."""
        return (self.n_inputs,) + self.layer_sizes[:-1]

    @property
    def n_layers(self) -> int:
        return len(self.layer_sizes)

    @property
    def layer_names(self) -> tuple[str, ...]:
        return self.architecture.layer_names(self)

    @property
    def layer_groups(self) -> tuple[tuple[int, bool], ...]:
        """How the layers are stored, in order: ``(count, stacked)`` per group of layers.

        A stacked group holds ``count`` identical layers along a leading axis (its
        pre-activations and parameters carry that axis); an unstacked one is a single layer.
        """
        return self.architecture.layer_groups(self)


# --------------------------------------------------------------------------------------
# Forward passes
# --------------------------------------------------------------------------------------


def neuron_apply(params: Params, x: Array) -> Forward:
    """One neuron, ``z = Σ_i w_i x_i + b``, written elementwise (no matmul) for speed."""
    z = jnp.sum(x * params["w"][None, :], axis=-1, keepdims=True) + params["b"]
    return Forward(z, (z,), (False,))


class MLP(nn.Module):
    """A fully connected network: ``depth`` hidden layers of ``width`` units, then the output layer.

    Returns the output pre-activation and the pre-activation of every layer (see module doc).
    Depth 0 is a single dense layer; depth 1 has one hidden layer; and so on.
    """

    depth: int
    width: int
    n_outputs: int
    hidden_activation: Callable[[Array], Array]

    @nn.compact
    def __call__(self, x: Array) -> tuple[Array, tuple[Array, ...]]:
        pre_activations = []
        h = x
        for i in range(self.depth):
            z = nn.Dense(self.width, name=f"hidden_{i}", param_dtype=x.dtype, dtype=x.dtype)(h)
            pre_activations.append(z)
            h = self.hidden_activation(z)
        z = nn.Dense(self.n_outputs, name="output", param_dtype=x.dtype, dtype=x.dtype)(h)
        pre_activations.append(z)
        return z, tuple(pre_activations)


def _first_width(layers: dict) -> int:
    first = layers["hidden_0"] if "hidden_0" in layers else layers["output"]
    return first["kernel"].shape[-1]


def output_forward(h: Array, layer: dict, first: bool, hidden: list[Array]) -> Forward:
    """The output ``layer`` on the last hidden output ``h``, and the MLP pass's
    :class:`~lossjax.core.layout.Forward`: the ``hidden`` groups' pre-activations laid out as
    ``first`` says (units-major where True), the logits samples-major."""
    z = samples_major(dense(h, layer["kernel"], layer["bias"], first), first)
    return Forward(z, (*hidden, z), (first,) * len(hidden) + (False,))


def mlp_apply_pytree(params: Params, x: Array, hidden_activation: Callable[[Array], Array]) -> Forward:
    """The same MLP as :class:`MLP`, as a plain function of the same parameter pytree (laid out
    by :func:`~lossjax.core.layout.units_major`; the same outputs up to float rounding)."""
    layers = params["params"]
    names = sorted((k for k in layers if k.startswith("hidden_")), key=lambda k: int(k[7:]))
    first = units_major(x.shape[0], _first_width(layers))
    hidden = []
    h = x.T if first else x
    for name in names:
        z = dense(h, layers[name]["kernel"], layers[name]["bias"], first)
        hidden.append(z)
        h = hidden_activation(z)
    return output_forward(h, layers["output"], first, hidden)


def mlp_apply_scan(params: Params, x: Array, hidden_activation: Callable[[Array], Array]) -> Forward:
    """The same MLP with hidden layers 2..depth stacked (``params["params"]["hidden"]``, kernels
    (depth − 1, width, width)) and run by one ``lax.scan``: the program's size does not grow with
    depth. Pre-activations come as groups (see :attr:`ModelConfig.layer_groups`): the first
    hidden layer (n, width), the stacked ones (depth − 1, n, width), the output (n, K); the
    hidden ones transposed where the pass is units-major (:func:`~lossjax.core.layout.units_major`)."""
    layers = params["params"]
    first = units_major(x.shape[0], _first_width(layers))
    hidden = []
    h = x.T if first else x
    if "hidden_0" in layers:
        z = dense(h, layers["hidden_0"]["kernel"], layers["hidden_0"]["bias"], first)
        hidden.append(z)
        h = hidden_activation(z)
    if "hidden" in layers:

        def layer(h, kernel_bias):
            z = dense(h, *kernel_bias, first)
            return hidden_activation(z), z

        h, zs = jax.lax.scan(layer, h, (layers["hidden"]["kernel"], layers["hidden"]["bias"]))
        hidden.append(zs)
    return output_forward(h, layers["output"], first, hidden)


def make_apply(config: ModelConfig, hidden_activation: Callable[[Array], Array]) -> Callable[[Params, Array], Forward]:
    """Returns ``apply(params, x) -> Forward`` (logits and pre-activations) for ``config``."""
    return config.architecture.make_apply(config, hidden_activation)


class Architecture:
    """What differs between kinds of model: layers, forward pass and parameter layout.

    Parameters are always built from per-layer ``(kernel (fan_in, fan_out), bias (fan_out,))``
    pairs (:meth:`pack`) and read back per layer (:meth:`layers`).
    """

    def layer_sizes(self, config: ModelConfig) -> tuple[int, ...]:
        raise NotImplementedError

    def layer_names(self, config: ModelConfig) -> tuple[str, ...]:
        raise NotImplementedError

    def make_apply(self, config: ModelConfig, hidden_activation: Callable[[Array], Array]):
        raise NotImplementedError

    def pack(self, config: ModelConfig, layers: list[tuple[Array, Array]]) -> Params:
        raise NotImplementedError

    def layers(self, config: ModelConfig, params: Params) -> tuple[tuple[Array, Array], ...]:
        """(weights, bias) of each group of layers (see :attr:`ModelConfig.layer_groups`)."""
        raise NotImplementedError

    def layer_groups(self, config: ModelConfig) -> tuple[tuple[int, bool], ...]:
        return ((1, False),) * config.n_layers


class Neuron(Architecture):
    """One unit ``z = w·x + b``; parameters ``{"w": (n_inputs,), "b": ()}``."""

    def layer_sizes(self, config):
        return (1,)

    def layer_names(self, config):
        return ("output",)

    def make_apply(self, config, hidden_activation):
        return neuron_apply

    def pack(self, config, layers):
        kernel, b = layers[0]
        return {"w": kernel[:, 0], "b": b[0]}

    def layers(self, config, params):
        return ((params["w"], params["b"]),)


class Perceptron(Architecture):
    """``depth`` hidden layers of ``width`` units, then the output layer (flax's parameter layout)."""

    def layer_sizes(self, config):
        return (config.width,) * config.depth + (config.n_outputs,)

    def layer_names(self, config):
        return tuple(f"hidden_{i}" for i in range(config.depth)) + ("output",)

    def make_apply(self, config, hidden_activation):
        if config.padded:
            raise ValueError("a padded MLP's forward pass needs its architecture: lossjax.core.padded.mlp_apply_padded")
        if config.impl == "scan":
            return lambda params, x: mlp_apply_scan(params, x, hidden_activation)
        if config.impl == "pytree":
            return lambda params, x: mlp_apply_pytree(params, x, hidden_activation)
        module = MLP(config.depth, config.width, config.n_outputs, hidden_activation)

        def apply(params, x):  # flax's Dense: samples-major
            z, pre_activations = module.apply(params, x)
            return Forward(z, pre_activations, (False,) * len(pre_activations))

        return apply

    def layer_groups(self, config):
        if config.impl != "scan" or config.depth < 2:
            return ((1, False),) * config.n_layers
        return ((1, False), (config.depth - 1, True), (1, False))

    def pack(self, config, layers):
        if config.impl == "scan" and config.depth >= 2:
            first, (kernels, biases), output = layers
            groups = {"hidden_0": first, "hidden": (kernels, biases), "output": output}
            return {"params": {n: {"kernel": k, "bias": b} for n, (k, b) in groups.items()}}
        return {"params": {n: {"kernel": k, "bias": b} for n, (k, b) in zip(config.layer_names, layers)}}

    def layers(self, config, params):
        layers = params["params"]
        if config.impl == "scan" and config.depth >= 2:
            names = ("hidden_0", "hidden", "output")
        else:
            names = config.layer_names
        return tuple((layers[n]["kernel"], layers[n]["bias"]) for n in names)


#: The kinds of model, by the name a sweep file uses (``[model] kind``).
ARCHITECTURES: dict[str, Architecture] = {"neuron": Neuron(), "mlp": Perceptron()}


def layer_params(config: ModelConfig, params: Params) -> tuple[tuple[Array, Array], ...]:
    """(weights, bias) of each layer, in the order of ``config.layer_sizes`` (stacked groups split)."""
    layers = []
    for (kernel, bias), (_, stacked) in zip(config.architecture.layers(config, params), config.layer_groups):
        layers.extend(zip(kernel, bias) if stacked else [(kernel, bias)])
    return tuple(layers)


def layer_kernels(config: ModelConfig, params: Params) -> tuple[Array, ...]:
    """The weight array of each layer, in the order of ``config.layer_sizes``."""
    return tuple(kernel for kernel, _ in layer_params(config, params))
