"""Tests for lossjax.runner: the vmapped, chunked, sharded grid equals each run trained alone.

The reference for every run of a grid is ``make_train(cfg)(run, data)`` called on that run
alone (jitted for every run, and without jit for one). The grid is then run whole on one
device, in chunks of 3 with a padded last chunk, and sharded over the 4 host CPU devices that
tests/conftest.py provides (in blocks of 2); all must agree to float32 rounding, and bit for bit
where the block size is the same (a run's numbers do not depend on chunks or devices).
An MLP grid over seeds is checked the same way. Finally the number of
XLA compilations is counted: a grid of learning rates and initialisations is one program
per static combination.
"""

from __future__ import annotations

import contextlib
import copy
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lossjax import programs, runner
from lossjax import config as sweep_lib
from lossjax.core import train

SWEEP = {
    "name": "grid",
    "model": {"kind": "neuron", "activation": "sigmoid"},
    "data": {"dataset": "single", "params": {"x": 1.0, "y": 0.0}},
    "train": {
        "steps": 20,
        "loss": "quadratic",
        "dtype": "float32",
        "learning_rate": [0.05, 0.15, 0.5, 2.0, 8.0],
    },
    "init": {"points": [[0.6, 0.9], [2.0, 2.0]]},
}
N_RUNS = 10

MLP_SWEEP = {
    "name": "mlp-grid",
    "model": {"kind": "mlp", "depth": 1, "width": 4, "hidden_activation": "tanh", "activation": "sigmoid"},
    "data": {"dataset": "xor"},
    "train": {"steps": 10, "loss": "bce", "dtype": "float32", "learning_rate": [0.1, 1.0], "seed": {"num": 3}},
    "init": {"scheme": "he", "bias_std": 0.1},
}

TOL = dict(rtol=2e-6, atol=1e-7)  # float32 rounding


@contextlib.contextmanager
def count_compilations():
    """Collects the names of the functions XLA compiles inside the block."""
    names: list[str] = []

    def listener(event, duration, **kwargs):
        if event == "/jax/core/compile/backend_compile_duration":
            names.append(kwargs.get("fun_name", "?"))

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield names
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)


class Calls(list):
    """The number of rows of each compiled call; ``.compiled``: the executables called."""

    compiled: list


@contextlib.contextmanager
def chunk_calls():
    """Records the number of rows each compiled call receives."""
    sizes = Calls()
    sizes.compiled = []
    original = programs.Compiled.__call__

    def spy(self, runs, shape=None):
        sizes.append(len(runs["seed"]))
        sizes.compiled.append(self)
        return original(self, runs, shape)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(programs.Compiled, "__call__", spy)
        yield sizes


def grid_rows(spec):
    """(train config, the batched grid's RunInputs rows, data) of a one-combination sweep."""
    sweep = sweep_lib.parse_sweep(spec)
    (combo,) = sweep.static_combinations()
    dataset = sweep.make_dataset()
    cfg = sweep.train_config(combo, dataset.x_train.shape[1], dataset.y_train.shape[1])
    grid = sweep_lib.batched_grid(sweep)
    rows = []
    for i in range(len(grid["seed"])):
        rows.append(
            train.RunInputs(
                **{
                    k: jnp.asarray(v[i], jnp.int32 if k in ("seed", "init_scheme") else cfg.metric_dtype)
                    for k, v in grid.items()
                }
            )
        )
    return cfg, rows, programs.to_data(dataset, cfg.jnp_dtype)


def flat(ds, name):
    """A summary variable as (runs, ...) in the batched grid's C order."""
    return ds[name].transpose("learning_rate", ...).values.reshape((N_RUNS,) + ds[name].shape[2:])


def assert_same_results(a, b, **tol):
    assert set(a.data_vars) == set(b.data_vars)
    assert a.sizes == b.sizes
    for name in a.data_vars:
        assert a[name].dims == b[name].dims, name
        assert a[name].dtype == b[name].dtype, name
        np.testing.assert_allclose(a[name].values, b[name].values, err_msg=name, **(tol or TOL))
    for name in a.coords:
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)


