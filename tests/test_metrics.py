"""Every measured quantity of lossjax.metrics on cases whose answer is known by hand.

Two levels:

- The reductions themselves (``accumulate``, ``outcome``, ``unit_fractions``) fed with
  hand-written sequences of observations; the expected values are worked out in comments.
- Whole runs of the engine on models small enough to solve by hand (a linear neuron whose
  output halves every step, a step or ReLU unit with no gradient, a linear neuron that
  overflows, an MLP with all-zero weights) or against a numpy float64 loop written here
  (the texts' neuron, the text on the saturated sigmoid neuron), with the quantity recomputed from its definition in numpy.

The definitions tested are those of the module docstring of :mod:`lossjax.metrics`.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lossjax.core import metrics, summaries
from lossjax.core import initializers, models
from lossjax import programs, runner
from lossjax.core import train
from lossjax.core.metrics import CONVERGED, DIVERGED, NEVER, SLOW, STALLED, Thresholds
from engine_cases import runs, single

# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------


def observation(loss, *, grad_norm=1.0, grad_zero=False, finite=None, error=None, accuracy=0.0):
    """A one-layer float64 observation with the given scalars (the rest zero)."""
    f = lambda v: jnp.asarray(v, jnp.float64)  # noqa: E731
    zeros = jnp.zeros((1,), jnp.float64)
    return metrics.Observation(
        loss=f(loss),
        error=f(loss if error is None else error),
        accuracy=f(accuracy),
        grad_norm=f(grad_norm),
        grad_is_zero=jnp.asarray(grad_zero),
        finite=jnp.asarray(bool(np.isfinite(loss)) if finite is None else finite),
        output=f(0.0),
        logit=f(0.0),
        grad_w=f(0.0),
        grad_b=f(0.0),
        layer_grad_norm=zeros + grad_norm,
        layer_saturated=zeros,
        layer_dead=zeros,
        layer_dormant=zeros,
        layer_act_mean=zeros,
        layer_act_std=zeros,
    )


def fold(losses, thresholds=Thresholds(), **per_step):
    """Feeds L_0..L_T to the accumulators as the engine does.

    ``start`` with the observation at θ_0, then step t = 0..T-1 (updates), then the final
    evaluation at t = T. ``per_step`` gives per-step lists of :func:`observation` keywords.
    """
    obs = [observation(l, **{k: v[t] for k, v in per_step.items()}) for t, l in enumerate(losses)]
    T = len(losses) - 1
    acc = summaries.start(obs[0], T)
    for t in range(T):
        acc = summaries.accumulate(acc, obs[t], t, thresholds, is_update=True)
    return summaries.accumulate(acc, obs[T], T, thresholds, is_update=False)


def train_many(config: train.TrainConfig, batch: train.RunInputs, data: train.Data):
    """``jit(vmap(train))`` over the runs; returns the summary and trajectory as numpy dicts."""
    summary, trajectory = jax.jit(jax.vmap(train.make_train(config), in_axes=(0, None)))(batch, data)
    summary = {k: np.asarray(v) for k, v in summary._asdict().items()}
    if trajectory is not None:
        trajectory = {k: np.asarray(v) for k, v in trajectory._asdict().items()}
    return summary, trajectory


def neuron(activation="sigmoid", **kwargs) -> train.TrainConfig:
    return train.TrainConfig(model=models.ModelConfig(activation=activation), **kwargs)


def np_sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def np_texts_neuron(w, b, *, x=1.0, y=0.0, eta=0.15, steps=300):
    """The neuron of the text on the saturated sigmoid neuron with the quadratic cost ½(a−y)², in numpy float64: losses L_0..L_T."""
    losses = []
    for t in range(steps + 1):
        z = w * x + b
        a = np_sigmoid(z)
        losses.append(0.5 * (a - y) ** 2)
        delta = (a - y) * a * (1.0 - a)
        w, b = w - eta * delta * x, b - eta * delta
    return np.asarray(losses)


def np_longest_plateau(losses, target, tau):
    """Longest run of t in 1..T with (L_{t-1} − L_t)/|L_{t-1}| < tau, before the target is reached."""
    hit = np.flatnonzero(losses <= target)
    first = hit[0] if hit.size else len(losses)
    longest = current = 0
    for t in range(1, len(losses)):
        improvement = (losses[t - 1] - losses[t]) / abs(losses[t - 1])
        current = current + 1 if (t < first and not improvement >= tau) else 0
        longest = max(longest, current)
    return longest


# --------------------------------------------------------------------------------------
# The reductions on hand-written sequences
# --------------------------------------------------------------------------------------


def test_plateau_steps_to_target_and_loss_min_by_hand():
    # t:      0    1    2       3    4    5    6    7    8    9
    losses = [1.0, 1.0, 0.9995, 0.5, 0.5, 0.5, 0.5, 0.5, 0.4, 0.005]
    # improvements: t1 0 (flat), t2 5e-4 (flat), t3 0.4997, t4..t7 0 (flat ×4), t8 0.2,
    # t9 reaches the target 0.01 → longest plateau 4, steps_to_target 9.
    acc = fold(losses)
    assert int(acc.longest_plateau) == 4
    assert int(acc.steps_to_target) == 9
    assert float(acc.loss_min) == 0.005
    assert float(acc.loss_initial) == 1.0
    assert int(acc.first_nonfinite) == NEVER


def test_plateau_is_not_counted_after_the_target():
    acc = fold([1.0, 0.005, 0.005, 0.005, 0.005, 0.005])
    assert int(acc.steps_to_target) == 1
    assert int(acc.longest_plateau) == 0


def test_target_reached_at_step_zero():
    acc = fold([0.001, 0.5, 0.5])
    assert int(acc.steps_to_target) == 0
    assert int(acc.longest_plateau) == 0


def test_a_rising_loss_is_a_plateau():
    # Relative improvement is negative, hence below tau, at every step.
    acc = fold([1.0, 2.0, 3.0, 4.0])
    assert int(acc.longest_plateau) == 3
    assert int(acc.steps_to_target) == NEVER


def test_plateau_threshold_is_strict():
    tau = 2.0**-4
    th = Thresholds(plateau_tau=tau)
    # (1 − 0.9375)/1 = 2^-4 exactly: not below tau, not flat.
    assert int(fold([1.0, 0.9375], th).longest_plateau) == 0
    assert int(fold([1.0, 0.9375 + 2.0**-10], th).longest_plateau) == 1


def test_the_final_evaluation_counts_for_the_plateau_and_the_target():
    # Flat at t = 1, 2 and at the final evaluation t = 3 → 3; the target only at t = T.
    acc = fold([1.0, 1.0, 1.0, 1.0])
    assert int(acc.longest_plateau) == 3
    acc = fold([1.0, 1.0, 1.0, 0.001])
    assert int(acc.steps_to_target) == 3
    assert int(acc.longest_plateau) == 2


@pytest.mark.parametrize("metric, kwargs, target, expected", [
    ("error", {"error": [0.5, 0.2, 0.1, 0.05]}, 0.1, 2),  # error <= target
    ("accuracy", {"accuracy": [0.0, 0.5, 0.75, 1.0]}, 0.75, 2),  # accuracy >= target
    ("loss", {}, 0.25, 3),
])
def test_steps_to_target_for_each_target_metric(metric, kwargs, target, expected):
    th = Thresholds(target_metric=metric, target=target)
    acc = fold([1.0, 0.9, 0.5, 0.2], th, **kwargs)
    assert int(acc.steps_to_target) == expected


def test_gradient_counts_cover_update_steps_only():
    # T = 4 updates; the final evaluation (t = 4) has a zero gradient too but is not an update.
    losses = [1.0] * 5
    acc = fold(losses, grad_zero=[True] * 5, grad_norm=[0.0] * 5)
    assert int(acc.zero_grad_steps) == 4
    assert int(acc.tiny_grad_steps) == 4  # exact zeros count as tiny


def test_tiny_gradient_threshold_is_strict():
    th = Thresholds(tiny_grad=1e-6)
    norms = [1e-7, 1e-6, 2e-6, 0.0, 5e-7]  # tiny at t = 0, 3 (t = 4 is the final evaluation)
    acc = fold([1.0] * 5, th, grad_norm=norms, grad_zero=[False, False, False, True, False])
    assert int(acc.tiny_grad_steps) == 2
    assert int(acc.zero_grad_steps) == 1


def test_first_nonfinite_loss_or_parameter():
    assert int(fold([1.0, 2.0, np.inf, np.nan, np.nan]).first_nonfinite) == 2
    # A finite loss with a non-finite parameter (finite flag False) at t = 3.
    acc = fold([1.0, 0.9, 0.8, 0.7, 0.6], finite=[True, True, True, False, False])
    assert int(acc.first_nonfinite) == 3
    assert int(fold([1.0, 0.9, 0.8, np.nan]).first_nonfinite) == 3  # the final evaluation


def test_loss_min_ignores_nan():
    assert float(fold([1.0, 0.5, np.nan, 0.7]).loss_min) == 0.5


def test_outcome_rule():
    th = Thresholds(slow_plateau_steps=50, divergence_factor=10.0)
    #          L_0  L_T     steps_to_target longest_plateau first_nonfinite  expected
    cases = [
        (1.0, 0.001, 5, 0, NEVER, CONVERGED),
        (1.0, 0.001, 80, 49, NEVER, CONVERGED),  # one step short of slow
        (1.0, 0.001, 80, 50, NEVER, SLOW),  # plateau of exactly slow_plateau_steps
        (1.0, 0.9, NEVER, 300, NEVER, STALLED),  # a long plateau without the target
        (1.0, 1.0, NEVER, 0, NEVER, STALLED),
        (1.0, 10.0, NEVER, 0, NEVER, STALLED),  # exactly 10 × L_0 is not divergence
        (1.0, 10.5, NEVER, 0, NEVER, DIVERGED),  # above 10 × L_0
        (1.0, 11.0, 2, 0, NEVER, DIVERGED),  # reached the target, then blew up
        (1.0, np.nan, NEVER, 0, 7, DIVERGED),
        (1.0, 0.001, 3, 60, 7, DIVERGED),  # non-finite wins over reached/slow
        (0.0, 0.0, 0, 0, NEVER, CONVERGED),  # L_0 = 0 does not divide
    ]
    cols = list(zip(*cases))
    got = summaries.outcome(
        jnp.asarray(cols[0]), jnp.asarray(cols[1]), jnp.asarray(cols[2], jnp.int32),
        jnp.asarray(cols[3], jnp.int32), jnp.asarray(cols[4], jnp.int32), th,
    )
    np.testing.assert_array_equal(np.asarray(got), cols[5])
    assert metrics.OUTCOMES == ("converged", "slow", "stalled", "diverged")


@pytest.mark.parametrize("shape, axis", [
    ((7,), None), ((3, 5), 0), ((3, 5), 1), ((3, 5), -1), ((2, 3, 40, 33), (2, 3)), ((2, 3, 40, 33), (1, -1)),
    ((2, 3, 40, 33), None), ((4, 0), 1), ((4, 0), 0), ((0,), None), ((1, 1), None), ((3, 1), 1),
])
def test_every_is_numpys_all(shape, axis):
    # The per-step flags reduce with metrics.every (a uint8 minimum; jnp.all over one element); numpy's
    # np.all is the reference, on random flags with every density, all-True and all-False cases and
    # empty axes (True, as np.all), jitted and vmapped over a leading axis as the training step is.
    rng = np.random.default_rng(sum(shape) + 7)
    cases = [rng.random(shape) < p for p in (0.0, 0.5, 0.99, 1.0)]
    if len(shape) == 4:  # all True but one element, in the last model's last layer
        one_off = np.ones(shape, bool)
        one_off[-1, -1, -1, -1] = False
        cases.append(one_off)
    for flags in cases:
        got = np.asarray(jax.jit(metrics.every, static_argnums=1)(jnp.asarray(flags), axis))
        np.testing.assert_array_equal(got, np.all(flags, axis=axis))
        assert got.dtype == bool
        stacked = np.stack([flags, ~flags])
        got = np.asarray(jax.vmap(lambda f: metrics.every(f, axis))(jnp.asarray(stacked)))
        np.testing.assert_array_equal(got, np.stack([np.all(flags, axis=axis), np.all(~flags, axis=axis)]))


def test_every_on_float_comparisons_and_its_input():
    # Flags from comparisons of floats: NaN is unequal to itself and not finite, -0.0 equals 0.0.
    w = jnp.asarray(np.array([[1.0, np.nan, -0.0], [np.inf, 2.0, 0.0]], np.float32))
    np.testing.assert_array_equal(np.asarray(metrics.every(w == w, axis=1)), [False, True])
    np.testing.assert_array_equal(np.asarray(metrics.every(jnp.isfinite(w), axis=1)), [False, False])
    np.testing.assert_array_equal(np.asarray(metrics.every(w[:, 2:] == 0, axis=1)), [True, True])
    np.testing.assert_array_equal(np.asarray(metrics.every(w != 5, axis=np.int64(1))), [True, True])
    with pytest.raises(TypeError, match="boolean"):
        metrics.every(w, axis=1)  # 0.5 would become byte 0: only booleans are reduced


def test_unit_fractions_saturated_and_dead_by_hand():
    th = Thresholds(saturation_delta=0.01)
    # max_slope 0.25 (sigmoid) → saturated iff max_n |f'| < 0.0025.
    d = jnp.asarray([[0.3, 0.002, 0.0, 0.0024, -0.01], [0.1, 0.0026, 0.0, 0.001, 0.0]])
    # unit maxima: 0.3, 0.0026, 0, 0.0024, 0.01 (|f'|) → saturated: units 2, 3 → 2/5; dead: unit 2.
    saturated, dead, _ = metrics.unit_fractions(d, jnp.ones_like(d), 0.25, th)
    assert float(saturated) == pytest.approx(2 / 5)
    assert float(dead) == pytest.approx(1 / 5)


def test_dormant_fraction_sokar_by_hand():
    h = jnp.asarray([[1.0, -3.0, 0.02, 0.0], [3.0, 1.0, 0.02, 0.0]])
    # scores mean_n |h_i| = 2, 2, 0.02, 0; layer mean 4.02/4 = 1.005; τ·mean = 0.025125
    # → units 3 and 4 are dormant.
    d = jnp.ones_like(h)
    _, _, dormant = metrics.unit_fractions(d, h, 1.0, Thresholds(dormant_tau=0.025))
    assert float(dormant) == pytest.approx(0.5)
    # τ = 0.0199/1.005 just below unit 3's normalised score 0.02/1.005: only unit 4.
    _, _, dormant = metrics.unit_fractions(d, h, 1.0, Thresholds(dormant_tau=0.0199 / 1.005))
    assert float(dormant) == pytest.approx(0.25)
    # τ = 0: exactly silent units only.
    _, _, dormant = metrics.unit_fractions(d, h, 1.0, Thresholds(dormant_tau=0.0))
    assert float(dormant) == pytest.approx(0.25)
    # A silent layer: every unit is dormant.
    _, _, dormant = metrics.unit_fractions(d, jnp.zeros_like(h), 1.0, Thresholds())
    assert float(dormant) == 1.0


def test_weighted_fraction_weights_by_units():
    # Layers of 4, 4, 1 units with fractions 1, 0.5, 0 → (4 + 2 + 0)/9.
    got = summaries.weighted_fraction(jnp.asarray([1.0, 0.5, 0.0]), (4, 4, 1))
    assert float(got) == pytest.approx(6 / 9)


@pytest.mark.parametrize("kwargs", [
    {"target_metric": "acc"}, {"tiny_grad": 0.0}, {"saturation_delta": -1.0}, {"plateau_tau": 0.0},
    {"slow_plateau_steps": 0}, {"divergence_factor": 0.0}, {"dormant_tau": -0.1},
    {"target_metric": "accuracy", "target": 2.0},
])
def test_thresholds_are_validated(kwargs):
    with pytest.raises(ValueError, match=list(kwargs)[-1]):
        Thresholds(**kwargs)


# --------------------------------------------------------------------------------------
# Whole runs with hand-known answers
# --------------------------------------------------------------------------------------


def test_step_activation_stalls_from_step_zero():
    """The perceptron of the text on accuracy as an objective and the text on non-differentiable metrics: no gradient ever, so nothing moves."""
    T = 10
    cfg = neuron("step", loss="quadratic", dtype="float64", steps=T)
    # (1, 1): z = 2, a = 1, y = 0 → L = 0.5 forever. (−1, −1): a = 0 = y, L = 0 at once.
    s, _ = train_many(cfg, runs(init_w=[1.0, -1.0], init_b=[1.0, -1.0], learning_rate=0.5), single())
    np.testing.assert_array_equal(s["zero_grad_steps"], [T, T])
    np.testing.assert_array_equal(s["tiny_grad_steps"], [T, T])
    np.testing.assert_array_equal(s["steps_to_target"], [NEVER, 0])
    np.testing.assert_array_equal(s["outcome"], [STALLED, CONVERGED])
    np.testing.assert_array_equal(s["loss_initial"], [0.5, 0.0])
    np.testing.assert_array_equal(s["loss_final"], [0.5, 0.0])
    np.testing.assert_array_equal(s["output_final"], [1.0, 0.0])
    assert s["longest_plateau"][0] == T  # flat at every t in 1..T
    for key in ("dead_init", "dead_final", "saturated_init", "saturated_final", "saturated_mean"):
        np.testing.assert_array_equal(s[key], [1.0, 1.0], err_msg=key)
    np.testing.assert_array_equal(s["first_nonfinite"], [NEVER, NEVER])
    np.testing.assert_array_equal(s["born_dead"], [False, False])  # one example: never born dead
    assert np.all(np.isnan(s["test_loss"])) and np.all(np.isnan(s["test_accuracy"]))  # no test set


@pytest.fixture(scope="module")
def one_sided_runs():
    """The one-sided cross-entropy of the text on the saturated sigmoid neuron −y log a with target y = 0: loss and gradient are 0."""
    data = single()
    batch = runs(init_w=[0.6, 2.0], init_b=[0.9, 2.0], learning_rate=0.15)
    by_error = neuron(loss="ce_one_sided", dtype="float64", steps=300,
                      thresholds=Thresholds(target_metric="error", target=0.01))
    by_loss = neuron(loss="ce_one_sided", dtype="float64", steps=300)
    return train_many(by_error, batch, data)[0], train_many(by_loss, batch, data)[0]


def test_one_sided_cross_entropy_with_target_zero_stalls(one_sided_runs):
    s, _ = one_sided_runs
    np.testing.assert_array_equal(s["zero_grad_steps"], [300, 300])
    np.testing.assert_array_equal(s["steps_to_target"], [NEVER, NEVER])
    np.testing.assert_array_equal(s["outcome"], [STALLED, STALLED])
    np.testing.assert_array_equal(s["loss_initial"], [0.0, 0.0])
    # Nothing moved: the output is σ(w + b) at the start and at the end.
    expected = np_sigmoid(np.asarray([1.5, 4.0]))
    np.testing.assert_allclose(s["output_initial"], expected, rtol=1e-15)
    np.testing.assert_array_equal(s["output_final"], s["output_initial"])
    np.testing.assert_allclose(s["error_final"], expected, rtol=1e-15)


def test_one_sided_cross_entropy_fools_a_loss_target(one_sided_runs):
    """By definition a loss target is met by a loss that is identically 0: the definitions
    call this run converged at step 0, which is why the texts' case needs an error target."""
    _, s = one_sided_runs
    np.testing.assert_array_equal(s["steps_to_target"], [0, 0])
    np.testing.assert_array_equal(s["outcome"], [CONVERGED, CONVERGED])
    np.testing.assert_array_equal(s["zero_grad_steps"], [300, 300])


