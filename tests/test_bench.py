"""The benchmark's baselines compute the same numbers as each other and as lossjax.

Never asserts a timing. Float metrics: rtol 1e-4 between float32 implementations (their
``exp``/``sigmoid`` differ in the last bit, over 300 steps); float64 runs agree to ~1e-12
and their integer metrics exactly. Integer metrics of float32 runs may differ by one step
where rounding flips a threshold test.
"""

import dataclasses
import json
import math

import numpy as np
import pytest

from lossjax import bench
from lossjax.bench import harness
from lossjax.core.metrics import NEVER

NEURON_N, NEURON_T = 50**2, 300  # the grid over [-6, 6]² at 0.245 spacing: every regime
MLP_N, MLP_T = 8, 20
INT_METRICS = ("steps_to_target", "zero_grad_steps", "tiny_grad_steps", "longest_plateau", "first_nonfinite")


def assert_neuron_agree(actual, expected, *, rtol, int_slack):
    assert set(actual) == set(expected) == set(bench.NEURON_METRICS)
    for k in bench.NEURON_METRICS:
        a, e = np.asarray(actual[k]), np.asarray(expected[k])
        assert a.shape == e.shape == (NEURON_N,), k
        if k in INT_METRICS:
            assert np.max(np.abs(a.astype(np.int64) - e)) <= int_slack, k
        elif k == "saturated_mean":  # a count of steps over T
            np.testing.assert_allclose(a, e, rtol=0, atol=int_slack / NEURON_T + 1e-6, err_msg=k)
        else:
            np.testing.assert_allclose(a, e, rtol=rtol, atol=0, err_msg=k)


def assert_mlp_agree(actual, expected, *, rtol, n=MLP_N):
    assert actual["loss_final"].shape == (n,)
    assert actual["layer_grad_norm_init"].shape == (n, 4)
    for k in bench.MLP_METRICS:
        np.testing.assert_allclose(actual[k], expected[k], rtol=rtol, atol=0, err_msg=k)


@pytest.fixture(scope="module")
def torch():
    """torch imported the way the benchmark imports it (passive OpenMP waiting), or a skip."""
    module = harness._torch_or_none()
    if module is None:
        pytest.skip("torch is not installed")
    return module


@pytest.fixture(scope="module")
def neuron64():
    return bench.neuron_numpy(NEURON_N, NEURON_T, dtype="float64")


@pytest.fixture(scope="module")
def neuron32():
    return bench.neuron_numpy(NEURON_N, NEURON_T)


@pytest.fixture(scope="module")
def mlp_problem():
    return bench.mlp_problem(MLP_N)


@pytest.fixture(scope="module")
def mlp32(mlp_problem):
    return bench.mlp_numpy(MLP_N, MLP_T, problem=mlp_problem)


# --------------------------------------------------------------------------------------
# neuron


def test_neuron_grid_order_and_check():
    w, b = bench.neuron_grid(9)
    np.testing.assert_array_equal(w, [-6, -6, -6, 0, 0, 0, 6, 6, 6])  # w is the slow axis
    np.testing.assert_array_equal(b, [-6, 0, 6] * 3)
    with pytest.raises(ValueError, match="perfect square"):
        bench.neuron_grid(10)
    with pytest.raises(ValueError, match="steps"):
        bench.neuron_numpy(4, 0)


