"""The benchmark's output: the rows as a text table and as a bar chart (matplotlib, Agg)."""

from __future__ import annotations

import dataclasses

import math
from collections.abc import Sequence


__all__ = ["format_table", "plot_bench"]


@dataclasses.dataclass
class Row:
    """One line of the table: an implementation timed on a workload."""

    workload: str
    implementation: str
    models: int
    steps: int
    seconds: float | None  # None: skipped (see note)
    compile_seconds: float | None = None
    note: str = ""
    max_rel_diff: float | None = None  # max |Δ loss_final| / loss_final against numpy, same models
    speedup: float | None = None  # lossjax model-steps/s ÷ this row's
    peak_share: float | None = None  # MLP rows: GFLOP/s as a share of the machine's sgemm peak

    @property
    def model_steps_per_s(self) -> float | None:
        if not self.seconds:
            return None
        return self.models * self.steps / self.seconds


def format_table(rows: Sequence[Row]) -> str:
    """The rows as a fixed-width text table."""
    header = (
        "workload", "implementation", "models", "steps", "seconds", "compile s", "model-steps/s",
        "lossjax ×", "max rel Δloss", "% sgemm", "note",
    )  # fmt: skip
    lines = []
    for r in rows:
        rate = r.model_steps_per_s
        lines.append((
            r.workload, r.implementation, f"{r.models:,}", str(r.steps),
            "-" if r.seconds is None else f"{r.seconds:.3f}",
            "" if r.compile_seconds is None else f"{r.compile_seconds:.2f}",
            "-" if rate is None else f"{rate:.3g}",
            "-" if r.speedup is None else f"{r.speedup:.3g}",
            "" if r.max_rel_diff is None else f"{r.max_rel_diff:.1e}",
            "" if r.peak_share is None else f"{100 * r.peak_share:.1f}",
            r.note,
        ))  # fmt: skip
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]

    def fmt(cells):  # text columns left-aligned, numbers right-aligned
        return "  ".join(c.ljust(w) if i in (0, 1, 10) else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([fmt(header), fmt(["-" * w for w in widths]), *map(fmt, lines)]).rstrip()


def plot_bench(rows: Sequence[Row], path: str) -> None:
    """Bar chart of model-steps/s per implementation (log scale), one panel per workload."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    workloads = list(dict.fromkeys(r.workload for r in rows))
    fig, axes = plt.subplots(1, len(workloads), figsize=(6.5 * len(workloads), 4), squeeze=False)
    for ax, workload in zip(axes[0], workloads):
        timed = [r for r in rows if r.workload == workload and r.seconds]
        labels = [r.implementation for r in timed]
        rates = [r.model_steps_per_s for r in timed]
        colors = ["tab:blue" if r.implementation.startswith("lossjax") else "tab:gray" for r in timed]
        left = 10 ** math.floor(math.log10(min(rates)))  # bars start at a round decade
        ax.barh(labels, [v - left for v in rates], left=left, color=colors)
        ax.set_xscale("log")
        ax.set_xlim(left, max(rates) * 20)  # room for the labels
        ax.invert_yaxis()
        for i, r in enumerate(timed):
            text = f"{rates[i]:.3g}/s" + ("" if r.speedup == 1 else f"   lossjax ×{r.speedup:.3g}")
            ax.annotate(text, (rates[i], i), xytext=(4, 0), textcoords="offset points", va="center", fontsize=8)
        first = timed[0]
        ax.set_title(f"{workload}: {first.models:,} models × {first.steps} steps")
        ax.set_xlabel("model-steps per second (log scale)")
    fig.suptitle("lossjax ×r: lossjax's model-steps/s is r times that row's", fontsize=9, y=0.02, va="bottom")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)
