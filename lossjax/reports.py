"""Reports: figures and tables made from a sweep's results, named by a sweep's ``report`` key.

A report is a function ``report(ds, folder) -> list[Path]`` that reads the labelled results
and writes figures (PNG) and tables (Markdown) into the results folder; it does no training.
``lossjax run SPEC`` calls the sweep's report after saving the results, and
``lossjax report FOLDER`` reruns it on saved results.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import xarray as xr

Report = Callable[[xr.Dataset, Path], list[Path]]

REPORTS: dict[str, tuple[Report, str]] = {}


def register(name: str, description: str):
    def wrap(fn: Report) -> Report:
        REPORTS[name] = (fn, description)
        return fn

    return wrap


def make_report(name: str, ds: xr.Dataset, folder: Path) -> list[Path]:
    if name not in REPORTS:
        raise ValueError(f"unknown report {name!r}; allowed: {', '.join(REPORTS) or '(none)'}")
    return REPORTS[name][0](ds, Path(folder))


# The studies register their reports on import.
from lossjax import study_neuron  # noqa: E402,F401
from lossjax import study_mlp  # noqa: E402,F401
from lossjax import study_catalogue  # noqa: E402,F401
