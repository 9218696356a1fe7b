"""Runs a sweep: one compiled program per static combination, every run in a block of fixed size.

For each combination of static axis values the training function of :mod:`lossjax.core.train`
is compiled once (:class:`~lossjax.programs.Compiled`; scheme initialisations in a separate
program shared by the combinations of one architecture), for calls of ``devices × k × block`` runs: each device (``shard_map`` over a
``grid`` mesh axis when several are used) trains ``k`` vmapped blocks one after another
(``lax.map``; ``k`` from :data:`CALL_RUN_STEPS`, see :meth:`Plan.call_runs`). The block size depends on
the program and the devices' platform (:func:`~lossjax.programs.fixed_block`: one block's training state stays in the
CPU cache, about :data:`~lossjax.programs.BLOCK_BYTES`; on an accelerator, blocks large enough to fill it), never on the grid, so a run's numbers do not depend on what else is
trained. The grid is cut into chunks (the unit results are kept, saved and resumed in, sized
from the memory budget and the work by :func:`~lossjax.programs.choose_chunk`); a chunk goes through the executable in calls,
padded with copies of its last run. With a results folder each finished chunk is written to the
store of :mod:`lossjax.io.store` and a rerun skips the chunks already there; several processes
(:mod:`lossjax.distributed`) share the chunks. Between calls Ctrl-C is honoured and the progress
bar moves.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import platform
import shutil
import sys
import time
from pathlib import Path
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from lossjax import config as sweep_lib
from lossjax import distributed, preflight
from lossjax.programs import (Compiled, ProgramGroup, bytes_per_run, call_limit, choose_chunk, fixed_block, group_programs,
                              param_bytes, to_data)
from lossjax.core import metrics, padded, summaries
from lossjax.core import train as train_lib
from lossjax.io import results as results_lib
from lossjax.io import store as store_lib
from lossjax.io.atomic import atomic_write

#: Largest trajectory store a sweep may ask for (host memory for ``traj_*``, float64 worst case).
TRAJECTORY_LIMIT_BYTES = 4 << 30
#: Work of one compiled call, in run-steps: enough that dispatch and transfers are a small share
#: of it, small enough that Ctrl-C and the progress bar answer within about a second.
CALL_RUN_STEPS = 1 << 18
#: Results up to this size (uncompressed) are also written as one netCDF file, results.nc.
NETCDF_EXPORT_BYTES = 256 << 20


@dataclasses.dataclass
class CombinationResult:
    """Host (numpy) results of one static combination, flat over the batched grid."""

    combo: dict[str, Any]
    config: train_lib.TrainConfig
    summary: dict[str, np.ndarray]
    trajectory: dict[str, np.ndarray] | None
    compile_time_s: float
    run_time_s: float


@contextlib.contextmanager
def _precision(dtype: str):
    if dtype == "float64":
        with jax.enable_x64(True):
            yield
    else:
        yield


class _Progress:
    """A tqdm bar over the runs this process trains (stderr), or nothing."""

    def __init__(self, total: int, enabled: bool, description: str):
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=description, unit="run", unit_scale=True, file=sys.stderr,
                            dynamic_ncols=True, smoothing=0.1)

    def status(self, text: str) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(text, refresh=True)

    def advance(self, n: int = 1) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a sweep that streams to a folder: what was kept, and how to resume."""

    def __init__(self, folder: Path, done: int, total: int, runs: int):
        super().__init__(
            f"interrupted; {done} of {total} chunks ({runs:,} runs) are kept in {folder}; run the same command "
            f"again to resume from them (--restart starts over)"
        )


