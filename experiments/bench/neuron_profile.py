"""Where the benchmark's neuron workload spends its time: block sizes, and one call's XLA profile.

Usage::

    python experiments/bench/neuron_profile.py blocks [NEURONS_PER_BLOCK ...]
    python experiments/bench/neuron_profile.py trace

``blocks`` runs ``lossjax bench``'s neuron workload (10^6 neurons × 300 steps, every stall metric)
through the engine once per block size (default 512 2048 8192 32768 131072; the engine's own block
is 8192 on a CPU) and prints the engine's training seconds for each. ``trace`` compiles the workload's
program for one call (a block per device), runs it under ``jax.profiler`` and prints the time of
each XLA operation of the step loop's body, in µs per block and step (the mean of 5 calls), and
does the same for the bare ``jit(vmap(scan))`` of the benchmark. The figures in the README (Benchmark section,
"Where the targets stand") came from this script on the 2-core CPU.
"""

from __future__ import annotations

import sys

from lossjax import host

host.use_all_cpu_cores()

import jax  # noqa: E402
import numpy as np  # noqa: E402

from lossjax import config, programs, runner  # noqa: E402
from lossjax.bench.harness import lossjax_neuron  # noqa: E402
from lossjax.bench.jax_baselines import neuron_bare_jax  # noqa: E402
from lossjax.bench.workloads import FULL, neuron_grid, neuron_sweep  # noqa: E402
from first_call import first_call  # noqa: E402  (beside this script)
from kernel_trace import kernel_times  # noqa: E402

MODELS, STEPS, _ = FULL["neuron"]
BLOCKS = (512, 2048, 8192, 32768, 131072)
CALLS = 5  # profiled calls, averaged


def blocks(sizes: list[int]) -> None:
    """The engine's training seconds on the neuron workload with each block size."""
    sweep = config.parse_sweep(neuron_sweep(MODELS, STEPS))
    plan = runner.plan_sweep(sweep)
    per_run = programs.bytes_per_run(plan.configs[0], plan.n_train)
    for size in sizes:
        # The engine sizes a program's block from this budget (programs.fixed_block: the largest
        # power of two of runs within it); overridden here, in this process only.
        programs.BLOCK_BYTES[programs.hardware(jax.default_backend())]["neuron"] = size * per_run
        run = lossjax_neuron(MODELS, STEPS)
        print(f"block {size:7d}: training {run.run_time_s:.3f} s, compile {run.compile_time_s:.2f} s", flush=True)


def _profile(fn) -> list[tuple[str, float, int]]:
    """(operation, total ms, count) of the XLA operations :data:`CALLS` calls of ``fn()`` run, longest first."""
    total, count = kernel_times(fn, CALLS)
    return [(name, micros / 1e3, count[name]) for name, micros in total.most_common()]


def _print(profile: list[tuple[str, float, int]], block_steps: int) -> None:
    """The operations run once per block and step (the loop body's), in µs per block-step."""
    runs = CALLS * block_steps
    body = [(name, ms, k) for name, ms, k in profile if k == runs and not name.startswith("end:")]
    if not body:
        raise RuntimeError(f"no operation ran {runs} times: the profile does not show the step loop's body")
    for name, ms, _ in body:
        print(f"  {1e3 * ms / runs:7.2f} µs  {name}")
    print(f"  {1e3 * sum(ms for _, ms, _ in body) / runs:7.2f} µs  in all, per block and step")


def trace() -> None:
    """Per-operation profile of one compiled call of the engine's program and of the bare program."""
    call = first_call(config.parse_sweep(neuron_sweep(MODELS, STEPS)))
    n, used, block = call.runs, call.devices, call.block
    call()  # warm
    print(f"engine: one call of {n} runs ({len(used)} device(s) x blocks of {block}), {STEPS} steps")
    _print(_profile(call), STEPS * len(used))
    w, b = (a.astype(np.float32) for a in neuron_grid(MODELS))
    print(f"bare jit(vmap(scan)): the same {n} runs")
    _print(_profile(lambda: neuron_bare_jax(n, STEPS, init=(w[:n], b[:n]), block=block)), STEPS * len(used))


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in ("blocks", "trace"):
        sys.exit(__doc__)
    if sys.argv[1] == "blocks":
        blocks([int(a) for a in sys.argv[2:]] or list(BLOCKS))
    else:
        trace()
