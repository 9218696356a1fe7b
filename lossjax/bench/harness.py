"""``lossjax bench``: lossjax against hand-written baselines, timed side by side in one run.

Two workloads, each computed by every implementation with the same maths and the same
initial parameters, so the rows differ only in how the work is organised:

``neuron``
    The texts' example: one input ``x = 1``, target ``y = 0``, a sigmoid neuron, the quadratic
    cost ½(y − a)², plain SGD with η = 0.15, initial (w, b) on a 1000 × 1000 grid over
    [−6, 6]² (10^6 models), 300 steps. Every stall metric of :mod:`lossjax.metrics` that a
    single neuron has is recorded per model inside the loop (memory O(models)).
``mlp``
    1024 MLPs 2 → 16 → 16 → 16 → 1 (tanh hidden, sigmoid output, binary cross-entropy on
    logits), full batch of 128 noisy XOR points (``make_dataset("xor", seed=0)``), SGD with
    learning rates log-spaced over [1e-2, 1], LeCun-normal weights and zero biases, 200
    steps. Recorded: the final loss and each layer's weight-gradient norm at init.

Implementations (rows): ``lossjax`` (the engine, :func:`lossjax.run_sweep`); ``numpy``
(fully vectorised float32 broadcasting, in place, blocked over models so the working set
stays in cache: the strongest plain baseline); ``torch`` (the same in PyTorch with manual
gradients) and ``torch.func.vmap`` (``torch.func.grad`` of a per-model loss, vmapped over
models, Python loop over steps) when torch is installed (an optional extra); ``python
loop`` (one model at a time: plain Python floats for the neuron, small numpy arrays for the
MLP), timed on a few hundred models and reported per model-step.

Every baseline is a plain function ``f(n_models, steps, ...) -> dict`` of per-model numpy
arrays; the harness (:func:`run_bench`) times them and computes model-steps per second and
the lossjax speed-up over each row. Timings are wall clock after a warm-up call on a small
size; for lossjax the compile time is reported separately (the engine's ``compile_time_s``).

    lossjax bench --quick                   # seconds: 10^4 neurons × 50 steps, 64 MLPs × 20
    lossjax bench --json results/bench.json --figure results/bench.png
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

from lossjax.data.datasets import make_dataset
from lossjax.core.metrics import NEVER, Thresholds

__all__ = [
    "EngineRun",
    "FULL",
    "MLPProblem",
    "MLPSpec",
    "MLP_METRICS",
    "NEURON_METRICS",
    "NeuronSpec",
    "QUICK",
    "Row",
    "WORKLOADS",
    "format_table",
    "lossjax_mlp",
    "lossjax_neuron",
    "machine_info",
    "main",
    "mlp_numpy",
    "mlp_problem",
    "mlp_python_loop",
    "mlp_sweep",
    "mlp_torch",
    "mlp_torch_vmap",
    "neuron_grid",
    "neuron_numpy",
    "neuron_python_loop",
    "neuron_sweep",
    "neuron_torch",
    "neuron_torch_vmap",
    "plot_bench",
    "run_bench",
]

WORKLOADS = ("neuron", "mlp")

#: (models, steps, models for the Python loop) per workload.
FULL = {"neuron": (1000**2, 300, 14**2), "mlp": (1024, 200, 200)}
QUICK = {"neuron": (100**2, 50, 14**2), "mlp": (64, 20, 16)}

THRESHOLDS = Thresholds()  # the engine's defaults: target loss 1e-2, tiny 1e-6, σ' < 1% of 1/4


# --------------------------------------------------------------------------------------
# The neuron workload
# --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class NeuronSpec:
    """The texts' single-neuron example (seed 002): everything but the initial (w, b)."""

    x: float = 1.0
    y: float = 0.0
    learning_rate: float = 0.15
    low: float = -6.0
    high: float = 6.0
    max_slope: float = 0.25  # sup σ'


NEURON = NeuronSpec()

#: The per-model arrays every neuron implementation returns (names as in lossjax.metrics).
NEURON_METRICS = (
    "loss_final",
    "loss_min",
    "steps_to_target",
    "zero_grad_steps",
    "tiny_grad_steps",
    "saturated_init",
    "saturated_final",
    "saturated_mean",
    "dead_init",
    "dead_final",
    "longest_plateau",
    "first_nonfinite",
)
_COUNTS = ("steps_to_target", "zero_grad_steps", "tiny_grad_steps", "longest_plateau", "first_nonfinite")  # int32


def neuron_grid(n_models: int, spec: NeuronSpec = NEURON) -> tuple[np.ndarray, np.ndarray]:
    """Initial (w, b) of ``n_models`` neurons on a square grid over [low, high]², float64.

    Model ``i * side + j`` starts at ``(w_i, b_j)`` with ``w`` and ``b`` each
    ``linspace(low, high, side)``, ``side = √n_models`` (w is the slow axis).

    Raises:
      ValueError: ``n_models`` is not a positive perfect square.
    """
    side = math.isqrt(n_models) if n_models > 0 else 0
    if side * side != n_models or side == 0:
        raise ValueError(f"n_models must be a positive perfect square for the grid, got {n_models}")
    axis = np.linspace(spec.low, spec.high, side)
    w, b = np.meshgrid(axis, axis, indexing="ij")
    return w.ravel(), b.ravel()


def _check_steps(steps: int) -> None:
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")


def _neuron_init(n_models: int, steps: int, init, spec: NeuronSpec) -> tuple[np.ndarray, np.ndarray]:
    """Checks the arguments every neuron implementation takes; ``init`` defaults to the grid."""
    _check_steps(steps)
    w0, b0 = (np.asarray(a) for a in (neuron_grid(n_models, spec) if init is None else init))
    if w0.shape != (n_models,) or b0.shape != (n_models,):
        raise ValueError(f"init must be two arrays of shape ({n_models},), got {w0.shape}, {b0.shape}")
    return w0, b0


