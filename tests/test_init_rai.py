"""The ``rai`` init scheme against its definition (randomized asymmetric initialisation, Lu, Shin,
Su & Karniadakis 2019, as implemented: see ``lossjax.core.initializers.rai_layer``).

For a layer of fan-in d, each unit's d + 1 entries (weights and bias) are i.i.d. N(0, 0.6007²/d)
except one, chosen uniformly, which is Beta(2, 1). The references here are scipy's distributions
and counts of the draws; no lossjax code computes the expected values.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from lossjax.core import initializers, models

RAI = initializers.init_scheme_index("rai")
HE = initializers.init_scheme_index("he")


def mlp(depth, width, impl, n_inputs=3):
    return models.ModelConfig(kind="mlp", n_inputs=n_inputs, n_outputs=1, depth=depth, width=width,
                              hidden_activation="relu", activation="identity", impl=impl)


def draw(config, n, scheme=RAI, bias=0.0, bias_std=0.0, dtype=jnp.float64):
    keys = jax.random.split(jax.random.PRNGKey(0), n)
    f = jax.vmap(lambda k: models.layer_params(config, initializers.init_from_scheme(
        config, k, jnp.int32(scheme), jnp.float64(1.0), jnp.float64(bias), jnp.float64(bias_std), dtype)))
    return [(np.asarray(w), np.asarray(b)) for w, b in jax.jit(f)(keys)]


def rows(w, b):
    """(draws × units, d + 1): each unit's weights then its bias."""
    n, d, units = w.shape
    return np.concatenate([np.moveaxis(w, 1, 2).reshape(n * units, d), b.reshape(n * units, 1)], axis=1)


@pytest.mark.parametrize("impl", ["pytree", "scan"])
def test_rai_one_beta_entry_per_unit(impl):
    """Per unit exactly one of the d + 1 entries is redrawn. The redrawn entry is identified by
    comparing with He's draw from the same keys: the normal part of RAI's weights is He's
    rescaled by 0.6007/√2 (stds tabled in float32, hence rtol 1e-5). A unit with no weight
    changed had its bias redrawn. The index must be uniform over the d + 1 entries (the bias is
    the one in a share 1/(d + 1)), the redrawn entries Beta(2, 1) and the others N(0, 0.6007²/d)
    (KS tests against scipy)."""
    config = mlp(4, 5, impl)
    n = 2000
    rai, he = draw(config, n, RAI), draw(config, n, HE)
    for layer, ((w, b), (wh, _)) in enumerate(zip(rai, he)):
        d = w.shape[1]
        r = rows(w, b)
        normal_w = rows(wh, np.zeros_like(b))[:, :d] * (0.6007 / np.sqrt(2.0))
        redrawn_w = ~np.isclose(r[:, :d], normal_w, rtol=1e-5, atol=0)
        per_unit = redrawn_w.sum(axis=1)
        assert set(np.unique(per_unit)) <= {0, 1}, layer  # at most one weight redrawn per unit
        entries = np.c_[redrawn_w, per_unit == 0]  # exactly one redrawn entry per unit
        assert (entries.sum(axis=1) == 1).all()
        share_bias = np.mean(per_unit == 0)
        p = 1 / (d + 1)
        assert abs(share_bias - p) < 4 * np.sqrt(p * (1 - p) / len(per_unit)), layer
        assert stats.kstest(r[entries], stats.beta(2, 1).cdf).pvalue > 1e-3, layer
        assert stats.kstest(r[~entries], stats.norm(0, 0.6007 / np.sqrt(d)).cdf).pvalue > 1e-3, layer


def test_rai_marginals_and_positive_share():
    """Without identifying entries: each weight is, with probability 1/(d+1), Beta(2, 1) and else
    N(0, σ²/d); so P(w > 0) = 1/2 + 1/(2(d+1)) and the mixture CDF is the reference of a KS test."""
    d, width = 3, 4
    config = mlp(1, width, "pytree", n_inputs=d)
    (w, b), _ = draw(config, 20000)
    sigma = 0.6007 / np.sqrt(d)
    p = 1 / (d + 1)
    for x in (w.reshape(-1), b.reshape(-1)):
        share = np.mean(x > 0)
        expected = p + (1 - p) / 2
        assert abs(share - expected) < 4 * np.sqrt(expected * (1 - expected) / x.size)
        mixture = lambda t: p * stats.beta(2, 1).cdf(t) + (1 - p) * stats.norm(0, sigma).cdf(t)  # noqa: E731
        assert stats.kstest(x, mixture).pvalue > 1e-3


def test_rai_neuron_and_bias_shift():
    """A neuron (d = 1): w and b are each Beta(2, 1) with probability 1/2, exactly one of them
    per draw. ``init_bias`` shifts the bias after the draw."""
    config = models.ModelConfig(kind="neuron", n_inputs=1, activation="sigmoid")
    keys = jax.random.split(jax.random.PRNGKey(1), 5000)

    def one(k, bias):
        p = initializers.init_from_scheme(config, k, jnp.int32(RAI), jnp.float64(1.0), jnp.float64(bias),
                                    jnp.float64(0.0), jnp.float64)
        return p["w"][0], p["b"]

    w, b = (np.asarray(a) for a in jax.vmap(lambda k: one(k, 0.0))(keys))
    w2, b2 = (np.asarray(a) for a in jax.vmap(lambda k: one(k, 0.5))(keys))
    np.testing.assert_array_equal(w2, w)
    np.testing.assert_allclose(b2, b + 0.5, rtol=0, atol=1e-15)
    # the Beta(2, 1) entry lies in (0, 1]: in every draw w or b does
    in_unit = (w > 0) & (w <= 1), (b > 0) & (b <= 1)
    assert (in_unit[0] | in_unit[1]).all()


def test_other_schemes_unchanged_by_rai():
    """Adding RAI did not change the draws of the other schemes: He weights are N(0, 2/d), biases 0."""
    config = mlp(2, 8, "pytree")
    (w, b), _, _ = draw(config, 3000, HE)
    assert (b == 0).all()
    assert stats.kstest(w.reshape(-1), stats.norm(0, np.sqrt(2 / 3)).cdf).pvalue > 1e-3
