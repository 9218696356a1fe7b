"""Elementwise activation functions and their registry.

Every activation is a pure, elementwise ``jax.Array -> jax.Array`` function that works
under ``jit``, ``vmap`` and ``grad`` and returns the dtype of its input (all constants are
Python floats, so they are weakly typed and never promote ``bfloat16``/``float16``).

An :class:`Activation` bundles the function with what the training engine needs to
interpret saturation and dead units: ``max_slope`` (the supremum of ``f'``) and
``flat_region`` (where ``f'`` vanishes or is tiny).

Registry specs are ``name`` or ``name:param=value[,param=value]``::

    get_activation("sigmoid")
    get_activation("leaky_relu:slope=0.1")
    get_activation("piecewise_constant:sharp=100")

References:
  The texts' perceptron discussion: the step activation passes no gradient back. Their MATLAB
  ``QPWC_Neuron`` (quadruple piecewise-constant neuron, three quarter sigmoid steps and a half
  step with a ``sharp`` parameter) is the reference for :func:`piecewise_constant`.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from lossjax.core.params import Param
from lossjax.core.specs import Factory, format_number, lookup

__all__ = [
    "Activation",
    "ACTIVATIONS",
    "get_activation",
    "derivative",
    "identity",
    "sigmoid",
    "tanh",
    "softsign",
    "relu",
    "leaky_relu",
    "gelu",
    "step",
    "piecewise_constant",
    "piecewise_constant_max_slope",
]


class Activation(NamedTuple):
    """An elementwise activation with the facts the engine uses to read its gradients.

    Attributes:
      name: registry spec in canonical form, e.g. ``"sigmoid"``,
        ``"piecewise_constant:sharp=100"``.
      fn: elementwise, pure function; preserves dtype; works under jit/vmap/grad.
      max_slope: ``sup_z f'(z)`` of the derivative that ``jax.grad`` sees (for a
        straight-through activation: of the surrogate backward slope).
      description: one line, shown by ``lossjax list``.
      flat_region: one line, where ``f'`` vanishes or is tiny.
    """

    name: str
    fn: Callable[[jax.Array], jax.Array]
    max_slope: float
    description: str
    flat_region: str


# --------------------------------------------------------------------------------------
# Elementwise functions.
# --------------------------------------------------------------------------------------


def identity(z: jax.Array) -> jax.Array:
    """Identity ``f(z) = z``; ``f'(z) = 1`` everywhere."""
    return jnp.asarray(z)


def sigmoid(z: jax.Array) -> jax.Array:
    """Logistic sigmoid ``σ(z) = 1 / (1 + exp(-z))``; ``σ'(z) = σ(z)(1 − σ(z)) ≤ 1/4``.

    Uses ``jax.nn.sigmoid`` (``lax.logistic``), whose derivative is computed from the
    output as ``σ(1 − σ)``: once ``σ(z)`` rounds to exactly 1 (float32: ``z ≳ 16.6``) the
    derivative is exactly 0.
    """
    return jax.nn.sigmoid(z)


def tanh(z: jax.Array) -> jax.Array:
    """Hyperbolic tangent; ``tanh'(z) = 1 − tanh(z)² ≤ 1``."""
    return jnp.tanh(z)


def softsign(z: jax.Array) -> jax.Array:
    """Softsign ``z / (1 + |z|)``; ``f'(z) = 1 / (1 + |z|)² ≤ 1`` (polynomial, not exponential, decay)."""
    return z / (1.0 + jnp.abs(z))


def relu(z: jax.Array) -> jax.Array:
    """Rectified linear unit ``max(z, 0)``; ``f'(z) = 1`` for ``z > 0`` and 0 for ``z ≤ 0``
    (``jax.nn.relu`` takes the derivative at 0 to be 0)."""
    return jax.nn.relu(z)


def leaky_relu(z: jax.Array, *, slope: float = 0.01) -> jax.Array:
    """Leaky ReLU ``z`` for ``z ≥ 0`` else ``slope·z``; ``f'`` is 1 or ``slope``."""
    return jnp.where(z >= 0, z, slope * z)


