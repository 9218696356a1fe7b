"""Every study report, run on a small real sweep, with its table numbers recomputed here.

Each study's sweep file is read, shrunk (fewer grid points, fewer steps) and run with the
engine; the report function named by the sweep (``experiments/<study>/report.py``, loaded with
:func:`lossjax.reports.load_module`) writes its tables, which are read back as text and compared,
cell by cell, with the same quantity computed in the test from the results dataset by its
definition (numpy / xarray on the saved variables; no call into the study's analysis helpers).
"""

from __future__ import annotations

import copy
import math
import shutil
import tomllib
from pathlib import Path

import numpy as np

from lossjax import cli, config, reports, runner
from lossjax.core import metrics

ROOT = Path(__file__).resolve().parent.parent
EXPERIMENTS = ROOT / "experiments"
STALLED, DIVERGED, NEVER = metrics.STALLED, metrics.DIVERGED, metrics.NEVER


def run_small(study: str, name: str, **changes):
    """Runs ``experiments/<study>/<name>.toml`` with ``changes`` ({"train.steps": 20, ...})."""
    path = EXPERIMENTS / study / f"{name}.toml"
    raw = tomllib.loads(path.read_text())
    raw = copy.deepcopy(raw)
    for key, value in changes.items():
        table, _, field = key.rpartition(".")
        target = raw
        for part in table.split(".") if table else []:
            target = target.setdefault(part, {})
        if value is None:
            target.pop(field, None)
        else:
            target[field] = value
    text = to_toml(raw)
    assert tomllib.loads(text) == raw
    # The report of the non-differentiable study rebuilds the data from the saved sweep text,
    # which must be TOML (parse_sweep of a bare dict would save JSON there).
    spec = config.parse_sweep(raw, source=text, origin=str(path), base=path.parent)
    return runner.run_sweep(spec)


def _value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_value(x)}" for k, x in v.items()) + " }"
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    return repr(v)


def to_toml(raw: dict) -> str:
    """The sweep as TOML (top-level keys, then one table per section; enough for sweep files)."""
    lines = [f"{k} = {_value(v)}" for k, v in raw.items() if not isinstance(v, dict)]
    for table_name, fields in raw.items():
        if isinstance(fields, dict):
            lines += ["", f"[{table_name}]"] + [f"{k} = {_value(v)}" for k, v in fields.items()]
    return "\n".join(lines) + "\n"


def make(study: str, function: str, ds, folder: Path) -> Path:
    getattr(reports.load_module(EXPERIMENTS / study / "report.py"), function)(ds, folder)
    return folder


def tables(path: Path) -> list[list[dict[str, str]]]:
    """Every Markdown table in a file, as lists of {header: cell} rows."""
    found, current, header = [], None, None
    for line in path.read_text().splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
            if current is None:
                header, current = cells, []
            elif not set("".join(cells)) <= set("-: "):
                current.append(dict(zip(header, cells)))
        elif current is not None:
            found.append(current)
            current = None
    if current is not None:
        found.append(current)
    return found


def table(path: Path) -> list[dict[str, str]]:
    (only,) = tables(path)
    return only


def g4(v) -> str:
    """The 4-significant-digit format of ``lossjax.io.figures.markdown_table``."""
    return f"{float(v):.4g}"


def close(cell: str, value: float, fmt: str) -> None:
    assert cell == format(float(value), fmt), (cell, value)


def remade_from_summary(study: str, function: str, folder: Path, elsewhere: Path, module: str = "report.py") -> None:
    """The results deleted, ``lossjax report`` on the summary alone remakes every table and figure
    identically. (A sweep too large to commit keeps only its report's ``summary.nc`` in git.)"""
    made = sorted(p.name for p in folder.iterdir())
    assert "summary.nc" in made
    elsewhere.mkdir()
    shutil.copy(folder / "summary.nc", elsewhere / "summary.nc")  # a clean clone: no results, no tables
    assert cli.main(["report", str(elsewhere), "--name", f"{EXPERIMENTS / study / module}:{function}"]) == 0
    assert sorted(p.name for p in elsewhere.iterdir()) == made
    for name in made:
        assert (elsewhere / name).read_bytes() == (folder / name).read_bytes(), name
    (elsewhere / "summary.nc").unlink()  # and without it, the report says what is missing (exit code 2)
    assert cli.main(["report", str(elsewhere)]) == 2


# --------------------------------------------------------------------------------------
# The single-neuron study
# --------------------------------------------------------------------------------------


