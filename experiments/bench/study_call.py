"""Seconds of one compiled call of a sweep's first program: training alone, no compile, no I/O.

Usage::

    python experiments/bench/study_call.py SWEEP.toml [--no-records]

Builds the runner's plan for the sweep on the devices at hand, compiles its first program for one
call (``--no-records``: with ``record_every = 0``), runs it once warm, then twice more, and prints
the better of the two, in seconds and in µs per block-step. To compare two versions of lossjax,
run it alternately from each tree (``PYTHONPATH=<tree>``). The `mlp_glorot` figures of
``results/bench/ab_every.txt`` came from this script on the 2-core CPU.
"""

from __future__ import annotations

import dataclasses
import sys
import time

from lossjax import host

host.use_all_cpu_cores()

import jax  # noqa: E402
import numpy as np  # noqa: E402

from lossjax import config, grid, programs, runner  # noqa: E402

CALLS = 2  # timed calls after the warm one; the better is printed


def main(path: str, records: bool) -> None:
    sweep = config.load_sweep(path)
    plan = runner.plan_sweep(sweep)
    cfg = plan.groups[plan.group_of[0]].config
    if not records:
        cfg = dataclasses.replace(cfg, record_every=0)
    used = plan.devices_for(0, jax.devices())
    runs, block = plan.call_runs(0, len(used)), plan.blocks[0]
    compiled = programs.Compiled(cfg, programs.to_data(plan.dataset, cfg.jnp_dtype), runs, block, used, {})
    have = min(runs, sweep.n_runs // len(sweep.static_combinations()))
    rows = grid.batched_grid(sweep, 0, have)
    rows = {k: np.concatenate([v, np.repeat(v[-1:], runs - have, axis=0)]) for k, v in rows.items()}  # a full call
    call = lambda: jax.block_until_ready(compiled(rows, plan.shapes[0]))  # noqa: E731
    call()  # warm
    best = np.inf
    for _ in range(CALLS):
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
    block_steps = cfg.steps * runs // (block * len(used))  # per device: the devices run side by side
    print(f"{sweep.name}: one call of {runs} runs in blocks of {block} on {len(used)} device(s), {cfg.steps} steps, "
          f"records every {cfg.record_every or 'never'}: {best:.3f} s, {1e6 * best / block_steps:.1f} µs per block-step")


if __name__ == "__main__":
    args = sys.argv[1:]
    if len(args) not in (1, 2) or (len(args) == 2 and args[1] != "--no-records"):
        sys.exit(__doc__)
    main(args[0], records=len(args) == 1)