def test_relu_neuron_dead_below_zero():
    # y = 1, x = 1. z = −2 and z = 0 (jax: relu'(0) = 0) are dead; z = 0.5 learns.
    T = 5
    cfg = neuron("relu", loss="quadratic", dtype="float64", steps=T)
    s, _ = train_many(cfg, runs(init_w=[-1.0, 0.0, 0.25], init_b=[-1.0, 0.0, 0.25], learning_rate=0.1), single(y=1.0))
    np.testing.assert_array_equal(s["dead_init"], [1.0, 1.0, 0.0])
    np.testing.assert_array_equal(s["dead_final"], [1.0, 1.0, 0.0])
    np.testing.assert_array_equal(s["zero_grad_steps"], [T, T, 0])
    np.testing.assert_array_equal(s["outcome"][:2], [STALLED, STALLED])
    np.testing.assert_array_equal(s["loss_final"][:2], [0.5, 0.5])
    # Alive: a' = a + 2η(1 − a), so 1 − a_t = 0.5 · 0.8^t and L_T = ½ (0.5 · 0.8^5)².
    assert s["loss_final"][2] == pytest.approx(0.5 * (0.5 * 0.8**T) ** 2, rel=1e-12)


def test_saturation_boundary_of_a_sigmoid_neuron():
    """Saturated iff σ'(z) < δ · max σ' = 0.01 · 0.25 for every input, i.e. |z| > z* where
    σ'(z*) = 0.0025.

    Two examples x = 1 and x = 0.5, so z = (w + b, w/2 + b). With w = 0 both inputs see
    z = b: b just inside and just outside ±z*. With b = 0: w = 7 gives z = (7, 3.5), one
    input unsaturated → not saturated; w = 14 gives (14, 7) → saturated.
    """
    sigma = (1.0 + math.sqrt(1.0 - 4 * 0.0025)) / 2.0  # σ(1 − σ) = 0.0025
    z_star = math.log(sigma / (1.0 - sigma))
    assert z_star == pytest.approx(5.99, abs=5e-3)  # the docstring's |z| > 5.99
    eps = 1e-6
    b = [z_star - eps, z_star + eps, -(z_star - eps), -(z_star + eps), 0.0, 30.0, 0.0, 0.0]
    w = [0.0] * 6 + [7.0, 14.0]
    expected = [0, 1, 0, 1, 0, 1, 0, 1]
    cfg = neuron(loss="quadratic", dtype="float64", steps=1)
    s, _ = train_many(cfg, runs(init_w=w, init_b=b, learning_rate=1e-12), single(x=[[1.0], [0.5]]))
    np.testing.assert_array_equal(s["saturated_init"], expected)
    np.testing.assert_array_equal(s["saturated_final"], expected)
    np.testing.assert_array_equal(s["saturated_mean"], expected)
    np.testing.assert_array_equal(s["dead_init"], np.zeros(8))  # σ' > 0 in float64


