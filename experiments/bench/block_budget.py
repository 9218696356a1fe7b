"""How the engine's speed depends on the size of its vmapped blocks, on this machine's devices.

Usage::

    python experiments/bench/block_budget.py [MIB ...]

Runs each ``lossjax bench`` workload (``neuron``: 10^6 neurons × 300 steps; ``mlp``: 1024 MLPs
2→16³→1 × 200 steps; ``mlp_wide``: 256 MLPs 8→64³→1 × 200 steps; every metric on) through the
engine once per block budget (default: the engine's own, then 16, 64, 256 and 1024 MiB) and prints
the runs per block, the training seconds and model-steps/s. The engine sizes a program's block as
the largest power of two of runs within the budget of its kind of model and its devices' platform
(``lossjax.programs.block_budget``); the budget is overridden here, in this process only. The
accelerator budget in ``lossjax/programs.py`` was chosen from this script's output on an H200.
"""

from __future__ import annotations

import sys

from lossjax import host

host.use_all_cpu_cores()

import jax  # noqa: E402

from lossjax import config, programs, runner  # noqa: E402
from lossjax.bench.harness import lossjax_mlp, lossjax_neuron  # noqa: E402
from lossjax.bench.workloads import FULL, MLP_SPECS, mlp_sweep, neuron_sweep  # noqa: E402


def main(argv: list[str]) -> None:
    budgets = [None] + [int(a) << 20 for a in argv] if argv else [None, 16 << 20, 64 << 20, 256 << 20, 1 << 30]
    platform = jax.local_devices()[0].platform
    where = programs.hardware(platform)
    print(f"devices: {jax.local_devices()}", flush=True)
    for workload in ("neuron", "mlp", "mlp_wide"):
        n, steps, _ = FULL[workload]
        kind = "neuron" if workload == "neuron" else "mlp"
        sweep = neuron_sweep(n, steps) if workload == "neuron" else mlp_sweep(n, steps, spec=MLP_SPECS[workload])
        plan = runner.plan_sweep(config.parse_sweep(sweep), platform=platform)
        own = programs.BLOCK_BYTES[where][kind]
        for budget in budgets:
            programs.BLOCK_BYTES[where][kind] = own if budget is None else budget
            block = programs.fixed_block(plan.configs[0], plan.n_train, platform)
            run = lossjax_neuron(n, steps) if workload == "neuron" else lossjax_mlp(n, steps, spec=MLP_SPECS[workload])
            label = "engine's own" if budget is None else f"{budget >> 20} MiB"
            print(f"{workload:8s} budget {label:>14s}: block {block:8d} runs, training {run.run_time_s:7.3f} s "
                  f"({n * steps / run.run_time_s:.3g} model-steps/s), compile {run.compile_time_s:5.2f} s", flush=True)
        programs.BLOCK_BYTES[where][kind] = own


if __name__ == "__main__":
    main(sys.argv[1:])
