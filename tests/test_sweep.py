"""Tests for lossjax.sweep: validation messages, axes, and the batched grid's layout.

Every invalid sweep must fail before anything is compiled, with a :class:`SweepError` whose
message names the offending key and (where there is a choice) lists the allowed values.
Nothing here trains a model, so the module is fast.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

from lossjax.core import activations
from lossjax import data as datasets
from lossjax.core import losses
from lossjax.core import initializers, models
from lossjax.core import optimizers
from lossjax.core import train
from lossjax.core.params import REQUIRED
from lossjax.config import SCHEMA, SweepError, batched_grid, load_sweep, parse_sweep

BASE = {
    "name": "t",
    "model": {"kind": "neuron", "activation": "sigmoid"},
    "data": {"dataset": "single", "params": {"x": 1.0, "y": 0.0}},
    "train": {"steps": 10, "loss": "quadratic", "learning_rate": 0.15},
    "init": {"points": [[0.6, 0.9], [2.0, 2.0]]},
}


def sweep_with(**tables) -> dict:
    """BASE with some tables' keys replaced (a value of None deletes the key)."""
    raw = copy.deepcopy(BASE)
    for table, changes in tables.items():
        if not isinstance(changes, dict) or table not in raw:
            raw[table] = changes
            continue
        if table == "init" and changes:
            raw["init"] = {}
        for key, value in changes.items():
            if value is None:
                raw[table].pop(key, None)
            else:
                raw[table][key] = value
    return raw


def error_of(raw) -> str:
    with pytest.raises(SweepError) as info:
        parse_sweep(raw)
    return str(info.value)


def assert_lists(message: str, allowed) -> None:
    missing = [name for name in allowed if name not in message]
    assert not missing, f"message does not list {missing}: {message}"


# --------------------------------------------------------------------------------------
# The base sweep parses
# --------------------------------------------------------------------------------------


def test_base_sweep_parses():
    sweep = parse_sweep(BASE)
    assert sweep.name == "t"
    assert sweep.init_mode == "explicit"
    assert sweep.n_runs == 2
    assert sweep.dims == ("init",)


# --------------------------------------------------------------------------------------
# Unknown keys
# --------------------------------------------------------------------------------------


def test_unknown_top_level_key_lists_keys_and_tables():
    message = error_of(sweep_with(trian={"steps": 10}))
    assert "trian" in message
    # A misspelt table must be answered with the tables a sweep may have, not only the
    # top-level scalar keys.
    assert_lists(message, [k for k in SCHEMA[""]])
    assert_lists(message, [t for t in SCHEMA if t])


def test_unknown_top_level_scalar_key():
    message = error_of(sweep_with(nmae="x"))
    assert "nmae" in message
    assert_lists(message, ["name", "description", "report"])


@pytest.mark.parametrize("table", [t for t in SCHEMA if t])
def test_unknown_key_in_each_table(table):
    raw = sweep_with(**{table: {"bogus_key": 1}})
    if table == "init":
        raw["init"] = {"bogus_key": 1}
    message = error_of(raw)
    assert f"[{table}].bogus_key" in message
    assert_lists(message, SCHEMA[table])


def test_table_given_as_scalar():
    message = error_of(sweep_with(model="mlp"))
    assert "[model]" in message and "table" in message


