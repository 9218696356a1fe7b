"""The compiled programs of a sweep and their sizes: what runs on the devices.

A static combination of a sweep is one training program (:class:`Compiled`): the training
function of :mod:`lossjax.core.train`, vmapped over a block of :func:`fixed_block` runs,
``lax.map`` over the blocks of a call and ``shard_map`` over the devices. Runs whose θ_0 comes
from an initialisation scheme get it from a separate :class:`InitProgram`, compiled once per
architecture and shared by every training program of that architecture (an MLP's random draws
are a third to a half of its training program's compile time otherwise). :func:`choose_chunk`
sizes the chunks results are kept in, :func:`call_limit` the compiled calls, from the memory budget.
"""

from __future__ import annotations

import dataclasses

import math
import time
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from lossjax import config as sweep_lib
from lossjax.core import initializers, padded
from lossjax.core import train as train_lib

#: Upper bound on runs per chunk (keeps progress and host transfers granular).
MAX_CHUNK = 1 << 20

#: Working-set budget of one vmapped block of runs, by platform (CPU or accelerator) and kind of
#: model. On a CPU, measured on 2 cores (``bytes_per_run`` is a generous estimate, so these are
#: larger than the cache they target).
#: Neurons: 16 MiB blocks (~14,000 neurons) ran 2.8x faster than one vmap over 10^6 runs. MLPs
#: (depth 3, 200 steps; model-steps/s by block size): width 16 / 128 samples: 8: 3.04e4,
#: 16: 3.17e4, 32: 2.97e4, 64: 2.86e4; width 64 / 256 samples: 1: 4.68e3, 2: 4.90e3, 4: 4.72e3,
#: 8: 4.44e3, 16: 2.66e3; a 4 MiB budget gives blocks of 16 and 2 there.
#: On a GPU (any accelerator) a block's steps are kernels launched one after another, so a block
#: must be large enough to fill the device, and no larger than the grids it trains (a grid is padded
#: to whole blocks). Training seconds on an H200 (``experiments/bench/block_budget.py``) by budget,
#: 16 / 64 / 256 / 1024 MiB: 10^6 neurons × 300 steps 2.28 / 0.70 / 0.34 / 0.28 s; 1024 MLPs
#: 2→16³→1 × 200 steps 0.25 / 0.091 / 0.059 / 0.121 s (at 1 GiB a block of 4096 holds 3072 copies);
#: 256 MLPs 8→64³→1 0.60 / 0.20 / 0.10 / 0.11 s. 256 MiB: blocks of 131,072 neurons, 1024 and 128 MLPs.
BLOCK_BYTES = {"cpu": {"neuron": 16 << 20, "mlp": 4 << 20}, "accelerator": {"neuron": 256 << 20, "mlp": 256 << 20}}


def _itemsize(config: train_lib.TrainConfig) -> int:
    """Bytes of one value in the estimates below (at least float32's: metrics and optimisers use it)."""
    return max(jnp.dtype(config.jnp_dtype).itemsize, 4)


def _n_params(config: train_lib.TrainConfig) -> int:
    mc = config.model
    return sum(fi * fo + fo for fi, fo in zip(mc.fan_ins, mc.layer_sizes))


def param_bytes(config: train_lib.TrainConfig) -> int:
    """Bytes of one run's parameters θ (as the estimates count them)."""
    return _itemsize(config) * _n_params(config)


