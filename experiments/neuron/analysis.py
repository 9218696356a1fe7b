"""The single-neuron study's computations: pure functions of arrays and of saved results.

Nothing here reads or writes files or draws: :mod:`report` (beside this file) calls these
functions, draws figures and formats the numbers they return into tables and captions. The
texts the study reproduces are described in ``docs/texts.md``.

- :func:`saturation_z` and :func:`saturated_closed_form`: where a sigmoid neuron is saturated in
  the sense of :mod:`lossjax.core.metrics` (σ'(z) < δ·max σ' = δ/4 for every input), in closed form.
- :func:`plateau_lengths`: the ``longest_plateau`` definition of :mod:`lossjax.core.metrics`
  applied to a recorded loss trajectory, for any τ (to compare the definition with the texts' wording);
  :func:`reached_trajectory`: the engine's ``reached`` rule applied to recorded trajectories.
- :func:`perturbation_sensitivity`: the argument of the text on why accuracy cannot be the
  training objective, measured: for random parameter perturbations of size ε, how often (and by
  how much) the loss and the accuracy change.
- :func:`juncture_distance`: distance of an output of the piecewise-constant neuron to its junctures.
- The ``*_summary`` / ``*_rows`` functions reduce a results dataset to the numbers a report shows.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import sys
from collections.abc import Sequence
from types import SimpleNamespace

import numpy as np
import xarray as xr

from lossjax.core import metrics

#: The setting of the text on the saturated sigmoid neuron (x = 1, target 0, quadratic cost).
TEXT_LEARNING_RATE = 0.15
#: Reference numbers for that text's two quadratic-cost runs (docs/texts.md says where each comes
#: from): the outputs at step 0 (σ(1.5), σ(4), as its figures show), the final outputs ("about 0.2"
#: for (2, 2); for (0.6, 0.9) the text says "about 0.1" and the English original of the example
#: 0.09) and the plateau of "about 150 steps".
TEXT_NUMBERS = {
    "w=0.6,b=0.9": {"initial": 0.82, "final": 0.09},
    "w=2,b=2": {"initial": 0.98, "final": 0.2, "plateau": 150},
}
#: The junctures of the piecewise-constant neuron (the flat middles of its steps).
JUNCTURES = (0.25, 0.5, 0.75)


# --------------------------------------------------------------------------------------
# Selecting from results
# --------------------------------------------------------------------------------------


def values(ds: xr.Dataset, name: str) -> list:
    """The values of coordinate ``name``: a list for a dimension, a one-element list for a scalar."""
    if name in ds.dims:
        return list(ds[name].values)
    return [ds[name].values.item()]


def select(ds, **kw):
    """``ds.sel`` on the given coordinates that are dimensions (scalar coordinates are skipped)."""
    return ds.sel({k: v for k, v in kw.items() if k in ds.dims})


def groups(ds: xr.Dataset, names: Sequence[str]):
    """Every combination of the values of the coordinates ``names`` present in ``ds``, as dicts."""
    present = [n for n in names if n in ds.coords]
    for combo in itertools.product(*(values(ds, n) for n in present)):
        yield dict(zip(present, combo))


def text_reference(loss: str, init: str, learning_rate: float) -> dict:
    """The reference numbers (:data:`TEXT_NUMBERS`) for a run of the text's own setting (its
    quadratic cost at its η = 0.15), else ``{}``: the comparison only applies to those runs."""
    if loss != "quadratic" or not math.isclose(learning_rate, TEXT_LEARNING_RATE, rel_tol=1e-9):
        return {}
    return TEXT_NUMBERS.get(init, {})


# --------------------------------------------------------------------------------------
# Closed forms and definitions
# --------------------------------------------------------------------------------------


def saturation_z(delta: float = 0.01) -> float:
    """The |z| beyond which the sigmoid is saturated: σ'(z*) = δ·max σ' = δ/4.

    σ'(z) = 1 / (4 cosh²(z/2)), so σ'(z) < δ/4 ⇔ cosh(z/2) > 1/√δ ⇔ |z| > 2 arccosh(1/√δ).
    For δ = 0.01, z* = 2 arccosh(10) ≈ 5.9865.

    Args:
      delta: the engine's ``saturation_delta``, in (0, 1].
    Returns:
      z* ≥ 0.
    """
    if not 0 < delta <= 1:
        raise ValueError(f"delta must be in (0, 1], got {delta!r}")
    return 2.0 * math.acosh(1.0 / math.sqrt(delta))


def saturated_closed_form(w, b, x, *, delta: float = 0.01) -> np.ndarray:
    """Whether a sigmoid neuron with parameters (w, b) is saturated on inputs ``x``.

    A unit is saturated when σ'(w·x_n + b) < δ/4 for every input x_n, i.e. when
    ``min_n |w·x_n + b| > z*`` (:func:`saturation_z`). For the texts' single input x = 1 only
    z = w + b matters: the saturated region of the (w, b) plane is |w + b| > z*, two half-planes
    bounded by the lines w + b = ±z*.

    Args:
      w, b: arrays of the same (broadcast) shape: scalar weight and bias of a 1-input neuron.
      x: the inputs, shape (n,) (a scalar for one input).
      delta: ``saturation_delta``.
    Returns:
      A boolean array of the broadcast shape of ``w`` and ``b``.
    """
    w, b = np.broadcast_arrays(np.asarray(w, np.float64), np.asarray(b, np.float64))
    x = np.atleast_1d(np.asarray(x, np.float64)).reshape(-1)
    z = w[..., None] * x + b[..., None]
    return np.min(np.abs(z), axis=-1) > saturation_z(delta)


def plateau_lengths(loss, reached, tau: float) -> np.ndarray:
    """``longest_plateau`` of :mod:`lossjax.core.metrics` computed from recorded trajectories.

    Counts the longest run of consecutive steps t in 1..T with relative improvement
    ``(L_{t-1} − L_t)/|L_{t-1}| < tau`` while the target is not reached (neither at t nor
    before). Needs trajectories recorded every step.

    Args:
      loss: array (..., T+1) of L_0..L_T.
      reached: bool array (..., T+1): whether the target is reached at step t.
      tau: the plateau threshold.
    Returns:
      int array (...).
    """
    loss = np.asarray(loss, np.float64)
    reached = np.asarray(reached, bool)
    prev = loss[..., :-1]
    improvement = (prev - loss[..., 1:]) / np.maximum(np.abs(prev), np.finfo(np.float32).tiny)
    ever = np.logical_or.accumulate(reached, axis=-1)
    flat = ~ever[..., :-1] & ~reached[..., 1:] & ~(improvement >= tau)
    longest = np.zeros(flat.shape[:-1], np.int64)
    current = np.zeros_like(longest)
    for t in range(flat.shape[-1]):
        current = np.where(flat[..., t], current + 1, 0)
        longest = np.maximum(longest, current)
    return longest


def thresholds(values_: dict) -> metrics.Thresholds:
    """The engine's :class:`~lossjax.core.metrics.Thresholds` from a results' ``thresholds`` attribute."""
    fields = {f.name for f in dataclasses.fields(metrics.Thresholds)}
    return metrics.Thresholds(**{k: v for k, v in values_.items() if k in fields})


def reached_trajectory(run: xr.Dataset, thresholds_: dict) -> np.ndarray:
    """Whether the target is reached at each recorded step: :func:`lossjax.core.metrics.reached` itself.

    The engine applies ``metrics.reached`` to one observation inside the training scan; here the
    same function is applied to the recorded trajectories (``traj_loss``, ``traj_error``,
    ``traj_accuracy``, numpy arrays over steps), which it accepts since it only compares the
    observation's fields with the target.
    """
    obs = SimpleNamespace(**{q: run[f"traj_{q}"].values for q in ("loss", "error", "accuracy") if f"traj_{q}" in run})
    return np.asarray(metrics.reached(obs, thresholds(thresholds_)))


def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def perturbation_sensitivity(
    w: np.ndarray,
    b: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    eps: Sequence[float],
    *,
    directions: int = 256,
    seed: int = 0,
    dtype=np.float64,
) -> dict[str, np.ndarray]:
    """How a small parameter change moves loss and accuracy (the text on accuracy as an objective).

    For each base point (w_i, b_i) of a 1-input sigmoid neuron and each size ε, draws
    ``directions`` unit vectors u uniformly on the circle and compares the model at
    (w_i, b_i) + ε·u with the model at (w_i, b_i) on the data (x, y): the quadratic loss
    ``mean ½(σ(wx+b) − y)²`` and the accuracy ``mean[(σ(wx+b) > 0.5) == (y > 0.5)]``, both
    evaluated in ``dtype`` (float64 by default; float32 shows where rounding hides small
    loss changes).

    Args:
      w, b: base points, shape (m,).
      x, y: inputs and binary targets, shape (n,).
      eps: perturbation sizes, shape (k,).
      directions: directions per base point and size.
      seed: seed of the directions.
      dtype: evaluation dtype.
    Returns:
      A dict of arrays of shape (k,): ``loss_changed`` and ``accuracy_changed`` (share of
      perturbations that change the value at all), ``loss_delta`` and ``accuracy_delta``
      (median |change| over the perturbations that change it; NaN if none does) and
      ``accuracy_min_jump`` (smallest non-zero |change| of the accuracy: a multiple of 1/n).
    """
    w = np.asarray(w, np.float64).reshape(-1)
    b = np.asarray(b, np.float64).reshape(-1)
    x = np.asarray(x, np.float64).reshape(-1)
    y = np.asarray(y, np.float64).reshape(-1)
    eps = np.asarray(eps, np.float64).reshape(-1)
    if w.shape != b.shape:
        raise ValueError(f"w and b must have the same shape, got {w.shape} and {b.shape}")
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same shape, got {x.shape} and {y.shape}")
    angle = np.random.default_rng(seed).uniform(0.0, 2.0 * np.pi, (len(eps), len(w), directions))
    dw = eps[:, None, None] * np.cos(angle)
    db = eps[:, None, None] * np.sin(angle)

    def evaluate(wv, bv):
        wv, bv, xv, yv = (np.asarray(v, dtype) for v in (wv, bv, x, y))
        z = wv[..., None] * xv + bv[..., None]
        a = _sigmoid(z).astype(dtype)
        loss = np.mean(np.asarray(0.5, dtype) * (a - yv) ** 2, axis=-1, dtype=dtype)
        acc = np.mean((a > 0.5) == (yv > 0.5), axis=-1)
        return loss, acc

    loss0, acc0 = evaluate(w, b)
    loss1, acc1 = evaluate(w[:, None] + dw, b[:, None] + db)
    loss0, acc0 = loss0[:, None], acc0[:, None]
    dloss = np.abs(loss1.astype(np.float64) - loss0.astype(np.float64)).reshape(len(eps), -1)
    dacc = np.abs(acc1 - acc0).reshape(len(eps), -1)

    def median_nonzero(d):
        return np.array([np.median(r[r > 0]) if np.any(r > 0) else np.nan for r in d])

    return {
        "eps": eps,
        "loss_changed": np.mean(dloss > 0, axis=1),
        "accuracy_changed": np.mean(dacc > 0, axis=1),
        "loss_delta": median_nonzero(dloss),
        "accuracy_delta": median_nonzero(dacc),
        "accuracy_min_jump": np.array([np.min(r[r > 0]) if np.any(r > 0) else np.nan for r in dacc]),
    }


def juncture_distance(output) -> np.ndarray:
    """Distance of an output of the piecewise-constant neuron to the nearest juncture
    (0.25, 0.5, 0.75: the flat middles of its steps, where its gradient is ~0)."""
    output = np.asarray(output, np.float64)
    return np.min(np.abs(output[..., None] - np.asarray(JUNCTURES)), axis=-1)


def loglog_slope(x, y) -> float:
    """Least-squares slope of log y against log x over the points where y > 0 (NaN if < 2 points)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    keep = np.isfinite(y) & (y > 0) & (x > 0)
    if keep.sum() < 2:
        return float("nan")
    return float(np.polyfit(np.log(x[keep]), np.log(y[keep]), 1)[0])


