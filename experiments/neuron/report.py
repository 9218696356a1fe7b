"""The single-neuron study's reports: figures, Markdown tables and a README.md per results folder.

Each ``report_*`` function is named by a sweep file beside this module (``report =
"report.py:report_nielsen"``); it reads the labelled results, takes its numbers from
``analysis.py`` (the pure computations, loaded from beside this file) and writes PNG figures,
Markdown tables and a ``README.md`` that lists every figure and table with its caption and the
command that made it. Every caption sentence that states a finding formats the measured number
it rests on; the texts the study reproduces are described in ``docs/texts.md``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import xarray as xr

from lossjax import config, reports
from lossjax.core import metrics
from lossjax.io import figures, results
from lossjax.io.figures import markdown_table, plt

#: The pure computations, loaded by path (this folder is not a package); the same module object
#: as any other ``reports.load_module`` of the file.
analysis = reports.load_module(Path(__file__).with_name("analysis.py"))
values, select, groups = analysis.values, analysis.select, analysis.groups

DOCS_TEXTS = "docs/texts.md"


# --- Writing a results folder ---


def _command(ds: xr.Dataset) -> str:
    return f"lossjax run experiments/neuron/{ds.attrs['name']}.toml"


def _thresholds(ds: xr.Dataset) -> dict:
    return json.loads(ds.attrs["thresholds"])


def _description(ds: xr.Dataset) -> str:
    """The sweep's description: its current wording from the sweep file beside this module, else as saved."""
    sweep = Path(__file__).with_name(f"{ds.attrs['name']}.toml")
    return config.load_sweep(sweep).description if sweep.is_file() else ds.attrs.get("description", "")


def _target(th: dict) -> str:
    op = "≥" if th["target_metric"] == "accuracy" else "≤"
    return f"{th['target_metric']} {op} {th['target']}"


class _Writer:
    """Writes figures and tables into a results folder and collects their captions into README.md."""

    def __init__(self, ds: xr.Dataset, folder: Path, title: str, report: str):
        self.ds, self.folder, self.title = ds, Path(folder), title
        self.rerun = f"lossjax report results/{ds.attrs['name']} --name experiments/neuron/report.py:{report}"
        self.entries: list[str] = []
        self.paths: list[Path] = []
        self.summary = False  # the report wrote (or read) summary.nc

    def figure(self, fig, stem: str, caption: str) -> None:
        self.paths.append(figures.save_figure(fig, self.folder / f"{stem}.png"))
        self.entries.append(f"### {stem}.png\n\n![{stem}]({stem}.png)\n\n{caption} Made by `{_command(self.ds)}` "
                            f"(or, from the saved results, `{self.rerun}`).\n")

    def table(self, text: str, stem: str, caption: str) -> None:
        body = f"{caption} Made by `{_command(self.ds)}`.\n\n{text}"
        self.paths.append(figures.save_text(body, self.folder / f"{stem}.md"))
        self.entries.append(f"### {stem}.md\n\n{body}\n")

    def finish(self) -> list[Path]:
        attrs = self.ds.attrs
        head = (f"# {self.title}\n\n{_description(self.ds)}\n\n"
                f"Regenerate: `{_command(self.ds)}`. {attrs['n_runs']:,} runs; compiled in "
                f"{attrs['compile_time_s']:.1f} s, trained in {attrs['run_time_s']:.1f} s "
                f"(wall {attrs['wall_time_s']:.1f} s, backend {attrs['backend']}). "
                f"Thresholds: `{attrs['thresholds']}`. The texts this study reproduces: [{DOCS_TEXTS}](../../{DOCS_TEXTS}).\n\n")
        if self.summary:
            head += (f"Every table and figure below is made from `{results.SUMMARY_FILE}` (committed), the counts they "
                     f"show; the results themselves are not committed (size). Remake them from it: "
                     f"`lossjax report results/{attrs['name']}`.\n\n")
        self.paths.append(figures.save_text(head + "\n".join(self.entries), self.folder / "README.md"))
        return self.paths


def _label(combo: dict) -> list[str]:
    return [str(v) for v in combo.values()]


def _init_label(init: str) -> str:
    """``"w=2,b=2"`` → ``"(2, 2)"`` (other labels unchanged)."""
    parts = dict(p.split("=", 1) for p in init.split(",") if "=" in p)
    return f"({parts['w']}, {parts['b']})" if set(parts) == {"w", "b"} else init


def _num(v: float, fmt: str = ".3f") -> str:
    return "—" if np.isnan(v) else f"{v:{fmt}}"


