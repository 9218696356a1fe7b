"""The package's layering contract: every import runs down, and there are no cycles.

Layers, lowest first (a module may import its own layer and the layers below it):

    host      the machine: CPU cores, cache folder, XLA device setup (pure Python, before jax)
    core      pure JAX numerics (no I/O, no xarray, no matplotlib, no tqdm)
    io        files: atomic writes, results, figures
    data      datasets (read and cache files through io)
    reports   finds a study's report function by reference (imports no other lossjax layer)
    grid      a sweep's axes and their expansion into the batched grid
    config    the sweep schema, declared once, and its parser
    preflight refuses before training what would fail later (folder, memory, disk, values)
    distributed  several processes: jax.distributed, barriers, local spawning
    runner    compiles, chunks and shards a sweep
    bench     the benchmark
    cli       the command line

The imports are read from the source with :mod:`ast` (module level and inside functions), so the
test needs no import of lossjax and fails on a new upward import wherever it is written.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "lossjax"
LAYERS = ("host", "core", "io", "data", "reports", "grid", "config", "preflight", "distributed", "programs", "runner", "bench",
          "cli")
#: Third-party packages the pure core may import.
CORE_ALLOWED = {"jax", "optax", "flax", "numpy", "math", "dataclasses", "typing", "collections", "__future__",
                "numbers", "operator", "functools", "itertools"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES: dict[str, Path] = {}


def imports(path: Path) -> set[str]:
    """Absolute names of every module imported anywhere in the file."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            submodules = {f"{node.module}.{alias.name}" for alias in node.names} & set(MODULES)
            # `from pkg import submodule` imports the submodule; `from pkg import name`, the package.
            out.update(submodules or {node.module})
            if len(submodules) < len(node.names):
                out.add(node.module)
    return out


def layer(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "lossjax" and parts[1] in LAYERS else None


MODULES.update({module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))})


def internal_imports(name: str) -> set[str]:
    """The lossjax modules ``name`` imports (``from lossjax.core import metrics`` → lossjax.core.metrics)."""
    return {m for m in imports(MODULES[name]) if m in MODULES and m != name and m != "lossjax"}


@pytest.mark.parametrize("name", sorted(n for n in MODULES if layer(n)))
def test_imports_run_down(name):
    own = LAYERS.index(layer(name))
    for target in internal_imports(name):
        if layer(target) is None:
            continue
        assert LAYERS.index(layer(target)) <= own, f"{name} imports {target}, which sits above it"


@pytest.mark.parametrize("name", sorted(n for n in MODULES if layer(n) == "core"))
def test_core_is_pure(name):
    for target in imports(MODULES[name]):
        top = target.split(".")[0]
        if top == "lossjax":
            assert layer(target) in ("host", "core"), f"{name} imports {target}"
        else:
            assert top in CORE_ALLOWED, f"the pure core module {name} imports {target}"


def test_no_import_cycles():
    graph = {name: internal_imports(name) for name in MODULES}
    state: dict[str, int] = {}

    def visit(node, path):
        state[node] = 1
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path + [node, nxt]))
            if nxt not in state:
                visit(nxt, path + [node])
        state[node] = 2

    for node in graph:
        if node not in state:
            visit(node, [])


def test_every_module_has_a_layer():
    unplaced = [n for n in MODULES if n != "lossjax" and layer(n) is None]
    assert not unplaced, f"modules outside the declared layers: {unplaced}"


def test_the_layering_check_catches_an_upward_import(tmp_path):
    """The checker itself: a core module importing the runner is reported."""
    bad = tmp_path / "bad.py"
    bad.write_text("from lossjax import runner\nfrom lossjax.io import results\n")
    found = {m for m in imports(bad)}
    assert "lossjax.runner" in found and "lossjax.io.results" in found
    assert LAYERS.index(layer("lossjax.runner")) > LAYERS.index("core")


@pytest.mark.parametrize("name", sorted(MODULES))
def test_modules_stay_small(name):
    lines = MODULES[name].read_text(encoding="utf-8").count("\n")
    assert lines <= 520, f"{name} has {lines} lines; split it"