@dataclasses.dataclass
class Plan:
    """How a sweep runs: its static combinations, the compiled programs that train them (an MLP
    grid's architectures may share a padded program: :func:`~lossjax.programs.group_programs`),
    each combination's block, and the chunks results are kept in."""

    sweep: sweep_lib.Sweep
    dataset: Any
    combos: list[dict[str, Any]]
    configs: list[train_lib.TrainConfig]
    blocks: list[int]
    layout: store_lib.Layout
    n_train: int
    groups: list[ProgramGroup]
    group_of: list[int]  # per combination: its group's index
    shapes: list  # per combination: its padded.ArchShape inside a padded program, or None

    def order(self, combos: Sequence[int]) -> list[int]:
        """``combos`` in training order: by program, so that each program is compiled once."""
        return sorted(combos, key=lambda p: (self.group_of[p], p))

    def describe_programs(self) -> str:
        """The grouping in words, for the run summary (the ``programs`` attribute of the results)."""
        padded_groups = [g for g in self.groups if g.config.model.padded]
        text = f"{len(self.groups)} compiled programs for {len(self.configs)} static combinations"
        return text + "".join(f"; {g.describe(self.configs)}" for g in padded_groups)

    def devices_for(self, p: int, devices: Sequence[jax.Device]) -> tuple[jax.Device, ...]:
        """Devices a compiled call of program ``p`` uses: no more than its chunk fills with blocks."""
        blocks = math.ceil(min(self.layout.chunk, self.layout.n_runs) / self.blocks[p])
        return tuple(devices)[: max(1, min(len(devices), blocks))]

    def call_runs(self, p: int, n_devices: int) -> int:
        """Runs per compiled call of program ``p``: whole blocks on each device (``lax.map`` runs them
        one after another, each in the same vmapped shape), as many as make about
        :data:`CALL_RUN_STEPS` run-steps within :func:`~lossjax.programs.call_limit`, never more than a
        chunk holds; the calls of a chunk are balanced, so that the last one's padding is small."""
        per_round = n_devices * self.blocks[p]
        fill = math.ceil(min(self.layout.chunk, self.layout.n_runs) / per_round)
        work = CALL_RUN_STEPS // (per_round * max(self.configs[p].steps, 1))
        memory = call_limit(self.groups[self.group_of[p]].config, self.n_train, self.sweep.memory_mb) // per_round
        rounds = max(1, min(fill, work, memory))
        return per_round * math.ceil(fill / math.ceil(fill / rounds))

    def call_bytes(self, n_devices: int) -> int:
        """Device working memory of the largest compiled call (estimate): a block in flight on each
        device, and every run's θ_0 and results."""
        largest = 0
        for p, b in enumerate(self.blocks):
            cfg = self.groups[self.group_of[p]].config
            per_run = bytes_per_run(cfg, self.n_train)
            used = min(n_devices, math.ceil(self.layout.chunk / b))
            held = self.call_runs(p, used) * (param_bytes(cfg) + self.layout.bytes_per_run())
            largest = max(largest, used * b * per_run + 8 * cfg.steps + held)
        return largest


def plan_sweep(sweep: sweep_lib.Sweep, chunk_size: int | None = None, platform: str | None = None) -> Plan:
    """Builds the dataset and the programs and sizes the chunks; refuses what cannot run.

    ``platform`` is the devices' (``jax.Device.platform``; default: this process's first device's):
    the size of a vmapped block depends on it (:func:`~lossjax.programs.fixed_block`)."""
    platform = platform or jax.local_devices()[0].platform
    if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 0):
        raise sweep_lib.SweepError(f"chunk_size must be an integer >= 0 (0: sized from memory), got {chunk_size!r}")
    dataset = sweep.make_dataset()
    n_train, n_inputs = dataset.x_train.shape
    n_outputs = dataset.y_train.shape[1]
    if any(a.name == "target" for a in sweep.axes) and n_outputs != 1:
        raise sweep_lib.SweepError(f"[data].target replaces binary targets, but dataset {sweep.dataset!r} has {n_outputs} outputs")
    preflight.check_values(sweep, n_outputs)
    n_runs = sweep.n_runs // len(sweep.static_combinations())
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
    chunk = chunk_size or sweep.chunk_size
    if not chunk:  # sized from the memory budget and the work, independently of the devices
        result_bytes = results_lib.layout_of(sweep, configs, 1).bytes_per_run()
        chunk = min(choose_chunk(n_runs, cfg, n_train, sweep.memory_mb, 1, result_bytes=result_bytes, platform=platform)[0]
                    for cfg in configs)
    layout = results_lib.layout_of(sweep, configs, max(1, min(chunk, n_runs)))
    groups = group_programs(configs, n_runs, n_train, sweep.programs if sweep.impl == "auto" else "per_architecture")
    group_of = [0] * len(configs)
    for g, group in enumerate(groups):
        for p in group.members:
            group_of[p] = g
    shapes = [groups[g].shape(cfg) for cfg, g in zip(configs, group_of)]
    blocks = [fixed_block(groups[g].config, n_train, platform) for g in group_of]
    return Plan(sweep, dataset, combos, configs, blocks, layout, n_train, groups, group_of, shapes)


