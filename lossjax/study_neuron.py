"""The single-neuron study (issue 4): pure computations and the reports that draw its results.

Pure functions (no I/O, numpy/jax, vectorised):

- :func:`saturation_z` and :func:`saturated_closed_form`: where a sigmoid neuron is saturated in
  the sense of :mod:`lossjax.metrics` (σ'(z) < δ·max σ' = δ/4 for every input), in closed form.
- :func:`plateau_lengths`: the ``longest_plateau`` definition of :mod:`lossjax.metrics` applied
  to a recorded loss trajectory, for any τ (to compare the definition with the texts' wording).
- :func:`perturbation_sensitivity`: seed 000's argument measured: for random parameter
  perturbations of size ε, how often (and by how much) the loss and the accuracy change.

Reports (registered in :mod:`lossjax.reports`, named by a sweep's ``report`` key) write PNG
figures, Markdown tables and a ``README.md`` in the results folder that lists every figure and
table with its caption and the command that made it.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from lossjax import metrics
from lossjax.reports import register

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

#: Seed 002's reported numbers (quadratic cost): initial and final outputs, plateau length.
TEXT_NUMBERS = {
    "w=0.6,b=0.9": {"initial": 0.82, "final": 0.09},
    "w=2,b=2": {"initial": 0.98, "final": 0.2, "plateau": 150},
}
JUNCTURES = (0.25, 0.5, 0.75)


# --------------------------------------------------------------------------------------
# Pure computations
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
    """``longest_plateau`` of :mod:`lossjax.metrics` computed from recorded trajectories.

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
    """Seed 000's argument, measured: how a small parameter change moves loss and accuracy.

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
    loss1, acc1 = evaluate(w + dw, b + db)
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
    """Distance of an output of seed 004's piecewise-constant neuron to the nearest juncture
    (0.25, 0.5, 0.75: the flat middles of its steps, where its gradient is ~0)."""
    output = np.asarray(output, np.float64)
    return np.min(np.abs(output[..., None] - np.asarray(JUNCTURES)), axis=-1)


# --------------------------------------------------------------------------------------
# Report helpers (I/O at the edge)
# --------------------------------------------------------------------------------------


def _command(ds: xr.Dataset) -> str:
    return f"lossjax run experiments/{ds.attrs['name']}.toml"


def _thresholds(ds: xr.Dataset) -> dict:
    import json

    return json.loads(ds.attrs["thresholds"])


def _sweep_raw(ds: xr.Dataset) -> dict:
    return tomllib.loads(ds.attrs["sweep"])


def _dataset_xy(ds: xr.Dataset):
    """The training inputs and targets of the sweep that made ``ds`` (first input column)."""
    from lossjax import sweep as sweep_lib

    data = sweep_lib.parse_sweep(_sweep_raw(ds), source=ds.attrs["sweep"]).make_dataset()
    return np.asarray(data.x_train)[:, 0], np.asarray(data.y_train)[:, 0]


class _Writer:
    """Writes figures and tables into a results folder and collects their captions into README.md."""

    def __init__(self, ds: xr.Dataset, folder: Path, title: str):
        self.ds, self.folder, self.title = ds, Path(folder), title
        self.entries: list[str] = []
        self.paths: list[Path] = []

    def figure(self, fig, stem: str, caption: str) -> None:
        from lossjax.plots import save_figure

        self.paths.append(save_figure(fig, self.folder / f"{stem}.png"))
        self.entries.append(f"### {stem}.png\n\n![{stem}]({stem}.png)\n\n{caption} Made by `{_command(self.ds)}` "
                            f"(or `lossjax report results/{self.ds.attrs['name']}`).\n")

    def table(self, text: str, stem: str, caption: str) -> None:
        from lossjax.plots import save_text

        body = f"{caption} Made by `{_command(self.ds)}`.\n\n{text}"
        self.paths.append(save_text(body, self.folder / f"{stem}.md"))
        self.entries.append(f"### {stem}.md\n\n{body}\n")

    def finish(self) -> list[Path]:
        from lossjax.plots import save_text

        attrs = self.ds.attrs
        head = (f"# {self.title}\n\n{attrs.get('description', '')}\n\n"
                f"Regenerate: `{_command(self.ds)}`. {attrs['n_runs']:,} runs; compiled in "
                f"{attrs['compile_time_s']:.1f} s, trained in {attrs['run_time_s']:.1f} s "
                f"(wall {attrs['wall_time_s']:.1f} s, backend {attrs['backend']}). "
                f"Thresholds: `{attrs['thresholds']}`.\n\n")
        self.paths.append(save_text(head + "\n".join(self.entries), self.folder / "README.md"))
        return self.paths


def _plt():
    from lossjax import plots  # noqa: F401  (selects the Agg backend)
    import matplotlib.pyplot as plt

    return plt


def _sel(ds, **kw):
    """``ds.sel`` on the given coordinates that are dimensions; scalar coordinates are checked."""
    dims = {k: v for k, v in kw.items() if k in ds.dims}
    return ds.sel(dims)


def _values(ds, name) -> list:
    if name in ds.dims:
        return list(ds[name].values)
    return [ds[name].values.item()]


def _outcome_name(code: int) -> str:
    return metrics.OUTCOMES[int(code)] if code >= 0 else "?"


# --------------------------------------------------------------------------------------
# Seed 002: the texts' neuron
# --------------------------------------------------------------------------------------


@register("neuron_nielsen", "seed 002's sigmoid neuron: output, z and dC/dw per step; outputs at steps 0/150/300")
def report_nielsen(ds: xr.Dataset, folder: Path) -> list[Path]:
    plt = _plt()
    out = _Writer(ds, folder, "Seed 002's saturated sigmoid neuron")
    th = _thresholds(ds)
    losses = _values(ds, "loss")
    inits = _values(ds, "init")
    lrs = _values(ds, "learning_rate")
    steps = ds.step.values

    # Output vs step: the text's two figures (quadratic) with cross-entropy beside them.
    for lr in lrs:
        d = _sel(ds, learning_rate=lr)
        suffix = "" if len(lrs) == 1 else f"_lr{lr:g}"
        fig, axes = plt.subplots(len(inits), len(losses), figsize=(4.2 * len(losses), 3.0 * len(inits)),
                                 sharex=True, sharey=True, squeeze=False)
        for i, init in enumerate(inits):
            for j, loss in enumerate(losses):
                r = d.sel(loss=loss, init=init)
                ax = axes[i, j]
                ax.plot(steps, r.traj_output, color="C0")
                for t in (0, 150, 300):
                    if t in steps:
                        v = float(r.traj_output.sel(step=t))
                        ax.plot([t], [v], "o", color="C3", ms=4)
                        ax.annotate(f"{v:.3f}", (t, v), textcoords="offset points", xytext=(4, 6), fontsize=8)
                ax.set_title(f"{loss}, {init}, η={lr:g}", fontsize=9)
                ax.set_ylim(-0.02, 1.02)
                ax.grid(alpha=0.3)
                if i == len(inits) - 1:
                    ax.set_xlabel("step")
                if j == 0:
                    ax.set_ylabel("output a = σ(w+b)")
        out.figure(fig, f"output_vs_step{suffix}",
                   f"Output a of the single neuron (x = 1, target 0, η = {lr:g}, plain gradient descent) at "
                   "every step, for the two initialisations of seed 002 (rows) under the quadratic cost "
                   "½(y−a)² and binary cross-entropy (columns); the dots mark steps 0, 150 and 300. "
                   + ("The left column reproduces the text's two figures: from (0.6, 0.9) the output falls at once, "
                      "from (2, 2) it stays near 0.98 for the first ~100 steps because ∂C/∂w = (a−y)σ'(z)x is "
                      "tiny while σ(z) ≈ 1; with cross-entropy ∂C/∂w = (a−y)x and both start fast."
                      if abs(lr - 0.15) < 1e-12 else
                      f"At η = {lr:g} (30 times smaller than the text's) 300 steps are too few for either cost; "
                      "cross-entropy still moves faster from both initialisations, the quadratic cost from (2, 2) "
                      "hardly moves at all."))

        fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
        for loss in losses:
            for k, init in enumerate(inits):
                r = d.sel(loss=loss, init=init)
                style = "-" if loss == losses[0] else "--"
                axes[0].plot(steps, r.traj_logit, style, color=f"C{k}", label=f"{loss}, {init}")
                axes[1].plot(steps, np.abs(r.traj_grad_w), style, color=f"C{k}", label=f"{loss}, {init}")
        axes[0].set_ylabel("z = w·x + b")
        axes[1].set_ylabel("|∂C/∂w|")
        axes[1].set_yscale("log")
        for ax in axes:
            ax.set_xlabel("step")
            ax.grid(alpha=0.3)
        axes[0].legend(fontsize=7)
        out.figure(fig, f"z_and_grad_vs_step{suffix}",
                   f"Pre-activation z = w + b (left) and |∂C/∂w| (right, log scale) at every step of the same "
                   f"four runs (η = {lr:g}); solid: {losses[0]}, dashed: {losses[-1]}. Under the quadratic cost from "
                   "(2, 2) the gradient starts at about 0.017 (σ'(4) ≈ 0.018 times a ≈ 0.98) and only grows as "
                   "z leaves the saturated tail; cross-entropy starts at |a − y| ≈ 0.98.")

    # Table: outputs at steps 0, 150, 300 against the text.
    rows = []
    for lr in lrs:
        for loss in losses:
            for init in inits:
                r = _sel(ds, learning_rate=lr).sel(loss=loss, init=init)
                o = [float(r.traj_output.sel(step=t)) for t in (0, 150, 300) if t in steps]
                text = TEXT_NUMBERS.get(init, {}) if (loss == "quadratic" and abs(lr - 0.15) < 1e-12) else {}
                ref = f"{text['initial']} → {text['final']}" if text else "—"
                rows.append([loss, init, f"{lr:g}", *[f"{v:.4f}" for v in o], ref])
    from lossjax.plots import markdown_table

    out.table(markdown_table(["loss", "init (w, b)", "η", "a at step 0", "a at step 150", "a at step 300", "text (seed 002)"], rows),
              "outputs",
              "Output a = σ(w + b) at steps 0, 150 and 300 of each run, next to the values seed 002 reports "
              "for the quadratic cost (initial 0.82 / 0.98, final about 0.09 / 0.2).")

    # Table: the engine's summaries, and the plateau for several τ.
    taus = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2)
    rows = []
    for lr in lrs:
        for loss in losses:
            for init in inits:
                r = _sel(ds, learning_rate=lr).sel(loss=loss, init=init)
                reached = _reached_traj(r, th)
                plats = [int(plateau_lengths(r.traj_loss.values, reached, tau)) for tau in taus]
                rows.append([loss, init, f"{lr:g}", int(r.steps_to_target), int(r.longest_plateau),
                             _outcome_name(int(r.outcome)), int(r.zero_grad_steps), int(r.tiny_grad_steps),
                             *plats])
    out.table(markdown_table(["loss", "init", "η", "steps_to_target", "longest_plateau", "outcome",
                              "zero_grad_steps", "tiny_grad_steps", *[f"plateau τ={t:g}" for t in taus]], rows),
              "summary",
              f"The engine's measures for each run (target: {th['target_metric']} ≤ {th['target']}; "
              f"plateau τ = {th['plateau_tau']:g}; 'slow' needs a plateau of ≥ {th['slow_plateau_steps']} steps). "
              "The last columns recompute longest_plateau from the recorded loss for other τ "
              "(the τ = 1e-3 column equals the engine's value): the text's 'about 150 steps' "
              "is a visual impression, and what the definition gives depends on τ.")
    return out.finish()


def _reached_traj(r: xr.Dataset, th: dict) -> np.ndarray:
    if th["target_metric"] == "loss":
        return r.traj_loss.values <= th["target"]
    if th["target_metric"] == "error":
        return r.traj_error.values <= th["target"]
    return r.traj_accuracy.values >= th["target"]