# --------------------------------------------------------------------------------------
# Fixtures: one grid, run three ways
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def one_device():
    """The grid in one chunk of 10 runs, one vmap, on one device."""
    with chunk_calls() as calls:
        ds = runner.run_sweep(SWEEP, devices=jax.devices()[:1])
    return ds, calls


@pytest.fixture(scope="module")
def alone():
    """Each run of the grid trained alone: ``jax.jit(make_train(cfg))(run, data)``."""
    cfg, rows, data = grid_rows(SWEEP)
    fn = jax.jit(train.make_train(cfg))
    results = [jax.device_get(fn(run, data)) for run in rows]
    return cfg, rows, data, fn, results


# --------------------------------------------------------------------------------------
# Equivalences
# --------------------------------------------------------------------------------------


def test_grid_layout_and_values_equal_runs_alone(one_device, alone):
    ds, _ = one_device
    cfg, rows, _, _, results = alone
    assert ds.sizes["learning_rate"] == 5 and ds.sizes["init"] == 2
    for i, (run, (summary, _)) in enumerate(zip(rows, results)):
        # The i-th row of the C-ordered grid sits at (lr index, init index) = divmod(i, 2).
        lr_i, init_i = divmod(i, 2)
        cell = ds.isel(learning_rate=lr_i, init=init_i)
        assert float(cell.learning_rate) == pytest.approx(float(run.learning_rate))
        assert (float(cell.init_w), float(cell.init_b)) == pytest.approx((float(run.init_w), float(run.init_b)))
        for name in train.Summary._fields:
            expected = np.asarray(getattr(summary, name)).reshape(cell[name].shape)
            np.testing.assert_allclose(cell[name].values, expected, err_msg=name, **TOL)


def test_jitted_alone_equals_eager_alone(alone):
    """The saturated start (w = b = 2, η = 0.15) without ``jax.jit``."""
    cfg, rows, data, _, results = alone
    eager_summary, _ = train.make_train(cfg)(rows[3], data)
    summary, _ = results[3]
    assert float(rows[3].init_w) == 2.0 and float(rows[3].learning_rate) == pytest.approx(0.15)
    for name in train.Summary._fields:
        np.testing.assert_allclose(
            np.asarray(getattr(eager_summary, name)), np.asarray(getattr(summary, name)), err_msg=name, **TOL
        )


def block_of(spec) -> int:
    sweep = sweep_lib.parse_sweep(spec)
    dataset = sweep.make_dataset()
    cfg = sweep.train_config(sweep.static_combinations()[0], dataset.x_train.shape[1], dataset.y_train.shape[1])
    return programs.fixed_block(cfg, dataset.x_train.shape[0], jax.devices()[0].platform)


def assert_bitwise(a, b):
    assert set(a.data_vars) == set(b.data_vars) and a.sizes == b.sizes
    for name in a.data_vars:
        assert a[name].dtype == b[name].dtype, name
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)


def test_chunked_equals_unchunked(one_device):
    """Every call trains one block of the program's fixed size (padded); chunks of 3 runs give
    the same numbers bit for bit."""
    ds, calls = one_device
    block = block_of(SWEEP)
    assert calls == [block] and block > N_RUNS  # 10 runs padded to one block
    with chunk_calls() as chunk_sizes:
        ds_chunked = runner.run_sweep(SWEEP, devices=jax.devices()[:1], chunk_size=3)
    assert chunk_sizes == [block] * 4  # 4 chunks (the last holds 1 run), each one padded block
    assert_bitwise(ds, ds_chunked)