class _NeuronTracker:
    """The stall metrics of a batch of neurons, folded in one step at a time.

    Written once for numpy and torch (``xp`` is either module): both spell these operations
    the same way. Per step: :meth:`observe` with the loss and σ'(z) at θ_t (t = 0..T), then,
    for t < T, :meth:`observe_grad`. Follows :func:`lossjax.metrics.accumulate` exactly:
    ``steps_to_target`` and ``first_nonfinite`` are derived from how many of the T + 1
    evaluations came after the event.
    """

    def __init__(self, xp, like, steps: int, thresholds: Thresholds):
        self.xp, self.steps, self.th = xp, steps, thresholds
        self.saturation = thresholds.saturation_delta * NEURON.max_slope
        zeros = lambda dtype: xp.zeros_like(like, dtype=dtype)  # noqa: E731
        self.loss_min = xp.full_like(like, math.inf)
        self.previous = xp.zeros_like(like)
        self.reached = zeros(xp.bool_ if xp is np else xp.bool)
        self.nonfinite = xp.zeros_like(self.reached)
        self.evaluations_reached = zeros(xp.int32)  # evaluations t with the target reached
        self.evaluations_nonfinite = zeros(xp.int32)
        self.zero_grad = zeros(xp.int32)
        self.tiny_grad = zeros(xp.int32)
        self.saturated = zeros(xp.int32)
        self.plateau = zeros(xp.int32)
        self.longest_plateau = zeros(xp.int32)
        tiny = np.finfo(str(like.dtype).removeprefix("torch.")).tiny  # as in lossjax.metrics
        self.tiny = xp.full_like(like[:1], tiny)  # an array: torch.maximum takes no float

    def observe(self, t: int, loss, slope, w, b) -> None:
        xp, th = self.xp, self.th
        self.reached |= loss <= th.target
        self.evaluations_reached += self.reached
        self.nonfinite |= ~(xp.isfinite(loss) & xp.isfinite(w) & xp.isfinite(b))
        self.evaluations_nonfinite += self.nonfinite
        xp.fmin(self.loss_min, loss, out=self.loss_min)
        if t >= 1:
            improvement = (self.previous - loss) / xp.maximum(xp.abs(self.previous), self.tiny)
            flat = ~(improvement >= th.plateau_tau) & ~self.reached
            self.plateau += 1
            self.plateau *= flat
            xp.maximum(self.longest_plateau, self.plateau, out=self.longest_plateau)
        self.previous[...] = loss
        saturated, dead = slope < self.saturation, slope == 0
        if t == 0:
            self.saturated_init, self.dead_init = saturated, dead
        if t < self.steps:
            self.saturated += saturated
        else:
            self.saturated_final, self.dead_final, self.loss_final = saturated, dead, loss * 1

    def observe_grad(self, grad_w, grad_b) -> None:
        xp = self.xp
        self.zero_grad += (grad_w == 0) & (grad_b == 0)
        norm = xp.sqrt(grad_w * grad_w + grad_b * grad_b)
        self.tiny_grad += ~(norm >= self.th.tiny_grad)

    def result(self) -> dict[str, np.ndarray]:
        evaluations = self.steps + 1
        first = lambda seen, count: np.where(seen, evaluations - count, NEVER).astype(np.int32)  # noqa: E731
        out = {
            "loss_final": self.loss_final,
            "loss_min": self.loss_min,
            "steps_to_target": first(np.asarray(self.reached), np.asarray(self.evaluations_reached)),
            "zero_grad_steps": self.zero_grad,
            "tiny_grad_steps": self.tiny_grad,
            "saturated_init": self.saturated_init,
            "saturated_final": self.saturated_final,
            "saturated_mean": np.asarray(self.saturated) / self.steps,
            "dead_init": self.dead_init,
            "dead_final": self.dead_final,
            "longest_plateau": self.longest_plateau,
            "first_nonfinite": first(np.asarray(self.nonfinite), np.asarray(self.evaluations_nonfinite)),
        }
        out = {k: np.asarray(v) for k, v in out.items()}
        for k in ("saturated_init", "saturated_final", "saturated_mean", "dead_init", "dead_final"):
            out[k] = out[k].astype(out["loss_final"].dtype)  # fractions of the one unit
        return out


