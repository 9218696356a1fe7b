"""Tests for lossjax.train: one run as a pure function, checked against the texts' neuron.

References are written here, independently of the engine:

- a numpy float64 loop of the neuron of the text on the saturated sigmoid neuron (x = 1, y = 0, η = 0.15, 300 steps, sigmoid
  output), for the quadratic cost ½(a − y)² and binary cross-entropy;
- the closed-form gradients dC/dw = (a − y) σ'(z) x (quadratic) and (a − y) x (cross-entropy);
- the texts' printed numbers: outputs 0.82 and 0.98 at the start, about 0.09 and 0.20 at the
  end of the quadratic runs.

Tolerances: float64 runs rtol 1e-12 against the numpy loop (300 steps of round-off), closed
forms rtol 1e-12; float32 comparisons rtol 1e-6.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lossjax.core import losses
from lossjax.core import metrics
from lossjax.core import initializers, models, padded
from lossjax.core import train
from engine_cases import runs, single

TEXTS_INITS = [(0.6, 0.9), (2.0, 2.0)]
ETA = 0.15
STEPS = 300


def np_sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def np_neuron(w, b, loss, *, x=1.0, y=0.0, eta=ETA, steps=STEPS):
    """The neuron of the text on the saturated sigmoid neuron in numpy float64.

    Returns per-step arrays (t = 0..T) of z, a, the loss and dC/dw, dC/db, and the final w, b.
    """
    zs, outs, costs, gws, gbs = [], [], [], [], []
    for _ in range(steps + 1):
        z = w * x + b
        a = np_sigmoid(z)
        if loss == "quadratic":
            cost = 0.5 * (a - y) ** 2
            delta = (a - y) * a * (1.0 - a)  # (a − y) σ'(z)
        else:
            cost = -(y * np.log(a) + (1 - y) * np.log(1 - a))
            delta = a - y  # σ' cancels
        zs.append(z), outs.append(a), costs.append(cost), gws.append(delta * x), gbs.append(delta)
        w_final, b_final = w, b
        w, b = w - eta * delta * x, b - eta * delta
    arrays = [np.asarray(v) for v in (zs, outs, costs, gws, gbs)]
    return (*arrays, w_final, b_final)


@pytest.fixture(scope="module")
def texts_runs():
    """The texts' neuron in float64, both inits, every step recorded, per loss."""
    out = {}
    for loss in ("quadratic", "bce"):
        cfg = train.TrainConfig(
            model=models.ModelConfig(), loss=loss, dtype="float64", steps=STEPS, record_every=1
        )
        w0, b0 = np.asarray(TEXTS_INITS).T
        fn = jax.jit(jax.vmap(train.make_train(cfg), in_axes=(0, None)))
        summary, traj = fn(runs(init_w=w0, init_b=b0, learning_rate=ETA), single())
        out[loss] = (
            {k: np.asarray(v) for k, v in summary._asdict().items()},
            {k: np.asarray(v) for k, v in traj._asdict().items()},
        )
    return out


# --------------------------------------------------------------------------------------
# The texts' neuron
# --------------------------------------------------------------------------------------


def test_texts_numbers(texts_runs):
    s, _ = texts_runs["quadratic"]
    np.testing.assert_array_equal(np.round(s["output_initial"], 2), [0.82, 0.98])
    np.testing.assert_array_equal(np.round(s["output_final"], 2), [0.09, 0.20])
    s_bce, _ = texts_runs["bce"]
    np.testing.assert_array_equal(s_bce["output_initial"], s["output_initial"])
    # Cross-entropy has no σ' factor: the w = b = 2 run is no longer held back.
    assert s_bce["output_final"][1] < 0.05 < s["output_final"][1]