def _range(xs, fmt: str = ".3f") -> str:
    xs = [x for x in xs if not np.isnan(x)]
    lo, hi = (f"{min(xs):{fmt}}", f"{max(xs):{fmt}}") if xs else ("—", "—")
    return lo if lo == hi else f"{lo}–{hi}"


# --- The text on the saturated sigmoid neuron ---


def _text_sentence(inits: list[str], losses: list[str], lr: float) -> str:
    """The reference numbers for the runs of the text's own setting shown here (the text's, not ours)."""
    said = []
    for init in inits:
        ref = analysis.text_reference("quadratic", init, lr) if "quadratic" in losses else {}
        if ref:
            plateau = f", after a plateau of about {ref['plateau']} steps" if "plateau" in ref else ""
            said.append(f"from {_init_label(init)} {ref['initial']} → about {ref['final']}{plateau}")
    if not said:
        return f"(The text's own runs use η = {analysis.TEXT_LEARNING_RATE:g}.)"
    return (f"Reference for the text's quadratic cost at η = {analysis.TEXT_LEARNING_RATE:g} ({DOCS_TEXTS}): "
            f"{'; '.join(said)}.")


def _run_sentence(s: dict, th: dict) -> str:
    outs = ", ".join(f"{a:.3f} at step {t}" for t, a in s["marks"])
    reach = (f"{_target(th)} reached at step {s['steps_to_target']}" if s["steps_to_target"] != metrics.NEVER
             else f"{_target(th)} not reached in {s['step_end']} steps")
    plateau = f", longest plateau {s['plateau']} steps" if s["plateau"] else ""
    return f"{s['loss']} from {_init_label(s['init'])}: a = {outs}; {reach}{plateau} ({s['outcome']})"


