"""Sweep files: parse and validate a TOML description of a grid before anything runs.

A sweep names the values of every axis. An axis given as a list (or a range table) becomes a
dimension of the results; one given as a single value is recorded as a scalar coordinate.
Static axes change the compiled program (one compilation per combination); batched axes are
vmapped over inside it. Example (``experiments/neuron/nielsen.toml``)::

    name = "nielsen"
    description = "The texts' saturated sigmoid neuron"

    [model]
    kind = "neuron"                 # "neuron" | "mlp"
    activation = "sigmoid"          # output activation                       (static)

    [data]
    dataset = "single"              # see `lossjax list`
    params = { x = 1.0, y = 0.0 }   # the dataset's own parameters

    [train]
    steps = 300                     #                                         (static)
    loss = ["quadratic", "bce"]     #                                         (static)
    optimizer = "sgd"               #                                         (static)
    learning_rate = 0.15            #                                         (batched)
    record_every = 1

    [init]
    points = [[0.6, 0.9], [2.0, 2.0]]   # explicit (w, b) per run            (batched)

    [metrics]
    target_metric = "loss"
    target = 0.01

The full schema, every key with its allowed values, is :data:`SCHEMA` (printed by
``lossjax list``). Numeric batched axes also accept a range table
``{ start = 1e-3, stop = 1.0, num = 7, log = true }``.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lossjax import reports
from lossjax.core import activations as activations_lib
from lossjax import data as datasets_lib
from lossjax.core import losses as losses_lib
from lossjax.core import metrics
from lossjax.core import models
from lossjax.core import optimizers
from lossjax.core import train

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class SweepError(ValueError):
    """A sweep file is invalid; the message names the key and the allowed values."""


#: Every table and key a sweep file may contain, with a one-line description.
SCHEMA: dict[str, dict[str, str]] = {
    "": {
        "name": "results folder name (letters, digits, '-', '_'); required",
        "description": "free text",
        "report": "the report made after the run: '<file>.py:<function>' relative to the sweep file",
    },
    "model": {
        "kind": "'neuron' or 'mlp'",
        "activation": "output activation (static axis)",
        "depth": "MLP hidden layers (static axis)",
        "width": "MLP units per hidden layer (static axis)",
        "hidden_activation": "MLP hidden activation (static axis)",
        "impl": "'flax' (default) or 'pytree': how the MLP is written",
    },
    "data": {
        "dataset": "dataset name",
        "params": "table of the dataset's parameters",
        "seed": "seed of the data generator (default 0)",
        "batch_size": "0: full batch (default); B: B samples drawn per step with replacement",
        "target": "replaces every training target of a binary task (batched axis)",
    },
    "train": {
        "steps": "number of updates T (static axis)",
        "loss": "loss (static axis)",
        "optimizer": "optimiser (static axis)",
        "learning_rate": "learning rate > 0 (batched axis)",
        "dtype": "float32 (default), float64, bfloat16, float16 (static axis)",
        "estimator": "gradient estimator (static axis)",
        "seed": "run seeds (batched axis): an int, a list, or { num = N } for 0..N-1",
        "score_samples": "samples per step of the score-function estimator (default 16)",
        "record_every": "record trajectories every k steps; 0 = none (default)",
    },
    "init": {
        "points": "explicit neuron initialisations [[w, b], ...] (batched axis 'init')",
        "w": "neuron initial weight(s) (batched axis 'w0'; with b: the (w, b) grid)",
        "b": "neuron initial bias(es) (batched axis 'b0')",
        "scheme": "weight init scheme (batched axis 'init_scheme')",
        "scale": "multiplier of the scheme's standard deviation (batched axis 'init_scale')",
        "bias": "initial bias mean (batched axis 'init_bias')",
        "bias_std": "initial bias standard deviation (batched axis 'init_bias_std')",
    },
    "metrics": {f.name: "threshold; see lossjax.metrics" for f in dataclasses.fields(metrics.Thresholds)},
    "run": {
        "chunk_size": "runs per compiled call; 0 = sized from memory_mb (default)",
        "memory_mb": "memory budget per chunk in MiB (default 1024)",
    },
}

STATIC_AXES = ("loss", "activation", "hidden_activation", "depth", "width", "optimizer", "estimator", "dtype", "steps")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


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
    """A validated sweep. Build it with :func:`parse_sweep` or :func:`load_sweep`."""

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
        """The :class:`~lossjax.train.TrainConfig` of one static combination."""
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
        )


# --------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------


def load_sweep(path: str | Path) -> Sweep:
    """Reads and validates a sweep TOML file."""
    path = Path(path)
    if not path.is_file():
        raise SweepError(f"sweep file {str(path)!r} does not exist")
    text = path.read_text(encoding="utf-8")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SweepError(f"{path}: not valid TOML: {e}") from None
    return parse_sweep(raw, source=text, origin=str(path), base=path.parent)


def parse_sweep(
    raw: Mapping[str, Any], *, source: str | None = None, origin: str = "sweep", base: str | Path = "."
) -> Sweep:
    """Validates a sweep given as a dict (the parsed TOML) and returns a :class:`Sweep`.

    Raises:
      SweepError: naming the offending key and the allowed values.
    """
    if isinstance(raw, Sweep):
        return raw
    p = _Parser(origin, Path(base))
    return p.parse(raw, source if source is not None else json.dumps(raw, indent=1, default=str))


class _Parser:
    def __init__(self, origin: str, base: Path):
        self.origin = origin
        self.base = base

    def error(self, key: str, message: str) -> SweepError:
        return SweepError(f"{self.origin}: {key}: {message}")

    def check_keys(self, table: Mapping[str, Any], section: str) -> None:
        allowed = SCHEMA[section]
        for key in table:
            if key not in allowed and not (section == "" and key in SCHEMA):
                where = f"[{section}].{key}" if section else key
                listed = list(allowed) + ([f"[{t}]" for t in SCHEMA if t] if not section else [])
                raise self.error(where, f"unknown key; allowed keys here: {', '.join(listed)}")

    def table(self, raw: Mapping[str, Any], section: str) -> Mapping[str, Any]:
        value = raw.get(section, {})
        if not isinstance(value, Mapping):
            raise self.error(f"[{section}]", f"must be a table, got {type(value).__name__}")
        self.check_keys(value, section)
        return value

    # ----- value helpers
    def listed(self, key: str, value: Any) -> tuple[tuple, bool]:
        """(values, is_dim) for a scalar or a list."""
        if isinstance(value, list):
            if not value:
                raise self.error(key, "empty list: give at least one value")
            return tuple(value), True
        return (value,), False

    def names(self, key: str, value: Any, allowed: Sequence[str], lookup=None) -> tuple[tuple, bool]:
        values, dim = self.listed(key, value)
        for v in values:
            if not isinstance(v, str):
                raise self.error(key, f"expected a name, got {v!r}; allowed: {', '.join(allowed)}")
            if lookup is not None:
                try:
                    lookup(v)
                except ValueError as e:
                    raise self.error(key, str(e)) from None
            elif v not in allowed:
                raise self.error(key, f"unknown value {v!r}; allowed: {', '.join(allowed)}")
        if len(set(values)) != len(values):
            raise self.error(key, f"repeated values in {list(values)}")
        return values, dim

    def numbers(self, key: str, value: Any, *, positive=False, integer=False, minimum=None) -> tuple[tuple, bool]:
        if isinstance(value, Mapping):
            extra = set(value) - {"start", "stop", "num", "log"}
            if extra or not {"start", "stop", "num"} <= set(value):
                raise self.error(key, "a range table needs start, stop, num (and optionally log = true)")
            num = value["num"]
            if not isinstance(num, int) or isinstance(num, bool) or num < 1:
                raise self.error(key, f"range num must be an integer >= 1, got {num!r}")
            start, stop = value["start"], value["stop"]
            for v in (start, stop):
                if not _is_number(v):
                    raise self.error(key, f"range start/stop must be numbers, got {v!r}")
            if value.get("log", False):
                if start <= 0 or stop <= 0:
                    raise self.error(key, "a log range needs start > 0 and stop > 0")
                values = tuple(float(v) for v in np.geomspace(start, stop, num))
            else:
                values = tuple(float(v) for v in np.linspace(start, stop, num))
            dim = True
        else:
            values, dim = self.listed(key, value)
        for v in values:
            if not _is_number(v) or (integer and not isinstance(v, int)):
                kind = "an integer" if integer else "a number"
                raise self.error(key, f"expected {kind}, got {v!r}")
            if not math.isfinite(v):
                raise self.error(key, f"must be finite, got {v!r}")
            if positive and not v > 0:
                raise self.error(key, f"must be > 0, got {v!r}")
            if minimum is not None and v < minimum:
                raise self.error(key, f"must be >= {minimum}, got {v!r}")
        if len(set(values)) != len(values):
            raise self.error(key, f"repeated values in {list(values)}")
        return values, dim

    def integer(self, key: str, value: Any, minimum: int) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise self.error(key, f"must be an integer >= {minimum}, got {value!r}")
        return value

    # ----- the sweep
    def parse(self, raw: Mapping[str, Any], source: str) -> Sweep:
        if not isinstance(raw, Mapping):
            raise SweepError(f"{self.origin}: a sweep must be a table, got {type(raw).__name__}")
        self.check_keys(raw, "")
        name = raw.get("name")
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            raise self.error("name", f"required: letters, digits, '.', '-', '_' (got {name!r})")
        description = raw.get("description", "")
        report = raw.get("report", "")
        if not isinstance(description, str):
            raise self.error("description", "must be a string")
        if report:
            try:
                report = reports.resolve(report, self.base)
            except reports.ReportError as e:
                raise self.error("report", str(e)) from None

        model = self.table(raw, "model")
        data = self.table(raw, "data")
        tr = self.table(raw, "train")
        init = self.table(raw, "init")
        mt = self.table(raw, "metrics")
        run = self.table(raw, "run")
        axes: list[Axis] = []

        def add(name, values_dim, static):
            values, dim = values_dim
            axes.append(Axis(name, tuple(values), static, dim))

        # model
        kind = model.get("kind", "neuron")
        if kind not in models.MODEL_KINDS:
            raise self.error("[model].kind", f"unknown value {kind!r}; allowed: {', '.join(models.MODEL_KINDS)}")
        impl = model.get("impl", "flax")
        if impl not in models.MODEL_IMPLS:
            raise self.error("[model].impl", f"unknown value {impl!r}; allowed: {', '.join(models.MODEL_IMPLS)}")
        act_names = list(activations_lib.ACTIVATIONS)
        loss_names = list(losses_lib.LOSSES)
        static: dict[str, tuple[tuple, bool]] = {}
        static["loss"] = self.names("[train].loss", tr.get("loss", "quadratic"), loss_names, losses_lib.get_loss)
        static["activation"] = self.names(
            "[model].activation", model.get("activation", "sigmoid"), act_names, activations_lib.get_activation
        )
        if kind == "mlp":
            static["hidden_activation"] = self.names(
                "[model].hidden_activation", model.get("hidden_activation", "tanh"), act_names,
                activations_lib.get_activation,
            )
            static["depth"] = self.numbers("[model].depth", model.get("depth", 1), integer=True, minimum=0)
            static["width"] = self.numbers("[model].width", model.get("width", 16), integer=True, minimum=1)
        else:
            for key in ("depth", "width", "hidden_activation"):
                if key in model:
                    raise self.error(f"[model].{key}", "only meaningful for kind = 'mlp'")
        static["optimizer"] = self.names("[train].optimizer", tr.get("optimizer", "sgd"), list(optimizers.OPTIMIZERS))
        static["estimator"] = self.names("[train].estimator", tr.get("estimator", "exact"), list(train.ESTIMATORS))
        static["dtype"] = self.names("[train].dtype", tr.get("dtype", "float32"), list(train.DTYPES))
        static["steps"] = self.numbers("[train].steps", tr.get("steps", 300), integer=True, minimum=1)
        for axis_name in STATIC_AXES:
            if axis_name in static:
                add(axis_name, static[axis_name], True)

        # batched axes
        add("learning_rate", self.numbers("[train].learning_rate", tr.get("learning_rate", 0.1), positive=True), False)
        init_mode, init_axes = self.parse_init(init, kind)
        axes.extend(init_axes)
        seed = tr.get("seed", 0)
        if isinstance(seed, Mapping):
            if set(seed) != {"num"}:
                raise self.error("[train].seed", "a seed table takes only num: { num = N } for seeds 0..N-1")
            n = self.integer("[train].seed.num", seed["num"], 1)
            add("seed", (tuple(range(n)), True), False)
        else:
            add("seed", self.numbers("[train].seed", seed, integer=True, minimum=0), False)
        if "target" in data:
            add("target", self.numbers("[data].target", data["target"]), False)

        # data
        dataset = data.get("dataset", "single")
        if dataset not in datasets_lib.DATASETS:
            raise self.error("[data].dataset", f"unknown dataset {dataset!r}; allowed: {', '.join(datasets_lib.DATASETS)}")
        params = data.get("params", {})
        if not isinstance(params, Mapping):
            raise self.error("[data].params", "must be a table of the dataset's parameters")
        allowed_params = datasets_lib.DATASETS[dataset].params
        for key in params:
            if key not in allowed_params:
                raise self.error(
                    f"[data].params.{key}",
                    f"unknown parameter of dataset {dataset!r}; allowed: {', '.join(allowed_params) or '(none)'}",
                )
        data_seed = self.integer("[data].seed", data.get("seed", 0), 0)
        batch_size = self.integer("[data].batch_size", data.get("batch_size", 0), 0)

        # metrics
        for key, value in mt.items():
            if key == "slow_plateau_steps":
                self.integer(f"[metrics].{key}", value, 1)
            elif key != "target_metric" and not (_is_number(value) and math.isfinite(value)):
                raise self.error(f"[metrics].{key}", f"must be a finite number, got {value!r}")
        try:
            thresholds = metrics.Thresholds(**mt)
        except (TypeError, ValueError) as e:
            raise self.error("[metrics]", str(e)) from None

        record_every = self.integer("[train].record_every", tr.get("record_every", 0), 0)
        for steps in static["steps"][0]:
            if record_every and steps % record_every:
                raise self.error("[train].record_every", f"must divide every value of steps; {record_every} does not divide {steps}")
        score_samples = self.integer("[train].score_samples", tr.get("score_samples", 16), 2)
        chunk_size = self.integer("[run].chunk_size", run.get("chunk_size", 0), 0)
        memory_mb = run.get("memory_mb", 1024)
        if not _is_number(memory_mb) or memory_mb <= 0:
            raise self.error("[run].memory_mb", f"must be a number > 0, got {memory_mb!r}")

        sweep = Sweep(
            name=name,
            description=description,
            report=report,
            model_kind=kind,
            impl=impl,
            dataset=dataset,
            dataset_params=tuple(sorted(params.items())),
            data_seed=data_seed,
            batch_size=batch_size,
            init_mode=init_mode,
            score_samples=score_samples,
            record_every=record_every,
            thresholds=thresholds,
            chunk_size=chunk_size,
            memory_mb=float(memory_mb),
            axes=tuple(axes),
            source=source,
        )
        self.check_combinations(sweep)
        return sweep

    def parse_init(self, init: Mapping[str, Any], kind: str) -> tuple[str, list[Axis]]:
        explicit = [k for k in ("points", "w", "b") if k in init]
        scheme = [k for k in ("scheme", "scale", "bias", "bias_std") if k in init]
        if explicit and scheme:
            raise self.error("[init]", f"give either explicit values (points, w, b) or a scheme (scheme, scale, bias, bias_std), not both: {explicit + scheme}")
        if explicit:
            if kind != "neuron":
                raise self.error("[init]", "explicit (w, b) values are for kind = 'neuron'; an MLP takes scheme, scale, bias, bias_std")
            if "points" in init:
                if "w" in init or "b" in init:
                    raise self.error("[init].points", "give points or w/b, not both")
                points = init["points"]
                if not isinstance(points, list) or not points:
                    raise self.error("[init].points", "must be a non-empty list of [w, b] pairs")
                for pt in points:
                    if not (isinstance(pt, list) and len(pt) == 2 and all(_is_number(v) and math.isfinite(v) for v in pt)):
                        raise self.error("[init].points", f"each point must be [w, b] with finite numbers, got {pt!r}")
                pairs = tuple((float(w), float(b)) for w, b in points)
                if len(set(pairs)) != len(pairs):
                    raise self.error("[init].points", "repeated points")
                return "explicit", [Axis("init", pairs, False, True)]
            w, wdim = self.numbers("[init].w", init.get("w", 0.0))
            b, bdim = self.numbers("[init].b", init.get("b", 0.0))
            return "explicit", [Axis("w0", w, False, wdim), Axis("b0", b, False, bdim)]
        names, sdim = self.names("[init].scheme", init.get("scheme", "lecun"), list(models.INIT_SCHEMES))
        scale = self.numbers("[init].scale", init.get("scale", 1.0), minimum=0)
        bias = self.numbers("[init].bias", init.get("bias", 0.0))
        bias_std = self.numbers("[init].bias_std", init.get("bias_std", 0.0), minimum=0)
        return "scheme", [
            Axis("init_scheme", names, False, sdim),
            Axis("init_scale", scale[0], False, scale[1]),
            Axis("init_bias", bias[0], False, bias[1]),
            Axis("init_bias_std", bias_std[0], False, bias_std[1]),
        ]

    def check_combinations(self, sweep: Sweep) -> None:
        """Catches combinations that cannot run, before anything is compiled."""
        for combo in sweep.static_combinations():
            try:
                train.check_estimator(combo["estimator"], combo["loss"])
            except ValueError as e:
                raise self.error("[train].estimator", str(e)) from None


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


# --------------------------------------------------------------------------------------
# The batched grid
# --------------------------------------------------------------------------------------


def batched_grid(sweep: Sweep) -> dict[str, np.ndarray]:
    """Flattens the batched axes into one row per run (C order over ``sweep.batched_axes``).

    Returns the fields of :class:`~lossjax.train.RunInputs` as float64/int32 numpy arrays.
    """
    axes = sweep.batched_axes
    shape = tuple(len(a.values) for a in axes)
    n = math.prod(shape)
    index = np.indices(shape).reshape(len(shape), n) if shape else np.zeros((0, 1), int)
    columns: dict[str, np.ndarray] = {}
    for i, a in enumerate(axes):
        columns[a.name] = index[i]
    out = {
        "seed": np.zeros(n, np.int32),
        "learning_rate": np.zeros(n),
        "init_w": np.zeros(n),
        "init_b": np.zeros(n),
        "init_scheme": np.zeros(n, np.int32),
        "init_scale": np.ones(n),
        "init_bias": np.zeros(n),
        "init_bias_std": np.zeros(n),
        "target": np.full(n, np.nan),
    }
    for a in axes:
        idx = columns[a.name]
        if a.name == "init":
            pairs = np.asarray(a.values, dtype=np.float64)
            out["init_w"], out["init_b"] = pairs[idx, 0], pairs[idx, 1]
        elif a.name == "init_scheme":
            codes = np.asarray([models.init_scheme_index(v) for v in a.values], np.int32)
            out["init_scheme"] = codes[idx]
        else:
            field = {"w0": "init_w", "b0": "init_b"}.get(a.name, a.name)
            values = np.asarray(a.values, dtype=np.int32 if field == "seed" else np.float64)
            out[field] = values[idx]
    return out