# --------------------------------------------------------------------------------------
# Per-report reductions of saved results
# --------------------------------------------------------------------------------------


def trajectory_summary(run: xr.Dataset) -> dict:
    """One recorded run of the texts' neuron: outputs, z and |∂C/∂w| at the start and where |∂C/∂w| peaks."""
    steps = run.step.values
    grad = np.abs(run.traj_grad_w.values)
    peak = int(np.nanargmax(grad))
    z0 = float(run.traj_logit.values[0])
    return {
        "a0": float(run.traj_output.values[0]), "a_end": float(run.traj_output.values[-1]), "step_end": int(steps[-1]),
        "z0": z0, "slope0": float(_sigmoid(z0) * (1.0 - _sigmoid(z0))), "g0": float(grad[0]),
        "g_peak": float(grad[peak]), "step_peak": int(steps[peak]), "z_peak": float(run.traj_logit.values[peak]),
        "steps_to_target": int(run.steps_to_target), "plateau": int(run.longest_plateau),
        "outcome": metrics.OUTCOMES[int(run.outcome)],
    }


def nielsen_runs(ds: xr.Dataset, marks: Sequence[int], thresholds_: dict, taus: Sequence[float]) -> list[dict]:
    """Every run of a texts'-neuron sweep (learning rate × loss × init, in that order): its
    :func:`trajectory_summary`, its outputs at the steps ``marks``, its ``longest_plateau``
    recomputed for each τ of ``taus`` (:func:`plateau_lengths`) and the text's numbers for it."""
    out = []
    for lr in values(ds, "learning_rate"):
        for loss in values(ds, "loss"):
            for init in values(ds, "init"):
                r = select(ds, learning_rate=lr).sel(loss=loss, init=init)
                reached = reached_trajectory(r, thresholds_)
                out.append(dict(
                    trajectory_summary(r), learning_rate=lr, loss=loss, init=init, text=text_reference(loss, init, lr),
                    marks=[(t, float(r.traj_output.sel(step=t))) for t in marks],
                    plateaus=[int(plateau_lengths(r.traj_loss.values, reached, tau)) for tau in taus],
                    zero_grad_steps=int(r.zero_grad_steps), tiny_grad_steps=int(r.tiny_grad_steps)))
    return out


