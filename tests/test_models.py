"""The three ways of writing an MLP give the same network: same initial parameters (bitwise), same
forward pass, and the same training run in float64 (to a relative 1e-10), every metric included.

``scan`` (the default) stacks hidden layers 2..depth and runs them with ``lax.scan``; ``pytree``
and ``flax`` write one layer after another. The reference for the forward pass is numpy written
here from the per-layer parameters.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lossjax.core import initializers, models, train
from lossjax.data import make_dataset

IMPLS = ("scan", "pytree", "flax")


def config(impl, depth, width=5):
    return models.ModelConfig(kind="mlp", n_inputs=2, n_outputs=1, depth=depth, width=width,
                              hidden_activation="tanh", activation="sigmoid", impl=impl)


def init(cfg, seed=3):
    key = jax.random.fold_in(jax.random.key(seed), 0)
    f64 = jnp.float64
    return initializers.init_from_scheme(cfg, key, jnp.int32(initializers.init_scheme_index("he")), f64(1.3), f64(0.1), f64(0.5), f64)


@pytest.mark.parametrize("depth", [0, 1, 2, 6])
def test_same_initial_parameters_and_forward_pass(depth):
    x = np.random.default_rng(0).normal(size=(7, 2))
    per_impl = {}
    for impl in IMPLS:
        cfg = config(impl, depth)
        params = init(cfg)
        layers = [(np.asarray(w), np.asarray(b)) for w, b in models.layer_params(cfg, params)]
        assert [w.shape for w, _ in layers] == list(zip(cfg.fan_ins, cfg.layer_sizes))
        forward = models.make_apply(cfg, jnp.tanh)(params, jnp.asarray(x))
        hidden_layout = impl != "flax" and x.shape[0] >= cfg.width  # flax's Dense is samples-major
        assert forward.units_first == (hidden_layout,) * (len(cfg.layer_groups) - 1) + (False,)
        per_impl[impl] = layers, np.asarray(forward.logits)
    ref_layers, _ = per_impl["pytree"]
    h = x  # numpy forward pass from the pytree's parameters
    for i, (w, b) in enumerate(ref_layers):
        z = h @ w + b
        h = np.tanh(z) if i < depth else z
    for impl, (layers, logits) in per_impl.items():
        for (w, b), (rw, rb) in zip(layers, ref_layers):
            np.testing.assert_array_equal(w, rw, err_msg=impl)
            np.testing.assert_array_equal(b, rb, err_msg=impl)
        np.testing.assert_allclose(logits, h, rtol=1e-12, atol=1e-12, err_msg=impl)


def test_scan_groups_the_hidden_layers():
    assert config("scan", 6).layer_groups == ((1, False), (5, True), (1, False))
    assert config("scan", 1).layer_groups == ((1, False), (1, False))
    assert config("pytree", 6).layer_groups == ((1, False),) * 7


@pytest.mark.parametrize("depth", [1, 4])
def test_same_training_run_in_float64(depth):
    ds = make_dataset("moons", seed=1, n_train=32, n_test=16)
    data = train.Data(*(jnp.asarray(a, jnp.float64) for a in (ds.x_train, ds.y_train, ds.x_test, ds.y_test)))
    n = 3
    runs = train.RunInputs(
        seed=jnp.arange(n, dtype=jnp.int32), learning_rate=jnp.asarray([0.05, 0.2, 0.8]),
        init_w=jnp.zeros(n), init_b=jnp.zeros(n), init_scheme=jnp.full(n, initializers.init_scheme_index("glorot"), jnp.int32),
        init_scale=jnp.ones(n), init_bias=jnp.zeros(n), init_bias_std=jnp.full(n, 0.1), target=jnp.full(n, jnp.nan),
    )
    out = {}
    for impl in IMPLS:
        cfg = train.TrainConfig(model=config(impl, depth, width=6), loss="bce", dtype="float64", steps=40,
                                init_mode="scheme", record_every=10)
        out[impl] = jax.jit(jax.vmap(train.make_train(cfg), in_axes=(0, None)))(runs, data)
    # flax computes samples-major, scan and pytree units-major: the sums run in another order,
    # and 40 steps at a learning rate up to 0.8 grow that float64 round-off to ~1e-12.
    for impl in ("pytree", "flax"):
        for a, b, name in zip(out["scan"][0], out[impl][0], train.Summary._fields):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-10, atol=1e-13, err_msg=f"{impl} {name}")
        for a, b, name in zip(out["scan"][1], out[impl][1], train.Observation._fields):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-10, atol=1e-13, err_msg=f"{impl} traj {name}")


@pytest.mark.parametrize("impl", ["pytree", "scan"])
@pytest.mark.parametrize("n_samples", [3, 40])  # narrower than the width 16: samples-major; wider: units-major
def test_both_layouts_equal_a_numpy_forward(impl, n_samples):
    cfg = config(impl, 4, width=16)
    params = init(cfg)
    x = np.random.default_rng(n_samples).standard_normal((n_samples, 2))
    forward = models.make_apply(cfg, jnp.tanh)(params, jnp.asarray(x))
    h, want = x, []
    for kernel, bias in models.layer_params(cfg, params):  # numpy, samples-major, layer by layer
        z = h @ np.asarray(kernel) + np.asarray(bias)
        want.append(z)
        h = np.tanh(z)
    np.testing.assert_allclose(np.asarray(forward.logits), want[-1], rtol=1e-12, atol=1e-12)
    units_major = n_samples >= 16
    groups = 3 if impl == "scan" else 5
    assert forward.units_first == (units_major,) * (groups - 1) + (False,)
    # The pass's own layout: each hidden group (units, n) when units-major, the logits (n, 1).
    raw = [np.swapaxes(np.asarray(z), -1, -2) if units_major else np.asarray(z) for z in forward.pre_activations[:-1]]
    for got in (raw + [np.asarray(forward.pre_activations[-1])], [np.asarray(z) for z in forward.samples_major()]):
        if impl == "scan":  # groups: the first hidden layer, the stacked ones, the output
            got = [got[0], *got[1], got[2]]
        assert [z.shape for z in got] == [z.shape for z in want]
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)