@pytest.mark.parametrize("loss", ["quadratic", "bce"])
@pytest.mark.parametrize("which", [0, 1], ids=["w0.6_b0.9", "w2_b2"])
def test_float64_run_equals_numpy_loop(texts_runs, loss, which):
    s, traj = texts_runs[loss]
    s = {k: v[which] for k, v in s.items()}
    traj = {k: v[which] for k, v in traj.items()}
    w0, b0 = TEXTS_INITS[which]
    z, a, cost, gw, gb, w_T, b_T = np_neuron(w0, b0, loss)
    assert traj["output"].dtype == np.float64 and traj["output"].shape == (STEPS + 1,)
    tol = dict(rtol=1e-12, atol=0)
    np.testing.assert_allclose(traj["output"], a, **tol)
    np.testing.assert_allclose(traj["logit"], z, **tol)
    np.testing.assert_allclose(traj["loss"], cost, **tol)
    np.testing.assert_allclose(traj["grad_w"], gw, **tol)
    np.testing.assert_allclose(traj["grad_b"], gb, **tol)
    np.testing.assert_allclose(traj["grad_norm"], np.hypot(gw, gb), **tol)
    # SGD: θ_T = θ_0 − η Σ_{t<T} g_t, from the engine's own recorded gradients.
    w_engine = w0 - ETA * np.sum(traj["grad_w"][:-1])
    b_engine = b0 - ETA * np.sum(traj["grad_b"][:-1])
    np.testing.assert_allclose([w_engine, b_engine], [w_T, b_T], rtol=1e-12)
    np.testing.assert_allclose(w_engine + b_engine, traj["logit"][-1], rtol=1e-12)
    np.testing.assert_allclose(s["output_initial"], a[0], **tol)
    np.testing.assert_allclose(s["output_final"], a[-1], **tol)
    np.testing.assert_allclose(s["loss_initial"], cost[0], **tol)
    np.testing.assert_allclose(s["loss_final"], cost[-1], **tol)
    np.testing.assert_allclose(s["loss_min"], cost.min(), **tol)
    np.testing.assert_allclose(s["error_final"], abs(a[-1]), **tol)


@pytest.mark.parametrize("loss", ["quadratic", "bce"])
def test_engine_gradients_are_the_closed_forms(texts_runs, loss):
    """dC/dw = (a − y) σ'(z) x for ½(a − y)², (a − y) x for cross-entropy (x = 1, y = 0)."""
    _, traj = texts_runs[loss]
    a, z = traj["output"], traj["logit"]
    sigma_prime = np_sigmoid(z) * (1 - np_sigmoid(z))
    expected = (a - 0.0) * sigma_prime if loss == "quadratic" else (a - 0.0)
    np.testing.assert_allclose(traj["grad_w"], expected, rtol=1e-12)
    np.testing.assert_allclose(traj["grad_b"], expected, rtol=1e-12)


def test_saturated_start_has_the_small_gradient(texts_runs):
    """The explanation of the plateau in the text on the saturated sigmoid neuron: at w = b = 2, σ'(4) ≈ 0.018 shrinks the gradient."""
    _, traj = texts_runs["quadratic"]
    g_fast, g_slow = traj["grad_w"][:, 0]
    np.testing.assert_allclose(g_slow, np_sigmoid(4.0) * np_sigmoid(4.0) * (1 - np_sigmoid(4.0)), rtol=1e-12)
    assert g_slow < g_fast / 7


POINTS = [  # (w, b, x, y): ordinary, saturated on both sides, target 1, negative input
    (0.6, 0.9, 1.0, 0.0),
    (2.0, 2.0, 1.0, 0.0),
    (-3.0, 0.5, 2.0, 1.0),
    (4.0, 4.0, 1.0, 1.0),
    (-5.0, -4.0, 1.0, 0.0),
    (0.3, -0.2, -1.7, 0.25),
]


