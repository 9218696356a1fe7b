"""Architectures padded into one program give the numbers of each architecture trained alone.

References, none shared with the code under test:
- θ_0: the unpadded draw (:func:`lossjax.core.initializers.init_from_scheme`, itself tested against
  closed forms in test_models.py / test_init_rai.py) must appear bit for bit at the top left of
  every padded layer, every other entry exactly 0.
- Training: the same sweep run with ``[run] programs = "per_architecture"`` (each architecture
  its own unpadded program, the path every other test checks against numpy references) and
  ``"fewest"`` (one padded program): in float64 every result agrees to 1e-9 relative, counts,
  steps, flags and codes exactly; in float32 within float32 rounding amplified by training.
- :func:`true_layers` and the cost model's grouping: small cases solved by hand.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lossjax
from lossjax import programs
from lossjax.core import initializers, models, padded
from lossjax.core import train as train_lib

SCHEMES = list(initializers.INIT_SCHEMES)


def _layers_of(tree, config):
    """Per layer, (kernels, biases) of a vmapped parameter tree, the run axis first."""
    n = jax.tree_util.tree_leaves(tree)[0].shape[0]
    runs = [models.layer_params(config, jax.tree_util.tree_map(lambda leaf: leaf[r], tree)) for r in range(n)]
    return [tuple(jnp.stack([run[i][j] for run in runs]) for j in range(2)) for i in range(len(runs[0]))]


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])  # float64: the sweep test below, to 1e-9
def test_padded_theta0_is_the_unpadded_draw_bit_for_bit(dtype):
    """θ_0 as the runner draws it (:class:`~lossjax.programs.InitProgram`), every init scheme."""
    big = models.ModelConfig(kind="mlp", n_inputs=3, n_outputs=2, depth=4, width=6, padded=True)
    n = 2 * len(SCHEMES)
    metric = np.float64 if dtype == "float64" else np.float32
    runs = train_lib.RunInputs(
        seed=np.arange(n, dtype=np.int32), learning_rate=np.ones(n, metric), init_w=np.zeros(n, metric),
        init_b=np.zeros(n, metric), init_scheme=np.arange(n, dtype=np.int32) % len(SCHEMES),
        init_scale=np.full(n, 1.3, metric), init_bias=np.full(n, 0.1, metric), init_bias_std=np.full(n, 0.4, metric),
        target=np.full(n, np.nan, metric))
    sharding = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    draw_padded = programs.InitProgram(
        train_lib.TrainConfig(model=big, dtype=dtype, init_mode="scheme"), n, sharding, sharding)
    for depth, width in [(1, 6), (3, 2), (4, 5)]:  # unrolled and scanned unpadded layouts
        true = models.ModelConfig(kind="mlp", n_inputs=3, n_outputs=2, depth=depth, width=width)
        draw = programs.InitProgram(train_lib.TrainConfig(model=true, dtype=dtype, init_mode="scheme"), n, sharding, sharding)
        expected = _layers_of(draw(runs), true)
        got = draw_padded(runs, padded.arch_shape(true))["params"]
        got_layers = [(got["hidden_0"]["kernel"], got["hidden_0"]["bias"])]
        got_layers += [(got["hidden"]["kernel"][:, i], got["hidden"]["bias"][:, i]) for i in range(big.depth - 1)]
        got_layers.append((got["output"]["kernel"], got["output"]["bias"]))
        for i in range(big.depth + 1):
            kernel, bias = got_layers[i]
            if i < depth or i == big.depth:  # a real layer: hidden i, or the output layer
                want_kernel, want_bias = expected[i if i < depth else depth]
                rows, cols = want_kernel.shape[1:]
                np.testing.assert_array_equal(np.asarray(kernel[:, :rows, :cols]), np.asarray(want_kernel))
                np.testing.assert_array_equal(np.asarray(bias[:, :cols]), np.asarray(want_bias))
                kernel = kernel.at[:, :rows, :cols].set(0)
                bias = bias.at[:, :cols].set(0)
            assert not np.any(np.asarray(kernel, np.float64)), (depth, width, i)  # padding and skipped layers: 0
            assert not np.any(np.asarray(bias, np.float64)), (depth, width, i)


def test_true_layers_moves_the_output_layer_and_fills_nan():
    values = jnp.asarray([[10.0, 11.0, 12.0, 13.0, 99.0]])  # padded depth 4: hidden 0-3, output
    got = np.asarray(padded.true_layers(values, jnp.int32(2)))
    np.testing.assert_array_equal(got, [[10.0, 11.0, 99.0, np.nan, np.nan]])
    np.testing.assert_array_equal(np.asarray(padded.true_layers(values, jnp.int32(4))), np.asarray(values))


def test_masked_units_output_zero_and_skipped_layers_pass_through():
    """The padded forward pass against a hand-written numpy MLP of the real architecture."""
    big = models.ModelConfig(kind="mlp", n_inputs=2, n_outputs=1, depth=4, width=5, padded=True)
    true = models.ModelConfig(kind="mlp", n_inputs=2, n_outputs=1, depth=2, width=3)
    shape = padded.arch_shape(true)
    params = padded.init_padded(big, shape, jax.random.key(1), jnp.int32(0), jnp.float64(1.0), jnp.float64(0.3),
                                jnp.float64(0.5), jnp.float64, schemes=["normal"])
    x = np.random.default_rng(0).normal(size=(6, 2))
    forward = padded.mlp_apply_padded(params, jnp.asarray(x), jnp.tanh, shape)
    logits, pre = forward.logits, forward.pre_activations
    assert forward.units_first == (True, True, False)  # 6 samples >= width 5: hidden groups units-major
    p = params["params"]
    h = np.tanh(x @ np.asarray(p["hidden_0"]["kernel"])[:, :3] + np.asarray(p["hidden_0"]["bias"])[:3])
    h = np.tanh(h @ np.asarray(p["hidden"]["kernel"][0])[:3, :3] + np.asarray(p["hidden"]["bias"][0])[:3])
    want = h @ np.asarray(p["output"]["kernel"])[:3] + np.asarray(p["output"]["bias"])
    np.testing.assert_allclose(np.asarray(logits), want, rtol=1e-12)
    assert np.all(np.asarray(pre[1])[1:] == 0)  # skipped layers 2 and 3: no pre-activation


@pytest.mark.parametrize("first", [True, False])
@pytest.mark.parametrize("depth", [1, 2, 4, 5])
def test_hidden_stack_gradient_is_autodiff_of_the_real_layers(depth, first):
    """The loop over the real stacked layers and its hand-assembled VJP against jax autodiff of
    the same layers unrolled in Python (float64): outputs, zeros for skipped layers, and the
    gradient of a function of both the output and every pre-activation (a cotangent on each)."""
    rng = np.random.default_rng(depth)
    n_stacked, width, n = 4, 3, 7  # padded depth 5: stacked layers 1..4
    kernels = jnp.asarray(rng.normal(size=(n_stacked, width, width)))
    biases = jnp.asarray(rng.normal(size=(n_stacked, width)))
    h0 = jnp.asarray(rng.normal(size=(width, n) if first else (n, width)))
    units = jnp.asarray([True, True, False])
    units = units[:, None] if first else units[None, :]
    weights = jnp.asarray(rng.normal(size=(n_stacked,) + h0.shape))

    def act(z):
        return jnp.where(units, jnp.tanh(z), 0.0)

    def stack(h, kernels, biases):
        out, zs = padded.hidden_stack(jnp.tanh, first, h, kernels, biases, units, jnp.int32(depth))
        return jnp.sum(out ** 2) + jnp.sum(weights * jnp.sin(zs)), (out, zs)

    def unrolled(h, kernels, biases):
        zs = []
        for i in range(depth - 1):
            z = kernels[i].T @ h + biases[i][:, None] if first else h @ kernels[i] + biases[i][None, :]
            zs.append(z)
            h = act(z)
        zs += [jnp.zeros_like(h)] * (n_stacked - len(zs))
        zs = jnp.stack(zs)
        return jnp.sum(h ** 2) + jnp.sum(weights * jnp.sin(zs)), (h, zs)

    (value, (out, zs)), grads = jax.value_and_grad(stack, argnums=(0, 1, 2), has_aux=True)(h0, kernels, biases)
    (want, (want_out, want_zs)), want_grads = jax.value_and_grad(unrolled, argnums=(0, 1, 2), has_aux=True)(
        h0, kernels, biases)
    np.testing.assert_allclose(value, want, rtol=1e-13)
    np.testing.assert_allclose(out, want_out, rtol=1e-13)
    np.testing.assert_array_equal(np.asarray(zs)[depth - 1:], 0.0)
    np.testing.assert_allclose(zs, want_zs, rtol=1e-13)
    for got, ref in zip(grads, want_grads):
        np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-14)
    assert np.all(np.asarray(grads[1])[depth - 1:] == 0) and np.all(np.asarray(grads[2])[depth - 1:] == 0)


def _sweep(dtype: str, mode: str, steps: int, loss: str, hidden: str = '"relu"') -> dict:
    raw = tomllib.loads(f"""
