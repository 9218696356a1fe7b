"""Bare JAX baselines: what plain ``jit(vmap(scan))`` gets on the same workloads, with no metrics.

The ceiling for the engine's overhead: the same maths, the same initial parameters, in blocks
(``lax.map(..., batch_size=block)``; the harness passes the engine's own block) and sharded over
every device (``shard_map``) like the engine, but each step is only the gradient and the SGD
update, and only the final loss leaves the program. Each function returns
``({"loss_final": (M,)}, compile seconds, run seconds)``: compiled ahead of time, then timed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np

from lossjax.bench.workloads import NEURON, MLPProblem, NeuronSpec
from lossjax.core.train import MATMUL_PRECISION

#: Runs per vmapped block when none is given (the engine's blocks on a 2-core CPU); the harness
#: passes the engine's own block for the workload on the devices at hand
#: (:func:`lossjax.bench.harness.engine_block`).
NEURON_BLOCK = 8192
MLP_BLOCK = 16


def _sharded(train_one: Callable, inputs: tuple, block: int, hlo: list[str] | None = None):
    """``train_one`` over the leading axis of ``inputs``: blocks of ``block``, sharded over devices.

    Returns ``(outputs as numpy, compile seconds, run seconds)``; the input is padded to a
    multiple of ``devices × block`` and the padding dropped. ``hlo``, if a list, gets the compiled
    program's optimized HLO text appended (for the profiling scripts of ``experiments/bench``).
    """
    import jax
    from jax.sharding import Mesh, PartitionSpec

    devices = jax.devices()
    n = len(inputs[0])
    per = math.ceil(n / (len(devices) * block)) * block
    padded = tuple(np.concatenate([a, np.repeat(a[-1:], per * len(devices) - n, axis=0)]) for a in inputs)
    mesh = Mesh(np.asarray(devices), ("grid",))

    def shard(*arrays):
        return jax.lax.map(lambda row: train_one(*row), arrays, batch_size=block)

    spec = PartitionSpec("grid")
    fn = jax.jit(jax.shard_map(shard, mesh=mesh, in_specs=(spec,) * len(padded), out_specs=spec, check_vma=False))
    start = time.perf_counter()
    with jax.default_matmul_precision(MATMUL_PRECISION):  # the engine's precision: float32 products in float32, not TF32
        compiled = fn.lower(*padded).compile()
    compile_s = time.perf_counter() - start
    if hlo is not None:
        hlo.append(compiled.as_text())
    start = time.perf_counter()
    out = np.asarray(compiled(*padded))
    return out[:n], compile_s, time.perf_counter() - start


def neuron_bare_jax(n_models: int, steps: int, *, init, spec: NeuronSpec = NEURON,
                    block: int = NEURON_BLOCK) -> tuple[dict, float, float]:
    """The neuron workload: σ(w x + b), quadratic cost, SGD; float32; the final loss only."""
    import jax

    w0, b0 = (np.asarray(a, np.float32) for a in init)
    x, y, lr = (np.float32(v) for v in (spec.x, spec.y, spec.learning_rate))

    def loss(w, b):
        a = jax.nn.sigmoid(w * x + b)
        return 0.5 * (a - y) ** 2

    def train_one(w, b):
        def step(wb, _):
            gw, gb = jax.grad(loss, argnums=(0, 1))(*wb)
            return (wb[0] - lr * gw, wb[1] - lr * gb), None

        (w, b), _ = jax.lax.scan(step, (w, b), None, length=steps)
        return loss(w, b)

    out, compile_s, run_s = _sharded(train_one, (w0, b0), block)
    return {"loss_final": out}, compile_s, run_s


def mlp_bare_jax(n_models: int, steps: int, *, problem: MLPProblem, block: int = MLP_BLOCK,
                 hlo: list[str] | None = None) -> tuple[dict, float, float]:
    """The MLP workload: tanh hidden layers, binary cross-entropy on logits, SGD; float32 (``hlo``: see :func:`_sharded`)."""
    import jax
    import jax.numpy as jnp

    x = jnp.asarray(problem.x, jnp.float32)
    y = jnp.asarray(problem.y, jnp.float32)[:, None]
    leaves = [np.asarray(a, np.float32) for pair in zip(problem.weights, problem.biases) for a in pair]
    lrs = np.asarray(problem.learning_rates, np.float32)

    def loss(params):
        # Units-major, (units, samples): 1.9x faster than (samples, units) here (2-core CPU,
        # 9.1e4 -> 1.74e5 model-steps/s, blocks of 16), so the strongest plain baseline.
        h = x.T
        for w, b in params[:-1]:
            h = jnp.tanh(w.T @ h + b[:, None])
        w, b = params[-1]
        z = (w.T @ h + b[:, None]).T
        return jnp.mean(y * jax.nn.softplus(-z) + (1 - y) * jax.nn.softplus(z))

    def train_one(lr, *flat):
        params = list(zip(flat[0::2], flat[1::2]))

        def step(p, _):
            grads = jax.grad(loss)(p)
            return jax.tree_util.tree_map(lambda a, g: a - lr * g, p, grads), None

        params, _ = jax.lax.scan(step, params, None, length=steps)
        return loss(params)

    out, compile_s, run_s = _sharded(train_one, (lrs, *leaves), block, hlo)
    return {"loss_final": out}, compile_s, run_s


def sgemm_gflops(size: int = 2048, repeats: int = 3) -> dict[str, float]:
    """This machine's float32 matrix-product peak: the best of ``repeats`` ``size``² products,
    in numpy (BLAS, every thread) and in jax (XLA on the default device, float32 arithmetic:
    the engine's ``MATMUL_PRECISION``, "highest", which on a GPU rules out TF32), in GFLOP/s."""
    import jax
    import jax.numpy as jnp

    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((size, size), dtype=np.float32) for _ in range(2))
    flops = 2.0 * size**3
    out = {}
    a @ b
    out["numpy"] = flops / min(_seconds(lambda: a @ b) for _ in range(repeats)) / 1e9
    ja, jb = jax.device_put(a), jax.device_put(b)
    mm = jax.jit(lambda x, y: jnp.matmul(x, y, precision=MATMUL_PRECISION))
    mm(ja, jb).block_until_ready()
    out["jax"] = flops / min(_seconds(lambda: mm(ja, jb).block_until_ready()) for _ in range(repeats)) / 1e9
    return out


def _seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start