@pytest.mark.parametrize("loss", ["quadratic", "bce"])
def test_registry_gradients_are_the_closed_forms(loss):
    fn = losses.get_loss(loss)

    def cost(w, b, x, y):
        z = (w * x + b).reshape(1, 1)
        prediction = z if fn.input == "logits" else jax.nn.sigmoid(z)
        return fn.fn(prediction, y.reshape(1, 1))

    grad = jax.jit(jax.vmap(jax.grad(cost, argnums=(0, 1))))
    w, b, x, y = (np.asarray(c, np.float64) for c in zip(*POINTS))
    gw, gb = (np.asarray(g) for g in grad(w, b, x, y))
    z = w * x + b
    a = np_sigmoid(z)
    delta = (a - y) * a * (1 - a) if loss == "quadratic" else (a - y)
    np.testing.assert_allclose(gw, delta * x, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(gb, delta, rtol=1e-12, atol=1e-300)
    assert np.all(np.isfinite(gw)) and np.all(np.isfinite(gb))


def test_one_sided_cross_entropy_gradient_is_zero_for_target_zero():
    fn = losses.get_loss("ce_one_sided").fn
    g = jax.grad(lambda w: fn(jax.nn.sigmoid(jnp.full((1, 1), w * 1.0 + 0.9)), jnp.zeros((1, 1))))(0.6)
    assert float(g) == 0.0


# --------------------------------------------------------------------------------------
# The function itself
# --------------------------------------------------------------------------------------


def test_jit_equals_eager_and_float32_stays_float32(texts_runs):
    """``make_train(cfg)(run, data)`` without jit equals the jitted, vmapped grid; a float32
    run keeps float32 results although tests/conftest.py enables x64."""
    cfg = train.TrainConfig(model=models.ModelConfig(), loss="bce", dtype="float32", steps=4, record_every=2)
    data = single(dtype=np.float32)
    batch = runs(np.float32, init_w=[0.6, 2.0], init_b=[0.9, 2.0], learning_rate=ETA)
    fn = train.make_train(cfg)
    summary, traj = jax.jit(jax.vmap(fn, in_axes=(0, None)))(batch, data)
    eager_summary, eager_traj = fn(jax.tree_util.tree_map(lambda v: v[1], batch), data)
    for name in train.Summary._fields:
        e, j = np.asarray(getattr(eager_summary, name)), np.asarray(getattr(summary, name))[1]
        assert e.dtype == j.dtype, name
        np.testing.assert_allclose(e, j, rtol=1e-6, err_msg=name)
    for name in metrics.Observation._fields:
        np.testing.assert_allclose(
            np.asarray(getattr(eager_traj, name)), np.asarray(getattr(traj, name))[1], rtol=1e-6, err_msg=name
        )
    assert np.asarray(traj.loss).shape == (2, 4 // 2 + 1)

    ints = {"steps_to_target", "zero_grad_steps", "zero_update_steps", "rounded_update_steps", "tiny_grad_steps",
            "longest_plateau", "first_nonfinite"}
    for name, value in summary._asdict().items():
        if name in ints:
            assert value.dtype == jnp.int32, name
        elif name in ("outcome", "roundoff_decided", "stall_cause"):
            assert value.dtype == jnp.int8
        elif name == "born_dead":
            assert value.dtype == jnp.bool_
        else:
            assert value.dtype == jnp.float32, name
    for name, value in traj._asdict().items():
        if name not in ("grad_is_zero", "finite"):
            assert value.dtype == jnp.float32, name
    # Close to the float64 numpy loop for these 4 steps.
    _, a, *_ = np_neuron(0.6, 0.9, "bce", steps=4)
    np.testing.assert_allclose(np.asarray(traj.output)[0], a[::2], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(summary.output_initial), np_sigmoid(np.array([1.5, 4.0])), rtol=1e-6)  # σ(w0 + b0), x = 1


def test_target_field_replaces_the_data_targets():
    """``run.target`` (finite) replaces y; NaN keeps the data's."""
    cfg = train.TrainConfig(model=models.ModelConfig(), loss="quadratic", dtype="float64", steps=1)
    fn = jax.jit(jax.vmap(train.make_train(cfg), in_axes=(0, None)))
    s, _ = fn(runs(init_w=0.6, init_b=0.9, learning_rate=ETA, target=[np.nan, 1.0]), single(y=0.0))
    a0 = np_sigmoid(1.5)
    np.testing.assert_allclose(np.asarray(s.loss_initial), [0.5 * a0**2, 0.5 * (a0 - 1) ** 2], rtol=1e-12)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"steps": -1}, "steps"),
        ({"steps": 10, "record_every": 3}, "record_every"),
        ({"record_every": -1}, "record_every"),
        ({"dtype": "float8"}, "dtype"),
        ({"estimator": "magic"}, "estimator"),
        ({"init_mode": "random"}, "init mode"),
        ({"batch_size": -1}, "batch_size"),
        ({"score_samples": 1}, "score_samples"),
    ],
)
def test_train_config_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        train.TrainConfig(model=models.ModelConfig(), **kwargs)


def test_score_function_needs_an_output_loss():
    cfg = train.TrainConfig(model=models.ModelConfig(), loss="bce", estimator="score_function")
    with pytest.raises(ValueError, match="score_function"):
        train.make_train(cfg)


