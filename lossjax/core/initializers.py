"""Initialisation: θ_0 of a run drawn from its init scheme (a batched axis: the scheme is a traced
index into :data:`INIT_SCHEMES`), or a neuron's explicit (w, b).

A run's draws come from its own key only, in float32, then are scaled and cast to the run's dtype,
so θ_0 does not depend on the dtype's rounding of the draws, on the block the run is vmapped in,
or on what else the grid holds (:func:`unit_draw`'s ``draws`` and :func:`init_from_scheme`'s
``rai`` only leave out of the program what no run of the grid uses).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp

from lossjax.core.models import ModelConfig, Params

Array = jax.Array



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


#: The standard draws of :func:`unit_draw`, each from its own half of the run's key.
STANDARD_DRAWS = ("normal", "uniform")


def standard_draws(schemes: Sequence[str]) -> tuple[str, ...]:
    """The standard draws that runs of ``schemes`` take (RAI's symmetric part is a normal draw)."""
    kinds = {"uniform" if INIT_SCHEMES[s].distribution == "uniform" else "normal" for s in schemes}
    return tuple(d for d in STANDARD_DRAWS if d in kinds)


class SchemeDraws(NamedTuple):
    """The draws a program compiles in for the init schemes its grid holds (:func:`scheme_draws`)."""

    rai: bool  # RAI's index and Beta draws
    standard: tuple[str, ...]  # the standard draws of :func:`unit_draw`, among STANDARD_DRAWS


def scheme_draws(schemes: Sequence[str] | None) -> SchemeDraws:
    """The draws runs of ``schemes`` take (``None``: every scheme of :data:`INIT_SCHEMES`)."""
    names = tuple(INIT_SCHEMES) if schemes is None else tuple(schemes)
    return SchemeDraws("rai" in names, standard_draws(names))


def unit_draw(key: Array, shape, scheme: Array, draws: Sequence[str] = STANDARD_DRAWS) -> Array:
    """Standard draws of the scheme's distribution (float32): N(0, 1), or U[−√3, √3] for uniform schemes.

    ``draws`` (static, see :func:`standard_draws`) are the distributions the grid's schemes take;
    the others are left out of the program (the threefry bits of the uniform draw cost as much as
    the normal one's: a grid of normal schemes draws its θ_0 about 1.6x faster). A run's values are
    the same bit for bit whatever else ``draws`` holds, as long as it holds the run's own.
    """
    k_normal, k_uniform = jax.random.split(key)
    drawn = {}
    if "normal" in draws:
        drawn["normal"] = jax.random.normal(k_normal, shape, jnp.float32)
    if "uniform" in draws:
        drawn["uniform"] = jax.random.uniform(k_uniform, shape, jnp.float32, -math.sqrt(3.0), math.sqrt(3.0))
    if len(drawn) == 1:
        return _materialised(next(iter(drawn.values())))
    uniform_table = jnp.asarray([s.distribution == "uniform" for s in INIT_SCHEMES.values()])
    return _materialised(jnp.where(uniform_table[scheme], drawn["uniform"], drawn["normal"]))


def _materialised(draws: Array) -> Array:
    """``draws`` as stored values: XLA may not fuse the arithmetic that follows into the random
    transform (it did, differently for a constant and a traced scale, by one unit in the last
    place), so a padded architecture's θ_0 (:mod:`lossjax.core.padded`) is bitwise its own."""
    return jax.lax.optimization_barrier(draws)


def scale_draw(unit: Array, std: Array, scale: Array, dtype) -> Array:
    """Standard draws times the scheme's standard deviation (float32) and the run's scale."""
    scale = jnp.asarray(scale)
    return ((unit * std).astype(scale.dtype) * scale).astype(dtype)


def _draw(key: Array, shape, fan_in: int, fan_out: int, scheme: Array, scale: Array, dtype, draws: Sequence[str]) -> Array:
    std_table, _ = _scheme_tables(fan_in, fan_out, dtype)
    return scale_draw(unit_draw(key, shape, scheme, draws), std_table[scheme], scale, dtype)


def rai_bias_draw(bias_key: Array, fan_out: int, rai_scale: Array, dtype) -> Array:
    """RAI's bias: the (d+1)-th entry of each unit's symmetric draw, its own N(0, 1) draw times ``rai_scale``."""
    unit = _materialised(jax.random.normal(jax.random.fold_in(bias_key, 0x5241), (fan_out,), jnp.float32))
    return (unit.astype(rai_scale.dtype) * rai_scale).astype(dtype)


def run_bias(bias_key: Array, fan_out: int, bias: Array, bias_std: Array) -> Array:
    """The run's bias ``bias + bias_std × N(0, 1)`` (one draw per unit from ``bias_key``), in the
    dtype of ``bias``, as a stored value: XLA fused the product and the sum differently with and
    without RAI's draws in the program (one unit in the last place), so it is computed alone."""
    noise = jax.random.normal(bias_key, (fan_out,), jnp.float32).astype(jnp.asarray(bias_std).dtype)
    return _materialised(bias + bias_std * noise)


def rai_bias(symmetric: Array, scheme: Array, plain: Array, dtype) -> Array:
    """The bias of a layer drawn with RAI's draws compiled in: RAI's part plus the run's bias
    ``plain`` (:func:`run_bias`), or ``plain`` alone for other schemes."""
    is_rai = jnp.asarray(scheme) == list(INIT_SCHEMES).index("rai")
    return jnp.where(is_rai, symmetric.astype(plain.dtype) + plain, plain).astype(dtype)


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
    schemes: Sequence[str] | None = None,
) -> Params:
    """Draws parameters for one run; every argument but ``config``, ``dtype`` and ``schemes`` may be traced.

    Weights: mean 0, standard deviation ``scale × std_scheme(fan_in, fan_out)``.
    Biases: ``bias + bias_std × N(0, 1)`` (constant when ``bias_std`` is 0).
    RAI: each unit's weights and bias drawn together, one entry asymmetric (:func:`rai_layer`).
    ``schemes`` (static; ``None``: all of :data:`INIT_SCHEMES`) are the schemes the grid's runs
    use: the draws no run takes are left out of the program (RAI's Beta draws double the compile
    time of a small MLP; see :func:`unit_draw` for the uniform ones); the values are the same.
    """
    rai, draws = scheme_draws(schemes)
    fan_outs = config.layer_sizes
    keys = jax.random.split(key, 2 * len(fan_outs))

    def draw_layer(kernel_key, bias_key, fan_in, fan_out):
        kernel = _draw(kernel_key, (fan_in, fan_out), fan_in, fan_out, scheme, scale, dtype, draws)
        plain = run_bias(bias_key, fan_out, bias, bias_std)
        if not rai:
            return kernel, plain.astype(dtype)
        rai_scale = (scale * jnp.asarray(RAI_SIGMA / math.sqrt(fan_in), jnp.float32).astype(jnp.asarray(scale).dtype))
        symmetric = rai_bias_draw(bias_key, fan_out, rai_scale, dtype)
        kernel, symmetric = rai_layer(kernel_key, kernel, symmetric, scheme)
        return kernel, rai_bias(symmetric, scheme, plain, dtype)

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
