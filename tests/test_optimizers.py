"""Every optimiser keeps its documented dtypes, in every dtype (as optax's float64 test does).

A study of low-precision stalls must train in the precision it names, and its optimiser in the
precision it documents (``make_optimizer``, docs/precision.md): parameters, gradients and updates
in the run's dtype; the optimiser's state (and hyperparameters) in float32 for bfloat16 and float16
parameters, in the parameters' own dtype for float32 and float64. A float16 run whose update came
back in float32, or whose Adam state fell back to float16 (where ε = 1e-8 is 0), would measure
something else. For each optimiser × dtype: the update and the new parameters keep the parameters'
dtype, and every floating-point leaf of the optimiser state has the documented dtype and keeps it,
through ``jit`` and under the strict promotion rules of tests/conftest.py. The learning rate is a
traced value, as in the engine.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lossjax.core.optimizers import OPTIMIZERS, make_optimizer
from lossjax.core.train import DTYPES

#: The documented state dtype per parameter dtype (written here, not read from lossjax).
STATE_DTYPE = {"float32": jnp.float32, "float64": jnp.float64, "bfloat16": jnp.float32, "float16": jnp.float32}

#: optax's Adam computes its bias correction as ``decay ** count`` with an int32 count, a
#: promotion that strict mode refuses; those optimisers run under standard promotion here (the
#: dtype assertions below still hold).
OPTAX_NEEDS_STANDARD_PROMOTION = {"adam"}


def _dtypes(tree):
    return [leaf.dtype for leaf in jax.tree_util.tree_leaves(tree)]


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("name", list(OPTIMIZERS))
@pytest.mark.parametrize("state", ["documented", "param dtype"])
def test_optimizer_keeps_dtypes(name, dtype, state):
    dt = DTYPES[dtype]
    params = {"w": jnp.asarray([0.5, -1.0, 2.0], dt), "b": jnp.asarray(0.25, dt)}
    grads = {"w": jnp.asarray([0.1, -0.2, 0.3], dt), "b": jnp.asarray(-0.05, dt)}

    @jax.jit
    def two_steps(params, grads, learning_rate):
        optimizer = make_optimizer(name, learning_rate, dt, **({"state_dtype": dt} if state == "param dtype" else {}))
        state0 = optimizer.init(params)
        updates, state1 = optimizer.update(grads, state0, params)
        params1 = optax.apply_updates(params, updates)
        updates2, state2 = optimizer.update(grads, state1, params1)
        return state0, updates, state1, params1, state2, optax.apply_updates(params1, updates2)

    promotion = "standard" if name in OPTAX_NEEDS_STANDARD_PROMOTION else "strict"
    with jax.numpy_dtype_promotion(promotion):
        state0, updates, state1, params1, state2, params2 = two_steps(params, grads, jnp.asarray(0.1, dt))
    assert _dtypes(updates) == _dtypes(params)
    assert _dtypes(params1) == _dtypes(params) == _dtypes(params2)
    assert _dtypes(state1) == _dtypes(state0) == _dtypes(state2)
    expected = STATE_DTYPE[dtype] if state == "documented" else dt
    for leaf in jax.tree_util.tree_leaves(state0):
        if jnp.issubdtype(leaf.dtype, jnp.floating):
            assert leaf.dtype == expected, f"{name} keeps state in {leaf.dtype}, parameters are {dtype}"
    # The step moved the parameters (nothing rounded the whole update away at these sizes).
    assert not np.array_equal(np.asarray(params1["w"], np.float64), np.asarray(params["w"], np.float64))


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_low_precision_update_is_rounded_once(dtype):
    """SGD in bfloat16/float16: the update is −η·g computed in float32 and rounded once to the
    dtype (hand-computed with ml_dtypes), not the product of η rounded to the dtype (η = 0.15 is
    0.1504 in bfloat16): the two roundings differ for this g, and the documented one is returned."""
    import ml_dtypes

    npdt = {"bfloat16": ml_dtypes.bfloat16, "float16": np.float16}[dtype]
    g = np.asarray([0.7, -3.0, 0.011], npdt)
    once = (np.float32(-0.15) * g.astype(np.float32)).astype(npdt)
    twice = (np.asarray(-0.15, npdt) * g).astype(npdt)
    assert not np.array_equal(once.astype(np.float64), twice.astype(np.float64))
    optimizer = make_optimizer("sgd", jnp.asarray(0.15, jnp.float32), DTYPES[dtype])
    params = jnp.zeros(3, DTYPES[dtype])
    updates, _ = jax.jit(optimizer.update)(jnp.asarray(g), optimizer.init(params), params)
    assert updates.dtype == DTYPES[dtype]
    np.testing.assert_array_equal(np.asarray(updates, np.float64), once.astype(np.float64))
