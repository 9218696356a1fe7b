"""Runs a sweep: one compiled program per static combination, the grid in chunks, sharded.

For each combination of static axis values the training function of :mod:`lossjax.train` is
compiled once, over a chunk of runs, and every chunk of the batched grid goes through that one
executable (the last chunk is padded to the same size, so it does not recompile). Inside the
executable, each device takes its shard of the chunk (``shard_map`` over a ``grid`` mesh axis
when several devices are visible) and trains it in blocks: ``lax.map(train, runs,
batch_size=block)``, which is ``vmap(train)`` over ``block`` runs at a time. Blocks are sized so
that one block's training state stays in the CPU cache across the steps of the scan (about
:data:`BLOCK_BYTES`); on 10^6 single neurons this is 2.8x faster than one vmap over the whole
chunk, whose state streams through memory at every step. Results come back to the host per chunk and are assembled into a labelled
:class:`xarray.Dataset` by :mod:`lossjax.results`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from lossjax.io import results as results_lib
from lossjax import config as sweep_lib
from lossjax.core import train as train_lib

#: Upper bound on runs per chunk (keeps progress and host transfers granular).
MAX_CHUNK = 1 << 20
#: Largest trajectory store a sweep may ask for (host memory for ``traj_*``, float64 worst case).
TRAJECTORY_LIMIT_BYTES = 4 << 30
#: Working-set budget of one vmapped block of runs, by kind of model, measured on a 2-core CPU
#: (``bytes_per_run`` is a generous estimate, so these are larger than the cache they target).
#: Neurons: 16 MiB blocks (~14,000 neurons) ran 2.8x faster than one vmap over 10^6 runs. MLPs
#: (depth 3, 200 steps; model-steps/s by block size): width 16 / 128 samples: 8: 3.04e4,
#: 16: 3.17e4, 32: 2.97e4, 64: 2.86e4; width 64 / 256 samples: 1: 4.68e3, 2: 4.90e3, 4: 4.72e3,
#: 8: 4.44e3, 16: 2.66e3; a 4 MiB budget gives blocks of 16 and 2 there.
BLOCK_BYTES = {"neuron": 16 << 20, "mlp": 4 << 20}


@dataclasses.dataclass
class CombinationResult:
    """Host (numpy) results of one static combination, flat over the batched grid."""

    combo: dict[str, Any]
    config: train_lib.TrainConfig
    summary: dict[str, np.ndarray]
    trajectory: dict[str, np.ndarray] | None
    compile_time_s: float
    run_time_s: float


def bytes_per_run(config: train_lib.TrainConfig, n_train: int) -> int:
    """A generous estimate of device memory per run (parameters, optimiser, activations, records)."""
    mc = config.model
    itemsize = max(jnp.dtype(config.jnp_dtype).itemsize, 4)
    n_params = sum(fi * fo + fo for fi, fo in zip(mc.fan_ins, mc.layer_sizes))
    batch = config.batch_size or n_train
    units = sum(mc.layer_sizes)
    records = (config.steps // config.record_every + 1) if config.record_every else 0
    per_step = 8 * n_params + 8 * batch * (units + mc.n_inputs)
    if config.estimator == "score_function":
        per_step += 4 * config.score_samples * batch * mc.n_outputs
    return itemsize * (per_step + records * (16 + 6 * mc.n_layers)) + 1024


def block_size(config: train_lib.TrainConfig, n_train: int, per_device: int) -> int:
    """Runs per vmapped block.

    MLPs: the largest power of two within :data:`BLOCK_BYTES`, from the model's shape alone: a
    run is computed in the same vmapped shape whatever else is in the grid (XLA's matrix
    products on CPU round differently for different batch shapes, and training amplifies it).
    Neurons compute elementwise, bitwise the same in any block, so their block also shrinks to
    a small grid (``per_device`` runs per device).
    """
    fits = max(1, BLOCK_BYTES[config.model.kind] // bytes_per_run(config, n_train))
    fixed = 1 << (fits.bit_length() - 1)
    return max(1, min(per_device, fixed)) if config.model.kind == "neuron" else fixed


def choose_chunk(
    n_runs: int, config: train_lib.TrainConfig, n_train: int, memory_mb: float, n_devices: int, chunk_size: int = 0
) -> tuple[int, int]:
    """(runs per compiled call, runs per vmapped block).

    The block is chosen by :func:`block_size`. A chunk fits ``memory_mb``, holds at most :data:`MAX_CHUNK` runs, and is a
    multiple of ``n_devices × block``; chunks are balanced so that the padding of the last one
    is small.
    """
    per_run = bytes_per_run(config, n_train)
    if chunk_size:
        largest = chunk_size
    else:
        largest = max(1, min(int(memory_mb * 2**20 // per_run), MAX_CHUNK))
    n_chunks = math.ceil(n_runs / largest)
    per_device = math.ceil(math.ceil(n_runs / n_chunks) / n_devices)
    block = block_size(config, n_train, per_device)
    per_device = math.ceil(per_device / block) * block
    return per_device * n_devices, block


class Compiled:
    """``jit(vmap(train))`` for one static combination and chunk size, compiled ahead of time."""

    def __init__(
        self, config: train_lib.TrainConfig, data: train_lib.Data, chunk: int, block: int, devices: Sequence[jax.Device]
    ):
        self.config = config
        self.chunk = chunk
        self.block = block
        self.devices = tuple(devices)
        train_one = train_lib.make_train(config)

        def train_shard(runs, data):
            return jax.lax.map(lambda run: train_one(run, data), runs, batch_size=block)

        if len(self.devices) > 1:
            mesh = Mesh(np.asarray(self.devices), ("grid",))
            self.run_sharding = NamedSharding(mesh, PartitionSpec("grid"))
            self.data_sharding = NamedSharding(mesh, PartitionSpec())
            train_chunk = jax.shard_map(
                train_shard,
                mesh=mesh,
                in_specs=(PartitionSpec("grid"), PartitionSpec()),
                out_specs=PartitionSpec("grid"),
                check_vma=False,  # the scan carries start from constants; every run is independent
            )
        else:
            self.run_sharding = self.data_sharding = jax.sharding.SingleDeviceSharding(self.devices[0])
            train_chunk = train_shard
        jitted = jax.jit(
            train_chunk,
            in_shardings=(self.run_sharding, self.data_sharding),
            out_shardings=self.run_sharding,
        )
        self.data = jax.device_put(data, self.data_sharding)
        example = run_inputs_struct(config, chunk, self.run_sharding)
        start = time.perf_counter()
        self.executable = jitted.lower(example, self.data).compile()
        self.compile_time_s = time.perf_counter() - start

    def __call__(self, runs: dict[str, np.ndarray]):
        mdtype = self.config.metric_dtype
        inputs = train_lib.RunInputs(
            **{
                k: np.asarray(v, np.int32 if k in ("seed", "init_scheme") else mdtype)
                for k, v in runs.items()
            }
        )
        inputs = jax.device_put(inputs, self.run_sharding)
        return self.executable(inputs, self.data)


def run_inputs_struct(config: train_lib.TrainConfig, chunk: int, sharding) -> train_lib.RunInputs:
    fields = {}
    for name in train_lib.RunInputs._fields:
        dtype = jnp.int32 if name in ("seed", "init_scheme") else config.metric_dtype
        fields[name] = jax.ShapeDtypeStruct((chunk,), dtype, sharding=sharding)
    return train_lib.RunInputs(**fields)


def to_data(dataset, dtype) -> train_lib.Data:
    """The dataset's arrays in the run's dtype."""
    return train_lib.Data(*(jnp.asarray(a, dtype) for a in (dataset.x_train, dataset.y_train, dataset.x_test, dataset.y_test)))


@contextlib.contextmanager
def _precision(dtype: str):
    if dtype == "float64":
        with jax.enable_x64(True):
            yield
    else:
        yield


class _Progress:
    """A tqdm bar over chunks (stderr), or nothing."""

    def __init__(self, total: int, enabled: bool, description: str):
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=description, unit="chunk", file=sys.stderr, dynamic_ncols=True)

    def status(self, text: str) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(text, refresh=True)

    def advance(self) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run_sweep(
    spec: sweep_lib.Sweep | dict | str,
    *,
    devices: Sequence[jax.Device] | None = None,
    chunk_size: int | None = None,
    progress: bool = False,
    on_combination: Callable[[CombinationResult], None] | None = None,
):
    """Trains every run of a sweep and returns the labelled results.

    Args:
      spec: a :class:`~lossjax.sweep.Sweep`, a sweep dict, or the path of a TOML file.
      devices: devices to shard the run axis over (default: all of the default backend).
      chunk_size: runs per compiled call (default: the sweep's ``[run].chunk_size`` or sized
        from its memory budget).
      progress: show a progress bar with an ETA on stderr.
      on_combination: called with each combination's host results as they complete.

    Returns:
      An :class:`xarray.Dataset` (see :mod:`lossjax.results`).
    """
    if isinstance(spec, str):
        spec = sweep_lib.load_sweep(spec)
    sweep = sweep_lib.parse_sweep(spec)
    if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 0):
        raise sweep_lib.SweepError(f"chunk_size must be an integer >= 0 (0: sized from memory), got {chunk_size!r}")
    devices = tuple(devices) if devices is not None else tuple(jax.devices())
    dataset = sweep.make_dataset()
    n_train, n_inputs = dataset.x_train.shape
    n_outputs = dataset.y_train.shape[1]
    if any(a.name == "target" for a in sweep.axes) and n_outputs != 1:
        raise sweep_lib.SweepError(f"[data].target replaces binary targets, but dataset {sweep.dataset!r} has {n_outputs} outputs")
    grid = sweep_lib.batched_grid(sweep)
    n_runs = len(grid["seed"])
    combos = sweep.static_combinations()
    configs = [sweep.train_config(c, n_inputs, n_outputs) for c in combos]
    if sweep.record_every:
        records = sum(n_runs * (cfg.steps // cfg.record_every + 1) * (10 + 6 * cfg.model.n_layers) for cfg in configs)
        if records * 8 > TRAJECTORY_LIMIT_BYTES:
            raise sweep_lib.SweepError(
                f"{sweep.name}: [train].record_every = {sweep.record_every} would keep about "
                f"{records * 8 / 2**30:.1f} GiB of trajectories for {n_runs * len(configs):,} runs (limit "
                f"{TRAJECTORY_LIMIT_BYTES / 2**30:.0f} GiB): record every more steps, or record a smaller grid"
            )
    chunks = [
        choose_chunk(n_runs, cfg, n_train, sweep.memory_mb, len(devices), chunk_size or sweep.chunk_size)
        for cfg in configs
    ]
    total_chunks = sum(math.ceil(n_runs / c) for c, _ in chunks)
    bar = _Progress(total_chunks, progress, sweep.name)
    results = []
    wall_start = time.perf_counter()
    try:
        for combo, config, (chunk, block) in zip(combos, configs, chunks):
            label = ", ".join(f"{k}={v}" for k, v in combo.items() if len(sweep.axis(k).values) > 1)
            with _precision(config.dtype):
                bar.status(f"compiling {label}")
                compiled = Compiled(config, to_data(dataset, config.jnp_dtype), chunk, block, devices)
                bar.status(label)
                start = time.perf_counter()
                pieces = []
                for lo in range(0, n_runs, chunk):
                    hi = min(lo + chunk, n_runs)
                    runs = {k: _pad(v[lo:hi], chunk) for k, v in grid.items()}
                    summary, trajectory = compiled(runs)
                    summary = {k: np.asarray(v)[: hi - lo] for k, v in summary._asdict().items()}
                    if trajectory is not None:
                        trajectory = {k: np.asarray(v)[: hi - lo] for k, v in trajectory._asdict().items()}
                    pieces.append((summary, trajectory))
                    bar.advance()
                run_time = time.perf_counter() - start
            summary = {k: np.concatenate([p[0][k] for p in pieces]) for k in pieces[0][0]}
            trajectory = None
            if pieces[0][1] is not None:
                trajectory = {k: np.concatenate([p[1][k] for p in pieces]) for k in pieces[0][1]}
            result = CombinationResult(combo, config, summary, trajectory, compiled.compile_time_s, run_time)
            results.append(result)
            if on_combination is not None:
                on_combination(result)
    finally:
        bar.close()
    wall = time.perf_counter() - wall_start
    return results_lib.assemble(sweep, results, dataset=dataset, devices=devices, wall_time_s=wall)


def _pad(values: np.ndarray, size: int) -> np.ndarray:
    """Pads a chunk to ``size`` rows by repeating its last row (the padding is discarded)."""
    if len(values) == size:
        return values
    return np.concatenate([values, np.repeat(values[-1:], size - len(values), axis=0)])
