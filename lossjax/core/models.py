"""Models: a single neuron and a multi-layer perceptron, with batched initialisation.

Both models map inputs ``x`` of shape ``(n, n_inputs)`` to ``(logits, layers)``:

- ``logits``: the output layer's pre-activation ``z``, shape ``(n, n_outputs)``;
- ``layers``: a tuple with the pre-activation of every layer that has units, hidden layers
  first and the output layer last (so a single neuron has one entry, an MLP of depth ``D``
  has ``D + 1``). The engine uses them to measure saturated and dead units per layer.

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
import functools
import math
from collections.abc import Callable
from typing import Literal, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from lossjax.core.layout import dense, samples_major, units_major

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


def neuron_apply(params: Params, x: Array) -> tuple[Array, tuple[Array, ...]]:
    """One neuron, ``z = Σ_i w_i x_i + b``, written elementwise (no matmul) for speed."""
    z = jnp.sum(x * params["w"][None, :], axis=-1, keepdims=True) + params["b"]
    return z, (z,)


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


def mlp_apply_pytree(
    params: Params, x: Array, hidden_activation: Callable[[Array], Array]
) -> tuple[Array, tuple[Array, ...]]:
    """The same MLP as :class:`MLP`, as a plain function of the same parameter pytree (laid out
    by :func:`~lossjax.core.layout.units_major`; the same outputs up to float rounding)."""
    layers = params["params"]
    names = sorted((k for k in layers if k.startswith("hidden_")), key=lambda k: int(k[7:]))
    first = units_major(x.shape[0], _first_width(layers))
    pre_activations = []
    h = x.T if first else x
    for name in names:
        z = dense(h, layers[name]["kernel"], layers[name]["bias"], first)
        pre_activations.append(samples_major(z, first))
        h = hidden_activation(z)
    z = samples_major(dense(h, layers["output"]["kernel"], layers["output"]["bias"], first), first)
    pre_activations.append(z)
    return z, tuple(pre_activations)


def mlp_apply_scan(
    params: Params, x: Array, hidden_activation: Callable[[Array], Array]
) -> tuple[Array, tuple[Array, ...]]:
    """The same MLP with hidden layers 2..depth stacked (``params["params"]["hidden"]``, kernels
    (depth − 1, width, width)) and run by one ``lax.scan``: the program's size does not grow with
    depth. Pre-activations come as groups (see :attr:`ModelConfig.layer_groups`): the first
    hidden layer (n, width), the stacked ones (depth − 1, n, width), the output (n, K).
    Laid out by :func:`~lossjax.core.layout.units_major`."""
    layers = params["params"]
    first = units_major(x.shape[0], _first_width(layers))
    pre_activations = []
    h = x.T if first else x
    if "hidden_0" in layers:
        z = dense(h, layers["hidden_0"]["kernel"], layers["hidden_0"]["bias"], first)
        pre_activations.append(samples_major(z, first))
        h = hidden_activation(z)
    if "hidden" in layers:

        def layer(h, kernel_bias):
            z = dense(h, *kernel_bias, first)
            return hidden_activation(z), z

        h, zs = jax.lax.scan(layer, h, (layers["hidden"]["kernel"], layers["hidden"]["bias"]))
        pre_activations.append(samples_major(zs, first))
    z = samples_major(dense(h, layers["output"]["kernel"], layers["output"]["bias"], first), first)
    pre_activations.append(z)
    return z, tuple(pre_activations)


def make_apply(
    config: ModelConfig, hidden_activation: Callable[[Array], Array]
) -> Callable[[Params, Array], tuple[Array, tuple[Array, ...]]]:
    """Returns ``apply(params, x) -> (logits, pre_activations)`` for ``config``."""
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
        return MLP(config.depth, config.width, config.n_outputs, hidden_activation).apply

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


# --------------------------------------------------------------------------------------
# Initialisation
# --------------------------------------------------------------------------------------

class InitScheme(NamedTuple):
    """A weight initialisation: mean 0, a distribution and a standard deviation from the fans.

    The standard deviation is multiplied by the run's ``init_scale``. Uniform schemes draw from
    U[−√3·std, √3·std].
    """

    name: str
    distribution: Literal["normal", "uniform", "rai"]
    std: Callable[[int, int], float]  # (fan_in, fan_out) -> standard deviation
    description: str


#: Initialisation schemes, by the name a sweep file uses (``[init] scheme``).
INIT_SCHEMES: dict[str, InitScheme] = {
    s.name: s
    for s in (
        InitScheme("normal", "normal", lambda fi, fo: 1.0, "N(0, 1), the texts' era"),
        InitScheme("lecun", "normal", lambda fi, fo: 1.0 / math.sqrt(fi), "N(0, 1/fan_in) (LeCun 1998)"),
        InitScheme(
            "glorot", "normal", lambda fi, fo: math.sqrt(2.0 / (fi + fo)), "N(0, 2/(fan_in+fan_out)) (Xavier/Glorot normal)"
        ),
        InitScheme(
            "glorot_uniform",
            "uniform",
            lambda fi, fo: math.sqrt(2.0 / (fi + fo)),
            "U[±√(6/(fan_in+fan_out))], Glorot & Bengio 2010's 'normalised' init",
        ),
        InitScheme(
            "standard",
            "uniform",
            lambda fi, fo: 1.0 / math.sqrt(3.0 * fi),
            "U[±1/√fan_in], Glorot & Bengio 2010's 'standard' heuristic",
        ),
        InitScheme("he", "normal", lambda fi, fo: math.sqrt(2.0 / fi), "N(0, 2/fan_in) (He et al. 2015)"),
        InitScheme(
            "rai", "rai", lambda fi, fo: RAI_SIGMA / math.sqrt(fi),
            "randomized asymmetric init (Lu et al. 2019): each unit's (w, b) N(0, 0.6007²/fan_in), one entry redrawn from Beta(2, 1)",
        ),
    )
}

#: RAI's symmetric part: N(0, σ²/fan_in) with σ = 0.6007 (see :func:`rai_layer`).
RAI_SIGMA = 0.6007


def init_scheme_index(name: str) -> int:
    """Position of ``name`` in :data:`INIT_SCHEMES` (the batched encoding of the scheme axis)."""
    names = list(INIT_SCHEMES)
    if name not in INIT_SCHEMES:
        raise ValueError(f"unknown init scheme {name!r}; allowed: {', '.join(names)}")
    return names.index(name)


def _scheme_tables(fan_in: int, fan_out: int, dtype) -> tuple[Array, Array]:
    """Per-scheme standard deviation and uniform flag, indexable by a traced scheme index."""
    std = jnp.asarray([s.std(fan_in, fan_out) for s in INIT_SCHEMES.values()], dtype=jnp.float32)
    uniform = jnp.asarray([s.distribution == "uniform" for s in INIT_SCHEMES.values()])
    return std, uniform


def unit_draw(key: Array, shape, scheme: Array) -> Array:
    """Standard draws of the scheme's distribution (float32): N(0, 1), or U[−√3, √3] for uniform schemes."""
    uniform_table = jnp.asarray([s.distribution == "uniform" for s in INIT_SCHEMES.values()])
    k_normal, k_uniform = jax.random.split(key)
    normal = jax.random.normal(k_normal, shape, jnp.float32)
    uniform = jax.random.uniform(k_uniform, shape, jnp.float32, -math.sqrt(3.0), math.sqrt(3.0))
    return _materialised(jnp.where(uniform_table[scheme], uniform, normal))