def report_nielsen(ds: xr.Dataset, folder: Path) -> list[Path]:
    out = _Writer(ds, folder, "The texts' saturated sigmoid neuron", "report_nielsen")
    th = _thresholds(ds)
    losses, inits, lrs = values(ds, "loss"), values(ds, "init"), values(ds, "learning_rate")
    steps = ds.step.values
    marks = [t for t in (0, 150, 300) if t in steps]
    taus = sorted({1e-4, 3e-4, 1e-3, 3e-3, 1e-2, th["plateau_tau"]})
    runs = analysis.nielsen_runs(ds, marks, th, taus)
    formula = ("With the quadratic cost ∂C/∂w = (a − y)σ'(z)x; with cross-entropy on the logits ∂C/∂w = (a − y)x. "
               if {"quadratic", "bce"} <= set(losses) else "")
    opt = ", ".join(values(ds, "optimizer"))

    for lr in lrs:
        d = select(ds, learning_rate=lr)
        these = [s for s in runs if s["learning_rate"] == lr]
        suffix = "" if len(lrs) == 1 else f"_lr{lr:g}"
        fig, axes = plt.subplots(len(inits), len(losses), figsize=(4.2 * len(losses), 3.0 * len(inits)),
                                 sharex=True, sharey=True, squeeze=False)
        for s in these:
            i, j = inits.index(s["init"]), losses.index(s["loss"])
            ax = axes[i, j]
            ax.plot(steps, d.sel(loss=s["loss"], init=s["init"]).traj_output, color="C0")
            for t, v in s["marks"]:
                ax.plot([t], [v], "o", color="C3", ms=4)
                ax.annotate(f"{v:.3f}", (t, v), textcoords="offset points", xytext=(4, 6), fontsize=8)
            ax.set_title(f"{s['loss']}, {s['init']}, η={lr:g}", fontsize=9)
            ax.set_ylim(-0.02, 1.02)
            ax.grid(alpha=0.3)
            if i == len(inits) - 1:
                ax.set_xlabel("step")
            if j == 0:
                ax.set_ylabel("output a = σ(w+b)")
        out.figure(fig, f"output_vs_step{suffix}",
                   f"Output a of the neuron at every step (η = {lr:g}, optimiser {opt}; data: "
                   f"{ds.attrs['dataset_description']}), one row per initial (w, b), one column per loss "
                   f"({', '.join(losses)}); the dots mark steps {', '.join(str(t) for t in marks)}. Measured: "
                   f"{'; '.join(_run_sentence(s, th) for s in these)}. {formula}{_text_sentence(inits, losses, lr)}")

        fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
        for loss in losses:
            for k, init in enumerate(inits):
                r, kw = d.sel(loss=loss, init=init), dict(color=f"C{k}", label=f"{loss}, {init}")
                axes[0].plot(steps, r.traj_logit, "-" if loss == losses[0] else "--", **kw)
                axes[1].plot(steps, np.abs(r.traj_grad_w), "-" if loss == losses[0] else "--", **kw)
        axes[0].set_ylabel("z = w·x + b")
        axes[1].set(ylabel="|∂C/∂w|", yscale="log")
        for ax in axes:
            ax.set_xlabel("step")
            ax.grid(alpha=0.3)
        axes[0].legend(fontsize=7)
        grads = "; ".join(
            f"{s['loss']} from {_init_label(s['init'])}: {s['g0']:.3g} at step 0 (z = {s['z0']:.2f}, σ'(z) = "
            f"{s['slope0']:.3g}, a = {s['a0']:.3f}), largest {s['g_peak']:.3g} at step {s['step_peak']} (z = {s['z_peak']:.2f})"
            for s in these)
        out.figure(fig, f"z_and_grad_vs_step{suffix}",
                   f"Pre-activation z = w + b (left) and |∂C/∂w| (right, log scale) at every step of the same "
                   f"runs (η = {lr:g}); solid: {losses[0]}, dashed: {losses[-1]}. {formula}Measured |∂C/∂w|: {grads}.")

    rows = [[s["loss"], s["init"], f"{s['learning_rate']:g}", *[f"{v:.4f}" for _, v in s["marks"]],
             f"{s['text']['initial']} → {s['text']['final']}" if s["text"] else "—"] for s in runs]
    said = " / ".join(str(v["initial"]) for v in analysis.TEXT_NUMBERS.values())
    final = " / ".join(str(v["final"]) for v in analysis.TEXT_NUMBERS.values())
    out.table(markdown_table(["loss", "init (w, b)", "η", *[f"a at step {t}" for t in marks], "reference"], rows),
              "outputs",
              f"Output a = σ(w + b) at steps {', '.join(str(t) for t in marks)} of each run, next to the reference values "
              f"for the quadratic-cost runs of the text on the saturated sigmoid neuron at η = {analysis.TEXT_LEARNING_RATE:g} from "
              f"{' and '.join(_init_label(i) for i in analysis.TEXT_NUMBERS)} (initial {said}, final about {final}; "
              f"{DOCS_TEXTS} says where each comes from).")

    rows = [[s["loss"], s["init"], f"{s['learning_rate']:g}", s["steps_to_target"], s["plateau"], s["outcome"],
             s["zero_grad_steps"], s["tiny_grad_steps"], *s["plateaus"]] for s in runs]
    same = sum(s["plateaus"][taus.index(th["plateau_tau"])] == s["plateau"] for s in runs)
    versus = "".join(
        f" The text describes its {s['loss']} run from {_init_label(s['init'])} as sitting on a plateau for about "
        f"{s['text']['plateau']} steps; recomputed here that run's plateau is {' / '.join(str(v) for v in s['plateaus'])} "
        f"steps for τ = {' / '.join(f'{t:g}' for t in taus)}." for s in runs if "plateau" in s["text"])
    out.table(markdown_table(["loss", "init", "η", "steps_to_target", "longest_plateau", "outcome",
                              "zero_grad_steps", "tiny_grad_steps", *[f"plateau τ={t:g}" for t in taus]], rows),
              "summary",
              f"The engine's measures for each run (target: {_target(th)}; plateau τ = {th['plateau_tau']:g}; 'slow' needs "
              f"a plateau of ≥ {th['slow_plateau_steps']} steps). The last columns recompute longest_plateau from the "
              f"recorded loss for other τ; at the engine's τ = {th['plateau_tau']:g} the recomputed value equals the "
              f"engine's longest_plateau in {same} of {len(runs)} runs.{versus}")
    return out.finish()


# --- The texts on non-differentiable objectives: accuracy, F1, IoU, the step activation ---


def _zero_gradient_sentences(summary: list[dict], steps: int) -> str:
    frozen = [s for s in summary if s["zero_all"] == 1.0]
    moving = [s for s in summary if s["zero_all"] < 1.0]
    said = []
    if frozen:
        said.append(
            f"In {len(frozen)} of {len(summary)} combinations the gradient is exactly 0 at all T = {steps} updates of every "
            f"run ({', '.join('/'.join(_label(s['combo'])) for s in frozen)}): the loss ends where it started in "
            f"{_range([s['loss_unchanged'] for s in frozen])} of their runs, {_range([s['reached'] for s in frozen])} of "
            f"runs reach the target, and of those that do, {_range([s['reached_at_step_0'] for s in frozen if s['reached'] > 0])} "
            "already have it at step 0.")
    if moving:
        said.append(
            f"In {'the other ' if frozen else 'all '}{len(moving)} ({', '.join('/'.join(_label(s['combo'])) for s in moving)}) "
            "the share of updates "
            f"with a zero gradient is {_range([s['zero_frac'] for s in moving])} and {_range([s['reached'] for s in moving])} "
            f"of runs reach the target (mean final accuracy {_range([s['accuracy'] for s in moving])}).")
    return " ".join(said)


