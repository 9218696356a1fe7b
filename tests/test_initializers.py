"""A program draws only what its grid's init schemes take (:func:`lossjax.core.initializers.standard_draws`,
RAI's Beta draws): θ_0 of every scheme is bit for bit the draw of a program that holds every scheme,
unpadded and padded. (The draws themselves are checked against their distributions and closed forms
in test_models.py, test_init_rai.py and test_padded.py.)"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lossjax.core import initializers, models, padded

SEEDS = np.arange(4, dtype=np.uint32)
#: Grids whose schemes take one kind of draw, or a few: normal only, uniform only, RAI, mixed.
GRIDS = (["normal", "lecun", "glorot", "he"], ["glorot_uniform", "standard"], ["rai"], ["he", "rai"], ["standard", "lecun"])
MLP = models.ModelConfig(kind="mlp", n_inputs=3, n_outputs=2, depth=4, width=5, hidden_activation="relu")
PADDED = models.ModelConfig(kind="mlp", n_inputs=2, n_outputs=1, depth=4, width=6, padded=True)


def _draws(config, schemes, names, shape=None):
    """θ_0 leaves for every (scheme in ``names``, seed), from a program compiled for ``schemes``."""
    def one(scheme, seed):
        key = jax.random.fold_in(jax.random.key(seed), 0)
        args = (key, scheme, jnp.float32(1.3), jnp.float32(0.1), jnp.float32(0.5), jnp.float32)
        if shape is None:
            return initializers.init_from_scheme(config, *args, schemes=schemes)
        return padded.init_padded(config, shape, *args, schemes=schemes)

    index = jnp.asarray([initializers.init_scheme_index(n) for n in names], jnp.int32)
    per_seed = jax.vmap(one, in_axes=(None, 0))
    return [np.asarray(a) for a in jax.tree_util.tree_leaves(jax.jit(jax.vmap(per_seed, in_axes=(0, None)))(index, SEEDS))]


@pytest.mark.parametrize("padded_mlp", [False, True], ids=["unpadded", "padded"])
def test_a_grids_own_draws_equal_every_schemes_draws(padded_mlp):
    config, shape = MLP, None
    if padded_mlp:
        config = PADDED
        shape = jax.device_put(padded.arch_shape(models.ModelConfig(kind="mlp", n_inputs=2, n_outputs=1, depth=2, width=3)))
    names = list(initializers.INIT_SCHEMES)
    every = _draws(config, None, names, shape)
    for grid in GRIDS:
        rows = [names.index(n) for n in grid]
        own = _draws(config, grid, grid, shape)
        assert all(np.array_equal(a[rows], b) for a, b in zip(every, own)), grid


def test_standard_draws_follow_the_distributions():
    assert initializers.standard_draws(["he"]) == ("normal",)
    assert initializers.standard_draws(["rai"]) == ("normal",)  # RAI's symmetric part is normal
    assert initializers.standard_draws(["standard", "glorot_uniform"]) == ("uniform",)
    assert initializers.standard_draws(list(initializers.INIT_SCHEMES)) == ("normal", "uniform")