def test_neuron_numpy_metrics_by_hand():
    """Two neurons worked by hand: one that learns, one saturated at σ(12) ≈ 1."""
    out = bench.neuron_numpy(2, 300, init=(np.array([0.0, 6.0]), np.array([0.0, 6.0])), dtype="float64")
    # (0, 0): a = 1/2, L_0 = 1/8, σ' = 1/4 — not saturated, and it reaches L <= 0.01.
    assert out["saturated_init"][0] == 0 and out["steps_to_target"][0] > 0
    assert out["loss_final"][0] <= 0.01 and out["loss_min"][0] == pytest.approx(out["loss_final"][0])
    # (6, 6): z = 12, σ'(12) ≈ 6e-6 < 0.0025 — saturated, gradient ≈ 6e-6: small but not tiny,
    # the loss barely moves (a plateau from step 1) and the target is never reached.
    assert out["saturated_init"][1] == 1 and out["dead_init"][1] == 0
    assert out["steps_to_target"][1] == NEVER
    assert out["longest_plateau"][1] >= 250 and out["tiny_grad_steps"][1] == 0
    assert out["first_nonfinite"].tolist() == [NEVER, NEVER]
    z0 = 12.0
    a0 = 1 / (1 + math.exp(-z0))
    assert out["loss_min"][1] <= 0.5 * a0**2


def test_neuron_python_loop_matches_numpy_float64(neuron64):
    """The scalar reference and the vectorised code agree to rounding, integers exactly."""
    loop = bench.neuron_python_loop(NEURON_N, NEURON_T)
    assert_neuron_agree(loop, neuron64, rtol=1e-12, int_slack=0)


def test_neuron_numpy_float32_close_to_float64(neuron32, neuron64):
    assert neuron32["loss_final"].dtype == np.float32
    assert_neuron_agree(neuron32, neuron64, rtol=1e-3, int_slack=1)


def test_neuron_blocks_and_threads_do_not_change_results(neuron32):
    blocked = bench.neuron_numpy(NEURON_N, NEURON_T, block=1000, threads=2)
    for k in bench.NEURON_METRICS:
        np.testing.assert_array_equal(blocked[k], neuron32[k], err_msg=k)


@pytest.mark.optional
@pytest.mark.parametrize("impl", ["torch", "torch_vmap"])
def test_neuron_torch_matches(impl, torch, neuron32, neuron64):
    fn = getattr(bench, f"neuron_{impl}")
    assert_neuron_agree(fn(NEURON_N, NEURON_T, dtype="float64"), neuron64, rtol=1e-12, int_slack=0)
    assert_neuron_agree(fn(NEURON_N, NEURON_T), neuron32, rtol=1e-4, int_slack=1)


def test_neuron_lossjax_matches_numpy(neuron32):
    run = bench.lossjax_neuron(NEURON_N, NEURON_T)
    assert run.compile_time_s > 0 and run.run_time_s > 0
    assert_neuron_agree(run.result, neuron32, rtol=1e-4, int_slack=1)


# --------------------------------------------------------------------------------------
# mlp


def test_mlp_problem(mlp_problem):
    p = mlp_problem
    assert p.x.shape == (128, 2) and p.y.shape == (128,)
    assert set(np.unique(p.y)) == {0.0, 1.0}
    np.testing.assert_array_equal(p.y, (p.x[:, 0] * p.x[:, 1] < 0).astype(float))  # XOR of the signs
    assert [w.shape for w in p.weights] == [(MLP_N, 2, 16), (MLP_N, 16, 16), (MLP_N, 16, 16), (MLP_N, 16, 1)]
    assert all(np.all(b == 0) for b in p.biases)
    np.testing.assert_allclose(p.learning_rates[[0, -1]], [1e-2, 1.0])
    first = p.weights[1][0]
    assert 0.15 < np.std(first) < 0.35  # LeCun: std 1/√16 = 0.25
    sub = p.subset(np.array([1, 3]))
    assert sub.n_models == 2 and sub.learning_rates[1] == p.learning_rates[3]


def test_mlp_numpy_learns_and_does_not_mutate_problem(mlp_problem, mlp32):
    before = [w.copy() for w in mlp_problem.weights]
    out64 = bench.mlp_numpy(MLP_N, MLP_T, problem=mlp_problem, dtype="float64")
    for w, w0 in zip(mlp_problem.weights, before):
        np.testing.assert_array_equal(w, w0)
    assert_mlp_agree(mlp32, out64, rtol=1e-4)
    # Every model starts from the same init: the same loss and gradients at θ_0 ...
    np.testing.assert_allclose(mlp32["layer_grad_norm_init"], mlp32["layer_grad_norm_init"][:1].repeat(MLP_N, 0))
    # ... and a larger learning rate has gone further after 20 steps.
    assert np.all(np.diff(mlp32["loss_final"]) < 0)