def perturbation_experiment(x, y) -> dict:
    """The measurement behind the non-differentiable report's perturbation figure.

    64 random (w, b) (w ~ N(0, 2²), b ~ N(0, 1), seed 1), 256 directions per size, 25 sizes ε
    from 1e-6 to 1, evaluated in float64 and float32; plus summary numbers of the result.
    """
    rng = np.random.default_rng(1)
    w0 = rng.normal(0.0, 2.0, 64)
    b0 = rng.normal(0.0, 1.0, 64)
    eps = np.geomspace(1e-6, 1.0, 25)
    res64 = perturbation_sensitivity(w0, b0, x, y, eps, directions=256, seed=0, dtype=np.float64)
    res32 = perturbation_sensitivity(w0, b0, x, y, eps, directions=256, seed=0, dtype=np.float32)
    moved = res64["accuracy_changed"] > 0
    first_move = int(np.argmax(moved)) if moved.any() else len(eps)  # sizes below it never change the accuracy
    return {
        "eps": eps, "f64": res64, "f32": res32, "n_points": len(w0), "directions": 256, "n": len(np.ravel(x)),
        "loss_changed_min": float(res64["loss_changed"].min()),
        "loss_slope": loglog_slope(eps, res64["loss_delta"]),
        "accuracy_still_up_to": float(eps[first_move - 1]) if first_move > 0 else float("nan"),
        "accuracy_slope": loglog_slope(eps[moved], res64["accuracy_changed"][moved]),
        "accuracy_changed_at_1": float(res64["accuracy_changed"][-1]),
        "accuracy_min_jump": float(np.nanmin(res64["accuracy_min_jump"])) if moved.any() else float("nan"),
        "f32_unchanged_at_smallest": float(1.0 - res32["loss_changed"][0]),
    }