def report_nondiff(ds: xr.Dataset, folder: Path) -> list[Path]:
    out = _Writer(ds, folder, "Non-differentiable objectives and the step activation", "report_nondiff")
    th = _thresholds(ds)
    steps = int(ds.steps)
    keys = [k for k in ("loss", "activation", "estimator") if k in ds.coords]
    batched = [d for d in ("learning_rate", "w0", "b0", "init", "seed") if d in ds.dims]
    summary = analysis.zero_gradient_summary(ds, keys)
    rows = [[*_label(s["combo"]), f"{s['zero_frac']:.3f}", f"{s['zero_all']:.3f}", f"{s['reached']:.3f}",
             f"{s['stalled']:.3f}", f"{s['accuracy']:.3f}", s["zero_min"], s["zero_max"]] for s in summary]
    n_runs = int(np.prod([ds.sizes[d] for d in batched])) if batched else 1
    found = _zero_gradient_sentences(summary, steps)
    out.table(markdown_table([*keys, "mean zero_grad_steps / T", "share with zero_grad_steps = T",
                              "share reaching target", "share stalled", "mean final accuracy", "min zero_grad_steps",
                              "max zero_grad_steps"], rows),
              "zero_gradients",
              f"Every objective × output activation × gradient estimator on {ds.attrs['dataset_description']} "
              f"({n_runs} runs each: the batched grid over {', '.join(batched)}; T = {steps} updates; target: "
              f"{_target(th)}). zero_grad_steps counts updates whose gradient is exactly 0.0 in both parameters. {found}")

    fig, ax = plt.subplots(figsize=(max(6, 0.45 * len(summary)), 4))
    xs = np.arange(len(summary))
    ax.bar(xs - 0.2, [s["reached"] for s in summary], 0.4, label="share reaching the target", color="#2b8a3e")
    ax.bar(xs + 0.2, [s["zero_all"] for s in summary], 0.4, label="share with zero gradient at every step", color="#c92a2a")
    ax.set_xticks(xs, [" / ".join(_label(s["combo"])) for s in summary], rotation=75, ha="right", fontsize=7)
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    out.figure(fig, "learned_vs_zero_grad",
               "For each objective / output activation / estimator: the share of runs that reach the target "
               f"(green) and the share whose gradient is exactly zero at every one of the T updates (red). {found}")

    if "exact" in values(ds, "estimator"):
        _perturbation_section(ds, out)
    return out.finish()