# --------------------------------------------------------------------------------------
# Misspelt names
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tables, key, allowed",
    [
        ({"train": {"loss": "quadratc"}}, "[train].loss", list(losses.LOSSES)),
        ({"train": {"loss": ["quadratic", "bec"]}}, "[train].loss", list(losses.LOSSES)),
        ({"model": {"activation": "sigmoidd"}}, "[model].activation", list(activations.ACTIVATIONS)),
        ({"model": {"kind": "mlp", "hidden_activation": "rleu"}, "init": {"scheme": "he"}},
         "[model].hidden_activation", list(activations.ACTIVATIONS)),
        ({"train": {"optimizer": "adamw"}}, "[train].optimizer", list(optimizers.OPTIMIZERS)),
        ({"train": {"estimator": "reinforce"}}, "[train].estimator", list(train.ESTIMATORS)),
        ({"data": {"dataset": "mnst", "params": None}}, "[data].dataset", list(datasets.DATASETS)),
        ({"model": {"kind": "mlp"}, "init": {"scheme": "kaiming"}}, "[init].scheme", list(initializers.INIT_SCHEMES)),
        ({"train": {"dtype": "float8"}}, "[train].dtype", list(train.DTYPES)),
        ({"model": {"kind": "cnn"}}, "[model].kind", list(models.MODEL_KINDS)),
        ({"model": {"kind": "mlp", "impl": "torch"}, "init": {"scheme": "he"}}, "[model].impl", list(models.MODEL_IMPLS)),
        ({"data": {"params": {"z": 1.0}}}, "[data].params.z", ["x", "y"]),
    ],
)
def test_misspelt_name_lists_allowed_values(tables, key, allowed):
    message = error_of(sweep_with(**tables))
    assert key in message
    assert_lists(message, allowed)


def test_misspelt_name_inside_a_list_is_named():
    message = error_of(sweep_with(train={"optimizer": ["sgd", "adma"]}))
    assert "[train].optimizer" in message and "'adma'" in message


def test_name_given_as_a_number():
    message = error_of(sweep_with(train={"loss": 3}))
    assert "[train].loss" in message
    assert_lists(message, ["quadratic", "bce"])


def test_bad_loss_parameter_is_named():
    message = error_of(sweep_with(train={"loss": "huber:delta=-1"}))
    assert "[train].loss" in message and "delta" in message


# --------------------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tables, key",
    [
        ({"train": {"learning_rate": []}}, "[train].learning_rate"),
        ({"train": {"loss": []}}, "[train].loss"),
        ({"model": {"activation": []}}, "[model].activation"),
        ({"train": {"seed": []}}, "[train].seed"),
    ],
)
def test_empty_list(tables, key):
    message = error_of(sweep_with(**tables))
    assert key in message and "empty" in message


@pytest.mark.parametrize("lr", [0, 0.0, -0.1, [0.1, 0.0], [0.1, -1.0]])
def test_non_positive_learning_rate(lr):
    message = error_of(sweep_with(train={"learning_rate": lr}))
    assert "[train].learning_rate" in message and "> 0" in message


@pytest.mark.parametrize("lr", ["fast", True, float("nan"), float("inf")])
def test_non_numeric_or_non_finite_learning_rate(lr):
    message = error_of(sweep_with(train={"learning_rate": lr}))
    assert "[train].learning_rate" in message


@pytest.mark.parametrize("steps", [-1, -3, [10, -1], 2.5])
def test_steps_must_be_non_negative_integers(steps):
    message = error_of(sweep_with(train={"steps": steps}))
    assert "[train].steps" in message


def test_zero_steps_is_a_sweep_of_theta0_alone():
    """steps = 0 is accepted (observes θ_0 alone), also with records, whose one record is θ_0."""
    sweep = parse_sweep(sweep_with(train={"steps": [0, 10], "record_every": 5}))
    assert sorted(sweep.axis("steps").values) == [0, 10]


@pytest.mark.parametrize("steps, every", [(10, 3), ([10, 12], 4), (10, 20)])
def test_record_every_must_divide_steps(steps, every):
    message = error_of(sweep_with(train={"steps": steps, "record_every": every}))
    assert "[train].record_every" in message and "divide" in message


def test_record_every_dividing_every_steps_value_is_accepted():
    sweep = parse_sweep(sweep_with(train={"steps": [10, 20], "record_every": 5}))
    assert sweep.record_every == 5


@pytest.mark.parametrize("every", [-1, 1.5, "1"])
def test_record_every_must_be_a_non_negative_integer(every):
    assert "[train].record_every" in error_of(sweep_with(train={"record_every": every}))