def _concatenate(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _over_blocks(train_block: Callable[[slice], dict], n_models: int, block: int, threads: int) -> dict[str, np.ndarray]:
    """``train_block`` on consecutive slices of ``block`` models, on ``threads`` threads.

    numpy releases the GIL inside its loops, so independent blocks run in parallel.
    """
    slices = [slice(start, start + block) for start in range(0, n_models, block)]
    if threads <= 1:
        return _concatenate([train_block(s) for s in slices])
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(threads) as pool:
        return _concatenate(list(pool.map(train_block, slices)))


def neuron_numpy(
    n_models: int,
    steps: int,
    *,
    init: tuple[np.ndarray, np.ndarray] | None = None,
    dtype: str = "float32",
    block: int = 1 << 15,
    threads: int = 1,
    thresholds: Thresholds = THRESHOLDS,
    spec: NeuronSpec = NEURON,
) -> dict[str, np.ndarray]:
    """Trains ``n_models`` neurons with numpy broadcasting, ``block`` models at a time.

    Every operation writes into a preallocated buffer, and blocks of 32768 models keep the
    dozen working arrays (128 KiB each in float32) in the L2 cache across the step loop
    (1.6× faster than whole 10^6-model arrays on a 2-core Xeon).

    Args:
      n_models: number of neurons; a perfect square when ``init`` is not given.
      steps: number of SGD updates T.
      init: initial ``(w, b)``, each of shape ``(n_models,)``; default :func:`neuron_grid`.
      dtype: ``"float32"`` or ``"float64"``.
      threads: blocks trained at once (the results do not depend on it).
    Returns:
      ``NEURON_METRICS`` -> array of shape ``(n_models,)``.
    """
    w0, b0 = _neuron_init(n_models, steps, init, spec)
    train_block = lambda s: _neuron_numpy_block(w0[s], b0[s], steps, np.dtype(dtype), thresholds, spec)  # noqa: E731
    return _over_blocks(train_block, n_models, block, threads)


@np.errstate(all="ignore")  # exp(−z) → inf gives σ = 0; ΔL / tiny → inf: both intended
def _neuron_numpy_block(w0, b0, steps, dtype, thresholds, spec) -> dict[str, np.ndarray]:
    w, b = w0.astype(dtype), b0.astype(dtype)
    x, y, lr = (dtype.type(v) for v in (spec.x, spec.y, spec.learning_rate))
    a, loss, slope, delta, step = (np.empty_like(w) for _ in range(5))
    tracker = _NeuronTracker(np, w, steps, thresholds)
    for t in range(steps + 1):
        np.multiply(w, x, out=a)  # a = σ(w x + b) = 1 / (1 + exp(-z))
        a += b
        np.negative(a, out=a)
        np.exp(a, out=a)
        a += 1
        np.reciprocal(a, out=a)
        np.subtract(a, y, out=delta)  # dC/da = a - y
        np.multiply(delta, delta, out=loss)
        loss *= 0.5
        np.subtract(1, a, out=slope)  # σ'(z) = a (1 - a)
        slope *= a
        tracker.observe(t, loss, slope, w, b)
        if t == steps:
            break
        delta *= slope  # dC/db = (a - y) σ'(z); dC/dw = dC/db · x
        np.multiply(delta, x, out=step)
        tracker.observe_grad(step, delta)
        step *= lr
        w -= step
        delta *= lr
        b -= delta
    return tracker.result()


def neuron_torch(
    n_models: int,
    steps: int,
    *,
    init: tuple[np.ndarray, np.ndarray] | None = None,
    dtype: str = "float32",
    block: int = 1 << 17,
    thresholds: Thresholds = THRESHOLDS,
    spec: NeuronSpec = NEURON,
) -> dict[str, np.ndarray]:
    """:func:`neuron_numpy` in PyTorch (``torch.sigmoid``, in-place ops, manual gradients)."""
    w0, b0 = _neuron_init(n_models, steps, init, spec)
    train_block = lambda s: _neuron_torch_block(w0[s], b0[s], steps, dtype, thresholds, spec)  # noqa: E731
    return _over_blocks(train_block, n_models, block, threads=1)  # torch threads inside each op


def _neuron_torch_block(w0, b0, steps, dtype, thresholds, spec) -> dict[str, np.ndarray]:
    import torch

    w, b = (torch.tensor(v, dtype=getattr(torch, dtype)) for v in (w0, b0))
    a, loss, slope, delta, step = (torch.empty_like(w) for _ in range(5))
    tracker = _NeuronTracker(torch, w, steps, thresholds)
    with torch.no_grad():
        for t in range(steps + 1):
            torch.mul(w, spec.x, out=a)
            a += b
            torch.sigmoid(a, out=a)
            torch.sub(a, spec.y, out=delta)
            torch.mul(delta, delta, out=loss)
            loss *= 0.5
            torch.sub(1, a, out=slope)
            slope *= a
            tracker.observe(t, loss, slope, w, b)
            if t == steps:
                break
            delta *= slope
            torch.mul(delta, spec.x, out=step)
            tracker.observe_grad(step, delta)
            w.sub_(step, alpha=spec.learning_rate)
            b.sub_(delta, alpha=spec.learning_rate)
    return tracker.result()


def neuron_torch_vmap(
    n_models: int,
    steps: int,
    *,
    init: tuple[np.ndarray, np.ndarray] | None = None,
    dtype: str = "float32",
    thresholds: Thresholds = THRESHOLDS,
    spec: NeuronSpec = NEURON,
) -> dict[str, np.ndarray]:
    """``torch.func.grad`` of one neuron's loss, ``torch.func.vmap``-ed over all models.

    The per-model function returns the loss and σ'(z) as auxiliary outputs, so each step is one
    vmapped call; the metrics are then folded in with batched ops.
    """
    import torch
    from torch.func import grad, vmap

    w0, b0 = _neuron_init(n_models, steps, init, spec)
    tdtype = getattr(torch, dtype)
    w, b = torch.tensor(w0, dtype=tdtype), torch.tensor(b0, dtype=tdtype)

    def loss_fn(w, b):
        a = torch.sigmoid(w * spec.x + b)
        loss = 0.5 * (spec.y - a) ** 2
        return loss, (loss, a * (1 - a))

    step_fn = vmap(grad(loss_fn, argnums=(0, 1), has_aux=True))
    tracker = _NeuronTracker(torch, w, steps, thresholds)
    for t in range(steps + 1):
        (grad_w, grad_b), (loss, slope) = step_fn(w, b)
        tracker.observe(t, loss, slope, w, b)
        if t == steps:
            break
        tracker.observe_grad(grad_w, grad_b)
        w = w - spec.learning_rate * grad_w
        b = b - spec.learning_rate * grad_b
    return tracker.result()


def neuron_python_loop(
    n_models: int,
    steps: int,
    *,
    init: tuple[np.ndarray, np.ndarray] | None = None,
    thresholds: Thresholds = THRESHOLDS,
    spec: NeuronSpec = NEURON,
) -> dict[str, np.ndarray]:
    """One neuron at a time in plain Python floats (float64): the reference for the others.

    The same formulas in the same order as :func:`neuron_numpy`, so that with
    ``dtype="float64"`` the two agree to the last bit (up to the libm ``exp``).
    """
    w0, b0 = _neuron_init(n_models, steps, init, spec)
    th = thresholds
    saturation = th.saturation_delta * spec.max_slope
    tiny = float(np.finfo(np.float64).tiny)
    x, y, lr = spec.x, spec.y, spec.learning_rate
    isfinite, exp, sqrt, inf = math.isfinite, math.exp, math.sqrt, math.inf
    rows = []
    for w, b in zip(w0.tolist(), b0.tolist()):
        loss_min, previous = inf, 0.0
        steps_to_target = first_nonfinite = NEVER
        zero = tiny_count = saturated = plateau = longest = 0
        for t in range(steps + 1):
            z = w * x + b
            try:
                a = 1.0 / (1.0 + exp(-z))
            except OverflowError:  # exp(-z) = inf, as numpy: σ = 0
                a = 0.0
            delta = a - y
            loss = delta * delta * 0.5
            slope = (1 - a) * a
            if steps_to_target == NEVER and loss <= th.target:
                steps_to_target = t
            if first_nonfinite == NEVER and not (isfinite(loss) and isfinite(w) and isfinite(b)):
                first_nonfinite = t
            if loss < loss_min:  # fmin: NaN ignored
                loss_min = loss
            if t >= 1:
                improvement = (previous - loss) / max(abs(previous), tiny)
                if not improvement >= th.plateau_tau and steps_to_target == NEVER:
                    plateau += 1
                    longest = max(longest, plateau)
                else:
                    plateau = 0
            previous = loss
            if t == 0:
                saturated_init, dead_init = slope < saturation, slope == 0
            if t == steps:
                break
            saturated += slope < saturation
            delta *= slope
            grad_w = delta * x
            zero += grad_w == 0 and delta == 0
            tiny_count += not sqrt(grad_w * grad_w + delta * delta) >= th.tiny_grad
            w -= grad_w * lr
            b -= delta * lr
        rows.append((
            loss, loss_min, steps_to_target, zero, tiny_count, saturated_init, slope < saturation,
            saturated / steps, dead_init, slope == 0, longest, first_nonfinite,
        ))  # fmt: skip
    columns = list(zip(*rows)) if rows else [()] * len(NEURON_METRICS)
    return {k: np.asarray(c, dtype=np.int32 if k in _COUNTS else np.float64) for k, c in zip(NEURON_METRICS, columns)}


# --------------------------------------------------------------------------------------
# The MLP workload
# --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class MLPSpec:
    """The MLP workload: everything but the number of models and steps."""

    depth: int = 3
    width: int = 16
    n_train: int = 128
    noise: float = 0.25  # std of the (truncated) Gaussian noise around the XOR corners
    data_seed: int = 0
    init_seed: int = 0  # one LeCun-normal draw shared by every model, as the sweep's one seed gives
    lr_low: float = 1e-2
    lr_high: float = 1.0

    def learning_rates(self, n_models: int) -> np.ndarray:
        """Learning rates log-spaced over [lr_low, lr_high], one per model."""
        return np.geomspace(self.lr_low, self.lr_high, n_models)


MLP = MLPSpec()

#: The per-model arrays every MLP implementation returns: (M,) and (M, depth + 1).
MLP_METRICS = ("loss_final", "layer_grad_norm_init")


class MLPProblem(NamedTuple):
    """Data, initial parameters and learning rates of ``M`` MLPs (float64 numpy arrays).

    ``weights[l]`` has shape ``(M, fan_in, fan_out)`` and ``biases[l]`` ``(M, fan_out)``;
    layer ``l < depth`` is hidden layer ``l`` (tanh), the last one is the sigmoid output unit.
    """

    x: np.ndarray  # (n, 2)
    y: np.ndarray  # (n,) in {0, 1}
    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...]
    learning_rates: np.ndarray  # (M,)

    @property
    def n_models(self) -> int:
        return len(self.learning_rates)

    def subset(self, index) -> MLPProblem:
        """The models ``index`` (a slice or an integer array), sharing the data."""
        return self._replace(
            weights=tuple(w[index] for w in self.weights),
            biases=tuple(b[index] for b in self.biases),
            learning_rates=self.learning_rates[index],
        )


