"""Optimisers: optax transformations whose learning rate is a batched (traced) value.

The training function builds its optimiser inside the traced program from the run's learning
rate, ``get_optimizer(name).factory(learning_rate=run.learning_rate)``: the rate is an array
argument of the compiled program (vmapped over the grid), not a constant baked into it, so a
grid of learning rates never recompiles. This is what :func:`optax.inject_hyperparams` is for,
without the step counter and hyperparameter copy it would add to every run's scan carry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax.numpy as jnp
import optax


class Optimizer(NamedTuple):
    name: str
    factory: Callable[..., optax.GradientTransformation]
    description: str


OPTIMIZERS: dict[str, Optimizer] = {
    o.name: o
    for o in (
        Optimizer("sgd", lambda learning_rate: optax.sgd(learning_rate), "plain gradient descent θ ← θ − η g"),
        Optimizer(
            "momentum",
            lambda learning_rate: optax.sgd(learning_rate, momentum=0.9),
            "heavy-ball momentum 0.9 (optax.sgd(momentum=0.9))",
        ),
        Optimizer(
            "nesterov",
            lambda learning_rate: optax.sgd(learning_rate, momentum=0.9, nesterov=True),
            "Nesterov momentum 0.9",
        ),
        Optimizer("adam", lambda learning_rate: optax.adam(learning_rate), "Adam, β=(0.9, 0.999), ε=1e-8"),
        Optimizer("rmsprop", lambda learning_rate: optax.rmsprop(learning_rate), "RMSProp, decay 0.9, ε=1e-8"),
        Optimizer("adagrad", lambda learning_rate: optax.adagrad(learning_rate), "Adagrad"),
        Optimizer(
            "sign_sgd",
            lambda learning_rate: optax.chain(optax.scale_by_sign(), optax.scale_by_learning_rate(learning_rate)),
            "signSGD θ ← θ − η sign(g): every non-zero gradient moves the weight by η",
        ),
    )
}


def get_optimizer(name: str) -> Optimizer:
    """Looks up an optimiser by name; raises ``ValueError`` listing the allowed names."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; allowed: {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[name]


def make_optimizer(name: str, learning_rate, dtype) -> optax.GradientTransformation:
    """The named optimiser with ``learning_rate`` (a traced scalar is fine) cast to ``dtype``."""
    return get_optimizer(name).factory(learning_rate=jnp.asarray(learning_rate, dtype))
