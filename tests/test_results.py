"""Tests for lossjax.results and the ``lossjax run`` command: files on disk.

- save/load round trip: values, dtypes, coordinates, attributes (the sweep text, versions,
  devices, timings), and ``to_dataframe()``;
- load errors: a missing folder, a folder without results.nc, a corrupt or truncated file,
  a netCDF file that is not lossjax results — each a ResultsError naming the path;
- atomic writes: an interruption (KeyboardInterrupt) inside the write leaves the previous
  file intact and no temporary file behind;
- the CLI: ``run --out`` on a sweep file written here, and exit code 2 with a message that
  names the key on a bad sweep.
"""

from __future__ import annotations

import json
import math

import jax
import numpy as np
import pytest
import xarray as xr

from lossjax import cli, host
from lossjax.core import metrics
from lossjax.io import results
from lossjax import runner
from lossjax import config as sweep_lib
from lossjax.io.results import ResultsError

SWEEP_TOML = """\
name = "roundtrip"
description = "texts' neuron, two rates, two inits"

[model]
activation = "sigmoid"

[data]
dataset = "single"
params = { x = 1.0, y = 0.0 }

[train]
steps = 4
loss = "quadratic"
learning_rate = [0.15, 0.5]
record_every = 2

[init]
points = [[0.6, 0.9], [2.0, 2.0]]
"""

CLI_TOML = """\
name = "cli-run"

[data]
dataset = "single"

[train]
steps = 3
loss = ["quadratic", "bce"]
learning_rate = 0.15

[init]
w = [0.6, 2.0]
b = 0.9
"""


def sigmoid(z):
    return 1.0 / (1.0 + math.exp(-z))


def temp_files(folder):
    return [p.name for p in folder.iterdir() if p.name.startswith(".tmp-")]


@pytest.fixture(scope="module")
def sweep_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("sweep") / "roundtrip.toml"
    path.write_text(SWEEP_TOML)
    return path


@pytest.fixture(scope="module")
def ds(sweep_file):
    # All 4 host devices: the trajectories come back through the sharded path too.
    return runner.run_sweep(str(sweep_file))


# --------------------------------------------------------------------------------------
# Round trip
# --------------------------------------------------------------------------------------


def test_dataset_layout(ds):
    assert dict(ds.sizes) == {"learning_rate": 2, "init": 2, "step": 3}
    np.testing.assert_array_equal(ds.step.values, [0, 2, 4])
    assert list(ds.init.values) == ["w=0.6,b=0.9", "w=2,b=2"]
    np.testing.assert_array_equal(ds.init_w.values, [0.6, 2.0])
    # Axes given as single values are scalar coordinates.
    for name in ("loss", "activation", "optimizer", "dtype", "steps", "seed"):
        assert name in ds.coords and ds[name].ndim == 0, name
    assert str(ds.loss.values) == "quadratic"
    np.testing.assert_allclose(ds.output_initial.values[0], [sigmoid(1.5), sigmoid(4.0)], rtol=1e-6)
    np.testing.assert_allclose(ds.traj_output.values[0, :, 0], [sigmoid(1.5), sigmoid(4.0)], rtol=1e-6)
    np.testing.assert_array_equal(ds.traj_output.isel(step=-1).values, ds.output_final.values)
    for i, eta in enumerate([0.15, 0.5]):  # every trajectory against a numpy loop, at t = 0, 2, 4
        for j, (w, b) in enumerate([(0.6, 0.9), (2.0, 2.0)]):
            outputs = []
            for _ in range(5):
                a = sigmoid(w + b)
                outputs.append(a)
                delta = a * a * (1 - a)
                w, b = w - eta * delta, b - eta * delta
            np.testing.assert_allclose(ds.traj_output.values[i, j], outputs[::2], rtol=1e-5)
    assert ds.outcome.attrs["flag_meanings"] == " ".join(metrics.OUTCOMES)


