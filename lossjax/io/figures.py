"""Plotting helpers shared by the reports (matplotlib, Agg backend; no computation here).

Figures and tables are written atomically (temporary file + ``os.replace``), like results.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from lossjax.io.atomic import atomic_write  # noqa: E402

OUTCOME_COLOURS = {"converged": "#2b8a3e", "slow": "#f08c00", "stalled": "#c92a2a", "diverged": "#5f3dc4"}


#: False inside :func:`not_rendered`.
_RENDER = [True]


@contextlib.contextmanager
def not_rendered() -> Iterator[None]:
    """Within it, :func:`save_figure` closes figures without rendering or writing them: a report
    tried on stand-in results before training (``lossjax.preflight.check_report``) reads every
    variable it needs but skips the rendering (about 1 s a figure)."""
    _RENDER.append(False)
    try:
        yield
    finally:
        _RENDER.pop()


def save_figure(fig: "plt.Figure", path: str | Path, *, dpi: int = 120) -> Path:
    """Saves ``fig`` as PNG to ``path`` atomically and closes it (see :func:`not_rendered`)."""
    path = Path(path)
    if _RENDER[-1]:
        atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png"))
    plt.close(fig)
    return path


def save_text(text: str, path: str | Path) -> Path:
    """Writes a table (Markdown) or caption atomically."""
    path = Path(path)
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return path


def markdown_table(header: list[str], rows: list[list]) -> str:
    """A GitHub-flavoured Markdown table; floats are formatted with 4 significant digits."""

    def fmt(v):
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)

    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"
