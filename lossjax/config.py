"""Sweep files: parse and validate a TOML description of a grid before anything runs.

A sweep names the values of every axis. An axis given as a list (or a range table) becomes a
dimension of the results; one given as a single value is recorded as a scalar coordinate.
Static axes change the compiled program (one compilation per combination); batched axes are
vmapped over inside it. Example (``experiments/neuron/nielsen.toml``)::

    name = "nielsen"
    [model]
    activation = "sigmoid"
    [data]
    dataset = "single"
    params = { x = 1.0, y = 0.0 }
    [train]
    steps = 300
    loss = ["quadratic", "bce"]
    learning_rate = 0.15            # or { start = 1e-3, stop = 1.0, num = 7, log = true }
    [init]
    points = [[0.6, 0.9], [2.0, 2.0]]

Every key of every table is declared once, in :data:`KEYS`, as a :class:`Key`: a
:class:`~lossjax.core.params.Param` (type, default, range or choices, one line of meaning) and
whether it is a static axis, a batched axis or a plain setting. Parsing, defaults, error
messages, :data:`SCHEMA` and ``lossjax list -v`` (:func:`schema_rows`) all come from it; the
``[metrics]`` keys are the fields of :class:`~lossjax.core.metrics.Thresholds`, and a dataset's
``params`` are checked against ``DATASETS[name].declared``.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from lossjax import data as datasets_lib
from lossjax import reports
from lossjax.core import activations, estimators, initializers, losses, metrics, models, optimizers, rounding, train
from lossjax.core.params import REQUIRED, Param, check_all
from lossjax.data.base import SEED as DATA_SEED
from lossjax.grid import BATCHED_AXES, STATIC_AXES, Axis, Sweep, SweepError, batched_grid, expand_range

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["Axis", "KEYS", "Key", "NAME_PATTERN", "SCHEMA", "STATIC_AXES", "Sweep", "SweepError", "batched_grid",
           "load_sweep", "parse_sweep", "schema_rows"]


@dataclasses.dataclass(frozen=True)
class _Spec(Param):
    """A registry name that may carry parameters (``"huber:delta=0.5"``), checked by ``lookup``."""

    lookup: Callable[[str], Any] | None = None

    def check(self, value: Any, where: str | None = None) -> Any:
        if not isinstance(value, str):
            return super().check(value, where)
        try:
            self.lookup(value)
        except ValueError as e:
            raise ValueError(f"{where or self.name}: {e}") from None
        return value

    def describe_type(self) -> str:
        return super().describe_type() + " (parameters as 'name:key=value')"


@dataclasses.dataclass(frozen=True)
class _Shaped(Param):
    """A value whose shape :class:`Param` has no word for (a list of pairs, a table): ``words``
    says what it is; ``type`` and the bounds apply to each number in it."""

    words: str = ""

    def describe_type(self) -> str:
        return self.words


@dataclasses.dataclass(frozen=True)
class Key:
    """One key of a sweep file, declared once.

    Attributes:
      param: its name, type, default, range or choices, and one line of meaning.
      axis: ``"static"`` (one compiled program per value), ``"batched"`` (vmapped over inside
        one) or ``None`` (a plain setting).
      dim: the axis' name in the results (default: the key).
      form: another way to write the values: ``"range"`` (a range table), ``"seeds"``
        (``{ num = N }``), ``"points"`` (a list of [w, b] pairs), ``"table"`` (a table).
      only: given only when ``[model].kind = 'mlp'`` (``"mlp"``) or with that init mode
        (``"explicit"``: (w, b) values; ``"scheme"``: a random init scheme).
    """

    param: Param
    axis: Literal["static", "batched"] | None = None
    dim: str | None = None
    form: Literal["range", "seeds", "points", "table"] | None = None
    only: Literal["mlp", "explicit", "scheme"] | None = None

    @property
    def name(self) -> str:
        return self.param.name

    @property
    def dim_name(self) -> str:
        return self.dim or self.param.name

    def describe(self) -> str:
        """The line of ``lossjax list -v``: meaning, type and range, default, axis."""
        text = self.param.describe()
        if self.axis:
            other = {"range": ", or a range table { start, stop, num, log }", "seeds": ", or { num = N } for 0..N-1"}
            named = f" {self.dim!r}" if self.dim else ""
            text += f" [{self.axis} axis{named}: a list sweeps it{other.get(self.form, '')}]"
        if self.only:
            text += " (only " + ("for kind = 'mlp'" if self.only == "mlp" else f"in {self.only} init mode") + ")"
        return text


_BIG = 2**31  # counts go through int32 arrays and XLA shapes
#: ``[run].programs``: how a grid's architectures become compiled programs (see lossjax.programs.group_programs).
PROGRAM_MODES = ("per_architecture", "auto", "fewest")


def _choices(name: str, doc: str, default: str, registry, axis=None, **kw) -> Key:
    return Key(Param(name, str, doc, default, choices=tuple(registry)), axis, **kw)


def _spec(name: str, doc: str, default: str, registry, lookup, **kw) -> Key:
    return Key(_Spec(name, str, doc, default, choices=tuple(registry), lookup=lookup), "static", **kw)


#: The meaning and range of each field of :class:`~lossjax.core.metrics.Thresholds` (from the
#: definitions in :mod:`lossjax.core.metrics`); types and defaults come from the dataclass.
_THRESHOLDS: dict[str, tuple[str, dict]] = {
    "target_metric": ("what 'reached' means: loss L_t <= target, error mean |a - y| <= target, or "
                      "accuracy_t >= target", dict(choices=metrics.TARGET_METRICS)),
    "target": ("the target of target_metric (<= 1 for accuracy)", dict(minimum=0)),
    "tiny_grad": ("a step whose gradient 2-norm is below this counts in tiny_grad_steps", dict(above=0)),
    "saturation_delta": ("a unit is saturated when f' < saturation_delta * max f' on every input", dict(above=0)),
    "plateau_tau": ("a step whose relative loss improvement is below this is on a plateau", dict(above=0)),
    "slow_plateau_steps": ("a run that reached the target after a plateau this long is 'slow'",
                           dict(minimum=1, below=_BIG)),
    "divergence_factor": ("a run has diverged when L_T > divergence_factor * L_0", dict(above=0)),
    "dormant_tau": ("a unit is dormant when its mean |h| over its layer's mean is <= this (Sokar et al. 2023)",
                    dict(minimum=0)),
    "roundoff_tolerance": ("with roundoff_probe: a relative change of the final loss above this flags "
                           "roundoff_decided", dict(above=0)),
}


def _threshold_keys() -> list[Key]:
    fields = dataclasses.fields(metrics.Thresholds)
    if {f.name for f in fields} != set(_THRESHOLDS):  # a new field must get its meaning here
        raise ImportError(f"lossjax.config._THRESHOLDS does not match the fields of metrics.Thresholds: {fields}")
    return [Key(Param(f.name, type(f.default), _THRESHOLDS[f.name][0], f.default, **_THRESHOLDS[f.name][1]))
            for f in fields]


def _declare(*tables: tuple[str, list[Key]]) -> Mapping[str, Mapping[str, Key]]:
    return MappingProxyType({t: MappingProxyType({k.name: k for k in keys}) for t, keys in tables})


NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
#: Longest sweep name (it names the default results folder; file names stop at 255 bytes).
NAME_MAX = 100

#: Every table and key a sweep file may contain: ``KEYS[table][key]`` ("" is the top level).
KEYS: Mapping[str, Mapping[str, Key]] = _declare(
    ("", [
        Key(_Shaped("name", str, "the results folder's name", words="letters, digits, '.', '-', '_'")),
        Key(Param("description", str, "free text", "")),
        Key(Param("report", str, "the report made after the run: '<file>.py:<function>' relative to the sweep file", "")),
    ]),
    ("model", [
        _choices("kind", "the model: one neuron, or a multi-layer perceptron", "neuron", models.MODEL_KINDS),
        _spec("activation", "output activation", "sigmoid", activations.ACTIVATIONS, activations.get_activation),
        Key(Param("depth", int, "MLP hidden layers", 1, minimum=0, below=_BIG), "static", only="mlp"),
        Key(Param("width", int, "MLP units per hidden layer", 16, minimum=1, below=_BIG), "static", only="mlp"),
        _spec("hidden_activation", "MLP hidden activation", "tanh", activations.ACTIVATIONS,
              activations.get_activation, only="mlp"),
        _choices("impl", "how the MLP is written: auto (lax.scan over the hidden layers from depth 4, unrolled below), scan, flax or pytree", "auto", models.MODEL_IMPLS),
    ]),
    ("data", [
        _choices("dataset", "the dataset (see `lossjax list`)", "single", datasets_lib.DATASETS),
        Key(_Shaped("params", str, "the dataset's parameters (rows data.params below)", {},
                    words="a table"), form="table"),
        Key(dataclasses.replace(DATA_SEED, doc="seed of the data generator")),
        Key(Param("batch_size", int, "samples drawn per step with replacement; 0: full batch", 0, minimum=0, below=_BIG)),
        Key(Param("target", float, "replaces every training target of a binary task; none: the dataset's", None,
                  nullable=True), "batched", form="range"),
    ]),
    ("train", [
        Key(Param("steps", int, "number of updates T (0: observe θ_0 only)", 300, minimum=0, below=2**31 - 1), "static"),
        _spec("loss", "loss", "quadratic", losses.LOSSES, losses.get_loss),
        _choices("optimizer", "optimiser", "sgd", optimizers.OPTIMIZERS, "static"),
        Key(Param("learning_rate", float, "learning rate", 0.1, above=0), "batched", form="range"),
        _choices("dtype", "parameters, data and model arithmetic (bfloat16/float16: the optimiser in float32)",
                 "float32", train.DTYPES, "static"),
        _choices("estimator", "gradient estimator", "exact", estimators.ESTIMATORS, "static"),
        _choices("update_rounding", "how θ + Δθ is rounded to the parameters' dtype: nearest; stochastic (unbiased, "
                 "from float32; bfloat16/float16 only, nearest in float32/64); kahan (compensated sum)", "nearest",
                 rounding.UPDATE_ROUNDINGS, "static"),
        Key(Param("seed", int, "run seed: keys the init scheme, mini-batches and score samples", 0, minimum=0,
                  below=_BIG), "batched", form="seeds"),
        Key(Param("score_samples", int, "samples per step of the score-function estimator", 16, minimum=2, below=_BIG)),
        Key(Param("record_every", int, "record trajectories every k steps (must divide steps); 0: none", 0,
                  minimum=0, below=_BIG)),
        Key(Param("roundoff_probe", bool, "train each run again from θ_0 perturbed by a relative ε of its dtype "
                  "(1e-7 float32, 1e-14 float64) in the same program, and flag roundoff_decided", False)),
    ]),
    ("init", [
        Key(_Shaped("points", float, "explicit neuron initialisations, one run per (w, b)", None, nullable=True,
                    words="a list of [w, b] pairs of real numbers"), "batched", "init", "points", "explicit"),
        Key(Param("w", float, "neuron initial weight(s); with b: the (w, b) grid", 0.0), "batched", "w0", "range",
            "explicit"),
        Key(Param("b", float, "neuron initial bias(es)", 0.0), "batched", "b0", "range", "explicit"),
        _choices("scheme", "weight init scheme", "lecun", initializers.INIT_SCHEMES, "batched", dim="init_scheme",
                 only="scheme"),
        Key(Param("scale", float, "multiplier of the scheme's standard deviation", 1.0, minimum=0), "batched",
            "init_scale", "range", "scheme"),
        Key(Param("bias", float, "initial bias mean", 0.0), "batched", "init_bias", "range", "scheme"),
        Key(Param("bias_std", float, "initial bias standard deviation", 0.0, minimum=0), "batched",
            "init_bias_std", "range", "scheme"),
    ]),
    ("metrics", _threshold_keys()),
    ("run", [
        Key(Param("chunk_size", int, "runs per chunk, the unit results are written and resumed in; 0: sized from memory_mb",
                  0, minimum=0, below=_BIG)),
        Key(Param("memory_mb", float, "memory budget of a compiled call and of a chunk's results, in MiB", 1024.0, above=0)),
        Key(Param("programs", str, "how an MLP grid's architectures (and losses) become compiled programs: per_architecture "
                  "(each its own: a run's numbers do not depend on the rest of the grid), auto (padded into shared "
                  "programs where the cost model expects it to pay; numbers then move by float rounding with the "
                  "grid), or fewest", "per_architecture", choices=PROGRAM_MODES)),
    ]),
)

_AXES = {k.dim_name: (t, k) for t, keys in KEYS.items() for k in keys.values() if k.axis}
if set(_AXES) != set(STATIC_AXES) | set(BATCHED_AXES):  # every axis needs its place in the results
    raise ImportError(f"axes {sorted(_AXES)} do not match STATIC_AXES + grid.BATCHED_AXES")

#: ``{table: {key: description}}``, a read-only view of :data:`KEYS`.
SCHEMA: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {t: MappingProxyType({k: key.describe() for k, key in keys.items()}) for t, keys in KEYS.items()}
)

#: The range table of a real-valued axis, and the seed table.
_RANGE = (Param("start", float, "first value"), Param("stop", float, "last value"),
          Param("num", int, "number of values", minimum=1, below=_BIG), Param("log", bool, "geometric spacing", False))
_SEEDS = (Param("num", int, "number of seeds", minimum=1, maximum=_BIG),)


def schema_rows() -> list[tuple[str, str, str]]:
    """(table, key, description) of every sweep key, then of every dataset's parameters
    (table ``data.params``, key ``<dataset>.<parameter>``): what ``lossjax list -v`` prints."""
    rows = [(t, k, key.describe()) for t, keys in KEYS.items() for k, key in keys.items()]
    rows += [("data.params", f"{n}.{p.name}", p.describe())
             for n, info in datasets_lib.DATASETS.items() for p in info.declared]
    return rows


def load_sweep(path: str | Path) -> Sweep:
    """Reads and validates a sweep TOML file."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise SweepError(f"sweep file {str(path)!r} does not exist") from None
    except IsADirectoryError:
        raise SweepError(f"sweep file {str(path)!r} is a directory, not a TOML file") from None
    except UnicodeDecodeError as e:
        raise SweepError(f"{path}: not UTF-8 text (byte {e.start}); save the sweep file as UTF-8") from None
    except OSError as e:
        raise SweepError(f"sweep file {str(path)!r} cannot be read: {e.strerror or e}") from None
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

    def error(self, where: str, message: str) -> SweepError:
        return SweepError(f"{self.origin}: {where}: {message}")

    def check(self, where: str, param: Param, value: Any) -> Any:
        """``value`` as given, once ``param`` accepts it (kept as written: results record it)."""
        if param.choices is not None and not isinstance(value, str):
            raise self.error(where, f"expected a name, got {value!r}; allowed: {', '.join(param.choices)}")
        try:
            param.check(value, where)
        except ValueError as e:
            raise SweepError(f"{self.origin}: {e}") from None
        return value

    def tables(self, raw: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
        """Each table of the sweep ({} when absent; "": the top level), every key in it declared."""
        for key in raw:
            if key not in KEYS[""] and (key not in KEYS or not key):
                listed = list(KEYS[""]) + [f"[{t}]" for t in KEYS if t]
                raise self.error(key, f"unknown key; allowed keys here: {', '.join(listed)}")
        out = {"": raw}
        for table in list(KEYS)[1:]:
            value = out[table] = raw.get(table, {})
            if not isinstance(value, Mapping):
                raise self.error(f"[{table}]", f"must be a table, got {type(value).__name__}")
            for key in value:
                if key not in KEYS[table]:
                    raise self.error(f"[{table}].{key}", f"unknown key; allowed keys here: {', '.join(KEYS[table])}")
        return out

    def setting(self, tables: Mapping[str, Mapping[str, Any]], table: str, key: str) -> Any:
        """A plain setting's value, or its default."""
        param = KEYS[table][key].param
        where = f"[{table}].{key}" if table else key
        if key not in tables[table] and param.default is REQUIRED:
            raise self.error(where, f"required: {param.describe_type()}")
        return self.check(where, param, tables[table].get(key, param.default))

    def axis(self, tables: Mapping[str, Mapping[str, Any]], table: str, key: str) -> Axis | None:
        """An axis' values, or its default (``None``: no axis)."""
        spec = KEYS[table][key]
        where, param, given = f"[{table}].{key}", spec.param, tables[table].get(key)
        if given is None:
            if param.default is None:
                return None
            values, dim = (param.default,), False
        elif isinstance(given, Mapping) and spec.form in ("range", "seeds"):
            try:
                if spec.form == "range":
                    values = expand_range(**check_all(_RANGE, dict(given), owner="a range table"))
                else:
                    values = tuple(range(check_all(_SEEDS, dict(given), owner="a seed table")["num"]))
            except ValueError as e:
                raise self.error(where, str(e)) from None
            dim = True
        elif isinstance(given, list):
            if not given:
                raise self.error(where, "empty list: give at least one value")
            values, dim = tuple(given), True
        else:
            values, dim = (given,), False
        if spec.form == "points":
            if not dim or not all(isinstance(pt, list) and len(pt) == 2 for pt in values):
                raise self.error(where, f"must be a non-empty list of [w, b] pairs of finite numbers, got {given!r}")
            values = tuple((float(self.check(where, param, w)), float(self.check(where, param, b))) for w, b in values)
        else:
            for v in values:
                self.check(where, param, v)
        if len(set(values)) != len(values):
            raise self.error(where, f"repeated values in {list(values)}")
        return Axis(spec.dim_name, values, spec.axis == "static", dim)

    def parse(self, raw: Mapping[str, Any], source: str) -> Sweep:
        if not isinstance(raw, Mapping):
            raise SweepError(f"{self.origin}: a sweep must be a table, got {type(raw).__name__}")
        tables = self.tables(raw)
        top = {k: self.setting(tables, "", k) for k in KEYS[""]}
        if not NAME_PATTERN.match(top["name"]) or len(top["name"]) > NAME_MAX:
            raise self.error("name", f"required: letters, digits, '.', '-', '_', at most {NAME_MAX} characters "
                                     f"(got {top['name'][:NAME_MAX + 20]!r}{'...' if len(top['name']) > NAME_MAX + 20 else ''}, "
                                     f"{len(top['name'])} characters)")
        if top["report"]:
            try:
                top["report"] = reports.resolve(top["report"], self.base)
            except reports.ReportError as e:
                raise self.error("report", str(e)) from None
        settings = {t: {k: self.setting(tables, t, k) for k, key in keys.items() if not key.axis and not key.form}
                    for t, keys in KEYS.items() if t}
        kind = settings["model"]["kind"]
        init = tables["init"]
        explicit = [k for k in init if KEYS["init"][k].only == "explicit"]
        scheme = [k for k in init if KEYS["init"][k].only == "scheme"]
        if explicit and scheme:
            raise self.error("[init]", f"give either explicit values (points, w, b) or a scheme (scheme, scale, bias, "
                                       f"bias_std), not both: {explicit + scheme}")
        if explicit and kind != "neuron":
            raise self.error("[init]", "explicit (w, b) values are for kind = 'neuron'; an MLP takes scheme, scale, "
                                       "bias, bias_std")
        if "points" in init and ("w" in init or "b" in init):
            raise self.error("[init].points", "give points or w/b, not both")
        init_mode = "explicit" if explicit else "scheme"
        for key, spec in KEYS["model"].items():
            if spec.only == "mlp" and kind != "mlp" and key in tables["model"]:
                raise self.error(f"[model].{key}", "only meaningful for kind = 'mlp'")

        found: dict[str, Axis] = {}
        for dim_name, (table, spec) in _AXES.items():
            # an "mlp" key only for an MLP, an init key only in its mode; w and b give way to points
            if spec.only in (None, init_mode, kind) and not (dim_name in ("w0", "b0") and "points" in init):
                axis = self.axis(tables, table, spec.name)
                if axis is not None:
                    found[dim_name] = axis
        axes = tuple(found[n] for n in STATIC_AXES + BATCHED_AXES if n in found)

        dataset = settings["data"]["dataset"]
        params = self.dataset_params(dataset, tables["data"].get("params", {}))
        tr, mt = settings["train"], settings["metrics"]
        if tr["record_every"]:
            for steps in found["steps"].values:
                if steps % tr["record_every"]:
                    raise self.error("[train].record_every", f"must divide every value of steps; {tr['record_every']} "
                                                             f"does not divide {steps}")
        if mt["target_metric"] == "accuracy" and mt["target"] > 1:
            raise self.error("[metrics].target", f"an accuracy target must be in [0, 1], got {mt['target']!r}")
        thresholds = metrics.Thresholds(**{k: mt[k] for k in KEYS["metrics"] if k in tables["metrics"]})
        sweep = Sweep(
            **top, model_kind=kind, impl=settings["model"]["impl"], dataset=dataset,
            dataset_params=tuple(sorted(params.items())), data_seed=settings["data"]["seed"],
            batch_size=settings["data"]["batch_size"], init_mode=init_mode, score_samples=tr["score_samples"],
            record_every=tr["record_every"], roundoff_probe=tr["roundoff_probe"], thresholds=thresholds, chunk_size=settings["run"]["chunk_size"],
            memory_mb=float(settings["run"]["memory_mb"]), programs=settings["run"]["programs"], axes=axes, source=source,
        )
        self.check_combinations(sweep)
        return sweep

    def dataset_params(self, dataset: str, params: Any) -> Mapping[str, Any]:
        """The ``[data].params`` table, every value checked against the dataset's declaration."""
        if not isinstance(params, Mapping):
            raise self.error("[data].params", "must be a table of the dataset's parameters")
        declared = {p.name: p for p in datasets_lib.DATASETS[dataset].declared}
        for key, value in params.items():
            if key not in declared:
                raise self.error(f"[data].params.{key}", f"unknown parameter of dataset {dataset!r}; "
                                                         f"allowed: {', '.join(declared) or '(none)'}")
            self.check(f"[data].params.{key}", declared[key], value)
        for p in declared.values():
            if p.default is REQUIRED and p.name not in params:
                raise self.error(f"[data].params.{p.name}", f"dataset {dataset!r} needs it: {p.describe()}")
        return params

    def check_combinations(self, sweep: Sweep) -> None:
        """Catches combinations that cannot run, before anything is compiled."""
        for combo in sweep.static_combinations():
            try:
                train.check_estimator(combo["estimator"], combo["loss"])
            except ValueError as e:
                raise self.error("[train].estimator", str(e)) from None