name = "padded"
[model]
kind = "mlp"
activation = "sigmoid"
hidden_activation = {hidden}
depth = [1, 3]
width = [2, 5]
[data]
dataset = "teacher"
params = {{ n_features = 3, n_train = 24, n_test = 6 }}
batch_size = 8
[train]
steps = {steps}
dtype = "{dtype}"
loss = {loss}
optimizer = "momentum"
learning_rate = 0.3
seed = {{ num = 10 }}
record_every = {steps // 2}
[init]
scheme = ["he", "rai"]
bias = [0.0, -0.3]
[metrics]
target_metric = "accuracy"
target = 0.8
[run]
programs = "{mode}"
""")
    return raw


EXACT_KINDS = ("count", "step", "flag", "probe", "outcome", "code")


@pytest.mark.parametrize("dtype, rtol, steps, loss, hidden", [
    # one program switching between a loss on logits and one on outputs, and between two hidden activations
    ("float64", 1e-9, 20, '["bce", "quadratic"]', '["relu", "tanh"]'),
    ("float32", 2e-4, 10, '"bce"', '"relu"'),
])
def test_padded_program_gives_each_architecture_its_own_numbers(dtype, rtol, steps, loss, hidden):
    """Alone: each (architecture, loss, hidden activation) its own unpadded program; together: one
    padded program (that switches between the losses and the activations), every result the same."""
    alone = lossjax.run_sweep(_sweep(dtype, "per_architecture", steps, loss, hidden))
    together = lossjax.run_sweep(_sweep(dtype, "fewest", steps, loss, hidden))
    n_losses, n_hidden = loss.count('"') // 2, hidden.count('"') // 2
    assert alone.attrs["programs"].startswith(f"{4 * n_losses * n_hidden} compiled programs")
    assert together.attrs["programs"].startswith("1 compiled programs")
    assert "padded to depth 3, width 5" in together.attrs["programs"]
    assert ("losses bce, quadratic" in together.attrs["programs"]) == (n_losses == 2)
    assert ("hidden activations relu, tanh" in together.attrs["programs"]) == (n_hidden == 2)
    assert int(alone.born_dead.sum()) > 0  # the grid has born-dead nets (ReLU, negative biases)
    kinds = {q.name: q.kind for q in lossjax.core.summaries.RESULTS}
    kinds.update({f"traj_{q.name}": q.kind for q in lossjax.core.metrics.OBSERVED})
    for name in alone.data_vars:
        a, b = alone[name].values, together[name].values
        assert a.shape == b.shape, name
        if kinds[name] in EXACT_KINDS:
            np.testing.assert_array_equal(a, b, err_msg=name)
        else:  # NaN in the same places (layers beyond a net's depth), the rest within rounding
            scale = np.nanmax(np.abs(a)) if np.any(np.isfinite(a)) else 1.0
            np.testing.assert_allclose(b, a, rtol=rtol, atol=rtol * scale, err_msg=name)


# --------------------------------------------------------------------------------------
# The grouping
# --------------------------------------------------------------------------------------


def _mlp(depth: int, width: int, **kw) -> train_lib.TrainConfig:
    model = models.ModelConfig(kind="mlp", n_inputs=4, n_outputs=1, depth=depth, width=width)
    return train_lib.TrainConfig(model=model, init_mode="scheme", steps=kw.pop("steps", 10), **kw)


def test_grouping_modes():
    configs = [_mlp(d, w) for d in (1, 2, 8) for w in (2, 16)] + [_mlp(2, 4, optimizer="adam")]
    assert [g.members for g in programs.group_programs(configs, 100, 64, "per_architecture")] == [(p,) for p in range(7)]
    fewest = programs.group_programs(configs, 100, 64, "fewest")
    assert [g.members for g in fewest] == [(0, 1, 2, 3, 4, 5), (6,)]  # the Adam net is another program
    assert (fewest[0].config.model.depth, fewest[0].config.model.width, fewest[0].config.model.padded) == (8, 16, True)
    assert fewest[0].config.losses is None  # one loss: nothing to switch
    assert fewest[1].config == configs[6]  # a lone combination keeps its own, unpadded config


def test_losses_share_a_padded_program_with_exact_gradients_only():
    """Combinations that differ in the loss share a padded program that switches between them
    (each member's ArchShape names its loss); the score-function estimator's do not."""
    configs = [_mlp(1, 2), _mlp(3, 2, loss="hinge"), _mlp(3, 2)]
    (group,) = programs.group_programs(configs, 100, 64, "fewest")
    assert group.members == (0, 1, 2) and group.config.losses == ("quadratic", "hinge")
    assert [int(group.shape(c).loss) for c in configs] == [0, 1, 0]
    assert [int(group.shape(c).depth) for c in configs] == [1, 3, 3]
    score = [_mlp(1, 2, loss="zero_one", estimator="score_function"), _mlp(1, 3, loss="bce", estimator="score_function")]
    assert len(programs.group_programs(score, 100, 64, "fewest")) == 2
    with pytest.raises(ValueError, match="losses"):
        train_lib.TrainConfig(model=configs[0].model, losses=("quadratic", "hinge"))  # not a padded model


def test_hidden_activations_share_a_padded_program_with_exact_gradients_only():
    """Likewise for hidden activations: one padded program, each member's ArchShape names its
    activation; not with the straight-through estimator (whose surrogate is per activation)."""
    def act(name: str, depth: int = 2, **kw) -> train_lib.TrainConfig:
        config = _mlp(depth, 3, **kw)
        return dataclasses.replace(config, model=dataclasses.replace(config.model, hidden_activation=name))

    configs = [act("sigmoid", 1), act("tanh"), act("sigmoid"), act("relu", loss="hinge")]
    (group,) = programs.group_programs(configs, 100, 64, "fewest")
    assert group.config.hidden_activations == ("sigmoid", "tanh", "relu")
    assert group.config.losses == ("quadratic", "hinge")
    assert [int(group.shape(c).activation) for c in configs] == [0, 1, 0, 2]
    assert [int(group.shape(c).loss) for c in configs] == [0, 0, 0, 1]
    ste = [act("step", estimator="ste_identity"), act("piecewise_constant", estimator="ste_identity")]
    assert len(programs.group_programs(ste, 100, 64, "fewest")) == 2
    with pytest.raises(ValueError, match="hidden_activations"):
        train_lib.TrainConfig(model=configs[0].model, hidden_activations=("sigmoid", "tanh"))  # not a padded model


def test_cost_model_pads_cheap_training_and_splits_expensive_widths():
    configs = [_mlp(d, w, steps=1) for d in (1, 4) for w in (2, 64)]
    # one step of 100 runs: compiling costs more than any padding, one program
    assert len(programs.group_programs(configs, 100, 64, "auto")) == 1
    # 10^5 runs of 10^4 steps: padding width 2 to 64 costs ~1000x its own training: two programs
    configs = [_mlp(d, w, steps=10_000) for d in (1, 4) for w in (2, 64)]
    groups = programs.group_programs(configs, 100_000, 64, "auto")
    assert sorted(g.members for g in groups) == [(0, 2), (1, 3)]
    assert all(g.config.model.padded and g.config.model.depth == 4 for g in groups)
    # by hand, per sample and evaluation: alone 6·(4·2 + 2·1) weights' FLOPs + 30·2·1 metric ops = 120;
    # at width 64 in a depth-4 program: 6·(4·64 + 64·1) + 30·64·4 = 9600
    seconds_alone = programs.train_seconds(configs[0], 100_000, 64, 2, 1)
    seconds_padded = programs.train_seconds(configs[0], 100_000, 64, 64, 4)
    assert seconds_padded / seconds_alone == pytest.approx(9600 / 120, rel=1e-3)
    assert seconds_alone > programs.COMPILE_SECONDS


def test_what_is_never_padded():
    neuron = train_lib.TrainConfig(model=models.ModelConfig(), init_mode="explicit")
    probe = [_mlp(1, w, roundoff_probe=True) for w in (2, 3)]
    stochastic = [_mlp(1, w, update_rounding="stochastic", dtype="bfloat16") for w in (2, 3)]
    for configs in ([neuron], probe, stochastic):
        assert all(not g.config.model.padded for g in programs.group_programs(configs, 10, 8, "fewest"))
    with pytest.raises(ValueError, match="padded architecture without them"):
        train_lib.make_train(dataclasses.replace(probe[0], model=dataclasses.replace(probe[0].model, padded=True)))
    with pytest.raises(ValueError, match="depth >= 1"):
        models.ModelConfig(kind="neuron", padded=True)
    assert math.isclose(programs.COMPILE_SECONDS, 8.0)
