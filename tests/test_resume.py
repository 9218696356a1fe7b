"""Sweeps that never lose work, and whose numbers depend on the run alone.

- bitwise invariance: an MLP sweep (moons, mini-batches, Adam) gives the same numbers with
  chunks of 7 runs and with the default chunking, and seeds 0-31 alone equal the same seeds
  inside a 64-seed sweep (every run is trained in a block of the program's fixed size);
- resume, through the command in subprocesses: a sweep killed with SIGKILL mid-way, and one
  stopped with Ctrl-C (SIGINT), finish on the same command and equal the uninterrupted run bit
  for bit; a different sweep in the same folder is refused (exit 2, naming --restart);
- several processes: ``lossjax run --processes 2`` (jax.distributed on localhost, one device
  each, chunks of 5 runs) equals one process (2 devices, one chunk per program) bit for bit.
"""

from __future__ import annotations

import copy
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from lossjax import cli, host, runner
from lossjax.io import results, store

MLP = {
    "name": "mlp-invariance",
    "model": {"kind": "mlp", "depth": 2, "width": 16, "hidden_activation": "tanh", "activation": "sigmoid"},
    "data": {"dataset": "moons", "batch_size": 16},
    "train": {"steps": 60, "loss": "bce", "optimizer": "adam", "learning_rate": 0.05, "seed": {"num": 64}},
    "init": {"scheme": "he", "bias_std": 0.1},
}

MLP_TOML = """\
name = "mlp-processes"
[model]
kind = "mlp"
depth = 2
width = 16
hidden_activation = "tanh"
activation = "sigmoid"
[data]
dataset = "moons"
batch_size = 16
[train]
steps = 60
loss = "bce"
optimizer = "adam"
learning_rate = [0.01, 0.1]
seed = { num = 24 }
[init]
scheme = "he"
bias_std = 0.1
[run]
chunk_size = 5
"""

#: 40,000 neurons x 1,500 steps in 20 chunks: long enough to be cut mid-way.
NEURONS_TOML = """\
name = "resume"
[data]
dataset = "single"
[train]
steps = 1500
loss = "quadratic"
learning_rate = 0.15
[init]
w = { start = -6.0, stop = 6.0, num = 200 }
b = { start = -6.0, stop = 6.0, num = 200 }
[run]
chunk_size = 2000
"""
N_CHUNKS = 20


def assert_bitwise(a, b):
    assert set(a.data_vars) == set(b.data_vars) and dict(a.sizes) == dict(b.sizes)
    for name in a.data_vars:
        assert a[name].dtype == b[name].dtype, name
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)


# --------------------------------------------------------------------------------------
# A run's numbers depend on the run alone
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mlp_default():
    with jax.numpy_dtype_promotion("standard"):  # optax's Adam promotes (see tests/test_optimizers.py)
        return runner.run_sweep(MLP)


def test_mlp_chunk_size_7_equals_default(mlp_default):
    with jax.numpy_dtype_promotion("standard"):
        chunked = runner.run_sweep(MLP, chunk_size=7, devices=jax.devices()[:1])
    assert_bitwise(mlp_default, chunked)
    assert len(np.unique(mlp_default.loss_final.values)) > 32  # the runs really differ


def test_a_chunk_of_short_runs_holds_several_calls(tmp_path, monkeypatch):
    """Short runs are kept in chunks of several compiled calls (one store write for many calls),
    each call within the memory budget; the numbers equal one call per chunk, bit for bit."""
    from lossjax import programs

    short = copy.deepcopy(MLP)
    short["train"]["steps"] = 2
    short["run"] = {"memory_mb": 0.5}
    sweep = runner.sweep_lib.parse_sweep(short)
    cfg = sweep.train_config(sweep.static_combinations()[0], 2, 1)
    two_runs = 2 * programs.bytes_per_run(cfg, 100)  # blocks of 2 runs (moons: 100 training points)
    monkeypatch.setattr(programs, "BLOCK_BYTES", {p: {"neuron": two_runs, "mlp": two_runs} for p in ("cpu", "accelerator")})
    plan = runner.plan_sweep(sweep)
    limit = programs.call_limit(cfg, plan.n_train, 0.5)
    call = plan.call_runs(0, 2)
    assert plan.blocks[0] == 2 and 4 <= limit < 64  # the budget holds a few blocks, not the grid
    assert plan.layout.chunk == 64 and call <= limit and 64 % call == 0  # one chunk, balanced calls
    with jax.numpy_dtype_promotion("standard"):
        runner.run_sweep(short, devices=jax.devices("cpu")[:2], out=tmp_path / "default")
        runner.run_sweep(short, devices=jax.devices("cpu")[:2], out=tmp_path / "calls", chunk_size=call)
    assert len(store.Store(tmp_path / "default").markers()) == 1
    assert len(store.Store(tmp_path / "calls").markers()) == 64 // call
    assert_bitwise(results.load(tmp_path / "default"), results.load(tmp_path / "calls"))