def test_explicit_init_is_for_neurons_only():
    mc = models.ModelConfig(kind="mlp", n_inputs=2, depth=1, width=3)
    with pytest.raises(ValueError, match="neuron"):
        initializers.init_explicit(mc, 1.0, 0.0, jnp.float32)


def test_train_config_accepts_the_smallest_allowed_values():
    """The boundaries of the validation above: 1 step, 2 score-function samples, batch size 0 (full batch)."""
    cfg = train.TrainConfig(model=models.ModelConfig(), steps=1, score_samples=2, batch_size=0, record_every=1)
    assert (cfg.steps, cfg.score_samples, cfg.batch_size, cfg.record_every) == (1, 2, 0, 1)


def test_train_config_defaults_are_the_sweep_files_defaults():
    """A TrainConfig built in Python trains what a sweep file that leaves the key out trains: the
    defaults written in lossjax/core/train.py are those of [train] in lossjax/config.py (`lossjax list -v`)."""
    import dataclasses

    from lossjax import config

    keys = config.KEYS["train"]
    shared = [f for f in dataclasses.fields(train.TrainConfig) if f.name in keys and f.default is not dataclasses.MISSING]
    assert {f.name for f in shared} >= {"steps", "loss", "optimizer", "dtype", "estimator", "score_samples", "record_every"}
    for f in shared:
        assert f.default == keys[f.name].param.default, f.name


def test_each_run_draws_its_init_batches_and_samples_from_three_streams():
    """A run's seed keys three independent streams, fold_in(key(seed), 0 / 1 / 2): the scheme
    initialisation, the mini-batches, the score-function samples. Pinned here because every
    committed result of a scheme-initialised sweep depends on it (a rerun must reproduce them),
    and because the init sharing the mini-batch stream would correlate the two."""
    cfg = train.TrainConfig(model=models.ModelConfig(kind="mlp", n_inputs=2, depth=1, width=3, hidden_activation="relu"),
                            init_mode="scheme", dtype="float32")
    run = jax.tree_util.tree_map(lambda v: v[0], runs(np.float32, seed=7, init_scheme=initializers.init_scheme_index("normal")))
    drawn = train.init_params(cfg, run)
    for stream, same in ((0, True), (1, False), (2, False)):
        key = jax.random.fold_in(jax.random.key(7), stream)
        other = initializers.init_from_scheme(cfg.model, key, run.init_scheme, run.init_scale, run.init_bias, run.init_bias_std,
                                        jnp.float32, schemes=cfg.init_schemes)
        equal = all(bool(jnp.array_equal(a, b)) for a, b in zip(jax.tree_util.tree_leaves(drawn),
                                                                 jax.tree_util.tree_leaves(other)))
        assert equal is same, stream


def test_recording_a_trajectory_changes_no_result():
    """Step t of a run is the same whether or not its observations are recorded (record_every > 0
    runs the steps in blocks): same mini-batch, same accumulators, so the summary is bitwise equal;
    and the records are the observations at t = 0, k, 2k, …, T."""
    x = np.linspace(-1.0, 1.0, 5)[:, None]
    dataset = train.Data(*(jnp.asarray(a) for a in (x, (x > 0).astype(float), np.zeros((0, 1)), np.zeros((0, 1)))))
    batch = runs(np.float64, seed=[0, 1], init_w=[0.5, -2.0], init_b=[0.1, 0.3], learning_rate=0.5)
    out = {}
    for every in (0, 1, 3):
        cfg = train.TrainConfig(model=models.ModelConfig(), loss="bce", dtype="float64", steps=6, batch_size=2,
                                record_every=every)
        out[every] = jax.jit(jax.vmap(train.make_train(cfg), in_axes=(0, None)))(batch, dataset)
    for every in (1, 3):
        for name in train.Summary._fields:
            np.testing.assert_array_equal(getattr(out[every][0], name), getattr(out[0][0], name), err_msg=name)
    np.testing.assert_array_equal(out[3][1].loss, out[1][1].loss[:, ::3])