def plateau(loss: np.ndarray, reached: np.ndarray, tau: float) -> int:
    """longest_plateau by its definition (lossjax.core.metrics docstring), written again here."""
    best = current = 0
    ever = False
    for t in range(1, len(loss)):
        ever_before = ever or bool(reached[t - 1])
        ever = ever_before
        improvement = (loss[t - 1] - loss[t]) / max(abs(loss[t - 1]), np.finfo(loss.dtype).tiny)
        flat = (not ever_before) and (not reached[t]) and improvement < tau
        current = current + 1 if flat else 0
        best = max(best, current)
    return best


def test_report_nielsen(tmp_path):
    ds = run_small("neuron", "nielsen")
    folder = make("neuron", "report_nielsen", ds, tmp_path)
    outputs = table(folder / "outputs.md")
    assert len(outputs) == 4
    for row in outputs:
        r = ds.sel(loss=row["loss"], init=row["init (w, b)"])
        for t in (0, 150, 300):
            close(row[f"a at step {t}"], r.traj_output.sel(step=t), ".4f")
    summary = table(folder / "summary.md")
    taus = [float(k.split("=")[1]) for k in summary[0] if k.startswith("plateau τ=")]
    assert 1e-3 in taus
    for row in summary:
        r = ds.sel(loss=row["loss"], init=row["init"])
        for key in ("steps_to_target", "longest_plateau", "zero_grad_steps", "tiny_grad_steps"):
            assert row[key] == str(int(r[key])), key
        assert row["outcome"] == metrics.OUTCOMES[int(r.outcome)]
        # error target |a − 0| ≤ 0.25, recorded at every step
        reached = np.abs(r.traj_output.values) <= 0.25
        for tau in taus:
            assert row[f"plateau τ={tau:g}"] == str(plateau(r.traj_loss.values, reached, tau)), tau
    # The texts' numbers in the README table: (2, 2) quadratic is slow, reached at 278.
    slow = ds.sel(loss="quadratic", init="w=2,b=2")
    assert int(slow.steps_to_target) == 278 and metrics.OUTCOMES[int(slow.outcome)] == "slow"


def test_report_nondiff(tmp_path):
    ds = run_small("neuron", "neuron_nondiff", **{
        "train.steps": 40, "train.loss": ["zero_one", "soft_f1", "quadratic"], "train.learning_rate": [1.0],
        "init.w": [-0.5, 2.0], "init.b": [0.0, 1.0]})
    folder = make("neuron", "report_nondiff", ds, tmp_path)
    rows = table(folder / "zero_gradients.md")
    assert len(rows) == 3 * 2
    steps = int(ds.steps)
    for row in rows:
        r = ds.sel(loss=row["loss"], activation=row["activation"])
        zero = r.zero_grad_steps.values
        close(row["mean zero_grad_steps / T"], np.mean(zero / steps), ".3f")
        close(row["share with zero_grad_steps = T"], np.mean(zero == steps), ".3f")
        close(row["share reaching target"], np.mean(r.steps_to_target.values != NEVER), ".3f")
        close(row["share stalled"], np.mean(r.outcome.values == STALLED), ".3f")
        close(row["mean final accuracy"], np.mean(r.accuracy_final.values), ".3f")
        assert (row["min zero_grad_steps"], row["max zero_grad_steps"]) == (str(zero.min()), str(zero.max()))
    assert (folder / "perturbation.md").is_file()


def test_report_ce(tmp_path):
    ds = run_small("neuron", "neuron_ce", **{
        "train.steps": 10, "train.loss": ["bce", "bce_guarded"], "train.dtype": ["float32", "bfloat16"],
        "init.w": {"start": -40.0, "stop": 40.0, "num": 41}})
    folder = make("neuron", "report_ce", ds, tmp_path)
    rows = table(folder / "zero_gradient_z.md")
    assert len(rows) == 2 * 2 * 2
    z = ds.w0.values
    for row in rows:
        r = ds.sel(loss=row["loss"], dtype=row["dtype"], target=float(row["target y"]))
        zero = r.layer_grad_norm_init.values.reshape(-1) == 0
        wrong = (z > 0) if float(row["target y"]) < 0.5 else (z < 0)
        close(row["share of z grid with zero gradient at step 0"], zero.mean(), ".3f")
        close(row["same, where the output is wrong"], (zero & wrong).sum() / wrong.sum(), ".3f")
        first = row["smallest |z| with zero gradient on the wrong side"]
        if (zero & wrong).any():
            close(first, np.min(np.abs(z[zero & wrong])), ".1f")
        else:
            assert first == "none"
        close(row["share with zero_grad_steps = T"], np.mean(r.zero_grad_steps.values == int(ds.steps)), ".3f")
        close(row["share stalled"], np.mean(r.outcome.values == STALLED), ".3f")
        close(row["share diverged"], np.mean(r.outcome.values == DIVERGED), ".3f")
    # bce_guarded in bfloat16 has exact zeros on the wrong side (σ rounds to 1); bce on logits never.
    assert any(r["loss"] == "bce_guarded" and r["same, where the output is wrong"] != "0.000" for r in rows)
    assert all(r["same, where the output is wrong"] == "0.000" for r in rows if r["loss"] == "bce")


