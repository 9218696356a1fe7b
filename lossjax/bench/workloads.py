"""The benchmark's workloads: what every implementation computes, and at which sizes.

``neuron``
    The texts' single-neuron example: one input ``x = 1``, target ``y = 0``, a sigmoid
    neuron, the quadratic cost ½(y − a)², plain SGD with η = 0.15, initial (w, b) on a
    1000 × 1000 grid over [−6, 6]² (10^6 models), 300 steps. Every stall metric of :mod:`lossjax.core.metrics`
    that a single neuron has is recorded per model inside the loop (memory O(models)).
``mlp``
    1024 MLPs 2 → 16 → 16 → 16 → 1 (tanh hidden, sigmoid output, binary cross-entropy on
    logits), full batch of 128 noisy XOR points (``make_dataset("xor", seed=0)``), SGD with
    learning rates log-spaced over [1e-2, 1], LeCun-normal weights and zero biases, 200
    steps. Recorded: the final loss and each layer's weight-gradient norm at init.
``mlp_wide``
    The same training on wider networks and more data, where matrix products dominate: 256
    MLPs 8 → 64 → 64 → 64 → 1, full batch of 256 points of the ``teacher`` task (8 Gaussian
    inputs labelled by the sign of a random tanh teacher MLP with one hidden layer of 16,
    ``make_dataset("teacher", seed=0, n_features=8, classes=2)``), 200 steps; 1.3e7
    floating-point operations of matrix products per model-step (the ``mlp`` workload: 4.3e5).

Each workload is given here once: as parameters and initial values for the baselines
(:func:`neuron_grid`, :func:`mlp_problem`) and as a sweep dict for the engine
(:func:`neuron_sweep`, :func:`mlp_sweep`), so that every row starts from the same models.
The MLP workloads differ only in their :class:`MLPSpec` (:data:`MLP_SPECS`).
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import numpy as np

from lossjax.core.metrics import Thresholds
from lossjax.data import make_dataset

__all__ = [
    "FULL",
    "MLP",
    "MLPProblem",
    "MLPSpec",
    "MLP_METRICS",
    "MLP_SPECS",
    "MLP_WIDE",
    "NEURON",
    "NEURON_METRICS",
    "NeuronSpec",
    "QUICK",
    "THRESHOLDS",
    "WORKLOADS",
    "check_steps",
    "mlp_problem",
    "mlp_sweep",
    "neuron_grid",
    "neuron_sweep",
]

WORKLOADS = ("neuron", "mlp", "mlp_wide")

#: (models, steps, models for the Python loop) per workload.
FULL = {"neuron": (1000**2, 300, 14**2), "mlp": (1024, 200, 200), "mlp_wide": (256, 200, 128)}
QUICK = {"neuron": (100**2, 50, 14**2), "mlp": (64, 20, 16), "mlp_wide": (16, 20, 4)}

THRESHOLDS = Thresholds()  # the engine's defaults: target loss 1e-2, tiny 1e-6, σ' < 1% of 1/4


def check_steps(steps: int) -> None:
    """Raises ``ValueError`` unless ``steps >= 1`` (every implementation takes at least one step)."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")


# --------------------------------------------------------------------------------------
# The neuron workload
# --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class NeuronSpec:
    """The texts' single sigmoid neuron (x = 1, target 0, quadratic cost, η = 0.15), but for its start.

    Everything but the initial (w, b), which :func:`neuron_grid` spreads over [low, high]².
    """

    x: float = 1.0
    y: float = 0.0
    learning_rate: float = 0.15
    low: float = -6.0
    high: float = 6.0
    max_slope: float = 0.25  # sup σ'


NEURON = NeuronSpec()

#: The per-model arrays every neuron implementation returns (names as in lossjax.core.metrics).
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


