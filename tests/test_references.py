"""The engine's features behind the published results, each against a reference written here.

No reference below calls lossjax to compute the expected value; lossjax is only what is
tested. Each test names, in its docstring, the one-line change of the engine it exists to catch
(``python tests/mutate.py`` applies such changes and checks that the default tests catch them).

- the score-function gradient: unbiased for the closed-form ∇E[L] of Bernoulli outputs, and
  one step lowers the expected loss;
- the straight-through gradient inside ``make_train``: (a − y)·1·x and (a − y)·σ'(z)·x by hand;
- K-class accuracy: numpy argmax of a numpy forward pass;
- momentum, Nesterov, Adam, RMSprop, Adagrad and signSGD runs against numpy loops of their
  published update rules, written with optax's documented conventions;
- bfloat16 and float16 runs (SGD and Adam) against numpy in the same precision (``ml_dtypes``
  bfloat16), the optimiser in float32 as documented;
- ``born_dead`` on nearly constant outputs; the saturation threshold is strict;
- ``outcome_shares`` on a known mix of outcomes;
- ``layer_act_mean``/``std``, ``layer_grad_norm`` and ``layer_grad_norm_mean`` against a numpy
  forward and backward pass;
- the flax and the plain-pytree MLP give the same numbers.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
import xarray as xr

from lossjax.core import initializers, metrics, models, train
from lossjax.core.metrics import Thresholds
from lossjax.io import results
from engine_cases import runs

# --------------------------------------------------------------------------------------
# Helpers (numpy only)
# --------------------------------------------------------------------------------------

X3 = np.asarray([[-1.0], [0.5], [2.0]])  # three one-feature examples


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def data(x, y, dtype=np.float64, x_test=None, y_test=None) -> train.Data:
    x, y = np.asarray(x, dtype), np.asarray(y, dtype)
    if x_test is None:
        x_test, y_test = np.zeros((0, x.shape[1]), dtype), np.zeros((0, y.shape[1]), dtype)
    return train.Data(*(jnp.asarray(np.asarray(a, dtype)) for a in (x, y, x_test, y_test)))


def train_many(config, batch, dataset):
    s, traj = jax.jit(jax.vmap(train.make_train(config), in_axes=(0, None)))(batch, dataset)
    s = {k: np.asarray(v) for k, v in s._asdict().items()}
    if traj is not None:
        traj = {k: np.asarray(v) for k, v in traj._asdict().items()}
    return s, traj


#: Scheme-initialised (MLP) runs get float32 run inputs even in float64: initializers._draw multiplies
#: its float32 unit draw by the run's scale, a float32 × float64 promotion that the strict
#: harness refuses (standard promotion, as in ``lossjax run``, gives float64).
def one_run(batch: train.RunInputs, i: int) -> train.RunInputs:
    return jax.tree_util.tree_map(lambda v: v[i], batch)


def np_layers(config: train.TrainConfig, run: train.RunInputs):
    """θ_0 of an MLP run as numpy (kernel, bias) pairs (the engine's draw; only read here)."""
    params = train.init_params(config, run)
    return [(np.asarray(k, np.float64), np.asarray(b, np.float64)) for k, b in
            config.model.architecture.layers(config.model, params)]


# --------------------------------------------------------------------------------------
# Score-function estimator
# --------------------------------------------------------------------------------------


def expected_zero_one(w, b, x, y):
    """E_ŷ[1 − accuracy] for ŷ_i ~ Bernoulli(σ(w x_i + b)): mean_i p_i(1 − y_i) + (1 − p_i) y_i."""
    p = sigmoid(w * x + b)
    return np.mean(p * (1 - y) + (1 - p) * y, axis=-1)


def test_score_function_gradient_is_unbiased_for_the_closed_form():
    """Catches: the advantage's sign flipped, the baseline not held out, samples drawn from the
    wrong probability. ∇_w E[L] = mean_i (1 − 2y_i) σ'(z_i) x_i for the 0-1 loss."""
    x, y = X3[:, 0], np.asarray([0.0, 1.0, 1.0])
    w0, b0, n = 0.8, -0.3, 3000
    cfg = train.TrainConfig(
        model=models.ModelConfig(), loss="zero_one", estimator="score_function", score_samples=8,
        dtype="float64", steps=1, record_every=1,
    )
    _, traj = train_many(cfg, runs(seed=np.arange(n), init_w=w0, init_b=b0, learning_rate=0.0), data(X3, y[:, None]))
    z = w0 * x + b0
    factor = (1 - 2 * y) * sigmoid(z) * (1 - sigmoid(z))
    for name, expected in (("grad_w", np.mean(factor * x)), ("grad_b", np.mean(factor))):
        g = traj[name][:, 0]
        se = g.std() / np.sqrt(n)
        assert abs(expected) > 10 * se  # the test can tell the gradient from its negative
        assert abs(g.mean() - expected) < 4 * se, (name, g.mean(), expected, se)


def test_score_function_gradient_with_three_classes():
    """Catches the K-class sampling path being wrong (samples drawn in the wrong shape, from the
    wrong distribution, or the advantage's sign). A linear model with 3 outputs and every
    parameter 0, so softmax(z) = 1/3 for each of 4 examples; the 0-1 loss's expectation is
    E[L] = mean_n (1 − p_{y_n}) and ∂E[L]/∂b_0 = −mean_n p_{y_n} (δ_{y_n,0} − p_0)
    = −(1/3)(mean_n δ_{y_n,0} − 1/3): with labels 0, 1, 2, 0, that is −1/18."""
    labels = np.asarray([0, 1, 2, 0])
    x = np.asarray([[0.3, -1.0], [1.2, 0.4], [-0.7, 0.9], [0.0, 2.0]])
    y = np.eye(3)[labels]
    n = 3000
    cfg = train.TrainConfig(
        model=models.ModelConfig(kind="mlp", n_inputs=2, n_outputs=3, depth=0, activation="identity"),
        loss="zero_one", estimator="score_function", score_samples=8, dtype="float64", steps=1,
        init_mode="scheme", record_every=1,
    )
    batch = runs(seed=np.arange(n), init_scale=0.0, init_bias=0.0, init_bias_std=0.0, learning_rate=0.0)
    _, traj = train_many(cfg, batch, data(x, y))
    g = traj["grad_b"][:, 0]
    expected = -(1 / 3) * (np.mean(labels == 0) - 1 / 3)
    se = g.std() / np.sqrt(n)
    assert abs(expected) > 10 * se
    assert abs(g.mean() - expected) < 4 * se, (g.mean(), expected, se)


def test_score_function_step_lowers_the_expected_loss():
    """Catches the same changes as above, through the update: one SGD step with the estimate
    lowers E[L] (computed in closed form) on average over seeds, and the engine's θ_1 is θ_0 − ηĝ."""
    x, y = X3[:, 0], np.asarray([0.0, 1.0, 1.0])
    w0, b0, eta, n = 0.8, -0.3, 2.0, 400
    cfg = train.TrainConfig(
        model=models.ModelConfig(), loss="zero_one", estimator="score_function", score_samples=8,
        dtype="float64", steps=1, record_every=1,
    )
    _, traj = train_many(cfg, runs(seed=np.arange(n), init_w=w0, init_b=b0, learning_rate=eta), data(X3, y[:, None]))
    w1 = w0 - eta * traj["grad_w"][:, 0]
    b1 = b0 - eta * traj["grad_b"][:, 0]
    np.testing.assert_allclose(traj["logit"][:, 1], w1 * np.mean(x) + b1, rtol=1e-12)
    before = expected_zero_one(w0, b0, x, y)
    after = expected_zero_one(w1[:, None], b1[:, None], x, y)
    assert np.mean(after) < before - 0.02, (np.mean(after), before)


# --------------------------------------------------------------------------------------
# Straight-through estimator, inside the engine
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("estimator", ["ste_identity", "ste_sigmoid", "exact"])
def test_straight_through_gradient_in_the_engine(estimator):
    """Catches: the estimator's surrogate not used by the engine (forward and backward both the
    true step), a wrong surrogate slope. A step neuron under the quadratic cost, 6 SGD steps,
    against a numpy loop: dC/dw = mean_i (a_i − y_i)·s(z_i)·x_i with a = [z > 0] and s = 1
    (identity), σ'(z) (sigmoid) or 0 (exact: the step's true derivative)."""
    x, y = X3[:, 0], np.asarray([1.0, 0.0, 0.0])
    w, b, eta, steps = 0.8, -0.3, 0.4, 6
    cfg = train.TrainConfig(
        model=models.ModelConfig(activation="step"), loss="quadratic", estimator=estimator,
        dtype="float64", steps=steps, record_every=1,
    )
    _, traj = train_many(cfg, runs(init_w=w, init_b=b, learning_rate=eta), data(X3, y[:, None]))
    slope = {"ste_identity": lambda z: np.ones_like(z),
             "ste_sigmoid": lambda z: sigmoid(z) * (1 - sigmoid(z)),
             "exact": lambda z: np.zeros_like(z)}[estimator]
    gws, gbs, costs, outs = [], [], [], []
    for _ in range(steps + 1):
        z = w * x + b
        a = (z > 0).astype(float)
        delta = (a - y) * slope(z)
        gws.append(np.mean(delta * x)), gbs.append(np.mean(delta))
        costs.append(np.mean(0.5 * (a - y) ** 2)), outs.append(np.mean(a))
        w, b = w - eta * gws[-1], b - eta * gbs[-1]
    np.testing.assert_allclose(traj["grad_w"][0], gws, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(traj["grad_b"][0], gbs, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(traj["loss"][0], costs, rtol=1e-12)
    np.testing.assert_allclose(traj["output"][0], outs, rtol=1e-12)  # forward: the true step
    if estimator != "exact":
        assert np.all(np.abs(gws[:1]) > 0.01)


# --------------------------------------------------------------------------------------
# K-class accuracy
# --------------------------------------------------------------------------------------


def test_three_class_mlp_accuracy_is_the_argmax_rule():
    """Catches: accuracy comparing with argmin of the target or of the logits, the K-class
    branch of zero_one reversed. A 3-class tanh MLP (one hidden layer of 4) at θ_0 (learning
    rate 0), 12 training and 9 test points; numpy forward pass and argmax."""
    rng = np.random.default_rng(0)
    x_tr, x_te = rng.normal(size=(12, 2)), rng.normal(size=(9, 2))
    c_tr, c_te = rng.integers(0, 3, 12), rng.integers(0, 3, 9)
    y_tr, y_te = np.eye(3)[c_tr], np.eye(3)[c_te]
    cfg = train.TrainConfig(
        model=models.ModelConfig(kind="mlp", n_inputs=2, n_outputs=3, depth=1, width=4,
                                 hidden_activation="tanh", activation="sigmoid"),
        loss="softmax_ce", dtype="float64", steps=1, init_mode="scheme",
    )
    batch = runs(np.float32, seed=np.arange(6), init_scheme=initializers.init_scheme_index("normal"), init_scale=1.5,
                 init_bias_std=1.0, learning_rate=0.0)
    s, _ = train_many(cfg, batch, data(x_tr, y_tr, x_test=x_te, y_test=y_te))
    for i in range(6):
        (k1, b1), (k2, b2) = np_layers(cfg, one_run(batch, i))
        for x, c, key in ((x_tr, c_tr, "accuracy_final"), (x_te, c_te, "test_accuracy")):
            logits = np.tanh(x @ k1 + b1) @ k2 + b2
            expected = np.mean(np.argmax(logits, axis=1) == c)
            assert s[key][i] == pytest.approx(expected, abs=1e-6), (i, key)  # accuracy is float32
    # The grid has accuracies that an argmin rule would not reproduce.
    assert len(set(np.round(s["accuracy_final"], 6))) > 2


def test_three_class_zero_one_is_one_minus_argmax_accuracy():
    """Catches the K-class branch of the 0-1 objective reversed (argmin, or != for ==)."""
    from lossjax.core import objectives

    rng = np.random.default_rng(3)
    a, c = rng.uniform(size=(40, 3)), rng.integers(0, 3, 40)
    expected = 1 - np.mean(np.argmax(a, axis=1) == c)
    assert float(objectives.zero_one(jnp.asarray(a), jnp.asarray(np.eye(3)[c]))) == pytest.approx(expected, abs=1e-15)
    assert 0.3 < expected < 0.9


# --------------------------------------------------------------------------------------
# Optimisers against their published update rules
# --------------------------------------------------------------------------------------


def np_update(name):
    """The published rule, with optax's conventions (optax 0.2 documentation):

    momentum (heavy ball, optax.sgd(momentum=β)): m ← g + βm, θ ← θ − ηm, β = 0.9;
    nesterov: m ← g + βm, θ ← θ − η(g + βm);
    adam (Kingma & Ba 2015): m ← β1 m + (1−β1) g, v ← β2 v + (1−β2) g², bias-corrected
      m̂ = m/(1−β1^t), v̂ = v/(1−β2^t), θ ← θ − η m̂/(√v̂ + ε), β = (0.9, 0.999), ε = 1e-8;
    rmsprop (Tieleman & Hinton 2012, optax's default eps_in_sqrt): v ← ρv + (1−ρ)g²,
      θ ← θ − η g/√(v + ε), ρ = 0.9, ε = 1e-8, no bias correction;
    adagrad (Duchi et al. 2011, optax: accumulator starts at 0.1): G ← G + g²,
      θ ← θ − η g/√(G + ε), ε = 1e-7;
    sign_sgd: θ ← θ − η sign(g).
    """

    def sgd(g, s, t, eta):
        return -eta * g, s

    def momentum(g, s, t, eta, nesterov=False):
        m = g + 0.9 * s.get("m", 0.0)
        return -eta * ((g + 0.9 * m) if nesterov else m), {"m": m}

    def adam(g, s, t, eta):
        m = 0.9 * s.get("m", 0.0) + 0.1 * g
        v = 0.999 * s.get("v", 0.0) + 0.001 * g**2
        m_hat, v_hat = m / (1 - 0.9 ** (t + 1)), v / (1 - 0.999 ** (t + 1))
        return -eta * m_hat / (np.sqrt(v_hat) + 1e-8), {"m": m, "v": v}

    def rmsprop(g, s, t, eta):
        v = 0.9 * s.get("v", 0.0) + 0.1 * g**2
        return -eta * g / np.sqrt(v + 1e-8), {"v": v}

    def adagrad(g, s, t, eta):
        acc = s.get("G", 0.1) + g**2
        return -eta * g / np.sqrt(acc + 1e-7), {"G": acc}

    def sign_sgd(g, s, t, eta):
        return -eta * np.sign(g), s

    return {
        "sgd": sgd, "momentum": momentum, "nesterov": lambda *a: momentum(*a, nesterov=True),
        "adam": adam, "rmsprop": rmsprop, "adagrad": adagrad, "sign_sgd": sign_sgd,
    }[name]


@pytest.mark.parametrize("name", ["sgd", "momentum", "nesterov", "adam", "rmsprop", "adagrad", "sign_sgd"])
def test_optimizer_run_equals_its_published_rule(name):
    """Catches: a wrong optimiser behind a name, a hyperparameter changed (β, ε, decay), the
    bias correction dropped. A sigmoid neuron under the quadratic cost on three examples,
    float64, 30 steps, two inits; every step's loss and gradient against the numpy loop."""
    x, y = X3[:, 0], np.asarray([0.0, 1.0, 1.0])
    eta, steps = 0.3, 30
    inits = [(0.6, 0.9), (-2.0, 2.5)]
    cfg = train.TrainConfig(model=models.ModelConfig(), loss="quadratic", optimizer=name, dtype="float64",
                            steps=steps, record_every=1)
    w0, b0 = np.asarray(inits).T
    with jax.numpy_dtype_promotion("standard"):  # optax's bias correction: decay ** int32 count
        _, traj = train_many(cfg, runs(init_w=w0, init_b=b0, learning_rate=eta), data(X3, y[:, None]))
    rule = np_update(name)
    for i, (w, b) in enumerate(inits):
        sw, sb, gws, gbs, costs = {}, {}, [], [], []
        for t in range(steps + 1):
            a = sigmoid(w * x + b)
            delta = (a - y) * a * (1 - a)
            gw, gb = np.mean(delta * x), np.mean(delta)
            gws.append(gw), gbs.append(gb), costs.append(np.mean(0.5 * (a - y) ** 2))
            uw, sw = rule(gw, sw, t, eta)
            ub, sb = rule(gb, sb, t, eta)
            w, b = w + uw, b + ub
        np.testing.assert_allclose(traj["loss"][i], costs, rtol=1e-9, err_msg=name)
        np.testing.assert_allclose(traj["grad_w"][i], gws, rtol=1e-8, atol=1e-15, err_msg=name)
        np.testing.assert_allclose(traj["grad_b"][i], gbs, rtol=1e-8, atol=1e-15, err_msg=name)
        assert costs[-1] < costs[0] - 1e-3  # it moved: the rules are told apart


# --------------------------------------------------------------------------------------
# Low precision against numpy in the same precision
# --------------------------------------------------------------------------------------

LOW = {"bfloat16": ml_dtypes.bfloat16, "float16": np.float16}


def np_low_precision_neuron(w, b, eta, steps, dtype, optimizer="sgd", state=np.float32):
    """The texts' neuron (x = 1, y = 0, quadratic cost) with every operation of the forward and
    backward pass and every parameter rounded to ``dtype``, trained by the optimiser with its
    learning rate, constants, state and arithmetic in ``state`` (lossjax's documented contract:
    float32), the update Δ rounded once to ``dtype``, θ ← θ + Δ in ``dtype``:

    sgd: Δ = −η g;
    adam (Kingma & Ba 2015, optax's order): m ← (1−β1) g + β1 m, v ← (1−β2) g² + β2 v,
      m̂ = m/(1−β1^t), v̂ = v/(1−β2^t) (1 − β^t computed in float64, then rounded to ``state``),
      Δ = −η m̂/(√v̂ + ε), β = (0.9, 0.999), ε = 1e-8.

    Returns z_t for t = 0..T and the number of steps with an exactly zero gradient."""
    r = lambda v: np.asarray(v, np.float64).astype(dtype)  # noqa: E731  (round to dtype)
    c = lambda v: np.asarray(v, np.float64).astype(state)  # noqa: E731  (a constant in state's dtype)
    w, b, one = r(w), r(b), r(1.0)
    m, v = c(0.0), c(0.0)
    zs, zero = [], 0
    for t in range(steps + 1):
        z = r(w + b)
        a = r(one / r(one + r(np.exp(-np.float64(z)))))
        g = r(r(a * r(one - a)) * a)  # (a − y) σ'(z), y = 0
        zs.append(float(z))
        if t == steps:
            break
        zero += int(float(g) == 0.0)
        gs = g.astype(state)
        if optimizer == "sgd":
            delta = r(gs * c(-eta))
        else:
            with np.errstate(all="ignore"):  # state = float16: ε rounds to 0, 0/0 is NaN
                m = c(1 - 0.9) * gs + c(0.9) * m
                v = c(1 - 0.999) * (gs * gs) + c(0.999) * v
                m_hat, v_hat = m / c(1 - 0.9 ** (t + 1)), v / c(1 - 0.999 ** (t + 1))
                delta = r(m_hat / (np.sqrt(v_hat) + c(1e-8)) * c(-eta))
        w, b = r(w + delta), r(b + delta)
    return np.asarray(zs), zero


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_low_precision_run_equals_numpy_in_the_same_precision(dtype):
    """Catches: a low-precision run computed in float32 (a dtype ignored or promoted). The texts'
    neuron (η = 1, 60 steps) from inits on both sides of saturation: z_t within one ulp of the
    numpy loop rounded to the same dtype after every operation (it agrees exactly on this
    machine), and the exact-zero-gradient count equal; the float32 loop is many ulps away."""
    npdt = LOW[dtype]
    inits = [(0.6, 0.9), (2.0, 2.0), (3.0, 3.0), (4.5, 4.5), (2.5, 1.5)]
    eta, steps = 1.0, 60
    cfg = train.TrainConfig(model=models.ModelConfig(), loss="quadratic", dtype=dtype, steps=steps, record_every=1)
    w0, b0 = np.asarray(inits).T
    dataset = data([[1.0]], [[0.0]], dtype=npdt)
    s, traj = train_many(cfg, runs(np.float32, init_w=w0, init_b=b0, learning_rate=eta), dataset)
    eps = float(ml_dtypes.finfo(npdt).eps)
    for i, (w, b) in enumerate(inits):
        z, zero = np_low_precision_neuron(w, b, eta, steps, npdt)
        z32, _ = np_low_precision_neuron(w, b, eta, steps, np.float32)
        ulp = eps * 2.0 ** np.floor(np.log2(np.abs(z)))
        assert np.max(np.abs(traj["logit"][i] - z) / ulp) <= 1, (dtype, w, b)
        assert s["zero_grad_steps"][i] == zero, (dtype, w, b)
        if (w, b) != (4.5, 4.5):  # the float32 run is told apart (at 4.5 it hardly moves either)
            assert np.max(np.abs(z32 - z) / ulp) > 4, (dtype, w, b)
    assert traj["logit"].dtype == np.float32  # metrics in float32
    # σ(6) rounds to 1 in bfloat16, σ(9) in both: no gradient at any step, never in float32.
    expected = [0, 0, steps, steps, 0] if dtype == "bfloat16" else [0, 0, 0, steps, 0]
    np.testing.assert_array_equal(s["zero_grad_steps"], expected)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_low_precision_adam_keeps_its_state_in_float32(dtype):
    """Catches: Adam's hyperparameters or state back in the parameters' dtype (in bfloat16 β2
    rounds to 1 and β1 to 0.8984; in float16 ε = 1e-8 rounds to 0, so a zero gradient gives
    m/(√v + ε) = 0/0 = NaN), or the update not rounded to the dtype. The texts' neuron (η = 0.15,
    100 steps) from inits on both sides of saturation: z_t within one ulp of the numpy loop with
    float32 state, parameters in the dtype (it agrees exactly on this machine); the same loop with
    the state in the parameters' dtype is more than one ulp away or NaN on at least 3 of the 5."""
    npdt = LOW[dtype]
    inits = [(0.6, 0.9), (2.0, 2.0), (2.5, 1.5), (3.0, 3.0), (4.5, 4.5)]
    eta, steps = 0.15, 100
    cfg = train.TrainConfig(model=models.ModelConfig(), loss="quadratic", optimizer="adam", dtype=dtype,
                            steps=steps, record_every=1)
    w0, b0 = np.asarray(inits).T
    with jax.numpy_dtype_promotion("standard"):  # optax's bias correction: decay ** int32 count
        s, traj = train_many(cfg, runs(np.float32, init_w=w0, init_b=b0, learning_rate=eta),
                             data([[1.0]], [[0.0]], dtype=npdt))
    eps = float(ml_dtypes.finfo(npdt).eps)
    told_apart = []
    for i, (w, b) in enumerate(inits):
        z, zero = np_low_precision_neuron(w, b, eta, steps, npdt, "adam")
        z_low, _ = np_low_precision_neuron(w, b, eta, steps, npdt, "adam", state=npdt)
        ulp = eps * 2.0 ** np.floor(np.log2(np.maximum(np.abs(z), 1.0)))  # |z| < 1: the ulp at 1
        assert np.max(np.abs(traj["logit"][i] - z) / ulp) <= 1, (dtype, w, b)
        assert s["zero_grad_steps"][i] == zero, (dtype, w, b)
        told_apart.append(not np.all(np.isfinite(z_low)) or np.max(np.abs(z_low - z) / ulp) > 1)
    assert np.all(np.isfinite(traj["logit"]))
    assert sum(told_apart) >= 3, told_apart
    if dtype == "float16":  # from (4.5, 4.5) g = 0 at every step: no move, where 0/0 would be NaN
        assert np.all(traj["logit"][4] == 9.0) and s["zero_grad_steps"][4] == steps
        assert np.isnan(np_low_precision_neuron(4.5, 4.5, eta, steps, npdt, "adam", state=npdt)[0][-1])


# --------------------------------------------------------------------------------------
# born_dead, saturation threshold, outcome shares
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_born_dead_only_for_exactly_constant_outputs(dtype):
    """Catches: born_dead loosened to 'outputs within a tolerance'. A neuron whose logits over
    the training inputs differ by 1e-4 (outputs by 2.5e-5) is not born dead; w = 0 is."""
    npdt = np.float64 if dtype == "float64" else np.float32
    cfg = train.TrainConfig(model=models.ModelConfig(), loss="quadratic", dtype=dtype, steps=1)
    s, _ = train_many(cfg, runs(npdt, init_w=[1e-4, 0.0, 1e-4], init_b=[0.0, 0.5, 8.0]),
                      data([[0.0], [0.5], [1.0]], [[0.0], [1.0], [1.0]], dtype=npdt))
    np.testing.assert_array_equal(s["born_dead"], [False, True, False])


def test_born_dead_mlp_with_nearly_constant_output():
    """A ReLU MLP drawn at a tiny init scale: its output moves by far less than 0.05 over the
    inputs (numpy forward pass) but is not constant, so it is not born dead; scale 0 is."""
    rng = np.random.default_rng(2)
    x, y = rng.uniform(0.5, 1.5, size=(8, 2)), rng.integers(0, 2, (8, 1)).astype(float)
    cfg = train.TrainConfig(
        model=models.ModelConfig(kind="mlp", n_inputs=2, depth=2, width=4, hidden_activation="relu"),
        loss="quadratic", dtype="float64", steps=1, init_mode="scheme",
    )
    batch = runs(np.float32, seed=[3, 3], init_scheme=initializers.init_scheme_index("normal"), init_scale=[0.05, 0.0])
    s, _ = train_many(cfg, batch, data(x, y))
    (k1, b1), (k2, b2), (k3, b3) = np_layers(cfg, one_run(batch, 0))
    logits = np.maximum(np.maximum(x @ k1 + b1, 0) @ k2 + b2, 0) @ k3 + b3
    assert 0 < np.ptp(logits) < 0.05
    np.testing.assert_array_equal(s["born_dead"], [False, True])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_output_spread_in_rounding_steps_against_numpy(dtype):
    """output_spread_init against numpy's ``spacing``. Neurons z = w·x + b on x in {0, 0.5, 1} (the
    products are exact, so the engine and numpy round alike): constant (0 steps), two steps of
    1 + 2ε, one step at 8 in float32 (8 + 2^-21 rounds to 8), wide spreads, one across a power of
    two. Catches: the step
    taken at the smallest |logit|, the spread taken as a mean, a missing 0 for a constant output."""
    npdt = np.float64 if dtype == "float64" else np.float32
    eps = np.finfo(npdt).eps
    w, b = [0.0, 2 * eps, 2.0**-20, 0.37, 0.5], [0.5, 1.0, 8.0, -3.0, 0.75]
    cfg = train.TrainConfig(model=models.ModelConfig(), loss="quadratic", dtype=dtype, steps=1)
    x = np.asarray([[0.0], [0.5], [1.0]], npdt)
    s, _ = train_many(cfg, runs(npdt, init_w=w, init_b=b), data(x, [[0.0], [1.0], [1.0]], dtype=npdt))
    want = []
    for wi, bi in zip(w, b):
        z = x[:, 0] * npdt(wi) + npdt(bi)
        want.append(float(np.ptp(z)) / float(np.spacing(np.max(np.abs(z)))))
    np.testing.assert_allclose(s["output_spread_init"], want, rtol=1e-6)
    assert want[0] == 0 and want[1] == 2 and (want[2] == 1 if dtype == "float32" else want[2] == 2.0**29)
    assert want[4] == 0.5 / eps  # logits 0.75 .. 1.25: the step at 1.25 (ε), not at 0.75 (ε/2)
    np.testing.assert_array_equal(s["born_dead"], [True, False, False, False, False])
    one, _ = train_many(cfg, runs(npdt, init_w=[0.5], init_b=[0.0]), data([[1.0]], [[0.0]], dtype=npdt))
    assert np.isnan(one["output_spread_init"][0])  # one example: no spread


def test_output_spread_of_an_mlp_against_a_numpy_forward():
    """output_spread_init of tanh MLPs with 3 outputs (float64) against a numpy forward pass: the
    largest column spread over numpy's spacing of the largest |logit|."""
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(6, 2)), np.eye(3)[rng.integers(0, 3, 6)]
    cfg = train.TrainConfig(
        model=models.ModelConfig(kind="mlp", n_inputs=2, n_outputs=3, depth=2, width=4, hidden_activation="tanh",
                                 activation="sigmoid"),
        loss="softmax_ce", dtype="float64", steps=1, init_mode="scheme",
    )
    batch = runs(np.float32, seed=[1, 2], init_scheme=initializers.init_scheme_index("normal"), init_scale=[0.5, 1e-3])
    s, _ = train_many(cfg, batch, data(x, y))
    for i in range(2):
        (k1, b1), (k2, b2), (k3, b3) = np_layers(cfg, one_run(batch, i))
        z = np.tanh(np.tanh(x @ k1 + b1) @ k2 + b2) @ k3 + b3
        want = np.max(np.ptp(z, axis=0)) / np.spacing(np.max(np.abs(z)))
        np.testing.assert_allclose(s["output_spread_init"][i], want, rtol=1e-6)


def test_saturation_threshold_is_strict():
    """Catches: '<' turned into '<=' in the saturation test. A unit whose largest |f'| equals
    δ·max f' exactly is not saturated; one a hair below is."""
    th = Thresholds(saturation_delta=0.01)
    bound = 0.01 * 0.25
    d = jnp.asarray([[bound, np.nextafter(bound, 0)], [0.0, 0.0]], jnp.float64)
    saturated, dead, _ = metrics.unit_fractions(d, jnp.ones_like(d), 0.25, th)
    assert float(saturated) == 0.5 and float(dead) == 0.0


def test_outcome_shares_on_a_known_mix():
    """Catches: outcome labels shifted by one, shares over the wrong dimension. Codes are
    converged 0, slow 1, stalled 2, diverged 3 (the results file's flag_meanings)."""
    codes = np.asarray([[0, 0, 1, 2, 2, 2, 3, 3], [2, 2, 2, 2, 0, 3, 1, 1]], np.int8)
    ds = xr.Dataset({"outcome": (("loss", "seed"), codes)}, coords={"loss": ["a", "b"]})
    shares = results.outcome_shares(ds)
    expected = {"converged": 3 / 16, "slow": 3 / 16, "stalled": 7 / 16, "diverged": 3 / 16}
    assert {k: float(v) for k, v in shares.data_vars.items()} == pytest.approx(expected)
    per_loss = results.outcome_shares(ds, over=["seed"])
    np.testing.assert_allclose(per_loss.converged, [2 / 8, 1 / 8])
    np.testing.assert_allclose(per_loss.slow, [1 / 8, 2 / 8])
    np.testing.assert_allclose(per_loss.stalled, [3 / 8, 4 / 8])
    np.testing.assert_allclose(per_loss.diverged, [2 / 8, 1 / 8])
    labels = results.outcome_labels(ds.outcome)
    assert list(labels.values[0]) == ["converged", "converged", "slow", "stalled", "stalled", "stalled",
                                      "diverged", "diverged"]


# --------------------------------------------------------------------------------------
# Per-layer statistics and the two MLP implementations
# --------------------------------------------------------------------------------------


def np_mlp_backprop(layers, x, y):
    """Sigmoid-output tanh MLP under the quadratic cost: per layer (activations, ‖∂C/∂W‖)."""
    hs, zs, h = [x], [], x
    for k, b in layers[:-1]:
        zs.append(h @ k + b)
        h = np.tanh(zs[-1])
        hs.append(h)
    k, b = layers[-1]
    zs.append(h @ k + b)
    a = sigmoid(zs[-1])
    acts = [np.tanh(z) for z in zs[:-1]] + [a]
    delta = (a - y) * a * (1 - a) / x.shape[0]  # mean over samples of ½(a − y)²
    norms = []
    for i in range(len(layers) - 1, -1, -1):
        norms.append(np.linalg.norm(hs[i].T @ delta))
        if i:
            delta = (delta @ layers[i][0].T) * (1 - np.tanh(zs[i - 1]) ** 2)
    return acts, norms[::-1]


@pytest.fixture(scope="module")
def mlp_case():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(16, 3)), rng.integers(0, 2, (16, 1)).astype(float)
    cfg = train.TrainConfig(
        model=models.ModelConfig(kind="mlp", n_inputs=3, depth=2, width=5, hidden_activation="tanh"),
        loss="quadratic", dtype="float64", steps=12, record_every=1, init_mode="scheme",
    )
    batch = runs(np.float32, seed=[0, 1, 2], init_scheme=initializers.init_scheme_index("glorot"), init_scale=[1.0, 2.0, 4.0],
                 init_bias_std=0.5, learning_rate=0.5)
    return cfg, batch, data(x, y), x, y


@pytest.fixture(scope="module")
def mlp_flax_run(mlp_case):
    cfg, batch, dataset, _, _ = mlp_case
    return train_many(cfg, batch, dataset)


def test_layer_activation_and_gradient_statistics_against_numpy(mlp_case, mlp_flax_run):
    """Catches: layer_act_mean/std over the wrong axis, a sample standard deviation, a layer's
    gradient norm of the bias or of another layer, layer_grad_norm_mean averaged over T+1
    evaluations or including the final one."""
    cfg, batch, dataset, x, y = mlp_case
    s, traj = mlp_flax_run
    for i in range(3):
        acts, norms = np_mlp_backprop(np_layers(cfg, one_run(batch, i)), x, y)
        np.testing.assert_allclose(traj["layer_act_mean"][i, 0], [a.mean() for a in acts], rtol=1e-12)
        np.testing.assert_allclose(traj["layer_act_std"][i, 0], [a.std() for a in acts], rtol=1e-12)
        np.testing.assert_allclose(traj["layer_grad_norm"][i, 0], norms, rtol=1e-10)
        np.testing.assert_allclose(s["layer_grad_norm_init"][i], norms, rtol=1e-10)
    # Mean over the T update steps t = 0..T−1 of the recorded per-step norms.
    np.testing.assert_allclose(s["layer_grad_norm_mean"], traj["layer_grad_norm"][:, :-1].mean(axis=1), rtol=1e-12)
    np.testing.assert_allclose(s["layer_grad_norm_final"], traj["layer_grad_norm"][:, -1], rtol=1e-12)
    np.testing.assert_allclose(s["layer_saturated_mean"], traj["layer_saturated"][:, :-1].mean(axis=1), rtol=1e-12)
    assert np.ptp(traj["layer_grad_norm"][:, :-1], axis=1).min() > 0  # the steps differ


def test_flax_and_pytree_mlps_give_identical_numbers(mlp_case, mlp_flax_run):
    """The README's claim: the flax module and the plain function of the same pytree give the
    same numbers (every result and trajectory value of a 12-step float64 run, bit for bit)."""
    import dataclasses

    cfg, batch, dataset, _, _ = mlp_case
    pytree = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, impl="pytree"))
    other = train_many(pytree, batch, dataset)
    for part in (0, 1):
        for k, v in mlp_flax_run[part].items():
            np.testing.assert_array_equal(v, other[part][k], err_msg=k)