@pytest.mark.parametrize(
    "points",
    [
        [[1.0, 2.0, 3.0]],
        [[1.0]],
        [1.0, 2.0],
        [[1.0, "b"]],
        [[1.0, float("nan")]],
        [[1.0, float("inf")]],
        [],
        "[[1, 2]]",
        [[1.0, 2.0], [1.0, 2.0]],
    ],
)
def test_malformed_init_points(points):
    message = error_of(sweep_with(init={"points": points}))
    assert "[init].points" in message


def test_points_and_w_b_together():
    message = error_of(sweep_with(init={"points": [[1.0, 1.0]], "w": 1.0}))
    assert "[init].points" in message


def test_explicit_and_scheme_init_together():
    message = error_of(sweep_with(init={"w": 1.0, "scheme": "he"}))
    assert "[init]" in message and "scheme" in message


@pytest.mark.parametrize("init", [{"points": [[1.0, 1.0]]}, {"w": 1.0}, {"b": [0.0, 1.0]}])
def test_explicit_init_on_an_mlp(init):
    raw = sweep_with(model={"kind": "mlp"}, data={"dataset": "xor", "params": None}, init=init)
    message = error_of(raw)
    assert "[init]" in message and "neuron" in message
    assert_lists(message, ["scheme", "scale", "bias", "bias_std"])


@pytest.mark.parametrize("key", ["depth", "width", "hidden_activation"])
def test_mlp_keys_on_a_neuron(key):
    value = "tanh" if key == "hidden_activation" else 2
    message = error_of(sweep_with(model={key: value}))
    assert f"[model].{key}" in message and "mlp" in message


@pytest.mark.parametrize("key, value", [("scale", -1.0), ("bias_std", -0.5)])
def test_negative_scheme_scale(key, value):
    raw = sweep_with(model={"kind": "mlp"}, data={"dataset": "xor", "params": None}, init={"scheme": "he", key: value})
    assert f"[init].{key}" in error_of(raw)


@pytest.mark.parametrize(
    "table",
    [
        {"start": 0.1, "stop": 1.0},
        {"start": 0.1, "num": 3},
        {"start": 0.1, "stop": 1.0, "num": 0},
        {"start": 0.1, "stop": 1.0, "num": 2.5},
        {"start": 0.1, "stop": 1.0, "num": 3, "step": 0.1},
        {"start": "a", "stop": 1.0, "num": 3},
        {"start": 0.0, "stop": 1.0, "num": 3, "log": True},
        {"start": -1.0, "stop": 1.0, "num": 3},  # a learning rate must be > 0
    ],
)
def test_malformed_range_tables(table):
    message = error_of(sweep_with(train={"learning_rate": table}))
    assert "[train].learning_rate" in message


def test_range_tables_expand_to_a_dimension():
    sweep = parse_sweep(
        sweep_with(
            train={"learning_rate": {"start": 1e-3, "stop": 1.0, "num": 4, "log": True}},
            init={"w": {"start": -1.0, "stop": 1.0, "num": 3}, "b": 0.5},
        )
    )
    lr = sweep.axis("learning_rate")
    np.testing.assert_allclose(lr.values, [1e-3, 1e-2, 1e-1, 1.0], rtol=1e-12)
    assert lr.dim and not lr.static
    assert sweep.axis("w0").values == (-1.0, 0.0, 1.0) and sweep.axis("w0").dim
    assert sweep.axis("b0").values == (0.5,) and not sweep.axis("b0").dim


def test_repeated_values_are_rejected():
    assert "[train].learning_rate" in error_of(sweep_with(train={"learning_rate": [0.1, 0.1]}))
    assert "[train].loss" in error_of(sweep_with(train={"loss": ["bce", "bce"]}))


@pytest.mark.parametrize("seed", [-1, [0, -2], {"num": 0}, {"n": 3}, 1.5])
def test_bad_seeds(seed):
    assert "[train].seed" in error_of(sweep_with(train={"seed": seed}))