def mlp_problem(n_models: int, spec: MLPSpec = MLP) -> MLPProblem:
    """The MLP workload for ``n_models`` models, initialised exactly as lossjax initialises it.

    The initial parameters are the ones the engine draws for run seed ``spec.init_seed``
    (:func:`lossjax.models.init_from_scheme` with the key :mod:`lossjax.train` derives from
    the seed), in float32, so that every implementation trains the same networks and the
    lossjax row can be checked against the others. Drawing them is not timed.
    """
    import jax
    import jax.numpy as jnp

    from lossjax.core import models

    if n_models < 1:
        raise ValueError(f"n_models must be >= 1, got {n_models}")
    data = make_dataset("xor", seed=spec.data_seed, n_train=spec.n_train, noise=spec.noise)
    config = models.ModelConfig(kind="mlp", n_inputs=2, n_outputs=1, depth=spec.depth, width=spec.width, hidden_activation="tanh")
    key = jax.random.fold_in(jax.random.key(spec.init_seed), 0)  # as lossjax.train's init_params
    f32 = jnp.float32
    params = models.init_from_scheme(
        config, key, jnp.int32(models.init_scheme_index("lecun")), f32(1.0), f32(0.0), f32(0.0), f32
    )
    layers = models.layer_params(config, params)
    tile = lambda a: np.repeat(np.asarray(a, np.float64)[None], n_models, axis=0)  # noqa: E731
    return MLPProblem(
        x=data.x_train,
        y=data.y_train[:, 0],
        weights=tuple(tile(layer["kernel"]) for layer in layers),
        biases=tuple(tile(layer["bias"]) for layer in layers),
        learning_rates=spec.learning_rates(n_models),
    )


def _check_problem(n_models: int, steps: int, problem: MLPProblem | None) -> MLPProblem:
    """Checks the arguments every MLP implementation takes; ``problem`` defaults to :func:`mlp_problem`."""
    _check_steps(steps)
    problem = mlp_problem(n_models) if problem is None else problem
    if problem.n_models != n_models:
        raise ValueError(f"problem holds {problem.n_models} models, expected {n_models}")
    return problem


