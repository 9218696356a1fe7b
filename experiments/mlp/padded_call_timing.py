"""Time one compiled call of a padded dying-ReLU program, per architecture depth.

Usage::

    python experiments/mlp/padded_call_timing.py [WIDTH] [BLOCK]

Builds the program that ``experiments/mlp/mlp_dying_relu.toml`` trains its width-``WIDTH`` nets in
(default 10; depths 1-20 padded to 20), then times three calls of the compiled program for depths
1, 5, 10 and 20 and prints the best, per run (θ_0's draws included), and the θ_0 draws alone.
``BLOCK`` overrides the vmapped block (default: the program's own). The figures in docs/mlp_study.md
("Skipped layers cost nothing") came from this script on the 2-core CPU.
"""

from __future__ import annotations

import sys
import time

from lossjax import host

host.use_all_cpu_cores()

import jax  # noqa: E402
import numpy as np  # noqa: E402

from lossjax import config, grid, programs, runner  # noqa: E402
from lossjax.core import train  # noqa: E402

SPEC = "experiments/mlp/mlp_dying_relu.toml"


def best_of(n: int, fn) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return min(times)


def main(width: int = 10, block: int | None = None) -> None:
    sweep = config.load_sweep(SPEC)
    plan = runner.plan_sweep(sweep)
    members = [p for p, c in enumerate(plan.configs) if c.model.width == width]
    first = members[0]
    group = plan.groups[plan.group_of[first]]
    devices = plan.devices_for(first, jax.devices())
    block = block or plan.blocks[first]
    calls = max(plan.call_runs(first, len(devices)), block * len(devices))
    calls -= calls % (block * len(devices))
    start = time.perf_counter()
    compiled = programs.Compiled(group.config, programs.to_data(plan.dataset, group.config.jnp_dtype), calls, block,
                                 devices, {})
    print(f"width {width}: {group.describe(plan.configs)}; calls of {calls} runs, blocks of {block}, "
          f"compiled in {time.perf_counter() - start:.1f} s")
    rows = {k: v[:calls] for k, v in grid.batched_grid(sweep, 0, calls).items()}
    done = set()
    for p in members:
        depth = plan.configs[p].model.depth
        if depth not in (1, 5, 10, 20) or depth in done:
            continue
        done.add(depth)
        shape = plan.shapes[p]
        jax.block_until_ready(compiled(rows, shape))  # warm
        call = best_of(3, lambda: compiled(rows, shape))
        inputs = train.RunInputs(**{k: np.asarray(v, np.int32 if k in ("seed", "init_scheme") else compiled.config.metric_dtype)
                                    for k, v in rows.items()})
        inputs = jax.device_put(inputs, compiled.run_sharding)
        on_device = jax.device_put(shape, compiled.data_sharding)
        init = best_of(3, lambda: compiled.init(inputs, on_device))
        print(f"depth {depth:2d}: call {call * 1e6 / calls:6.1f} µs per run, of which θ_0 {init * 1e6 / calls:5.1f} µs")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