@pytest.mark.parametrize("name", [None, "", "a b", "../x", 3])
def test_bad_name(name):
    raw = sweep_with()
    if name is None:
        del raw["name"]
    else:
        raw["name"] = name
    assert "name" in error_of(raw)


@pytest.mark.parametrize(
    "metrics, key",
    [
        ({"target_metric": "acc"}, "target_metric"),
        ({"tiny_grad": -1.0}, "tiny_grad"),
        ({"tiny_grad": "small"}, "tiny_grad"),
        ({"plateau_tau": "a"}, "plateau_tau"),
        ({"target": "x"}, "target"),
        ({"target": True}, "target"),
        ({"target": float("nan")}, "target"),
        ({"slow_plateau_steps": 2.5}, "slow_plateau_steps"),
        ({"slow_plateau_steps": 0}, "slow_plateau_steps"),
        ({"dormant_tau": -0.1}, "dormant_tau"),
        ({"target_metric": "accuracy", "target": 1.5}, "target"),
    ],
)
def test_bad_metrics_values_are_named(metrics, key):
    """A bad threshold is caught at parse time and named, not left to crash inside jit."""
    message = error_of(sweep_with(metrics=metrics))
    assert "[metrics]" in message and key in message


def test_metrics_target_metric_lists_allowed():
    assert_lists(error_of(sweep_with(metrics={"target_metric": "acc"})), ["loss", "error", "accuracy"])


def test_score_function_on_a_logits_loss():
    message = error_of(sweep_with(train={"loss": "bce", "estimator": "score_function"}))
    assert "[train].estimator" in message and "bce" in message


@pytest.mark.parametrize("key, value", [("chunk_size", -1), ("memory_mb", 0), ("memory_mb", "lots")])
def test_bad_run_table(key, value):
    assert f"[run].{key}" in error_of(sweep_with(run={key: value}))


# --------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------


def test_load_sweep_from_toml(tmp_path):
    text = """
name = "from-file"   # a comment
[model]
activation = ["sigmoid", "tanh"]
[data]
dataset = "single"
params = { x = 1.0, y = 0.0 }
[train]
steps = 20
learning_rate = { start = 0.01, stop = 1.0, num = 3, log = true }
[init]
points = [[0.6, 0.9], [2.0, 2.0]]
"""
    path = tmp_path / "s.toml"
    path.write_text(text)
    sweep = load_sweep(path)
    assert sweep.source == text  # kept as written, for the results' attributes
    assert sweep.n_runs == 2 * 3 * 2
    assert [a.name for a in sweep.static_axes if a.dim] == ["activation"]