def gelu(z: jax.Array) -> jax.Array:
    """Exact GELU ``z·Φ(z)`` with the Gaussian CDF ``Φ`` written with ``erf`` (not the tanh
    approximation); ``f'(z) = Φ(z) + z·φ(z)``, maximal at ``z = √2`` (≈ 1.1289)."""
    return jax.nn.gelu(z, approximate=False)


def step(z: jax.Array) -> jax.Array:
    """Heaviside step: 1 for ``z > 0`` else 0 (so ``step(0) = 0``).

    ``jax.grad`` gives exactly 0 everywhere (the output does not depend on ``z`` through any
    differentiable operation), which is the point of the text on non-differentiable metrics: a perceptron passes no gradient
    back. The true derivative is 0 for ``z ≠ 0`` and undefined (a Dirac delta) at 0.
    """
    z = jnp.asarray(z)
    return jnp.where(z > 0, jnp.ones_like(z), jnp.zeros_like(z))


def piecewise_constant(z: jax.Array, *, sharp: float = 100.0) -> jax.Array:
    """The quadruple piecewise-constant (QPWC) neuron of the text on non-differentiable metrics, vectorised.

    A literal, branch-for-branch port of the MATLAB ``QPWC_Neuron`` loop::

        s(z) = 0                                              z <= 0
             = 0.25 σ(sharp (z − 0.125)/0.25)                 0    < z <= 0.25
             = 0.25 σ(sharp (z − 0.375)/0.25) + 0.25          0.25 < z <= 0.5
             = 0.25 σ(sharp (z − 0.625)/0.25) + 0.5           0.5  < z <= 0.75
             = 0.5  σ(sharp (z − 1)/0.5)      + 0.75          0.75 < z <  1
             = 1                                              z >= 1

    with ``σ(u) = 1/(1 + exp(−u))``. Three sigmoid steps of height 1/4 centred at 0.125,
    0.375, 0.625, and a last *half* sigmoid of height 1/2 (only its lower half is used, so
    ``s → 1`` as ``z → 1⁻``). ``jax.grad`` gives the MATLAB ``ds``:
    ``sharp·σ(u)(1 − σ(u))`` on every piece (the 1/0.25 and 1/0.5 factors cancel), 0 for
    ``z <= 0`` and ``z >= 1``.

    Gradient at the junctures 0.25 / 0.5 / 0.75: mathematically
    ``sharp·e^{−sharp/2}/(1 + e^{−sharp/2})²`` (≈ 1.9e-20 for sharp = 100); in float64 and
    lower ``σ(sharp/2)`` rounds to exactly 1, so both the MATLAB ``ds`` and ``jax.grad`` here
    are exactly 0 there. Just right of a juncture the gradient is tiny but not exactly 0
    (it is ``sharp·σ(−sharp/2) ≈ 1.9e-20``, which MATLAB's ``ds`` loses to cancellation in
    ``s − 0.25``). At ``z = 1`` the derivative jumps from ``sharp/4`` (left limit) to 0.
    The juncture gradient is only negligible for large ``sharp``: for ``sharp = 10`` it is
    ``10·σ'(5) ≈ 0.066``, and ``s`` itself jumps up there by ``0.5·σ(−sharp/2)`` (≈ 0.0034 for
    sharp = 10; below float64 resolution for sharp = 100).

    Args:
      z: pre-activations; meant to lie in [0, 1] (the text on non-differentiable metrics: "it must be preceded by another
        activation function, the output from which falls within [0, 1]").
      sharp: steepness of the steps, > 0. ``max f' = sharp/4``.

    Returns:
      ``s(z)`` with the dtype of ``z``.
    """
    z = jnp.asarray(z)
    # The pieces are evaluated on z clipped to [0, 1]; outside (0, 1) a constant is selected,
    # so the clip changes no value or gradient but keeps sharp*(z - c) finite in float16.
    zc = jnp.clip(z, 0.0, 1.0)
    s1 = 0.25 * jax.nn.sigmoid(sharp * ((zc - 0.125) / 0.25))
    s2 = 0.25 * jax.nn.sigmoid(sharp * ((zc - 0.375) / 0.25)) + 0.25
    s3 = 0.25 * jax.nn.sigmoid(sharp * ((zc - 0.625) / 0.25)) + 0.5
    s4 = 0.5 * jax.nn.sigmoid(sharp * ((zc - 1.0) / 0.5)) + 0.75
    zeros = jnp.zeros_like(z)
    ones = jnp.ones_like(z)
    return jnp.select(
        [z <= 0, z <= 0.25, z <= 0.5, z <= 0.75, z < 1],
        [zeros, s1, s2, s3, s4],
        default=ones,
    )