def test_report_pwc(tmp_path):
    ds = run_small("neuron", "neuron_pwc", **{
        "model.activation": ["piecewise_constant:sharp=5", "piecewise_constant"], "train.steps": 60,
        "init.w": {"start": -0.25, "stop": 1.25, "num": 31}})
    folder = make("neuron", "report_pwc", ds, tmp_path)
    rows = table(folder / "stall_rate.md")
    assert [r["sharp"] for r in rows] == ["5", "100"]
    for row, act in zip(rows, ["piecewise_constant:sharp=5", "piecewise_constant"]):
        r = ds.sel(activation=act)
        stalled = r.outcome == STALLED
        close(row["stall rate (all runs)"], stalled.mean(), ".3f")
        for lr in ds.learning_rate.values:
            for target in ds.target.values:
                close(row[f"learning_rate={lr:g} target={target:g}"],
                      stalled.sel(learning_rate=lr, target=target).mean(), ".3f")
        close(row["share with zero_grad_steps = T"], np.mean(r.zero_grad_steps.values == int(ds.steps)), ".3f")


def saturation_z(delta: float) -> float:
    """z* with σ'(z*) = δ·max σ' = δ/4: σ(z*) = (1 + √(1 − δ))/2, z* = logit of that."""
    s = (1 + math.sqrt(1 - delta)) / 2
    return math.log(s / (1 - s))


def test_report_atlas(tmp_path):
    ds = run_small("neuron", "neuron_atlas", **{
        "model.activation": ["sigmoid", "step"], "train.loss": ["quadratic", "bce", "zero_one"],
        "train.optimizer": ["sgd", "momentum"], "train.learning_rate": [0.15, 1.5], "train.steps": 60,
        "init.w": {"start": -6.0, "stop": 6.0, "num": 13}, "init.b": {"start": -6.0, "stop": 6.0, "num": 13}})
    folder = make("neuron", "report_atlas", ds, tmp_path)
    zstar = saturation_z(0.01)
    w0, b0 = np.meshgrid(ds.w0.values, ds.b0.values, indexing="ij")
    saturated = np.abs(w0 + b0) > zstar  # one input x = 1
    rows = table(folder / "stall_rate.md")
    assert len(rows) == 3 * 2 * 2
    steps = int(ds.steps)
    for row in rows:
        r = ds.sel(loss=row["loss"], activation=row["activation"], optimizer=row["optimizer"])
        stalled = (r.outcome == STALLED).transpose("learning_rate", "w0", "b0").values
        for k, lr in enumerate(ds.learning_rate.values):
            close(row[f"stalled η={lr:g}"], stalled[k].mean(), ".3f")
        close(row["stalled (all η)"], stalled.mean(), ".3f")
        close(row["stalled, saturated init"], stalled[:, saturated].mean(), ".3f")
        close(row["stalled, unsaturated init"], stalled[:, ~saturated].mean(), ".3f")
        zero = r.zero_grad_steps.values
        close(row["zero grad every step"], np.mean(zero == steps), ".3f")
        close(row["any zero-grad step"], np.mean(zero > 0), ".3f")
        close(row["mean tiny-grad share"], np.mean(r.tiny_grad_steps.values / steps), ".3f")
        close(row["diverged"], np.mean(r.outcome.values == DIVERGED), ".3f")
    versus = table(folder / "quadratic_vs_bce.md")
    assert len(versus) == 2 * 2  # sigmoid only: optimiser × η
    for row in versus:
        sel = dict(activation=row["activation"], optimizer=row["optimizer"], learning_rate=float(row["η"]))
        q = (ds.outcome.sel(loss="quadratic", **sel) == STALLED).values
        b = (ds.outcome.sel(loss="bce", **sel) == STALLED).values
        close(row["quadratic stalled"], q.mean(), ".3f")
        close(row["bce stalled"], b.mean(), ".3f")
        close(row["quadratic stalls, bce does not"], (q & ~b).mean(), ".3f")
        close(row["bce stalls, quadratic does not"], (b & ~q).mean(), ".3f")
    (check,) = table(folder / "saturation_check.md")
    engine = ds.saturated_init.sel(activation="sigmoid").isel(loss=0, optimizer=0, learning_rate=0)
    engine = engine.transpose("w0", "b0").values > 0.5
    assert check["grid points"] == str(saturated.size)
    close(check["agree"], np.mean(engine == saturated), ".6f")
    assert check["mismatches"] == str(int(np.sum(engine != saturated)))
    remade_from_summary("neuron", "report_atlas", folder, tmp_path / "clone")