def test_sharded_in_blocks_equals_one_device(one_device):
    """All 4 host CPU devices, each training one block of 2 runs per call; bitwise equal to 1 device
    with the same block, and equal to float32 rounding with another block size. (On the host's
    CPU devices also where jax's default devices are a GPU's.)"""
    cpus = jax.devices("cpu")
    assert len(cpus) == 4, "tests/conftest.py should give 4 host CPU devices"
    ds = one_device[0] if jax.default_backend() == "cpu" else runner.run_sweep(SWEEP, devices=cpus[:1])
    sweep = sweep_lib.parse_sweep(SWEEP)
    cfg = sweep.train_config(sweep.static_combinations()[0], 1, 1)
    per_run = programs.bytes_per_run(cfg, 1)
    with pytest.MonkeyPatch.context() as mp, chunk_calls() as sizes:
        mp.setattr(programs, "BLOCK_BYTES", {p: {"neuron": 2 * per_run, "mlp": 2 * per_run} for p in ("cpu", "accelerator")})
        mp.setattr(runner, "CALL_RUN_STEPS", 1)  # one block per device per call
        assert programs.choose_chunk(N_RUNS, cfg, 1, sweep.memory_mb, 4, platform="cpu") == (16, 2)
        ds_sharded = runner.run_sweep(SWEEP, devices=cpus)
        assert sizes == [8, 8]  # 10 runs in calls of 4 devices × 1 block × 2 runs, the last padded
        ds_one = runner.run_sweep(SWEEP, devices=cpus[:1])
    assert_bitwise(ds_one, ds_sharded)
    assert_same_results(ds, ds_sharded)
    assert len(json.loads(ds_sharded.attrs["devices"])) == 4
    assert len(json.loads(ds.attrs["devices"])) == 1


def test_texts_numbers_in_the_float32_grid(one_device):
    ds, _ = one_device
    cell = ds.sel(learning_rate=0.15)
    np.testing.assert_array_equal(np.round(cell.output_initial.values.astype(float), 2), [0.82, 0.98])
    for j, (w, b) in enumerate([(0.6, 0.9), (2.0, 2.0)]):  # a numpy float64 loop, 20 steps
        for _ in range(20):
            a = 1 / (1 + np.exp(-(w + b)))
            delta = a * a * (1 - a)  # (a − y) σ'(z), y = 0
            w, b = w - 0.15 * delta, b - 0.15 * delta
        assert cell.output_final.values[j] == pytest.approx(1 / (1 + np.exp(-(w + b))), rel=1e-5)
    assert ds.loss_final.dtype == np.float32 and ds.steps_to_target.dtype == np.int32


@pytest.fixture(scope="module")
def mlp_results():
    ds = runner.run_sweep(MLP_SWEEP)  # one padded block
    cfg, rows, data = grid_rows(MLP_SWEEP)
    fn = jax.jit(train.make_train(cfg))
    alone = [jax.device_get(fn(run, data)[0]) for run in rows]
    return ds, alone