def test_a_one_step_run_is_the_first_step_of_a_longer_run():
    """A one-step run takes its update from θ_0's evaluation (no scan); a two-step run takes the
    same update inside its scan. Full batch, float32, a tanh MLP with scheme init: θ_0's and θ_1's
    observations (every observed quantity, the trajectory's first two records, with Adam's state
    started in step 0) agree to float32 rounding."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(24, 3)).astype(np.float32)
    y = (rng.random((24, 1)) < 0.5).astype(np.float32)
    data = train.Data(jnp.asarray(x), jnp.asarray(y), jnp.zeros((0, 3), jnp.float32), jnp.zeros((0, 1), jnp.float32))
    mc = models.ModelConfig(kind="mlp", n_inputs=3, depth=2, width=5, hidden_activation="tanh")
    batch = runs(np.float32, seed=[0, 1, 2], learning_rate=0.3, init_scheme=initializers.init_scheme_index("he"))
    traj = {}
    with jax.numpy_dtype_promotion("standard"):  # optax's Adam promotes (see tests/test_optimizers.py)
        for steps in (1, 2):
            cfg = train.TrainConfig(model=mc, loss="bce", optimizer="adam", dtype="float32", steps=steps,
                                    init_mode="scheme", record_every=1)
            _, traj[steps] = jax.jit(jax.vmap(train.make_train(cfg), in_axes=(0, None)))(batch, data)
    for q in metrics.OBSERVED:
        one, two = np.asarray(getattr(traj[1], q.name)), np.asarray(getattr(traj[2], q.name))
        np.testing.assert_allclose(one, two[:, :2], rtol=2e-6, atol=1e-7, err_msg=q.name)
    assert not np.allclose(np.asarray(traj[1].loss)[:, 0], np.asarray(traj[1].loss)[:, 1])  # the step moved θ


INIT_FINAL = [("loss_initial", "loss_final"), ("output_initial", "output_final"), ("saturated_init", "saturated_final"),
              ("dead_init", "dead_final"), ("layer_saturated_init", "layer_saturated_final"),
              ("layer_dead_init", "layer_dead_final"), ("layer_dormant_init", "layer_dormant_final"),
              ("layer_grad_norm_init", "layer_grad_norm_final")]


def test_a_zero_step_run_observes_theta0_alone():
    """steps = 0: no update, θ_T = θ_0. The neuron's loss against the closed form; an MLP's
    θ_0 results equal a one-step run's (its θ_0 half), its results at θ_T equal those at θ_0
    and its one trajectory record the one-step run's first; averages over update steps are NaN,
    counts 0; with mini-batches the final evaluation is still on the whole training set."""
    cfg = train.TrainConfig(model=models.ModelConfig(), loss="quadratic", dtype="float64", steps=0)
    s, _ = jax.jit(jax.vmap(train.make_train(cfg), in_axes=(0, None)))(
        runs(init_w=0.6, init_b=0.9, learning_rate=ETA, target=[np.nan, 1.0]), single(y=0.0))
    a0 = np_sigmoid(1.5)
    np.testing.assert_allclose(np.asarray(s.loss_final), [0.5 * a0**2, 0.5 * (a0 - 1) ** 2], rtol=1e-12)
    np.testing.assert_array_equal(np.asarray(s.loss_final), np.asarray(s.loss_initial))

    rng = np.random.default_rng(5)
    x = rng.normal(size=(16, 3)).astype(np.float32)
    y = (rng.random((16, 1)) < 0.5).astype(np.float32)
    data = train.Data(jnp.asarray(x), jnp.asarray(y), jnp.zeros((0, 3), jnp.float32), jnp.zeros((0, 1), jnp.float32))
    mc = models.ModelConfig(kind="mlp", n_inputs=3, depth=3, width=4, hidden_activation="relu")
    batch = runs(np.float32, seed=[0, 1, 2, 3], learning_rate=0.3, init_scheme=initializers.init_scheme_index("he"),
                 init_bias=[0.0, 0.0, 0.1, -1.0])
    out = {}
    for steps, batch_size in ((0, 0), (1, 0), (0, 4)):
        cfg = train.TrainConfig(model=mc, loss="bce", optimizer="momentum", dtype="float32", steps=steps,
                                batch_size=batch_size, init_mode="scheme", record_every=1)
        out[steps, batch_size] = jax.jit(jax.vmap(train.make_train(cfg), in_axes=(0, None)))(batch, data)
    zero, traj_zero = out[0, 0]
    one, traj_one = out[1, 0]
    for init, final in INIT_FINAL:
        np.testing.assert_array_equal(np.asarray(getattr(zero, init)), np.asarray(getattr(one, init)), err_msg=init)
        np.testing.assert_array_equal(np.asarray(getattr(zero, final)), np.asarray(getattr(zero, init)), err_msg=final)
    np.testing.assert_array_equal(np.asarray(zero.born_dead), np.asarray(one.born_dead))
    for name in ("saturated_mean", "layer_saturated_mean", "layer_grad_norm_mean", "layer_zero_update_share"):
        assert np.all(np.isnan(np.asarray(getattr(zero, name)))), name
    for name in ("zero_grad_steps", "zero_update_steps", "tiny_grad_steps", "longest_plateau"):
        np.testing.assert_array_equal(np.asarray(getattr(zero, name)), 0, err_msg=name)
    np.testing.assert_array_equal(np.asarray(traj_zero.loss)[:, 0], np.asarray(traj_one.loss)[:, 0])
    assert np.asarray(traj_zero.loss).shape == (4, 1)
    mini, _ = out[0, 4]
    np.testing.assert_array_equal(np.asarray(mini.loss_final), np.asarray(zero.loss_final))  # the whole set
    assert not np.array_equal(np.asarray(mini.loss_initial), np.asarray(zero.loss_initial))  # a batch of 4


def _dot_precisions(jaxpr) -> list:
    """The ``precision`` of every ``dot_general`` in ``jaxpr`` and the jaxprs inside it (scan, cond,
    while, custom VJPs, ...)."""
    from jax.extend import core as jex

    found = []
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "dot_general":
            found.append(eqn.params["precision"])
        for value in eqn.params.values():
            for sub in value if isinstance(value, (tuple, list)) else (value,):
                if isinstance(sub, jex.ClosedJaxpr):
                    found += _dot_precisions(sub.jaxpr)
                elif isinstance(sub, jex.Jaxpr):
                    found += _dot_precisions(sub)
    return found


@pytest.mark.parametrize("impl,padded_to,dtype", [("pytree", None, "float32"), ("scan", None, "float32"),
                                                   ("flax", None, "bfloat16"), ("scan", (5, 6), "float32")])
def test_every_matrix_product_of_a_run_is_traced_at_the_highest_precision(impl, padded_to, dtype):
    """A run's dtype is its arithmetic: XLA's default on NVIDIA GPUs multiplies float32 matrices in
    TF32 (on an H200, 2.9e-4 relative error against 2.9e-7 at "highest":
    experiments/bench/matmul_precision.py), so every product the training program traces, forward
    and backward, through the hidden-layer scan and the padded program's loop, asks for "highest".
    (XLA's CPU computes float32 either way, so this looks at the program, not at its numbers.)"""
    true = models.ModelConfig(kind="mlp", n_inputs=2, n_outputs=1, depth=3, width=4, hidden_activation="tanh", impl=impl)
    model = true if padded_to is None else models.ModelConfig(
        kind="mlp", n_inputs=2, n_outputs=1, depth=padded_to[0], width=padded_to[1], hidden_activation="tanh", padded=True)
    config = train.TrainConfig(model=model, dtype=dtype, steps=3, init_mode="scheme")
    shape = None if padded_to is None else padded.arch_shape(true)
    metric = np.float32
    run = train.RunInputs(seed=np.int32(0), learning_rate=metric(0.1), init_w=metric(0), init_b=metric(0),
                          init_scheme=np.int32(0), init_scale=metric(1), init_bias=metric(0), init_bias_std=metric(0),
                          target=metric(np.nan))
    x = np.linspace(-1, 1, 16, dtype=np.float32).reshape(8, 2)
    y = (x[:, :1] > 0).astype(np.float32)
    data = train.Data(*(jnp.asarray(a, config.jnp_dtype) for a in (x, y, x, y)))
    jaxpr = jax.make_jaxpr(train.make_train(config))(run, data, None, shape)
    precisions = _dot_precisions(jaxpr.jaxpr)
    assert len(precisions) >= 6  # forward and backward products of at least 3 layers
    highest = jax.lax.Precision.HIGHEST
    assert all(p == (highest, highest) for p in precisions), set(precisions)
