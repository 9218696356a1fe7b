"""Small builders of engine inputs shared by the engine tests (not a test module)."""

import jax.numpy as jnp
import numpy as np

from lossjax.core import train


def single(x=1.0, y=0.0, dtype=np.float64) -> train.Data:
    """One example (the text on the saturated sigmoid neuron: x = 1, y = 0), no test set."""
    x = np.atleast_2d(np.asarray(x, dtype))
    y = np.full((x.shape[0], 1), y, dtype)
    return train.Data(jnp.asarray(x), jnp.asarray(y), jnp.zeros((0, x.shape[1]), dtype), jnp.zeros((0, 1), dtype))


def runs(dtype=np.float64, **fields) -> train.RunInputs:
    """RunInputs with a leading run axis; fields given as scalars or equal-length lists."""
    defaults = dict(
        seed=0, learning_rate=0.1, init_w=0.0, init_b=0.0, init_scheme=0, init_scale=1.0,
        init_bias=0.0, init_bias_std=0.0, target=np.nan,
    )
    defaults.update(fields)
    arrays = np.broadcast_arrays(*(np.atleast_1d(defaults[k]) for k in train.RunInputs._fields))
    return train.RunInputs(
        *(
            jnp.asarray(a, np.int32 if k in ("seed", "init_scheme") else dtype)
            for k, a in zip(train.RunInputs._fields, arrays)
        )
    )