#: Top-level keys that do not change what a sweep computes (free text, and the report drawn after).
NOT_IN_IDENTITY = ("description", "report")


def sweep_identity(sweep: sweep_lib.Sweep) -> str:
    """What the sweep computes, as data (its TOML or JSON parsed, keys sorted, without
    :data:`NOT_IN_IDENTITY`): two texts of one sweep are equal, and so are two sweeps that differ
    only in their description or report."""
    try:
        raw = sweep_lib.tomllib.loads(sweep.source)
    except (sweep_lib.tomllib.TOMLDecodeError, TypeError):
        try:
            raw = json.loads(sweep.source)
        except ValueError:
            raw = sweep.source
    if isinstance(raw, dict):
        raw = {k: v for k, v in raw.items() if k not in NOT_IN_IDENTITY}
    return json.dumps(raw, sort_keys=True, default=str)


def _train_chunk(compiled: Compiled, sweep, piece, p_row: int, lo: int, hi: int, bar: _Progress, base: int = 0,
                 shape: padded.ArchShape | None = None) -> None:
    """Trains runs ``lo:hi`` of a combination in calls of ``compiled.chunk`` rows into ``piece`` at
    row ``p_row``, where run ``base`` is column 0 (``shape``: the combination's architecture in a
    padded program). One call is in flight while the previous one is copied."""
    rows = sweep_lib.batched_grid(sweep, lo, hi)
    call = compiled.chunk

    def collect(off, n, out):
        summary, trajectory = out
        summary = {k: np.asarray(v)[:n] for k, v in summary._asdict().items()}
        if trajectory is not None:
            trajectory = {k: np.asarray(v)[:n] for k, v in trajectory._asdict().items()}
        store_lib.fill_piece(piece, p_row, lo - base + off, summary, trajectory)
        bar.advance(n)

    pending = None
    for off in range(0, hi - lo, call):
        n = min(call, hi - lo - off)
        out = compiled({k: _pad(v[off : off + n], call) for k, v in rows.items()}, shape)
        if pending is not None:
            collect(*pending)
        pending = (off, n, out)
    collect(*pending)


def _label(sweep, combo) -> str:
    return ", ".join(f"{k}={v}" for k, v in combo.items() if len(sweep.axis(k).values) > 1)


def run_sweep(
    spec: sweep_lib.Sweep | dict | str,
    *,
    devices: Sequence[jax.Device] | None = None,
    chunk_size: int | None = None,
    progress: bool = False,
    on_combination: Callable[[CombinationResult], None] | None = None,
    out: str | os.PathLike | None = None,
    restart: bool = False,
):
    """Trains every run of a sweep and returns the labelled results.

    Args:
      spec: a :class:`~lossjax.config.Sweep`, a sweep dict, or the path of a TOML file.
      devices: devices to shard the run axis over (default: this process's devices).
      chunk_size: runs per chunk, the unit results are kept in (default: the sweep's
        ``[run].chunk_size`` or sized from its memory budget). Results do not depend on it.
      progress: show a progress bar with an ETA on stderr.
      on_combination: without ``out``, called with each combination's host results.
      out: a results folder: results stream into its store chunk by chunk and a rerun resumes
        from the finished chunks (see :mod:`lossjax.io.store`); several processes joined by
        :mod:`lossjax.distributed` share the chunks. Without it, results are kept in memory.
      restart: discard the results already in ``out``.

    Returns:
      An :class:`xarray.Dataset` (see :mod:`lossjax.io.results`); with ``out``, the store opened
      (lazily when large), and ``None`` in processes other than process 0.
    """
    if isinstance(spec, str):
        spec = sweep_lib.load_sweep(spec)
    sweep = sweep_lib.parse_sweep(spec)
    devices = tuple(devices) if devices is not None else tuple(jax.local_devices())
    plan = plan_sweep(sweep, chunk_size, devices[0].platform)
    layout = plan.layout
    total_bytes = layout.bytes_per_run() * layout.n_runs * layout.n_programs
    folder = Path(out) if out is not None else None
    if folder is not None:
        preflight.check_folder(folder)
        _check_existing(folder, sweep, restart)
        attrs = results_lib.data_attrs(sweep, plan.dataset)
        attrs.update(results_lib.provenance(devices, compile_time_s=0.0, run_time_s=0.0, wall_time_s=0.0))
        preflight.check_report(sweep, layout, attrs)
    preflight.check_fit(
        sweep.name, call_bytes=plan.call_bytes(len(devices)), chunk_bytes=2 * layout.chunk * (layout.bytes_per_run() + 80),
        kept_bytes=0 if folder is not None else 2 * total_bytes, disk_bytes=total_bytes, folder=folder,
        runs_per_chunk=layout.chunk, n_chunks=len(layout.chunk_ids()), device_bytes=preflight.device_memory(devices[0]),
    )
    if folder is None:
        return _run_in_memory(plan, devices, progress, on_combination)
    preflight.probe_folder(folder)
    return _run_to_store(plan, folder, devices, progress, restart)


