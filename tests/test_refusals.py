"""Refusals before training: every input below gets a one-line error, exit code 2, and nothing
written (no results folder, no traceback). Each goes through ``lossjax.cli.main``, as a user's
command would; none reaches a compile."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from lossjax import cli, host, preflight
from lossjax.io import results

BASE = """\
name = "refuse"

[data]
dataset = "single"

[train]
steps = 5
loss = "quadratic"
learning_rate = 0.15

[init]
w = [0.6, 2.0]
b = 0.9
"""

MLP = """\
name = "refuse-mlp"

[model]
kind = "mlp"
depth = 1
width = 100000000

[data]
dataset = "moons"

[train]
steps = 5
loss = "bce"
"""

REPO = Path(__file__).parents[1]


def edit(old: str, new: str) -> str:
    assert old in BASE
    return BASE.replace(old, new)


#: id -> (sweep text (str or bytes), extra arguments, words the message must contain)
CASES = {
    "latin1-sweep-file": (BASE.replace('"refuse"', '"caf\xe9"').encode("latin-1"), [], ["UTF-8"]),
    "memory-nan": (BASE + "[run]\nmemory_mb = nan\n", [], ["memory_mb"]),
    "memory-inf": (BASE + "[run]\nmemory_mb = inf\n", [], ["memory_mb"]),
    "programs-misspelt": (BASE + '[run]\nprograms = "fewst"\n', [], ["programs", "per_architecture, auto, fewest"]),
    "seed-2**32": (edit("learning_rate = 0.15", "learning_rate = 0.15\nseed = 4294967296"), [], ["seed"]),
    "steps-2**31": (edit("steps = 5", "steps = 2147483648"), [], ["steps"]),
    "n-train-1e10": (edit('dataset = "single"', 'dataset = "moons"\nparams = { n_train = 10000000000 }')
                     .replace("[init]\nw = [0.6, 2.0]\nb = 0.9\n", ""), [], ["n_train"]),
    "report-of-another-study": (
        f'report = "{(REPO / "experiments/mlp/report.py").as_posix()}:report_depth"\n' + BASE, [], ["report", "fit"]),
    "bce-target-5": (edit('loss = "quadratic"', 'loss = "bce"').replace('dataset = "single"', 'dataset = "single"\ntarget = 5.0'),
                     [], ["target", "[0, 1]"]),
    "negative-metrics-target": (BASE + "[metrics]\ntarget = -0.1\n", [], ["target"]),
    "softmax-ce-one-output": (edit('loss = "quadratic"', 'loss = "softmax_ce"'), [], ["softmax_ce", "outputs"]),
    "out-empty": (BASE, ["--out", ""], ["--out"]),
    "name-300-characters": (BASE.replace('"refuse"', '"' + "n" * 300 + '"'), ["NO-OUT"], ["name", "100"]),
    "mlp-width-1e8": (MLP, [], ["memory"]),
    "call-beyond-device-memory": (MLP.replace("width = 100000000", "width = 4096"), [], ["device memory", "memory_mb"]),
    "runs-1e9-beyond-disk": (edit("w = [0.6, 2.0]\nb = 0.9", "w = { start = -6.0, stop = 6.0, num = 31623 }\n"
                                  "b = { start = -6.0, stop = 6.0, num = 31623 }"), [], ["disk", "GiB"]),
    "out-is-a-file": (BASE, ["--out", "FILE"], ["is a file"]),
    "out-under-a-file": (BASE, ["--out", "FILE/sub"], ["is a file"]),
    "sweep-is-a-directory": (None, [], ["directory"]),
    "update-rounding-misspelt": (edit('loss = "quadratic"', 'loss = "quadratic"\nupdate_rounding = "stochastik"'), [],
                                 ["update_rounding", "stochastik", "nearest, stochastic, kahan"]),
}


@pytest.fixture
def no_disk_cache(monkeypatch):
    monkeypatch.setattr(host, "use_compilation_cache", lambda: None)


@pytest.mark.parametrize("case", list(CASES))
def test_refused_with_one_line_and_exit_2(case, tmp_path, capsys, monkeypatch, no_disk_cache):
    text, extra, words = CASES[case]
    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "sweep.toml"
    if text is None:
        spec.mkdir()
    else:
        spec.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    (tmp_path / "FILE").write_text("a file")
    if case == "runs-1e9-beyond-disk":
        monkeypatch.setattr(preflight, "free_disk", lambda folder: 10 << 30)  # 10 GiB free
    if case == "call-beyond-device-memory":  # as on an accelerator with 8 MiB (a call of one run needs ~14 MiB)
        monkeypatch.setattr(preflight, "device_memory", lambda device: 8 << 20)
    out = tmp_path / "out"
    args = ["--out", str(out)]
    if extra:
        args = [a if a not in ("FILE", "FILE/sub") else str(tmp_path / a) for a in extra if a != "NO-OUT"]
    before = sorted(p.name for p in tmp_path.iterdir())
    code = cli.main(["run", str(spec), "--quiet", *args])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.startswith("lossjax: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written
    assert not (tmp_path / "results").exists()


def test_unwritable_folder_is_refused(tmp_path, capsys, no_disk_cache):
    if os.geteuid() == 0:
        pytest.skip("root writes anywhere")
    spec = tmp_path / "sweep.toml"
    spec.write_text(BASE)
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    code = cli.main(["run", str(spec), "--quiet", "--out", str(locked / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "cannot be written" in err and not (locked / "out").exists()


def test_report_with_unknown_name_exits_2(tmp_path, capsys):
    xr.Dataset({"a": ("x", np.arange(3.0))}, attrs={"lossjax_format": 2}).to_netcdf(
        tmp_path / results.RESULTS_FILE, engine="h5netcdf")
    code = cli.main(["report", str(tmp_path), "--name", "bogus"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("lossjax: error:") and "bogus" in err and "Traceback" not in err