def test_halving_linear_neuron():
    """Identity neuron, ½(a − y)², x = 1, y = 0, w = b = 0.5, η = 0.25.

    Each step moves w and b by −η·a, so a_{t+1} = a_t (1 − 2η) = a_t / 2: a_t = 2^-t,
    L_t = ½ 4^-t, |g_t| = √2 · 2^-t, error_t = 2^-t — all exact in binary.
    L_t <= 0.01 ⇔ 4^t >= 50 ⇔ t >= 3. |g_t| < 1e-3 ⇔ 2^t > 1414.2 ⇔ t >= 11, so the
    updates t = 11..15 have tiny gradients. The relative improvement 3/4 is above τ: no
    plateau. a_0 = 1 > 0.5 predicts class 1 (wrong); from a_1 = 0.5 on it is right.
    """
    T = 16
    cfg = neuron("identity", loss="quadratic", dtype="float64", steps=T,
                 thresholds=Thresholds(tiny_grad=1e-3), record_every=1)
    s, traj = train_many(cfg, runs(init_w=0.5, init_b=0.5, learning_rate=0.25), single())
    s = {k: v[0] for k, v in s.items()}
    traj = {k: v[0] for k, v in traj.items()}
    t = np.arange(T + 1)
    np.testing.assert_array_equal(traj["output"], 2.0**-t)
    np.testing.assert_array_equal(traj["loss"], 0.5 * 4.0**-t)
    np.testing.assert_array_equal(traj["error"], 2.0**-t)
    np.testing.assert_array_equal(traj["accuracy"], (t >= 1).astype(float))
    np.testing.assert_allclose(traj["grad_norm"], math.sqrt(2) * 2.0**-t, rtol=1e-15)
    assert s["loss_initial"] == 0.5
    assert s["loss_final"] == s["loss_min"] == 0.5 * 4.0**-T
    assert s["error_final"] == 2.0**-T
    assert s["accuracy_final"] == 1.0
    assert s["steps_to_target"] == 3
    assert s["tiny_grad_steps"] == 5
    assert s["zero_grad_steps"] == 0
    assert s["longest_plateau"] == 0
    assert s["first_nonfinite"] == NEVER
    assert s["outcome"] == CONVERGED