def zero_gradient_summary(ds: xr.Dataset, keys: Sequence[str]) -> list[dict]:
    """Per combination of ``keys``: how often the gradient is exactly zero and how often the target is reached."""
    steps = int(ds.steps)
    out = []
    for combo in groups(ds, keys):
        r = select(ds, **combo)
        reached = r.steps_to_target != metrics.NEVER
        out.append({
            "combo": combo,
            "zero_frac": float((r.zero_grad_steps / steps).mean()),
            "zero_all": float((r.zero_grad_steps == steps).mean()),
            "reached": float(reached.mean()),
            "reached_at_step_0": float((r.steps_to_target == 0).sum() / max(int(reached.sum()), 1)),
            "stalled": float((r.outcome == metrics.STALLED).mean()),
            "accuracy": float(r.accuracy_final.mean()),
            "zero_min": int(r.zero_grad_steps.min()), "zero_max": int(r.zero_grad_steps.max()),
            "loss_unchanged": float((r.loss_final == r.loss_initial).mean()),
        })
    return out


def gradient_at_start_rows(ds: xr.Dataset) -> list[dict]:
    """Cross-entropy variants over the initial z (x = 1): where |∂C/∂w| is exactly 0 at step 0."""
    steps = int(ds.steps)
    b0 = float(ds.b0) if "b0" in ds.coords else 0.0
    z = ds.w0.values + b0
    targets = values(ds, "target")
    rows = []
    for loss in values(ds, "loss"):
        for dtype in values(ds, "dtype"):
            for target in targets:
                r = select(ds, loss=loss, dtype=dtype, target=target)
                g = r.layer_grad_norm_init.values.reshape(-1)
                zero = g == 0
                wrong = (z > 0) if target < 0.5 else (z < 0)
                zero_wrong = zero & wrong
                rows.append({
                    "loss": loss, "dtype": dtype, "target": target, "z": z, "grad": g,
                    "zero": float(zero.mean()), "zero_wrong": float(zero_wrong.sum() / max(wrong.sum(), 1)),
                    "first_wrong": float(np.min(np.abs(z[zero_wrong]))) if zero_wrong.any() else float("nan"),
                    "frozen": float((r.zero_grad_steps.values == steps).mean()),
                    "stalled": float((r.outcome == metrics.STALLED).mean()),
                    "diverged": float((r.outcome == metrics.DIVERGED).mean()),
                })
    return rows


