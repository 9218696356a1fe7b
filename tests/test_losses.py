"""Tests for lossjax.losses against numpy written here, optax, and hand-computed cases.

Tolerances: float64 rtol 1e-10 (closed forms and transcendental functions alike, both computed
in double); float32 rtol 1e-5/atol 1e-6 against float64 references; finite differences
rtol 1e-6. Every value and gradient goes through ``jax.jit``.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.test_util import check_grads

from lossjax.core import losses as L
from lossjax.core.losses import LOSSES, get_loss


DTYPES = [np.float32, np.float64]
TOL = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: dict(rtol=1e-10, atol=1e-12)}


def _np_sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _jit_cases(fn, cases):
    """Evaluate ``fn(*case)`` for every case inside ONE ``jax.jit`` (one compilation)."""
    return jax.jit(lambda cases: [fn(*c) for c in cases])(cases)


def _data(n=24, k=1, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.normal(scale=2.0, size=(n, k))
    if k == 1:
        y = rng.integers(0, 2, size=(n, k)).astype(np.float64)
    else:
        y = np.eye(k)[rng.integers(0, k, size=n)]
    return z, _np_sigmoid(z), y


# ---------------------------------------------------------------------------------------
# Elementwise losses: numpy values and closed-form gradients w.r.t. the prediction.
# ---------------------------------------------------------------------------------------

G = 1e-7
# name -> (jax fn, numpy value, numpy d/dprediction, "logits"|"output"|"pm")
ELEMENTWISE = {
    "quadratic": (L.quadratic, lambda a, y: 0.5 * (y - a) ** 2, lambda a, y: a - y, "output"),
    "squared_error": (L.squared_error, lambda a, y: (y - a) ** 2, lambda a, y: 2 * (a - y), "output"),
    "absolute_error": (L.absolute_error, lambda a, y: np.abs(y - a), lambda a, y: np.sign(a - y), "output"),
    "huber": (
        L.huber,
        lambda a, y: np.where(np.abs(a - y) <= 1, 0.5 * (a - y) ** 2, np.abs(a - y) - 0.5),
        lambda a, y: np.clip(a - y, -1, 1),
        "logits",  # use unbounded inputs so both branches are exercised
    ),
    "binary_cross_entropy_logits": (
        L.binary_cross_entropy_logits,
        lambda z, y: -(y * np.log(_np_sigmoid(z)) + (1 - y) * np.log(1 - _np_sigmoid(z))),
        lambda z, y: _np_sigmoid(z) - y,
        "logits",
    ),
    "binary_cross_entropy_guarded": (
        L.binary_cross_entropy_guarded,
        lambda a, y: -(y * np.log(a + G) + (1 - y) * np.log(1 - a + G)),
        lambda a, y: -y / (a + G) + (1 - y) / (1 - a + G),
        "output",
    ),
    "cross_entropy_guarded_one_sided": (
        L.cross_entropy_guarded_one_sided,
        lambda a, t: -t * np.log(a + G),
        lambda a, t: -t / (a + G),
        "output",
    ),
    "one_sided_cross_entropy": (
        L.one_sided_cross_entropy,
        lambda a, y: -y * np.log(a),
        lambda a, y: -y / a,
        "output",
    ),
    "hinge": (
        L.hinge,
        lambda s, t: np.maximum(0, 1 - t * s),
        lambda s, t: np.where(t * s < 1, -t, 0.0),
        "pm",
    ),
    "squared_hinge": (
        L.squared_hinge,
        lambda s, t: np.maximum(0, 1 - t * s) ** 2,
        lambda s, t: -2 * t * np.maximum(0, 1 - t * s),
        "pm",
    ),
}


def _inputs(kind, seed=0):
    z, a, y = _data(n=32, k=3, seed=seed)
    y = (np.random.default_rng(seed + 1).random(z.shape) < 0.5).astype(np.float64)
    if kind == "output":
        return a, y
    if kind == "pm":
        return z, 2 * y - 1
    return z, y


@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
def test_elementwise_values_and_gradients(name):
    fn, ref, dref, kind = ELEMENTWISE[name]
    p, t = _inputs(kind)
    cases = [(p.astype(dt), t.astype(dt)) for dt in DTYPES]
    results = _jit_cases(lambda p, t: (fn(p, t), jax.grad(lambda p: jnp.sum(fn(p, t)))(p)), cases)
    for dtype, (pc, tc), (out, grad) in zip(DTYPES, cases, results):
        p64, t64 = pc.astype(np.float64), tc.astype(np.float64)
        assert out.dtype == dtype and out.shape == p.shape and grad.dtype == dtype
        np.testing.assert_allclose(out, ref(p64, t64), **TOL[dtype])
        tol = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else TOL[dtype]  # 1/a amplifies
        np.testing.assert_allclose(grad, dref(p64, t64), **tol)


def test_quadratic_is_half_squared_error_and_huber_delta():
    a = np.array([0.1, 0.9, 2.5, -3.0])
    y = np.array([0.0, 1.0, 0.0, 0.0])
    np.testing.assert_allclose(L.quadratic(a, y), 0.5 * L.squared_error(a, y), rtol=1e-15)
    # delta = 0.5: |e| = 0.1 quadratic branch, 2.5 linear branch 0.5 (2.5 - 0.25)
    np.testing.assert_allclose(
        L.huber(a, y, delta=0.5), [0.005, 0.005, 0.5 * 2.25, 0.5 * 2.75], rtol=1e-12
    )


# ---------------------------------------------------------------------------------------
# Against optax where optax has the same loss.
# ---------------------------------------------------------------------------------------


def _pair(ours, theirs, p, t):
    gsum = lambda f: jax.grad(lambda p: jnp.sum(f(p, t)))(p)  # noqa: E731
    return ours(p, t), theirs(p, t), gsum(ours), gsum(theirs)


@pytest.mark.parametrize("dtype", DTYPES)
def test_against_optax(dtype):
    z, a, y = _data(n=40, k=1, seed=3)
    z, a, y = z.astype(dtype), a.astype(dtype), y.astype(dtype)
    zk, _, yk = _data(n=40, k=5, seed=4)
    zk, yk = zk.astype(dtype), yk.astype(dtype)
    ol = optax.losses
    cases = {
        "bce": (L.binary_cross_entropy_logits, ol.sigmoid_binary_cross_entropy, z, y),
        "squared_error": (L.squared_error, ol.squared_error, a, y),
        "l2_loss": (L.quadratic, ol.l2_loss, a, y),
        "hinge": (L.hinge, ol.hinge_loss, z, 2 * y - 1),
        "softmax_ce": (L.softmax_cross_entropy, ol.softmax_cross_entropy, zk, yk),
    }
    for delta in [1.0, 0.5, 2.0]:
        cases[f"huber{delta}"] = (
            lambda p, t, d=delta: L.huber(p, t, delta=d),
            lambda p, t, d=delta: ol.huber_loss(p, t, delta=d),
            z,
            y,
        )

    @jax.jit
    def run(arrays):
        return {k: _pair(c[0], c[1], *arrays[k]) for k, c in cases.items()}

    res = run({k: (c[2], c[3]) for k, c in cases.items()})
    for key, (v_ours, v_optax, g_ours, g_optax) in res.items():
        assert v_ours.dtype == dtype, key
        np.testing.assert_allclose(v_ours, v_optax, **TOL[dtype], err_msg=key)
        np.testing.assert_allclose(g_ours, g_optax, **TOL[dtype], err_msg=key)


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_cross_entropy_numpy(dtype):
    z, _, y = _data(n=16, k=4, seed=5)
    z, y = z.astype(dtype), y.astype(dtype)
    z64 = z.astype(np.float64)
    e = np.exp(z64 - z64.max(-1, keepdims=True))
    sm = e / e.sum(-1, keepdims=True)
    np.testing.assert_allclose(jax.jit(L.softmax_cross_entropy)(z, y), -(y * np.log(sm)).sum(-1), **TOL[dtype])
    g = jax.jit(jax.grad(lambda z: jnp.sum(L.softmax_cross_entropy(z, y))))(z)
    np.testing.assert_allclose(g, sm - y, **TOL[dtype])


def test_bce_logits_gradient_at_zero_and_tiny_losses():
    # d/dz at z = 0 is sigma(0) - y = 0.5 - y (a max/abs formulation gives -y there)
    z = jnp.zeros(2)
    y = jnp.array([0.0, 1.0])
    g = jax.jit(jax.grad(lambda z: jnp.sum(L.binary_cross_entropy_logits(z, y))))(z)
    np.testing.assert_array_equal(g, [0.5, -0.5])
    np.testing.assert_allclose(L.binary_cross_entropy_logits(z, y), [math.log(2)] * 2, rtol=1e-12)
    # confident and correct: the loss is e^{-|z|} (to first order), not cancelled to 0
    z = np.array([30.0, -30.0], np.float32)
    y = np.array([1.0, 0.0], np.float32)
    np.testing.assert_allclose(jax.jit(L.binary_cross_entropy_logits)(z, y), [math.exp(-30)] * 2, rtol=1e-5)


def test_hinge_gradient_is_zero_from_the_margin_on():
    s = jnp.array([1.0, -1.0, 0.999, 2.0])
    t = jnp.array([1.0, -1.0, 1.0, 1.0])
    for fn in (L.hinge, L.squared_hinge):
        g = jax.jit(jax.grad(lambda s: jnp.sum(fn(s, t))))(s)
        np.testing.assert_array_equal(np.asarray(g)[[0, 1, 3]], 0.0)
        assert float(g[2]) < 0


def test_bce_logits_is_stable_for_huge_logits():
    z = np.array([-1e4, -100.0, 100.0, 1e4], np.float32)
    y = np.array([1.0, 0.0, 1.0, 0.0], np.float32)
    out = jax.jit(L.binary_cross_entropy_logits)(z, y)
    # e^-100 underflows float32: 0 on XLA's CPU (subnormals flushed), a subnormal (3.8e-44) on a GPU
    np.testing.assert_allclose(out, [1e4, 0.0, 0.0, 1e4], rtol=1e-6, atol=float(np.finfo(np.float32).tiny))
    g = jax.grad(lambda z: jnp.sum(L.binary_cross_entropy_logits(z, y)))(z)
    np.testing.assert_allclose(g, [-1.0, 0.0, 0.0, 1.0], atol=1e-30)


# ---------------------------------------------------------------------------------------
# Guarded (the introduction to loss functions) vs stable BCE, and the float32 saturation trap.
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_bce_guarded_equals_bce_when_not_saturated(dtype):
    z = np.linspace(-5, 5, 101).astype(dtype)[:, None]
    for yv in [0.0, 1.0]:
        y = np.full_like(z, yv)
        guarded = jax.jit(lambda z, y: get_loss("bce_guarded").fn(jax.nn.sigmoid(z), y))(z, y)
        stable = jax.jit(get_loss("bce").fn)(z, y)
        # |log(a + 1e-7) - log a| <= 1e-7 / a <= 1.5e-5 for a >= sigma(-5)
        np.testing.assert_allclose(guarded, stable, rtol=2e-5, atol=2e-5)
        per = jax.jit(jax.vmap(lambda z, y: L.binary_cross_entropy_guarded(jax.nn.sigmoid(z), y)))(z, y)
        np.testing.assert_allclose(per, L.binary_cross_entropy_logits(z, y), rtol=2e-5, atol=2e-5)


def test_float32_sigmoid_saturation_kills_guarded_gradient():
    z = np.arange(10.0, 20.0, 0.001, dtype=np.float32)
    s = np.asarray(jax.jit(jax.nn.sigmoid)(z))
    first = int(np.argmax(s == 1.0))
    z_star = float(z[first])
    assert 16.0 < z_star < 17.5, z_star  # ~16.64: exp(-z) < 2^-24, 1 + exp(-z) rounds to 1
    assert np.all(s[first:] == 1.0) and s[first - 1] < 1.0

    def guarded(z, y):
        return L.binary_cross_entropy_guarded(jax.nn.sigmoid(z), y)

    g_guarded = jax.jit(jax.grad(guarded))
    g_bce = jax.jit(jax.grad(L.binary_cross_entropy_logits))
    y0 = np.float32(0.0)  # wrong and saturated: the model is confident in class 1
    for zz in [z_star, 20.0, 50.0]:
        zz = np.float32(zz)
        assert g_guarded(zz, y0) == 0.0  # exactly: sigma'(z) = s (1 - s) = 0
        assert g_bce(zz, y0) == pytest.approx(1.0, abs=1e-6)  # sigma(z) - y
        assert guarded(zz, y0) == pytest.approx(-math.log(np.float32(1e-7)), rel=1e-6)  # stuck at 16.1
    # just below the threshold the guarded gradient is still alive (and large)
    assert g_guarded(np.float32(z[first - 1]), y0) > 0.1
    # the same through the registry and in float64, where sigma does not round to 1 until z ~ 37
    gz = jax.grad(lambda z: get_loss("bce_guarded").fn(jax.nn.sigmoid(z), jnp.zeros_like(z)))
    assert float(gz(jnp.full((1, 1), 20.0, jnp.float32))[0, 0]) == 0.0
    assert float(gz(jnp.full((1, 1), 20.0, jnp.float64))[0, 0]) > 0.0


# ---------------------------------------------------------------------------------------
# One-sided cross-entropies: silently zero gradient where the target is 0.
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["ce_one_sided", "ce_guarded"])
def test_one_sided_losses_ignore_target_zero(name):
    loss = get_loss(name)
    a = jnp.array([[0.01], [0.5], [0.99]])
    y = jnp.zeros_like(a)
    assert float(jax.jit(loss.fn)(a, y)) == 0.0
    np.testing.assert_array_equal(jax.grad(loss.fn)(a, y), 0.0)
    g = jax.grad(loss.fn)(a, jnp.ones_like(a))
    assert np.all(np.asarray(g) < 0)


def test_ce_guarded_is_seed_001_formula():
    # the introduction to loss functions: -sum(t * log(y + 1e-7)) / batch_size for one-hot t
    y = np.array([[0.1, 0.05, 0.6, 0.0, 0.05, 0.1, 0.0, 0.1, 0.0, 0.0]] * 2)
    t = np.zeros_like(y)
    t[0, 2] = 1
    t[1, 3] = 1  # probability 0: the guard gives -log(1e-7)
    expected = -np.sum(t * np.log(y + 1e-7)) / 2
    np.testing.assert_allclose(jax.jit(get_loss("ce_guarded").fn)(y, t), expected, rtol=1e-12)


# ---------------------------------------------------------------------------------------
# Registry reduction: mean over samples of the per-sample sum over units.
# ---------------------------------------------------------------------------------------

REGISTRY_ELEMENTWISE = {
    "quadratic": ("output", lambda a, y: 0.5 * (y - a) ** 2),
    "mse": ("output", lambda a, y: (y - a) ** 2),
    "mae": ("output", lambda a, y: np.abs(y - a)),
    "huber": ("logits", lambda z, y: np.where(np.abs(z - y) <= 1, 0.5 * (z - y) ** 2, np.abs(z - y) - 0.5)),
    "bce": ("logits", lambda z, y: np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))),
    "bce_guarded": ("output", lambda a, y: -(y * np.log(a + G) + (1 - y) * np.log(1 - a + G))),
    "ce_guarded": ("output", lambda a, t: -t * np.log(a + G)),
    "ce_one_sided": ("output", lambda a, y: -y * np.log(a)),
    "hinge": ("logits", lambda z, y: np.maximum(0, 1 - (2 * y - 1) * z)),
    "squared_hinge": ("logits", lambda z, y: np.maximum(0, 1 - (2 * y - 1) * z) ** 2),
}


@pytest.mark.parametrize("name", sorted(REGISTRY_ELEMENTWISE))
def test_registry_reduction(name):
    kind, ref = REGISTRY_ELEMENTWISE[name]
    loss = get_loss(name)
    assert loss.input == ("logits" if name in {"bce", "hinge", "squared_hinge"} else "output")
    cases, meta = [], []
    for k in [1, 3]:
        z, a, y = _data(n=20, k=k, seed=7)
        for dtype in DTYPES:
            cases.append(((z if kind == "logits" else a).astype(dtype), y.astype(dtype)))
            meta.append(dtype)
    for dtype, (p, y), out in zip(meta, cases, _jit_cases(loss.fn, cases)):
        assert out.shape == () and out.dtype == dtype
        expected = ref(p.astype(np.float64), y.astype(np.float64)).sum(1).mean()
        np.testing.assert_allclose(out, expected, **TOL[dtype])


def test_quadratic_single_sample_is_seed_002():
    # the text on the saturated sigmoid neuron: (y - a)^2 / 2, one sample, one output unit; a = sigma(w x + b), x=1, y=0
    a = float(_np_sigmoid(2.0 * 1 + 2.0))
    out = jax.jit(get_loss("quadratic").fn)(jnp.array([[a]]), jnp.array([[0.0]]))
    assert float(out) == pytest.approx(0.5 * a * a, rel=1e-15)
    # dC/dw = (a - y) sigma'(z) x  (the text on the saturated sigmoid neuron)
    def cost(w, b):
        return get_loss("quadratic").fn(jax.nn.sigmoid(w * jnp.ones((1, 1)) + b), jnp.zeros((1, 1)))

    dw, db = jax.grad(cost, argnums=(0, 1))(2.0, 2.0)
    assert float(dw) == pytest.approx(a * a * (1 - a), rel=1e-12)
    assert float(db) == pytest.approx(a * a * (1 - a), rel=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
def test_registry_softmax_ce(dtype):
    z, _, y = _data(n=10, k=4, seed=8)
    z, y = z.astype(dtype), y.astype(dtype)
    out = jax.jit(get_loss("softmax_ce").fn)(z, y)
    np.testing.assert_allclose(out, np.mean(optax.losses.softmax_cross_entropy(z, y)), **TOL[dtype])
    # K = 1: softmax is identically 1, loss and gradient identically 0
    z1, _, y1 = _data(n=10, k=1, seed=8)
    assert float(get_loss("softmax_ce").fn(z1, y1)) == 0.0
    np.testing.assert_array_equal(jax.grad(get_loss("softmax_ce").fn)(z1, y1), 0.0)


# ---------------------------------------------------------------------------------------
# Hard batch objectives.
# ---------------------------------------------------------------------------------------


def _np_counts(a, y):
    if a.shape[1] == 1:
        p = (a > 0.5).astype(float)
    else:
        p = np.eye(a.shape[1])[a.argmax(1)]
    return (p * y).sum(), (p * (1 - y)).sum(), ((1 - p) * y).sum(), p


def test_hard_objectives():
    cases, expected = [], []
    for k in [1, 4]:
        _, a, y = _data(n=50, k=k, seed=11)
        if k > 1:
            a = a / a.sum(1, keepdims=True)
        tp, fp, fn, p = _np_counts(a, y)
        acc = np.mean(p == y) if k == 1 else np.mean(a.argmax(1) == y.argmax(1))
        f1 = 2 * tp / (2 * tp + fp + fn)
        iou = tp / (tp + fp + fn)
        for dtype in DTYPES:
            cases.append((a.astype(dtype), y.astype(dtype)))
            expected.append((dtype, {"zero_one": 1 - acc, "one_minus_f1": 1 - f1, "one_minus_iou": 1 - iou}))
    names = ["zero_one", "one_minus_f1", "one_minus_iou"]
    for name in names:
        assert LOSSES[name].input == "output"
    res = _jit_cases(
        lambda a, y: {n: (LOSSES[n].fn(a, y), jax.grad(LOSSES[n].fn)(a, y)) for n in names}, cases
    )
    for (dtype, exp), r in zip(expected, res):
        for name in names:
            out, g = r[name]
            assert out.dtype == dtype
            np.testing.assert_allclose(out, exp[name], rtol=1e-6, err_msg=name)
            np.testing.assert_array_equal(g, 0.0)  # zero gradient everywhere


def test_hard_objectives_hand_cases():
    a = jnp.array([[0.9], [0.2], [0.7], [0.4]])  # predictions 1, 0, 1, 0
    y = jnp.array([[1.0], [0.0], [0.0], [1.0]])  # tp=1, tn=1, fp=1, fn=1
    assert float(L.zero_one(a, y)) == pytest.approx(0.5)
    assert float(L.one_minus_f1(a, y)) == pytest.approx(1 - 2 / 4)
    assert float(L.one_minus_iou(a, y)) == pytest.approx(1 - 1 / 3)
    # 0.5 is not a positive prediction (threshold is strict)
    assert float(L.zero_one(jnp.array([[0.5]]), jnp.array([[1.0]]))) == 1.0
    # no positives and no predicted positives: F1 = IoU = 1 by definition
    a0, y0 = jnp.full((5, 1), 0.1), jnp.zeros((5, 1))
    for f in (L.one_minus_f1, L.one_minus_iou, L.soft_f1, L.soft_iou):
        assert float(jax.jit(f)(a0 * float(f in (L.soft_f1, L.soft_iou)) * 0, y0)) == 0.0
    assert float(L.one_minus_f1(a0, y0)) == 0.0 and float(L.one_minus_iou(a0, y0)) == 0.0
    g = jax.grad(L.soft_f1)(jnp.zeros((5, 1)), y0)
    assert bool(jnp.all(jnp.isfinite(g)))


def test_hard_counts_exact_in_low_precision():
    # 1000 samples: counts above 256 are not representable in bfloat16; accumulation is float32
    n = 1000
    a = jnp.asarray(np.r_[np.full(700, 0.9), np.full(300, 0.1)][:, None], jnp.bfloat16)
    y = jnp.asarray(np.r_[np.ones(699), np.zeros(301)][:, None], jnp.bfloat16)
    expected = 1 - 699 / (699 + 1)  # tp=699, fp=1, fn=0
    out = get_loss("one_minus_iou").fn(a, y)
    assert out.dtype == jnp.bfloat16
    np.testing.assert_allclose(float(out), expected, rtol=1e-2)
    assert float(get_loss("zero_one").fn(a, y)) == pytest.approx(1 / n, rel=1e-2)


# ---------------------------------------------------------------------------------------
# Soft surrogates.
# ---------------------------------------------------------------------------------------


def test_soft_f1_iou():
    cases = []
    for k in [1, 3]:
        _, a, y = _data(n=30, k=k, seed=13)
        cases += [(a.astype(dt), y.astype(dt)) for dt in DTYPES]
    f1, iou = get_loss("soft_f1").fn, get_loss("soft_iou").fn
    res = _jit_cases(lambda a, y: (f1(a, y), iou(a, y), jax.grad(f1)(a, y), jax.grad(iou)(a, y)), cases)
    for (a, y), (out_f1, out_iou, g_f1, g_iou) in zip(cases, res):
        dtype = a.dtype.type
        a64, y64 = a.astype(np.float64), y.astype(np.float64)
        I, S = (a64 * y64).sum(), a64.sum() + y64.sum()
        U = S - I
        assert out_f1.dtype == dtype and out_iou.dtype == dtype
        np.testing.assert_allclose(out_f1, 1 - 2 * I / S, **TOL[dtype])
        np.testing.assert_allclose(out_iou, 1 - I / U, **TOL[dtype])
        np.testing.assert_allclose(g_f1, -2 * (y64 * S - I) / S**2, **TOL[dtype])
        np.testing.assert_allclose(g_iou, -(y64 * U - I * (1 - y64)) / U**2, **TOL[dtype])


def test_soft_matches_hard_on_hard_inputs():
    _, a, y = _data(n=30, k=1, seed=17)
    hard = (a > 0.5).astype(np.float64)
    np.testing.assert_allclose(L.soft_f1(hard, y), L.one_minus_f1(a, y), rtol=1e-12)
    np.testing.assert_allclose(L.soft_iou(hard, y), L.one_minus_iou(a, y), rtol=1e-12)


# ---------------------------------------------------------------------------------------
# Lovász hinge against a numpy port of Berman et al.'s reference (lovasz_hinge_flat).
# ---------------------------------------------------------------------------------------


def np_lovasz_grad(gt_sorted):
    p = len(gt_sorted)
    gts = gt_sorted.sum()
    intersection = gts - np.cumsum(gt_sorted)
    union = gts + np.cumsum(1.0 - gt_sorted)
    jaccard = 1.0 - intersection / union
    if p > 1:
        jaccard[1:p] = jaccard[1:p] - jaccard[0:-1]
    return jaccard


def np_lovasz_hinge_flat(logits, labels):
    logits, labels = logits.reshape(-1), labels.reshape(-1)
    signs = 2.0 * labels - 1.0
    errors = 1.0 - logits * signs
    perm = np.argsort(-errors, kind="stable")
    errors_sorted = errors[perm]
    grad = np_lovasz_grad(labels[perm])
    return np.dot(np.maximum(errors_sorted, 0), grad)


def _fd_grad(f, x, eps=1e-6):
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = eps
        g[i] = (f(x + e) - f(x - e)) / (2 * eps)
    return g


def test_lovasz_hinge_against_reference():
    loss = get_loss("lovasz_hinge")
    assert loss.input == "logits"
    cases = []
    for k in [1, 2]:
        z, _, y = _data(n=20, k=k, seed=19)
        cases += [(z.astype(dt), y.astype(dt)) for dt in DTYPES]
    res = _jit_cases(lambda z, y: (loss.fn(z, y), jax.grad(loss.fn)(z, y)), cases)
    for (z, y), (out, g) in zip(cases, res):
        dtype = z.dtype.type
        z64, y64 = z.astype(np.float64), y.astype(np.float64)
        assert out.dtype == dtype and g.dtype == dtype
        np.testing.assert_allclose(out, np_lovasz_hinge_flat(z64, y64), **TOL[dtype])
        g_fd = _fd_grad(lambda x: np_lovasz_hinge_flat(x, y64), z64)
        np.testing.assert_allclose(g, g_fd, rtol=1e-5 if dtype == np.float32 else 1e-6, atol=1e-6)


def test_lovasz_hinge_equals_jaccard_loss_on_indicator_errors():
    # errors m_i = 1 - t_i z_i in {0, 1}: z = t (margin exactly 1) gives 0, z = 0 gives 1;
    # the Lovász extension then equals Delta_J(M) = |M| / |{y=1} ∪ M|.
    rng = np.random.default_rng(23)
    for _ in range(5):
        y = rng.integers(0, 2, size=(15, 1)).astype(np.float64)
        m = rng.integers(0, 2, size=(15, 1)).astype(bool)
        z = np.where(m, 0.0, 2 * y - 1)
        expected = m.sum() / np.logical_or(y > 0, m).sum() if m.any() else 0.0
        np.testing.assert_allclose(jax.jit(L.lovasz_hinge)(z, y), expected, rtol=1e-12, atol=1e-15)
    # all entries past the margin: loss and gradient are 0
    y = np.array([[1.0], [0.0], [1.0]])
    z = 3 * (2 * y - 1)
    assert float(L.lovasz_hinge(z, y)) == 0.0
    np.testing.assert_array_equal(jax.grad(L.lovasz_hinge)(z, y), 0.0)


# ---------------------------------------------------------------------------------------
# check_grads, dtypes, jit/vmap/grad for every registry entry.
# ---------------------------------------------------------------------------------------

DIFFERENTIABLE = [
    "quadratic", "mse", "mae", "huber", "bce", "bce_guarded", "ce_guarded", "ce_one_sided",
    "softmax_ce", "hinge", "squared_hinge", "soft_f1", "soft_iou", "lovasz_hinge",
]


def _away_from_kinks(name):
    rng = np.random.default_rng(29)
    k = 3 if name == "softmax_ce" else 1
    y = np.eye(3)[rng.integers(0, 3, 6)] if k == 3 else np.array([[1.0], [0.0], [1.0], [0.0], [1.0], [0.0]])
    # margins t*z in {-0.7, 0.35, 1.6, ...}, never 1; |z - y| never 1 (huber); no ties (lovasz)
    t = 2 * y - 1
    z = t * np.array([-0.7, 0.35, 1.6, 0.2, -1.3, 2.4])[:, None] if k == 1 else rng.normal(size=(6, 3))
    a = np.array([[0.8], [0.3], [0.65], [0.15], [0.45], [0.05]]) if k == 1 else _np_sigmoid(z)
    return (z if LOSSES[name].input == "logits" or name == "huber" else a), y


def test_check_grads_registry():
    """check_grads (fwd and rev) on every differentiable registry loss at once, order 1, and
    order 2 on a representative few; on failure the losses are re-checked one by one to name
    the culprit."""
    points = {name: _away_from_kinks(name) for name in DIFFERENTIABLE}
    # second order only for a representative few: it compiles many nested transforms
    order2 = ["quadratic", "bce", "soft_iou"]

    def check(names, order):
        ys = {n: points[n][1] for n in names}
        f = jax.jit(lambda ps: {n: LOSSES[n].fn(ps[n], ys[n]) for n in names})
        check_grads(f, ({n: jnp.asarray(points[n][0]) for n in names},), order=order,
                    modes=["fwd", "rev"], eps=1e-6)

    for names, order in [(order2, 2), (DIFFERENTIABLE, 1)]:
        try:
            check(names, order)
        except AssertionError:
            for n in names:
                try:
                    check([n], order)
                except AssertionError as err:
                    raise AssertionError(f"check_grads failed for {n!r} (order {order})") from err
            raise


LOW_DTYPES = [jnp.float16, jnp.bfloat16]


def np_registry_loss(name, p, y):
    """Every registry loss in float64 numpy, from the references of the tests above (mean over samples)."""
    if name in REGISTRY_ELEMENTWISE:
        return REGISTRY_ELEMENTWISE[name][1](p, y).sum(1).mean()
    if name == "softmax_ce":
        shifted = p - p.max(1, keepdims=True)
        return np.mean(-(y * (shifted - np.log(np.exp(shifted).sum(1, keepdims=True)))).sum(1))
    if name == "lovasz_hinge":
        return np_lovasz_hinge_flat(p, y)
    if name in ("soft_f1", "soft_iou"):
        inter, total = (p * y).sum(), p.sum() + y.sum()
        return 1 - 2 * inter / total if name == "soft_f1" else 1 - inter / (total - inter)
    tp, fp, fn, hard = _np_counts(p, y)
    return {"zero_one": 1 - np.mean(hard == y), "one_minus_f1": 1 - 2 * tp / (2 * tp + fp + fn),
            "one_minus_iou": 1 - tp / (tp + fp + fn)}[name]


#: |loss − numpy float64 on the rounded inputs| <= LOW_ULPS · eps(dtype) · (|reference| + 1) (a mean
#: of 12 terms; measured: at most 0.51 eps, float16 squared_hinge).
LOW_ULPS = 2


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_low_precision_and_vmap(name):
    """float16/bfloat16 value and grad keep the dtype and are within a few units of that dtype's
    epsilon of numpy float64 on the same rounded inputs; vmap over a leading axis of runs equals
    separate calls. (float32/float64 values and gradients: the tests above.)"""
    loss = LOSSES[name]
    k = 3 if name == "softmax_ce" else 1
    z, a, y = _data(n=12, k=k, seed=31)
    p0 = z if loss.input == "logits" else np.clip(a, 0.05, 0.95)
    y32 = jnp.asarray(y, jnp.float32)  # targets of another dtype are cast to the prediction dtype
    ps = jnp.asarray(np.stack([p0, p0[::-1]]), jnp.float32)
    ys = jnp.stack([y32, y32[::-1]])

    @jax.jit  # one compilation for everything
    def run(lows, ps, ys):
        low = [(loss.fn(p, y32), jax.grad(loss.fn)(p, y32)) for p in lows]
        return low, jax.vmap(loss.fn)(ps, ys), loss.fn(ps[1], ys[1])

    lows = [jnp.asarray(p0, dt) for dt in LOW_DTYPES]
    low, vm, out1 = run(lows, ps, ys)
    for dtype, p, (out, g) in zip(LOW_DTYPES, lows, low):
        assert out.shape == () and out.dtype == dtype and bool(jnp.isfinite(out))
        assert g.dtype == dtype and g.shape == p0.shape and bool(jnp.all(jnp.isfinite(g)))
        want = np_registry_loss(name, np.asarray(p, np.float64), y)
        err = abs(float(out) - want) / float(jnp.finfo(dtype).eps)
        assert err <= LOW_ULPS * (abs(want) + 1), (jnp.dtype(dtype).name, err)
    assert vm.dtype == jnp.float32 and vm.shape == (2,)
    np.testing.assert_allclose(vm[1], out1, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(vm[0], np_registry_loss(name, np.asarray(ps[0], np.float64), y), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------
# Registry and errors.
# ---------------------------------------------------------------------------------------


def test_registry_contents():
    assert set(LOSSES) == {
        "quadratic", "mse", "mae", "huber", "bce", "bce_guarded", "ce_guarded", "ce_one_sided",
        "softmax_ce", "hinge", "squared_hinge", "zero_one", "one_minus_f1", "one_minus_iou",
        "soft_f1", "soft_iou", "lovasz_hinge",
    }
    for name, loss in LOSSES.items():
        assert loss.name == name
        assert loss.input in ("output", "logits")
        assert loss.description and "\n" not in loss.description
        assert loss.zero_grad and "\n" not in loss.zero_grad
    logits = {n for n, l in LOSSES.items() if l.input == "logits"}
    assert logits == {"bce", "softmax_ce", "hinge", "squared_hinge", "lovasz_hinge"}


def test_huber_spec():
    loss = get_loss("huber:delta=0.5")
    assert loss.name == "huber:delta=0.5" and get_loss(loss.name).name == loss.name
    p, y = jnp.array([[3.0], [0.2]]), jnp.array([[0.0], [0.0]])
    np.testing.assert_allclose(loss.fn(p, y), np.mean([0.5 * (3 - 0.25), 0.5 * 0.04]), rtol=1e-12)


@pytest.mark.parametrize(
    "spec,must_mention",
    [
        ("cross_entropy", ["'cross_entropy'", "bce", "lovasz_hinge"]),
        ("huber:beta=1", ["'beta'", "delta"]),
        ("mse:delta=1", ["'delta'", "none"]),
        ("huber:delta=x", ["'x'"]),
        ("huber:delta=-1", ["delta", "-1"]),
        ("huber:delta", ["delta=value"]),
    ],
)
def test_get_loss_errors(spec, must_mention):
    with pytest.raises(ValueError) as err:
        get_loss(spec)
    for text in must_mention:
        assert text in str(err.value)


def test_shape_checks():
    with pytest.raises(ValueError, match="shapes differ"):
        L.quadratic(jnp.zeros(3), jnp.zeros((3, 1)))
    with pytest.raises(ValueError, match=r"\(n, K\)"):
        get_loss("mse").fn(jnp.zeros(3), jnp.zeros(3))
    with pytest.raises(ValueError, match="differ"):
        get_loss("bce").fn(jnp.zeros((3, 1)), jnp.zeros((3, 2)))