def _materialised(draws: Array) -> Array:
    """``draws`` as stored values: XLA may not fuse the arithmetic that follows into the random
    transform (it did, differently for a constant and a traced scale, by one unit in the last
    place), so a padded architecture's θ_0 (:mod:`lossjax.core.padded`) is bitwise its own."""
    return jax.lax.optimization_barrier(draws)


def scale_draw(unit: Array, std: Array, scale: Array, dtype) -> Array:
    """Standard draws times the scheme's standard deviation (float32) and the run's scale."""
    scale = jnp.asarray(scale)
    return ((unit * std).astype(scale.dtype) * scale).astype(dtype)


def _draw(key: Array, shape, fan_in: int, fan_out: int, scheme: Array, scale: Array, dtype) -> Array:
    std_table, _ = _scheme_tables(fan_in, fan_out, dtype)
    return scale_draw(unit_draw(key, shape, scheme), std_table[scheme], scale, dtype)


def rai_bias_draw(bias_key: Array, fan_out: int, rai_scale: Array, dtype) -> Array:
    """RAI's bias: the (d+1)-th entry of each unit's symmetric draw, its own N(0, 1) draw times ``rai_scale``."""
    unit = _materialised(jax.random.normal(jax.random.fold_in(bias_key, 0x5241), (fan_out,), jnp.float32))
    return (unit.astype(rai_scale.dtype) * rai_scale).astype(dtype)


