"""MLP study: per-layer quantities on cases with known answers, and the experiment files.

Known answers:
- every hidden pre-activation negative for every input (ReLU) ⇒ every hidden unit dead and the
  network born dead; a positive bias with the same weights ⇒ not born dead;
- a layer whose weights are all zero passes no gradient to any layer below it;
- the saturated fraction of a layer whose pre-activations are set by hand;
- the single-input dead probability 1 − (1 − 2^-N)^L against a numpy Monte Carlo.
"""

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lossjax.core import activations
from lossjax.core import metrics
from lossjax.core import initializers, models
from lossjax import reports
from lossjax import config as sweep
from lossjax.core import train

study_mlp = reports.load_module(Path(__file__).parents[1] / "experiments" / "mlp" / "report.py")

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = sorted((ROOT / "experiments" / "mlp").glob("mlp_*.toml"))


def _data(n=16, features=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.0, 1.0, size=(n, features)).astype(np.float32)
    y = (x[:, :1] > 0).astype(np.float32)
    return train.Data(jnp.asarray(x), jnp.asarray(y), jnp.asarray(x[:4]), jnp.asarray(y[:4]))


def _run(*, scale, bias, seed=0):
    f32 = jnp.float32
    return train.RunInputs(
        seed=jnp.asarray(seed, jnp.int32),
        learning_rate=jnp.asarray(0.1, f32),
        init_w=jnp.asarray(0.0, f32),
        init_b=jnp.asarray(0.0, f32),
        init_scheme=jnp.asarray(initializers.init_scheme_index("lecun"), jnp.int32),
        init_scale=jnp.asarray(scale, f32),
        init_bias=jnp.asarray(bias, f32),
        init_bias_std=jnp.asarray(0.0, f32),
        target=jnp.asarray(jnp.nan, f32),
    )


def _summary(hidden, *, scale, bias, depth=2, width=4, loss="bce"):
    model = models.ModelConfig(
        kind="mlp", n_inputs=3, n_outputs=1, depth=depth, width=width,
        hidden_activation=hidden, activation="sigmoid",
    )
    config = train.TrainConfig(model=model, loss=loss, steps=1, init_mode="scheme")
    summary, _ = jax.jit(train.make_train(config))(_run(scale=scale, bias=bias), _data())
    return jax.device_get(summary)


def test_all_negative_preactivations_born_dead():
    # Weights tiny (|w·x| < 0.1) and bias −1: every hidden pre-activation is negative for every input.
    s = _summary("relu", scale=0.01, bias=-1.0)
    assert bool(s.born_dead)
    np.testing.assert_array_equal(s.layer_dead_init[:-1], 1.0)
    np.testing.assert_array_equal(s.layer_dormant_init[:-1], 1.0)
    # Nothing below the output layer gets a gradient through dead ReLUs.
    np.testing.assert_array_equal(s.layer_grad_norm_init[:-1], 0.0)


def test_positive_bias_not_born_dead():
    # Ordinary LeCun weights and bias +1: most hidden units are active, the output varies with x.
    s = _summary("relu", scale=1.0, bias=1.0)
    assert not bool(s.born_dead)
    assert s.dead_init < 1.0


def test_zero_weights_zero_gradient_below_engine():
    # scale 0: every kernel is zero; sigmoid(bias) ≠ 0 feeds the output layer, so only the
    # output layer's kernel gets a gradient.
    s = _summary("sigmoid", scale=0.0, bias=0.5)
    np.testing.assert_array_equal(s.layer_grad_norm_init[:-1], 0.0)
    assert s.layer_grad_norm_init[-1] > 0
    assert bool(s.born_dead)  # zero kernels: output = constant for every input


def test_zero_weight_layer_blocks_gradient_below_it():
    """One zero kernel (layer k) ⇒ zero gradient for every kernel below k, non-zero above."""
    model = models.ModelConfig(kind="mlp", n_inputs=3, n_outputs=1, depth=4, width=6,
                               hidden_activation="tanh", activation="sigmoid", impl="pytree")
    scheme = jnp.asarray(initializers.init_scheme_index("glorot"))
    params = initializers.init_from_scheme(model, jax.random.key(1), scheme, 1.0, 0.1, 0.0, jnp.float64)
    params["params"]["hidden_2"]["kernel"] = jnp.zeros_like(params["params"]["hidden_2"]["kernel"])
    apply = models.make_apply(model, jnp.tanh)
    x = jnp.asarray(_data()[0], jnp.float64)

    def loss(p):
        z = apply(p, x).logits
        return jnp.mean((jax.nn.sigmoid(z) - 1.0) ** 2)

    grads = jax.grad(loss)(params)
    norms = [float(jnp.linalg.norm(k)) for k in models.layer_kernels(model, grads)]
    assert norms[0] == 0.0 and norms[1] == 0.0  # below the zero layer
    assert all(n > 0 for n in norms[2:])  # the zero layer itself and above