def _perturbation_section(ds: xr.Dataset, out: _Writer) -> None:
    x, y = analysis.training_data(ds)
    p = analysis.perturbation_experiment(x, y)
    eps, res64, res32, n = p["eps"], p["f64"], p["f32"], p["n"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    axes[0].semilogx(eps, res64["loss_changed"], "o-", ms=3, label="quadratic loss changes (float64)")
    axes[0].semilogx(eps, res32["loss_changed"], "s--", ms=3, label="quadratic loss changes (float32)")
    axes[0].semilogx(eps, res64["accuracy_changed"], "^-", ms=3, color="C3", label="accuracy changes")
    axes[0].set(xlabel="perturbation size ε", ylabel="share of perturbations")
    axes[0].legend(fontsize=7)
    axes[1].loglog(eps, res64["loss_delta"], "o-", ms=3, label="|Δ loss| (median of non-zero)")
    axes[1].loglog(eps, res64["accuracy_delta"], "^-", ms=3, color="C3", label="|Δ accuracy| (median of non-zero)")
    axes[1].axhline(1.0 / n, color="grey", lw=0.8, ls=":", label=f"1/n = {1 / n:.3g}")
    axes[1].set_xlabel("perturbation size ε")
    axes[1].legend(fontsize=7)
    for ax in axes:
        ax.grid(alpha=0.3)
    out.figure(fig, "perturbation",
               f"The argument of the text on why accuracy cannot be the training objective, measured. {p['n_points']} "
               f"random (w, b) of a sigmoid neuron on the {n} training points of this sweep's dataset, each perturbed "
               f"along {p['directions']} random unit directions by ε from {eps[0]:g} to {eps[-1]:g}. Left: the share of "
               "perturbations that change the quadratic loss (float64 and float32 evaluation) and that change the "
               "accuracy. Right: the median size of the non-zero changes. Measured in float64: the share of perturbations "
               f"that change the loss is at least {p['loss_changed_min']:.3f} at every ε, and the median |Δloss| grows as "
               f"ε^{p['loss_slope']:.2f}; no perturbation changes the accuracy for ε ≤ {_num(p['accuracy_still_up_to'], '.1e')}; "
               f"the share that does grows as ε^{_num(p['accuracy_slope'], '.2f')} (fit over the ε where it is non-zero) "
               f"and is {p['accuracy_changed_at_1']:.3f} at ε = {eps[-1]:g}; the smallest non-zero accuracy change at any "
               f"ε is {_num(p['accuracy_min_jump'], '.4g')} (1/n = {1 / n:.4g}). In float32, {p['f32_unchanged_at_smallest']:.3f} of "
               f"the perturbations at ε = {eps[0]:g} leave the loss unchanged.")
    rows = [[f"{e:.1e}", f"{l64:.3f}", f"{l32:.3f}", f"{a:.4f}", f"{dl:.3g}", _num(da, ".4g"), _num(mj, ".4g")]
            for e, l64, l32, a, dl, da, mj in zip(eps, res64["loss_changed"], res32["loss_changed"], res64["accuracy_changed"],
                                                   res64["loss_delta"], res64["accuracy_delta"], res64["accuracy_min_jump"])][::3]
    out.table(markdown_table(["ε", "loss changed (f64)", "loss changed (f32)", "accuracy changed", "median |Δloss|",
                              "median |Δaccuracy|", "smallest |Δaccuracy|"], rows),
              "perturbation",
              f"The numbers behind perturbation.png (every third ε): share of the {p['n_points']} × {p['directions']} "
              f"perturbations that change the loss / the accuracy, and the median non-zero change. n = {n} points, so an "
              f"accuracy change is a multiple of 1/n = {1 / n:.4g}.")


# --- The texts' cross-entropy variants and floating point ---


def report_ce(ds: xr.Dataset, folder: Path) -> list[Path]:
    out = _Writer(ds, folder, "Cross-entropy variants and floating point", "report_ce")
    steps = int(ds.steps)
    losses, dtypes, targets = values(ds, "loss"), values(ds, "dtype"), values(ds, "target")
    rows = analysis.gradient_at_start_rows(ds)
    z = rows[0]["z"]
    fig, axes = plt.subplots(1, len(losses), figsize=(3.3 * len(losses), 3.4), sharey=True, squeeze=False)
    axes = axes[0]
    floor = 1e-12
    for r in rows:
        ax = axes[losses.index(r["loss"])]
        ax.semilogy(z, np.maximum(r["grad"], floor), "-" if r["target"] == targets[0] else "--",
                    color=f"C{dtypes.index(r['dtype'])}", lw=1, label=f"{r['dtype']}, y={r['target']:g}")
    for ax, loss in zip(axes, losses):
        ax.set_title(loss, fontsize=9)
        ax.set_xlabel("initial z = w0 (x = 1, b0 = 0)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"|∂C/∂w| at step 0 (exact 0 drawn at {floor:g})")
    axes[0].legend(fontsize=6)
    found = []
    for loss in losses:
        mine = [r for r in rows if r["loss"] == loss]
        wrong = [f"{r['first_wrong']:.1f} ({r['dtype']}, y = {r['target']:g})" for r in mine if not np.isnan(r["first_wrong"])]
        whole = [f"{r['dtype']}, y = {r['target']:g}" for r in mine if r["zero"] == 1.0]
        said = (f"exactly 0 on the wrong side from |z| = {', '.join(wrong)}" if wrong
                else "never exactly 0 on the wrong side of this grid, in any dtype or target")
        if whole:
            said += f"; exactly 0 on the whole grid for {'; '.join(whole)}"
        found.append(f"{loss}: {said}")
    out.figure(fig, "grad_vs_z",
               "Gradient |∂C/∂w| at the first step as a function of the initial pre-activation z (x = 1), for each "
               f"loss (panels), {' / '.join(dtypes)} (colours) and target {targets[0]:g} (solid) or {targets[-1]:g} "
               "(dashed); an exact zero is drawn at the floor. The wrong side is z > 0 for target 0 and z < 0 for "
               f"target 1. Measured: {'. '.join(found)}.")
    table = [[r["loss"], r["dtype"], f"{r['target']:g}", f"{r['zero']:.3f}", f"{r['zero_wrong']:.3f}",
              "none" if np.isnan(r["first_wrong"]) else f"{r['first_wrong']:.1f}", f"{r['frozen']:.3f}",
              f"{r['stalled']:.3f}", f"{r['diverged']:.3f}"] for r in rows]
    out.table(markdown_table(["loss", "dtype", "target y", "share of z grid with zero gradient at step 0",
                              "same, where the output is wrong", "smallest |z| with zero gradient on the wrong side",
                              "share with zero_grad_steps = T", "share stalled", "share diverged"], table),
              "zero_gradient_z",
              f"Where the gradient is exactly zero at step 0, over the grid z ∈ [{z.min():g}, {z.max():g}] "
              f"({len(z)} points): 'wrong side' means z > 0 for target 0 (output above 0.5) or z < 0 for target 1. "
              f"zero_grad_steps = T means the run never moves in its T = {steps} updates; 'stalled' also counts runs that "
              "move but do not reach the target within T updates, 'diverged' runs whose loss or parameters became "
              "inf/NaN.")
    return out.finish()


# --- The text's piecewise-constant neuron ---


def report_pwc(ds: xr.Dataset, folder: Path) -> list[Path]:
    out = _Writer(ds, folder, "The piecewise-constant neuron", "report_pwc")
    summary = analysis.piecewise_constant_summary(ds)
    bins = analysis.DISTANCE_BINS
    centres = np.sqrt(np.maximum(bins[:-1], 1e-3) * bins[1:])
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for k, s in enumerate(summary):
        axes[1].plot(centres, s["by_distance"], "o-", ms=3, color=f"C{k}", label=f"sharp = {s['sharp']:g}")
        axes[0].plot(ds.w0.values, s["by_z"] + 1.1 * k, color=f"C{k}", lw=1)
        axes[0].text(ds.w0.values[0], 1.1 * k + 0.5, f"sharp {s['sharp']:g}", fontsize=7)
    for j in analysis.JUNCTURES:
        axes[0].axvline(j, color="grey", lw=0.6, ls=":")
    axes[0].set(xlabel="initial z = w0 (x = 1, b0 = 0)", ylabel="stall rate (offset per sharp)", yticks=[])
    axes[1].set(xscale="log", xlabel="initial output's distance to the nearest juncture (0.25, 0.5, 0.75)",
                ylabel="stall rate")
    axes[1].legend(fontsize=7)
    for ax in axes:
        ax.grid(alpha=0.3)
    by_sharp = lambda key: ", ".join(f"{s['sharp']:g}: {_num(s[key])}" for s in summary)  # noqa: E731
    out.figure(fig, "stall_vs_sharp_and_distance",
               "The piecewise-constant neuron of the text on non-differentiable metrics (three quarter-steps and a "
               "half-step made of sigmoids of slope `sharp`; 0 for z ≤ 0, 1 for z ≥ 1) trained on one example with the "
               "quadratic cost. Left: share of stalled runs as a function of the initial pre-activation z (averaged "
               "over targets and learning rates), one band per sharp; dotted lines mark the junctures 0.25, 0.5, 0.75. "
               "Right: the same against the initial output's distance to the nearest juncture value (binned; starts "
               f"with z ≤ 0 or z ≥ 1 have outputs 0 or 1, at distance 0.25, beyond the last bin {bins[-1]:g}). "
               f"Measured stall rate by sharp: {by_sharp('stalled')}. For initial z ≤ 0 or ≥ 1: {by_sharp('stalled_outside')}; "
               f"inside (0, 1): {by_sharp('stalled_inside')}, of which starts within {bins[1]:g} of a juncture: "
               f"{by_sharp('stalled_near')}; starts 0.05 to {bins[-1]:g} from the nearest juncture: {by_sharp('stalled_far')}; "
               f"starts {bins[-1]:g} or more from every juncture (outputs near 0 or 1): {by_sharp('stalled_ends')}.")
    extra = [c for c, _ in summary[0]["by_group"]]
    header = ["sharp", "stall rate (all runs)", *[" ".join(f"{k}={v:g}" for k, v in c.items()) for c in extra],
              "share with zero_grad_steps = T"]
    rows = [[f"{s['sharp']:g}", f"{s['stalled']:.3f}", *[f"{v:.3f}" for _, v in s["by_group"]], f"{s['frozen']:.3f}"]
            for s in summary]
    out.table(markdown_table(header, rows), "stall_rate",
              "Share of runs (initial z grid × learning rates × targets) whose outcome is 'stalled', by sharp, and "
              "split by learning rate and target.")
    return out.finish()


# --- The stall atlas ---


def report_atlas(ds: xr.Dataset, folder: Path) -> list[Path]:
    """The stall atlas's tables and figures, made from its summary (``summary.nc``, see
    ``analysis.atlas_summary``): written here from the results, or read as ``ds`` when the folder
    holds only the summary (the results of these sweeps are too large to commit)."""
    out = _Writer(ds, folder, f"Stall atlas: {ds.attrs['name']}", "report_atlas")
    th = _thresholds(ds)
    delta = th["saturation_delta"]
    steps = int(ds.steps)
    x, _ = analysis.training_data(ds)
    w0, b0 = ds.w0.values, ds.b0.values
    closed = xr.DataArray(analysis.saturated_closed_form(w0[:, None], b0[None, :], x, delta=delta),
                          dims=("w0", "b0"), coords={"w0": w0, "b0": b0})
    zstar = analysis.saturation_z(delta)
    lrs = values(ds, "learning_rate")
    ref_lr = min(lrs, key=lambda v: abs(math.log(v / analysis.TEXT_LEARNING_RATE)))
    region = analysis.saturation_regions(w0, b0, x, delta=delta)
    if not results.is_summary(ds):
        out.paths.append(results.save_summary(analysis.atlas_summary(ds, region, ref_lr), ds, folder, "report_atlas"))
        ds = out.ds = results.load_summary(folder)  # every number below is read from the file
    out.summary = True
    present = [k for k in ("loss", "activation", "optimizer", "dtype") if k in ds.dims]

    rows = [[*_label(r["combo"]), *[f"{v:.3f}" for v in r["per_lr"]], f"{r['stalled']:.3f}", f"{r['saturated']:.3f}",
             f"{r['unsaturated']:.3f}", f"{r['frozen']:.3f}", f"{r['any_zero']:.3f}", f"{r['tiny']:.3f}",
             f"{r['diverged']:.3f}"] for r in analysis.atlas_rows(ds, present)]
    out.table(markdown_table([*present, *[f"stalled η={lr:g}" for lr in lrs], "stalled (all η)", "stalled, saturated init",
                              "stalled, unsaturated init", "zero grad every step", "any zero-grad step", "mean tiny-grad share",
                              "diverged"], rows),
              "stall_rate",
              f"Stall rate: the share of the {len(w0)} × {len(b0)} grid of initial (w0, b0) ∈ [{w0.min():g}, {w0.max():g}]² "
              f"whose outcome is 'stalled' (target {_target(th)} not reached within T = {steps} "
              f"updates), for every {' × '.join(present)} and learning rate; then over all learning rates, split by whether "
              f"the initial unit is saturated by the closed form (min_n |w0·x_n + b0| > z* = {zstar:.3f}, δ = {delta:g}); "
              "the share of runs whose gradient is exactly zero at every step / at least one step; the mean share of "
              f"steps with gradient norm < {th['tiny_grad']:g}; and the diverged share. Data: {ds.attrs['dataset_description']}.")

    probed = analysis.probed(ds)
    if probed:
        rows = [[*_label(r["combo"]), r["runs"], *[f"{v:.4f}" for v in r["per_lr"]], f"{r['share']:.4f}"]
                for r in analysis.roundoff_rows(ds, present)]
        rows.append([*(["all"] * len(present)), int(ds.roundoff_decided.size), *[
            f"{float((select(ds.roundoff_decided, learning_rate=lr) == 1).mean()):.4f}" for lr in lrs],
            f"{float((ds.roundoff_decided == 1).mean()):.4f}"])
        eps = ", ".join(f"{d} {metrics.ROUNDOFF_EPSILON[d]:.3g}" for d in values(ds, "dtype"))
        out.table(markdown_table([*present, "runs", *[f"decided η={lr:g}" for lr in lrs], "decided (all η)"], rows),
                  "roundoff",
                  f"Runs decided by round-off: the share of the grid whose outcome or final loss (relative change > "
                  f"{th['roundoff_tolerance']:g}) changes when θ_0 is perturbed by a relative ε ({eps}) with a random "
                  "sign per parameter (`roundoff_decided`, defined in lossjax/core/metrics.py).")

    losses = values(ds, "loss")
    if "quadratic" in losses and "bce" in losses:
        rest = [k for k in ("activation", "optimizer", "dtype") if k in ds.dims]
        rows = [[*_label(r["combo"]), f"{r['learning_rate']:g}", f"{r['quadratic']:.3f}", f"{r['bce']:.3f}",
                 f"{r['quadratic_only']:.3f}", f"{r['bce_only']:.3f}"] for r in analysis.quadratic_vs_bce_rows(ds)]
        out.table(markdown_table([*rest, "η", "quadratic stalled", "bce stalled", "quadratic stalls, bce does not",
                                  "bce stalls, quadratic does not"], rows),
                  "quadratic_vs_bce",
                  "Sigmoid neuron, same grid of initial (w0, b0): the share where squared error (quadratic ½(y−a)²) "
                  "stalls and cross-entropy (on logits) does not, and the reverse.")

    if "saturated_init" in ds:  # a sigmoid output
        sat = ds.saturated_init > 0
        check = analysis.saturation_agreement(sat, closed, w0, b0, x, zstar)
        out.table(markdown_table(["grid points", "agree", "mismatches", "max |min|z| − z*| at a mismatch"],
                                 [[check["points"], f"{check['agree']:.6f}", check["mismatches"], f"{check['worst']:.2e}"]]),
                  "saturation_check",
                  f"The engine's saturated_init (σ' < δ/4 at θ_0, δ = {delta:g}, computed in the run's dtype) against the "
                  f"closed form min_n |w0·x_n + b0| > z* = 2·arccosh(1/√δ) = {zstar:.4f} on the whole grid.")

    # Heatmaps of steps_to_target (sigmoid, each optimiser × loss) with the closed-form boundary.
    opts, dtypes = values(ds, "optimizer"), values(ds, "dtype")
    names = {"high": "w0·x_n + b0 > z* for every n (output ≈ 1)", "low": "w0·x_n + b0 < −z* for every n (output ≈ 0)",
             "unsaturated": "unsaturated"}
    for dtype in dtypes if "steps_to_target" in ds else []:
        fig, axes = plt.subplots(len(opts), len(losses), figsize=(2.6 * len(losses) + 1, 2.5 * len(opts)),
                                 squeeze=False, sharex=True, sharey=True)
        cmap, shares, decided = plt.get_cmap("viridis").with_extremes(bad="#c92a2a"), [], []
        for i, opt in enumerate(opts):
            for j, loss in enumerate(losses):
                ax = axes[i, j]
                sel = dict(loss=loss, optimizer=opt, activation="sigmoid", dtype=dtype, learning_rate=ref_lr)
                v = select(ds.steps_to_target, **sel).transpose("b0", "w0").values.astype(float)
                v[v < 0] = np.nan
                im = ax.pcolormesh(w0, b0, np.ma.masked_invalid(v), cmap=cmap, vmin=0, vmax=steps, shading="auto")
                ax.contour(w0, b0, closed.transpose("b0", "w0").values.astype(float), levels=[0.5], colors="white",
                           linewidths=0.8, linestyles="--")
                if probed:  # cells decided by round-off: a black x
                    d = select(ds.roundoff_decided, **sel).transpose("w0", "b0").values == 1
                    wi, bi = np.nonzero(d)
                    ax.scatter(w0[wi], b0[bi], marker="x", s=6, linewidths=0.5, color="black")
                    decided.append(f"{loss}/{opt} {int(d.sum())}")
                ax.set_title(f"{loss}, {opt}", fontsize=8)
                if i == len(opts) - 1:
                    ax.set_xlabel("w0")
                if j == 0:
                    ax.set_ylabel("b0")
                shares.append(f"{loss}/{opt} " + " / ".join(
                    _num(share, ".2f") for share in analysis.stalled_by_region(select(ds, **sel), list(names))))
        fig.colorbar(im, ax=axes, shrink=0.8, label="steps_to_target (red: never = stalled)")
        stem = "steps_to_target" + ("" if len(dtypes) == 1 else f"_{dtype}")
        out.figure(fig, stem,
                   f"steps_to_target over the grid of initial (w0, b0) for each loss (columns) and optimiser (rows): sigmoid "
                   f"output, η = {ref_lr:g}, {dtype}; red: the target ({_target(th)}) is not reached in T = {steps} "
                   f"updates. The white dashed line is the closed-form boundary of the saturated region, min_n |w0·x_n + b0| "
                   f"= z* = {zstar:.2f} (σ'(z*) = δ·max σ', δ = {delta:g}); for one input x = 1 these are the lines "
                   f"w0 + b0 = ±z*. Data: {ds.attrs['dataset_description']}. Measured stalled share in the regions "
                   f"{' / '.join(names.values())}: {'; '.join(shares)}."
                   + (f" Black x: a cell decided by round-off (roundoff_decided = 1; cells per panel: "
                      f"{'; '.join(decided)})." if probed else ""))
    return out.finish()