def test_report_rounding(tmp_path):
    ds = run_small("neuron", "neuron_atlas_rounding", **{
        "train.loss": ["quadratic", "bce"], "train.optimizer": ["sgd"], "train.dtype": ["float32", "bfloat16"],
        "train.learning_rate": [0.15], "train.steps": 60,
        "init.w": {"start": -6.0, "stop": 6.0, "num": 9}, "init.b": {"start": -6.0, "stop": 6.0, "num": 9}})
    reports.load_module(EXPERIMENTS / "neuron" / "report_rounding.py").report_rounding(ds, tmp_path)
    assert (tmp_path / "rounding_bfloat16.png").is_file() and not (tmp_path / "rounding_float32.png").exists()

    def share(cell: str, mask, among=None) -> None:
        if among is None:
            close(cell, np.mean(mask), ".3f")
        elif among.any():
            close(cell, mask[among].mean(), ".3f")
        else:
            assert cell == "—"

    causes = table(tmp_path / "stall_causes.md")
    assert len(causes) == 2 * 2
    seen = set()
    columns = {"zero_gradient": "by zero gradient", "zero_update": "by zero update", "other": "other"}
    for row in causes:
        near = ds.sel(loss=row["loss"], optimizer=row["optimizer"], dtype=row["dtype"], update_rounding="nearest")
        f32 = ds.sel(loss=row["loss"], optimizer=row["optimizer"], dtype="float32", update_rounding="nearest")
        cause = near.stall_cause.values
        share(row["stalled"], near.outcome.values == STALLED)
        for code, name in enumerate(metrics.STALL_CAUSES[1:], start=1):
            share(row[columns[name]], cause == code)
            if np.any(cause == code):
                seen.add(name)
        share(row["zero-update stalls float32 stalls too"], f32.outcome.values == STALLED, cause == metrics.ZERO_UPDATE)
    assert "zero_update" in seen  # the bfloat16 rows have rounding stalls to rescue

    rescue = table(tmp_path / "rounding_rescue.md")
    assert len(rescue) == 2 * 2 * 2  # loss × dtype × (stochastic, kahan)
    for row in rescue:
        sel = dict(loss=row["loss"], optimizer=row["optimizer"])
        near = ds.sel(**sel, dtype=row["dtype"], update_rounding="nearest")
        outcome = ds.outcome.sel(**sel, dtype=row["dtype"], update_rounding=row["update_rounding"]).values
        f32 = ds.outcome.sel(**sel, dtype="float32", update_rounding="nearest").values
        reached = (outcome == metrics.CONVERGED) | (outcome == metrics.SLOW)
        zero_update = near.stall_cause.values == metrics.ZERO_UPDATE
        share(row["stalled"], outcome == STALLED)
        share(row["nearest stalls rescued"], reached, near.outcome.values == STALLED)
        share(row["zero-update stalls rescued"], reached, zero_update)
        share(row["… of those float32 learns"], reached, zero_update & ((f32 == metrics.CONVERGED) | (f32 == metrics.SLOW)))
        share(row["diverged"], outcome == DIVERGED)
    remade_from_summary("neuron", "report_rounding", tmp_path, tmp_path / "clone", module="report_rounding.py")


# --------------------------------------------------------------------------------------
# The catalogue
# --------------------------------------------------------------------------------------


