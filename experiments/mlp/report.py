"""Reports of the MLP study, named by the sweep files beside this module (``report = "report.py:<function>"``).

Four experiments, each a sweep file in ``experiments/mlp/``:

- ``mlp_depth``: depth × hidden activation × loss on MNIST-1D: per-layer gradient-norm profile
  at init and over training, stall rate and test accuracy per cell;
- ``mlp_glorot``: Glorot & Bengio (2010), Figure 2: per-layer activation mean/std over training
  of a 4-hidden-layer sigmoid net with the "standard" init, against the normalised init and tanh;
- ``mlp_dying_relu``: Lu, Shin, Su & Karniadakis (2020): share of ReLU networks born dead by
  width and depth, zero / random / shifted biases;
- ``mlp_phase``: init scale × depth stall-rate map for sigmoid, tanh and ReLU.

The pure helpers (no I/O) come first; the report functions (figures, tables) after them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import xarray as xr

from lossjax.core import metrics
from lossjax.io import figures as plots
from lossjax.io import results


# --------------------------------------------------------------------------------------
# Pure helpers
# --------------------------------------------------------------------------------------


def single_input_dead_probability(width: int | np.ndarray, depth: int | np.ndarray) -> np.ndarray:
    """P(a zero-bias ReLU net of ``depth`` hidden layers of ``width`` units outputs 0 at one input x ≠ 0).

    With zero biases and weights drawn from a continuous distribution symmetric about 0, a
    hidden layer fed a non-zero vector h gives pre-activations w_j·h that are independent
    across units and positive or negative with probability ½ each, so the whole layer is zero
    with probability 2^-width, and the net is zero at x once any of its ``depth`` layers is:
    ``1 − (1 − 2^-width)^depth``. A net is born dead only if its output is constant over the
    whole input set; with zero biases it is positively homogeneous, so constant means 0
    everywhere, hence zero at any one input: this probability is an *upper bound* on the
    born-dead probability over many inputs (tight for one input; derived here, not quoted
    from Lu et al.).
    """
    width = np.asarray(width, dtype=float)
    depth = np.asarray(depth, dtype=float)
    return 1.0 - (1.0 - 2.0 ** (-width)) ** depth


def bias_label(cell: dict) -> str:
    """A readable name for a bias initialisation cell (``init_bias``, ``init_bias_std``)."""
    mean = float(cell.get("init_bias", 0.0))
    std = float(cell.get("init_bias_std", 0.0))
    if mean == 0 and std == 0:
        return "zero biases"
    parts = []
    if mean != 0:
        parts.append(f"shifted {mean:+g}")
    if std != 0:
        parts.append(f"random N(0, {std ** 2:g})")
    return " + ".join(parts)


def _dims(ds: xr.Dataset, names) -> list[str]:
    return [n for n in names if n in ds.dims]


def best_learning_rate(score: xr.DataArray) -> xr.DataArray:
    """Index along ``learning_rate`` of the highest seed-mean ``score`` (e.g. test accuracy) per cell."""
    mean = score.mean("seed") if "seed" in score.dims else score
    if "learning_rate" not in mean.dims:
        return None
    return mean.fillna(-np.inf).argmax("learning_rate")


def at_best_lr(var: xr.DataArray, best) -> xr.DataArray:
    return var if best is None else var.isel(learning_rate=best)


def hidden_layers(var: xr.DataArray, depth: int) -> xr.DataArray:
    """The hidden layers 0..depth-1 of a ``layer`` variable (the output layer is ``depth``)."""
    return var.isel(layer=slice(0, depth))


def _cells(ds: xr.Dataset, names):
    """Every combination of the listed dimensions present in ``ds``, as dicts of labels."""
    import itertools

    dims = _dims(ds, names)
    values = [ds[d].values.tolist() for d in dims]
    return dims, [dict(zip(dims, combo)) for combo in itertools.product(*values)]


def _label(cell: dict, *, short: bool = False) -> str:
    if short:
        return ", ".join(str(v) for v in cell.values()) or "all"
    return ", ".join(f"{k}={v}" for k, v in cell.items()) or "all"


def probed(ds: xr.Dataset) -> bool:
    """Whether the sweep ran the round-off probe (``roundoff_decided`` is -1, not probed, otherwise)."""
    return "roundoff_decided" in ds and bool((ds.roundoff_decided != metrics.NOT_PROBED).all())


def roundoff_rows(ds: xr.Dataset, names) -> list[list]:
    """Per cell of the listed dimensions, then over all runs: runs, the share decided by round-off
    (``roundoff_decided`` = 1) and the stalled share of those runs."""
    decided, stalled = ds.roundoff_decided == 1, ds.outcome == metrics.STALLED
    dims, cells = _cells(ds, names)
    rows = [[*[str(c[d]) for d in dims], int(decided.sel(**c).size), f"{float(decided.sel(**c).mean()):.3f}",
             f"{float(stalled.sel(**c).mean()):.3f}"] for c in cells]
    return rows + [[*(["all"] * len(dims)), int(decided.size), f"{float(decided.mean()):.3f}",
                    f"{float(stalled.mean()):.3f}"]]


def _roundoff_table(ds: xr.Dataset, folder: Path, names) -> Path:
    """``roundoff.md``: the share of runs decided by round-off per cell (a sweep with the probe)."""
    dims = _dims(ds, names)
    eps = ", ".join(f"{d} {metrics.ROUNDOFF_EPSILON[d]:.3g}" for d in np.atleast_1d(ds.dtype.values).tolist())
    th = json.loads(ds.attrs["thresholds"])
    text = (f"# {ds.attrs['name']}: runs decided by round-off\n\nThe share of runs whose outcome or final loss "
            f"(relative change > {th['roundoff_tolerance']:g}) changes when θ_0 is perturbed by a relative ε ({eps}) "
            "with a random sign per parameter (`roundoff_decided`, defined in lossjax/core/metrics.py), and the "
            f"stalled share of the same runs. Made by `lossjax run experiments/mlp/{ds.attrs['name']}.toml`.\n\n"
            + plots.markdown_table([*dims, "runs", "round-off decided", "stalled"], roundoff_rows(ds, names)))
    return plots.save_text(text, Path(folder) / "roundoff.md")


# --------------------------------------------------------------------------------------
# Reports
# --------------------------------------------------------------------------------------


def report_depth(ds: xr.Dataset, folder: Path) -> list[Path]:
    import matplotlib.pyplot as plt

    folder = Path(folder)
    made = []
    acc = ds.test_accuracy
    best = best_learning_rate(acc)
    group_dims, groups = _cells(ds, ["hidden_activation", "loss"])
    depths = ds.depth.values.tolist() if "depth" in ds.dims else [int(ds.depth)]

    # Figure 1: per-layer gradient norm at θ_0 (seed mean), one line per depth.
    fig, axes = plt.subplots(1, len(groups), figsize=(3.6 * len(groups), 3.2), squeeze=False, sharey=True)
    for ax, cell in zip(axes[0], groups):
        for d in depths:
            sel = ds.layer_grad_norm_init.sel(**cell, **({"depth": d} if "depth" in ds.dims else {}))
            sel = sel.mean([x for x in sel.dims if x != "layer"])
            ax.semilogy(np.arange(d + 1), sel.values[: d + 1], marker="o", ms=3, label=f"depth {d}")
        ax.set_title(_label(cell, short=True), fontsize=9)
        ax.set_xlabel("layer (0 = first hidden; last = output)")
    axes[0][0].set_ylabel("‖∂L/∂W‖ at init (seed mean)")
    axes[0][-1].legend(fontsize=7)
    made.append(plots.save_figure(fig, folder / "mlp_depth_grad_profile_init.png"))

    # Figure 2: evolution of the profile for the deepest net, at the best learning rate.
    if "traj_layer_grad_norm" in ds:
        dmax = max(depths)
        fig, axes = plt.subplots(1, len(groups), figsize=(3.6 * len(groups), 3.2), squeeze=False, sharey=True)
        steps = ds.step.values
        picks = sorted({0, int(steps[1]) if len(steps) > 1 else 0, int(steps[len(steps) // 2]), int(steps[-1])})
        cmap = plt.get_cmap("viridis")
        for ax, cell in zip(axes[0], groups):
            sub = ds.sel(**cell, **({"depth": dmax} if "depth" in ds.dims else {}))
            b = best_learning_rate(sub.test_accuracy)
            traj = at_best_lr(sub.traj_layer_grad_norm, b)
            traj = traj.mean([x for x in traj.dims if x not in ("layer", "step")])
            for i, t in enumerate(picks):
                ax.semilogy(np.arange(dmax + 1), traj.sel(step=t).values[: dmax + 1], marker="o", ms=3,
                            color=cmap(i / max(1, len(picks) - 1)), label=f"step {t}")
            ax.set_title(f"depth {dmax}, {_label(cell, short=True)}", fontsize=9)
            ax.set_xlabel("layer")
        axes[0][0].set_ylabel("‖∂L/∂W‖ (mini-batch, seed mean)")
        axes[0][-1].legend(fontsize=7)
        made.append(plots.save_figure(fig, folder / "mlp_depth_grad_profile_training.png"))

    # Figure 3: test accuracy and stall share against depth.
    # Colour: hidden activation; line style: loss.
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.4))
    acts = ds.hidden_activation.values.tolist() if "hidden_activation" in ds.dims else []
    losses = ds.loss.values.tolist() if "loss" in ds.dims else []
    for cell in groups:
        a = at_best_lr(acc.sel(**cell), best.sel(**cell) if best is not None else None)
        st = at_best_lr((ds.outcome == metrics.STALLED).astype(float).sel(**cell), best.sel(**cell) if best is not None else None)
        style = dict(marker="o", label=_label(cell, short=True))
        if cell.get("hidden_activation") in acts:
            style["color"] = f"C{acts.index(cell['hidden_activation'])}"
        if cell.get("loss") in losses:
            style["ls"] = ["-", "--", ":", "-."][losses.index(cell["loss"]) % 4]
        ax1.plot(depths, a.mean("seed").values, **style)
        ax2.plot(depths, st.mean("seed").values, **style)
    ax1.set_xlabel("depth (hidden layers)"); ax1.set_ylabel("test accuracy (best lr, seed mean)")
    ax2.set_xlabel("depth (hidden layers)"); ax2.set_ylabel("stall share (best lr)")
    ax1.axhline(0.1, color="grey", lw=0.8, ls=":")
    ax1.legend(fontsize=7)
    made.append(plots.save_figure(fig, folder / "mlp_depth_accuracy_stall.png"))

    # Table: one row per (activation, loss, depth).
    rows = []
    stalled = (ds.outcome == metrics.STALLED).astype(float)
    for cell in groups:
        for d in depths:
            c = dict(cell, **({"depth": d} if "depth" in ds.dims else {}))
            b = best.sel(**c) if best is not None else None
            g0 = ds.layer_grad_norm_init.sel(**c).mean([x for x in ds.layer_grad_norm_init.sel(**c).dims if x != "layer"])
            ratio = float(g0.values[0] / g0.values[d])
            lr = float(ds.learning_rate.values[int(b)]) if b is not None else float(ds.learning_rate)
            rows.append([
                *[str(cell[k]) for k in group_dims], d,
                float(at_best_lr(acc.sel(**c), b).mean()), float(at_best_lr(acc.sel(**c), b).std()),
                lr, float(at_best_lr(stalled.sel(**c), b).mean()), float(stalled.sel(**c).mean()),
                ratio,
                float(at_best_lr(ds.saturated_final.sel(**c), b).mean()),
                float(at_best_lr(ds.dead_final.sel(**c), b).mean()),
            ])
    header = [*group_dims, "depth", "test acc (best lr)", "± std", "best lr", "stall (best lr)",
              "stall (all lr)", "‖g_first‖/‖g_out‖ at init", "saturated final", "dead final"]
    text = "# mlp_depth: per cell\n\n" + plots.markdown_table(header, rows)
    made.append(plots.save_text(text, folder / "mlp_depth_table.md"))
    if probed(ds):
        made.append(_roundoff_table(ds, folder, ["dtype", "hidden_activation", "loss", "depth"]))
    return made


def report_glorot(ds: xr.Dataset, folder: Path) -> list[Path]:
    import matplotlib.pyplot as plt

    folder = Path(folder)
    made = []
    depth = int(ds.depth) if "depth" not in ds.dims else int(ds.depth.max())
    dims, cells = _cells(ds, ["hidden_activation", "init_scheme"])
    rows_n = len(ds.hidden_activation) if "hidden_activation" in ds.dims else 1
    cols_n = max(1, len(cells) // rows_n)
    fig, axes = plt.subplots(rows_n, cols_n, figsize=(4.2 * cols_n, 3.0 * rows_n), squeeze=False, sharex=True)
    steps = ds.step.values
    cmap = plt.get_cmap("plasma")
    table = []
    for k, cell in enumerate(cells):
        ax = axes[k // cols_n][k % cols_n]
        sub = ds.sel(**cell)
        mean = sub.traj_layer_act_mean.mean("seed")
        std = sub.traj_layer_act_std.mean("seed")
        for layer in range(depth):
            m, s = mean.sel(layer=layer).values, std.sel(layer=layer).values
            colour = cmap(layer / max(1, depth))
            ax.plot(steps, m, color=colour, label=f"layer {layer + 1}")
            ax.fill_between(steps, m - s, m + s, color=colour, alpha=0.12)
        ax.set_title(_label(cell), fontsize=9)
        ax.set_xlabel("step (mini-batches of 10)")
        top = mean.sel(layer=depth - 1).values
        sat_top = sub.traj_layer_saturated.mean("seed").sel(layer=depth - 1).values
        i_min = int(np.argmin(top)) if cell.get("hidden_activation", "") != "tanh" else int(np.argmax(np.abs(top)))
        table.append([*[str(cell[d]) for d in dims], float(top[0]), float(top[i_min]), int(steps[i_min]),
                      float(top[-1]), float(sat_top.max()), int(steps[int(np.argmax(sat_top))]),
                      float(sat_top[-1]), float(sub.test_accuracy.mean()), float(sub.test_accuracy.std())])
    for r in axes:
        r[0].set_ylabel("activation mean ± std")
    axes[0][-1].legend(fontsize=7)
    made.append(plots.save_figure(fig, folder / "mlp_glorot_activations.png"))

    fig, axes = plt.subplots(1, len(cells), figsize=(3.2 * len(cells), 2.8), squeeze=False, sharey=True)
    for ax, cell in zip(axes[0], cells):
        sat = ds.traj_layer_saturated.sel(**cell).mean("seed")
        for layer in range(depth):
            ax.plot(steps, sat.sel(layer=layer).values, color=cmap(layer / max(1, depth)), label=f"layer {layer + 1}")
        ax.set_title(_label(cell), fontsize=8)
        ax.set_xlabel("step")
    axes[0][0].set_ylabel("saturated fraction (σ'<1% of max)")
    axes[0][-1].legend(fontsize=7)
    made.append(plots.save_figure(fig, folder / "mlp_glorot_saturation.png"))

    header = [*dims, "top layer mean, step 0", "top mean, extreme", "at step", "top mean, final",
              "top saturated, max", "at step", "top saturated, final", "test acc", "± std"]
    text = ("# mlp_glorot: top hidden layer (layer %d)\n\n" % depth) + plots.markdown_table(header, table)
    made.append(plots.save_text(text, folder / "mlp_glorot_table.md"))
    return made


def dying_relu_summary(ds: xr.Dataset) -> xr.Dataset:
    """What the dying-ReLU report shows, small enough to commit: per cell (bias initialisation,
    width, depth) the number of nets born dead (``born_dead``) out of ``nets`` (seeds per cell)."""
    dead = ds.born_dead.astype(np.int64)
    scalars = {k: v for k, v in ds.coords.items() if v.ndim == 0}
    return xr.Dataset({"born_dead": dead.sum("seed") if "seed" in dead.dims else dead,
                       "nets": ds.sizes.get("seed", 1)}).assign_coords(**scalars)


def report_dying_relu(ds: xr.Dataset, folder: Path) -> list[Path]:
    """Born-dead shares, from the sweep's summary (``summary.nc``, :func:`dying_relu_summary`):
    written here from the results, or read as ``ds`` when the folder holds only the summary."""
    import matplotlib.pyplot as plt

    folder = Path(folder)
    made = []
    if not results.is_summary(ds):
        made.append(results.save_summary(dying_relu_summary(ds), ds, folder, "report_dying_relu"))
        ds = results.load_summary(folder)  # every number below is read from the file
    n = int(ds.nets)
    share = ds.born_dead / n
    dims, cells = _cells(ds, ["init_bias", "init_bias_std"])
    depths = np.atleast_1d(ds.depth.values)
    widths = np.atleast_1d(ds.width.values)
    if "depth" not in share.dims:
        share = share.expand_dims(depth=depths)
    if "width" not in share.dims:
        share = share.expand_dims(width=widths)
    dd = np.arange(1, depths.max() + 1)
    depth_ticks = sorted({int(depths.min()), *range(5, int(depths.max()) + 1, 5)})
    width_colour = plt.get_cmap("viridis")
    colour_of = {w: width_colour(j / max(1, len(widths) - 1) * 0.9) for j, w in enumerate(widths)}

    # Figure 1: one panel per bias initialisation (2 × 2 for four), one line per width.
    ncols = 2 if len(cells) == 4 else len(cells)
    nrows = int(np.ceil(len(cells) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 3.4 * nrows), squeeze=False, sharex=True, sharey=True)
    for k, cell in enumerate(cells):
        ax = axes[k // ncols][k % ncols]
        zero = float(cell.get("init_bias", 0)) == 0 and float(cell.get("init_bias_std", 0)) == 0
        for w in widths:
            ax.plot(depths, share.sel(**cell, width=w).values, marker="o", ms=3.5, color=colour_of[w], label=f"width {w}")
            if zero:
                ax.plot(dd, single_input_dead_probability(w, dd), ls="--", lw=0.8, color=colour_of[w])
        ax.set_title(bias_label(cell) + (r" (dashed: $1-(1-2^{-N})^L$)" if zero else ""), fontsize=9)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xticks(depth_ticks)
        ax.grid(alpha=0.3)
        if k // ncols == nrows - 1:
            ax.set_xlabel("depth L (hidden layers)")
        if k % ncols == 0:
            ax.set_ylabel(f"share born dead ({n:,} nets/point)")
    for k in range(len(cells), nrows * ncols):
        axes[k // ncols][k % ncols].set_visible(False)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles[: len(widths)], labels[: len(widths)], loc="lower center", ncol=len(widths), fontsize=8,
               bbox_to_anchor=(0.5, 1.0), frameon=False)
    fig.tight_layout()
    made.append(plots.save_figure(fig, folder / "mlp_dying_relu_born_dead.png"))

    # Figure 2: one panel per width, one line per bias initialisation (what a shift changes).
    if len(cells) > 1:
        fig, axes = plt.subplots(1, len(widths), figsize=(3.0 * len(widths), 3.0), squeeze=False, sharey=True)
        for ax, w in zip(axes[0], widths):
            for k, cell in enumerate(cells):
                ax.plot(depths, share.sel(**cell, width=w).values, marker="o", ms=3, color=f"C{k}", label=bias_label(cell))
            ax.set_title(f"width {w}", fontsize=9)
            ax.set_xlabel("depth L")
            ax.set_ylim(-0.02, 1.02)
            ax.set_xticks(depth_ticks)
            ax.grid(alpha=0.3)
        axes[0][0].set_ylabel("share born dead")
        handles, labels = axes[0][0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncol=len(cells), fontsize=8, bbox_to_anchor=(0.5, 1.0),
                   frameon=False)
        fig.tight_layout()
        made.append(plots.save_figure(fig, folder / "mlp_dying_relu_by_bias.png"))

    rows = []
    for cell in cells:
        for w in widths:
            for d in depths:
                p = float(share.sel(**cell, width=w, depth=d))
                half = 1.96 * np.sqrt(p * (1 - p) / n) if 0 < p < 1 else "—"
                rows.append([*[cell[k] for k in dims], int(w), int(d), p, half, float(single_input_dead_probability(w, d))])
    header = [*dims, "width", "depth", "share born dead", "95% ± (binomial)", "single-input bound 1−(1−2^-N)^L"]
    wide = [[int(w), int(d), *[float(share.sel(**cell, width=w, depth=d)) for cell in cells],
             float(single_input_dead_probability(w, d))] for w in widths for d in depths]
    wide_header = ["width", "depth", *[bias_label(c) for c in cells], "1−(1−2^-N)^L"]
    text = (f"# mlp_dying_relu: share of ReLU nets born dead ({n:,} nets per cell)\n\n"
            "The bound 1−(1−2^-N)^L applies to zero biases only (see docs/mlp_study.md). Made by "
            "`lossjax run experiments/mlp/mlp_dying_relu.toml`, or from the committed `summary.nc` (nets born dead "
            f"per cell; the results are not committed, size) by `lossjax report results/{ds.attrs['name']}`.\n\n"
            "## By width and depth, one column per bias initialisation\n\n"
            + plots.markdown_table(wide_header, wide)
            + "\n\n## Long form, with the 95 % binomial half-width\n\nA share of 0 or 1 (every net of the cell alike) "
            f"has no binomial half-width (—); with 0 of {n:,} nets dead, the one-sided 95 % upper bound on the "
            f"cell's share is 1 − 0.05^(1/{n:,}) = {1 - 0.05 ** (1 / n):.2g} (with all dead, 1 minus that is the lower bound).\n\n"
            + plots.markdown_table(header, rows))
    made.append(plots.save_text(text, folder / "mlp_dying_relu_table.md"))
    return made


def report_phase(ds: xr.Dataset, folder: Path) -> list[Path]:
    import matplotlib.pyplot as plt

    folder = Path(folder)
    made = []
    stalled = (ds.outcome == metrics.STALLED).astype(float)
    dims, cells = _cells(ds, ["hidden_activation", "dtype"])
    scales = ds.init_scale.values
    depths = ds.depth.values
    fig, axes = plt.subplots(2, len(cells), figsize=(3.6 * len(cells), 5.4), squeeze=False)
    rows = []
    for k, cell in enumerate(cells):
        st = stalled.sel(**cell).mean("seed").transpose("depth", "init_scale")
        acc = ds.accuracy_final.sel(**cell).mean("seed").transpose("depth", "init_scale")
        for ax, val, title, cm in ((axes[0][k], st, "stall share", "Reds"), (axes[1][k], acc, "train accuracy", "viridis")):
            im = ax.imshow(val.values, origin="lower", aspect="auto", cmap=cm, vmin=0, vmax=1)
            ax.set_xticks(range(len(scales)), [f"{s:.3g}" for s in scales], fontsize=7, rotation=45)
            ax.set_yticks(range(len(depths)), [str(d) for d in depths])
            ax.set_title(f"{_label(cell)}: {title}", fontsize=9)
            ax.set_xlabel("init scale (× LeCun std)")
            ax.set_ylabel("depth")
            for i in range(len(depths)):
                for j in range(len(scales)):
                    ax.text(j, i, f"{float(val.values[i, j]):.2f}", ha="center", va="center", fontsize=6,
                            color="black")
        fig.colorbar(im, ax=axes[1][k], shrink=0.8)
        for d in depths:
            for s in scales:
                c = dict(cell, depth=d, init_scale=s)
                rows.append([*[cell[x] for x in dims], int(d), float(s), float(stalled.sel(**c).mean()),
                             float((ds.outcome == metrics.DIVERGED).sel(**c).mean()),
                             float(ds.accuracy_final.sel(**c).mean()), float(ds.test_accuracy.sel(**c).mean()),
                             float(ds.saturated_init.sel(**c).mean()), float(ds.dead_init.sel(**c).mean()),
                             float(ds.born_dead.sel(**c).astype(float).mean()),
                             float(hidden_layers(ds.layer_grad_norm_init.sel(**c), 1).mean())])
    made.append(plots.save_figure(fig, folder / "mlp_phase_stall_map.png"))
    header = [*dims, "depth", "init scale", "stall share", "diverged share", "train acc", "test acc", "saturated init",
              "dead init", "born dead", "‖g‖ first layer at init"]
    made.append(plots.save_text("# mlp_phase: per cell (seed means)\n\n" + plots.markdown_table(header, rows),
                                folder / "mlp_phase_table.md"))
    if probed(ds):
        made.append(_roundoff_table(ds, folder, ["dtype", "hidden_activation", "depth"]))
    return made


def report_roundoff(ds: xr.Dataset, folder: Path) -> list[Path]:
    """``roundoff.md`` only: the share of runs decided by round-off per cell of every dimension but
    ``seed`` (a sweep with ``[train] roundoff_probe = true``, e.g. ``mlp_xor_roundoff``)."""
    if not probed(ds):
        raise ValueError(f"{ds.attrs['name']}: report_roundoff needs [train] roundoff_probe = true")
    return [_roundoff_table(ds, folder, [d for d in ds.dims if d not in ("seed", "layer", "step")])]
