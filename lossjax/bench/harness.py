"""``lossjax bench``: lossjax against hand-written baselines, timed side by side in one run.

Implementations (rows) of each workload of :mod:`lossjax.bench.workloads`: ``lossjax`` (the
engine, :func:`lossjax.run_sweep`, run on the workload's sweep dict); ``numpy``, ``torch``,
``torch.func.vmap`` (when torch is installed, an optional extra) and ``python loop`` (timed
on a few hundred models and reported per model-step), from
:mod:`lossjax.bench.neuron_baselines` and :mod:`lossjax.bench.mlp_baselines`.

Every baseline is a plain function ``f(n_models, steps, ...) -> dict`` of per-model numpy
arrays; the harness (:func:`run_bench`) times them and computes model-steps per second and
the lossjax speed-up over each row. Timings are wall clock after a warm-up call on a small
size; for lossjax the compile time is reported separately (the engine's ``compile_time_s``).
The table and the figure come from :mod:`lossjax.bench.figure`.

    lossjax bench --quick                   # seconds: 10^4 neurons × 50 steps, 64 MLPs × 20, 16 wide × 20
    lossjax bench --json results/bench/bench.json --figure results/bench/bench.png
    lossjax bench --workload mlp_wide       # one workload (the option repeats)
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
import os
import platform
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

from lossjax.host import cpu_cores

from lossjax.bench.jax_baselines import mlp_bare_jax, neuron_bare_jax, sgemm_gflops
from lossjax.bench.figure import Row, format_table, plot_bench
from lossjax.bench.mlp_baselines import mlp_numpy, mlp_python_loop, mlp_torch, mlp_torch_vmap
from lossjax.bench.neuron_baselines import neuron_numpy, neuron_python_loop, neuron_torch, neuron_torch_vmap
from lossjax.bench.workloads import (
    FULL,
    MLP,
    MLP_METRICS,
    MLP_SPECS,
    NEURON_METRICS,
    QUICK,
    WORKLOADS,
    MLPSpec,
    mlp_problem,
    mlp_sweep,
    neuron_grid,
    neuron_sweep,
)

__all__ = ["EngineRun", "Row", "lossjax_mlp", "lossjax_neuron", "machine_info", "main", "run_bench"]


# --------------------------------------------------------------------------------------
# The lossjax rows: the workloads' sweeps through lossjax.run_sweep
# --------------------------------------------------------------------------------------


class EngineRun(NamedTuple):
    """What a lossjax row yields: per-model results and the engine's own timings."""

    result: dict[str, np.ndarray]
    compile_time_s: float
    run_time_s: float
    wall_time_s: float
    devices: int


def _run_engine(sweep: dict, fields: Sequence[str], model_dims: tuple[str, ...]) -> EngineRun:
    from lossjax import run_sweep

    start = time.perf_counter()
    ds = run_sweep(sweep)
    wall = time.perf_counter() - start
    result = {}
    for field in fields:
        var = ds[field].transpose(..., *model_dims, *(("layer",) if "layer" in ds[field].dims else ()))
        n = math.prod(ds.sizes[d] for d in model_dims)
        result[field] = var.values.reshape((n, -1) if "layer" in var.dims else (n,))
    attrs = ds.attrs
    return EngineRun(result, float(attrs["compile_time_s"]), float(attrs["run_time_s"]), wall, len(json.loads(attrs["devices"])))


def engine_block(sweep: dict) -> int:
    """Runs per vmapped block of the engine's (first) program for ``sweep`` on this process's devices:
    the bare ``jit(vmap(scan))`` rows use the same, so that they differ from the engine only in what
    a step computes."""
    from lossjax import config, runner

    return runner.plan_sweep(config.parse_sweep(sweep)).blocks[0]


def lossjax_neuron(n_models: int, steps: int) -> EngineRun:
    """The neuron workload through :func:`lossjax.run_sweep`, models in :func:`neuron_grid` order."""
    return _run_engine(neuron_sweep(n_models, steps), NEURON_METRICS, ("w0", "b0"))


def lossjax_mlp(n_models: int, steps: int, *, impl: str = "auto", spec: MLPSpec = MLP) -> EngineRun:
    """An MLP workload (default ``mlp``) through :func:`lossjax.run_sweep` (``impl``: the
    engine's ``[model] impl``, e.g. ``"auto"``, ``"scan"``, ``"flax"``)."""
    return _run_engine(mlp_sweep(n_models, steps, impl=impl, spec=spec), MLP_METRICS, ("learning_rate",))


# --------------------------------------------------------------------------------------
# Timing every row
# --------------------------------------------------------------------------------------


