"""Optimisers: optax transformations whose learning rate is a batched (traced) value.

The training function builds its optimiser inside the traced program from the run's learning
rate, ``get_optimizer(name).factory(learning_rate=run.learning_rate)``: the rate is an array
argument of the compiled program (vmapped over the grid), not a constant baked into it, so a
grid of learning rates never recompiles. This is what :func:`optax.inject_hyperparams` is for,
without the step counter and hyperparameter copy it would add to every run's scan carry.

Precision: bfloat16 and float16 runs keep their optimiser's hyperparameters and state in float32
and round each update once to the parameters' dtype (:func:`make_optimizer`, docs/precision.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax


class Optimizer(NamedTuple):
    name: str
    factory: Callable[..., optax.GradientTransformation]
    description: str


OPTIMIZERS: dict[str, Optimizer] = {
    o.name: o
    for o in (
        Optimizer("sgd", lambda learning_rate: optax.sgd(learning_rate), "plain gradient descent θ ← θ − η g"),
        Optimizer(
            "momentum",
            lambda learning_rate: optax.sgd(learning_rate, momentum=0.9),
            "heavy-ball momentum 0.9 (optax.sgd(momentum=0.9))",
        ),
        Optimizer(
            "nesterov",
            lambda learning_rate: optax.sgd(learning_rate, momentum=0.9, nesterov=True),
            "Nesterov momentum 0.9",
        ),
        Optimizer("adam", lambda learning_rate: optax.adam(learning_rate), "Adam, β=(0.9, 0.999), ε=1e-8"),
        Optimizer("rmsprop", lambda learning_rate: optax.rmsprop(learning_rate), "RMSProp, decay 0.9, ε=1e-8"),
        Optimizer("adagrad", lambda learning_rate: optax.adagrad(learning_rate), "Adagrad"),
        Optimizer(
            "sign_sgd",
            lambda learning_rate: optax.chain(optax.scale_by_sign(), optax.scale_by_learning_rate(learning_rate)),
            "signSGD θ ← θ − η sign(g): every non-zero gradient moves the weight by η",
        ),
    )
}


def get_optimizer(name: str) -> Optimizer:
    """Looks up an optimiser by name; raises ``ValueError`` listing the allowed names."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; allowed: {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[name]


#: The optimiser's working precision for each parameter dtype: bfloat16 and float16 runs keep
#: their optimiser state and hyperparameters in float32; float32 and float64 runs in their own dtype.
STATE_DTYPES = {"float32": jnp.float32, "float64": jnp.float64, "bfloat16": jnp.float32, "float16": jnp.float32}


def state_dtype_for(dtype) -> jnp.dtype:
    """The optimiser's working dtype for parameters of ``dtype`` (see :data:`STATE_DTYPES`)."""
    return jnp.dtype(STATE_DTYPES[jnp.dtype(dtype).name])


def make_optimizer(name: str, learning_rate, dtype, state_dtype=None) -> optax.GradientTransformation:
    """The named optimiser for parameters of ``dtype``; ``learning_rate`` may be a traced scalar.

    The precision contract (measured in docs/precision.md): the optimiser runs in ``state_dtype``
    (default :func:`state_dtype_for`: float32 for bfloat16 and float16 parameters, the parameters'
    own dtype otherwise). Its learning rate, its hyperparameters (β, ε, decay, which optax takes as
    Python floats and JAX rounds to the dtype they meet) and its state (Adam's m, v; momentum's
    trace; RMSprop's and Adagrad's accumulators) are in ``state_dtype``; the gradient is cast up to
    it, and the update is rounded once to the parameters' dtype at the end, so parameters, gradients
    and updates keep ``dtype`` (``optax.apply_updates`` adds in ``dtype``). In bfloat16 the
    parameters' dtype would make Adam's β2 = 0.999 exactly 1 (v never decays) and β1 = 0.8984; in
    float16 ε = 1e-8 rounds to 0 and v underflows, so a zero gradient gives m/(√v + ε) = 0/0 = NaN.
    Adam's bias correction 1 − β^t is computed from the Python float β and the int32 step count, in
    float64 when ``jax_enable_x64`` is on (as in ``lossjax run``), then rounded to ``state_dtype``.

    ``state_dtype=dtype`` gives every quantity in the parameters' dtype (lossjax before this
    contract, kept for the precision measurement).
    """
    state_dtype = state_dtype_for(dtype) if state_dtype is None else jnp.dtype(state_dtype)
    inner = get_optimizer(name).factory(learning_rate=jnp.asarray(learning_rate, state_dtype))
    if state_dtype == jnp.dtype(dtype):
        return inner

    def cast(tree, dt):
        return jax.tree_util.tree_map(lambda v: v.astype(dt), tree)

    def init(params):
        return inner.init(cast(params, state_dtype))

    def update(grads, state, params=None):
        params = None if params is None else cast(params, state_dtype)
        updates, state = inner.update(cast(grads, state_dtype), state, params)
        return jax.tree_util.tree_map(lambda u, g: u.astype(g.dtype), updates, grads), state

    return optax.GradientTransformation(init, update)