def sharp_of(spec: str) -> float:
    """The ``sharp`` of a piecewise-constant activation spec (``piecewise_constant:sharp=20``; default 100)."""
    return float(spec.split("sharp=")[1]) if "sharp=" in spec else 100.0


#: Bins of the initial output's distance to the nearest juncture (the piecewise-constant report).
DISTANCE_BINS = np.array([0, 0.005, 0.01, 0.02, 0.04, 0.08, 0.125])


def piecewise_constant_summary(ds: xr.Dataset) -> list[dict]:
    """Per sharp (ascending): stall rates overall, by learning rate × target, by initial z and by
    the initial output's distance to the nearest juncture; and inside / outside (0, 1)."""
    stalled = ds.outcome == metrics.STALLED
    dist = xr.apply_ufunc(juncture_distance, ds.output_initial)
    extra = [d for d in ("learning_rate", "target") if d in ds.dims]
    z = ds.w0 + (float(ds.b0) if "b0" in ds.coords else 0.0)
    outside = (z <= 0) | (z >= 1)
    out = []
    for act in sorted(values(ds, "activation"), key=sharp_of):
        s = stalled.sel(activation=act)
        d = dist.sel(activation=act)
        by_bin = []
        for lo, hi in zip(DISTANCE_BINS[:-1], DISTANCE_BINS[1:]):
            m = (d >= lo) & (d < hi) & ~outside
            by_bin.append(float(s.where(m).mean()) if bool(m.any()) else np.nan)
        inside = s.where(~outside)
        out.append({
            "activation": act, "sharp": sharp_of(act), "stalled": float(s.mean()),
            "by_group": [(c, float(s.sel(c).mean())) for c in groups(ds, extra)] if extra else [],
            "frozen": float((ds.zero_grad_steps.sel(activation=act) == int(ds.steps)).mean()),
            "by_z": s.mean([x for x in s.dims if x != "w0"]).values, "by_distance": by_bin,
            "stalled_outside": float(s.where(outside).mean()), "stalled_inside": float(inside.mean()),
            "stalled_near": float(inside.where(d < DISTANCE_BINS[1]).mean()),
            "stalled_far": float(inside.where((d >= 0.05) & (d < DISTANCE_BINS[-1])).mean()),
            "stalled_ends": float(inside.where(d >= DISTANCE_BINS[-1]).mean()),
        })
    return out


#: The closed-form regions of the initial (w0, b0) grid that an atlas summary counts runs in
#: (:func:`saturation_regions`); "saturated" is every region but "unsaturated".
REGIONS = ("high", "low", "mixed", "unsaturated")
#: What an atlas summary counts per cell: runs, and runs that stalled, never moved (zero
#: gradient at every step), had at least one zero-gradient step, diverged.
ATLAS_COUNTS = ("runs", "stalled", "frozen", "any_zero", "diverged")


