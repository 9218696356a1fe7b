"""The neuron workload's baselines: numpy, PyTorch, ``torch.func.vmap`` and a Python loop.

Each is a plain function ``f(n_models, steps, *, init=None, ...) -> dict`` returning the
per-model arrays :data:`~lossjax.bench.workloads.NEURON_METRICS`, computed with the same maths
from the same initial (w, b) (:func:`~lossjax.bench.workloads.neuron_grid` by default):

``neuron_numpy``
    fully vectorised float32 broadcasting, in place, blocked over models so the working set
    stays in cache: the strongest plain baseline.
``neuron_torch``, ``neuron_torch_vmap``
    the same in PyTorch with manual gradients, and ``torch.func.grad`` of a per-model loss
    vmapped over models (torch is an optional extra, imported only when called).
``neuron_python_loop``
    one model at a time in plain Python floats: the reference for the others.

Recording the stall metrics is part of the work being timed, as it is for the engine: each
baseline re-computes every metric of :mod:`lossjax.core.metrics` that a single neuron has,
independently of the engine, inside its own step loop (:class:`_NeuronTracker` for the
vectorised ones, scalar bookkeeping in the Python loop). That also lets the benchmark check
that every row computed the same numbers.
"""

from __future__ import annotations

import math

import numpy as np

from lossjax.bench.blocks import over_blocks
from lossjax.bench.workloads import NEURON, NEURON_METRICS, THRESHOLDS, NeuronSpec, check_steps, neuron_grid
from lossjax.core.metrics import NEVER, Thresholds

__all__ = ["neuron_numpy", "neuron_python_loop", "neuron_torch", "neuron_torch_vmap"]

#: The metrics that count steps (int32); the others are float.
_COUNTS = ("steps_to_target", "zero_grad_steps", "tiny_grad_steps", "longest_plateau", "first_nonfinite")


def _neuron_init(n_models: int, steps: int, init, spec: NeuronSpec) -> tuple[np.ndarray, np.ndarray]:
    """Checks the arguments every neuron implementation takes; ``init`` defaults to the grid."""
    check_steps(steps)
    w0, b0 = (np.asarray(a) for a in (neuron_grid(n_models, spec) if init is None else init))
    if w0.shape != (n_models,) or b0.shape != (n_models,):
        raise ValueError(f"init must be two arrays of shape ({n_models},), got {w0.shape}, {b0.shape}")
    return w0, b0


class _NeuronTracker:
    """The stall metrics of a batch of neurons, folded in one step at a time.

    This is part of the baselines' own work, not a check bolted on: like the engine, which
    records these metrics inside its training loop, the numpy and torch baselines re-compute
    the engine's metrics independently, as part of the same timed work.

    Written once for numpy and torch (``xp`` is either module): both spell these operations
    the same way. Per step: :meth:`observe` with the loss and σ'(z) at θ_t (t = 0..T), then,
    for t < T, :meth:`observe_grad`. Follows :func:`lossjax.core.summaries.accumulate` exactly:
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
        tiny = np.finfo(str(like.dtype).removeprefix("torch.")).tiny  # as in lossjax.core.metrics
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
        # numpy arrays, or torch tensors (perhaps on a GPU) copied to the host
        host = (lambda v: np.asarray(v)) if self.xp is np else (lambda v: v.cpu().numpy())  # noqa: E731
        first = lambda seen, count: np.where(host(seen), evaluations - host(count), NEVER).astype(np.int32)  # noqa: E731
        out = {
            "loss_final": host(self.loss_final),
            "loss_min": host(self.loss_min),
            "steps_to_target": first(self.reached, self.evaluations_reached),
            "zero_grad_steps": host(self.zero_grad),
            "tiny_grad_steps": host(self.tiny_grad),
            "saturated_init": host(self.saturated_init),
            "saturated_final": host(self.saturated_final),
            "saturated_mean": host(self.saturated) / self.steps,
            "dead_init": host(self.dead_init),
            "dead_final": host(self.dead_final),
            "longest_plateau": host(self.longest_plateau),
            "first_nonfinite": first(self.nonfinite, self.evaluations_nonfinite),
        }
        for k in ("saturated_init", "saturated_final", "saturated_mean", "dead_init", "dead_final"):
            out[k] = out[k].astype(out["loss_final"].dtype)  # fractions of the one unit
        return out


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
    return over_blocks(train_block, n_models, block, threads)


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
    device: str = "cpu",
) -> dict[str, np.ndarray]:
    """:func:`neuron_numpy` in PyTorch (``torch.sigmoid``, in-place ops, manual gradients), in
    blocks of ``block`` models on a CPU and all at once on a GPU (``device="cuda"``)."""
    w0, b0 = _neuron_init(n_models, steps, init, spec)
    block = block if device == "cpu" else n_models
    train_block = lambda s: _neuron_torch_block(w0[s], b0[s], steps, dtype, thresholds, spec, device)  # noqa: E731
    return over_blocks(train_block, n_models, block, threads=1)  # torch threads inside each op


def _neuron_torch_block(w0, b0, steps, dtype, thresholds, spec, device) -> dict[str, np.ndarray]:
    import torch

    w, b = (torch.tensor(v, dtype=getattr(torch, dtype), device=device) for v in (w0, b0))
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
    device: str = "cpu",
) -> dict[str, np.ndarray]:
    """``torch.func.grad`` of one neuron's loss, ``torch.func.vmap``-ed over all models (on torch's ``device``).

    The per-model function returns the loss and σ'(z) as auxiliary outputs, so each step is one
    vmapped call; the metrics are then folded in with batched ops.
    """
    import torch
    from torch.func import grad, vmap

    w0, b0 = _neuron_init(n_models, steps, init, spec)
    tdtype = getattr(torch, dtype)
    w, b = torch.tensor(w0, dtype=tdtype, device=device), torch.tensor(b0, dtype=tdtype, device=device)

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