def test_halving_linear_neuron_slow_with_a_coarse_plateau_threshold():
    """The same run with τ = 0.8 > 3/4: flat at t = 1, 2; t = 3 reaches the target, so the
    plateau is 2 steps long and, with ``slow_plateau_steps = 2``, the run is slow."""
    th = Thresholds(plateau_tau=0.8, slow_plateau_steps=2)
    cfg = neuron("identity", loss="quadratic", dtype="float64", steps=16, thresholds=th)
    s, _ = train_many(cfg, runs(init_w=0.5, init_b=0.5, learning_rate=0.25), single())
    assert s["steps_to_target"][0] == 3
    assert s["longest_plateau"][0] == 2
    assert s["outcome"][0] == SLOW


def test_texts_plateau_against_numpy_definition():
    """The w = b = 2 neuron of the text on the saturated sigmoid neuron sits on a plateau; (0.6, 0.9) does not.

    With target 0.025 (a ≈ 0.22, which the w = b = 2 run passes near the end) the long run is
    'slow' and the short one 'converged'. Expected values from a numpy float64 loop and the
    definition re-implemented above.
    """
    th = Thresholds(target=0.025)
    cfg = neuron(loss="quadratic", dtype="float64", steps=300, thresholds=th)
    s, _ = train_many(cfg, runs(init_w=[0.6, 2.0], init_b=[0.9, 2.0], learning_rate=0.15), single())
    for i, (w, b) in enumerate([(0.6, 0.9), (2.0, 2.0)]):
        losses = np_texts_neuron(w, b)
        hit = np.flatnonzero(losses <= th.target)
        assert s["steps_to_target"][i] == hit[0]
        assert s["longest_plateau"][i] == np_longest_plateau(losses, th.target, th.plateau_tau)
        np.testing.assert_allclose(s["loss_final"][i], losses[-1], rtol=1e-12)
        np.testing.assert_allclose(s["loss_min"][i], losses.min(), rtol=1e-12)
    assert s["longest_plateau"][1] >= 100  # "about 150 steps" on the plateau
    np.testing.assert_array_equal(s["outcome"], [CONVERGED, SLOW])