def _run_in_memory(plan: Plan, devices, progress: bool, on_combination):
    sweep, layout = plan.sweep, plan.layout
    piece = store_lib.empty_piece(layout, layout.n_runs, layout.n_programs)
    bar = _Progress(layout.n_runs * layout.n_programs, progress, sweep.name)
    compile_s = run_s = 0.0
    wall_start = time.perf_counter()
    programs = _Programs(plan, devices, bar)
    try:
        for p in plan.order(range(len(plan.configs))):
            combo, config = plan.combos[p], plan.configs[p]
            with _precision(config.dtype):
                compiled, seconds = programs.get(p)
                start = time.perf_counter()
                for c in range(layout.chunks_per_program):
                    _train_chunk(compiled, sweep, piece, p, *layout.bounds(c), bar, shape=plan.shapes[p])
                elapsed = time.perf_counter() - start
            compile_s, run_s = compile_s + seconds, run_s + elapsed
            if on_combination is not None:
                traj = {q.name: piece[f"traj_{q.name}"][p] for q in metrics.OBSERVED} if layout.record_steps else None
                summary = {q.name: piece[q.name][p] for q in summaries.RESULTS}
                on_combination(CombinationResult(combo, config, summary, traj, seconds, elapsed))
    finally:
        bar.close()
    attrs = results_lib.data_attrs(sweep, plan.dataset)
    attrs["programs"] = plan.describe_programs()
    attrs.update(results_lib.provenance(devices, compile_time_s=compile_s, run_time_s=run_s,
                                        wall_time_s=time.perf_counter() - wall_start))
    return store_lib.labelled(piece, layout, attrs)


class _Programs:
    """The compiled program of each combination, compiled when the runner reaches its first
    combination (:meth:`Plan.order` keeps a program's combinations together) and dropped after."""

    def __init__(self, plan: Plan, devices, bar: _Progress):
        self.plan, self.devices, self.bar = plan, devices, bar
        self.inits: dict = {}  # init programs shared by the training programs of one architecture
        self.group: int | None = None
        self.compiled: Compiled | None = None

    def get(self, p: int) -> tuple[Compiled, float]:
        """Combination ``p``'s program, and the seconds spent compiling it now (0 if it was ready)."""
        plan = self.plan
        self.bar.status(_label(plan.sweep, plan.combos[p]))
        if self.group == plan.group_of[p]:
            return self.compiled, 0.0
        self.compiled = None  # frees the previous program before compiling the next
        group = plan.groups[plan.group_of[p]]
        used = plan.devices_for(p, self.devices)
        what = _label(plan.sweep, plan.combos[p]) if len(group.members) == 1 else group.describe(plan.configs)
        self.bar.status(f"compiling {what}".strip())
        self.compiled = Compiled(group.config, to_data(plan.dataset, group.config.jnp_dtype), plan.call_runs(p, len(used)),
                                 plan.blocks[p], used, self.inits)
        self.group = plan.group_of[p]
        self.bar.status(_label(plan.sweep, plan.combos[p]))
        return self.compiled, self.compiled.compile_time_s


def _check_existing(folder: Path, sweep, restart: bool) -> None:
    """Refuses a folder that holds another sweep's results (unless ``restart``)."""
    if restart or not folder.is_dir():
        return
    store = store_lib.Store(folder)
    if store.exists():
        same = store.attrs().get("sweep_id") == sweep_identity(sweep)
    elif (folder / results_lib.SWEEP_FILE).is_file():
        text = (folder / results_lib.SWEEP_FILE).read_text(encoding="utf-8", errors="replace")
        same = sweep_identity(dataclasses.replace(sweep, source=text)) == sweep_identity(sweep)
    else:
        return
    if not same:
        raise sweep_lib.SweepError(
            f"{folder} holds the results of a different sweep ({folder / results_lib.SWEEP_FILE}); add --restart to "
            f"discard them and start over, or give another folder with --out"
        )
    missing = store.missing_variables() if store.exists() else []
    if missing:
        raise sweep_lib.SweepError(
            f"{folder} holds this sweep's results from an older lossjax, without {', '.join(missing[:4])}"
            f"{' ...' if len(missing) > 4 else ''}; add --restart to recompute them, or give another folder with --out"
        )


