"""The round-off probe (``[train] roundoff_probe``, result ``roundoff_decided``).

References, none shared with lossjax:
- the XOR MLP from a symmetric init (scale 0: zero kernels, biases 0.5) trained with Adam: by
  symmetry every hidden unit has the same weights and the exact gradient that would tell them
  apart is 0 (checked here in exact rational arithmetic on the XOR truth table), so the
  outcome is decided by round-off and the probe must flag it;
- the texts' neuron from (w, b) = (0.6, 0.9), x = 1, y = 0, quadratic cost, η = 0.15 is a
  contraction: a numpy loop written here, run from the unperturbed and a perturbed start,
  shows its final loss moves by ~1e-7 relative, far below the tolerance; the probe must not
  flag it;
- the perturbation θ_0·(1 + ε·s) (θ_0 ≠ 0) or ε·s (θ_0 = 0), computed here in numpy float64
  and rounded to the run's dtype, with s read off the sign of the change;
- probe on and off give bitwise the same value of every other result, through the runner.
"""

from __future__ import annotations

from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lossjax import config as sweep_lib
from lossjax import runner
from lossjax.core import metrics, train

XOR_SYMMETRIC = {
    "name": "xor-symmetric",
    "model": {"kind": "mlp", "depth": 1, "width": 4, "hidden_activation": "sigmoid", "activation": "sigmoid"},
    "data": {"dataset": "xor"},  # the truth table: 4 points, no noise
    "train": {"steps": 300, "loss": "bce", "optimizer": "adam", "learning_rate": 0.05, "dtype": "float64",
              "roundoff_probe": True},
    "init": {"scheme": "lecun", "scale": 0.0, "bias": 0.5},
}

NEURON = {
    "name": "texts-neuron",
    "model": {"kind": "neuron", "activation": "sigmoid"},
    "data": {"dataset": "single", "params": {"x": 1.0, "y": 0.0}},
    "train": {"steps": 300, "loss": "quadratic", "learning_rate": 0.15, "dtype": "float32", "roundoff_probe": True},
    "init": {"w": 0.6, "b": 0.9},
}


def _with(spec, **train_keys):
    return {**spec, "train": {**spec["train"], **train_keys}}


def _run(spec):
    """The sweep trained in memory; optax's Adam needs standard promotion (tests/test_optimizers.py)."""
    with jax.numpy_dtype_promotion("standard" if spec["train"].get("optimizer") == "adam" else "strict"):
        return runner.run_sweep(spec)


def test_symmetric_xor_hidden_gradient_is_exactly_zero():
    """The reference fact behind the flagged case, in exact arithmetic: with every hidden unit
    equal (zero kernels) and equal output weights, the gradient of every hidden kernel on the
    XOR truth table is Σ_n δ_n x_n · c with δ_n = a − y_n the same a for every input: 0."""
    corners = [(-1, -1, 0), (-1, 1, 1), (1, -1, 1), (1, 1, 0)]
    a = Fraction(3, 7)  # any common output: every input gives the same output
    for j in range(2):
        assert sum((a - c[2]) * c[j] for c in corners) == 0


def test_symmetric_xor_adam_is_flagged():
    ds = _run(XOR_SYMMETRIC)
    assert int(ds.roundoff_decided) == 1
    # the run is symmetric: the hidden layer's gradient is round-off only, orders below the output's
    assert float(ds.layer_grad_norm_init.isel(layer=0)) == 0.0


def test_texts_neuron_is_not_flagged_and_moves_as_a_numpy_loop_does():
    ds = _run(NEURON)
    assert int(ds.roundoff_decided) == 0

    def final_loss(w, b, steps=300, eta=0.15):  # numpy float64 loop: σ neuron, C = (a − y)²/2, x = 1, y = 0
        for _ in range(steps):
            a = 1.0 / (1.0 + np.exp(-(w + b)))
            g = a * a * (1.0 - a)  # dC/dz, and dz/dw = dz/db = 1
            w, b = w - eta * g, b - eta * g
        a = 1.0 / (1.0 + np.exp(-(w + b)))
        return 0.5 * a * a

    eps = metrics.ROUNDOFF_EPSILON["float32"]
    base = final_loss(0.6, 0.9)
    worst = max(abs(final_loss(0.6 * (1 + s * eps), 0.9 * (1 + t * eps)) - base) / base
                for s in (-1, 1) for t in (-1, 1))
    assert worst < 1e-5 < metrics.Thresholds().roundoff_tolerance
    np.testing.assert_allclose(float(ds.loss_final), base, rtol=1e-5)


