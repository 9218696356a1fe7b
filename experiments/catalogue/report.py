"""Reports of the catalogue sweeps: every loss × activation on the texts' neuron, and the
gradient estimators that train through zero gradients (named by the sweep files beside this
module, ``report = "report.py:<function>"``).

Every caption sentence that states a finding is built from the measured numbers (the lists of
losses and activations below are computed, not written by hand).
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import xarray as xr

from lossjax.core import losses as losses_lib
from lossjax.core import metrics
from lossjax.io import figures as plots

#: The letter of each outcome code in the catalogue figure (X for stalled: S is slow).
OUTCOME_LETTERS = {metrics.CONVERGED: "C", metrics.SLOW: "S", metrics.STALLED: "X", metrics.DIVERGED: "D"}
LETTER_LEGEND = ", ".join(f"{OUTCOME_LETTERS[code]} {metrics.OUTCOMES[code]}" for code in sorted(OUTCOME_LETTERS))


def _names(items) -> str:
    return ", ".join(f"`{i}`" for i in items) or "none"


def _catalogue_findings(ds: xr.Dataset) -> str:
    """Which losses (rows) and activations (columns) have an exactly zero gradient at every step."""
    frozen = ds.zero_grad_steps == int(ds.steps)  # (loss, activation, init)
    rows = [str(l) for l in ds.loss.values if bool(frozen.sel(loss=l).all())]
    on_output = [str(l) for l in ds.loss.values if losses_lib.get_loss(str(l)).input == "output"]
    cols = [str(a) for a in ds.activation.values if bool(frozen.sel(activation=a, loss=on_output).all())]
    through = [str(l) for l in ds.loss.values if str(l) not in on_output
               and cols and not bool(frozen.sel(activation=cols, loss=l).all())]
    inits = ", ".join(f"{i} (w + b = {w + b:g})" for i, w, b in zip(ds.init.values, ds.init_w.values, ds.init_b.values))
    return (f"Measured: the gradient is exactly 0 at all T = {int(ds.steps)} steps under every activation and from "
            f"every init for the losses {_names(rows)}; under the activations {_names(cols)} it is exactly 0 at every "
            f"step for every loss on the output a (from the inits {inits}), while the losses on the logits "
            f"{_names(through)} still get a gradient there.")


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
            f"Outcome letters in the figure: {LETTER_LEGEND} (rule in `lossjax.core.metrics`).\n"]
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
                ax.text(j, i, OUTCOME_LETTERS[int(outcome[i, j])], ha="center", va="center", fontsize=8)
        ax.set_xticks(range(ds.sizes["activation"]), [str(a) for a in ds.activation.values], rotation=45, ha="right")
        ax.set_yticks(range(ds.sizes["loss"]), [str(v) for v in ds.loss.values])
        ax.set_title(f"init {init}", fontsize=10)
    fig.colorbar(image, ax=axes[0].tolist(), shrink=0.8, label="zero_grad_steps / T")
    caption = (
        f"# {ds.attrs['name']}\n\n{ds.attrs['description']}\n\n## zero_grad_steps.png\n\n"
        f"For every loss (rows) and output activation (columns) of the catalogue, trained on the texts' neuron "
        f"({ds.attrs['dataset_description']}; η = {float(ds.learning_rate):g}, T = {int(ds.steps)}) from each "
        "initial (w, b) (panels): the colour is the share of the update steps whose gradient is exactly 0 in every "
        f"parameter, the letter the outcome ({LETTER_LEGEND}; rule in `lossjax.core.metrics`). "
        f"{_catalogue_findings(ds)} Made by `{command}`.\n\n"
        "## tables.md\n\nOutcome, zero_grad_steps, steps_to_target and the final output per loss × "
        "activation, one set of tables per initial (w, b).\n"
    )
    made.append(plots.save_text(caption, folder / "README.md"))
    fig.suptitle(
        f"Share of the {int(ds.steps)} steps whose gradient is exactly 0; letter = outcome "
        f"({LETTER_LEGEND})\n{ds.attrs['name']}: {ds.attrs['dataset_description']}, η={float(ds.learning_rate):g}  "
        f"({command})",
        fontsize=9,
    )
    made.append(plots.save_figure(fig, folder / "zero_grad_steps.png"))
    return made


def _estimator_findings(ds: xr.Dataset, accuracy: xr.DataArray, estimators: list[str]) -> str:
    """Per estimator: the loss × activation cells whose gradient is exactly 0 at every step of every
    run, their mean final accuracy, and what the other estimators reach in the first one's cells."""
    cell_dims = [d for d in ("loss", "activation") if d in ds.dims]
    frozen = (ds.zero_grad_steps == int(ds.steps)).all([d for d in ds.zero_grad_steps.dims if d not in
                                                         (*cell_dims, "estimator")])
    cells = [dict(zip(cell_dims, c)) for c in itertools.product(*(ds[d].values for d in cell_dims))]

    def label(c):
        return "/".join(str(v) for v in c.values())

    def acc_range(cs, est):
        values = [float(accuracy.sel(**c, estimator=est)) for c in cs]
        return f"{min(values):.3f}" if f"{min(values):.3f}" == f"{max(values):.3f}" else f"{min(values):.3f}–{max(values):.3f}"

    said = []
    for est in estimators:
        mine = [c for c in cells if bool(frozen.sel(**c, estimator=est))]
        said.append(f"with `{est}` in {len(mine)} of {len(cells)} cells"
                    + (f" ({', '.join(label(c) for c in mine)}; mean final accuracy {acc_range(mine, est)})" if mine else ""))
    text = f"Measured: the gradient is exactly 0 at every step of every run {'; '.join(said)}."
    first = [c for c in cells if bool(frozen.sel(**c, estimator=estimators[0]))]
    if first:
        text += (f" In the cells frozen under `{estimators[0]}`, the mean final accuracy is "
                 + "; ".join(f"{acc_range(first, est)} with `{est}`" for est in estimators) + ".")
    return text


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
    averaged = [*reduce, *(["activation"] if "activation" in ds.dims else [])]
    made.append(plots.save_text(
        f"# {ds.attrs['name']}\n\n{ds.attrs['description']}\n\n## accuracy.png\n\nFinal training accuracy for "
        f"each loss (groups) and gradient estimator (bars), averaged over {', '.join(averaged) or 'nothing'}. "
        f"{_estimator_findings(ds, accuracy, estimators)} Made by `{command}`.\n\n## tables.md\n\nThe same per "
        "loss × activation × estimator, with the share of steps whose gradient is exactly 0.\n",
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
