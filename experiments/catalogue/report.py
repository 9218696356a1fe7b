"""Reports of the catalogue sweeps: every loss × activation on the texts' neuron, and the
gradient estimators that train through zero gradients (registered in :mod:`lossjax.reports`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from lossjax.core import metrics
from lossjax.io import figures as plots

_LETTERS = {code: name[0].upper() for code, name in enumerate(metrics.OUTCOMES)}


def _grid_table(ds: xr.Dataset, variable: str, init: str) -> str:
    """Markdown table: rows = losses, columns = activations, for one init."""
    da = ds[variable].sel(init=init)
    activations = [str(a) for a in ds.activation.values]
    rows = []
    for loss in ds.loss.values:
        row = [f"`{loss}`"]
        for act in activations:
            value = da.sel(loss=loss, activation=act).item()
            if variable == "outcome":
                row.append(metrics.OUTCOMES[int(value)])
            elif isinstance(value, float):
                row.append(f"{value:.3g}")
            else:
                row.append(str(value))
        rows.append(row)
    return plots.markdown_table(["loss \\ activation"] + [f"`{a}`" for a in activations], rows)


def report_catalogue(ds: xr.Dataset, folder: Path) -> list[Path]:
    """Tables (per init) of outcome, zero_grad_steps and final output; one heatmap figure."""
    import matplotlib.pyplot as plt

    folder = Path(folder)
    made = []
    command = f"lossjax run experiments/catalogue/{ds.attrs['name']}.toml"
    text = [f"# {ds.attrs['name']}: every loss × activation on the texts' neuron\n",
            f"Made by `{command}`. {ds.attrs['description']}\n",
            "Outcome letters in the figure: C converged, S slow, X stalled, D diverged "
            "(rule in `lossjax.metrics`).\n"]
    for init in ds.init.values:
        for variable in ("outcome", "zero_grad_steps", "steps_to_target", "output_final"):
            text.append(f"\n## `{variable}`, init {init}\n\n" + _grid_table(ds, variable, str(init)))
    made.append(plots.save_text("".join(text), folder / "tables.md"))

    inits = [str(i) for i in ds.init.values]
    fig, axes = plt.subplots(
        1, len(inits), figsize=(4.2 * len(inits) + 2.4, 0.36 * ds.sizes["loss"] + 2.2), squeeze=False, sharey=True,
        layout="constrained",
    )
    for ax, init in zip(axes[0], inits):
        zero = ds.zero_grad_steps.sel(init=init).transpose("loss", "activation").values / float(ds.steps)
        image = ax.imshow(zero, vmin=0, vmax=1, cmap="Reds", aspect="auto")
        outcome = ds.outcome.sel(init=init).transpose("loss", "activation").values
        for i in range(zero.shape[0]):
            for j in range(zero.shape[1]):
                letter = {0: "C", 1: "S", 2: "X", 3: "D"}[int(outcome[i, j])]
                ax.text(j, i, letter, ha="center", va="center", fontsize=8)
        ax.set_xticks(range(ds.sizes["activation"]), [str(a) for a in ds.activation.values], rotation=45, ha="right")
        ax.set_yticks(range(ds.sizes["loss"]), [str(v) for v in ds.loss.values])
        ax.set_title(f"init {init}", fontsize=10)
    fig.colorbar(image, ax=axes[0].tolist(), shrink=0.8, label="zero_grad_steps / T")
    caption = (
        f"# {ds.attrs['name']}\n\n{ds.attrs['description']}\n\n## zero_grad_steps.png\n\n"
        f"For every loss (rows) and output activation (columns) of the catalogue, trained on the texts' neuron "
        f"(x = 1, target 0, η = {float(ds.learning_rate):g}, T = {int(ds.steps)}) from each initial (w, b) "
        "(panels): the colour is the share of the update steps whose gradient is exactly 0 in every "
        "parameter, the letter the outcome (C converged, S slow, X stalled, D diverged; rule in "
        "`lossjax.metrics`). Dark rows are objectives with no usable gradient here: 1 − accuracy, 1 − F1, "
        "1 − IoU (piecewise constant), seed 001's and seed 002's one-sided cross-entropies and the soft "
        "F1/IoU (all identically flat for a target of 0), softmax over one unit; the step column, and the "
        "piecewise-constant column from these inits (z = w + b ≥ 1 lies on its flat top), pass no gradient "
        f"for any loss on outputs. Made by `{command}`.\n\n"
        "## tables.md\n\nOutcome, zero_grad_steps, steps_to_target and the final output per loss × "
        "activation, one set of tables per initial (w, b).\n"
    )
    made.append(plots.save_text(caption, folder / "README.md"))
    fig.suptitle(
        f"Share of the {int(ds.steps)} steps whose gradient is exactly 0; letter = outcome "
        f"(C converged, S slow, X stalled, D diverged)\n{ds.attrs['name']}: x=1, y=0, η={float(ds.learning_rate):g}  "
        f"({command})",
        fontsize=9,
    )
    made.append(plots.save_figure(fig, folder / "zero_grad_steps.png"))
    return made


def report_estimators(ds: xr.Dataset, folder: Path) -> list[Path]:
    """Table of final accuracy and zero-gradient share per loss × activation × estimator (mean over seeds and inits)."""
    import matplotlib.pyplot as plt

    folder = Path(folder)
    command = f"lossjax run experiments/catalogue/{ds.attrs['name']}.toml"
    reduce = [d for d in ("seed", "init", "init_scale", "learning_rate") if d in ds.dims]
    accuracy = ds.accuracy_final.mean(reduce)
    zero = (ds.zero_grad_steps / ds.steps).mean(reduce)
    estimators = [str(e) for e in ds.estimator.values]
    rows = []
    for loss in ds.loss.values:
        for act in np.atleast_1d(ds.activation.values):
            sel = dict(loss=loss)
            if "activation" in accuracy.dims:
                sel["activation"] = act
            row = [f"`{loss}`", f"`{act}`"]
            for est in estimators:
                row.append(f"{accuracy.sel(**sel, estimator=est).item():.3f} / {zero.sel(**sel, estimator=est).item():.2f}")
            rows.append(row)
    table = plots.markdown_table(["loss", "activation"] + [f"`{e}`: accuracy / zero-grad share" for e in estimators], rows)
    text = (
        f"# {ds.attrs['name']}\n\nMade by `{command}`. {ds.attrs['description']}\n\n"
        f"Final training accuracy and share of update steps with an exactly-zero gradient, "
        f"averaged over {', '.join(reduce) or 'nothing'}.\n\n" + table
    )
    made = [plots.save_text(text, folder / "tables.md")]
    made.append(plots.save_text(
        f"# {ds.attrs['name']}\n\n{ds.attrs['description']}\n\n## accuracy.png\n\nFinal training accuracy for "
        "each loss (groups) and gradient estimator (bars), averaged over seeds, initialisations and output "
        "activations: accuracy, F1 and IoU used directly as objectives do not move with exact gradients "
        "(their gradient is exactly 0 at every step) and train with the score-function estimator. "
        f"Made by `{command}`.\n\n## tables.md\n\nThe same per loss × activation × estimator, with the share "
        "of steps whose gradient is exactly 0.\n",
        folder / "README.md",
    ))

    n_loss = ds.sizes["loss"]
    fig, ax = plt.subplots(figsize=(1.2 + 1.6 * n_loss * len(estimators) / 3, 3.2))
    width = 0.8 / len(estimators)
    labels = []
    for i, loss in enumerate(ds.loss.values):
        labels.append(str(loss))
        for j, est in enumerate(estimators):
            sel = dict(loss=loss, estimator=est)
            value = accuracy.sel(**sel)
            value = value.mean() if value.ndim else value
            ax.bar(i + (j - (len(estimators) - 1) / 2) * width, float(value), width, label=est if i == 0 else None,
                   color=f"C{j}")
    ax.set_xticks(range(n_loss), labels, rotation=30, ha="right")
    ax.set_ylabel("final training accuracy")
    ax.set_ylim(0, 1.05)
    ax.axhline(1.0, color="grey", lw=0.5)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_title(f"{ds.attrs['name']} ({command})", fontsize=9)
    made.append(plots.save_figure(fig, folder / "accuracy.png"))
    return made