@pytest.mark.parametrize("n_samples, impl", [(16, "scan"), (3, "pytree")])  # units-major, and samples-major
def test_layer_saturated_dead_dormant_fractions_against_numpy(n_samples, impl):
    """Per-layer saturated, dead and dormant shares at θ_0 (``steps = 0``) of a sigmoid MLP and a
    ReLU MLP whose large weights and biases leave some units saturated or dead over every input
    and others not, against numpy reading the definitions off (batch, units) arrays: catches a
    reduction over the units instead of the samples in either layout (16 samples on 6 units run
    units-major, 3 samples samples-major)."""
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=(n_samples, 3)), rng.integers(0, 2, (n_samples, 1)).astype(float)
    th = metrics.Thresholds()
    for hidden, slope, deriv in (("sigmoid", 0.25, lambda z: sigmoid(z) * (1 - sigmoid(z))),
                                 ("relu", 1.0, lambda z: (z > 0).astype(float))):
        act = sigmoid if hidden == "sigmoid" else (lambda z: np.maximum(z, 0.0))
        cfg = train.TrainConfig(
            model=models.ModelConfig(kind="mlp", n_inputs=3, depth=3, width=6, hidden_activation=hidden, impl=impl),
            loss="quadratic", dtype="float64", steps=0, init_mode="scheme",
        )
        batch = runs(np.float32, seed=[0, 1, 2, 3], init_scheme=initializers.init_scheme_index("glorot"),
                     init_scale=[3.0, 6.0, 10.0, 4.0], init_bias_std=4.0)
        s, _ = train_many(cfg, batch, data(x, y))
        fractions = []
        for i in range(4):
            params = train.init_params(cfg, one_run(batch, i))
            layers = [(np.asarray(k, np.float64), np.asarray(b, np.float64)) for k, b in models.layer_params(cfg.model, params)]
            h, per_layer = x, []
            for k, b in layers[:-1]:
                z = h @ k + b
                d, h = np.abs(deriv(z)), act(z)
                score = np.abs(h).mean(axis=0)
                dormant = score <= th.dormant_tau * score.mean() if score.mean() > 0 else np.ones_like(score, bool)
                per_layer.append([np.mean(np.all(d < th.saturation_delta * slope, axis=0)),
                                  np.mean(np.all(d == 0, axis=0)), np.mean(dormant)])
            fractions.append(per_layer)
        want = np.asarray(fractions)  # (runs, hidden layers, 3)
        got = np.stack([s["layer_saturated_init"], s["layer_dead_init"], s["layer_dormant_init"]], axis=-1)[:, :-1]
        np.testing.assert_allclose(got, want, rtol=1e-6, err_msg=hidden)  # shares are float32 (as jnp.mean of bools)
        assert 0 < want[..., 0 if hidden == "sigmoid" else 1].mean() < 1, hidden  # neither none nor all