@pytest.mark.parametrize("dtype", ["float32", "float64", "bfloat16", "float16"])
def test_perturbation_size_and_sign(dtype):
    """θ'_0 against θ_0·(1 + ε·s) (θ_0 ≠ 0) and ε·s (θ_0 = 0) in numpy float64, rounded to the dtype."""
    jdt = train.DTYPES[dtype]
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(size=200) * 10.0 ** rng.integers(-3, 3, size=200), np.zeros(56)])
    params = {"a": jnp.asarray(values[:128], jdt), "b": {"c": jnp.asarray(values[128:], jdt).reshape(16, 8)}}
    mdt = jnp.float64 if dtype == "float64" else jnp.float32
    out = train.perturb_params(params, jnp.asarray(7, jnp.int32), dtype, mdt)
    eps = metrics.ROUNDOFF_EPSILON[dtype]
    np_dtype = np.dtype(jdt)
    for before, after in zip(jax.tree_util.tree_leaves(params), jax.tree_util.tree_leaves(out)):
        assert after.dtype == before.dtype and after.shape == before.shape
        x = np.asarray(before, np.float64).ravel()
        y = np.asarray(after, np.float64).ravel()
        assert np.all(y != x)  # every entry moves, zeros included
        s = np.sign(y - x) * np.where(x == 0, 1.0, np.sign(x))  # the sign s of each entry
        assert set(np.unique(s)) == {-1.0, 1.0}
        expected = np.where(x == 0, eps * s, x * (1 + eps * s)).astype(np_dtype).astype(np.float64)
        if dtype == "float64":
            np.testing.assert_allclose(y, expected, rtol=4e-16, atol=0)
        else:  # rounded once from the exact value, or (near a tie, after float32 arithmetic) the neighbour
            ulp = np.spacing(np.abs(expected).astype(np_dtype)).astype(np.float64)
            assert np.all(np.abs(y - expected) <= ulp)
            assert np.mean(y == expected) > 0.9
        nz = x != 0
        relative = np.abs(y[nz] - x[nz]) / np.abs(x[nz])
        assert np.all(relative > 0.4 * eps) and np.all(relative < 2.5 * eps)
    # the signs depend on the seed alone: another seed, other signs; the same seed, the same
    again = train.perturb_params(params, jnp.asarray(7, jnp.int32), dtype, mdt)
    other = train.perturb_params(params, jnp.asarray(8, jnp.int32), dtype, mdt)
    np.testing.assert_array_equal(np.asarray(again["a"], np.float64), np.asarray(out["a"], np.float64))
    assert np.any(np.asarray(other["a"], np.float64) != np.asarray(out["a"], np.float64))


@pytest.mark.parametrize("spec", [NEURON, XOR_SYMMETRIC], ids=["neuron", "xor"])
def test_probe_leaves_every_other_result_bitwise_unchanged(spec):
    grid = _with(spec, learning_rate=[0.05, 0.15, 1.5])
    on = _run(grid)
    off = _run(_with(grid, roundoff_probe=False))
    assert set(on.data_vars) == set(off.data_vars)
    for name in on.data_vars:
        if name != "roundoff_decided":
            np.testing.assert_array_equal(on[name].values, off[name].values, err_msg=name)
    assert np.all(off.roundoff_decided.values == metrics.NOT_PROBED)
    assert set(np.unique(on.roundoff_decided.values)) <= {0, 1}
    assert off.roundoff_decided.attrs["flag_meanings"] == "not_probed no yes"


def test_probe_result_depends_on_the_run_alone():
    """A run's flag is the same trained alone and inside a grid (signs keyed by its seed)."""
    grid = _run({**XOR_SYMMETRIC, "train": {**XOR_SYMMETRIC["train"], "seed": {"num": 3},
                                                        "learning_rate": [0.05, 0.5]}})
    alone = _run({**XOR_SYMMETRIC, "train": {**XOR_SYMMETRIC["train"], "seed": 2, "learning_rate": 0.5}})
    assert int(grid.roundoff_decided.sel(seed=2, learning_rate=0.5)) == int(alone.roundoff_decided)
    np.testing.assert_array_equal(grid.loss_final.sel(seed=2, learning_rate=0.5).values, alone.loss_final.values)


def test_tolerance_refused_when_not_positive():
    with pytest.raises(sweep_lib.SweepError, match="roundoff_tolerance"):
        sweep_lib.parse_sweep({**NEURON, "metrics": {"roundoff_tolerance": 0.0}})
    with pytest.raises(sweep_lib.SweepError, match="roundoff_probe"):
        sweep_lib.parse_sweep(_with(NEURON, roundoff_probe="yes"))