def test_save_load_round_trip(ds, sweep_file, tmp_path):
    folder = tmp_path / "out"
    path = results.save(ds, folder)
    assert path == folder / results.RESULTS_FILE and path.is_file()
    assert (folder / results.SWEEP_FILE).read_text() == SWEEP_TOML
    assert temp_files(folder) == []
    loaded = results.load(folder)
    xr.testing.assert_identical(loaded, ds)
    for name, var in ds.data_vars.items():
        assert loaded[name].dtype == var.dtype, name
    # Attributes a reader needs to know what ran, where, and how long it took.
    assert loaded.attrs["sweep"] == SWEEP_TOML
    assert sweep_lib.parse_sweep(sweep_lib.tomllib.loads(loaded.attrs["sweep"])).n_runs == 4
    versions = json.loads(loaded.attrs["versions"])
    assert versions["jax"] == jax.__version__ and "numpy" in versions and "python" in versions
    assert json.loads(loaded.attrs["devices"]) == [str(d) for d in jax.devices()]
    assert loaded.attrs["compile_time_s"] > 0 and loaded.attrs["run_time_s"] > 0
    assert loaded.attrs["wall_time_s"] >= loaded.attrs["compile_time_s"]
    assert json.loads(loaded.attrs["thresholds"])["target"] == 0.01
    assert loaded.attrs["n_runs"] == 4 and loaded.attrs["name"] == "roundtrip"
    assert loaded.attrs["lossjax_format"] == results.FORMAT_VERSION
    # The results file's own path works as well as its folder.
    xr.testing.assert_identical(results.load(path), ds)


def test_to_dataframe(ds, tmp_path):
    results.save(ds, tmp_path)
    loaded = results.load(tmp_path)
    summary = [name for name in loaded.data_vars if not name.startswith("traj_")]
    frame = loaded[summary].to_dataframe()
    assert len(frame) == 4  # one row per run
    assert {"loss_final", "outcome", "steps_to_target"} <= set(frame.columns)
    assert frame.index.names == ["learning_rate", "init"]
    full = loaded.to_dataframe()
    assert len(full) == 4 * 3  # runs × recorded steps
    row = frame.loc[(0.15, "w=0.6,b=0.9")]
    assert row.output_initial == pytest.approx(sigmoid(1.5), rel=1e-6)


def test_outcome_labels_and_shares(ds):
    labels = results.outcome_labels(ds.outcome)
    assert set(np.unique(labels.values)) <= set(metrics.OUTCOMES)
    shares = results.outcome_shares(ds)
    total = sum(float(shares[name]) for name in metrics.OUTCOMES)
    assert total == pytest.approx(1.0)


# --------------------------------------------------------------------------------------
# Load errors
# --------------------------------------------------------------------------------------


