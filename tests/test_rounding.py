"""Zero updates and the update-rounding remedies (``[train] update_rounding``).

References, written here and sharing no code with lossjax:

- hand-solved neurons: a bfloat16 linear neuron whose η·g is below half an ulp of w and b (T
  zero updates, no zero gradient), a float32 neuron of the texts (no zero update), a dead ReLU
  (zero gradient and zero update at every step), a dead hidden layer of an MLP (per-layer share);
- a numpy loop in the run's dtype (``ml_dtypes.bfloat16``, ``numpy.float16``: every operation
  rounded to the dtype) that counts, step by step, the steps leaving every parameter unchanged;
- stochastic rounding against the binomial law of the share rounded up (p from float64), Kahan
  summation against the float64 sum, and the engine's remedies against the float64 SGD drift
  of the linear neuron, z_t = z_0 (1 − 2η)^t.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest

from lossjax.core import metrics, models, rounding, train
from engine_cases import runs, single

BF16 = ml_dtypes.bfloat16


def engine(dtype, activation="identity", loss="quadratic", steps=100, rounding_rule="nearest", y=0.0, **fields):
    cfg = train.TrainConfig(
        model=models.ModelConfig(activation=activation), loss=loss, dtype=dtype, steps=steps,
        update_rounding=rounding_rule,
    )
    jdtype = train.DTYPES[dtype]
    fn = jax.jit(jax.vmap(train.make_train(cfg), in_axes=(0, None)))
    # Run fields (learning rate, inits) in the metric dtype, as the runner passes them.
    summary, _ = fn(runs(cfg.metric_dtype, **fields), single(y=y, dtype=jdtype))
    return {k: np.asarray(v) for k, v in summary._asdict().items()}


def cause(name: str) -> int:
    return metrics.STALL_CAUSES.index(name)


# --------------------------------------------------------------------------------------
# Hand-solved cases
# --------------------------------------------------------------------------------------


def test_bfloat16_update_below_half_an_ulp_is_a_zero_update():
    # Linear neuron, x = 1, y = 0: g_w = g_b = z = w + b = 192 (exact in bfloat16), η g = 0.192.
    # bfloat16 has 8 significant bits: in [64, 128) the ulp is 2^(6−7) = 0.5, half an ulp 0.25
    # > 0.192, so w − η g rounds back to w = 96 at every step: T zero updates, no zero gradient.
    s = engine("bfloat16", init_w=96.0, init_b=96.0, learning_rate=1e-3, steps=100)
    assert s["zero_update_steps"][0] == 100 and s["rounded_update_steps"][0] == 100
    assert s["zero_grad_steps"][0] == 0
    np.testing.assert_array_equal(s["layer_zero_update_share"][0], [1.0])
    assert s["outcome"][0] == metrics.STALLED and s["stall_cause"][0] == cause("zero_update")
    # In float32 the same run moves every step (ulp(96) = 2^-17 << 0.192).
    s32 = engine("float32", init_w=96.0, init_b=96.0, learning_rate=1e-3, steps=100)
    assert s32["zero_update_steps"][0] == 0 and s32["rounded_update_steps"][0] == 0
    assert s32["stall_cause"][0] == cause("other")


def test_float32_texts_neuron_has_no_zero_update():
    # The texts' saturated sigmoid neuron (x = 1, y = 0, η = 0.15): (0.6, 0.9) converges,
    # (2, 2) ends at a ≈ 0.20, loss 0.02 > 0.01: stalled by small steps, not by zero steps.
    s = engine("float32", activation="sigmoid", init_w=[0.6, 2.0], init_b=[0.9, 2.0], learning_rate=0.15, steps=300)
    np.testing.assert_array_equal(s["zero_update_steps"], [0, 0])
    np.testing.assert_array_equal(s["layer_zero_update_share"], [[0.0], [0.0]])
    assert s["outcome"][1] == metrics.STALLED
    np.testing.assert_array_equal(s["stall_cause"], [cause("none"), cause("other")])


def test_dead_relu_counts_zero_gradient_and_zero_update():
    # ReLU, z = −1 − 1 = −2 < 0: f'(z) = 0, so g = 0 and η·0 = 0 at every step; y = 1, loss ½.
    s = engine("float32", activation="relu", init_w=-1.0, init_b=-1.0, learning_rate=0.1, steps=50, y=1.0)
    assert s["zero_grad_steps"][0] == 50 and s["zero_update_steps"][0] == 50
    assert s["rounded_update_steps"][0] == 0
    assert s["stall_cause"][0] == cause("zero_gradient")


def test_mlp_dead_hidden_layer_share():
    # Hidden weights 0 (scale 0), every bias −10: hidden z = −10 < 0, ReLU dead, so the hidden
    # layer's gradient is 0 and it never moves (share 1); the output bias gets a − y ≠ 0 and
    # moves at every step (share 0), so no step leaves every parameter unchanged.
    mc = models.ModelConfig(kind="mlp", n_inputs=2, depth=1, width=3, hidden_activation="relu")
    cfg = train.TrainConfig(model=mc, loss="bce", dtype="float32", steps=20, init_mode="scheme")
    x = jnp.asarray([[1.0, 2.0], [-1.0, 0.5], [0.3, -2.0]], jnp.float32)
    y = jnp.asarray([[1.0], [0.0], [1.0]], jnp.float32)
    data = train.Data(x, y, jnp.zeros((0, 2), jnp.float32), jnp.zeros((0, 1), jnp.float32))
    fn = jax.jit(jax.vmap(train.make_train(cfg), in_axes=(0, None)))
    s, _ = fn(runs(jnp.float32, init_scale=0.0, init_bias=-10.0, learning_rate=0.1), data)
    np.testing.assert_array_equal(np.asarray(s.layer_zero_update_share)[0], [1.0, 0.0])
    assert int(s.zero_update_steps[0]) == 0 and int(s.zero_grad_steps[0]) == 0


# --------------------------------------------------------------------------------------
# A numpy loop in the run's dtype
# --------------------------------------------------------------------------------------


def numpy_counts(np_dtype, activation, w, b, lr, steps, x=1.0, y=0.5):
    """SGD on ½(a − y)², every operation rounded to ``np_dtype`` except the update η·g, computed in
    float32 and rounded once (the optimiser's float32 contract, docs/precision.md): (zero-update,
    zero-gradient) steps."""
    w, b, x, y, one = (np_dtype(v) for v in (w, b, x, y, 1.0))
    lr = np.float32(lr)
    zero_update = zero_grad = 0
    for _ in range(steps):
        z = w * x + b
        if activation == "identity":
            delta = z - y
        else:
            a = one / (one + np_dtype(np.exp(-np.float32(z))))
            delta = (a - y) * (a * (one - a))
        gw, gb = delta * x, delta
        w1, b1 = w - np_dtype(lr * np.float32(gw)), b - np_dtype(lr * np.float32(gb))
        zero_update += bool(w1 == w and b1 == b)
        zero_grad += bool(gw == 0 and gb == 0)
        w, b = w1, b1
    return zero_update, zero_grad


INITS = [(96.0, 96.0), (3.0, -2.5), (40.0, 8.0), (0.75, 0.5), (200.0, 30.0), (-1.0, 0.5), (2.0, 2.0)]
RATES = [1e-3, 1e-2, 1.0]


@pytest.mark.parametrize("activation", ["identity", "sigmoid"])
@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_zero_update_steps_equal_numpy_loop(dtype, activation):
    np_dtype = BF16 if dtype == "bfloat16" else np.float16
    cases = [(w, b, lr) for w, b in INITS for lr in RATES]
    w, b, lr = (list(c) for c in zip(*cases))
    s = engine(dtype, activation=activation, init_w=w, init_b=b, learning_rate=lr, steps=200, y=0.5)
    expected = [numpy_counts(np_dtype, activation, *c, steps=200) for c in cases]
    np.testing.assert_array_equal(s["zero_update_steps"], [e[0] for e in expected])
    np.testing.assert_array_equal(s["zero_grad_steps"], [e[1] for e in expected])
    # Partial counts are in the list (neither 0 nor T), so the comparison is not all-or-nothing.
    assert any(0 < e[0] < 200 for e in expected)


# --------------------------------------------------------------------------------------
# The remedies
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_nearest_value_is_numpys_rounding(dtype):
    """``nearest_value`` (written without a float32 -> dtype -> float32 round trip, which XLA on a GPU
    may drop) against numpy's (ml_dtypes') conversion, bit for bit: 10^6 random float32 bit patterns,
    float16's subnormals and its ties there, the smallest normal, overflow at 65520, ±0, ±inf, NaN.
    Inputs that are float32 subnormals are left out: XLA's CPU reads them as 0."""
    rng = np.random.default_rng(0)
    patterns = rng.integers(0, 2**32, size=10**6, dtype=np.uint64).astype(np.uint32).view(np.float32)
    step = np.float32(2.0**-24)  # float16's subnormal spacing
    edges = np.float32([0.5, 1.5, 2.5, 2.3, 1023.5, 1023.49, 1024.0]) * step
    edges = np.concatenate([edges, np.float32([6.1e-5, 65504, 65519.99, 65520, 3.39e38, 0.0, np.inf, np.nan, 1.0, 1 + 2.0**-8])])
    x = np.concatenate([patterns, edges, -edges, (rng.standard_normal(10**5) * 1e-6).astype(np.float32)])
    x = x[~((np.abs(x) < np.finfo(np.float32).tiny) & (x != 0))]
    got = np.asarray(jax.jit(rounding.nearest_value, static_argnums=1)(x, dtype))
    with np.errstate(over="ignore", invalid="ignore"):  # overflow to inf and NaN are among the cases
        expected = x.astype(np.dtype(dtype)).astype(np.float32)
    same = (got.view(np.uint32) == expected.view(np.uint32)) | (np.isnan(got) & np.isnan(expected))
    assert same.all(), (x[~same][:5], got[~same][:5], expected[~same][:5])


