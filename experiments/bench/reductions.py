"""Boolean reductions on XLA's CPU: ``jnp.all`` against :func:`lossjax.core.metrics.every` (a uint8 minimum).

Usage::

    python experiments/bench/reductions.py

Each flag the training step computes per parameter array (unchanged by the update, finite, zero
gradient) is a reduction over booleans. This script times them on a block of 2 models' stacked
hidden weights, 3 × 128 × 128 each (``mlp_glorot``'s shape in its blocks of 2), inside a
``lax.scan`` of 2,000 steps that swaps two weight arrays, so that nothing is loop-invariant. It
prints µs per step for each form, less a baseline step that reads one element of each array (the
scan's own cost), on one device. The figures quoted in ``every``'s docstring and in the README came
from this script on the 2-core CPU.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

from lossjax.core.metrics import every

SHAPE = (2, 3, 128, 128)  # a block of 2 models × 3 stacked 128 × 128 hidden layers
STEPS = 2000
REPEATS = 3  # the best of


def step_micros(flag) -> float:
    """µs per scan step of ``flag(w, w2)`` (a bool array per model and layer), best of :data:`REPEATS`."""
    rng = np.random.default_rng(0)
    w = jnp.asarray(rng.standard_normal(SHAPE), jnp.float32)
    w2 = w.at[1, 2, 5, 7].add(1.0)

    def body(carry, _):
        a, b, count = carry
        return (b, a, count + jnp.sum(flag(a, b).astype(jnp.int32))), None

    run = jax.jit(lambda a, b: jax.lax.scan(body, (a, b, jnp.int32(0)), None, length=STEPS)[0][2])
    run(w, w2).block_until_ready()
    best = np.inf
    for _ in range(REPEATS):
        start = time.perf_counter()
        run(w, w2).block_until_ready()
        best = min(best, time.perf_counter() - start)
    return 1e6 * best / STEPS


def main() -> None:
    layers = (2, 3)
    forms = {
        "unchanged, w == w'": (lambda a, b: jnp.all(a == b, axis=layers), lambda a, b: every(a == b, axis=layers)),
        "finite, isfinite(w)": (lambda a, b: jnp.all(jnp.isfinite(a), axis=layers),
                                lambda a, b: every(jnp.isfinite(a), axis=layers)),
        "zero gradient, g == 0": (lambda a, b: jnp.all(a == 0, axis=layers), lambda a, b: every(a == 0, axis=layers)),
    }
    baseline = step_micros(lambda a, b: a[:, :, 0, 0] == b[:, :, 0, 0])
    print(f"{jax.devices()[0].platform}: µs per step over {SHAPE} float32, less the baseline step's {baseline:.1f} µs")
    print(f"  {'flag':24s} {'jnp.all':>9s} {'every':>9s} {'ratio':>7s}")
    for name, (plain, ours) in forms.items():
        t_plain, t_ours = step_micros(plain) - baseline, step_micros(ours) - baseline
        print(f"  {name:24s} {t_plain:9.1f} {t_ours:9.1f} {t_plain / t_ours:6.1f}×")


if __name__ == "__main__":
    main()