def test_report_catalogue(tmp_path):
    ds = run_small("catalogue", "catalogue", **{
        "model.activation": ["sigmoid", "step"], "train.loss": ["bce", "zero_one"], "train.steps": 40})
    folder = make("catalogue", "report_catalogue", ds, tmp_path)
    found = tables(folder / "tables.md")
    assert len(found) == 2 * 4
    variables = ["outcome", "zero_grad_steps", "steps_to_target", "output_final"] * 2
    inits = [str(i) for i in ds.init.values for _ in range(4)]
    for rows, variable, init in zip(found, variables, inits):
        for row in rows:
            loss = row["loss \\ activation"].strip("`")
            for act in ("sigmoid", "step"):
                value = ds[variable].sel(init=init, loss=loss, activation=act).item()
                cell = row[f"`{act}`"]
                if variable == "outcome":
                    assert cell == metrics.OUTCOMES[int(value)]
                elif variable == "output_final":
                    close(cell, value, ".3g")
                else:
                    assert cell == str(int(value))
    readme = (folder / "README.md").read_text()
    frozen = [str(l) for l in ds.loss.values if bool((ds.zero_grad_steps.sel(loss=l) == int(ds.steps)).all())]
    assert frozen == ["zero_one"]
    assert "for the losses `zero_one`;" in readme


def test_report_estimators(tmp_path):
    ds = run_small("catalogue", "catalogue_estimators", **{
        "model.activation": ["step"], "train.steps": 40, "train.loss": ["zero_one", "quadratic"],
        "train.seed": {"num": 2}})
    folder = make("catalogue", "report_estimators", ds, tmp_path)
    rows = table(folder / "tables.md")
    assert len(rows) == 2
    for row in rows:
        loss, act = row["loss"].strip("`"), row["activation"].strip("`")
        for est in ("exact", "ste_sigmoid", "score_function"):
            r = ds.sel(loss=loss, activation=act, estimator=est)
            acc, zero = row[f"`{est}`: accuracy / zero-grad share"].split(" / ")
            close(acc, np.mean(r.accuracy_final.values), ".3f")
            close(zero, np.mean(r.zero_grad_steps.values / int(ds.steps)), ".2f")
    # The sign-flip check at the level of the published table: the score-function
    # estimator learns the 0-1 loss where exact gradients are zero.
    exact = ds.accuracy_final.sel(loss="zero_one", estimator="exact").mean()
    score = ds.accuracy_final.sel(loss="zero_one", estimator="score_function").mean()
    assert float(score) > float(exact) + 0.2


# --------------------------------------------------------------------------------------
# The MLP study
# --------------------------------------------------------------------------------------


def test_report_depth(tmp_path):
    ds = run_small("mlp", "mlp_depth", **{
        "model.hidden_activation": "relu", "model.depth": [2], "model.width": 8, "train.loss": "bce",
        "train.steps": 20, "train.record_every": 10, "train.seed": {"num": 2}})
    folder = make("mlp", "report_depth", ds, tmp_path)
    rows = table(folder / "mlp_depth_table.md")
    assert len(rows) == 1
    for row in rows:
        d = int(row["depth"])
        r = ds.sel(depth=d)
        acc = r.test_accuracy.transpose("learning_rate", "seed").values
        best = int(np.argmax(acc.mean(axis=1)))
        assert row["test acc (best lr)"] == g4(acc[best].mean())
        assert row["± std"] == g4(acc[best].std())
        assert row["best lr"] == g4(ds.learning_rate.values[best])
        stalled = (r.outcome == STALLED).transpose("learning_rate", "seed").values
        assert row["stall (best lr)"] == g4(stalled[best].mean())
        assert row["stall (all lr)"] == g4(stalled.mean())
        g0 = r.layer_grad_norm_init.mean(["learning_rate", "seed"]).values
        assert row["‖g_first‖/‖g_out‖ at init"] == g4(g0[0] / g0[d])
        sat = r.saturated_final.transpose("learning_rate", "seed").values
        assert row["saturated final"] == g4(sat[best].mean())
        dead = r.dead_final.transpose("learning_rate", "seed").values
        assert row["dead final"] == g4(dead[best].mean())