@pytest.mark.parametrize("dtype, value, spacing", [
    (jnp.bfloat16, 1.0 + 0.3 * 2.0**-7, 2.0**-7),  # ulp(1) = 2^-7 in bfloat16: p_up = 0.3
    (jnp.bfloat16, -96.0 - 0.125, 0.5),  # ulp = 0.5 in [64, 128): p(down, away from 0) = 0.75
    (jnp.float16, 3.0 + 0.9 * 2.0**-9, 2.0**-9),  # ulp(3) = 2^-9 in float16 ([2, 4)): p_up = 0.9
    (jnp.float16, 2.3 * 2.0**-24, 2.0**-24),  # a float16 subnormal (fixed spacing 2^-24): p_up = 0.3
])
def test_stochastic_rounding_is_unbiased(dtype, value, spacing):
    n = 200_000
    x = jnp.full((n,), value, jnp.float32)
    u = jax.random.uniform(jax.random.key(7), (n,), jnp.float32)
    out = np.asarray(jax.jit(rounding.round_stochastic, static_argnums=1)(x, dtype, u), np.float64)
    lo = np.floor(value / spacing) * spacing
    hi = lo + spacing
    assert set(np.unique(out)) <= {lo, hi}
    p = (value - lo) / spacing
    share_up = np.mean(out == hi)
    assert abs(share_up - p) < 5 * np.sqrt(p * (1 - p) / n)
    assert abs(np.mean(out) - value) < 5 * spacing * np.sqrt(p * (1 - p) / n)
    # A value the dtype holds exactly is returned unchanged.
    exact = jnp.full((4,), lo, jnp.float32)
    np.testing.assert_array_equal(np.asarray(rounding.round_stochastic(exact, dtype, u[:4]), np.float64), lo)