def test_mlp_numpy_gradient_matches_finite_differences(mlp_problem):
    """The hand-written backward pass: the initial gradient norm of the output layer."""
    p = mlp_problem.subset(slice(0, 1))
    out = bench.mlp_numpy(1, 1, problem=p, dtype="float64")

    def loss(weights):
        q = p._replace(weights=weights, learning_rates=np.zeros(1))
        return bench.mlp_numpy(1, 1, problem=q, dtype="float64")["loss_final"][0]

    w = p.weights[-1]
    eps = 1e-6
    grad = np.zeros_like(w)
    for i in range(w.shape[1]):
        bumped = [v.copy() for v in p.weights]
        bumped[-1][0, i, 0] += eps
        up = loss(tuple(bumped))
        bumped[-1][0, i, 0] -= 2 * eps
        grad[0, i, 0] = (up - loss(tuple(bumped))) / (2 * eps)
    np.testing.assert_allclose(out["layer_grad_norm_init"][0, -1], np.linalg.norm(grad), rtol=1e-6)


def test_single_threaded_blas_sets_and_restores_openblas_threads():
    import ctypes
    import glob
    import os

    from lossjax.bench.blocks import single_threaded_blas

    libs = glob.glob(os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs", "*openblas*"))
    if not libs:
        pytest.skip("numpy's BLAS is not a bundled OpenBLAS")
    lib = ctypes.CDLL(libs[0])
    get = getattr(lib, "scipy_openblas_get_num_threads64_", None) or lib.openblas_get_num_threads
    before = get()
    with single_threaded_blas() as pinned:
        assert pinned and get() == 1
    assert get() == before


def test_mlp_python_loop_and_threads_match_numpy(mlp_problem, mlp32):
    assert_mlp_agree(bench.mlp_python_loop(MLP_N, MLP_T, problem=mlp_problem), mlp32, rtol=1e-6)
    threaded = bench.mlp_numpy(MLP_N, MLP_T, problem=mlp_problem, block=3, threads=2)
    assert_mlp_agree(threaded, mlp32, rtol=1e-6)


@pytest.mark.optional
@pytest.mark.parametrize("impl", ["torch", "torch_vmap"])
def test_mlp_torch_matches(impl, torch, mlp_problem, mlp32):
    fn = getattr(bench, f"mlp_{impl}")
    out64 = bench.mlp_numpy(MLP_N, MLP_T, problem=mlp_problem, dtype="float64")
    assert_mlp_agree(fn(MLP_N, MLP_T, problem=mlp_problem, dtype="float64"), out64, rtol=1e-10)
    assert_mlp_agree(fn(MLP_N, MLP_T, problem=mlp_problem), mlp32, rtol=1e-4)


def test_mlp_lossjax_matches_numpy(mlp32):
    run = bench.lossjax_mlp(MLP_N, MLP_T)
    assert_mlp_agree(run.result, mlp32, rtol=1e-4)


# --------------------------------------------------------------------------------------
# mlp_wide


def test_mlp_specs_flops_by_hand():
    """Matrix-product flops of a model-step, counted by hand: 6 · samples · Σ fan_in · fan_out."""
    assert bench.MLP_SPECS == {"mlp": bench.MLP, "mlp_wide": bench.MLP_WIDE}
    assert bench.MLP.flops_per_model_step() == 6 * 128 * (2 * 16 + 16 * 16 + 16 * 16 + 16 * 1) == 430_080
    assert bench.MLP_WIDE.flops_per_model_step() == 6 * 256 * (8 * 64 + 64 * 64 + 64 * 64 + 64 * 1) == 13_467_648


def test_mlp_wide_problem():
    """8 Gaussian inputs labelled by the sign of a random tanh teacher (16 hidden units), in numpy."""
    from lossjax.data import teacher_network

    n = 3
    p = bench.mlp_problem(n, bench.MLP_WIDE)
    assert p.x.shape == (256, 8) and p.y.shape == (256,)
    assert 0.3 < np.std(p.x) < 3 and abs(np.mean(p.x)) < 0.2  # N(0, 1) inputs
    w0, w1 = teacher_network(0, depth=1, width=16, n_features=8, classes=2)
    np.testing.assert_array_equal(p.y, (np.tanh(p.x @ w0) @ w1 > 0)[:, 0].astype(float))
    assert 0.3 < p.y.mean() < 0.7
    assert [w.shape for w in p.weights] == [(n, 8, 64), (n, 64, 64), (n, 64, 64), (n, 64, 1)]
    assert [b.shape for b in p.biases] == [(n, 64), (n, 64), (n, 64), (n, 1)]
    assert 0.1 < np.std(p.weights[1][0]) < 0.15  # LeCun: std 1/√64 = 0.125
    assert 0.25 < np.std(p.weights[0][0]) < 0.45  # 1/√8 = 0.354
    np.testing.assert_allclose(p.learning_rates, np.geomspace(1e-2, 1.0, n))
    sweep = bench.mlp_sweep(n, 5, spec=bench.MLP_WIDE)
    assert sweep["model"]["width"] == [64] and sweep["model"]["depth"] == [3]
    assert sweep["data"] == {"dataset": "teacher", "seed": 0, "params": {
        "n_train": 256, "n_features": 8, "classes": 2, "depth": 1, "width": 16, "n_test": 16}}


def test_mlp_problem_refuses_data_of_another_width():
    spec = dataclasses.replace(bench.MLP_WIDE, n_inputs=2)
    with pytest.raises(ValueError, match="8 inputs"):
        bench.mlp_problem(2, spec)


def test_cli_quick_mlp_wide_lossjax_matches_numpy(tmp_path, monkeypatch):
    """``lossjax bench --quick --workload mlp_wide``: its rows, the lossjax row against numpy
    (float32, written out by hand) and each row's share of the sgemm peak from the hand count."""
    runs = []

    def recorded_lossjax_mlp(*args, **kwargs):
        runs.append(real_lossjax_mlp(*args, **kwargs))
        return runs[-1]

    real_lossjax_mlp = harness.lossjax_mlp
    monkeypatch.setattr(harness, "lossjax_mlp", recorded_lossjax_mlp)
    json_path = tmp_path / "wide.json"
    assert bench.main(["--quick", "--workload", "mlp_wide", "--json", str(json_path)]) == 0
    doc = json.loads(json_path.read_text())
    n, steps, n_loop = bench.QUICK["mlp_wide"]
    assert doc["sizes"] == {"mlp_wide": {"models": n, "steps": steps, "loop_models": n_loop}}
    rows = {r["implementation"]: r for r in doc["rows"]}
    assert {r["workload"] for r in doc["rows"]} == {"mlp_wide"}
    assert set(rows) == {"numpy", "lossjax (auto)", "jax jit(vmap(scan)), no metrics", "torch",
                         "torch.func.vmap", "python loop"}  # fmt: skip
    assert doc["compile_seconds"] == {} and doc["grid_compile"] == {}
    (run,) = runs
    expected = bench.mlp_numpy(n, steps, problem=bench.mlp_problem(n, bench.MLP_WIDE))
    assert_mlp_agree(run.result, expected, rtol=1e-4, n=n)
    peak = max(doc["sgemm_gflops"].values())
    for impl, r in rows.items():
        if r["seconds"] is None:  # torch missing
            continue
        assert r["max_rel_diff"] < 1e-3, impl
        flops = 6 * 256 * (8 * 64 + 64 * 64 + 64 * 64 + 64 * 1)
        assert r["peak_share"] == pytest.approx(r["models"] * r["steps"] / r["seconds"] * flops / 1e9 / peak), impl


def test_cli_refuses_unknown_workload(capsys):
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["--workload", "cnn"])
    assert exit_info.value.code == 2
    assert "mlp_wide" in capsys.readouterr().err  # the allowed values are named


