"""The MLP workload's baselines: numpy, PyTorch, ``torch.func.vmap`` and a per-model loop.

Each is a plain function ``f(n_models, steps, *, problem=None, dtype="float32") -> dict``
returning the per-model arrays :data:`~lossjax.bench.workloads.MLP_METRICS`, trained from
the same data, initial parameters and learning rates
(:func:`~lossjax.bench.workloads.mlp_problem` by default):

``mlp_numpy``
    batched matmuls with a hand-written backward pass, blocked over models.
``mlp_torch``, ``mlp_torch_vmap``
    batched ``torch.baddbmm`` with autograd, and ``torch.func.grad`` of one MLP's loss
    vmapped over models (torch is an optional extra, imported only when called).
``mlp_python_loop``
    :func:`mlp_numpy`'s maths on one model's small arrays at a time.
"""

from __future__ import annotations

import numpy as np

from lossjax.bench.blocks import over_blocks
from lossjax.bench.workloads import MLPProblem, check_steps, mlp_problem

__all__ = ["mlp_numpy", "mlp_python_loop", "mlp_torch", "mlp_torch_vmap"]


def _check_problem(n_models: int, steps: int, problem: MLPProblem | None) -> MLPProblem:
    """Checks the arguments every MLP implementation takes; ``problem`` defaults to :func:`mlp_problem`."""
    check_steps(steps)
    problem = mlp_problem(n_models) if problem is None else problem
    if problem.n_models != n_models:
        raise ValueError(f"problem holds {problem.n_models} models, expected {n_models}")
    return problem


def _np_bce_logits(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``max(z, 0) − z y + log(1 + e^{−|z|})`` elementwise (as :mod:`lossjax.core.losses`)."""
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
    Blocks of 64 models keep a layer's activations (64 × 128 × 16 floats) in cache; the
    harness gives wider networks smaller blocks of the same size in floats. BLAS runs
    single-threaded, in each thread (:func:`~lossjax.bench.blocks.over_blocks`).

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
    return over_blocks(train_block, n_models, block, threads)


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
    device: str = "cpu",
) -> dict[str, np.ndarray]:
    """:func:`mlp_numpy` in PyTorch: batched ``torch.baddbmm`` forward pass, autograd backward.

    The gradient of the sum over models of each model's mean loss is every model's own
    gradient. Autograd measured as fast as hand-written gradients here (±10 %), and it checks
    :func:`mlp_numpy`'s hand-derived backward pass independently. ``device``: torch's
    (``"cuda"`` on a GPU; torch multiplies float32 matrices in float32 there by default).
    """
    import torch

    problem = _check_problem(n_models, steps, problem)
    tdtype = getattr(torch, dtype)
    as_t = lambda a: torch.tensor(a, dtype=tdtype, device=device)  # noqa: E731
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
        return {"loss_final": losses().cpu().numpy(), "layer_grad_norm_init": norms.cpu().numpy()}


def mlp_torch_vmap(
    n_models: int,
    steps: int,
    *,
    problem: MLPProblem | None = None,
    dtype: str = "float32",
    device: str = "cpu",
) -> dict[str, np.ndarray]:
    """``torch.func.grad`` of one MLP's loss, ``torch.func.vmap``-ed over the models (on torch's ``device``)."""
    import torch
    from torch.func import grad, vmap

    problem = _check_problem(n_models, steps, problem)
    tdtype = getattr(torch, dtype)
    as_t = lambda a: torch.tensor(a, dtype=tdtype, device=device)  # noqa: E731
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
            norms = torch.stack([g.square().sum(dim=(1, 2)).sqrt() for g in gw], dim=1).cpu().numpy()
        params = (
            [w - lr[:, None, None] * g for w, g in zip(params[0], gw)],
            [b - lr[:, None] * g for b, g in zip(params[1], gb)],
        )
    with torch.no_grad():
        loss = vmap(loss_fn, in_dims=(0, None, None))(params, x, y)
    return {"loss_final": loss.cpu().numpy(), "layer_grad_norm_init": norms}


def mlp_python_loop(
    n_models: int,
    steps: int,
    *,
    problem: MLPProblem | None = None,
    dtype: str = "float32",
) -> dict[str, np.ndarray]:
    """One MLP at a time: :func:`mlp_numpy`'s maths on one model's small arrays per step."""
    problem = _check_problem(n_models, steps, problem)
    return over_blocks(lambda s: _mlp_numpy_block(problem.subset(s), steps, np.dtype(dtype)), n_models, 1, 1)
