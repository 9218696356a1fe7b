"""The zero-update study's report: which stalls are zero gradients, which are rounded-away updates,
and which of them stochastic rounding or Kahan-compensated updates rescue.

Named by ``neuron_atlas_rounding.toml`` (``report = "report_rounding.py:report_rounding"``); a
module of its own because ``report.py`` is near the 520-line limit. It writes into the results
folder through ``report.py``'s writer (README.md with every caption and the command).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from lossjax import reports
from lossjax.io import results
from lossjax.core import metrics
from lossjax.io.figures import markdown_table, plt

report = reports.load_module(Path(__file__).with_name("report.py"))
values, select = report.values, report.select

#: Per-run categories of the figure, in colour order.
CATEGORIES = ("reached the target", "stalled: zero gradient", "stalled: zero update", "stalled: other", "diverged")
COLOURS = ("#2f9e44", "#1c7ed6", "#e8590c", "#adb5bd", "#c92a2a")


def _reached(outcome: xr.DataArray) -> xr.DataArray:
    return (outcome == metrics.CONVERGED) | (outcome == metrics.SLOW)


def _share(mask: xr.DataArray, of: xr.DataArray | None = None) -> float:
    """The share of runs in ``mask`` (among the runs in ``of``; NaN when ``of`` is empty)."""
    if of is None:
        return float(mask.mean())
    n = int(of.sum())
    return float((mask & of).sum()) / n if n else float("nan")


def rounding_rows(ds: xr.Dataset) -> list[dict]:
    """Per loss × optimiser × dtype, over the whole (w0, b0) grid and every learning rate: the
    stalled share under nearest rounding split by ``stall_cause``, the share of its zero-update
    stalls that float32 (nearest) stalls too, and per remedy its stalled share, the share of the
    nearest-stalled runs, of the zero-update-stalled runs and of those among them that float32
    does not stall which it rescues (reaches the target: outcome converged or slow), and its
    diverged share."""
    remedies = [r for r in values(ds, "update_rounding") if r != "nearest"]
    rows = []
    for loss in values(ds, "loss"):
        for opt in values(ds, "optimizer"):
            reference = select(ds.outcome, loss=loss, optimizer=opt, dtype="float32", update_rounding="nearest")
            float32_stalls = reference == metrics.STALLED
            for dtype in values(ds, "dtype"):
                cell = select(ds, loss=loss, optimizer=opt, dtype=dtype)
                near = select(cell, update_rounding="nearest")
                stalled = near.outcome == metrics.STALLED
                cause = near.stall_cause
                zero_update = cause == metrics.ZERO_UPDATE
                row = dict(combo=dict(loss=loss, optimizer=opt, dtype=dtype), stalled=_share(stalled),
                           zero_gradient=_share(cause == metrics.ZERO_GRADIENT), zero_update=_share(zero_update),
                           other=_share(cause == metrics.OTHER_CAUSE),
                           float32_too=_share(float32_stalls, zero_update), remedies={})
                for r in remedies:
                    outcome = select(cell, update_rounding=r).outcome
                    row["remedies"][r] = dict(stalled=_share(outcome == metrics.STALLED),
                                              rescued=_share(_reached(outcome), stalled),
                                              rescued_zero_update=_share(_reached(outcome), zero_update),
                                              rescued_float32_learns=_share(_reached(outcome), zero_update & _reached(reference)),
                                              diverged=_share(outcome == metrics.DIVERGED))
                rows.append(row)
    return rows


def categories(outcome: xr.DataArray, cause: xr.DataArray) -> xr.DataArray:
    """Each run's index into :data:`CATEGORIES`."""
    code = xr.full_like(outcome, 3, dtype=np.int8)
    code = code.where(~_reached(outcome), 0)
    code = code.where(cause != metrics.ZERO_GRADIENT, 1)
    code = code.where(cause != metrics.ZERO_UPDATE, 2)
    return code.where(outcome != metrics.DIVERGED, 4)