def _run_to_store(plan: Plan, folder: Path, devices, progress: bool, restart: bool):
    sweep = plan.sweep
    store = store_lib.Store(folder)
    rank, n_processes = distributed.index(), distributed.count()
    if rank == 0:
        for stale in folder.glob(".tmp-*"):  # left by a kill -9 during an atomic write
            shutil.rmtree(stale, ignore_errors=True) if stale.is_dir() else stale.unlink(missing_ok=True)
        if restart:
            store.remove()
            (folder / results_lib.RESULTS_FILE).unlink(missing_ok=True)
        if not store.exists():
            (folder / results_lib.RESULTS_FILE).unlink(missing_ok=True)
            attrs = results_lib.data_attrs(sweep, plan.dataset)
            attrs["programs"] = plan.describe_programs()
            store.create(plan.layout, {**attrs, "sweep_id": sweep_identity(sweep)})
            atomic_write(folder / results_lib.SWEEP_FILE, lambda tmp: tmp.write_text(sweep.source, encoding="utf-8"))
    distributed.barrier("store")
    layout = store.layout()
    done = store.done()
    mine = [(p, c) for k, (p, c) in enumerate(layout.chunk_ids()) if k % n_processes == rank and (p, c) not in done]
    runs = sum(np.subtract(*layout.bounds(c)[::-1]) for _, c in mine)
    bar = _Progress(runs, progress, sweep.name)
    if done and progress:
        print(f"lossjax: resuming: {len(done)} of {len(layout.chunk_ids())} chunks already done", file=sys.stderr)
    compile_s, wall_start = 0.0, time.perf_counter()
    programs = _Programs(plan, devices, bar)
    try:
        for p in plan.order({p for p, _ in mine}):
            config = plan.configs[p]
            with _precision(config.dtype):
                compiled, seconds = programs.get(p)
                compile_s += seconds
                for c in (c for q, c in mine if q == p):
                    lo, hi = layout.bounds(c)
                    start = time.perf_counter()
                    piece = store_lib.empty_piece(layout, hi - lo)
                    _train_chunk(compiled, sweep, piece, 0, lo, hi, bar, base=lo, shape=plan.shapes[p])
                    seconds = time.perf_counter() - start
                    bar.status(f"saving chunk {c + 1}/{layout.chunks_per_program}")
                    store.write(p, c, piece, {"seconds": seconds, "process": rank, "host": platform.node(),
                                              "devices": len(compiled.devices)})
                    bar.status(_label(sweep, plan.combos[p]))
    except KeyboardInterrupt:
        bar.close()
        kept = store.done()
        raise Interrupted(folder, len(kept), len(layout.chunk_ids()),
                          sum(np.subtract(*layout.bounds(c)[::-1]) for _, c in kept)) from None
    bar.close()
    distributed.barrier("trained")
    if rank != 0:
        return None
    missing = set(layout.chunk_ids()) - store.done()
    if missing:
        raise sweep_lib.SweepError(f"{folder}: {len(missing)} chunks were not written (did a process fail?); "
                                   f"run the same command again to finish them")
    markers = store.markers()
    info = results_lib.provenance(devices, compile_time_s=compile_s, run_time_s=sum(m.get("seconds", 0) for m in markers),
                                  wall_time_s=time.perf_counter() - wall_start, processes=n_processes)
    atomic_write(folder / store_lib.PROVENANCE, lambda tmp: tmp.write_text(json.dumps(info, indent=1), encoding="utf-8"))
    ds = store.open()
    if layout.bytes_per_run() * layout.n_runs * layout.n_programs <= NETCDF_EXPORT_BYTES:
        results_lib.save(ds, folder)
    return ds


def _pad(values: np.ndarray, size: int) -> np.ndarray:
    """Pads a chunk to ``size`` rows by repeating its last row (the padding is discarded)."""
    if len(values) == size:
        return values
    return np.concatenate([values, np.repeat(values[-1:], size - len(values), axis=0)])
