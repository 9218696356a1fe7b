"""The notebook users start from, docs/notebooks/quickstart.ipynb, executed as a user would run it.

It runs in a fresh Jupyter kernel (nbclient) with the environment a user has: no XLA_FLAGS from this
test session, so `import lossjax` must expose one XLA host device per core, as the CLI does. Its
sweeps are small already (21 x 21 neurons x 100 steps, 8 MLPs x 50 steps: about 30 s on 2 cores).
The committed file carries no outputs, so a stale output can never pass for a working notebook.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbclient
import nbformat

from lossjax import host

NOTEBOOK = Path(__file__).resolve().parents[1] / "docs" / "notebooks" / "quickstart.ipynb"


def _text(cell) -> str:
    parts = []
    for out in cell.get("outputs", []):
        if out.output_type == "stream":
            parts.append(out.text)
        elif out.output_type in ("execute_result", "display_data"):
            parts.append(out["data"].get("text/plain", ""))
    return "".join(parts)


def test_committed_notebook_has_no_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code
    assert all(not c.outputs and c.execution_count is None for c in code)


def test_quickstart_notebook_runs(tmp_path, monkeypatch):
    monkeypatch.delenv("XLA_FLAGS", raising=False)  # the user's environment, not the test session's
    monkeypatch.delenv(host.DEVICES_VARIABLE, raising=False)
    monkeypatch.setenv("LOSSJAX_QUICKSTART_OUT", str(tmp_path))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError on any failing cell
    text = "\n".join(_text(c) for c in nb.cells if c.cell_type == "code")
    # Same devices as the CLI: one XLA CPU device per core.
    devices = re.search(r"devices: \[(.*)\]", text).group(1)
    assert devices.count("CpuDevice") == host.cpu_cores()
    # Both sweeps were written where the notebook was told, and read back.
    assert (tmp_path / "neuron" / "results.zarr").exists() and (tmp_path / "mlp" / "results.zarr").exists()
    # The texts' saturated neuron: the quadratic cost stalls from (6, 6), cross-entropy learns everywhere.
    labels = next(c for c in nb.cells if c.cell_type == "code" and "outcome_labels(" in c.source)
    assert _text(labels).splitlines()[0] == "stalled"
    assert re.search(r"bce\s+1\.0+\s+0\.0+\s+0\.0+\s+0\.0", text)
    # Two figures (atlas, gradient profile) and the one-row-per-run frame: 2 depths x 4 seeds.
    figures = sum(1 for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {}))
    assert figures == 2
    assert "(8, " in text
