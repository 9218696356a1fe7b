"""Born dead at θ_0: the closed form, the report of ``mlp_born_dead``, and He against RAI.

References, none of them lossjax code:
- the single-input probability 1 − (1 − 2^-N)^L against a numpy Monte Carlo of zero-bias ReLU
  nets written here (several widths and depths, d_in = 1 and 3);
- for d_in = 1 and zero biases, "constant over a set holding a positive and a negative input"
  against "constant over a dense grid", net by net, in the same numpy nets;
- the report's table against the shares counted here from the saved ``born_dead`` flags, and its
  intervals against scipy's Wilson interval;
- lossjax's He and RAI shares against the same shares of numpy nets drawn here by the RAI rule
  (each unit's weights and bias N(0, 0.6007²/fan_in), one entry, chosen uniformly, Beta(2, 1)).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from lossjax import reports
from lossjax.data.registry import make_dataset
from test_reports import EXPERIMENTS, g4, run_small, tables

born_dead = reports.load_module(EXPERIMENTS / "mlp" / "born_dead.py")
study_mlp = reports.load_module(EXPERIMENTS / "mlp" / "report.py")


def numpy_nets(rng, n, x, width, depth, scheme):
    """Outputs (n nets × inputs) of ReLU MLPs with a linear output unit, drawn here by the scheme's rule."""
    h = np.broadcast_to(x[None], (n, *x.shape))
    for layer in range(depth + 1):
        fan_in, fan_out = h.shape[-1], (width if layer < depth else 1)
        if scheme == "he":
            w, b = rng.normal(0, math.sqrt(2 / fan_in), (n, fan_in, fan_out)), np.zeros((n, fan_out))
        else:  # RAI: the row (w_1j .. w_dj, b_j) symmetric, one uniformly chosen entry Beta(2, 1)
            v = rng.normal(0, 0.6007 / math.sqrt(fan_in), (n, fan_out, fan_in + 1))
            k = rng.integers(0, fan_in + 1, (n, fan_out))
            np.put_along_axis(v, k[..., None], rng.beta(2, 1, (n, fan_out, 1)), axis=2)
            w, b = np.swapaxes(v[..., :-1], 1, 2), v[..., -1]
        z = np.einsum("npi,nij->npj", h, w) + b[:, None, :]
        h = np.maximum(z, 0) if layer < depth else z
    return h[..., 0]


@pytest.mark.parametrize("width,depth,d_in", [(1, 1, 1), (2, 3, 1), (3, 5, 1), (2, 4, 3), (4, 10, 1)])
def test_single_input_closed_form_against_monte_carlo(width, depth, d_in):
    """P(a zero-bias He net outputs 0 at one fixed x ≠ 0) = 1 − (1 − 2^-N)^L: numpy nets, 4σ."""
    rng = np.random.default_rng(width * 100 + depth)
    n = 40_000
    x = rng.normal(size=(1, d_in))
    out = numpy_nets(rng, n, x, width, depth, "he")
    dead = np.mean(out[:, 0] == 0)
    p = study_mlp.single_input_dead_probability(width, depth)
    assert p == pytest.approx(1 - (1 - 0.5**width) ** depth)
    assert abs(dead - p) < 4 * math.sqrt(p * (1 - p) / n) + 1e-12, (dead, p)


def test_zero_bias_d1_two_signs_decide_the_whole_line():
    """d_in = 1, zero biases: the net is x·a for x > 0 and x·c for x < 0, so it is constant on a dense
    grid of [−3, 3] exactly when it is constant on {−1, 1}: net by net, not only in share. Being
    constant there implies being 0 at x = 1, so the share is at most the single-input form."""
    rng = np.random.default_rng(7)
    grid = np.linspace(-3, 3, 601)[:, None]
    for width, depth in [(2, 5), (3, 10)]:
        out = numpy_nets(rng, 20_000, np.r_[grid, [[-1.0], [1.0]]], width, depth, "he")
        on_grid = np.all(out[:, :601] == out[:, :1], axis=1)
        on_pair = out[:, 601] == out[:, 602]
        np.testing.assert_array_equal(on_grid, on_pair)
        assert on_pair.mean() <= study_mlp.single_input_dead_probability(width, depth)


def test_wilson_interval_against_scipy():
    for k, n in [(0, 10_000), (1, 400), (37, 400), (400, 400), (5_000, 10_000)]:
        lo, hi = born_dead.wilson_interval(k, n)
        ref = stats.binomtest(k, n).proportion_ci(0.95, method="wilson")
        assert float(lo) == pytest.approx(ref.low, abs=1e-12)
        assert float(hi) == pytest.approx(ref.high, abs=1e-12)


@pytest.fixture(scope="module")
def small():
    return run_small("mlp", "mlp_born_dead", **{
        "model.depth": [10], "model.width": [3], "train.seed": {"num": 3000},
        "train.dtype": ["float32", "float64"]})


