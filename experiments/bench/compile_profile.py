"""Where an MNIST-1D study's compile time goes, against what a bare program of the same nets takes.

Usage::

    python experiments/bench/compile_profile.py [SWEEP.toml ...]

(default: ``experiments/mlp/mlp_glorot.toml`` and ``experiments/mlp/mlp_depth.toml``). For the
sweep's first program (the runner's plan, on the devices at hand) it compiles the engine's program
twice, as configured and without trajectory records (``record_every = 0``), each with a fresh init
program and no persistent cache, and prints its seconds split as jax reports them (tracing to a
jaxpr, lowering to StableHLO, XLA's compile) with the size of the optimized HLO module. Then, for
each depth of the sweep, it compiles a bare ``jit(vmap(scan))`` of the same net (the sweep's width,
batch size and steps, sigmoid hidden layers, softmax cross-entropy, SGD, mini-batches drawn per
step, θ_0 drawn in the program; no metrics), sharded and blocked like the engine's call, and prints
its compile seconds and one call's training seconds. The figures in docs/mlp_study.md ("Compile")
came from this script on the 2-core CPU.
"""

from __future__ import annotations

import collections
import math
import sys
import time

from lossjax import host

host.use_all_cpu_cores()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import Mesh, PartitionSpec  # noqa: E402

from lossjax import config, runner  # noqa: E402
from lossjax.core.train import MATMUL_PRECISION  # noqa: E402
from first_call import first_call  # noqa: E402  (beside this script)

SWEEPS = ("experiments/mlp/mlp_glorot.toml", "experiments/mlp/mlp_depth.toml")
STAGES = {  # jax.monitoring's duration events, by the stage they time
    "/jax/core/compile/jaxpr_trace_duration": "trace",
    "/jax/core/compile/jaxpr_to_mlir_module_duration": "lower",
    "/jax/core/compile/backend_compile_duration": "XLA",
}
_seconds: collections.Counter = collections.Counter()
jax.monitoring.register_event_duration_secs_listener(
    lambda event, secs, **_: _seconds.update({STAGES[event]: secs}) if event in STAGES else None
)


def _instructions(compiled) -> int:
    """Instructions of a compiled program's optimized HLO module (every computation)."""
    return sum(1 for line in compiled.as_text().splitlines() if " = " in line)


def engine(sweep, label: str, records: bool) -> None:
    """Compiles the first program of ``sweep`` (with or without records) and prints where the time went."""
    _seconds.clear()
    start = time.perf_counter()
    call = first_call(sweep, records)
    total = time.perf_counter() - start
    stages = ", ".join(f"{name} {_seconds[name]:.2f} s" for name in STAGES.values())
    print(f"  engine, {label}: {total:.2f} s in all (with its init program); {stages}; "
          f"{_instructions(call.compiled.executable):,} HLO instructions")


def bare(sizes: list[int], batch: int, steps: int, runs: int, block: int, n_train: int) -> None:
    """Compiles and runs a bare program of the net ``sizes`` (no metrics) and prints its seconds."""
    x = jnp.asarray(np.random.default_rng(0).standard_normal((n_train, sizes[0])), jnp.float32)
    y = jax.nn.one_hot(jnp.asarray(np.random.default_rng(1).integers(0, sizes[-1], n_train)), sizes[-1])

    def loss(params, xb, yb):
        h = xb
        for w, b in params[:-1]:
            h = jax.nn.sigmoid(h @ w + b)
        w, b = params[-1]
        return jnp.mean(-jnp.sum(yb * jax.nn.log_softmax(h @ w + b), axis=-1))

    def train_one(seed):
        key = jax.random.key(seed)
        params = [(jax.random.uniform(k, (a, b), minval=-1 / math.sqrt(a), maxval=1 / math.sqrt(a)), jnp.zeros(b))
                  for k, a, b in zip(jax.random.split(key, len(sizes) - 1), sizes[:-1], sizes[1:])]

        def step(p, t):
            idx = jax.random.randint(jax.random.fold_in(key, t), (batch,), 0, n_train)
            grads = jax.grad(loss)(p, x[idx], y[idx])
            return jax.tree_util.tree_map(lambda a, g: a - 0.1 * g, p, grads), None

        p, _ = jax.lax.scan(step, params, jnp.arange(steps))
        return loss(p, x, y)

    spec = PartitionSpec("grid")
    fn = jax.jit(jax.shard_map(lambda s: jax.lax.map(train_one, s, batch_size=block),
                               mesh=Mesh(np.asarray(jax.devices()), ("grid",)), in_specs=spec, out_specs=spec,
                               check_vma=False))
    seeds = np.arange(runs, dtype=np.int32)
    start = time.perf_counter()
    with jax.default_matmul_precision(MATMUL_PRECISION):
        lowered = fn.lower(seeds)
        traced = time.perf_counter()
        compiled = lowered.compile()
    compiled_at = time.perf_counter()
    jax.block_until_ready(compiled(seeds))
    print(f"  bare, {'→'.join(map(str, sizes))}: trace and lower {traced - start:.2f} s, XLA {compiled_at - traced:.2f} s; "
          f"{_instructions(compiled):,} HLO instructions; one call trains in {time.perf_counter() - compiled_at:.2f} s")


def main(paths: list[str]) -> None:
    for path in paths:
        sweep = config.load_sweep(path)
        plan = runner.plan_sweep(sweep)
        cfg = plan.groups[plan.group_of[0]].config
        used = plan.devices_for(0, jax.devices())
        runs = plan.call_runs(0, len(used))
        print(f"{sweep.name}: {len(plan.groups)} program(s); the first: {runs} runs per call in blocks of "
              f"{plan.blocks[0]} on {len(used)} device(s), {cfg.steps} steps, padded: {cfg.model.padded}")
        engine(sweep, "as configured", True)
        engine(sweep, "without records", False)
        n_train, n_inputs = plan.dataset.x_train.shape
        n_outputs = plan.dataset.y_train.shape[1]
        depths = sorted({c.model.depth for c in plan.configs})
        for depth in depths:
            sizes = [n_inputs] + [cfg.model.width] * depth + [n_outputs]
            bare(sizes, cfg.batch_size or n_train, cfg.steps, runs, plan.blocks[0], n_train)


if __name__ == "__main__":
    main(sys.argv[1:] or list(SWEEPS))