def report_rounding(ds: xr.Dataset, folder: Path) -> list[Path]:
    """The tables and figures, made from the summary (``summary.nc``: every run's ``outcome`` and
    ``stall_cause``, int8, all this report reads): written here from the results, or read as ``ds``
    when the folder holds only the summary (the results are too large to commit)."""
    out = report._Writer(ds, folder, f"Zero updates and update rounding: {ds.attrs['name']}", "report_rounding")
    if not results.is_summary(ds):
        summary = ds[["outcome", "stall_cause"]].astype(np.int8).compute()
        out.paths.append(results.save_summary(summary, ds, folder, "report_rounding"))
        ds = out.ds = results.load_summary(folder)  # every number below is read from the file
    out.summary = True
    out.rerun = out.rerun.replace("experiments/neuron/report.py:", "experiments/neuron/report_rounding.py:")
    th = report._thresholds(ds)
    steps, lrs = int(ds.steps), values(ds, "learning_rate")
    w0, b0 = ds.w0.values, ds.b0.values
    rows = rounding_rows(ds)
    f = report._num
    grid = (f"the {len(w0)} × {len(b0)} grid of initial (w0, b0) ∈ [{w0.min():g}, {w0.max():g}]² × η ∈ "
            f"{{{', '.join(f'{v:g}' for v in lrs)}}}")
    out.table(markdown_table(
        ["loss", "optimizer", "dtype", "stalled", "by zero gradient", "by zero update", "other",
         "zero-update stalls float32 stalls too"],
        [[*report._label(r["combo"]), *(f(r[k]) for k in ("stalled", "zero_gradient", "zero_update", "other",
                                                          "float32_too"))] for r in rows]),
        "stall_causes",
        f"Share of {grid} whose outcome is 'stalled' (target {report._target(th)} not reached in T = {steps} "
        "updates) with nearest rounding of θ + Δθ, split by stall_cause: the majority kind of zero step on the "
        "run's final plateau (zero gradient; zero update although the gradient is not zero; neither: other). Last "
        "column: the share of the zero-update stalls whose float32 run (same loss, optimiser, η and init) stalls "
        "too, i.e. that exact arithmetic would not rescue within T either. '—': no such run.")
    out.table(markdown_table(
        ["loss", "optimizer", "dtype", "update_rounding", "stalled", "nearest stalls rescued",
         "zero-update stalls rescued", "… of those float32 learns", "diverged"],
        [[*report._label(r["combo"]), m, *(f(v[k]) for k in ("stalled", "rescued", "rescued_zero_update",
                                                             "rescued_float32_learns", "diverged"))]
         for r in rows for m, v in r["remedies"].items()]),
        "rounding_rescue",
        f"The remedies ([train] update_rounding) on {grid}: per remedy its stalled share; the share of the runs "
        "stalled with nearest rounding that reach the target with it (rescued: outcome converged or slow); the "
        "same among the runs stalled by zero updates, and among those whose float32 run reaches the target; and "
        "its diverged share. In float32 'stochastic' is nearest by definition (the same results). '—': no such run.")

    ref_lr = min(lrs, key=lambda v: abs(np.log(v / 0.15)))
    losses, opts = values(ds, "loss"), values(ds, "optimizer")
    roundings = values(ds, "update_rounding")
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    cmap = ListedColormap(COLOURS)
    for dtype in [d for d in values(ds, "dtype") if d != "float32"]:
        fig, axes = plt.subplots(len(losses) * len(opts), len(roundings), figsize=(2.4 * len(roundings) + 1.6,
                                 2.1 * len(losses) * len(opts)), squeeze=False, sharex=True, sharey=True)
        for i, (loss, opt) in enumerate((lo, op) for lo in losses for op in opts):
            for j, rnd in enumerate(roundings):
                run = select(ds, loss=loss, optimizer=opt, dtype=dtype, update_rounding=rnd, learning_rate=ref_lr)
                code = categories(run.outcome, run.stall_cause).transpose("b0", "w0").values
                ax = axes[i, j]
                ax.pcolormesh(w0, b0, code, cmap=cmap, vmin=-0.5, vmax=len(CATEGORIES) - 0.5, shading="auto")
                ax.set_title(f"{loss}, {opt}, {rnd}", fontsize=7)
                if i == len(axes) - 1:
                    ax.set_xlabel("w0")
                if j == 0:
                    ax.set_ylabel("b0")
        handles = [Patch(color=c, label=n) for c, n in zip(COLOURS, CATEGORIES)]
        fig.legend(handles=handles, loc="lower center", ncol=3, fontsize=7, frameon=False)
        fig.subplots_adjust(bottom=0.1)
        out.figure(fig, f"rounding_{dtype}",
                   f"Each initial (w0, b0) by what the run does in {dtype} at η = {ref_lr:g}, per loss × optimiser (rows) "
                   f"and update rounding (columns): reached the target ({report._target(th)}) within T = {steps} "
                   "updates, stalled with a stall_cause of zero gradient, zero update or other, or diverged. Data: "
                   f"{ds.attrs['dataset_description']}.")
    return out.finish()