def test_mlp_grid_equals_runs_alone(mlp_results):
    ds, alone = mlp_results
    assert ds.sizes == {"learning_rate": 2, "seed": 3, "layer": 2}
    for i, summary in enumerate(alone):
        cell = ds.isel(learning_rate=i // 3, seed=i % 3)
        for name in train.Summary._fields:
            np.testing.assert_allclose(
                cell[name].values, np.asarray(getattr(summary, name)), rtol=2e-5, atol=1e-6, err_msg=name
            )
    # Different seeds really are different initialisations.
    assert len(np.unique(ds.loss_initial.values.round(6))) == 3


# --------------------------------------------------------------------------------------
# Compilations
# --------------------------------------------------------------------------------------


def test_one_compilation_per_static_combination(one_device):
    spec = copy.deepcopy(SWEEP)
    spec["train"].update(loss=["quadratic", "bce"], steps=5, record_every=0,
                         learning_rate={"start": 0.01, "stop": 10.0, "num": 7, "log": True})
    spec["init"] = {"points": [[0.6, 0.9], [2.0, 2.0], [-1.0, 3.0], [0.0, 0.0]]}
    seen = []
    with count_compilations() as names:
        ds = runner.run_sweep(spec, devices=jax.devices()[:1], on_combination=seen.append)
    assert len(names) == 2, names  # 2 losses; 7 × 4 learning rates and inits batched inside each
    assert [r.combo["loss"] for r in seen] == ["quadratic", "bce"]
    assert all(r.compile_time_s > 0 for r in seen)
    assert ds.sizes == {"loss": 2, "learning_rate": 7, "init": 4}


def test_new_learning_rates_and_inits_do_not_recompile(one_device, alone):
    """The runner's executable and the single-run jit take new batched values as they are."""
    ds, calls = one_device
    (compiled,) = calls.compiled
    sweep = sweep_lib.parse_sweep(SWEEP)
    grid = sweep_lib.batched_grid(sweep)
    other = dict(grid, learning_rate=grid["learning_rate"][::-1] * 3.0, init_w=grid["init_w"] - 1.0,
                 init_b=grid["init_b"] + 0.5)
    other = {k: runner._pad(v, compiled.chunk) for k, v in other.items()}  # one padded block
    cfg, rows, data, fn, _ = alone
    with count_compilations() as names:
        summary, _ = compiled(other)
        jax.block_until_ready(summary)
        single, _ = fn(rows[0]._replace(learning_rate=jnp.float32(other["learning_rate"][0]),
                                        init_w=jnp.float32(other["init_w"][0]),
                                        init_b=jnp.float32(other["init_b"][0])), data)
        jax.block_until_ready(single)
    assert names == []
    # The new values were used: the reused executable agrees with the single run on them.
    np.testing.assert_allclose(np.asarray(summary.loss_final)[0], np.asarray(single.loss_final), **TOL)
    assert not np.allclose(np.asarray(summary.loss_final)[:N_RUNS], flat(ds, "loss_final"))


@pytest.mark.parametrize("chunk_size", [-1, -3])
def test_negative_chunk_size_is_a_sweep_error(chunk_size):
    with pytest.raises(sweep_lib.SweepError, match="chunk_size"):
        runner.run_sweep(SWEEP, chunk_size=chunk_size)


def test_sweep_identity_ignores_description_and_report_only():
    base = {"name": "ident", "description": "one", "data": {"dataset": "single"}, "train": {"learning_rate": 0.1}}
    other_text = dict(base, description="another description", report="report.py:anything")
    other_rate = dict(base, train={"learning_rate": 0.2})
    identity = lambda raw: runner.sweep_identity(sweep_lib.parse_sweep({k: v for k, v in raw.items() if k != "report"}, source=json.dumps(raw)))  # noqa: E731
    assert identity(base) == identity(other_text)
    assert identity(base) != identity(other_rate)


def test_committed_results_hold_their_experiment_files():
    """`lossjax run experiments/<study>/<name>.toml` on a fresh clone (the README's first command)
    must find in results/<name>/ the same sweep, not refuse it as a different one."""
    import dataclasses
    from pathlib import Path

    root = Path(__file__).parents[1]
    checked = 0
    for toml in sorted((root / "experiments").glob("*/*.toml")):
        sweep = sweep_lib.load_sweep(toml)
        saved = root / "results" / sweep.name / "sweep.toml"
        if saved.is_file():
            checked += 1
            as_saved = dataclasses.replace(sweep, source=saved.read_text(encoding="utf-8"))
            assert runner.sweep_identity(as_saved) == runner.sweep_identity(sweep), toml.name
    assert checked >= 16


def test_several_blocks_per_call_equal_one_block_per_call():
    """A compiled call runs whole blocks one after another (``lax.map``); how many blocks a call
    holds changes nothing: bitwise the same results as one block per device per call."""
    sweep = sweep_lib.parse_sweep(SWEEP)
    cfg = sweep.train_config(sweep.static_combinations()[0], 1, 1)
    per_run = programs.bytes_per_run(cfg, 1)
    results = {}
    for call_run_steps in (1, 1 << 30):
        with pytest.MonkeyPatch.context() as mp, chunk_calls() as sizes:
            mp.setattr(programs, "BLOCK_BYTES", {p: {"neuron": 2 * per_run, "mlp": 2 * per_run} for p in ("cpu", "accelerator")})
            mp.setattr(runner, "CALL_RUN_STEPS", call_run_steps)
            results[call_run_steps] = runner.run_sweep(SWEEP, devices=jax.devices("cpu")[:2]), list(sizes)
    assert results[1][1] == [4, 4, 4]  # 10 runs: 2 devices × 1 block of 2 per call
    assert results[1 << 30][1] == [12]  # one call: 2 devices × 3 blocks of 2
    assert_bitwise(results[1][0], results[1 << 30][0])


# --------------------------------------------------------------------------------------
# Scheme initialisations in their own program
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float64"])
def test_init_program_draws_what_the_training_program_would(dtype):
    """θ_0 from :class:`~lossjax.programs.InitProgram` (compiled at ``INIT_OPT_LEVEL``) is bitwise
    θ_0 drawn inside a jitted program at XLA's default level, for every scheme."""
    from lossjax.core import initializers, models

    mc = models.ModelConfig(kind="mlp", n_inputs=3, n_outputs=2, depth=4, width=5, hidden_activation="relu")
    cfg = train.TrainConfig(model=mc, dtype=dtype, init_mode="scheme")
    n = 2 * len(initializers.INIT_SCHEMES)
    metric = np.float64 if dtype == "float64" else np.float32
    runs = train.RunInputs(
        seed=np.arange(n, dtype=np.int32), learning_rate=np.full(n, 0.1, metric), init_w=np.zeros(n, metric),
        init_b=np.zeros(n, metric), init_scheme=np.arange(n, dtype=np.int32) % len(initializers.INIT_SCHEMES),
        init_scale=np.linspace(0.5, 2.0, n).astype(metric), init_bias=np.full(n, 0.1, metric),
        init_bias_std=np.full(n, 0.2, metric), target=np.full(n, np.nan, metric),
    )
    device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    with runner._precision(dtype):
        program = programs.InitProgram(cfg, n, device, device)
        hoisted = jax.device_get(program(jax.device_put(runs, device)))
        inline = jax.device_get(jax.jit(jax.vmap(lambda r: train.init_params(cfg, r)))(runs))
    assert programs.INIT_OPT_LEVEL < 2  # the level the claim is about (XLA's default is 2)
    for a, b in zip(jax.tree_util.tree_leaves(hoisted), jax.tree_util.tree_leaves(inline), strict=True):
        assert a.dtype == b.dtype and np.array_equal(a, b), "θ_0 differs"


def test_programs_of_one_architecture_share_one_init_program():
    """Two losses × two optimisers of one MLP: four training programs, one init program."""
    spec = copy.deepcopy(MLP_SWEEP)
    spec["train"]["loss"] = ["quadratic", "bce"]
    spec["train"]["optimizer"] = ["sgd", "momentum"]
    built = []
    original = programs.InitProgram.__init__

    def spy(self, *args, **kwargs):
        built.append(args[0])
        original(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(programs.InitProgram, "__init__", spy)
        ds = runner.run_sweep(spec)
    assert len(built) == 1
    assert ds.sizes["loss"] == 2 and ds.sizes["optimizer"] == 2


def test_a_zero_step_combination_holds_theta0_of_the_trained_one():
    """A sweep with steps = [0, 10] (two programs, records every 5 steps): the zero-step runs'
    results at θ_T, and their one trajectory record, equal the ten-step runs' at θ_0 (same seeds,
    so the same θ_0); the zero-step records after θ_0 are NaN."""
    spec = {
        "name": "zero_steps",
        "model": {"kind": "mlp", "activation": "sigmoid", "hidden_activation": "tanh", "depth": 2, "width": 4},
        "data": {"dataset": "xor"},
        "train": {"steps": [0, 10], "loss": "bce", "learning_rate": 0.5, "seed": {"num": 3}, "record_every": 5},
    }
    ds = runner.run_sweep(sweep_lib.parse_sweep(spec), devices=jax.devices()[:1], progress=False)
    zero, ten = ds.sel(steps=0), ds.sel(steps=10)
    same = lambda a, b: np.testing.assert_allclose(a.values, b.values, rtol=1e-6)  # noqa: E731  (two programs: float32 rounding)
    same(zero.loss_final, ten.loss_initial)
    same(zero.dead_final, ten.dead_init)
    same(zero.layer_grad_norm_final, ten.layer_grad_norm_init)
    same(zero.traj_loss.isel(step=0), ten.traj_loss.isel(step=0))
    assert np.all(np.isnan(zero.traj_loss.isel(step=slice(1, None)).values))
    assert not np.array_equal(ten.loss_final.values, ten.loss_initial.values)