# --------------------------------------------------------------------------------------
# The MLP workloads
# --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class MLPSpec:
    """An MLP workload: everything but the number of models and steps.

    ``n_inputs`` → ``width`` × ``depth`` (tanh) → 1 (sigmoid, binary cross-entropy on logits),
    trained full batch on the ``n_train`` examples of ``make_dataset(dataset, seed=data_seed,
    n_train=n_train, **data_params)``, whose inputs must be ``n_inputs`` wide
    (:func:`mlp_problem` checks).
    """

    n_inputs: int = 2
    depth: int = 3
    width: int = 16
    n_train: int = 128
    dataset: str = "xor"
    #: The dataset's parameters besides ``n_train``, as (name, value) pairs; XOR: the std of the
    #: (truncated) Gaussian noise around the corners.
    data_params: tuple[tuple[str, float | int], ...] = (("noise", 0.25),)
    data_seed: int = 0
    init_seed: int = 0  # one LeCun-normal draw shared by every model, as the sweep's one seed gives
    lr_low: float = 1e-2
    lr_high: float = 1.0

    def dataset_params(self) -> dict[str, float | int]:
        """The keyword arguments of :func:`lossjax.data.make_dataset` (``[data].params`` of the sweep)."""
        return {"n_train": self.n_train, **dict(self.data_params)}

    def fans(self) -> list[tuple[int, int]]:
        """(fan_in, fan_out) of each layer, input layer first."""
        return [(self.n_inputs, self.width)] + [(self.width, self.width)] * (self.depth - 1) + [(self.width, 1)]

    def flops_per_model_step(self) -> float:
        """Floating-point operations of one training step of one model: the matrix products only
        (forward 2·n·fan_in·fan_out per layer, backward twice that)."""
        return 6.0 * self.n_train * sum(i * o for i, o in self.fans())

    def learning_rates(self, n_models: int) -> np.ndarray:
        """Learning rates log-spaced over [lr_low, lr_high], one per model."""
        return np.geomspace(self.lr_low, self.lr_high, n_models)


#: The ``mlp`` workload: 2 → 16 → 16 → 16 → 1 on 128 noisy XOR points.
MLP = MLPSpec()
#: The ``mlp_wide`` workload: 8 → 64 → 64 → 64 → 1 on 256 Gaussian points labelled by a random
#: tanh teacher (one hidden layer of 16; 16 test points, unused).
MLP_WIDE = MLPSpec(
    n_inputs=8,
    width=64,
    n_train=256,
    dataset="teacher",
    data_params=(("n_features", 8), ("classes", 2), ("depth", 1), ("width", 16), ("n_test", 16)),
)
#: Each MLP workload's spec, by workload name.
MLP_SPECS = {"mlp": MLP, "mlp_wide": MLP_WIDE}

#: The per-model arrays every MLP implementation returns: (M,) and (M, depth + 1).
MLP_METRICS = ("loss_final", "layer_grad_norm_init")


class MLPProblem(NamedTuple):
    """Data, initial parameters and learning rates of ``M`` MLPs (float64 numpy arrays).

    ``weights[l]`` has shape ``(M, fan_in, fan_out)`` and ``biases[l]`` ``(M, fan_out)``;
    layer ``l < depth`` is hidden layer ``l`` (tanh), the last one is the sigmoid output unit.
    """

    x: np.ndarray  # (n, n_inputs)
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
    """An MLP workload for ``n_models`` models, initialised exactly as lossjax initialises it.

    The initial parameters are the ones the engine draws for run seed ``spec.init_seed``
    (:func:`lossjax.core.initializers.init_from_scheme` with the key :mod:`lossjax.core.train`
    derives from the seed), in float32, so that every implementation trains the same networks
    and the lossjax row can be checked against the others. Drawing them is not timed.
    """
    import jax
    import jax.numpy as jnp

    from lossjax.core import initializers, models

    if n_models < 1:
        raise ValueError(f"n_models must be >= 1, got {n_models}")
    data = make_dataset(spec.dataset, seed=spec.data_seed, **spec.dataset_params())
    if data.x_train.shape[1] != spec.n_inputs or data.y_train.shape[1] != 1:
        raise ValueError(f"the {spec.dataset!r} data has {data.x_train.shape[1]} inputs and "
                         f"{data.y_train.shape[1]} target column(s); the spec needs n_inputs={spec.n_inputs} and 1")
    config = models.ModelConfig(kind="mlp", n_inputs=spec.n_inputs, n_outputs=1, depth=spec.depth, width=spec.width,
                                hidden_activation="tanh")
    key = jax.random.fold_in(jax.random.key(spec.init_seed), 0)  # as lossjax.core.train's init_params
    f32 = jnp.float32
    params = initializers.init_from_scheme(
        config, key, jnp.int32(initializers.init_scheme_index("lecun")), f32(1.0), f32(0.0), f32(0.0), f32
    )
    layers = models.layer_params(config, params)  # ((kernel, bias), ...) per layer
    tile = lambda a: np.repeat(np.asarray(a, np.float64)[None], n_models, axis=0)  # noqa: E731
    return MLPProblem(
        x=data.x_train,
        y=data.y_train[:, 0],
        weights=tuple(tile(kernel) for kernel, _ in layers),
        biases=tuple(tile(bias) for _, bias in layers),
        learning_rates=spec.learning_rates(n_models),
    )


def mlp_sweep(n_models: int, steps: int, *, impl: str = "auto", spec: MLPSpec = MLP) -> dict:
    """An MLP workload as a sweep dict: ``n_models`` learning rates, one shared init seed."""
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
        "data": {"dataset": spec.dataset, "seed": spec.data_seed, "params": spec.dataset_params()},
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