def test_load_sweep_errors_name_the_file(tmp_path):
    with pytest.raises(SweepError, match="does not exist"):
        load_sweep(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("name = \n[train\n")
    with pytest.raises(SweepError, match="bad.toml.*TOML"):
        load_sweep(bad)
    wrong = tmp_path / "wrong.toml"
    wrong.write_text('name = "w"\n[train]\nstpes = 3\n')
    with pytest.raises(SweepError) as info:
        load_sweep(wrong)
    assert "wrong.toml" in str(info.value) and "[train].stpes" in str(info.value)


# --------------------------------------------------------------------------------------
# Axes and the batched grid
# --------------------------------------------------------------------------------------


def test_scalar_axes_are_scalars_and_lists_are_dimensions():
    sweep = parse_sweep(
        sweep_with(
            model={"activation": ["sigmoid"]},  # a one-element list is still a dimension
            train={"loss": "bce", "learning_rate": [0.1, 0.2], "seed": 3, "steps": [10]},
        )
    )
    dims = {a.name: a.dim for a in sweep.axes}
    assert dims["activation"] is True
    assert dims["loss"] is False
    assert dims["learning_rate"] is True
    assert dims["seed"] is False
    assert dims["steps"] is True
    assert dims["optimizer"] is False  # a default is a scalar
    assert sweep.dims == ("activation", "steps", "learning_rate", "init")
    static = {a.name for a in sweep.static_axes}
    assert {"loss", "activation", "optimizer", "estimator", "dtype", "steps"} <= static
    assert "learning_rate" not in static and "init" not in static


def test_seed_table_is_a_range_of_seeds():
    sweep = parse_sweep(sweep_with(train={"seed": {"num": 4}}))
    assert sweep.axis("seed").values == (0, 1, 2, 3) and sweep.axis("seed").dim


def test_static_combinations_are_the_product():
    sweep = parse_sweep(sweep_with(train={"loss": ["quadratic", "bce"], "optimizer": ["sgd", "adam", "momentum"]}))
    combos = sweep.static_combinations()
    assert len(combos) == 6
    assert {(c["loss"], c["optimizer"]) for c in combos} == {
        (l, o) for l in ("quadratic", "bce") for o in ("sgd", "adam", "momentum")
    }
    assert sweep.n_runs == 6 * 2


def test_batched_grid_is_c_order_over_batched_axes():
    lrs = [0.1, 0.2, 0.3]
    points = [[0.6, 0.9], [2.0, 2.0]]
    sweep = parse_sweep(
        sweep_with(
            train={"learning_rate": lrs, "seed": {"num": 2}},
            init={"points": points},
            data={"target": [0.0, 1.0]},
        )
    )
    assert [a.name for a in sweep.batched_axes] == ["learning_rate", "init", "seed", "target"]
    grid = batched_grid(sweep)
    shape = (3, 2, 2, 2)
    assert len(grid["seed"]) == math.prod(shape)
    row = 0
    for i_lr, lr in enumerate(lrs):  # the last axis varies fastest
        for w, b in points:
            for seed in (0, 1):
                for target in (0.0, 1.0):
                    assert grid["learning_rate"][row] == lr
                    assert (grid["init_w"][row], grid["init_b"][row]) == (w, b)
                    assert grid["seed"][row] == seed
                    assert grid["target"][row] == target
                    row += 1
    assert grid["seed"].dtype == np.int32 and grid["init_scheme"].dtype == np.int32
    # Fields not swept keep their defaults.
    assert np.all(grid["init_scale"] == 1.0) and np.all(grid["init_bias_std"] == 0.0)


def test_batched_grid_w_b_product_and_defaults():
    sweep = parse_sweep(sweep_with(init={"w": [1.0, 2.0], "b": [-1.0, 0.0, 1.0]}))
    grid = batched_grid(sweep)
    np.testing.assert_array_equal(grid["init_w"], np.repeat([1.0, 2.0], 3))
    np.testing.assert_array_equal(grid["init_b"], np.tile([-1.0, 0.0, 1.0], 2))
    assert np.all(np.isnan(grid["target"]))  # NaN: keep the dataset's targets


def test_batched_grid_scheme_axes():
    raw = sweep_with(
        model={"kind": "mlp", "depth": 1, "width": 4},
        data={"dataset": "xor", "params": None},
        init={"scheme": ["he", "glorot"], "scale": [0.5, 1.0], "bias": -1.0},
    )
    sweep = parse_sweep(raw)
    assert sweep.init_mode == "scheme"
    grid = batched_grid(sweep)
    he, glorot = initializers.init_scheme_index("he"), initializers.init_scheme_index("glorot")
    np.testing.assert_array_equal(grid["init_scheme"], [he, he, glorot, glorot])
    np.testing.assert_array_equal(grid["init_scale"], [0.5, 1.0, 0.5, 1.0])
    assert np.all(grid["init_bias"] == -1.0)
    assert not sweep.axis("init_bias").dim and sweep.axis("init_scheme").dim


def test_train_config_of_a_combination():
    sweep = parse_sweep(sweep_with(train={"loss": ["quadratic", "bce"], "record_every": 5}, metrics={"target": 0.05}))
    combo = sweep.static_combinations()[1]
    cfg = sweep.train_config(combo, n_inputs=1, n_outputs=1)
    assert cfg.loss == "bce" and cfg.steps == 10 and cfg.record_every == 5
    assert cfg.init_mode == "explicit" and cfg.thresholds.target == 0.05
    assert cfg.model.kind == "neuron" and cfg.model.activation == "sigmoid"


def test_recording_trajectories_of_a_huge_grid_is_refused_before_running():
    from lossjax import runner
    from lossjax.config import SweepError

    spec = {
        "name": "huge",
        "train": {"steps": 300, "record_every": 1, "loss": "quadratic"},
        "init": {"w": {"start": -6.0, "stop": 6.0, "num": 1000}, "b": {"start": -6.0, "stop": 6.0, "num": 1000}},
    }
    with pytest.raises(SweepError, match=r"record_every = 1 would keep about \d+\.\d GiB"):
        runner.run_sweep(spec)


# --------------------------------------------------------------------------------------
# The declaration: every key declared once, every value with a range
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tables, key, allowed",
    [
        ({"train": {"seed": 2**31}}, "[train].seed", "< 2**31"),  # seeds are int32 in the grid
        ({"train": {"seed": 2**32}}, "[train].seed", "< 2**31"),
        ({"train": {"seed": {"num": 2**31 + 1}}}, "[train].seed", "<= 2**31"),
        ({"train": {"steps": 2**31 - 1}}, "[train].steps", "< 2147483647"),
        ({"train": {"steps": [10, 2**40]}}, "[train].steps", "< 2147483647"),
        ({"run": {"memory_mb": float("nan")}}, "[run].memory_mb", "finite"),
        ({"run": {"memory_mb": float("inf")}}, "[run].memory_mb", "finite"),
        ({"run": {"memory_mb": -1}}, "[run].memory_mb", "> 0"),
        ({"run": {"chunk_size": 2**31}}, "[run].chunk_size", "< 2**31"),
        ({"run": {"programs": "padded"}}, "[run].programs", "per_architecture, auto, fewest"),
        ({"metrics": {"target": -0.1}}, "[metrics].target", ">= 0"),
        ({"metrics": {"target_metric": "accuracy", "target": 1.5}}, "[metrics].target", "[0, 1]"),
        ({"metrics": {"slow_plateau_steps": 2**31}}, "[metrics].slow_plateau_steps", "< 2**31"),
        ({"data": {"seed": 2**32}}, "[data].seed", "< 2**32"),
        ({"data": {"seed": -1}}, "[data].seed", ">= 0"),
        ({"data": {"batch_size": 2**31}}, "[data].batch_size", "< 2**31"),
        ({"data": {"params": {"x": 1.0, "y": 2.0}}}, "[data].params.y", "<= 1"),
        ({"data": {"params": {"x": "one", "y": 0.0}}}, "[data].params.x", "real number"),
        ({"data": {"dataset": "blobs2d", "params": {"n_train": 0}}}, "[data].params.n_train", ">= 1"),
        ({"data": {"dataset": "blobs2d", "params": {"n_train": 2.5}}}, "[data].params.n_train", "integer"),
        ({"data": {"dataset": "mnist", "params": {"path": "."}, "seed": 0}, "init": {"w": 1.0}}, "[data].params.path", None),
        ({"data": {"dataset": "mnist", "params": {"flatten": True}}}, "[data].params.path", "required"),
        ({"data": {"dataset": "moons", "params": {"noise": float("nan")}}}, "[data].params.noise", "finite"),
        ({"train": {"learning_rate": {"start": 0.1, "stop": 1.0, "num": 3, "log": 1}}}, "[train].learning_rate", "true or false"),
        ({"train": {"score_samples": 1}}, "[train].score_samples", ">= 2"),
    ],
)
def test_out_of_range_values_are_refused_in_one_line(tables, key, allowed):
    raw = sweep_with(**tables)
    if allowed is None:  # a valid mnist request parses: its files are only read when it runs
        assert parse_sweep(raw).dataset == "mnist"
        return
    message = error_of(raw)
    assert key in message and allowed in message and "\n" not in message, message