def test_saturated_fraction_hand_set():
    sig = activations.get_activation("sigmoid")
    # Four units, two inputs. Unit 0: z = 10 always (saturated); unit 1: z = 10 then 0 (one
    # input unsaturated: not saturated); unit 2: z = −7 always (saturated, σ' ≈ 9e-4 < 0.0025);
    # unit 3: z = 5 (σ'(5) ≈ 0.0066 > 0.0025: not saturated).
    z = jnp.asarray([[10.0, 10.0, -7.0, 5.0], [10.0, 0.0, -7.0, 5.0]], jnp.float64)
    d = activations.derivative(sig, z)
    sat, dead, dormant = metrics.unit_fractions(d, sig.fn(z), sig.max_slope, metrics.Thresholds())
    assert float(sat) == pytest.approx(0.5)
    assert float(dead) == 0.0  # σ' is never exactly 0 at these z
    # mean|h|: [1, .75, 9e-4, .993]; layer mean ≈ 0.686; 2.5 % of it ≈ 0.017: unit 2 dormant.
    assert float(dormant) == pytest.approx(0.25)


def test_saturated_fraction_engine_bias():
    # Zero kernels and bias 10: every hidden z = 10 for every input, so every hidden unit is
    # saturated; with bias 0 none is.
    s = _summary("sigmoid", scale=0.0, bias=10.0)
    np.testing.assert_array_equal(s.layer_saturated_init[:-1], 1.0)
    s = _summary("sigmoid", scale=0.0, bias=0.0)
    np.testing.assert_array_equal(s.layer_saturated_init[:-1], 0.0)


def test_single_input_dead_probability_closed_form_and_monte_carlo():
    assert study_mlp.single_input_dead_probability(1, 1) == pytest.approx(0.5)
    assert study_mlp.single_input_dead_probability(2, 2) == pytest.approx(1 - 0.75**2)
    rng = np.random.default_rng(0)
    width, depth, n = 2, 3, 20000
    h = np.tile(np.array([0.3, -1.2]), (n, 1))  # one input, d_in = 2, all nets at once
    for layer in range(depth):
        w = rng.normal(size=(n, h.shape[1], width))
        h = np.maximum(np.einsum("ni,nij->nj", h, w), 0.0)
    dead = np.mean(np.all(h == 0, axis=1))
    p = study_mlp.single_input_dead_probability(width, depth)
    assert abs(dead - p) < 4 * np.sqrt(p * (1 - p) / n)


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
def test_experiment_files_parse(path):
    spec = sweep.load_sweep(path)
    assert spec.name == path.stem
    assert callable(reports.load(spec.report))
    assert spec.model_kind == "mlp"
    # Each file runs in minutes on 2 cores: at most 20 programs, except the born-dead grids whose
    # programs take no step (steps = 0: θ_0 alone) and compile in seconds (5 widths × 20 depths; 4 × 4 × 2 dtypes).
    limit = 100 if spec.name in ("mlp_dying_relu", "mlp_born_dead") else 20
    assert len(spec.static_combinations()) <= limit


def test_grids_cover_the_issue():
    """The MLP study: dying ReLU at widths 2, 3, 4, 5, 10 and depths 1 to 20; depth × {sigmoid, tanh, relu} × loss."""
    relu = sweep.load_sweep(ROOT / "experiments" / "mlp" / "mlp_dying_relu.toml")
    combos = relu.static_combinations()
    assert {c["width"] for c in combos} == {2, 3, 4, 5, 10}
    depths = {c["depth"] for c in combos}
    assert min(depths) == 1 and max(depths) == 20 and len(depths) >= 10
    assert relu.n_runs // len(combos) >= 4 * 10_000  # 4 bias initialisations × 10,000 seeds per cell
    depth = sweep.load_sweep(ROOT / "experiments" / "mlp" / "mlp_depth.toml")
    combos = depth.static_combinations()
    assert {c["hidden_activation"] for c in combos} == {"sigmoid", "tanh", "relu"}
    assert {c["loss"] for c in combos} == {"quadratic", "bce"}


def test_bias_label():
    assert study_mlp.bias_label({"init_bias": 0.0, "init_bias_std": 0.0}) == "zero biases"
    assert study_mlp.bias_label({"init_bias": 0.1, "init_bias_std": 0.0}) == "shifted +0.1"
    assert study_mlp.bias_label({"init_bias": 0.0, "init_bias_std": 1.0}) == "random N(0, 1)"


def test_four_experiments_present():
    assert {p.stem for p in EXPERIMENTS} >= {"mlp_depth", "mlp_glorot", "mlp_dying_relu", "mlp_phase"}