def test_kahan_sum_of_tiny_bfloat16_increments_matches_float64():
    # 1 + 4000 × bf16(1e-3): each increment is below half an ulp of the sum (2^-8 at 1), so
    # nearest rounding never moves; Kahan's compensation carries the lost part.
    inc = jnp.asarray(1e-3, jnp.bfloat16)
    steps = 4000

    def body(carry, _):
        p, c, q = carry
        new, c = rounding.apply("kahan", {"w": p}, {"w": inc}, {"w": c}, None)
        near, _ = rounding.apply("nearest", {"w": q}, {"w": inc}, None, None)
        return (new["w"], c["w"], near["w"]), None

    one, zero = jnp.asarray(1.0, jnp.bfloat16), jnp.asarray(0.0, jnp.bfloat16)
    (kahan, _, nearest), _ = jax.jit(lambda: jax.lax.scan(body, (one, zero, one), None, length=steps))()
    exact = 1.0 + steps * float(np.float64(inc.astype(jnp.float32)))
    ulp = 2.0 ** (np.floor(np.log2(exact)) - 7)
    assert abs(float(kahan) - exact) <= ulp
    assert float(nearest) == 1.0


def test_float32_stochastic_is_nearest_bitwise():
    fields = dict(init_w=[0.6, 2.0, -3.0], init_b=[0.9, 2.0, 1.0], learning_rate=0.15, seed=[0, 1, 2])
    near = engine("float32", activation="sigmoid", loss="bce", steps=60, **fields)
    stoch = engine("float32", activation="sigmoid", loss="bce", steps=60, rounding_rule="stochastic", **fields)
    for name in near:
        np.testing.assert_array_equal(near[name], stoch[name], err_msg=name)