def test_report_glorot(tmp_path):
    ds = run_small("mlp", "mlp_glorot", **{
        "model.hidden_activation": ["sigmoid"], "model.depth": 2, "model.width": 8, "train.steps": 20,
        "train.record_every": 5, "train.seed": {"num": 2}})
    folder = make("mlp", "report_glorot", ds, tmp_path)
    rows = table(folder / "mlp_glorot_table.md")
    assert len(rows) == 2
    steps = ds.step.values
    for row in rows:
        r = ds.sel(init_scheme=row["init_scheme"], hidden_activation="sigmoid")
        top = r.traj_layer_act_mean.sel(layer=1).mean("seed").values  # the top hidden layer of 2
        sat = r.traj_layer_saturated.sel(layer=1).mean("seed").values
        i = int(np.argmin(top))  # sigmoid: the lowest point of the mean activation
        assert row["top layer mean, step 0"] == g4(top[0])
        assert row["top mean, extreme"] == g4(top[i])
        assert row["top mean, final"] == g4(top[-1])
        assert row["top saturated, max"] == g4(sat.max())
        assert row["top saturated, final"] == g4(sat[-1])
        assert row["test acc"] == g4(r.test_accuracy.values.mean())
        assert row["± std"] == g4(r.test_accuracy.values.std())
        at = [v for k, v in row.items() if k == "at step"]
        assert at and at[0] in {str(int(s)) for s in steps}


def test_report_dying_relu(tmp_path):
    ds = run_small("mlp", "mlp_dying_relu", **{
        "model.depth": [1, 4], "model.width": [2], "train.seed": {"num": 300},
        "init.bias": [0.0, 0.1], "init.bias_std": [0.0]})
    folder = make("mlp", "report_dying_relu", ds, tmp_path)
    wide, long = tables(folder / "mlp_dying_relu_table.md")
    n = ds.sizes["seed"]
    assert len(long) == 2 * 2
    for row in long:
        share = np.mean(ds.born_dead.sel(init_bias=float(row["init_bias"]), width=int(row["width"]),
                                         depth=int(row["depth"])).values)
        assert row["share born dead"] == g4(share)
        bound = 1 - (1 - 2.0 ** -int(row["width"])) ** int(row["depth"])
        assert row["single-input bound 1−(1−2^-N)^L"] == g4(bound)
        if 0 < share < 1:
            assert row["95% ± (binomial)"] == g4(1.96 * math.sqrt(share * (1 - share) / n))
        if float(row["init_bias"]) == 0:  # the bound holds for zero biases (3 binomial sigmas of slack)
            assert share <= bound + 3 * math.sqrt(bound * (1 - bound) / n) + 1e-12
    assert len(wide) == 2
    for row in wide:
        share = np.mean(ds.born_dead.sel(init_bias=0.0, width=int(row["width"]), depth=int(row["depth"])).values)
        assert row["zero biases"] == g4(share)
    remade_from_summary("mlp", "report_dying_relu", folder, tmp_path / "clone")


def test_report_phase(tmp_path):
    ds = run_small("mlp", "mlp_phase", **{
        "model.hidden_activation": ["relu"], "model.depth": [2], "train.steps": 30,
        "train.seed": {"num": 2}, "init.scale": {"start": 0.125, "stop": 8.0, "num": 3, "log": True}})
    folder = make("mlp", "report_phase", ds, tmp_path)
    rows = table(folder / "mlp_phase_table.md")
    assert len(rows) == 3
    for row in rows:
        c = dict(hidden_activation=row["hidden_activation"], depth=int(row["depth"]))
        scale = ds.init_scale.values[np.argmin(np.abs(ds.init_scale.values - float(row["init scale"])))]
        r = ds.sel(**c, init_scale=scale)
        assert row["stall share"] == g4(np.mean(r.outcome.values == STALLED))
        assert row["diverged share"] == g4(np.mean(r.outcome.values == DIVERGED))
        assert row["train acc"] == g4(r.accuracy_final.values.mean())
        assert row["test acc"] == g4(r.test_accuracy.values.mean())
        assert row["saturated init"] == g4(r.saturated_init.values.mean())
        assert row["dead init"] == g4(r.dead_init.values.mean())
        assert row["born dead"] == g4(r.born_dead.values.astype(float).mean())
        assert row["‖g‖ first layer at init"] == g4(r.layer_grad_norm_init.sel(layer=0).values.mean())


def test_figures_not_rendered_are_closed_unwritten(tmp_path):
    """The report check before training builds a report's figures without rendering them; after
    it, figures are written again (a PNG file)."""
    import matplotlib.pyplot as plt

    from lossjax.io import figures

    fig = plt.figure()
    with figures.not_rendered():
        figures.save_figure(fig, tmp_path / "checked.png")
    assert not (tmp_path / "checked.png").exists() and fig.number not in plt.get_fignums()
    figures.save_figure(plt.figure(), tmp_path / "written.png")
    assert (tmp_path / "written.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