def test_flag_rule_on_hand_set_records():
    """The rule itself on hand-made final losses: beyond the tolerance, an outcome change, one NaN."""
    from lossjax.core import summaries

    def record(loss_final, loss_initial=1.0, reached=True):
        obs = train.Observation(*(jnp.zeros((1,)) if q.per_layer else jnp.asarray(0.0) for q in metrics.OBSERVED))
        obs = obs._replace(loss=jnp.asarray(loss_final), finite=jnp.asarray(bool(np.isfinite(loss_final))))
        acc = summaries.start(obs._replace(loss=jnp.asarray(loss_initial)), 10)
        acc = acc._replace(steps_to_target=jnp.asarray(3 if reached else metrics.NEVER, jnp.int32),
                           longest_plateau=jnp.asarray(0, jnp.int32))
        return summaries.RunRecord(acc, obs, jnp.asarray(False), 0.0, 0.0, 0.0, 10, (1,), metrics.Thresholds())

    eps = jnp.asarray(1e-7)
    flag = lambda a, b: int(summaries.roundoff_decided(a, b, eps))  # noqa: E731
    assert flag(record(0.5), record(0.5 * (1 + 9e-4))) == 0
    assert flag(record(0.5), record(0.5 * (1 + 1.1e-3))) == 1
    assert flag(record(0.005), record(0.005, reached=False)) == 1  # outcome converged vs stalled
    assert flag(record(1e-12), record(3e-12)) == 0  # both below ε·L_0 = 1e-7
    assert flag(record(0.5), record(np.nan)) == 1


def test_reports_count_the_flag_and_mark_the_atlas(tmp_path):
    """The atlas report's roundoff.md and the MLP roundoff.md against the flag counted here; no
    table without the probe."""
    from test_reports import make, run_small, table

    with jax.numpy_dtype_promotion("standard"):  # optax's Adam
        ds = run_small("neuron", "neuron_atlas_roundoff", **{
            "train.optimizer": ["sgd", "adam"], "train.learning_rate": [0.15, 1.5], "train.steps": 40,
            "init.w": {"start": -6.0, "stop": 6.0, "num": 9}, "init.b": {"start": -6.0, "stop": 6.0, "num": 9}})
    folder = make("neuron", "report_atlas", ds.copy(), tmp_path / "atlas")
    rows = table(folder / "roundoff.md")
    assert len(rows) == 2 * 2 * 2 + 1
    for row in rows[:-1]:
        flag = ds.roundoff_decided.sel(loss=row["loss"], optimizer=row["optimizer"], dtype=row["dtype"]).values
        assert int(row["runs"]) == flag.size == 2 * 9 * 9
        assert row["decided (all η)"] == f"{np.mean(flag == 1):.4f}"
    assert rows[-1]["runs"] == str(ds.roundoff_decided.size)
    assert (folder / "steps_to_target_float32.png").is_file()
    assert "Black x" in (folder / "README.md").read_text()
    # the same sweep without the probe: no round-off table, no marks
    off = make("neuron", "report_atlas", ds.assign(roundoff_decided=ds.roundoff_decided * 0 + metrics.NOT_PROBED),
               tmp_path / "off")
    assert not (off / "roundoff.md").exists() and "Black x" not in (off / "README.md").read_text()

    with jax.numpy_dtype_promotion("standard"):  # optax's Adam
        xor = run_small("mlp", "mlp_xor_roundoff", **{"train.seed": {"num": 2}, "init.scale": [0.0, 1.0]})
    rows = table(make("mlp", "report_roundoff", xor, tmp_path / "xor") / "roundoff.md")
    assert len(rows) == 2 * 2 * 2 + 1
    for row in rows[:-1]:
        flag = xor.roundoff_decided.sel(optimizer=row["optimizer"], dtype=row["dtype"],
                                        init_scale=float(row["init_scale"])).values
        assert row["round-off decided"] == f"{np.mean(flag == 1):.3f}" and int(row["runs"]) == flag.size
    # the symmetric init with Adam is decided by round-off in both dtypes, on seeds 0 and 1
    assert np.all(xor.roundoff_decided.sel(optimizer="adam", init_scale=0.0).values == 1)


def test_readme_table_is_the_committed_tables():
    """The README's share per study is the 'all' row of each committed results/<name>/roundoff.md."""
    from pathlib import Path

    from test_reports import table

    root = Path(__file__).resolve().parents[1]
    readme = root.joinpath("README.md").read_text()
    start = readme.index("| study | sweep | runs | round-off-decided share |")
    lines = readme[start:].split("\n\n")[0].splitlines()[2:]
    assert len(lines) >= 4
    for line in lines:
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        name = cells[1].strip("`")
        last = table(root / "results" / name / "roundoff.md")[-1]
        share = last.get("round-off decided", last.get("decided (all η)"))
        assert cells[2] == f"{int(last['runs']):,}" and cells[3] == share, (name, cells, last)


def test_committed_phase_results_equal_with_and_without_probe():
    """The committed mlp_phase (no probe) and the float32 half of mlp_phase_roundoff (probe on) hold
    the same numbers, bit for bit, in every variable but the flag."""
    from pathlib import Path

    import xarray as xr

    root = Path(__file__).resolve().parents[1] / "results"
    off = xr.open_dataset(root / "mlp_phase" / "results.nc")
    on = xr.open_dataset(root / "mlp_phase_roundoff" / "results.nc").sel(dtype="float32")
    assert set(on.roundoff_decided.values.ravel()) <= {0, 1}
    for name in off.data_vars:
        np.testing.assert_array_equal(off[name].transpose(*on[name].dims).values, on[name].values, err_msg=name)