def rai_bias(symmetric: Array, scheme: Array, bias: Array, bias_std: Array, noise: Array, dtype) -> Array:
    """The bias of a layer drawn with RAI's draws compiled in: RAI's part (0 for other schemes)
    plus the run's ``bias + bias_std × noise``."""
    is_rai = jnp.asarray(scheme) == list(INIT_SCHEMES).index("rai")
    rai_part = jnp.where(is_rai, symmetric, jnp.zeros_like(symmetric))
    return (rai_part.astype(jnp.asarray(bias).dtype) + bias + bias_std * noise).astype(dtype)


def rai_layer(key: Array, kernel: Array, bias: Array, scheme: Array, fan_in: int | Array | None = None) -> tuple[Array, Array]:
    """Randomized asymmetric initialisation (RAI; Lu, Shin, Su & Karniadakis 2019, arXiv 1903.06733).

    What is implemented, for a layer of fan-in d: each unit j's d + 1 entries (w_1j, …, w_dj, b_j)
    are first drawn i.i.d. N(0, (scale · 0.6007)² / d) (``kernel`` and ``bias`` arrive holding
    these draws); then one index k_j, uniform over the d + 1 entries and independent across
    units, is redrawn from Beta(2, 1) (density 2x on [0, 1], mean 2/3, never negative, never
    scaled). Every layer, the output layer included, is drawn this way. The run's ``init_bias`` and
    ``init_bias_std`` are added to the bias afterwards (0 by default: plain RAI).

    Where it may differ from the paper: the paper's text was not available to this project (a
    second search found stored copies of its abstract and introduction only, and no code by its
    authors; docs/mlp_study.md, "He against RAI"). The
    procedure above (symmetric draw of the whole row with its bias, one uniformly chosen entry
    replaced by a Beta(2, 1) draw) is the issue's reading of it; σ = 0.6007/√d is the constant
    used by public third-party implementations that cite the paper (not checked against its
    derivation), not He's √(2/d).

    Returns the layer's (kernel, bias), unchanged unless ``scheme`` is RAI's index (traced).
    ``fan_in`` (default: the kernel's rows) may be traced and smaller than the kernel's rows: the
    padded layers of :mod:`lossjax.core.padded`, whose rows past ``fan_in`` the caller zeroes.
    """
    rows_in, fan_out = kernel.shape
    fan_in = rows_in if fan_in is None else fan_in
    k_index, k_beta = jax.random.split(jax.random.fold_in(key, 0x5241))
    index = jax.random.randint(k_index, (fan_out,), 0, fan_in + 1)
    beta = jax.random.beta(k_beta, 2.0, 1.0, (fan_out,), jnp.float32)
    rows = jnp.arange(rows_in, dtype=index.dtype)[:, None] == index[None, :]  # (fan_in, fan_out): the redrawn weight
    rai_kernel = jnp.where(rows, beta[None, :].astype(kernel.dtype), kernel)
    rai_bias = jnp.where(index == jnp.asarray(fan_in, index.dtype), beta.astype(bias.dtype), bias)
    is_rai = jnp.asarray(scheme) == list(INIT_SCHEMES).index("rai")
    return jnp.where(is_rai, rai_kernel, kernel), jnp.where(is_rai, rai_bias, bias)