def test_load_missing_folder(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(ResultsError, match="nowhere"):
        results.load(missing)


def test_load_folder_without_results(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ResultsError) as info:
        results.load(tmp_path)
    assert str(tmp_path) in str(info.value) and results.RESULTS_FILE in str(info.value)


def test_load_corrupt_file(tmp_path):
    (tmp_path / results.RESULTS_FILE).write_bytes(b"\x89HDF\r\n garbage " * 40)
    with pytest.raises(ResultsError) as info:
        results.load(tmp_path)
    assert str(tmp_path / results.RESULTS_FILE) in str(info.value)


def test_load_truncated_file(ds, tmp_path):
    good = tmp_path / "good"
    path = results.save(ds, good)
    data = path.read_bytes()
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / results.RESULTS_FILE).write_bytes(data[: len(data) // 2])
    with pytest.raises(ResultsError) as info:
        results.load(bad)
    assert str(bad / results.RESULTS_FILE) in str(info.value)


def test_load_netcdf_that_is_not_lossjax(tmp_path):
    xr.Dataset({"a": ("x", np.arange(3.0))}).to_netcdf(tmp_path / results.RESULTS_FILE, engine="h5netcdf")
    with pytest.raises(ResultsError) as info:
        results.load(tmp_path)
    assert str(tmp_path / results.RESULTS_FILE) in str(info.value) and "not lossjax" in str(info.value)


def test_results_error_is_a_value_error():
    assert issubclass(ResultsError, ValueError)


# --------------------------------------------------------------------------------------
# Atomic writes
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("exception", [KeyboardInterrupt, OSError])
def test_atomic_write_interrupted(tmp_path, exception):
    path = tmp_path / "file.txt"
    path.write_text("previous")

    def write(tmp):
        tmp.write_text("half a new fi")
        raise exception("interrupted")

    with pytest.raises(exception):
        results.atomic_write(path, write)
    assert path.read_text() == "previous"
    assert temp_files(tmp_path) == []


def test_save_interrupted_keeps_previous_results(ds, tmp_path, monkeypatch):
    results.save(ds, tmp_path)
    before = (tmp_path / results.RESULTS_FILE).read_bytes()
    changed = ds.assign(loss_final=ds.loss_final * 0)

    def interrupted_to_netcdf(self, path, *args, **kwargs):
        with open(path, "wb") as f:
            f.write(b"\x89HDF partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(xr.Dataset, "to_netcdf", interrupted_to_netcdf)
    with pytest.raises(KeyboardInterrupt):
        results.save(changed, tmp_path)
    monkeypatch.undo()
    assert (tmp_path / results.RESULTS_FILE).read_bytes() == before
    assert temp_files(tmp_path) == []
    xr.testing.assert_identical(results.load(tmp_path), ds)


def test_save_overwrites_previous_results(ds, tmp_path):
    results.save(ds, tmp_path)
    changed = ds.assign(loss_final=ds.loss_final * 0)
    results.save(changed, tmp_path)
    np.testing.assert_array_equal(results.load(tmp_path).loss_final.values, 0)
    assert temp_files(tmp_path) == []


# --------------------------------------------------------------------------------------
# The CLI
# --------------------------------------------------------------------------------------


@pytest.fixture
def no_disk_cache(monkeypatch):
    """``lossjax run`` turns on jax's persistent compilation cache, a process-wide setting;
    tests keep it off (and out of the home directory)."""
    calls = []
    monkeypatch.setattr(host, "use_compilation_cache", lambda: calls.append(1))
    return calls


def test_cli_run_writes_results(tmp_path, capsys, no_disk_cache):
    spec = tmp_path / "cli.toml"
    spec.write_text(CLI_TOML)
    out = tmp_path / "results" / "cli"
    code = cli.main(["run", str(spec), "--out", str(out), "--quiet"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.out.strip() == str(out)
    assert "4 runs" in captured.err and "2 static combinations" in captured.err
    assert no_disk_cache == [1]
    assert (out / results.SWEEP_FILE).read_text() == CLI_TOML
    loaded = results.load(out)
    assert dict(loaded.sizes) == {"loss": 2, "w0": 2}
    assert float(loaded.b0) == 0.9  # a scalar coordinate
    np.testing.assert_allclose(loaded.output_initial.values, [[sigmoid(1.5), sigmoid(2.9)]] * 2, rtol=1e-6)
    # L_0 by hand at z = 1.5, y = 0: ½a² for the quadratic cost, −log(1 − a) for cross-entropy.
    a = sigmoid(1.5)
    assert loaded.loss_initial.sel(loss="quadratic").values[0] == pytest.approx(0.5 * a * a, rel=1e-6)
    assert loaded.loss_initial.sel(loss="bce").values[0] == pytest.approx(-math.log(1 - a), rel=1e-6)


def test_cli_bad_sweep_exits_2(tmp_path, capsys, no_disk_cache):
    spec = tmp_path / "bad.toml"
    spec.write_text(CLI_TOML.replace('"quadratic"', '"quadratc"'))
    out = tmp_path / "never"
    code = cli.main(["run", str(spec), "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("lossjax: error:")
    assert "bad.toml" in err and "[train].loss" in err and "quadratc" in err and "quadratic" in err
    assert "Traceback" not in err
    assert not out.exists()


def test_cli_missing_sweep_file_exits_2(tmp_path, capsys, no_disk_cache):
    code = cli.main(["run", str(tmp_path / "missing.toml"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "missing.toml" in err and "does not exist" in err


def test_cli_report_on_missing_results_exits_2(tmp_path, capsys):
    code = cli.main(["report", str(tmp_path / "nothing")])
    err = capsys.readouterr().err
    assert code == 2 and "nothing" in err and err.startswith("lossjax: error:")


def test_cli_bad_chunk_size_exits_2(tmp_path, capsys, no_disk_cache):
    spec = tmp_path / "cli.toml"
    spec.write_text(CLI_TOML)
    code = cli.main(["run", str(spec), "--out", str(tmp_path / "out"), "--quiet", "--chunk-size", "-2"])
    err = capsys.readouterr().err
    assert code == 2 and "chunk_size" in err and "Traceback" not in err


# --------------------------------------------------------------------------------------
# init labels: unique, and selecting by the numeric coordinates (the README's examples)
# --------------------------------------------------------------------------------------


def _points_sweep(points):
    return {
        "name": "labels",
        "model": {"kind": "neuron", "activation": "sigmoid"},
        "data": {"dataset": "single", "params": {"x": 1.0, "y": 0.0}},
        "train": {"steps": 2, "loss": "quadratic", "optimizer": "sgd", "learning_rate": 0.15},
        "init": {"points": points},
    }


def test_init_labels_are_unique_and_widen_only_as_needed():
    from lossjax.io.store import init_labels

    assert init_labels([(0.6, 0.9), (2.0, 2.0)]) == ["w=0.6,b=0.9", "w=2,b=2"]  # 6 digits, as before
    # The example: 6 significant digits make both "w=1,b=2".
    assert init_labels([(1.0000001, 2.0), (1.0000002, 2.0), (2.0, 2.0)]) == [
        "w=1.0000001,b=2", "w=1.0000002,b=2", "w=2,b=2"]
    # Neighbouring float64 values need all 17 digits; the labels read back as the same floats.
    a = 0.1
    b = float(np.nextafter(a, 1.0))
    labels = init_labels([(a, 0.0), (b, 0.0)])
    assert len(set(labels)) == 2
    assert [float(lab[2:].split(",")[0]) for lab in labels] == [a, b]


def test_sel_by_label_returns_one_run_and_numeric_selection():
    ds = runner.run_sweep(_points_sweep([[1.0000001, 2.0], [1.0000002, 2.0], [2.0, 2.0]]))
    assert list(ds.init.values) == ["w=1.0000001,b=2", "w=1.0000002,b=2", "w=2,b=2"]
    one = ds.output_initial.sel(init="w=1.0000002,b=2")
    assert one.shape == ()  # one run, not two
    # a = sigma(w x + b) at x = 1 in float32 (the run's dtype), written here in numpy
    z = np.float32(1.0000002) + np.float32(2.0)
    assert float(one) == pytest.approx(float(1 / (1 + np.exp(-np.float64(z)))), rel=1e-6)
    # The README's selection by the numeric init_w / init_b coordinates:
    picked = ds.where((ds.init_w == 2) & (ds.init_b == 2), drop=True)
    assert picked.sizes["init"] == 1 and str(picked.init.item()) == "w=2,b=2"
    assert float(picked.output_initial.item()) == pytest.approx(1 / (1 + math.exp(-4.0)), rel=1e-6)
    by_w = ds.swap_dims(init="init_w")
    assert float(by_w.output_initial.sel(init_w=2.0)) == float(picked.output_initial.item())
    near = by_w.output_initial.sel(init_w=1.00000015, method="nearest")
    assert near.shape == () and float(near.init_w) in (1.0000001, 1.0000002)
