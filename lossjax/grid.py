"""A validated sweep and its grid: the :class:`Sweep` and its :class:`Axis` values, the static
combinations (one compiled program each), range tables expanded to values, and the batched axes
laid out as one row per run (:func:`batched_grid`).

:mod:`lossjax.config` parses a sweep file into a :class:`Sweep` and re-exports everything here;
this module never imports it, so the dependency goes one way: config -> grid.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from lossjax import data as datasets_lib
from lossjax.core import initializers, metrics, models, train

#: The static axes (one compiled program per combination) in the order of the results' dimensions.
STATIC_AXES = ("loss", "activation", "hidden_activation", "depth", "width", "optimizer", "estimator", "dtype", "update_rounding",
               "steps")
#: The batched axes in the order of the results' dimensions (after the static ones) and of the
#: grid's rows (C order: the last varies fastest). Which key fills each is in ``config.KEYS``.
BATCHED_AXES = (
    "learning_rate", "init", "w0", "b0", "init_scheme", "init_scale", "init_bias", "init_bias_std", "seed", "target",
)

#: How a batched axis fills :class:`~lossjax.core.train.RunInputs` when the sweep does not set it.
_FIELDS = {
    "seed": (np.int32, 0),
    "learning_rate": (np.float64, 0.0),
    "init_w": (np.float64, 0.0),
    "init_b": (np.float64, 0.0),
    "init_scheme": (np.int32, 0),
    "init_scale": (np.float64, 1.0),
    "init_bias": (np.float64, 0.0),
    "init_bias_std": (np.float64, 0.0),
    "target": (np.float64, np.nan),
}


class SweepError(ValueError):
    """A sweep file is invalid; the message names the key and the allowed values."""


@dataclasses.dataclass(frozen=True)
class Axis:
    """One axis of a sweep.

    Attributes:
      name: the results' dimension (or scalar coordinate) name.
      values: its values, in order.
      static: True if it changes the compiled program.
      dim: True if it is a dimension of the results (given as a list), False for a scalar.
    """

    name: str
    values: tuple
    static: bool
    dim: bool


@dataclasses.dataclass(frozen=True)
class Sweep:
    """A validated sweep. Build it with :func:`lossjax.config.parse_sweep` or :func:`~lossjax.config.load_sweep`."""

    name: str
    description: str
    report: str
    model_kind: str
    impl: str
    dataset: str
    dataset_params: tuple[tuple[str, Any], ...]
    data_seed: int
    batch_size: int
    init_mode: str
    score_samples: int
    record_every: int
    thresholds: metrics.Thresholds
    chunk_size: int
    memory_mb: float
    axes: tuple[Axis, ...]
    source: str  # the sweep as written: TOML text, or JSON of the dict it came from
    roundoff_probe: bool = False  # [train].roundoff_probe: train each run again from a perturbed θ_0
    programs: str = "per_architecture"  # [run].programs: how architectures become compiled programs (config.PROGRAM_MODES)

    def axis(self, name: str) -> Axis:
        for a in self.axes:
            if a.name == name:
                return a
        raise KeyError(name)

    @property
    def static_axes(self) -> tuple[Axis, ...]:
        return tuple(a for a in self.axes if a.static)

    @property
    def batched_axes(self) -> tuple[Axis, ...]:
        return tuple(a for a in self.axes if not a.static)

    @property
    def dims(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.axes if a.dim)

    @property
    def n_runs(self) -> int:
        return math.prod(len(a.values) for a in self.axes)

    def static_combinations(self) -> list[dict[str, Any]]:
        """Every combination of static axis values, as {axis name: value}."""
        axes = self.static_axes
        return [dict(zip((a.name for a in axes), combo)) for combo in itertools.product(*(a.values for a in axes))]

    def make_dataset(self) -> datasets_lib.Dataset:
        try:
            return datasets_lib.make_dataset(self.dataset, seed=self.data_seed, **dict(self.dataset_params))
        except ValueError as e:
            raise SweepError(f"{self.name}: [data]: {e}") from None

    def train_config(self, combo: Mapping[str, Any], n_inputs: int, n_outputs: int) -> train.TrainConfig:
        """The :class:`~lossjax.core.train.TrainConfig` of one static combination (a neuron has no
        hidden layers: depth 0, width 0, identity hidden activation)."""
        model = models.ModelConfig(
            kind=self.model_kind,
            n_inputs=n_inputs,
            n_outputs=n_outputs,
            depth=int(combo.get("depth", 0)),
            width=int(combo.get("width", 0)),
            hidden_activation=combo.get("hidden_activation", "identity"),
            activation=combo["activation"],
            impl=self.impl,
        )
        return train.TrainConfig(
            model=model,
            loss=combo["loss"],
            optimizer=combo["optimizer"],
            dtype=combo["dtype"],
            steps=int(combo["steps"]),
            batch_size=self.batch_size,
            estimator=combo["estimator"],
            score_samples=self.score_samples,
            init_mode=self.init_mode,
            thresholds=self.thresholds,
            record_every=self.record_every,
            roundoff_probe=self.roundoff_probe,
            init_schemes=tuple(self._scheme_names()) if self.init_mode == "scheme" else None,
            update_rounding=combo["update_rounding"],
        )

    def _scheme_names(self) -> tuple:
        return next((a.values for a in self.axes if a.name == "init_scheme"), ())



def expand_range(start: float, stop: float, num: int, log: bool) -> tuple[float, ...]:
    """The values of a range table ``{ start, stop, num, log }``: evenly (or geometrically) spaced,
    both ends included. Raises ``ValueError`` for a log range that does not stay above 0."""
    if log:
        if start <= 0 or stop <= 0:
            raise ValueError("a log range needs start > 0 and stop > 0")
        return tuple(float(v) for v in np.geomspace(start, stop, num))
    return tuple(float(v) for v in np.linspace(start, stop, num))


def batched_grid(sweep: Sweep, lo: int = 0, hi: int | None = None) -> dict[str, np.ndarray]:
    """Flattens the batched axes into one row per run (C order over ``sweep.batched_axes``).

    Returns the fields of :class:`~lossjax.core.train.RunInputs` as float64/int32 numpy arrays, for
    the rows ``lo:hi`` (default: all), so a chunk's rows are built without the whole grid.
    """
    axes = sweep.batched_axes
    shape = tuple(len(a.values) for a in axes)
    hi = math.prod(shape) if hi is None else hi
    n = hi - lo
    index = np.unravel_index(np.arange(lo, hi, dtype=np.int64), shape) if shape else np.zeros((0, n), int)
    out = {field: np.full(n, fill, dtype) for field, (dtype, fill) in _FIELDS.items()}
    for i, a in enumerate(axes):
        idx = index[i]
        if a.name == "init":
            pairs = np.asarray(a.values, dtype=np.float64)
            out["init_w"], out["init_b"] = pairs[idx, 0], pairs[idx, 1]
        elif a.name == "init_scheme":
            codes = np.asarray([initializers.init_scheme_index(v) for v in a.values], np.int32)
            out["init_scheme"] = codes[idx]
        else:
            field = {"w0": "init_w", "b0": "init_b"}.get(a.name, a.name)
            out[field] = np.asarray(a.values, dtype=_FIELDS[field][0])[idx]
    return out