def test_not_utf8_and_directory_sweep_files(tmp_path):
    latin = tmp_path / "latin.toml"
    latin.write_bytes('name = "caf\xe9"\n'.encode("latin-1"))
    with pytest.raises(SweepError, match="latin.toml.*not UTF-8") as info:
        load_sweep(latin)
    assert "\n" not in str(info.value)
    with pytest.raises(SweepError, match="is a directory"):
        load_sweep(tmp_path)


def test_schema_rows_cover_every_key_with_type_default_and_meaning():
    from lossjax.config import KEYS, schema_rows

    rows = schema_rows()
    described = {(t, k): d for t, k, d in rows}
    for table, keys in KEYS.items():
        for name, key in keys.items():
            text = described[(table, name)]
            assert key.param.doc in text and key.param.describe_type() in text
            assert ("required" in text) if key.param.default is REQUIRED else (f"default {key.param.default!r}" in text)
            if key.axis:
                assert f"{key.axis} axis" in text
    # Every dataset parameter is listed too, with its own declaration.
    for name, info in datasets.DATASETS.items():
        for p in info.declared:
            assert described[("data.params", f"{name}.{p.name}")] == p.describe()
    # SCHEMA is a read-only view of the same declarations.
    assert {t: dict(keys) for t, keys in SCHEMA.items()} == {
        t: {k: d for tt, k, d in rows if tt == t} for t in KEYS
    }
    with pytest.raises(TypeError):
        SCHEMA["train"]["steps"] = "changed"


