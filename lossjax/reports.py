"""Reports: the figures and tables a study draws from a sweep's results, found by reference.

A study lives beside its sweep files (``experiments/<study>/``): the TOML files and a Python
module whose functions ``report(ds, folder) -> list[Path]`` read the labelled results and write
figures (PNG) and tables (Markdown) into the results folder; they do no training. A sweep names
its report explicitly, as ``"<module file>:<function>"`` relative to the sweep file::

    report = "report.py:report_nielsen"      # experiments/neuron/report.py, function report_nielsen

Nothing is registered by importing: :func:`load` imports the named file (once per process) and
returns the named function. ``lossjax run SPEC`` calls the sweep's report after saving the
results, and ``lossjax report FOLDER`` reruns it on saved results (the results remember the
reference, resolved against the folder ``lossjax run`` was started from).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import xarray as xr

Report = Callable[[xr.Dataset, Path], list[Path]]


class ReportError(ValueError):
    """A report reference is malformed, or names a file or function that does not exist."""


def split_reference(reference: str) -> tuple[str, str]:
    """``"dir/report.py:fn"`` → ``("dir/report.py", "fn")``; raises :class:`ReportError` if malformed."""
    path, sep, function = str(reference).rpartition(":")
    if not sep or not path.endswith(".py") or not function.isidentifier():
        raise ReportError(
            f"report reference {reference!r} must be '<file>.py:<function>', e.g. 'report.py:report_nielsen'"
        )
    return path, function


def resolve(reference: str, base: str | os.PathLike) -> str:
    """The reference with its file made relative to the current folder (absolute if outside it).

    ``base`` is the folder the reference is relative to (the sweep file's folder). Raises
    :class:`ReportError` if the file does not exist.
    """
    path, function = split_reference(reference)
    file = (Path(base) / path).resolve()
    if not file.is_file():
        raise ReportError(f"report file {str(Path(base) / path)!r} (from reference {reference!r}) does not exist")
    try:
        shown = file.relative_to(Path.cwd().resolve())
    except ValueError:
        shown = file
    return f"{shown.as_posix()}:{function}"


def load_module(path: str | os.PathLike) -> ModuleType:
    """Imports a study module from its file path, once per process (cached in ``sys.modules``)."""
    file = Path(path).resolve()
    name = "lossjax_study_" + file.parent.name + "_" + hashlib.sha1(str(file).encode()).hexdigest()[:8]
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise ReportError(f"cannot import report file {str(file)!r}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def load(reference: str, base: str | os.PathLike = ".") -> Report:
    """The report function named by ``reference`` (relative to ``base``)."""
    path, function = split_reference(reference)
    file = Path(base) / path
    if not file.is_file():
        raise ReportError(f"report file {str(file)!r} (from reference {reference!r}) does not exist")
    module = load_module(file)
    fn = getattr(module, function, None)
    if not callable(fn):
        public = sorted(n for n, v in vars(module).items() if n.startswith("report") and callable(v))
        raise ReportError(f"{str(file)!r} has no function {function!r}; its reports: {', '.join(public) or '(none)'}")
    return fn


def make_report(reference: str, ds: xr.Dataset, folder: str | os.PathLike, base: str | os.PathLike = ".") -> list[Path]:
    """Runs the report named by ``reference`` on ``ds``, writing into ``folder``."""
    return load(reference, base)(ds, Path(folder))
