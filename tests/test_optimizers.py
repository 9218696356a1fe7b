"""Every optimiser keeps its parameters' dtype, in every dtype (as optax's float64 test does).

A study of low-precision stalls must train in the precision it names: a float16 run whose Adam
state silently became float32, or whose update came back in float32, would measure something
else. For each optimiser × dtype: the update, the new parameters and every floating-point leaf of
the optimiser state keep the dtype they had, through ``jit`` and under the strict promotion rules
of tests/conftest.py. The learning rate is a traced value, as in the engine.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lossjax.core.optimizers import OPTIMIZERS, make_optimizer
from lossjax.core.train import DTYPES


#: optax's Adam computes its bias correction as ``decay ** count`` with an int32 count, a
#: promotion that strict mode refuses; those optimisers run under standard promotion here (the
#: dtype assertions below still hold).
OPTAX_NEEDS_STANDARD_PROMOTION = {"adam"}


def _dtypes(tree):
    return [leaf.dtype for leaf in jax.tree_util.tree_leaves(tree)]


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_optimizer_keeps_dtypes(name, dtype):
    dt = DTYPES[dtype]
    params = {"w": jnp.asarray([0.5, -1.0, 2.0], dt), "b": jnp.asarray(0.25, dt)}
    grads = {"w": jnp.asarray([0.1, -0.2, 0.3], dt), "b": jnp.asarray(-0.05, dt)}

    @jax.jit
    def two_steps(params, grads, learning_rate):
        optimizer = make_optimizer(name, learning_rate, dt)
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
    for leaf in jax.tree_util.tree_leaves(state0):
        if jnp.issubdtype(leaf.dtype, jnp.floating):
            assert leaf.dtype == dt, f"{name} keeps state in {leaf.dtype}, parameters are {dtype}"
    # The step moved the parameters (nothing rounded the whole update away at these sizes).
    assert not np.array_equal(np.asarray(params1["w"], np.float64), np.asarray(params["w"], np.float64))