def test_remedies_move_a_bfloat16_neuron_along_the_float64_drift():
    # The hand case above (w = b = 96, η = 1e-3, T = 100): nearest never moves. In exact SGD
    # z_{t+1} = z_t − 2η z_t, so z_T = 192 (1 − 2η)^T ≈ 157.1.
    steps, eta, seeds = 100, 1e-3, 400
    z_exact = 192.0 * (1 - 2 * eta) ** steps
    common = dict(init_w=96.0, init_b=96.0, learning_rate=eta, steps=steps, seed=np.arange(seeds))
    near = engine("bfloat16", **common)
    np.testing.assert_array_equal(near["output_final"].astype(np.float64), 192.0)
    ulp_z = 1.0  # bfloat16 spacing in [128, 256)
    # Kahan: within one ulp of z (the output is z rounded to bfloat16) plus the gradient's own
    # rounding (z rounded to an ulp of 1 changes each step's update by ≤ 0.26 %; ≤ 0.1 in all).
    kahan = engine("bfloat16", rounding_rule="kahan", **common)
    assert np.all(np.abs(kahan["output_final"].astype(np.float64) - z_exact) <= ulp_z + 0.1)
    assert np.all(kahan["zero_update_steps"] < steps)
    # Stochastic: unbiased per step; each of w and b takes T roundings of variance ≤ (0.5/2)²
    # (ulp 0.5 below 128), so sd(z_T) ≤ 2 · √T · 0.25 = 5 per run (w and b fully correlated at
    # worst); the mean of 400 runs is within 4 · 5/√400 = 1.0, plus the half ulp of the
    # output's own nearest rounding.
    stoch = engine("bfloat16", rounding_rule="stochastic", **common)
    assert abs(np.mean(stoch["output_final"].astype(np.float64)) - z_exact) <= 1.0 + ulp_z / 2
    assert np.std(stoch["output_final"].astype(np.float64)) > 0  # the seeds draw different roundings


def test_stochastic_runs_depend_on_the_run_alone():
    """The roundings are keyed by the run's seed and step: the same numbers in chunks of 3 runs as in
    one chunk, and a run trained alone equals its cell of the grid."""
    from lossjax import config, runner

    sweep = {
        "name": "stochastic-alone",
        "model": {"kind": "neuron", "activation": "sigmoid"},
        "data": {"dataset": "single", "params": {"x": 1.0, "y": 0.0}},
        "train": {"steps": 40, "loss": "quadratic", "dtype": "bfloat16", "update_rounding": ["stochastic", "kahan"],
                  "learning_rate": [0.015, 0.15], "seed": {"num": 3}},
        "init": {"points": [[-6.0, 6.0], [5.0, -1.0]]},
    }
    whole = runner.run_sweep(config.parse_sweep(sweep))
    chunked = runner.run_sweep(config.parse_sweep({**sweep, "run": {"chunk_size": 3}}))
    for name in whole.data_vars:
        np.testing.assert_array_equal(whole[name].values, chunked[name].values, err_msg=name)
    alone = engine("bfloat16", activation="sigmoid", rounding_rule="stochastic", steps=40, init_w=-6.0, init_b=6.0,
                   learning_rate=0.15, seed=2)
    cell = whole.sel(update_rounding="stochastic", learning_rate=0.15, seed=2).isel(init=0)
    for name in ("loss_final", "zero_update_steps", "rounded_update_steps", "stall_cause"):
        np.testing.assert_array_equal(cell[name].values, alone[name][0].astype(cell[name].dtype), err_msg=name)
    # The seeds draw different roundings (else the comparison above could not tell keys apart).
    per_seed = whole.sel(update_rounding="stochastic", learning_rate=0.15).isel(init=0).loss_final.values
    assert np.unique(per_seed).size > 1