def test_divergence_and_nan_are_outcomes_not_exceptions():
    """Identity neuron, (a − y)², x = 1, y = 0, w = b = 0.5, float32, 16 steps.

    Each step multiplies a by 1 − 4η. η = 1000: a_t = (−3999)^t, L_t = 3999^2t overflows
    float32 (3.4e38) first at t = 6 (3999^12 ≈ 1.7e43; 3999^10 ≈ 1.0e36); later w = ±inf and
    the update inf − inf makes NaN. η = 0.55: L_16 = 1.44^16 L_0 ≈ 342 L_0 > 10 L_0 (diverged
    while finite). η = 0.51: L_16 = 1.0816^16 L_0 ≈ 3.5 L_0 (stalled, rising).
    """
    T = 16
    sweep = {
        "name": "diverge",
        "model": {"activation": "identity"},
        "data": {"dataset": "single", "params": {"x": 1.0, "y": 0.0}},
        "train": {"loss": "mse", "steps": T, "learning_rate": [1000.0, 0.55, 0.51], "dtype": "float32"},
        "init": {"points": [[0.5, 0.5]]},
    }
    ds = runner.run_sweep(sweep).squeeze("init")
    # A numpy float32 loop of the same updates.
    expected_first, expected_final = [], []
    for eta in (1000.0, 0.55, 0.51):
        w = b = np.float32(0.5)
        eta = np.float32(eta)
        first = NEVER
        with np.errstate(over="ignore", invalid="ignore"):
            for t in range(T + 1):
                a = w + b
                loss = a * a
                if first == NEVER and not (np.isfinite(loss) and np.isfinite(w) and np.isfinite(b)):
                    first = t
                g = np.float32(2) * a
                w, b = w - eta * g, b - eta * g
        expected_first.append(first)
        expected_final.append(loss)
    assert expected_first == [6, NEVER, NEVER]
    assert np.isnan(expected_final[0])
    np.testing.assert_array_equal(ds.first_nonfinite.values, expected_first)
    assert np.isnan(ds.loss_final.values[0])
    np.testing.assert_allclose(ds.loss_final.values[1:], expected_final[1:], rtol=1e-5)
    np.testing.assert_allclose(ds.loss_final.values[1:], [1.44**T, 1.0816**T], rtol=1e-4)
    np.testing.assert_array_equal(ds.outcome.values, [DIVERGED, DIVERGED, STALLED])
    assert list(runner.results_lib.outcome_labels(ds.outcome).values) == ["diverged", "diverged", "stalled"]
    assert ds.longest_plateau.values[2] == T  # a rising loss is flat at every step