def _torch_or_none():
    # libgomp's default spin-waiting made 2-thread torch 25× slower than 1 thread on a 2-vCPU
    # VM; passive waiting recovers the 1-thread speed. Read once, when torch is first imported.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        import torch
    except ImportError:
        return None
    return torch


def torch_device(torch) -> str:
    """Where the torch rows run: on the GPU when jax's devices are GPUs and torch sees one, else the CPU
    (so that both sides of a row are on the same hardware)."""
    import jax

    return "cuda" if jax.default_backend() == "gpu" and torch.cuda.is_available() else "cpu"


def _load_average() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):  # pragma: no cover (Windows)
        return None


def _timed(fn: Callable[[], dict]) -> tuple[dict, float]:
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def _max_rel_diff(result: dict, reference: dict) -> float:
    a = np.asarray(result["loss_final"], np.float64)
    b = np.asarray(reference["loss_final"], np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), np.finfo(np.float32).tiny)))


def _bench_workload(workload: str, n: int, steps: int, n_loop: int, *, progress: Callable[[str], None]) -> list[Row]:
    """Times every implementation of one workload; see :func:`run_bench`."""
    if workload == "neuron":
        w0, b0 = neuron_grid(n)
        side, k = math.isqrt(n), math.isqrt(n_loop)
        picks = np.unique(np.linspace(0, side - 1, k).round().astype(int))
        loop_index = (picks[:, None] * side + picks[None, :]).ravel()  # a coarse sub-grid of the grid
        full = {"init": (w0, b0)}
        loop = {"init": (w0[loop_index], b0[loop_index])}
        warm = (16, {"init": neuron_grid(16)})
        numpy_fn, torch_fn, vmap_fn, loop_fn = neuron_numpy, neuron_torch, neuron_torch_vmap, neuron_python_loop
        engines = [("lossjax", lambda: lossjax_neuron(n, steps))]
        bare = lambda: neuron_bare_jax(n, steps, init=(w0, b0), block=engine_block(neuron_sweep(n, steps)))  # noqa: E731
    else:
        spec = MLP_SPECS[workload]
        problem = mlp_problem(n, spec)
        loop_index = np.unique(np.linspace(0, n - 1, min(n_loop, n)).round().astype(int))  # spans the learning rates
        full = {"problem": problem}
        loop = {"problem": problem.subset(loop_index)}
        warm = (2, {"problem": problem.subset(slice(0, 2))})
        numpy_fn = functools.partial(mlp_numpy, block=max(1, NUMPY_BLOCK_FLOATS // (spec.n_train * spec.width)))
        torch_fn, vmap_fn, loop_fn = mlp_torch, mlp_torch_vmap, mlp_python_loop
        engines = [(f"lossjax ({impl})", lambda impl=impl: lossjax_mlp(n, steps, impl=impl, spec=spec))
                   for impl in MLP_IMPLS[workload]]
        bare = lambda: mlp_bare_jax(n, steps, problem=problem, block=engine_block(mlp_sweep(n, steps, spec=spec)))  # noqa: E731

    def baseline(label, fn, kwargs, models, note=""):
        progress(f"{workload}: {label}")
        fn(warm[0], 2, **warm[1])  # first-call costs (imports, thread pools, allocator) off the clock
        result, seconds = _timed(lambda: fn(models, steps, **kwargs))
        rows.append(Row(workload, label, models, steps, seconds, note=note))
        return result

    rows: list[Row] = []
    cores = cpu_cores()
    numpy_threaded = lambda *args, **kwargs: numpy_fn(*args, threads=cores, **kwargs)  # noqa: E731
    reference = baseline("numpy", numpy_threaded, full, n, note=f"float32, blocks of models on {cores} threads")
    rows[-1].max_rel_diff = 0.0
    for label, engine in engines:
        progress(f"{workload}: {label}")
        run = engine()
        rows.append(Row(workload, label, n, steps, run.run_time_s, run.compile_time_s,
                        note=f"float32 on {run.devices} XLA device(s); run_sweep wall {run.wall_time_s:.2f} s",
                        max_rel_diff=_max_rel_diff(run.result, reference)))  # fmt: skip
    progress(f"{workload}: bare jax")
    result, compile_s, run_s = bare()
    rows.append(Row(workload, "jax jit(vmap(scan)), no metrics", n, steps, run_s, compile_s,
                    note="the same maths, in lossjax's blocks, sharded like it; only the final loss",
                    max_rel_diff=_max_rel_diff(result, reference)))  # fmt: skip
    torch = _torch_or_none()
    if torch is None:
        for label in ("torch", "torch.func.vmap"):
            note = "skipped: torch is not installed (pip install 'lossjax[bench]')"
            rows.append(Row(workload, label, n, steps, None, note=note))
    else:
        torch.set_num_threads(cores)
        device = torch_device(torch)
        where = f"{torch.get_num_threads()} threads" if device == "cpu" else torch.cuda.get_device_name()
        for label, fn in (("torch", torch_fn), ("torch.func.vmap", vmap_fn)):
            result = baseline(label, functools.partial(fn, device=device), full, n, note=f"float32, {where}")
            rows[-1].max_rel_diff = _max_rel_diff(result, reference)
    result = baseline("python loop", loop_fn, loop, len(loop_index),
                      note=f"timed on {len(loop_index)} models, rate per model-step extrapolated"
                      + (" (Python floats: float64)" if workload == "neuron" else " (float32)"))  # fmt: skip
    rows[-1].max_rel_diff = _max_rel_diff(result, {k: v[loop_index] for k, v in reference.items()})

    engine_rate = next(r.model_steps_per_s for r in rows if r.implementation.startswith("lossjax"))
    for row in rows:
        if row.model_steps_per_s:
            row.speedup = engine_rate / row.model_steps_per_s
    return rows


def machine_info() -> dict[str, Any]:
    """Where the benchmark ran: CPU count, library versions, JAX backend."""
    import jax

    torch = _torch_or_none()
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": cpu_cores(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "jax": jax.__version__,
        "jax_backend": jax.default_backend(),
        "jax_devices": [str(d) for d in jax.devices()],
        "torch": torch.__version__ if torch is not None else None,
        "torch_threads": torch.get_num_threads() if torch is not None else None,
        "torch_device": torch_device(torch) if torch is not None else None,
        "load_average": _load_average(),  # other processes competing for the cores, when > 0
    }


#: The numpy MLP rows train blocks of models whose hidden activations hold this many floats:
#: 64 models of the ``mlp`` workload (128 samples × 16 units), 8 of ``mlp_wide`` (256 × 64).
NUMPY_BLOCK_FLOATS = 64 * 128 * 16
#: Side of the square float32 products that measure the matrix-product peak, on a CPU and on an
#: accelerator (a GPU needs larger ones to reach its peak).
SGEMM_SIZE = {"cpu": 2048, "accelerator": 8192}


#: How the MLP is written, for the lossjax rows of each MLP workload (the first is the default,
#: the row the speed-ups are relative to).
MLP_IMPLS = {"mlp": ("auto", "scan", "flax"), "mlp_wide": ("auto",)}
#: The workload whose sweep the compile-time measurements compile (:func:`compile_seconds`).
COMPILE_WORKLOAD = "mlp"
#: Depths whose compile time the ``compile`` workload measures.
COMPILE_DEPTHS = (1, 2, 5, 10, 20)


def compile_seconds(depths: Sequence[int] = COMPILE_DEPTHS, impls: Sequence[str] = ("scan", "pytree")) -> dict:
    """Seconds to compile the engine's program for the ``mlp`` workload at each depth and impl.

    Each program is a sweep of 2 learning rates × 1 step (compile time does not depend on either).
    """
    from lossjax import run_sweep

    out: dict[str, dict[int, float]] = {}
    for impl in impls:
        out[impl] = {}
        for depth in depths:
            sweep = mlp_sweep(2, 1, impl=impl)
            sweep["model"]["depth"] = [depth]
            out[impl][depth] = float(run_sweep(sweep).attrs["compile_time_s"])
    return out


#: The architecture grid of the compile workload: every (depth, width) pair, trained by one sweep.
GRID_DEPTHS, GRID_WIDTHS = tuple(range(1, 21)), (2, 4, 8, 16, 32)


def grid_compile_seconds(depths: Sequence[int] = GRID_DEPTHS, widths: Sequence[int] = GRID_WIDTHS,
                         programs: str = "auto") -> dict:
    """Compile seconds of the benchmark MLP over a depth × width architecture grid, as one sweep
    (2 learning rates × 1 step per architecture) with ``[run] programs = programs``: the
    compiled programs the runner makes for it, and their total compile time."""
    from lossjax import run_sweep

    sweep = mlp_sweep(2, 1)
    sweep["model"].update(depth=list(depths), width=list(widths))
    sweep["run"] = {**sweep.get("run", {}), "programs": programs}
    ds = run_sweep(sweep)
    return {"architectures": len(depths) * len(widths), "programs": ds.attrs["programs"],
            "compile_time_s": float(ds.attrs["compile_time_s"]), "wall_time_s": float(ds.attrs["wall_time_s"])}


def run_bench(
    quick: bool = False,
    json_path: str | None = None,
    figure_path: str | None = None,
    workloads: Sequence[str] = WORKLOADS,
    *,
    verbose: bool = True,
) -> dict[str, Any]:
    """Times lossjax and every baseline on each workload, prints a table, writes JSON and a figure.

    lossjax uses the XLA devices that exist when jax first computes: ``lossjax bench`` and
    ``import lossjax`` expose one per CPU core (:func:`lossjax.host.use_all_cpu_cores`).
    numpy and torch use every core too.

    Args:
      quick: a smoke run of a few seconds (:data:`~lossjax.bench.workloads.QUICK` sizes) instead of
        :data:`~lossjax.bench.workloads.FULL`.
      json_path: where to write the results as JSON (machine info included); None: nowhere.
      figure_path: where to save the bar chart (PNG, PDF, ... by extension); None: no figure.
      workloads: any of :data:`~lossjax.bench.workloads.WORKLOADS` (``"neuron"``, ``"mlp"``,
        ``"mlp_wide"``); the compile times are measured with ``"mlp"``, and not with ``quick``.
      verbose: print progress and the table to stdout.
    Returns:
      The JSON document as a dict: ``machine``, ``quick``, ``sizes``, ``rows``.
    """
    unknown = [w for w in workloads if w not in WORKLOADS]
    if unknown or not workloads:
        raise ValueError(f"workloads must be some of {WORKLOADS}, got {tuple(workloads)}")
    sizes = QUICK if quick else FULL
    say = print if verbose else (lambda _: None)
    load_before = _load_average()
    rows: list[Row] = []
    for workload in workloads:
        n, steps, n_loop = sizes[workload]
        rows += _bench_workload(workload, n, steps, n_loop, progress=lambda s: say(f"timing {s} ..."))
    say("timing compile and sgemm ...")
    compiles = compile_seconds() if COMPILE_WORKLOAD in workloads and not quick else {}
    for impl, by_depth in compiles.items():
        say(f"compile, MLP {impl}: " + ", ".join(f"depth {d}: {s:.2f} s" for d, s in by_depth.items()))
    grid = grid_compile_seconds() if compiles else {}
    if grid:
        say(f"compile, MLP grid of {grid['architectures']} architectures (depth 1-20 x width {GRID_WIDTHS}): "
            f"{grid['compile_time_s']:.1f} s, {grid['programs']}")
    import jax

    from lossjax.programs import hardware

    sgemm_size = 512 if quick else SGEMM_SIZE[hardware(jax.default_backend())]
    peak = sgemm_gflops(sgemm_size)
    say(f"float32 matrix-product peak ({sgemm_size}² sgemm): numpy {peak['numpy']:.0f} GFLOP/s, jax {peak['jax']:.0f} GFLOP/s")
    for r in rows:
        if r.workload in MLP_SPECS and r.model_steps_per_s:
            gflops = r.model_steps_per_s * MLP_SPECS[r.workload].flops_per_model_step() / 1e9
            r.peak_share = gflops / max(peak.values())
    say(format_table(rows))
    from lossjax.io.results import peak_rss_mb

    say(f"peak resident memory of this process (all rows): {peak_rss_mb():.0f} MiB")
    doc = {
        "machine": {**machine_info(), "load_average_before": load_before, "peak_rss_mb": peak_rss_mb()},
        "quick": quick,
        "sizes": {w: dict(zip(("models", "steps", "loop_models"), sizes[w])) for w in workloads},
        "rows": [{**dataclasses.asdict(r), "model_steps_per_s": r.model_steps_per_s} for r in rows],
        "compile_seconds": compiles,
        "grid_compile": grid,
        "sgemm_gflops": peak,
    }
    if json_path:
        with open(json_path, "w") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")
    if figure_path:
        plot_bench(rows, figure_path)
    return doc


def main(argv: Sequence[str] | None = None) -> int:
    """``lossjax bench``: parses the options and runs :func:`run_bench`; see the module docstring."""
    parser = argparse.ArgumentParser(prog="lossjax bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 10^4 neurons × 50 steps, 64 MLPs × 20 steps, 16 wide MLPs × 20 steps")
    parser.add_argument("--json", metavar="FILE", help="write the results (and machine info) as JSON")
    parser.add_argument("--figure", metavar="FILE", help="save a bar chart of model-steps/s")
    parser.add_argument("--workload", action="append", choices=WORKLOADS, help="run only this workload (repeatable)")
    args = parser.parse_args(argv)
    run_bench(quick=args.quick, json_path=args.json, figure_path=args.figure, workloads=tuple(args.workload or WORKLOADS))
    return 0
