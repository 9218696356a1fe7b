"""Tests for lossjax.activations against independent numpy/scipy references.

Tolerances: float64 closed forms rtol 1e-12 (1e-10 for transcendental ones), float32 rtol 1e-6
(1e-5 for transcendental functions); every value and gradient goes through ``jax.jit``.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads
from scipy.special import erf

from lossjax.core import activations as A
from lossjax.core.activations import ACTIVATIONS, derivative, get_activation
from lossjax.core.estimators import straight_through


DTYPES = [np.float32, np.float64]
TOL = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: dict(rtol=1e-10, atol=1e-12)}


def _np_sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _np_Phi(z):
    return 0.5 * (1.0 + erf(z / np.sqrt(2.0)))


def _np_phi(z):
    return np.exp(-0.5 * z * z) / np.sqrt(2.0 * np.pi)


# name -> (value, derivative) written independently in numpy.
REFERENCES = {
    "identity": (lambda z: z, lambda z: np.ones_like(z)),
    "sigmoid": (_np_sigmoid, lambda z: _np_sigmoid(z) * (1 - _np_sigmoid(z))),
    "tanh": (np.tanh, lambda z: 1.0 / np.cosh(z) ** 2),
    "softsign": (lambda z: z / (1 + np.abs(z)), lambda z: 1.0 / (1 + np.abs(z)) ** 2),
    "relu": (lambda z: np.maximum(z, 0), lambda z: (z > 0).astype(z.dtype)),
    "leaky_relu": (lambda z: np.where(z >= 0, z, 0.01 * z), lambda z: np.where(z >= 0, 1.0, 0.01)),
    "gelu": (lambda z: z * _np_Phi(z), lambda z: _np_Phi(z) + z * _np_phi(z)),
    "step": (lambda z: (z > 0).astype(z.dtype), lambda z: np.zeros_like(z)),
}


def _grid(dtype):
    # avoids the kink at exactly 0 for the derivative comparison (tested separately)
    z = np.linspace(-8.0, 8.0, 401)
    return z[np.abs(z) > 1e-9].astype(dtype)


def _elementwise_grad(fn):
    return jax.jit(jax.vmap(jax.grad(fn)))


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_values_and_gradients_match_numpy(name):
    act = ACTIVATIONS[name]
    f_ref, df_ref = REFERENCES[name]
    zs = [_grid(dtype) for dtype in DTYPES]

    @jax.jit  # one compilation for both dtypes
    def run(zs):
        return [(act.fn(z), jax.vmap(jax.grad(act.fn))(z), derivative(act, z)) for z in zs]

    for dtype, z, (f, g, d) in zip(DTYPES, zs, run(zs)):
        z64 = z.astype(np.float64)
        assert f.dtype == g.dtype == d.dtype == dtype
        np.testing.assert_allclose(f, f_ref(z64), **TOL[dtype])
        np.testing.assert_allclose(g, df_ref(z64), **TOL[dtype])
        np.testing.assert_allclose(d, df_ref(z64), **TOL[dtype])


def test_values_at_kinks():
    z = jnp.array([0.0, -0.0])
    np.testing.assert_array_equal(A.step(z), [0.0, 0.0])  # H(0) = 0
    np.testing.assert_array_equal(A.relu(z), [0.0, 0.0])
    g = jax.vmap(jax.grad(A.relu))(z)
    np.testing.assert_array_equal(g, [0.0, 0.0])  # jax convention relu'(0) = 0


ALL_DTYPES = [jnp.float16, jnp.bfloat16, jnp.float32, jnp.float64]


def _activation(spec):
    """A registry activation, or the step with a straight-through backward ("step+ste_<backward>")."""
    base, _, ste = spec.partition("+ste_")
    return straight_through(ACTIVATIONS[base], ste) if ste else get_activation(spec)


def _references(spec):
    """(value, derivative) in float64 numpy for every registry activation and the two straight-through steps."""
    if spec == "piecewise_constant":  # default sharp = 100; the port of the MATLAB loop below
        return (lambda z: qpwc_neuron_matlab(z, 100.0)[0]), (lambda z: qpwc_neuron_matlab(z, 100.0)[1])
    base, _, ste = spec.partition("+ste_")
    if ste:  # forward: the step; backward: the surrogate's derivative
        return REFERENCES[base][0], {"identity": np.ones_like, "sigmoid": REFERENCES["sigmoid"][1]}[ste]
    return REFERENCES[spec]


@pytest.mark.parametrize("spec", sorted(ACTIVATIONS) + ["step+ste_identity", "step+ste_sigmoid"])
def test_dtype_preserved(spec):
    """Every activation in float16 / bfloat16 / float32 / float64 keeps its dtype, and its value and
    derivative (jvp and vjp) are within 2 units of that dtype's epsilon of the numpy float64
    reference on the same (rounded) inputs: |f − f_ref| ≤ 2·eps·(|f_ref| + 1). (Measured: at most
    1.03 eps, the float64 tanh gradient; 0.6 eps in float16 and bfloat16.)"""
    act = _activation(spec)
    f_ref, d_ref = _references(spec)
    z64 = np.linspace(-3, 3, 13)
    zs = [jnp.asarray(z64, dt) for dt in ALL_DTYPES]

    @jax.jit  # one compilation for all dtypes
    def run(zs):
        return [(act.fn(z), derivative(act, z), jax.vmap(jax.grad(act.fn))(z)) for z in zs]

    for dtype, z, (f, d, g) in zip(ALL_DTYPES, zs, run(zs)):
        assert f.dtype == d.dtype == g.dtype == dtype and f.shape == z64.shape
        exact = np.asarray(z, np.float64)  # the inputs as rounded to the dtype
        eps = float(jnp.finfo(dtype).eps)
        for got, want in ((f, f_ref(exact)), (d, d_ref(exact)), (g, d_ref(exact))):
            err = np.abs(np.asarray(got, np.float64) - want)
            assert np.all(err <= 2 * eps * (np.abs(want) + 1)), (jnp.dtype(dtype).name, np.max(err / eps))


def test_piecewise_constant_finite_in_float16_far_outside():
    z = jnp.array([-1e4, -2.0, 2.0, 6e4], dtype=jnp.float16)
    act = ACTIVATIONS["piecewise_constant"]
    np.testing.assert_array_equal(np.asarray(act.fn(z), np.float32), [0, 0, 1, 1])
    np.testing.assert_array_equal(np.asarray(derivative(act, z), np.float32), [0, 0, 0, 0])


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_max_slope_is_the_sup_of_the_derivative(name):
    act = ACTIVATIONS[name]
    z = np.linspace(-10, 10, 200001)
    d = np.asarray(jax.jit(lambda x: derivative(act, x))(z))
    if name == "step":
        assert act.max_slope == 1.0  # convention; jax sees 0 everywhere
        assert d.max() == 0.0
        return
    assert d.max() <= act.max_slope * (1 + 1e-9)
    assert d.max() >= act.max_slope * (1 - 1e-6)


def test_max_slope_constants():
    assert ACTIVATIONS["sigmoid"].max_slope == 0.25
    assert ACTIVATIONS["gelu"].max_slope == pytest.approx(1.1289, abs=1e-4)
    assert get_activation("leaky_relu:slope=2").max_slope == 2.0
    assert get_activation("piecewise_constant:sharp=40").max_slope == 10.0


CHECK_POINTS = {
    "identity": [-2.0, 0.3, 5.0],
    "sigmoid": [-4.0, -0.5, 0.0, 0.7, 3.0],
    "tanh": [-2.0, -0.3, 0.0, 0.4, 2.5],
    "softsign": [-3.0, -0.2, 0.3, 4.0],
    "relu": [-2.0, -0.1, 0.2, 3.0],
    "leaky_relu": [-2.0, -0.1, 0.2, 3.0],
    "gelu": [-3.0, -1.0, 0.0, 0.5, 2.0],
    "step": [-2.0, -0.1, 0.2, 3.0],
}


def test_check_grads():
    """Order 2, fwd and rev, at points away from kinks; all activations in one check (one
    compilation); on failure they are re-checked one by one to name the culprit."""

    def check(names):
        f = jax.jit(lambda zs: {n: ACTIVATIONS[n].fn(zs[n]) for n in names})
        zs = {n: jnp.asarray(CHECK_POINTS[n], jnp.float64) for n in names}
        check_grads(f, (zs,), order=2, modes=["fwd", "rev"], eps=1e-5)

    try:
        check(list(CHECK_POINTS))
    except AssertionError:
        for n in CHECK_POINTS:
            try:
                check([n])
            except AssertionError as err:
                raise AssertionError(f"check_grads failed for {n!r}") from err
        raise


def test_check_grads_piecewise_constant():
    z = jnp.asarray([0.1, 0.125, 0.2, 0.33, 0.4, 0.6, 0.7, 0.8, 0.95, -0.5, 1.5], jnp.float64)
    f = jax.jit(ACTIVATIONS["piecewise_constant"].fn)
    check_grads(f, (z,), order=1, modes=["fwd", "rev"], eps=1e-7, rtol=1e-4, atol=1e-5)
    g = jax.jit(get_activation("piecewise_constant:sharp=10").fn)
    check_grads(g, (z,), order=2, modes=["fwd", "rev"], eps=1e-6)


# ---------------------------------------------------------------------------------------
# piecewise_constant against a literal numpy port of the MATLAB QPWC_Neuron of the text on non-differentiable metrics.
# ---------------------------------------------------------------------------------------


def qpwc_neuron_matlab(z, sharp):
    """Line-by-line port of the MATLAB loop in the text on non-differentiable metrics (float64, scalar math)."""
    LZ = len(z)
    s = np.zeros(z.shape)
    ds = s.copy()
    for l in range(LZ):
        if z[l] <= 0:
            s[l] = 0
            ds[l] = 0
        elif (z[l] > 0) and (z[l] <= 0.25):
            s[l] = 0.25 / (1 + math.exp(-sharp * ((z[l] - 0.125) / 0.25)))
            ds[l] = sharp / 0.25 * (s[l] - 0) * (1 - (s[l] - 0) / 0.25)
        elif (z[l] > 0.25) and (z[l] <= 0.5):
            s[l] = 0.25 / (1 + math.exp(-sharp * ((z[l] - 0.375) / 0.25))) + 0.25
            ds[l] = sharp / 0.25 * (s[l] - 0.25) * (1 - (s[l] - 0.25) / 0.25)
        elif (z[l] > 0.5) and (z[l] <= 0.75):
            s[l] = 0.25 / (1 + math.exp(-sharp * ((z[l] - 0.625) / 0.25))) + 0.5
            ds[l] = sharp / 0.25 * (s[l] - 0.5) * (1 - (s[l] - 0.5) / 0.25)
        elif (z[l] > 0.75) and (z[l] < 1):
            s[l] = 0.5 / (1 + math.exp(-sharp * ((z[l] - 1) / 0.5))) + 0.75
            ds[l] = sharp / 0.5 * (s[l] - 0.75) * (1 - (s[l] - 0.75) / 0.5)
        else:
            s[l] = 1
            ds[l] = 0
    return s, ds


BRANCH_POINTS = np.array([0.0, 0.25, 0.5, 0.75, 1.0])


@pytest.mark.parametrize("sharp", [100.0, 10.0, 400.0])
def test_piecewise_constant_values_match_matlab_port(sharp):
    z = np.concatenate([np.arange(-0.1, 1.1 + 1e-12, 0.001), BRANCH_POINTS])  # seed's 0:0.001:1
    s_ref, _ = qpwc_neuron_matlab(z, sharp)
    f = jax.jit(get_activation(f"piecewise_constant:sharp={sharp}").fn)
    np.testing.assert_allclose(f(z), s_ref, rtol=1e-12, atol=1e-15)
    # float32: the port runs on the float32-rounded inputs (0.25000000001 rounds to 0.25,
    # which changes the branch, and for small sharp s jumps at a juncture).
    z32 = z.astype(np.float32)
    s32_ref, _ = qpwc_neuron_matlab(z32.astype(np.float64), sharp)
    np.testing.assert_allclose(f(z32), s32_ref, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("sharp", [100.0, 10.0, 400.0])
def test_piecewise_constant_grad_matches_matlab_ds(sharp):
    z = np.arange(0.0, 1.0 + 1e-12, 0.001)
    away = np.min(np.abs(z[:, None] - BRANCH_POINTS[None, :]), axis=1) > 1e-6
    z = z[away]
    _, ds_ref = qpwc_neuron_matlab(z, sharp)
    g = _elementwise_grad(get_activation(f"piecewise_constant:sharp={sharp}").fn)(z)
    # MATLAB's ds = c (s - offset)(...) loses absolute precision ~ (sharp/0.25) * eps(1) to
    # cancellation in s - offset, hence the small atol next to rtol 1e-5.
    np.testing.assert_allclose(g, ds_ref, rtol=1e-5, atol=1e-12 * sharp)
    assert np.max(g) == pytest.approx(sharp / 4, rel=1e-4)  # the step centres lie on the grid


def test_piecewise_constant_gradient_at_junctures_sharp_100():
    sharp = 100.0
    j = np.array([0.25, 0.5, 0.75])
    s_ref, ds_ref = qpwc_neuron_matlab(j, sharp)
    # What the MATLAB formulas give: sigma(sharp/2) = 1/(1 + e^-50) rounds to exactly 1 in
    # float64, so s is exactly the juncture value and ds is exactly 0 (not merely tiny).
    np.testing.assert_array_equal(s_ref, j)
    np.testing.assert_array_equal(ds_ref, 0.0)
    # The exact derivative there is tiny but positive:
    exact = sharp * math.exp(-sharp / 2) / (1 + math.exp(-sharp / 2)) ** 2
    assert 1e-20 < exact < 1e-19
    f = get_activation("piecewise_constant:sharp=100").fn
    for dtype in DTYPES:
        g = _elementwise_grad(f)(j.astype(dtype))
        np.testing.assert_array_equal(g, 0.0)  # jax.grad is exactly 0 as well
        np.testing.assert_array_equal(jax.jit(f)(j.astype(dtype)), j.astype(dtype))
    # just to the right of a juncture the left piece of the next step applies: the gradient
    # is sharp*sigma(-50) ~ 1.9e-20, which MATLAB's ds reports as 0 (s - 0.25 cancels).
    right = np.nextafter(j, 1.0)
    _, ds_right = qpwc_neuron_matlab(right, sharp)
    g_right = np.asarray(_elementwise_grad(f)(right))
    np.testing.assert_array_equal(ds_right, 0.0)
    assert np.all(g_right < 1e-19) and np.all(g_right >= 0)
    np.testing.assert_allclose(g_right, exact, rtol=1e-6)


def test_piecewise_constant_junctures_not_flat_for_small_sharp():
    # the text on non-differentiable metrics says gradients at junctures are zero; that holds only once sigma(sharp/2)
    # rounds to 1. For sharp = 10 the juncture slope is 10 sigma'(5) ~ 0.066.
    sharp = 10.0
    j = np.array([0.25, 0.5, 0.75])
    _, ds_ref = qpwc_neuron_matlab(j, sharp)
    exact = sharp * math.exp(-sharp / 2) / (1 + math.exp(-sharp / 2)) ** 2
    np.testing.assert_allclose(ds_ref, exact, rtol=1e-9)
    g = _elementwise_grad(get_activation("piecewise_constant:sharp=10").fn)(j)
    np.testing.assert_allclose(g, exact, rtol=1e-9)


def test_piecewise_constant_ends():
    f = ACTIVATIONS["piecewise_constant"].fn
    z = np.array([-1.0, 0.0, 1.0, 2.0, np.nextafter(1.0, 0.0)])
    np.testing.assert_allclose(f(z), [0.0, 0.0, 1.0, 1.0, 1.0], atol=1e-12)
    g = _elementwise_grad(f)(z)
    np.testing.assert_allclose(g, [0, 0, 0, 0, 25.0], rtol=1e-9, atol=0)  # jump at z = 1


# ---------------------------------------------------------------------------------------
# Straight-through estimator.
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_straight_through_forward_is_exact(dtype):
    z = np.array([-1e8, -3.0, -1e-30, 0.0, 1e-30, 0.5, 3.0, 1e8], dtype)
    for backward in ["identity", "sigmoid"]:
        ste = straight_through(ACTIVATIONS["step"], backward)
        np.testing.assert_array_equal(jax.jit(ste.fn)(z), A.step(z))
        np.testing.assert_array_equal(jax.jit(jax.vmap(ste.fn))(z), A.step(z))


@pytest.mark.parametrize("dtype", DTYPES)
def test_straight_through_backward(dtype):
    z = np.linspace(-6, 6, 41).astype(dtype)
    ident = _activation("step+ste_identity")
    sig = _activation("step+ste_sigmoid")
    assert ident.name == "step+ste_identity" and sig.name == "step+ste_sigmoid"
    assert ident.max_slope == 1.0 and sig.max_slope == 0.25
    np.testing.assert_array_equal(_elementwise_grad(ident.fn)(z), np.ones_like(z))
    ref = _np_sigmoid(z.astype(np.float64)) * (1 - _np_sigmoid(z.astype(np.float64)))
    np.testing.assert_allclose(_elementwise_grad(sig.fn)(z), ref, **TOL[dtype])
    np.testing.assert_allclose(derivative(sig, jnp.asarray(z)), ref, **TOL[dtype])
    # reverse mode through a sum, and second order (surrogate is differentiable)
    np.testing.assert_allclose(jax.grad(lambda x: jnp.sum(sig.fn(x)))(z), ref, **TOL[dtype])
    h = jax.vmap(jax.grad(jax.grad(sig.fn)))(z.astype(np.float64))
    s = _np_sigmoid(z.astype(np.float64))
    np.testing.assert_allclose(h, s * (1 - s) * (1 - 2 * s), rtol=1e-8, atol=1e-12)


def test_plain_step_passes_no_gradient():
    z = np.linspace(-3, 3, 13)
    np.testing.assert_array_equal(_elementwise_grad(A.step)(z), 0.0)
    np.testing.assert_array_equal(derivative(ACTIVATIONS["step"], jnp.asarray(z)), 0.0)


# ---------------------------------------------------------------------------------------
# Registry.
# ---------------------------------------------------------------------------------------


def test_registry_contents():
    assert set(ACTIVATIONS) == {
        "identity", "sigmoid", "tanh", "softsign", "relu", "leaky_relu", "gelu", "step",
        "piecewise_constant",
    }
    for name, act in ACTIVATIONS.items():
        assert act.name == name
        assert act.description and "\n" not in act.description
        assert act.flat_region and "\n" not in act.flat_region
        assert get_activation(name).fn(jnp.float32(0.3)) == act.fn(jnp.float32(0.3))


def test_spec_parameters():
    act = get_activation("leaky_relu:slope=0.1")
    assert act.name == "leaky_relu:slope=0.1"
    np.testing.assert_allclose(act.fn(jnp.array([-2.0, 3.0])), [-0.2, 3.0])
    pc = get_activation("piecewise_constant:sharp=100")
    assert pc.name == "piecewise_constant:sharp=100"
    assert get_activation(pc.name).name == pc.name
    z = jnp.linspace(0, 1, 11)
    np.testing.assert_array_equal(pc.fn(z), ACTIVATIONS["piecewise_constant"].fn(z))


@pytest.mark.parametrize(
    "spec,must_mention",
    [
        ("swish", ["'swish'", "sigmoid", "piecewise_constant"]),
        ("leaky_relu:alpha=0.1", ["'alpha'", "slope"]),
        ("relu:slope=0.1", ["'slope'", "none"]),
        ("leaky_relu:slope=abc", ["'abc'"]),
        ("leaky_relu:slope", ["slope"]),
        ("piecewise_constant:sharp=-1", ["sharp", "-1"]),
        ("step+ste_identity", ["'step+ste_identity'", "allowed"]),
    ],
)
def test_get_activation_errors(spec, must_mention):
    with pytest.raises(ValueError) as err:
        get_activation(spec)
    for text in must_mention:
        assert text in str(err.value)


def test_straight_through_rejects_unknown_backward():
    with pytest.raises(ValueError, match="'tanh'.*identity.*sigmoid"):
        straight_through(ACTIVATIONS["step"], "tanh")  # type: ignore[arg-type]