def _np_bce_logits(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``max(z, 0) − z y + log(1 + e^{−|z|})`` elementwise (as :mod:`lossjax.losses`)."""
    return np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))


def mlp_numpy(
    n_models: int,
    steps: int,
    *,
    problem: MLPProblem | None = None,
    dtype: str = "float32",
    block: int = 64,
    threads: int = 1,
) -> dict[str, np.ndarray]:
    """Trains ``n_models`` MLPs with batched numpy matmuls, ``block`` models at a time.

    Forward and backward passes are written out by hand (``np.matmul`` over a leading model
    axis; tanh' = 1 − h²; dC/dlogit = (σ(z) − y) / n for the mean binary cross-entropy).
    Blocks of 64 models keep a layer's activations (64 × 128 × 16 floats) in cache.

    Args:
      n_models: number of networks.
      steps: number of full-batch SGD updates T.
      problem: data, initial parameters, learning rates; default :func:`mlp_problem`.
      dtype: ``"float32"`` or ``"float64"``.
      threads: blocks trained at once (the results do not depend on it).
    Returns:
      ``loss_final`` (M,) at θ_T and ``layer_grad_norm_init`` (M, depth + 1), the 2-norm of
      each layer's weight gradient at θ_0.
    """
    problem = _check_problem(n_models, steps, problem)
    train_block = lambda s: _mlp_numpy_block(problem.subset(s), steps, np.dtype(dtype))  # noqa: E731
    return _over_blocks(train_block, n_models, block, threads)


@np.errstate(over="ignore")  # exp(−z) → inf gives σ(z) = 0, intended
def _mlp_numpy_block(problem: MLPProblem, steps: int, dtype: np.dtype) -> dict[str, np.ndarray]:
    # Batch-last layout: weights as (M, fan_out, fan_in), activations as (M, units, n), so
    # bias adds, the output layer's outer products and the bias-gradient sums all run along
    # the long, contiguous sample axis.
    x, y = problem.x.astype(dtype), problem.y.astype(dtype)
    weights = [np.array(w.swapaxes(-1, -2), dtype=dtype, order="C") for w in problem.weights]  # copies
    biases = [b.astype(dtype)[:, :, None] for b in problem.biases]
    lr = problem.learning_rates.astype(dtype)[:, None, None]
    n = dtype.type(x.shape[0])
    ones = np.ones((x.shape[0], 1), dtype)  # sums over samples as a matmul: 3× faster than .sum
    norms = None
    for t in range(steps + 1):
        inputs = [x.T]  # inputs[l]: what layer l sees, (M, fan_in, n); tanh outputs from l = 1 on
        for w, b in zip(weights[:-1], biases[:-1]):
            h = np.matmul(w, inputs[-1])
            h += b
            np.tanh(h, out=h)
            inputs.append(h)
        logit = np.matmul(weights[-1], inputs[-1])
        logit += biases[-1]
        if t == steps:
            return {"loss_final": _np_bce_logits(logit[:, 0], y).mean(axis=1), "layer_grad_norm_init": norms}
        g = np.negative(logit, out=logit)  # g = dC/dz of the current layer, (M, fan_out, n)
        np.exp(g, out=g)
        g += 1
        np.reciprocal(g, out=g)
        g -= y
        g /= n
        grads = []
        for layer in reversed(range(len(weights))):
            h = inputs[layer]
            grads.append((np.matmul(g, h.swapaxes(-1, -2)), np.matmul(g, ones)))
            if layer:
                w = weights[layer].swapaxes(-1, -2)
                g = w * g if g.shape[1] == 1 else np.matmul(w, g)  # an outer product for the output unit
                np.square(h, out=h)
                np.subtract(1, h, out=h)
                g *= h
        grads.reverse()
        if t == 0:
            norms = np.stack([np.sqrt(np.square(gw).sum(axis=(1, 2))) for gw, _ in grads], axis=1)
        for w, b, (gw, gb) in zip(weights, biases, grads):
            gw *= lr
            w -= gw
            gb *= lr
            b -= gb
    raise AssertionError("unreachable")


def mlp_torch(
    n_models: int,
    steps: int,
    *,
    problem: MLPProblem | None = None,
    dtype: str = "float32",
) -> dict[str, np.ndarray]:
    """:func:`mlp_numpy` in PyTorch: batched ``torch.baddbmm`` forward pass, autograd backward.

    The gradient of the sum over models of each model's mean loss is every model's own
    gradient. Autograd measured as fast as hand-written gradients here (±10 %), and it checks
    :func:`mlp_numpy`'s hand-derived backward pass independently.
    """
    import torch

    problem = _check_problem(n_models, steps, problem)
    tdtype = getattr(torch, dtype)
    as_t = lambda a: torch.tensor(a, dtype=tdtype)  # noqa: E731
    x = as_t(problem.x).expand(n_models, -1, -1)
    y = as_t(problem.y).expand(n_models, -1)
    weights = [as_t(w).requires_grad_() for w in problem.weights]
    biases = [as_t(b)[:, None, :].requires_grad_() for b in problem.biases]  # (M, 1, fan_out)
    lr = as_t(problem.learning_rates)[:, None, None]

    def losses():
        h = x
        for w, b in zip(weights[:-1], biases[:-1]):
            h = torch.baddbmm(b, h, w).tanh()
        logit = torch.baddbmm(biases[-1], h, weights[-1])[..., 0]
        return torch.nn.functional.binary_cross_entropy_with_logits(logit, y, reduction="none").mean(dim=1)

    for t in range(steps):
        grads = torch.autograd.grad(losses().sum(), weights + biases)
        with torch.no_grad():
            if t == 0:
                norms = torch.stack([g.square().sum(dim=(1, 2)).sqrt() for g in grads[: len(weights)]], dim=1)
            for param, g in zip(weights + biases, grads):
                param.sub_(g.mul_(lr))
    with torch.no_grad():
        return {"loss_final": losses().numpy(), "layer_grad_norm_init": norms.numpy()}


def mlp_torch_vmap(
    n_models: int,
    steps: int,
    *,
    problem: MLPProblem | None = None,
    dtype: str = "float32",
) -> dict[str, np.ndarray]:
    """``torch.func.grad`` of one MLP's loss, ``torch.func.vmap``-ed over the models."""
    import torch
    from torch.func import grad, vmap

    problem = _check_problem(n_models, steps, problem)
    tdtype = getattr(torch, dtype)
    as_t = lambda a: torch.tensor(a, dtype=tdtype)  # noqa: E731
    x, y = as_t(problem.x), as_t(problem.y)
    params = ([as_t(w) for w in problem.weights], [as_t(b) for b in problem.biases])
    lr = as_t(problem.learning_rates)

    def loss_fn(params, x, y):
        weights, biases = params
        h = x
        for w, b in zip(weights[:-1], biases[:-1]):
            h = torch.tanh(h @ w + b)
        logit = (h @ weights[-1] + biases[-1])[:, 0]
        return torch.nn.functional.binary_cross_entropy_with_logits(logit, y)

    grad_fn = vmap(grad(loss_fn), in_dims=(0, None, None))
    for t in range(steps):
        gw, gb = grad_fn(params, x, y)
        if t == 0:
            norms = torch.stack([g.square().sum(dim=(1, 2)).sqrt() for g in gw], dim=1).numpy()
        params = (
            [w - lr[:, None, None] * g for w, g in zip(params[0], gw)],
            [b - lr[:, None] * g for b, g in zip(params[1], gb)],
        )
    with torch.no_grad():
        loss = vmap(loss_fn, in_dims=(0, None, None))(params, x, y)
    return {"loss_final": loss.numpy(), "layer_grad_norm_init": norms}


def mlp_python_loop(
    n_models: int,
    steps: int,
    *,
    problem: MLPProblem | None = None,
    dtype: str = "float32",
) -> dict[str, np.ndarray]:
    """One MLP at a time: :func:`mlp_numpy`'s maths on one model's small arrays per step."""
    problem = _check_problem(n_models, steps, problem)
    return _over_blocks(lambda s: _mlp_numpy_block(problem.subset(s), steps, np.dtype(dtype)), n_models, 1, 1)


# --------------------------------------------------------------------------------------
# The lossjax rows: the same workloads as sweeps for lossjax.run_sweep
# --------------------------------------------------------------------------------------


class EngineRun(NamedTuple):
    """What a lossjax row yields: per-model results and the engine's own timings."""

    result: dict[str, np.ndarray]
    compile_time_s: float
    run_time_s: float
    wall_time_s: float
    devices: int


def neuron_sweep(n_models: int, steps: int, spec: NeuronSpec = NEURON, thresholds: Thresholds = THRESHOLDS) -> dict:
    """The neuron workload as a sweep dict: the grid of :func:`neuron_grid`, one compile."""
    side = math.isqrt(n_models)
    neuron_grid(n_models, spec)  # raises unless n_models is a perfect square
    axis = {"start": spec.low, "stop": spec.high, "num": side}
    return {
        "name": "bench-neuron",
        "model": {"kind": "neuron", "activation": ["sigmoid"]},
        "data": {"dataset": "single", "params": {"x": spec.x, "y": spec.y}},
        "train": {
            "steps": steps,
            "loss": ["quadratic"],
            "optimizer": ["sgd"],
            "learning_rate": [spec.learning_rate],
            "dtype": ["float32"],
        },
        "init": {"w": dict(axis), "b": dict(axis)},
        "metrics": dataclasses.asdict(thresholds),
    }


def mlp_sweep(n_models: int, steps: int, *, impl: str = "flax", spec: MLPSpec = MLP) -> dict:
    """The MLP workload as a sweep dict: ``n_models`` learning rates, one shared init seed."""
    return {
        "name": "bench-mlp",
        "model": {
            "kind": "mlp",
            "depth": [spec.depth],
            "width": [spec.width],
            "hidden_activation": ["tanh"],
            "activation": ["sigmoid"],
            "impl": impl,
        },
        "data": {"dataset": "xor", "seed": spec.data_seed, "params": {"n_train": spec.n_train, "noise": spec.noise}},
        "train": {
            "steps": steps,
            "loss": ["bce"],
            "optimizer": ["sgd"],
            "learning_rate": spec.learning_rates(n_models).tolist(),
            "dtype": ["float32"],
            "seed": spec.init_seed,
        },
        "init": {"scheme": ["lecun"]},
        "metrics": {"target_metric": "loss", "target": 1e-2},
    }


def _run_engine(sweep: dict, fields: Sequence[str], model_dims: tuple[str, ...]) -> EngineRun:
    from lossjax import run_sweep

    start = time.perf_counter()
    ds = run_sweep(sweep)
    wall = time.perf_counter() - start
    result = {}
    for field in fields:
        var = ds[field].transpose(..., *model_dims, *(("layer",) if "layer" in ds[field].dims else ()))
        n = math.prod(ds.sizes[d] for d in model_dims)
        result[field] = var.values.reshape((n, -1) if "layer" in var.dims else (n,))
    attrs = ds.attrs
    return EngineRun(result, float(attrs["compile_time_s"]), float(attrs["run_time_s"]), wall, len(json.loads(attrs["devices"])))


def lossjax_neuron(n_models: int, steps: int) -> EngineRun:
    """The neuron workload through :func:`lossjax.run_sweep`, models in :func:`neuron_grid` order."""
    return _run_engine(neuron_sweep(n_models, steps), NEURON_METRICS, ("w0", "b0"))


def lossjax_mlp(n_models: int, steps: int, *, impl: str = "flax") -> EngineRun:
    """The MLP workload through :func:`lossjax.run_sweep` (``impl``: ``"flax"`` or ``"pytree"``)."""
    return _run_engine(mlp_sweep(n_models, steps, impl=impl), MLP_METRICS, ("learning_rate",))


# --------------------------------------------------------------------------------------
# The harness
# --------------------------------------------------------------------------------------


@dataclasses.dataclass
class Row:
    """One line of the table: an implementation timed on a workload."""

    workload: str
    implementation: str
    models: int
    steps: int
    seconds: float | None  # None: skipped (see note)
    compile_seconds: float | None = None
    note: str = ""
    max_rel_diff: float | None = None  # max |Δ loss_final| / loss_final against numpy, same models
    speedup: float | None = None  # lossjax model-steps/s ÷ this row's

    @property
    def model_steps_per_s(self) -> float | None:
        if not self.seconds:
            return None
        return self.models * self.steps / self.seconds


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover (macOS, Windows)
        return os.cpu_count() or 1


def _torch_or_none():
    # libgomp's default spin-waiting made 2-thread torch 25× slower than 1 thread on a 2-vCPU
    # VM; passive waiting recovers the 1-thread speed. Read once, when torch is first imported.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        import torch
    except ImportError:
        return None
    return torch


def _load_average() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):  # pragma: no cover (Windows)
        return None


def _timed(fn: Callable[[], dict]) -> tuple[dict, float]:
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def _max_rel_diff(result: dict, reference: dict) -> float:
    a = np.asarray(result["loss_final"], np.float64)
    b = np.asarray(reference["loss_final"], np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), np.finfo(np.float32).tiny)))


