"""Born dead at initialisation: He against randomized asymmetric initialisation (RAI).

Report of ``experiments/mlp/mlp_born_dead.toml`` and its variants (``report =
"born_dead.py:report_born_dead"``): the share of ReLU MLPs born dead, by width and depth, one
column per init scheme (``init_scheme``) and arithmetic (``dtype``), with a 95 % Wilson score
interval, beside the single-input closed form of ``report.py``
(:func:`single_input_dead_probability`).

Lu, Shin, Su & Karniadakis (2020), "Dying ReLU and Initialization: Theory and Numerical
Examples", arXiv 1903.06733, compare He initialisation with their RAI. Their text (its
definition of RAI's constants and its figures of the born-dead probability) was not available
to this project, so the table has no column of the paper's numbers; it says so in its header.

"Born dead" here is lossjax's ``born_dead`` (``lossjax/core/metrics.py``): the output is the same
number for every *training input* at θ_0, compared exactly in the run's dtype. The paper asks
for a constant output over the whole input domain. docs/mlp_study.md, section "He against RAI",
says what separates the two and measures it.

A second table counts the nets at the rounding edge: not born dead, but with an output that
spreads over the training inputs by at most :data:`EDGE_STEPS` rounding steps
(``output_spread_init``). Their verdict is decided by the order in which the forward pass sums,
so another program (a padded one, another block size) may call some of them born dead.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import xarray as xr

from lossjax import reports
from lossjax.io import figures as plots

single_input_dead_probability = reports.load_module(Path(__file__).with_name("report.py")).single_input_dead_probability

#: The header line of the paper's column, stated once (no number of the paper is quoted here).
PAPER_NOTE = ("Paper's numbers: not shown. The text of Lu, Shin, Su & Karniadakis (2020), arXiv 1903.06733, "
              "was not available to this project, so none of its figures or tables could be read.")

Z95 = 1.959963984540054  # the 97.5 % quantile of N(0, 1)

#: Rounding steps of output spread within which a net that is not born dead counts as at the edge.
EDGE_STEPS = 4


def wilson_interval(k: np.ndarray | int, n: int, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """The Wilson score interval of a binomial share k/n (95 % for the default ``z``).

    Unlike p ± z·√(p(1−p)/n) it is not empty at k = 0 or k = n: at k = 0 its upper end is
    z²/(n + z²) (3.8e-4 for n = 10,000).
    """
    k = np.asarray(k, dtype=float)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)


def training_inputs(ds: xr.Dataset) -> str:
    """The training set's size as the results describe it (``n_train=…`` in the dataset description)."""
    found = re.search(r"n_train=(\d+)", str(ds.attrs.get("dataset_description", "")))
    return found.group(1) if found else "?"


def _columns(ds: xr.Dataset) -> list[dict]:
    """One cell per (init scheme, dtype) present in the results, in their stored order."""
    schemes = np.atleast_1d(ds.init_scheme.values).tolist()
    dtypes = np.atleast_1d(ds.dtype.values).tolist()
    return [{"init_scheme": s, "dtype": d} for d in dtypes for s in schemes]


def _select(ds_var: xr.DataArray, **cell) -> xr.DataArray:
    return ds_var.sel({k: v for k, v in cell.items() if k in ds_var.dims})


def born_dead_counts(ds: xr.Dataset) -> xr.DataArray:
    """Number of seeds born dead per cell (every dimension but ``seed`` kept, as present)."""
    return ds.born_dead.astype(int).sum("seed")


def edge_counts(ds: xr.Dataset) -> xr.DataArray:
    """Number of seeds per cell not born dead whose output spreads by at most :data:`EDGE_STEPS`
    rounding steps at θ_0."""
    spread = ds.output_spread_init
    return ((spread > 0) & (spread <= EDGE_STEPS)).astype(int).sum("seed")