@pytest.fixture(scope="module")
def mlp_runs():
    """An MLP (2 → 3 → 3 → 1, ReLU hidden, sigmoid output, bce) on the 4 XOR points, with
    all-zero weights (init scale 0) and biases −10 or +1."""
    mc = models.ModelConfig(kind="mlp", n_inputs=2, n_outputs=1, depth=2, width=3,
                            hidden_activation="relu", activation="sigmoid")
    cfg = train.TrainConfig(model=mc, loss="bce", dtype="float32", steps=1, init_mode="scheme")
    from lossjax import data as datasets

    ds = datasets.make_dataset("xor")
    data = programs.to_data(ds, jnp.float32)
    batch = runs(np.float32, init_scheme=initializers.init_scheme_index("he"), init_scale=[0.0, 0.0],
                 init_bias=[-10.0, 1.0], learning_rate=0.1)
    s, _ = train_many(cfg, batch, data)
    return s, ds


def test_born_dead_mlp(mlp_runs):
    """Bias −10, weights 0: every hidden pre-activation is −10, ReLU outputs 0 for every input."""
    s, _ = mlp_runs
    assert s["born_dead"][0]
    np.testing.assert_array_equal(s["layer_dead_init"][0], [1.0, 1.0, 0.0])
    # The output sits at z = −10: σ'(−10) ≈ 4.5e-5 < 0.0025 → saturated, not dead.
    np.testing.assert_array_equal(s["layer_saturated_init"][0], [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(s["layer_dormant_init"][0], [1.0, 1.0, 0.0])
    np.testing.assert_array_equal(s["layer_grad_norm_init"][0], [0.0, 0.0, 0.0])
    assert s["dead_init"][0] == pytest.approx(6 / 7)  # 6 of the 7 units


def test_zero_weights_block_the_gradient_below(mlp_runs):
    """Bias +1, weights 0: the output is σ(1) for every input (born dead), every hidden unit
    outputs 1, and no gradient reaches the layers below a layer with zero weights.

    The output kernel's gradient is Σ_n h_nj (σ(1) − y_n)/N = σ(1) − ȳ for each of the 3
    hidden units, so its norm is √3 (σ(1) − ½) on the balanced XOR set.
    """
    s, ds = mlp_runs
    y_mean = ds.y_train.mean()
    assert y_mean == 0.5
    expected_out = math.sqrt(3) * abs(np_sigmoid(1.0) - y_mean)
    assert s["born_dead"][1]
    np.testing.assert_array_equal(s["layer_grad_norm_init"][1][:2], [0.0, 0.0])
    np.testing.assert_allclose(s["layer_grad_norm_init"][1][2], expected_out, rtol=1e-6)
    np.testing.assert_array_equal(s["layer_dead_init"][1], [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(s["layer_dormant_init"][1], [0.0, 0.0, 0.0])  # identical units
    np.testing.assert_allclose(s["output_initial"][1], np_sigmoid(1.0), rtol=1e-6)
    np.testing.assert_allclose(s["loss_initial"][1], -0.5 * np.log(np_sigmoid(1.0)) - 0.5 * np.log(1 - np_sigmoid(1.0)), rtol=1e-6)
    assert s["accuracy_final"][1] == 0.5
    # One update (η = 0.1): only the output layer moves, each output weight and the bias by
    # −η g with g = σ(1) − ½, so z_1 = 1 − 4ηg for every input. Train and test sets are both
    # balanced, so the final loss and the test loss are ½[−log σ(z_1) − log(1 − σ(z_1))].
    z1 = 1.0 - 4 * 0.1 * (np_sigmoid(1.0) - 0.5)
    expected = 0.5 * (-np.log(np_sigmoid(z1)) - np.log(1.0 - np_sigmoid(z1)))
    np.testing.assert_allclose(s["loss_final"][1], expected, rtol=1e-6)
    np.testing.assert_allclose(s["test_loss"][1], expected, rtol=1e-6)
    assert s["test_accuracy"][1] == 0.5


def test_mini_batch_steps_and_full_batch_final_evaluation():
    """Per-step quantities use the step's mini-batch; the final evaluation the whole set.

    Identity neuron, ½(a − y)², two examples (x, y) = (1, 0) and (2, 0), w = 1, b = 0, and a
    learning rate too small to move anything (1e-30): the loss at a step is that of the one
    drawn example, ½ or 2, and the final loss is their mean, 1.25.
    """
    T = 24
    cfg = neuron("identity", loss="quadratic", dtype="float64", steps=T, batch_size=1, record_every=1)
    s, traj = train_many(cfg, runs(seed=[0, 1], init_w=1.0, init_b=0.0, learning_rate=1e-30), single(x=[[1.0], [2.0]]))
    for i in range(2):
        per_step = traj["loss"][i][:T]
        assert set(np.unique(per_step)) == {0.5, 2.0}  # both examples get drawn
        assert traj["loss"][i][T] == 1.25
        assert s["loss_final"][i] == 1.25
        assert s["loss_initial"][i] == per_step[0]
        assert s["loss_min"][i] == 0.5
        np.testing.assert_array_equal(traj["output"][i][:T], np.sqrt(2 * per_step))  # a = x, L = a²/2
        assert traj["output"][i][T] == 1.5
    assert not np.array_equal(traj["loss"][0], traj["loss"][1])  # the seed keys the draws


def test_nan_gradient_is_not_tiny_and_nan_improvement_ends_a_plateau():
    th = Thresholds(tiny_grad=1e-6, plateau_tau=1e-3, target=1e-9)
    # Flat for two steps, then the loss turns NaN (t = 3) and stays NaN.
    losses = [1.0, 1.0, 1.0, float("nan"), float("nan")]
    acc = fold(losses, th, grad_norm=[0.0, 0.0, 0.0, float("nan"), float("nan")])
    assert int(acc.tiny_grad_steps) == 3  # t = 0, 1, 2; the NaN gradient at t = 3 is not "below" the tolerance
    assert int(acc.longest_plateau) == 2  # t = 1, 2; NaN improvements do not extend it


# --------------------------------------------------------------------------------------
# The definitions made explicit: flushed subnormals, zero loss, rising loss
# --------------------------------------------------------------------------------------


def test_xla_cpu_flushes_subnormals_to_zero():
    """What XLA on CPU does with float32 subnormals (smallest normal 1.18e-38), against IEEE
    float32 in numpy: a result that would be subnormal is flushed to 0 (FTZ), and a subnormal
    input compares equal to 0 (DAZ). This is why ``zero_grad_steps`` counts gradients that IEEE
    arithmetic would leave subnormal. (XLA may simplify ``x * 1`` away, so the products here
    multiply two numbers.)"""
    if jax.default_backend() != "cpu":
        pytest.skip("documents XLA's CPU backend")
    small, tiny = np.float32(1e-20), np.float32(1e-19)
    assert small * tiny == np.float32(1e-39) and 0 < small * tiny < np.finfo(np.float32).tiny  # IEEE: subnormal
    product = jax.jit(lambda a, b: a * b)(jnp.float32(small), jnp.float32(tiny))
    assert float(product) == 0.0  # XLA CPU: flushed
    assert bool(jax.jit(lambda a: a == 0)(jnp.float32(1e-39)))  # a subnormal input reads as 0
    # The saturated sigmoid: sigma(-88.5) = 3.67e-39 in IEEE float32, exactly 0 under XLA CPU.
    with np.errstate(over="ignore"):
        ieee = np.float32(1) / (np.float32(1) + np.exp(np.float32(88.5)))
    assert 0 < ieee < np.finfo(np.float32).tiny
    assert float(jax.jit(jax.nn.sigmoid)(jnp.float32(-88.5))) == 0.0


def test_zero_grad_steps_counts_flushed_subnormal_gradients():
    """Sigmoid neuron, ½(a − y)², x = 1, y = 1, w = b = −44.25 (z = −88.5), float32, 4 steps.

    In IEEE float32 the gradient is (a − y)σ'(z)x ≈ −3.67e-39 in w and in b: subnormal, not 0.
    XLA on CPU flushes σ(z) to 0, so the gradient is exactly 0 at every step, θ never moves, and
    all 4 update steps count in ``zero_grad_steps`` although the loss is ½ (far from 0)."""
    if jax.default_backend() != "cpu":
        pytest.skip("documents XLA's CPU backend")
    T = 4
    cfg = neuron("sigmoid", loss="quadratic", dtype="float32", steps=T)
    s, _ = train_many(cfg, runs(np.float32, init_w=-44.25, init_b=-44.25, learning_rate=0.15), single(y=1.0, dtype=np.float32))
    with np.errstate(over="ignore"):
        a = np.float32(1) / (np.float32(1) + np.exp(np.float32(88.5)))
    ieee_grad = (a - np.float32(1)) * a * (np.float32(1) - a)
    assert ieee_grad != 0  # IEEE float32: a non-zero (subnormal) gradient
    assert s["zero_grad_steps"][0] == T
    assert s["loss_initial"][0] == s["loss_final"][0] == 0.5


def test_zero_grad_steps_counts_steps_after_the_loss_is_exactly_zero():
    """Identity neuron, ½(a − y)², x = 1, y = 0, w = b = 0.5, η = 0.5, float64, 5 steps.

    Update 0 moves w and b by −η·a_0 = −0.5: θ_1 = (0, 0), a_1 = 0, L_1 = 0 exactly, and the
    gradient (a·x, a) is exactly 0 from then on: updates 1..4 count, 4 zero-gradient steps,
    all after the target was reached (steps_to_target = 1)."""
    T = 5
    cfg = neuron("identity", loss="quadratic", dtype="float64", steps=T)
    s, _ = train_many(cfg, runs(init_w=0.5, init_b=0.5, learning_rate=0.5), single())
    assert s["loss_final"][0] == 0.0
    assert s["steps_to_target"][0] == 1
    assert s["zero_grad_steps"][0] == T - 1
    assert s["outcome"][0] == CONVERGED


def test_hinge_past_the_margin_counts_every_step_as_zero_gradient():
    """Identity neuron, hinge max(0, 1 − t z) with y = 1 (t = 1), w = b = 1.5: z = 3 is past the
    margin, L = 0 and ∂L/∂z = 0 from the start: all 6 update steps count."""
    T = 6
    cfg = neuron("identity", loss="hinge", dtype="float64", steps=T)
    s, _ = train_many(cfg, runs(init_w=1.5, init_b=1.5, learning_rate=0.1), single(y=1.0))
    assert s["loss_initial"][0] == 0.0 and s["steps_to_target"][0] == 0
    assert s["zero_grad_steps"][0] == T


def test_a_loss_that_quadruples_every_step_is_one_long_plateau():
    """Identity neuron, ½(a − y)², x = 1, y = 0, w = b = 0.5, η = 1.5, float32, 10 steps.

    Each update moves w and b by −η·a, so a_{t+1} = (1 − 2η) a_t = −2 a_t: a_t = (−2)^t,
    L_t = ½ 4^t (exact in binary), relative improvement (L_{t−1} − L_t)/L_{t−1} = −3 < τ at
    every t = 1..10. Rising counts as flat, so the plateau is all 10 steps; the run never
    reaches L <= 0.01 and L_10 = 524288 > 10 L_0, so it is diverged (the plateau is reported, the
    outcome says why the run failed)."""
    T = 10
    cfg = neuron("identity", loss="quadratic", dtype="float32", steps=T)
    s, _ = train_many(cfg, runs(np.float32, init_w=0.5, init_b=0.5, learning_rate=1.5), single(dtype=np.float32))
    assert s["loss_final"][0] == 0.5 * 4.0**T == 524288.0
    assert s["longest_plateau"][0] == T
    assert s["steps_to_target"][0] == NEVER
    assert s["outcome"][0] == DIVERGED


# --------------------------------------------------------------------------------------
# Packed counters (summaries.pack_*): exact at the largest count a field must hold
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_fields, max_count, n_words", [
    (4, 255, 1), (4, 256, 2), (3, 1023, 1), (3, 1024, 2), (4, 2**16, 4), (1, 2**31 - 1, 1),
])
def test_packed_counters_fit_the_largest_count(n_fields, max_count, n_words):
    # 32-bit words of ⌈n/words⌉ fields of 32 // ⌈n/words⌉ bits: 4 × 8 bits hold 255, not 256.
    words = summaries.pack_zeros(n_fields, max_count)
    assert len(words) == n_words
    # Field i counted up to max_count − i (every field at or near the top of its range at once).
    steps = 16
    increments = [jnp.asarray(max_count - i, jnp.uint32) // steps for i in range(n_fields)]
    for _ in range(steps):
        words = summaries.pack_add(words, increments)
    rest = [jnp.asarray((max_count - i) % steps, jnp.uint32) for i in range(n_fields)]
    words = summaries.pack_add(words, rest)
    assert [int(summaries.pack_get(words, n_fields, i)) for i in range(n_fields)] == [max_count - i for i in range(n_fields)]


def test_packed_counters_against_numpy_counts():
    rng = np.random.default_rng(0)
    T, n_fields = 300, 7
    flags = rng.random((T, n_fields)) < np.array([0.0, 0.1, 0.5, 0.9, 1.0, 0.3, 0.7])
    words = summaries.pack_zeros(n_fields, T)

    def step(words, row):
        return summaries.pack_add(words, tuple(row[i] for i in range(n_fields))), None

    words, _ = jax.lax.scan(step, words, jnp.asarray(flags))
    got = [int(summaries.pack_get(words, n_fields, i)) for i in range(n_fields)]
    assert got == flags.sum(axis=0).tolist()


def test_packed_count_too_large_is_refused():
    with pytest.raises(ValueError, match="32-bit"):
        summaries.pack_zeros(1, 2**32)