def init_from_scheme(
    config: ModelConfig,
    key: Array,
    scheme: Array,
    scale: Array,
    bias: Array,
    bias_std: Array,
    dtype,
    *,
    rai: bool = True,
) -> Params:
    """Draws parameters for one run; every argument but ``config``, ``dtype`` and ``rai`` may be traced.

    Weights: mean 0, standard deviation ``scale × std_scheme(fan_in, fan_out)``.
    Biases: ``bias + bias_std × N(0, 1)`` (constant when ``bias_std`` is 0).
    ``rai``: each unit's weights and bias drawn together, one entry asymmetric (:func:`rai_layer`).
    ``rai = False`` (static) leaves RAI's draws out of the program, for grids without that scheme:
    its Beta draws double the compile time of a small MLP; the other schemes' values are the same.
    """
    fan_outs = config.layer_sizes
    keys = jax.random.split(key, 2 * len(fan_outs))

    def draw_layer(kernel_key, bias_key, fan_in, fan_out):
        kernel = _draw(kernel_key, (fan_in, fan_out), fan_in, fan_out, scheme, scale, dtype)
        unit = jax.random.normal(bias_key, (fan_out,), jnp.float32)
        noise = unit.astype(jnp.asarray(bias_std).dtype)
        if not rai:
            return kernel, (bias + bias_std * noise).astype(dtype)
        rai_scale = (scale * jnp.asarray(RAI_SIGMA / math.sqrt(fan_in), jnp.float32).astype(jnp.asarray(scale).dtype))
        symmetric = rai_bias_draw(bias_key, fan_out, rai_scale, dtype)
        kernel, symmetric = rai_layer(kernel_key, kernel, symmetric, scheme)
        return kernel, rai_bias(symmetric, scheme, bias, bias_std, noise, dtype)

    layers, i = [], 0
    for count, stacked in config.layer_groups:
        fan_in, fan_out = config.fan_ins[i], fan_outs[i]
        if stacked:  # layer j draws from keys 2j and 2j+1, as if drawn one by one
            draw = functools.partial(draw_layer, fan_in=fan_in, fan_out=fan_out)
            layers.append(jax.vmap(draw)(keys[2 * i : 2 * (i + count) : 2], keys[2 * i + 1 : 2 * (i + count) : 2]))
        else:
            layers.append(draw_layer(keys[2 * i], keys[2 * i + 1], fan_in, fan_out))
        i += count
    return config.architecture.pack(config, layers)


def init_explicit(config: ModelConfig, w: Array, b: Array, dtype) -> Params:
    """A neuron with every input weight equal to ``w`` and bias ``b`` (the texts' (w, b) grid)."""
    if config.kind != "neuron":
        raise ValueError("explicit (w, b) initialisation is only defined for kind = 'neuron'")
    return {"w": jnp.full((config.n_inputs,), w, dtype=dtype), "b": jnp.asarray(b, dtype=dtype)}


def layer_params(config: ModelConfig, params: Params) -> tuple[tuple[Array, Array], ...]:
    """(weights, bias) of each layer, in the order of ``config.layer_sizes`` (stacked groups split)."""
    layers = []
    for (kernel, bias), (_, stacked) in zip(config.architecture.layers(config, params), config.layer_groups):
        layers.extend(zip(kernel, bias) if stacked else [(kernel, bias)])
    return tuple(layers)


def layer_kernels(config: ModelConfig, params: Params) -> tuple[Array, ...]:
    """The weight array of each layer, in the order of ``config.layer_sizes``."""
    return tuple(kernel for kernel, _ in layer_params(config, params))