def report_born_dead(ds: xr.Dataset, folder: Path) -> list[Path]:
    import matplotlib.pyplot as plt

    folder = Path(folder)
    made = []
    n = ds.sizes["seed"]
    counts, edges = born_dead_counts(ds), edge_counts(ds)
    widths = np.atleast_1d(ds.width.values).tolist()
    depths = np.atleast_1d(ds.depth.values).tolist()
    columns = _columns(ds)

    def count(w, d, cell, of=counts):
        c = _select(of, **cell)
        c = c.sel({k: v for k, v in (("width", w), ("depth", d)) if k in c.dims})
        return int(c)

    # Table: one row per (width, depth); per (scheme, dtype): share and its 95 % Wilson interval.
    header = ["width", "depth"]
    for cell in columns:
        header += [f"{cell['init_scheme']}, {cell['dtype']}", "95% interval"]
    header += ["1−(1−2^-N)^L (one fixed input, zero biases)"]
    rows = []
    for w in widths:
        for d in depths:
            row = [int(w), int(d)]
            for cell in columns:
                k = count(w, d, cell)
                lo, hi = wilson_interval(k, n)
                row += [k / n, f"{float(lo):.4g}–{float(hi):.4g}"]
            row.append(float(single_input_dead_probability(w, d)))
            rows.append(row)
    text = (f"# {ds.attrs.get('name', 'mlp_born_dead')}: share of ReLU nets born dead, He against RAI\n\n"
            f"{n:,} nets per cell; inputs: the {training_inputs(ds)} training inputs "
            f"({ds.attrs.get('dataset_description', '')}). Born dead: the output is the same number for every "
            "training input at θ_0, compared exactly in the column's dtype. Interval: 95 % Wilson score. "
            "The closed form is the probability that a zero-bias net with symmetric weights outputs 0 at one "
            "fixed input x ≠ 0: an upper bound for He's column, not a statement about RAI.\n\n"
            f"{PAPER_NOTE}\n\n" + plots.markdown_table(header, rows))
    edge_rows = [[int(w), int(d)] + [count(w, d, cell, edges) for cell in columns] for w in widths for d in depths]
    text += (f"\n## At the rounding edge\n\nNets per cell (of {n:,}) that are not born dead but whose output "
             f"spreads over the training inputs by at most {EDGE_STEPS} rounding steps of its dtype at θ_0 "
             "(`output_spread_init`): another program, summing in another order, may round some of them to a "
             "constant output.\n\n"
             + plots.markdown_table(["width", "depth"] + [f"{c['init_scheme']}, {c['dtype']}" for c in columns],
                                    edge_rows))
    made.append(plots.save_text(text, folder / f"{ds.attrs.get('name', 'mlp_born_dead')}_table.md"))

    # Figure: one panel per dtype; colour: width; solid He, dashed RAI, dotted closed form.
    dtypes = np.atleast_1d(ds.dtype.values).tolist()
    schemes = np.atleast_1d(ds.init_scheme.values).tolist()
    styles = {"he": "-", "rai": "--"}
    cmap = plt.get_cmap("viridis")
    colour = {w: cmap(j / max(1, len(widths) - 1) * 0.9) for j, w in enumerate(widths)}
    fig, axes = plt.subplots(1, len(dtypes), figsize=(5.2 * len(dtypes), 3.8), squeeze=False, sharey=True)
    dd = np.arange(1, max(depths) + 1)
    for ax, dtype in zip(axes[0], dtypes):
        for w in widths:
            for s in schemes:
                k = np.array([count(w, d, {"init_scheme": s, "dtype": dtype}) for d in depths])
                lo, hi = wilson_interval(k, n)
                p = k / n
                ax.errorbar(depths, p, yerr=[np.maximum(p - lo, 0), np.maximum(hi - p, 0)], color=colour[w], ls=styles.get(s, ":"), marker="o",
                            ms=3, capsize=2, lw=1.2, label=f"width {w}, {s}")
            ax.plot(dd, single_input_dead_probability(w, dd), color=colour[w], ls=":", lw=0.8)
        ax.set_title(f"{dtype}: solid He, dashed RAI, dotted 1−(1−2^-N)^L", fontsize=9)
        ax.set_xlabel("depth L (hidden layers)")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(f"share born dead ({n:,} nets per point)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(widths), fontsize=7, bbox_to_anchor=(0.5, 1.0),
               frameon=False)
    fig.tight_layout()
    made.append(plots.save_figure(fig, folder / f"{ds.attrs.get('name', 'mlp_born_dead')}.png"))
    return made