def atlas_summary(ds: xr.Dataset, region: xr.DataArray, map_lr: float) -> xr.Dataset:
    """The stall atlas reduced to the numbers its report shows (small enough to commit).

    Per combination of the swept keys and learning rate, and per :data:`REGIONS` of the initial
    (w0, b0) (``region``, from :func:`saturation_regions`): the counts :data:`ATLAS_COUNTS` and
    ``tiny_share``, the sum over runs of the share of steps with a tiny gradient. Where both the
    quadratic cost and bce were run: ``quadratic_only`` / ``bce_only``, the number of grid points
    where one stalls and the other does not. For a sigmoid output: ``steps_to_target`` at η =
    ``map_lr`` over the grid (-1: never; the figures) and ``saturated_init`` of the first run of
    each grid point (the saturation check). With the round-off probe: ``roundoff_decided`` of every
    run. Scalar coordinates, ``w0`` and ``b0`` are kept.
    """
    steps = int(ds.steps)
    grid = ("w0", "b0")
    masks = xr.concat([region == k for k in REGIONS], dim="region").assign_coords(region=list(REGIONS))
    per_run = {"runs": xr.ones_like(ds.outcome, dtype=bool), "stalled": ds.outcome == metrics.STALLED,
               "frozen": ds.zero_grad_steps == steps, "any_zero": ds.zero_grad_steps > 0,
               "diverged": ds.outcome == metrics.DIVERGED}
    out = {k: (v & masks).sum(grid).astype(np.int64) for k, v in per_run.items()}
    out["tiny_share"] = (ds.tiny_grad_steps / steps).where(masks, 0.0).sum(grid)
    if "loss" in ds.dims and {"quadratic", "bce"} <= set(values(ds, "loss")):
        q, c = (per_run["stalled"].sel(loss=k, drop=True) for k in ("quadratic", "bce"))
        out["quadratic_only"] = (q & ~c).sum(grid).astype(np.int64)
        out["bce_only"] = (c & ~q).sum(grid).astype(np.int64)
    if "sigmoid" in values(ds, "activation"):
        sigmoid = select(ds, activation="sigmoid")
        out["steps_to_target"] = select(sigmoid.steps_to_target, learning_rate=map_lr).astype(np.int16)
        sat = sigmoid.saturated_init
        out["saturated_init"] = sat.isel({d: 0 for d in sat.dims if d not in grid}).astype(np.int8)
    if probed(ds):  # the round-off table and the figures' marks need the flag of every run
        out["roundoff_decided"] = ds.roundoff_decided.astype(np.int8)
    scalars = {k: v for k, v in ds.coords.items() if v.ndim == 0}
    return xr.Dataset(out).assign_coords(w0=ds.w0, b0=ds.b0, **scalars).compute()


def atlas_rows(summary: xr.Dataset, keys: Sequence[str]) -> list[dict]:
    """Stall atlas, from :func:`atlas_summary`: per combination of ``keys``, stall rates per
    learning rate, inside and outside the closed-form saturated region, exact/tiny gradient
    shares and the diverged share."""
    saturated = [k for k in REGIONS if k != "unsaturated"]
    out = []
    for combo in groups(summary, keys):
        c = select(summary, **combo)
        runs = c.runs.sum()
        share = lambda count, of=runs: float(count.sum() / of) if int(of) else float("nan")  # noqa: E731
        out.append({
            "combo": combo,
            "per_lr": [share(select(c.stalled, learning_rate=lr), select(c.runs, learning_rate=lr).sum())
                       for lr in values(summary, "learning_rate")],
            "stalled": share(c.stalled),
            "saturated": share(c.stalled.sel(region=saturated), c.runs.sel(region=saturated).sum()),
            "unsaturated": share(c.stalled.sel(region="unsaturated"), c.runs.sel(region="unsaturated").sum()),
            "frozen": share(c.frozen), "any_zero": share(c.any_zero), "tiny": share(c.tiny_share),
            "diverged": share(c.diverged),
        })
    return out


def probed(ds: xr.Dataset) -> bool:
    """Whether the sweep ran the round-off probe (``roundoff_decided`` is -1, not probed, otherwise)."""
    return "roundoff_decided" in ds and bool((ds.roundoff_decided != metrics.NOT_PROBED).all())