def test_report_born_dead_table(small, tmp_path):
    """Every share and interval of the table, recomputed from the saved flags (scipy's Wilson interval)."""
    ds = small
    born_dead.report_born_dead(ds, tmp_path)
    rows, edge = tables(tmp_path / "mlp_born_dead_table.md")
    n = ds.sizes["seed"]
    assert len(rows) == 1
    row = rows[0]
    assert (row["width"], row["depth"]) == ("3", "10")
    header = list(row)
    for dtype in ("float32", "float64"):
        for scheme in ("he", "rai"):
            col = f"{scheme}, {dtype}"
            k = int(ds.born_dead.sel(init_scheme=scheme, dtype=dtype).values.sum())
            assert row[col] == g4(k / n)
    # The interval cells follow their share column; a dict keeps only the last duplicate header, so
    # read the intervals from the raw line.
    line = [l for l in (tmp_path / "mlp_born_dead_table.md").read_text().splitlines() if l.startswith("| 3 | 10 |")][0]
    cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
    for j, (dtype, scheme) in enumerate([(d, s) for d in ("float32", "float64") for s in ("he", "rai")]):
        k = int(ds.born_dead.sel(init_scheme=scheme, dtype=dtype).values.sum())
        ci = stats.binomtest(k, n).proportion_ci(0.95, method="wilson")
        assert cells[3 + 2 * j] == f"{ci.low:.4g}–{ci.high:.4g}"
    assert row[header[-1]] == g4(1 - (1 - 2.0**-3) ** 10)
    # The rounding-edge table: nets not born dead whose output spreads by 0 < s <= 4 rounding steps.
    assert len(edge) == 1 and (edge[0]["width"], edge[0]["depth"]) == ("3", "10")
    for dtype in ("float32", "float64"):
        for scheme in ("he", "rai"):
            spread = ds.output_spread_init.sel(init_scheme=scheme, dtype=dtype).values
            assert np.array_equal(spread == 0, ds.born_dead.sel(init_scheme=scheme, dtype=dtype).values.astype(bool))
            assert edge[0][f"{scheme}, {dtype}"] == str(int(np.sum((spread > 0) & (spread <= 4))))
    assert (tmp_path / "mlp_born_dead.png").stat().st_size > 0


def test_he_and_rai_shares_against_numpy_nets(small):
    """lossjax's float64 shares against numpy nets drawn here on the same 64 inputs (4.5 σ of the
    difference of two binomial shares). He lies under the single-input form; RAI lies under He."""
    ds = small
    x = make_dataset("teacher", seed=0, n_features=1, n_train=64, n_test=1).x_train
    n = ds.sizes["seed"]
    rng = np.random.default_rng(11)
    shares = {}
    for scheme in ("he", "rai"):
        out = numpy_nets(rng, 20_000, x, 3, 10, scheme)
        ref = np.mean(np.all(out == out[:, :1], axis=1))
        got = float(ds.born_dead.sel(init_scheme=scheme, dtype="float64").values.mean())
        sigma = math.sqrt(ref * (1 - ref) * (1 / n + 1 / 20_000))
        assert abs(got - ref) < 4.5 * sigma + 1e-3, (scheme, got, ref)
        shares[scheme] = got
    assert shares["he"] <= study_mlp.single_input_dead_probability(3, 10)
    assert shares["rai"] < shares["he"]


def test_born_dead_is_nested_in_the_training_set():
    """The teacher's first 8 inputs are the first 8 of its 64 (one stream), and the parameters depend
    on the run seed only: a net constant on the 64 is constant on the 8, seed by seed. With zero
    biases and d_in = 1 both sets hold inputs of both signs, so He's verdicts are the same."""
    changes = {"model.depth": [5], "model.width": [2], "train.seed": {"num": 1000}, "train.dtype": "float64"}
    small8 = run_small("mlp", "mlp_born_dead", **changes, **{"data.params": {"n_features": 1, "n_train": 8, "n_test": 1}})
    small64 = run_small("mlp", "mlp_born_dead", **changes)
    x8 = make_dataset("teacher", seed=0, n_features=1, n_train=8, n_test=1).x_train
    x64 = make_dataset("teacher", seed=0, n_features=1, n_train=64, n_test=1).x_train
    np.testing.assert_array_equal(x8, x64[:8])
    assert (x8 > 0).any() and (x8 < 0).any()
    for scheme in ("he", "rai"):
        b8 = small8.born_dead.sel(init_scheme=scheme).values.ravel()
        b64 = small64.born_dead.sel(init_scheme=scheme).values.ravel()
        assert not np.any(b64 & ~b8), scheme
        if scheme == "he":
            np.testing.assert_array_equal(b8, b64)


def test_float32_equality_counts_deep_rai_nets_as_constant():
    """Deep RAI nets are a large constant plus an input-dependent part that shrinks with depth: in
    numpy float64 arithmetic few of them are constant on the 64 inputs, but once their outputs are
    rounded to float32 most are (the float32 excess of mlp_born_dead at depth 50)."""
    x = make_dataset("teacher", seed=0, n_features=1, n_train=64, n_test=1).x_train
    out = numpy_nets(np.random.default_rng(3), 2_000, x, 5, 50, "rai")
    exact = np.mean(np.all(out == out[:, :1], axis=1))
    rounded = out.astype(np.float32)
    in_float32 = np.mean(np.all(rounded == rounded[:, :1], axis=1))
    assert exact < 0.15 and in_float32 > 0.5, (exact, in_float32)