# --------------------------------------------------------------------------------------
# the harness


def test_main_quick_writes_json_and_figure(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(bench.QUICK, "neuron", (10**2, 5, 3**2))
    monkeypatch.setitem(bench.QUICK, "mlp", (4, 3, 2))
    monkeypatch.setitem(bench.QUICK, "mlp_wide", (2, 3, 1))

    def fake_lossjax_mlp(n, steps, *, impl, spec):  # the tests above run the engine; this saves 3 compiles
        result = bench.mlp_numpy(n, steps, problem=bench.mlp_problem(n, spec))
        return bench.EngineRun(result, compile_time_s=1.0, run_time_s=0.01, wall_time_s=1.1, devices=1)

    monkeypatch.setattr(harness, "lossjax_mlp", fake_lossjax_mlp)
    json_path, figure_path = tmp_path / "bench.json", tmp_path / "bench.png"
    assert bench.main(["--quick", "--json", str(json_path), "--figure", str(figure_path)]) == 0
    doc = json.loads(json_path.read_text())
    assert figure_path.stat().st_size > 0
    assert doc["quick"] is True
    assert {"cpu_count", "numpy", "jax", "jax_backend", "torch"} <= set(doc["machine"])
    rows = {(r["workload"], r["implementation"]): r for r in doc["rows"]}
    expected = {"numpy", "torch", "torch.func.vmap", "python loop", "jax jit(vmap(scan)), no metrics"}
    assert {i for w, i in rows if w == "neuron"} == expected | {"lossjax"}
    assert {i for w, i in rows if w == "mlp"} == expected | {"lossjax (auto)", "lossjax (scan)", "lossjax (flax)"}
    assert {i for w, i in rows if w == "mlp_wide"} == expected | {"lossjax (auto)"}
    assert doc["sgemm_gflops"]["numpy"] > 0 and doc["sgemm_gflops"]["jax"] > 0
    assert all(r["peak_share"] > 0 for (w, _), r in rows.items() if w.startswith("mlp") and r["seconds"])
    assert all(r["peak_share"] is None for (w, _), r in rows.items() if w == "neuron")
    for (workload, impl), r in rows.items():
        if r["seconds"] is None:  # torch missing
            assert impl.startswith("torch") and "not installed" in r["note"]
            continue
        assert r["model_steps_per_s"] == pytest.approx(r["models"] * r["steps"] / r["seconds"])
        assert r["speedup"] > 0
        assert r["max_rel_diff"] < 1e-3, (workload, impl)  # every row computed the same numbers
    assert rows[("neuron", "lossjax")]["compile_seconds"] > 0
    assert rows[("neuron", "python loop")]["models"] == 9
    assert "model-steps/s" in capsys.readouterr().out


def test_run_bench_rejects_unknown_workload():
    with pytest.raises(ValueError, match="workloads"):
        bench.run_bench(quick=True, workloads=("cnn",), verbose=False)


def test_run_bench_without_torch_skips_its_rows(monkeypatch):
    monkeypatch.setitem(bench.QUICK, "neuron", (4**2, 3, 2**2))
    monkeypatch.setattr(harness, "_torch_or_none", lambda: None)
    doc = bench.run_bench(quick=True, workloads=("neuron",), verbose=False)
    rows = {r["implementation"]: r for r in doc["rows"]}
    assert set(rows) == {"numpy", "lossjax", "jax jit(vmap(scan)), no metrics", "torch", "torch.func.vmap", "python loop"}
    for impl in ("torch", "torch.func.vmap"):
        assert rows[impl]["seconds"] is None and rows[impl]["speedup"] is None
        assert "not installed" in rows[impl]["note"]
    assert doc["machine"]["torch"] is None
    assert rows["numpy"]["speedup"] > 0