def roundoff_rows(ds: xr.Dataset, keys: Sequence[str]) -> list[dict]:
    """Per combination of ``keys``: runs, and the share decided by round-off, per learning rate
    and over all of them (``roundoff_decided`` = 1)."""
    decided = ds.roundoff_decided == 1
    return [{"combo": combo, "runs": int(select(decided, **combo).size),
             "per_lr": [float(select(select(decided, **combo), learning_rate=lr).mean())
                        for lr in values(ds, "learning_rate")],
             "share": float(select(decided, **combo).mean())} for combo in groups(ds, keys)]


def saturation_regions(w0, b0, x, *, delta: float) -> xr.DataArray:
    """Labels each initial (w0, b0) of a sigmoid neuron on inputs ``x`` by the closed form: ``"high"``
    (w0·x_n + b0 > z* for every n: output ≈ 1 on every input), ``"low"`` (< −z* for every n: output
    ≈ 0), ``"mixed"`` (saturated, on both sides) or ``"unsaturated"``."""
    w0, b0 = np.asarray(w0, np.float64), np.asarray(b0, np.float64)
    z = w0[:, None, None] * np.atleast_1d(np.asarray(x, np.float64)) + b0[None, :, None]
    zs = saturation_z(delta)
    label = np.where(np.min(np.abs(z), axis=-1) > zs, "mixed", "unsaturated").astype(object)
    label[np.min(z, axis=-1) > zs] = "high"
    label[np.max(z, axis=-1) < -zs] = "low"
    return xr.DataArray(label.astype(str), dims=("w0", "b0"), coords={"w0": w0, "b0": b0})


def training_data(ds: xr.Dataset):
    """The training inputs and targets (first column) of the sweep that made ``ds``, rebuilt from
    the sweep saved in its attributes (the dataset generators are deterministic)."""
    from lossjax import config

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib

    raw = tomllib.loads(ds.attrs["sweep"])
    raw.pop("report", None)  # not needed to rebuild the data (and older results name it differently)
    data = config.parse_sweep(raw, source=ds.attrs["sweep"]).make_dataset()
    return np.asarray(data.x_train)[:, 0], np.asarray(data.y_train)[:, 0]


def quadratic_vs_bce_rows(summary: xr.Dataset) -> list[dict]:
    """Sigmoid neuron, from :func:`atlas_summary`, per optimiser/dtype and learning rate: where the
    quadratic cost stalls and bce does not."""
    rest = [k for k in ("activation", "optimizer", "dtype") if k in summary.dims]
    out = []
    for combo in groups(summary, rest):
        if combo.get("activation", "sigmoid") != "sigmoid":
            continue
        for lr in values(summary, "learning_rate"):
            c = select(summary, learning_rate=lr, **combo)
            share = lambda count: float(count.sum() / c.runs.sel(loss="quadratic").sum())  # noqa: E731
            out.append({"combo": combo, "learning_rate": lr, "quadratic": share(c.stalled.sel(loss="quadratic")),
                        "bce": share(c.stalled.sel(loss="bce")), "quadratic_only": share(c.quadratic_only),
                        "bce_only": share(c.bce_only)})
    return out


def stalled_by_region(summary: xr.Dataset, labels: Sequence[str]) -> list[float]:
    """The stalled share within each of the :data:`REGIONS` ``labels`` of one cell of an atlas
    summary (NaN for an empty region)."""
    runs, stalled = summary.runs.sum([d for d in summary.runs.dims if d != "region"]), summary.stalled
    stalled = stalled.sum([d for d in stalled.dims if d != "region"])
    return [float(stalled.sel(region=k) / runs.sel(region=k)) if int(runs.sel(region=k)) else float("nan")
            for k in labels]


def saturation_agreement(saturated: xr.DataArray, closed: xr.DataArray, w0, b0, x, zstar: float) -> dict:
    """The engine's ``saturated_init`` (a boolean over the grid) against the closed form."""
    margin = np.min(np.abs(np.asarray(w0)[:, None, None] * np.asarray(x) + np.asarray(b0)[None, :, None]), axis=-1)
    mism = (saturated != closed).values
    return {"points": int(saturated.size), "agree": float((saturated == closed).mean()), "mismatches": int(mism.sum()),
            "worst": float(np.max(np.abs(margin[mism] - zstar))) if mism.any() else 0.0}