def test_metrics_keys_are_the_thresholds_fields():
    import dataclasses

    from lossjax.config import KEYS
    from lossjax.core import metrics

    fields = dataclasses.fields(metrics.Thresholds)
    assert [f.name for f in fields] == list(KEYS["metrics"])
    for f in fields:
        assert KEYS["metrics"][f.name].param.default == f.default
        assert KEYS["metrics"][f.name].param.doc  # one line of meaning each


def test_declared_defaults_are_what_an_empty_sweep_gets():
    from lossjax.config import KEYS
    from lossjax.core import metrics

    empty = parse_sweep({"name": "d"})
    assert empty.model_kind == KEYS["model"]["kind"].param.default
    assert empty.thresholds == metrics.Thresholds()
    assert empty.memory_mb == KEYS["run"]["memory_mb"].param.default
    for keys in KEYS.values():
        for key in keys.values():
            if key.axis and key.only in (None, empty.init_mode) and key.param.default is not None:
                assert empty.axis(key.dim_name).values == (key.param.default,)
    # Writing every default out gives the same sweep.
    spelled = {"name": "d"}
    for table, keys in KEYS.items():
        if table:
            spelled[table] = {
                k: key.param.default
                for k, key in keys.items()
                if key.param.default is not None and key.only in (None, "scheme")
            }
    again = parse_sweep(spelled)
    assert again.axes == empty.axes and again.thresholds == empty.thresholds


def test_list_verbose_prints_every_key(capsys):
    from lossjax import cli
    from lossjax.config import KEYS

    assert cli.main(["list", "-v"]) == 0
    out = capsys.readouterr().out
    for table, keys in KEYS.items():
        assert f"sweep keys [{table or 'top level'}]" in out
        for key in keys.values():
            assert key.describe() in out


def test_a_programs_draws_are_those_of_the_grids_schemes():
    """RAI's, the uniform and the normal draws are compiled only for grids whose schemes take them."""
    base = {"name": "r", "model": {"kind": "mlp", "depth": 2, "width": 4}, "data": {"dataset": "xor"}}

    def compiled_in(schemes):
        sweep = parse_sweep({**base, "init": {"scheme": schemes}})
        names = sweep.train_config(sweep.static_combinations()[0], 2, 1).init_schemes
        return "rai" in names, initializers.standard_draws(names)

    assert compiled_in(["he", "lecun"]) == (False, ("normal",))
    assert compiled_in(["he", "rai"]) == (True, ("normal",))
    assert compiled_in(["glorot_uniform", "standard"]) == (False, ("uniform",))
    assert compiled_in(["standard", "rai"]) == (True, ("normal", "uniform"))