def bytes_per_run(config: train_lib.TrainConfig, n_train: int) -> int:
    """A generous estimate of device memory per run (parameters, optimiser, activations, records)."""
    mc = config.model
    itemsize, n_params = _itemsize(config), _n_params(config)
    batch = config.batch_size or n_train
    units = sum(mc.layer_sizes)
    records = (config.steps // config.record_every + 1) if config.record_every else 0
    per_step = 8 * n_params + 8 * batch * (units + mc.n_inputs)
    if config.estimator == "score_function":
        per_step += 4 * config.score_samples * batch * mc.n_outputs
    probe = 2 if config.roundoff_probe else 1  # the round-off probe trains each run twice
    return itemsize * (probe * per_step + records * (16 + 6 * mc.n_layers)) + 1024


#: Least work of one chunk (the unit results are kept, written and resumed in) when memory allows, in
#: run-steps (as much as a compiled call's, ``runner.CALL_RUN_STEPS``): each chunk costs a store write
#: and a disk sync (about 30 ms on the 2-core CPU), so a chunk of short runs holds several compiled calls
#: (``mlp_dying_relu``: each cell's 40,000 one-step runs are one chunk of 19 calls instead of 19 chunks).
CHUNK_RUN_STEPS = 1 << 18


def call_limit(config: train_lib.TrainConfig, n_train: int, memory_mb: float) -> int:
    """Most runs one compiled call of ``config`` trains: ``memory_mb`` over :func:`bytes_per_run`
    (a call holds every run's θ_0 and results; runs of one-step MLPs measured on the 2-core CPU:
    calls of 1,056 and 2,112 runs trained at the same speed, 4,224 10% slower)."""
    return max(1, min(int(memory_mb * 2**20 // bytes_per_run(config, n_train)), MAX_CHUNK))


def choose_chunk(
    n_runs: int, config: train_lib.TrainConfig, n_train: int, memory_mb: float, n_devices: int, chunk_size: int = 0,
    result_bytes: int = 0, *, platform: str,
) -> tuple[int, int]:
    """(runs per chunk, runs per vmapped block).

    The block is :func:`fixed_block`. A chunk holds at least the runs of one compiled call
    (:func:`call_limit`) and up to :data:`CHUNK_RUN_STEPS` of work, while its results
    (``result_bytes`` per run, on the host) fit ``memory_mb``; at most :data:`MAX_CHUNK` runs, a
    multiple of ``n_devices × block``, balanced so that the padding of the last one is small.
    """
    if chunk_size:
        largest = chunk_size
    else:
        work = max(call_limit(config, n_train, memory_mb), CHUNK_RUN_STEPS // max(config.steps, 1))
        host = int(memory_mb * 2**20 // (2 * (result_bytes + 80)))
        largest = max(1, min(work, host, MAX_CHUNK))
    n_chunks = math.ceil(n_runs / largest)
    per_device = math.ceil(math.ceil(n_runs / n_chunks) / n_devices)
    block = fixed_block(config, n_train, platform)
    per_device = math.ceil(per_device / block) * block
    return per_device * n_devices, block


class Compiled:
    """``jit(vmap(train))`` for one static combination and chunk size, compiled ahead of time.

    ``inits`` caches :class:`InitProgram` by :func:`init_key` (and call shape) across the
    programs of a sweep; ``compile_time_s`` counts an init program only where it was compiled.
    """

    def __init__(
        self,
        config: train_lib.TrainConfig,
        data: train_lib.Data,
        chunk: int,
        block: int,
        devices: Sequence[jax.Device],
        inits: dict | None = None,
    ):
        self.config = config
        self.chunk = chunk
        self.block = block
        self.devices = tuple(devices)
        train_one = train_lib.make_train(config)
        hoisted = config.init_mode == "scheme"
        self.padded = config.model.padded

        def train_shard(runs, data, params0, shape):
            if not hoisted:
                return jax.lax.map(lambda run: train_one(run, data), runs, batch_size=block)
            return jax.lax.map(lambda rp: train_one(rp[0], data, rp[1], shape), (runs, params0), batch_size=block)

        if len(self.devices) > 1:
            mesh = Mesh(np.asarray(self.devices), ("grid",))
            self.run_sharding = NamedSharding(mesh, PartitionSpec("grid"))
            self.data_sharding = NamedSharding(mesh, PartitionSpec())
            train_chunk = jax.shard_map(
                train_shard,
                mesh=mesh,
                in_specs=(PartitionSpec("grid"), PartitionSpec(), PartitionSpec("grid"), PartitionSpec()),
                out_specs=PartitionSpec("grid"),
                check_vma=False,  # the scan carries start from constants; every run is independent
            )
        else:
            self.run_sharding = self.data_sharding = jax.sharding.SingleDeviceSharding(self.devices[0])
            train_chunk = train_shard
        self.init = None
        init_seconds = 0.0
        if hoisted:
            inits = {} if inits is None else inits
            key = (init_key(config), chunk, self.devices)
            if key not in inits:
                inits[key] = InitProgram(config, chunk, self.run_sharding, self.data_sharding)
                init_seconds = inits[key].compile_time_s
            self.init = inits[key]
        jitted = jax.jit(
            train_chunk,
            in_shardings=(self.run_sharding, self.data_sharding, self.run_sharding, self.data_sharding),
            out_shardings=self.run_sharding,
        )
        self.data = jax.device_put(data, self.data_sharding)
        example = run_inputs_struct(config, chunk, self.run_sharding)
        params0 = self.init.params_struct if hoisted else None
        shape = _shape_struct(self.data_sharding) if self.padded else None
        start = time.perf_counter()
        self.executable = jitted.lower(example, self.data, params0, shape).compile()
        self.compile_time_s = time.perf_counter() - start + init_seconds

    def __call__(self, runs: dict[str, np.ndarray], shape: padded.ArchShape | None = None):
        """Trains ``runs`` (one array per :class:`~lossjax.core.train.RunInputs` field, ``chunk``
        rows); a padded program trains them as the architecture ``shape`` (:func:`~lossjax.core.padded.arch_shape`)."""
        if self.padded != (shape is not None):
            raise ValueError("a padded program is called with the architecture it trains (shape), an unpadded one without")
        mdtype = self.config.metric_dtype
        inputs = train_lib.RunInputs(
            **{
                k: np.asarray(v, np.int32 if k in ("seed", "init_scheme") else mdtype)
                for k, v in runs.items()
            }
        )
        inputs = jax.device_put(inputs, self.run_sharding)
        if shape is not None:
            shape = jax.device_put(shape, self.data_sharding)
        params0 = self.init(inputs, shape) if self.init is not None else None
        return self.executable(inputs, self.data, params0, shape)


def _shape_struct(sharding) -> padded.ArchShape:
    return padded.ArchShape(*(jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sharding) for s in padded.shape_struct()))


def run_inputs_struct(config: train_lib.TrainConfig, chunk: int, sharding) -> train_lib.RunInputs:
    fields = {}
    for name in train_lib.RunInputs._fields:
        dtype = jnp.int32 if name in ("seed", "init_scheme") else config.metric_dtype
        fields[name] = jax.ShapeDtypeStruct((chunk,), dtype, sharding=sharding)
    return train_lib.RunInputs(**fields)


def to_data(dataset, dtype) -> train_lib.Data:
    """The dataset's arrays in the run's dtype."""
    return train_lib.Data(*(jnp.asarray(a, dtype) for a in (dataset.x_train, dataset.y_train, dataset.x_test, dataset.y_test)))


def hardware(platform: str) -> str:
    """``"cpu"`` or ``"accelerator"``: how a ``jax.Device.platform`` is treated where sizes depend on it."""
    return "cpu" if platform == "cpu" else "accelerator"


def block_budget(kind: str, platform: str) -> int:
    """Bytes of one vmapped block of runs of a ``kind`` of model on a ``platform`` (``jax.Device.platform``)."""
    return BLOCK_BYTES[hardware(platform)][kind]


def fixed_block(config: train_lib.TrainConfig, n_train: int, platform: str) -> int:
    """Runs per vmapped block of a program: from the program alone (its model, batch and records),
    never from the size of the grid, the chunk, the memory budget or the devices. Every run is
    computed in a block of exactly this many lanes (padded with copies), so its numbers do not
    depend on what else is in the sweep: XLA may pick different kernels (and float round-off)
    for a different vmapped shape, which training then amplifies. The largest power of two within
    the kind's :func:`block_budget` on the devices' ``platform`` (CPU or accelerator: a run's numbers
    differ between the two anyway, since their kernels round differently). The same with the
    round-off probe on or off (computed without it), so that the probe leaves every run's other
    results bit for bit as they are."""
    alone = dataclasses.replace(config, roundoff_probe=False)
    fits = max(1, block_budget(config.model.kind, platform) // bytes_per_run(alone, n_train))
    return 1 << (fits.bit_length() - 1)


#: XLA's backend (LLVM) optimisation level for :class:`InitProgram` (unpadded architectures): its
#: draws run once per run, and at level 1 they compile about 4x faster than at the default with
#: bitwise the same values (measured on the MNIST-1D MLP: 13.3 s -> 3.2 s on a loaded 2-core CPU;
#: tested for every scheme and dtype in tests/test_runner.py). A padded program's draws compile
#: at the default level (once per group of architectures).
INIT_OPT_LEVEL = 1


def init_key(config: train_lib.TrainConfig) -> tuple:
    """What θ_0 depends on besides the run: programs with equal keys share an :class:`InitProgram`."""
    mc = config.model
    return (mc.kind, mc.n_inputs, mc.n_outputs, mc.depth, mc.width, mc.layer_groups, mc.padded, config.dtype,
            initializers.scheme_draws(config.init_schemes))


class InitProgram:
    """θ_0 of a call's runs drawn from their initialisation schemes (:func:`~lossjax.core.train.init_params`),
    compiled ahead of time for calls of ``chunk`` runs, sharded like the training program's runs
    (``replicated``: the training program's sharding of what every run shares, a padded architecture)."""

    def __init__(self, config: train_lib.TrainConfig, chunk: int, run_sharding, replicated):
        def init_all(runs, shape):
            return jax.vmap(lambda run: train_lib.init_params(config, run, shape))(runs)

        jitted = jax.jit(init_all, in_shardings=(run_sharding, replicated), out_shardings=run_sharding)
        example = (run_inputs_struct(config, chunk, run_sharding), _shape_struct(replicated) if config.model.padded else None)
        #: θ_0's shapes and dtypes (the training program's ``params0`` argument).
        self.params_struct = jax.tree_util.tree_map(
            lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=run_sharding), jax.eval_shape(init_all, *example)
        )
        # A padded architecture's draws at level 1 differed from its unpadded draws by one unit in
        # the last place (float32 RAI, depth 3); at the default level they are bitwise equal (tested).
        options = {} if config.model.padded else {"xla_backend_optimization_level": INIT_OPT_LEVEL}
        start = time.perf_counter()
        self.executable = jitted.lower(*example).compile(compiler_options=options)
        self.compile_time_s = time.perf_counter() - start

    def __call__(self, inputs: train_lib.RunInputs, shape: padded.ArchShape | None = None):
        return self.executable(inputs, shape)


# --------------------------------------------------------------------------------------
# Architectures in one program: the grouping and its cost model
# --------------------------------------------------------------------------------------

#: How a sweep's architectures become programs (``[run] programs``, declared in :mod:`lossjax.config`):
#: ``per_architecture`` (the default) compiles each alone, so that a run's numbers never depend on
#: what else is in the grid; ``auto`` groups them where the cost model (:func:`group_programs`)
#: expects the padding to cost less than the compiles it saves; ``fewest`` pads every group it can
#: into one. A padded run gives its architecture's numbers up to float rounding (the padded
#: program's matrix products and vmapped block differ), which long training can amplify: grouped,
#: a run's numbers depend on the grid at that level.
PROGRAM_MODES = sweep_lib.PROGRAM_MODES
#: Cost model: seconds to compile one MLP training program (measured on the 2-core CPU: 2.3-5 s
#: for the benchmark MLP, 15-17 s for MNIST-1D programs with mini-batches and records).
COMPILE_SECONDS = 8.0
#: Cost model: floating-point operations per second of an MLP training step (the benchmark MLP,
#: width 16: 6.5e4 model-steps/s of 5.0e5 FLOPs each, 3.3e10; smaller widths run slower).
TRAIN_FLOPS_PER_S = 1.5e10
#: Cost model: operations per unit and sample of the per-step metrics (saturation, dormancy,
#: activation statistics), which a padded program computes for skipped layers too.
METRIC_OPS_PER_UNIT = 30


@dataclasses.dataclass(frozen=True)
class ProgramGroup:
    """One compiled training program and the static combinations (``members``) it trains.

    ``config`` is the members' own when there is one member and no padding; otherwise a padded
    MLP (:mod:`lossjax.core.padded`) of the members' largest depth and width.
    """

    config: train_lib.TrainConfig
    members: tuple[int, ...]

    def describe(self, configs: Sequence[train_lib.TrainConfig]) -> str:
        mc = self.config.model
        if not mc.padded:
            return "1 architecture" if mc.kind == "mlp" else "1 program"
        depths = sorted({configs[m].model.depth for m in self.members})
        widths = sorted({configs[m].model.width for m in self.members})
        losses = f", losses {', '.join(self.config.losses)}" if self.config.losses else ""
        hidden = self.config.hidden_activations
        hidden = f", hidden activations {', '.join(hidden)}" if hidden else ""
        return (f"{len(self.members)} combinations padded to depth {mc.depth}, width {mc.width} "
                f"(depths {_span(depths)}, widths {_span(widths)}{losses}{hidden})")

    def shape(self, config: train_lib.TrainConfig) -> padded.ArchShape | None:
        """What a call of this program gets to train member ``config`` (``None``: an unpadded program)."""
        if not self.config.model.padded:
            return None
        losses, hidden = self.config.losses, self.config.hidden_activations
        return padded.arch_shape(config.model, losses.index(config.loss) if losses else 0,
                                 hidden.index(config.model.hidden_activation) if hidden else 0)


def _span(values: list[int]) -> str:
    if len(values) > 2 and values == list(range(values[0], values[-1] + 1)):
        return f"{values[0]}-{values[-1]}"
    return ", ".join(map(str, values))


def paddable(config: train_lib.TrainConfig) -> bool:
    """Whether a combination may be trained inside a padded program (an MLP of depth >= 1 with a
    scheme initialisation, without the per-entry random draws of the round-off probe and of
    stochastic rounding)."""
    mc = config.model
    return (mc.kind == "mlp" and mc.depth >= 1 and not mc.padded and config.init_mode == "scheme"
            and not config.roundoff_probe and config.update_rounding != "stochastic")


def _padding_key(config: train_lib.TrainConfig) -> train_lib.TrainConfig:
    """The config with depth and width erased, and the loss and hidden activation where gradients
    are exact: combinations with equal keys may share a program (a padded one, that switches
    between their losses and hidden activations)."""
    exact = config.estimator == "exact"
    model = dataclasses.replace(config.model, depth=1, width=1, impl="scan",
                                hidden_activation="" if exact else config.model.hidden_activation)
    return dataclasses.replace(config, loss="" if exact else config.loss, model=model)


def train_seconds(config: train_lib.TrainConfig, n_runs: int, n_train: int, width: int, depth_max: int) -> float:
    """Cost model: seconds to train ``n_runs`` runs of ``config``'s architecture at hidden width
    ``width`` in a program of ``depth_max`` hidden layers (skipped layers cost their metrics)."""
    mc = config.model
    batch = config.batch_size or n_train
    weights = mc.n_inputs * width + (mc.depth - 1) * width * width + width * mc.n_outputs
    evaluations = config.steps + 2  # every step, θ_0 and the final evaluation (about)
    per_run = evaluations * batch * (6 * weights + METRIC_OPS_PER_UNIT * width * depth_max) + 2 * n_train * weights
    return n_runs * per_run / TRAIN_FLOPS_PER_S


def group_programs(
    configs: Sequence[train_lib.TrainConfig], n_runs: int, n_train: int, mode: str = "per_architecture"
) -> list[ProgramGroup]:
    """Which static combinations share a compiled program (each combination has ``n_runs`` runs).

    Combinations that differ only in depth, width and, with exact gradients, the loss and the hidden
    activation (:func:`paddable` ones) are candidates; a group of several losses or hidden
    activations switches between them (``TrainConfig.losses``, ``TrainConfig.hidden_activations``).
    Their widths are sorted and cut into consecutive groups, each padded to its largest width
    and depth; the cut minimises the cost model's total (``COMPILE_SECONDS`` per program plus
    :func:`train_seconds` of every member at its group's width), by dynamic programming over the
    widths. ``per_architecture``: no grouping; ``fewest``: one group per candidate set.
    """
    if mode not in PROGRAM_MODES:
        raise ValueError(f"unknown programs mode {mode!r}; allowed: {', '.join(PROGRAM_MODES)}")
    candidates: dict[train_lib.TrainConfig, list[int]] = {}
    groups: list[ProgramGroup] = []
    for p, config in enumerate(configs):
        if mode != "per_architecture" and paddable(config):
            candidates.setdefault(_padding_key(config), []).append(p)
        else:
            groups.append(ProgramGroup(config, (p,)))
    for members in candidates.values():
        groups.extend(_cut_by_width(configs, members, n_runs, n_train, mode))
    return sorted(groups, key=lambda g: g.members[0])


def _cut_by_width(configs, members: list[int], n_runs: int, n_train: int, mode: str) -> list[ProgramGroup]:
    widths = sorted({configs[p].model.width for p in members})
    by_width = {w: [p for p in members if configs[p].model.width == w] for w in widths}

    def cost(i: int, j: int) -> float:  # one program for widths[i..j]
        inside = [p for w in widths[i : j + 1] for p in by_width[w]]
        depth_max = max(configs[p].model.depth for p in inside)
        return COMPILE_SECONDS + sum(train_seconds(configs[p], n_runs, n_train, widths[j], depth_max) for p in inside)

    if mode == "fewest":
        cuts = [(0, len(widths) - 1)]
    else:
        best, last = [0.0], []
        for j in range(len(widths)):
            options = [(best[i] + cost(i, j), i) for i in range(j + 1)]
            value, start = min(options)
            best.append(value)
            last.append(start)
        cuts, j = [], len(widths) - 1
        while j >= 0:
            cuts.append((last[j], j))
            j = last[j] - 1
        cuts.reverse()
    groups = []
    for i, j in cuts:
        inside = sorted(p for w in widths[i : j + 1] for p in by_width[w])
        if len(inside) == 1:  # nothing to share a program with: compiled as it is
            groups.append(ProgramGroup(configs[inside[0]], tuple(inside)))
            continue
        depth_max = max(configs[p].model.depth for p in inside)
        model = dataclasses.replace(configs[inside[0]].model, depth=depth_max, width=widths[j], padded=True)
        losses = tuple(dict.fromkeys(configs[p].loss for p in inside))
        hidden = tuple(dict.fromkeys(configs[p].model.hidden_activation for p in inside))
        group = dataclasses.replace(configs[inside[0]], model=model, losses=losses if len(losses) > 1 else None,
                                    hidden_activations=hidden if len(hidden) > 1 else None)
        groups.append(ProgramGroup(group, tuple(inside)))
    return groups
