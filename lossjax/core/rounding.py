"""How an update is added to the parameters: θ_{t+1} = θ_t ⊕ Δθ_t in the parameters' dtype.

In bfloat16 (8 significant bits) and float16 (11) a non-zero update smaller than half a unit in
the last place (ulp) of the weight rounds away under round-to-nearest: θ ⊕ Δθ == θ although
Δθ ≠ 0 (Zamirai, Zhang, Aberger & De Sa 2020, "Revisiting BFloat16 Training", arXiv 2010.06192,
observe that nearest rounding "often cancels small updates" and propose stochastic rounding and
Kahan summation of the weight update). The sweep key ``[train] update_rounding`` picks one of
:data:`UPDATE_ROUNDINGS`:

``nearest``
    ``optax.apply_updates``: θ + Δθ computed and rounded to nearest in the parameters' dtype
    (what every run did before the key existed; bitwise the same results).
``stochastic``
    θ + Δθ computed in float32 (θ and Δθ are exact in it: Δθ is the optimiser's update, which the
    optimiser contract of :mod:`lossjax.core.optimizers` has already rounded once from float32 to
    the parameters' dtype; the sum is rounded to float32, 16 or more bits below the parameters'
    precision), then rounded to one of the two neighbouring
    values of the parameters' dtype, the upper one with probability equal to its
    share of the distance: E[round(x)] = x (unbiased). One uniform draw per parameter element,
    keyed per run and step by ``fold_in(fold_in(key(seed), 3), t)``. For float32 and float64
    parameters the sum is computed in the parameters' dtype and rounded to nearest: the same
    results as ``nearest`` (there is no wider type to round from on every backend).
``kahan``
    Kahan-compensated summation (Kahan 1965) in the parameters' dtype, with one compensation
    buffer c (same dtype and shape as θ, starting at 0) carried through the training scan:
    ``y = Δθ − c; s = θ + y; c = (s − θ) − y; θ = s``. The part of the update that rounding drops
    is kept in c and added back at the next step, so many updates below half an ulp add up until
    they move the weight. It applies in every dtype (in float32/float64 too, where it changes the
    last bits). The buffer is in the parameters' dtype, not float32 master weights.

Overflow to ±inf and NaN follow the sum: a non-finite sum is kept as nearest rounding gives it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

Array = jax.Array

UPDATE_ROUNDINGS = {
    "nearest": "θ + Δθ rounded to nearest in the parameters' dtype (optax.apply_updates)",
    "stochastic": "θ + Δθ in float32, rounded stochastically (unbiased) to bfloat16/float16; nearest in float32/64",
    "kahan": "Kahan-compensated θ + Δθ with a compensation buffer in the parameters' dtype",
}
#: The ``fold_in`` index of the stochastic-rounding keys (0: init, 1: batches, 2: score samples).
STOCHASTIC_KEY = 3
_LOW_PRECISION = (jnp.bfloat16, jnp.float16)


def check_rounding(name: str) -> None:
    if name not in UPDATE_ROUNDINGS:
        raise ValueError(f"unknown update_rounding {name!r}; allowed: {', '.join(UPDATE_ROUNDINGS)}")


def nearest_value(x: Array, dtype) -> Array:
    """The value float32 ``x`` rounds to (to nearest, ties to even) in ``dtype`` (bfloat16 or
    float16), as float32: ``x.astype(dtype).astype(float32)``, written without that round trip.

    XLA may drop such a round trip as excess precision (``xla_allow_excess_precision``), and
    does on a GPU: on an H200 every stochastically rounded update came out as the nearest value.
    ``lax.reduce_precision`` is never dropped; it flushes float16's subnormals to zero, so below
    float16's smallest normal the value is rounded on float16's fixed grid instead (multiples
    of 2^-24: exact scalings of ``x`` and ``jnp.round``, ties to even). bfloat16 has float32's
    exponent range, so there ``reduce_precision`` is the whole answer."""
    info = jnp.finfo(dtype)
    normal = jax.lax.reduce_precision(x, info.nexp, info.nmant)
    if dtype != jnp.float16:
        return normal
    step = jnp.float32(info.smallest_subnormal)
    return jnp.where(jnp.abs(x) < jnp.float32(info.smallest_normal), jnp.round(x / step) * step, normal)


def round_stochastic(x: Array, dtype, uniform: Array) -> Array:
    """Rounds float32 ``x`` to ``dtype`` (bfloat16 or float16): to the neighbour above with
    probability (x − lo) / (hi − lo), below otherwise; ``uniform`` holds draws in [0, 1) of
    ``x``'s shape. Values ``dtype`` holds exactly are returned unchanged. Computed in float32 from
    :func:`nearest_value`; the one conversion to ``dtype`` is of a value it holds exactly."""
    near32 = nearest_value(x, dtype)
    above = near32 < x
    towards = jnp.where(above, jnp.inf, -jnp.inf).astype(dtype)
    other32 = jnp.nextafter(near32.astype(dtype), towards).astype(jnp.float32)  # the neighbour on x's other side
    lo32, hi32 = jnp.where(above, near32, other32), jnp.where(above, other32, near32)
    p_up = (x - lo32) / (hi32 - lo32)
    rounded = jnp.where(uniform < p_up, hi32, lo32)
    return jnp.where((near32 == x) | ~jnp.isfinite(near32) | ~jnp.isfinite(other32), near32, rounded).astype(dtype)


def init_state(rounding: str, params):
    """The carried rounding state: Kahan's compensation buffer (zeros like θ), else ``None``."""
    return jax.tree_util.tree_map(jnp.zeros_like, params) if rounding == "kahan" else None


def apply(rounding: str, params, updates, state, key: Array):
    """(θ ⊕ Δθ, new state) by the rule ``rounding`` (see the module docstring)."""
    if rounding == "kahan":
        # lax.reduce_precision makes every intermediate rounding explicit. XLA may compute
        # bfloat16/float16 arithmetic in float32 and is allowed to skip roundings in between
        # (xla_allow_excess_precision, on by default), which would make (s − θ) − y exactly 0.
        # A safeguard: on XLA:CPU the tests here also pass without it.
        pin = lambda a: jax.lax.reduce_precision(a, jnp.finfo(a.dtype).nexp, jnp.finfo(a.dtype).nmant)  # noqa: E731

        def kahan(p, u, c):
            y = pin(u.astype(p.dtype) - c)
            s = pin(p + y)
            return s, pin(pin(s - p) - y)

        pairs = jax.tree_util.tree_map(kahan, params, updates, state)
        first = lambda i: jax.tree_util.tree_map(lambda _, pair: pair[i], params, pairs)  # noqa: E731
        return first(0), first(1)
    leaves, treedef = jax.tree_util.tree_flatten(params)
    if rounding == "nearest" or not any(p.dtype in _LOW_PRECISION for p in leaves):
        return optax.apply_updates(params, updates), state
    keys = jax.random.split(key, len(leaves))
    out = []
    for p, u, k in zip(leaves, treedef.flatten_up_to(updates), keys):
        if p.dtype in _LOW_PRECISION:
            exact = p.astype(jnp.float32) + u.astype(jnp.float32)
            p = round_stochastic(exact, p.dtype, jax.random.uniform(k, p.shape, jnp.float32))
        else:
            p = (p + u.astype(p.dtype)).astype(p.dtype)
        out.append(p)
    return jax.tree_util.tree_unflatten(treedef, out), state