def _bench_workload(workload: str, n: int, steps: int, n_loop: int, *, progress: Callable[[str], None]) -> list[Row]:
    """Times every implementation of one workload; see :func:`run_bench`."""
    if workload == "neuron":
        w0, b0 = neuron_grid(n)
        side, k = math.isqrt(n), math.isqrt(n_loop)
        picks = np.unique(np.linspace(0, side - 1, k).round().astype(int))
        loop_index = (picks[:, None] * side + picks[None, :]).ravel()  # a coarse sub-grid of the grid
        full = {"init": (w0, b0)}
        loop = {"init": (w0[loop_index], b0[loop_index])}
        warm = (16, {"init": neuron_grid(16)})
        numpy_fn, torch_fn, vmap_fn, loop_fn = neuron_numpy, neuron_torch, neuron_torch_vmap, neuron_python_loop
        engines = [("lossjax", lambda: lossjax_neuron(n, steps))]
    else:
        problem = mlp_problem(n)
        loop_index = np.unique(np.linspace(0, n - 1, min(n_loop, n)).round().astype(int))  # spans the learning rates
        full = {"problem": problem}
        loop = {"problem": problem.subset(loop_index)}
        warm = (2, {"problem": problem.subset(slice(0, 2))})
        numpy_fn, torch_fn, vmap_fn, loop_fn = mlp_numpy, mlp_torch, mlp_torch_vmap, mlp_python_loop
        engines = [(f"lossjax ({impl})", lambda impl=impl: lossjax_mlp(n, steps, impl=impl)) for impl in ("flax", "pytree")]

    def baseline(label, fn, kwargs, models, note=""):
        progress(f"{workload}: {label}")
        fn(warm[0], 2, **warm[1])  # first-call costs (imports, thread pools, allocator) off the clock
        result, seconds = _timed(lambda: fn(models, steps, **kwargs))
        rows.append(Row(workload, label, models, steps, seconds, note=note))
        return result

    rows: list[Row] = []
    cores = _cores()
    numpy_threaded = lambda *args, **kwargs: numpy_fn(*args, threads=cores, **kwargs)  # noqa: E731
    reference = baseline("numpy", numpy_threaded, full, n, note=f"float32, blocks of models on {cores} threads")
    rows[-1].max_rel_diff = 0.0
    for label, engine in engines:
        progress(f"{workload}: {label}")
        run = engine()
        rows.append(Row(workload, label, n, steps, run.run_time_s, run.compile_time_s,
                        note=f"float32 on {run.devices} XLA device(s); run_sweep wall {run.wall_time_s:.2f} s",
                        max_rel_diff=_max_rel_diff(run.result, reference)))  # fmt: skip
    torch = _torch_or_none()
    if torch is None:
        for label in ("torch", "torch.func.vmap"):
            note = "skipped: torch is not installed (pip install 'lossjax[bench]')"
            rows.append(Row(workload, label, n, steps, None, note=note))
    else:
        torch.set_num_threads(cores)
        threads = f"float32, {torch.get_num_threads()} threads"
        for label, fn in (("torch", torch_fn), ("torch.func.vmap", vmap_fn)):
            result = baseline(label, fn, full, n, note=threads)
            rows[-1].max_rel_diff = _max_rel_diff(result, reference)
    result = baseline("python loop", loop_fn, loop, len(loop_index),
                      note=f"timed on {len(loop_index)} models, rate per model-step extrapolated"
                      + (" (Python floats: float64)" if workload == "neuron" else " (float32)"))  # fmt: skip
    rows[-1].max_rel_diff = _max_rel_diff(result, {k: v[loop_index] for k, v in reference.items()})

    engine_rate = next(r.model_steps_per_s for r in rows if r.implementation.startswith("lossjax"))
    for row in rows:
        if row.model_steps_per_s:
            row.speedup = engine_rate / row.model_steps_per_s
    return rows