def test_seeds_alone_equal_seeds_in_a_larger_sweep(mlp_default):
    alone = copy.deepcopy(MLP)
    alone["train"]["seed"] = {"num": 32}
    with jax.numpy_dtype_promotion("standard"):
        ds = runner.run_sweep(alone, devices=jax.devices()[:2])  # the default devices' platform, as mlp_default
    assert_bitwise(mlp_default.isel(seed=slice(0, 32)), ds)


# --------------------------------------------------------------------------------------
# Interruptions, through the command
# --------------------------------------------------------------------------------------


def env(tmp_path: Path) -> dict:
    out = dict(os.environ, LOSSJAX_CACHE=str(tmp_path / "cache"), PYTHONUNBUFFERED="1")
    out.pop("XLA_FLAGS", None)  # the user's setup: one device per core
    out["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parents[1]), out.get("PYTHONPATH", "")])
    return out


#: ``python -m lossjax.cli`` with Python's own SIGINT handler (KeyboardInterrupt) installed first. A
#: shell that starts pytest as a background job (``pytest &``, no job control) ignores SIGINT for it and
#: everything it starts, and Python then installs no handler: the sweep ran all 20 chunks to the end.
CLI_AS_FROM_A_TERMINAL = ("import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
                          "sys.argv[0] = 'lossjax'; runpy.run_module('lossjax.cli', run_name='__main__')")


def lossjax(tmp_path, *args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", CLI_AS_FROM_A_TERMINAL, *map(str, args)], env=env(tmp_path),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_chunks(folder: Path, n: int, proc: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while len(store.Store(folder).done()) < n:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no chunk finished in time"
        time.sleep(0.02)


@pytest.fixture(scope="module")
def neurons(tmp_path_factory):
    folder = tmp_path_factory.mktemp("neurons")
    spec = folder / "resume.toml"
    spec.write_text(NEURONS_TOML)
    return spec, runner.run_sweep(str(spec))  # uninterrupted, in memory, 4 devices


@pytest.mark.parametrize("how", ["SIGKILL", "SIGINT"])
def test_interrupted_sweep_resumes_to_the_uninterrupted_result(how, neurons, tmp_path):
    spec, reference = neurons
    out = tmp_path / "out"
    proc = lossjax(tmp_path, "run", spec, "--out", out, "--quiet")
    wait_for_chunks(out, 2, proc)
    sent = time.monotonic()
    proc.send_signal(getattr(signal, how))
    _, err = proc.communicate(timeout=60)
    stopped_in = time.monotonic() - sent
    kept = store.Store(out).done()
    assert 2 <= len(kept) < N_CHUNKS, f"the sweep was not cut mid-way: exit {proc.returncode} after {stopped_in:.1f} s, stderr {err[-800:]!r}"
    assert not (out / results.RESULTS_FILE).exists()
    if how == "SIGINT":
        assert proc.returncode == 130 and stopped_in < 10, (proc.returncode, stopped_in, err)
        assert "chunks" in err and "same command" in err and "Traceback" not in err, err
    else:
        assert proc.returncode == -signal.SIGKILL
    rerun = lossjax(tmp_path, "run", spec, "--out", out, "--quiet")
    _, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, err
    assert len(store.Store(out).done()) == N_CHUNKS
    assert_bitwise(results.load(out), reference)
    assert_bitwise(results.load(out / results.RESULTS_FILE), reference)
    assert not [p for p in out.iterdir() if p.name.startswith(".tmp-")]


def test_other_sweep_in_the_folder_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(host, "use_compilation_cache", lambda: None)
    small = NEURONS_TOML.replace("num = 200", "num = 3").replace("steps = 1500", "steps = 3")
    (tmp_path / "a.toml").write_text(small)
    (tmp_path / "b.toml").write_text(small.replace("learning_rate = 0.15", "learning_rate = 0.5"))
    out = tmp_path / "out"
    assert cli.main(["run", str(tmp_path / "a.toml"), "--out", str(out), "--quiet"]) == 0
    before = sorted(p.name for p in out.rglob("*"))
    capsys.readouterr()
    assert cli.main(["run", str(tmp_path / "b.toml"), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "different sweep" in err and "--restart" in err and len(err.strip().splitlines()) == 2, err
    assert sorted(p.name for p in out.rglob("*")) == before
    assert cli.main(["run", str(tmp_path / "b.toml"), "--out", str(out), "--quiet", "--restart"]) == 0
    assert float(results.load(out).learning_rate) == 0.5


def test_results_of_an_older_lossjax_are_refused(tmp_path, capsys, monkeypatch):
    """The same sweep's store without a variable this version writes (as an older lossjax left it,
    before a quantity was added) opens without it, and is refused before training, naming the
    variable and --restart, and nothing is written; --restart recomputes it."""
    monkeypatch.setattr(host, "use_compilation_cache", lambda: None)
    small = NEURONS_TOML.replace("num = 200", "num = 3").replace("steps = 1500", "steps = 3")
    (tmp_path / "a.toml").write_text(small)
    out = tmp_path / "out"
    assert cli.main(["run", str(tmp_path / "a.toml"), "--out", str(out), "--quiet"]) == 0
    shutil.rmtree(out / store.STORE / "zero_update_steps")  # what a store from before that quantity lacks
    old = results.load(out)  # it still opens, without the quantity
    assert "zero_update_steps" not in old and "loss_final" in old
    before = sorted(p.name for p in out.rglob("*"))
    capsys.readouterr()
    assert cli.main(["run", str(tmp_path / "a.toml"), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "older lossjax" in err and "zero_update_steps" in err and "--restart" in err, err
    assert len(err.strip().splitlines()) == 2, err
    assert sorted(p.name for p in out.rglob("*")) == before
    assert cli.main(["run", str(tmp_path / "a.toml"), "--out", str(out), "--quiet", "--restart"]) == 0
    assert "zero_update_steps" in results.load(out)


# --------------------------------------------------------------------------------------
# Several processes
# --------------------------------------------------------------------------------------


def test_two_processes_equal_one(tmp_path):
    spec = tmp_path / "mlp.toml"
    spec.write_text(MLP_TOML)
    out = tmp_path / "two"
    proc = lossjax(tmp_path, "run", spec, "--out", out, "--processes", 2, "--quiet")
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    markers = store.Store(out).markers()
    assert {m["process"] for m in markers} == {0, 1} and len(markers) == 10  # 2 programs x 5 chunks of 5 runs
    assert all(m["devices"] == 1 for m in markers)
    single = lossjax(tmp_path, "run", spec, "--out", tmp_path / "one", "--quiet", "--chunk-size", 48)
    _, err = single.communicate(timeout=600)  # (the test process runs with x64 on: other random draws)
    assert single.returncode == 0, err
    assert_bitwise(results.load(out), results.load(tmp_path / "one"))


def test_a_written_chunk_equals_xarrays_region_write(tmp_path):
    """Store.write puts a chunk straight into the zarr arrays; the reference is xarray's own
    region write of the same piece into a store created the same way: every array equal."""
    import xarray as xr
    import zarr

    plan = runner.plan_sweep(runner.sweep_lib.parse_sweep(MLP), chunk_size=24)
    layout = plan.layout
    rng = np.random.default_rng(0)
    piece = store.empty_piece(layout, 24)
    for name, values in piece.items():
        if values.dtype == bool:
            values[...] = rng.random(values.shape) < 0.5
        elif np.issubdtype(values.dtype, np.integer):
            values[...] = rng.integers(-1, 300, values.shape)
        else:
            values[...] = np.where(rng.random(values.shape) < 0.1, np.nan, rng.normal(size=values.shape))
    ours, reference = store.Store(tmp_path / "ours"), store.Store(tmp_path / "reference")
    for s in (ours, reference):
        s.folder.mkdir()
        s.create(layout, {"name": "t"})
    ours.write(0, 1, piece, {"seconds": 0.0})
    lo, hi = layout.bounds(1)
    variables = {name: (dims, piece[name]) for name, (dims, _, _, _) in layout.variables().items()}
    xr.Dataset(variables).to_zarr(reference.path, region={"program": slice(0, 1), "run": slice(lo, hi)}, consolidated=False)
    a, b = zarr.open_group(str(ours.path), mode="r"), zarr.open_group(str(reference.path), mode="r")
    for name in layout.variables():
        np.testing.assert_array_equal(a[name][...], b[name][...], err_msg=name)
    assert (0, 1) in ours.done()
