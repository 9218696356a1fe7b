"""Where the benchmark's MLP step spends its time: the engine against the bare program, by kind of kernel.

Usage::

    python experiments/bench/mlp_profile.py [mlp | mlp_wide]

Compiles one call of the engine's program for the workload (``lossjax bench``'s 1024 MLPs 2→16³→1
or 256 MLPs 8→64³→1, 200 steps, every metric), and the bare ``jit(vmap(scan))`` of the benchmark on
the same runs in the same blocks. Each runs once warm, then once under ``jax.profiler``. The
script prints the kernels of the step loop's body in µs per block and step, in four groups:

- matrix products (XLA's dots, and the fusions that hold one: most of XNNPACK's, which also runs
  reductions, so a kernel is told by its HLO, not its name);
- the activation (fusions named for tanh);
- copies;
- everything else: the metrics' reductions and comparisons, the update and the loss.

It also prints how many kernels of each group a step runs. The profiler keeps only part of a long
call's events, so a kernel counts as the loop body's when it ran about as often as the most frequent
matrix product (within 10 %). The figures in the README (Benchmark section, "Where the targets
stand") came from this script on the 2-core CPU.
"""

from __future__ import annotations

import sys
import time

from lossjax import host

host.use_all_cpu_cores()

from lossjax import config  # noqa: E402
from lossjax.bench.jax_baselines import mlp_bare_jax  # noqa: E402
from lossjax.bench.workloads import FULL, MLP_SPECS, mlp_problem, mlp_sweep  # noqa: E402
from first_call import first_call  # noqa: E402  (beside this script)
from kernel_trace import kernel_times, product_kernels  # noqa: E402

GROUPS = ("matrix products", "activation", "copies", "other")


def _group(name: str, products: set[str]) -> str:
    if name in products:
        return "matrix products"
    if "tanh" in name:
        return "activation"
    return "copies" if name.startswith("copy") else "other"


def _profile(fn, hlo_text: str) -> dict[str, tuple[float, int]]:
    """Per group: (µs per block-step, kernels per step) of the step loop's body, from one profiled call
    of the program whose optimized HLO is ``hlo_text``."""
    products = product_kernels(hlo_text)
    total, count = kernel_times(fn)
    steps = max((k for name, k in count.items() if name in products), default=0)
    if not steps:
        raise RuntimeError("no matrix product in the profile: it does not show the step loop's body")
    out = {group: (0.0, 0) for group in GROUPS}
    for name, k in count.items():
        if 0.9 * steps <= k <= 1.1 * steps:
            group = _group(name, products)
            micros, kernels = out[group]
            out[group] = (micros + total[name] / k, kernels + 1)
    return out


def _print(label: str, seconds: float, block_steps: int, groups: dict[str, tuple[float, int]]) -> None:
    print(f"{label}: {seconds:.3f} s, {1e6 * seconds / block_steps:.1f} µs per block-step (unprofiled)")
    for group in GROUPS:
        micros, kernels = groups[group]
        print(f"  {micros:7.1f} µs  {kernels:4d} kernels  {group}")
    print(f"  {sum(m for m, _ in groups.values()):7.1f} µs  {sum(k for _, k in groups.values()):4d} kernels  in all (profiled)")


def main(workload: str) -> None:
    n, steps, _ = FULL[workload]
    spec = MLP_SPECS[workload]
    call = first_call(config.parse_sweep(mlp_sweep(n, steps, spec=spec)))
    runs, block, used, block_steps = call.runs, call.block, call.devices, call.block_steps
    call()  # warm
    start = time.perf_counter()
    call()
    seconds = time.perf_counter() - start
    print(f"{workload}: one call of {runs} runs on {len(used)} device(s) in blocks of {block}, {steps} steps")
    _print("engine", seconds, block_steps, _profile(call, call.compiled.executable.as_text()))
    problem = mlp_problem(runs, spec)
    hlo: list[str] = []
    bare = lambda: mlp_bare_jax(runs, steps, problem=problem, block=block, hlo=hlo)  # noqa: E731
    _, _, seconds = bare()
    _print("bare jit(vmap(scan))", seconds, block_steps, _profile(bare, hlo[0]))


if __name__ == "__main__":
    if len(sys.argv) > 2 or (len(sys.argv) == 2 and sys.argv[1] not in MLP_SPECS):
        sys.exit(__doc__)
    main(sys.argv[1] if len(sys.argv) == 2 else "mlp_wide")