def machine_info() -> dict[str, Any]:
    """Where the benchmark ran: CPU count, library versions, JAX backend."""
    import jax

    torch = _torch_or_none()
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": _cores(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "jax": jax.__version__,
        "jax_backend": jax.default_backend(),
        "jax_devices": [str(d) for d in jax.devices()],
        "torch": torch.__version__ if torch is not None else None,
        "torch_threads": torch.get_num_threads() if torch is not None else None,
        "load_average": _load_average(),  # other processes competing for the cores, when > 0
    }


def format_table(rows: Sequence[Row]) -> str:
    """The rows as a fixed-width text table."""
    header = (
        "workload", "implementation", "models", "steps", "seconds", "compile s", "model-steps/s",
        "lossjax ×", "max rel Δloss", "note",
    )  # fmt: skip
    lines = []
    for r in rows:
        rate = r.model_steps_per_s
        lines.append((
            r.workload, r.implementation, f"{r.models:,}", str(r.steps),
            "-" if r.seconds is None else f"{r.seconds:.3f}",
            "" if r.compile_seconds is None else f"{r.compile_seconds:.2f}",
            "-" if rate is None else f"{rate:.3g}",
            "-" if r.speedup is None else f"{r.speedup:.3g}",
            "" if r.max_rel_diff is None else f"{r.max_rel_diff:.1e}",
            r.note,
        ))  # fmt: skip
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]

    def fmt(cells):  # text columns left-aligned, numbers right-aligned
        return "  ".join(c.ljust(w) if i in (0, 1, 9) else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([fmt(header), fmt(["-" * w for w in widths]), *map(fmt, lines)]).rstrip()


def plot_bench(rows: Sequence[Row], path: str) -> None:
    """Bar chart of model-steps/s per implementation (log scale), one panel per workload."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    workloads = list(dict.fromkeys(r.workload for r in rows))
    fig, axes = plt.subplots(1, len(workloads), figsize=(6.5 * len(workloads), 4), squeeze=False)
    for ax, workload in zip(axes[0], workloads):
        timed = [r for r in rows if r.workload == workload and r.seconds]
        labels = [r.implementation for r in timed]
        rates = [r.model_steps_per_s for r in timed]
        colors = ["tab:blue" if r.implementation.startswith("lossjax") else "tab:gray" for r in timed]
        left = 10 ** math.floor(math.log10(min(rates)))  # bars start at a round decade
        ax.barh(labels, [v - left for v in rates], left=left, color=colors)
        ax.set_xscale("log")
        ax.set_xlim(left, max(rates) * 20)  # room for the labels
        ax.invert_yaxis()
        for i, r in enumerate(timed):
            text = f"{rates[i]:.3g}/s" + ("" if r.speedup == 1 else f"   lossjax ×{r.speedup:.3g}")
            ax.annotate(text, (rates[i], i), xytext=(4, 0), textcoords="offset points", va="center", fontsize=8)
        first = timed[0]
        ax.set_title(f"{workload}: {first.models:,} models × {first.steps} steps")
        ax.set_xlabel("model-steps per second (log scale)")
    fig.suptitle("lossjax ×r: lossjax's model-steps/s is r times that row's", fontsize=9, y=0.02, va="bottom")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run_bench(
    quick: bool = False,
    json_path: str | None = None,
    figure_path: str | None = None,
    workloads: Sequence[str] = WORKLOADS,
    *,
    verbose: bool = True,
) -> dict[str, Any]:
    """Times lossjax and every baseline on each workload, prints a table, writes JSON and a figure.

    lossjax uses the XLA devices that exist when jax is first imported: ``lossjax bench``
    exposes one per CPU core (:func:`lossjax.cli.use_all_cpu_cores`); from Python, call that
    before anything imports jax to get the same. numpy and torch use every core too.

    Args:
      quick: a smoke run of a few seconds (:data:`QUICK` sizes) instead of :data:`FULL`.
      json_path: where to write the results as JSON (machine info included); None: nowhere.
      figure_path: where to save the bar chart (PNG, PDF, ... by extension); None: no figure.
      workloads: any of ``"neuron"``, ``"mlp"``.
      verbose: print progress and the table to stdout.
    Returns:
      The JSON document as a dict: ``machine``, ``quick``, ``sizes``, ``rows``.
    """
    unknown = [w for w in workloads if w not in WORKLOADS]
    if unknown or not workloads:
        raise ValueError(f"workloads must be some of {WORKLOADS}, got {tuple(workloads)}")
    sizes = QUICK if quick else FULL
    say = print if verbose else (lambda _: None)
    load_before = _load_average()
    rows: list[Row] = []
    for workload in workloads:
        n, steps, n_loop = sizes[workload]
        rows += _bench_workload(workload, n, steps, n_loop, progress=lambda s: say(f"timing {s} ..."))
    table = format_table(rows)
    say(table)
    from lossjax.io.results import peak_rss_mb

    say(f"peak resident memory of this process (all rows): {peak_rss_mb():.0f} MiB")
    doc = {
        "machine": {**machine_info(), "load_average_before": load_before, "peak_rss_mb": peak_rss_mb()},
        "quick": quick,
        "sizes": {w: dict(zip(("models", "steps", "loop_models"), sizes[w])) for w in workloads},
        "rows": [{**dataclasses.asdict(r), "model_steps_per_s": r.model_steps_per_s} for r in rows],
    }
    if json_path:
        with open(json_path, "w") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")
    if figure_path:
        plot_bench(rows, figure_path)
    return doc


def main(argv: Sequence[str] | None = None) -> int:
    """``lossjax bench``: see the module docstring."""
    parser = argparse.ArgumentParser(prog="lossjax bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 10^4 neurons × 50 steps, 64 MLPs × 20 steps")
    parser.add_argument("--json", metavar="FILE", help="write the results (and machine info) as JSON")
    parser.add_argument("--figure", metavar="FILE", help="save a bar chart of model-steps/s")
    parser.add_argument("--workload", action="append", choices=WORKLOADS, help="run only this workload (repeatable)")
    args = parser.parse_args(argv)
    run_bench(quick=args.quick, json_path=args.json, figure_path=args.figure, workloads=tuple(args.workload or WORKLOADS))
    return 0