def piecewise_constant_max_slope(sharp: float) -> float:
    """``sup_z s'(z) = sharp/4`` for the QPWC neuron.

    Attained at the step centres 0.125, 0.375, 0.625 (``σ' = 1/4`` there) and approached as
    ``z → 1⁻`` on the last half-step.
    """
    return sharp / 4.0


def _sigmoid_slope(z: jax.Array) -> jax.Array:
    s = jax.nn.sigmoid(z)
    return s * (1.0 - s)


# --------------------------------------------------------------------------------------
# Derived quantities used in flat_region strings.
# --------------------------------------------------------------------------------------


def _phi(x: float) -> float:
    return math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def _Phi(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


_GELU_MAX_SLOPE = _Phi(math.sqrt(2.0)) + math.sqrt(2.0) * _phi(math.sqrt(2.0))  # 1.12893...


def _pwc_flat_region(sharp: float) -> str:
    # On a quarter step, sigma'(u) < e^{-|u|}; s' = sharp*sigma'(u) < 0.01 once
    # |u| > ln(100*sharp). Width on each side of a juncture where that holds:
    u = math.log(100.0 * sharp)
    w_quarter = 0.125 - 0.25 * u / sharp
    w_last = 0.25 - 0.5 * u / sharp
    parts = ["z <= 0 and z >= 1: f' = 0 exactly; junctures 0.25/0.5/0.75: f' = 0 (rounded)"]
    if w_quarter > 0:
        parts.append(
            f"f' < 0.01 within {w_quarter:.3g} of 0, 0.25, 0.5, 0.75 (and {w_last:.3g} right of 0.75)"
        )
    return "; ".join(parts)


def _make_leaky_relu(slope: float) -> Activation:
    slope = float(slope)
    name = "leaky_relu" if slope == 0.01 else f"leaky_relu:slope={format_number(slope)}"  # see get_activation
    return Activation(
        name=name,
        fn=lambda z: leaky_relu(z, slope=slope),
        max_slope=max(1.0, slope),
        description=f"leaky ReLU: z if z >= 0 else {format_number(slope)}*z",
        flat_region=f"z < 0: f' = {format_number(slope)} (constant, never 0 unless slope = 0)",
    )


def _make_piecewise_constant(sharp: float) -> Activation:
    sharp = float(sharp)
    name = "piecewise_constant" if sharp == 100.0 else f"piecewise_constant:sharp={format_number(sharp)}"
    return Activation(
        name=name,
        fn=lambda z: piecewise_constant(z, sharp=sharp),
        max_slope=piecewise_constant_max_slope(sharp),
        description=(
            f"the texts' QPWC neuron: 3 quarter sigmoid steps (centres .125/.375/.625) + a half "
            f"step on (.75,1), sharp={format_number(sharp)}; 0 for z<=0, 1 for z>=1"
        ),
        flat_region=_pwc_flat_region(sharp),
    )


ACTIVATIONS: dict[str, Activation] = {
    "identity": Activation(
        "identity", identity, 1.0, "identity: f(z) = z", "nowhere: f' = 1 everywhere"
    ),
    "sigmoid": Activation(
        "sigmoid",
        sigmoid,
        0.25,
        "logistic sigmoid 1/(1+exp(-z)), f' = f(1-f) <= 1/4",
        "|z| > 5: sigma'(z) < 0.0066; float32: exactly 0 once sigma(z) rounds to 1 (z > ~16.6)",
    ),
    "tanh": Activation(
        "tanh", tanh, 1.0, "tanh(z), f' = 1 - tanh^2 <= 1", "|z| > 3: tanh'(z) < 0.0099"
    ),
    "softsign": Activation(
        "softsign",
        softsign,
        1.0,
        "softsign z/(1+|z|), f' = 1/(1+|z|)^2 <= 1",
        "|z| > 9: f'(z) < 0.01 (polynomial decay, never exactly 0)",
    ),
    "relu": Activation(
        "relu", relu, 1.0, "ReLU max(z, 0)", "z <= 0: f' = 0 exactly (dead unit)"
    ),
    "leaky_relu": _make_leaky_relu(0.01),
    "gelu": Activation(
        "gelu",
        gelu,
        _GELU_MAX_SLOPE,
        "exact GELU z*Phi(z) (erf form, not the tanh approximation), max f' ~1.129 at z=sqrt(2)",
        "z < -4: |f'(z)| < 0.0006 (f' dips to -0.13 near z=-sqrt(2))",
    ),
    "step": Activation(
        "step",
        step,
        1.0,
        "Heaviside step: 1 if z > 0 else 0; max_slope = 1 by convention (true f' is 0 a.e.)",
        "everywhere: jax.grad gives f' = 0 (undefined at z = 0)",
    ),
    "piecewise_constant": _make_piecewise_constant(100.0),
}

_FACTORIES = {
    "leaky_relu": Factory(_make_leaky_relu, (Param("slope", float, "slope for z < 0", 0.01, minimum=0),)),
    "piecewise_constant": Factory(
        _make_piecewise_constant, (Param("sharp", float, "steepness of each step", 100.0, above=0),)
    ),
}


def switched(acts: tuple[Activation, ...], index: jax.Array) -> Activation:
    """One of ``acts``, chosen by the traced ``index`` (a padded program's hidden activation,
    :class:`~lossjax.core.padded.ArchShape`): ``fn`` is a ``lax.switch`` between their functions,
    so that with an index shared by every run of a call only the chosen one is computed, and
    ``max_slope`` the chosen one's (a traced scalar)."""
    fns = [act.fn for act in acts]
    return Activation(
        name="|".join(act.name for act in acts),
        fn=lambda z: jax.lax.switch(index, fns, z),
        max_slope=jnp.asarray([act.max_slope for act in acts])[index],
        description="one of " + ", ".join(act.name for act in acts),
        flat_region="the chosen activation's",
    )


def get_activation(spec: str) -> Activation:
    """Look up an activation by registry spec.

    Args:
      spec: ``name`` or ``name:key=value[,key=value]``. Examples: ``"relu"``,
        ``"leaky_relu:slope=0.1"``, ``"piecewise_constant:sharp=100"``. (A straight-through
        backward pass is a gradient estimator, :mod:`lossjax.core.estimators`, not an activation.)

    Returns:
      The :class:`Activation`; its ``name`` is the spec in canonical form: the parameters
      given (even at their default value) in the order given, numbers written without a
      trailing ``.0``, whitespace removed, so ``get_activation(act.name)`` round-trips and
      ``get_activation("piecewise_constant:sharp=100.0").name == "piecewise_constant:sharp=100"``.

    Raises:
      ValueError: unknown name, unknown/malformed/out-of-range parameter; the message names
        the bad value and lists the allowed ones.
    """
    return lookup("activation", spec, ACTIVATIONS, _FACTORIES)


def derivative(act: Activation, z: jax.Array) -> jax.Array:
    """Elementwise ``f'(z)`` as ``jax.grad`` sees it (surrogate slope for straight-through).

    Computed with one forward-mode product ``jax.jvp(act.fn, (z,), (ones,))``, exact for an
    elementwise ``fn``. Same shape and dtype as ``z``.
    """
    z = jnp.asarray(z)
    if not jnp.issubdtype(z.dtype, jnp.floating):
        raise ValueError(f"derivative needs a floating-point z, got dtype {z.dtype}")
    _, tangent = jax.jvp(act.fn, (z,), (jnp.ones_like(z),))
    return tangent
