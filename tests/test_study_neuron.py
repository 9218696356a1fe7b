"""The single-neuron study against the texts' numbers and against closed forms."""

import math

from pathlib import Path

import numpy as np
import pytest

from lossjax.core import metrics
from lossjax import runner
from lossjax.config import load_sweep
from lossjax import reports

# The study's pure computations (analysis.py); its reports (report.py) load them from beside themselves.
study_neuron = reports.load_module(Path(__file__).parents[1] / "experiments" / "neuron" / "analysis.py")
study_reports = reports.load_module(Path(__file__).parents[1] / "experiments" / "neuron" / "report.py")


@pytest.fixture(scope="module")
def nielsen():
    return runner.run_sweep(load_sweep("experiments/neuron/nielsen.toml"))


def test_nielsen_initial_outputs(nielsen):
    # the text on the saturated sigmoid neuron: "initial output 0.82" for (0.6, 0.9) and "0.98" for (2, 2); σ(1.5), σ(4) exactly.
    out = nielsen.output_initial.sel(loss="quadratic")
    assert out.sel(init="w=0.6,b=0.9") == pytest.approx(0.82, abs=0.005)
    assert out.sel(init="w=2,b=2") == pytest.approx(0.98, abs=0.005)
    assert out.sel(init="w=0.6,b=0.9") == pytest.approx(1 / (1 + math.exp(-1.5)), rel=1e-6)
    assert out.sel(init="w=2,b=2") == pytest.approx(1 / (1 + math.exp(-4.0)), rel=1e-6)


def test_nielsen_final_outputs(nielsen):
    # the text on the saturated sigmoid neuron: final output "about 0.09" and "about 0.2" after 300 steps of η = 0.15.
    out = nielsen.output_final.sel(loss="quadratic")
    assert out.sel(init="w=0.6,b=0.9") == pytest.approx(0.09, abs=0.01)
    assert out.sel(init="w=2,b=2") == pytest.approx(0.2, abs=0.01)
    # Cross-entropy ends far lower from both starts.
    assert float(nielsen.output_final.sel(loss="bce").max()) < 0.02


def test_nielsen_plateau(nielsen):
    # the text on the saturated sigmoid neuron: (2, 2) "sits on a plateau for about 150 steps". The engine's definition
    # (relative improvement < 1e-3 per step, before the target a <= 0.25) gives 117: within
    # the text's loose "about 150", so the tolerance is wide; (0.6, 0.9) has none.
    q = nielsen.sel(loss="quadratic")
    plateau = int(q.longest_plateau.sel(init="w=2,b=2"))
    assert 100 <= plateau <= 200
    assert int(q.longest_plateau.sel(init="w=0.6,b=0.9")) == 0
    assert metrics.OUTCOMES[int(q.outcome.sel(init="w=2,b=2"))] == "slow"
    assert metrics.OUTCOMES[int(q.outcome.sel(init="w=0.6,b=0.9"))] == "converged"
    assert (nielsen.outcome.sel(loss="bce") == metrics.CONVERGED).all()
    # Output at step 150 is still above 0.9 (the plateau is visible in the output).
    assert float(q.traj_output.sel(init="w=2,b=2", step=150)) > 0.9


def test_plateau_lengths_matches_engine(nielsen):
    th = {"target_metric": "error", "target": 0.25}
    for loss in ("quadratic", "bce"):
        for init in nielsen.init.values:
            r = nielsen.sel(loss=loss, init=init)
            reached = r.traj_error.values <= th["target"]
            got = study_neuron.plateau_lengths(r.traj_loss.values, reached, 1e-3)
            assert int(got) == int(r.longest_plateau)


def test_saturation_z_closed_form():
    zs = study_neuron.saturation_z(0.01)
    assert zs == pytest.approx(5.9865, abs=1e-4)
    s = 1 / (1 + math.exp(-zs))
    assert s * (1 - s) == pytest.approx(0.01 * 0.25, rel=1e-9)
    with pytest.raises(ValueError):
        study_neuron.saturation_z(0.0)


def test_saturation_boundary_against_measured_grid():
    w = np.linspace(-8, 8, 81)
    spec = {
        "name": "sat_check",
        "model": {"kind": "neuron", "activation": "sigmoid"},
        "data": {"dataset": "single", "params": {"x": 1.0, "y": 0.0}},
        "train": {"steps": 1, "loss": "quadratic", "learning_rate": 0.1},
        "init": {"w": [float(v) for v in w], "b": [float(v) for v in w]},
    }
    ds = runner.run_sweep(spec)
    measured = ds.saturated_init.transpose("w0", "b0").values > 0.5
    closed = study_neuron.saturated_closed_form(w[:, None], w[None, :], 1.0, delta=0.01)
    margin = np.abs(np.abs(w[:, None] + w[None, :]) - study_neuron.saturation_z(0.01))
    mismatch = measured != closed
    # Agreement everywhere except within float32 rounding of the boundary.
    assert np.all(margin[mismatch] < 1e-3)
    assert mismatch.sum() <= 2 * len(w)
    assert closed.mean() > 0.2  # the grid does reach into the saturated region


def test_closed_form_several_inputs():
    x = np.array([-1.0, 0.5, 2.0])
    # w = 0, b = 7: every z = 7 > z*: saturated; w = 4, b = 0: z = -4, 2, 8: not.
    got = study_neuron.saturated_closed_form(np.array([0.0, 4.0]), np.array([7.0, 0.0]), x)
    assert got.tolist() == [True, False]


def test_hard_objectives_and_step_have_zero_gradient_every_step():
    steps = 25
    base = {
        "data": {"dataset": "blobs1d", "params": {"n_train": 16, "n_test": 8}},
        "init": {"w": [-1.0, 0.5, 2.0], "b": [-0.5, 0.3]},
    }
    hard = dict(base, name="hard", model={"kind": "neuron", "activation": "sigmoid"},
                train={"steps": steps, "loss": ["zero_one", "one_minus_f1", "one_minus_iou"], "learning_rate": 1.0})
    step = dict(base, name="step", model={"kind": "neuron", "activation": "step"},
                train={"steps": steps, "loss": "quadratic", "learning_rate": 1.0})
    for spec in (hard, step):
        ds = runner.run_sweep(spec)
        assert (ds.zero_grad_steps == steps).all()
        assert (ds.loss_final == ds.loss_initial).all()  # nothing moved
    surrogate = dict(base, name="surrogate", model={"kind": "neuron", "activation": "sigmoid"},
                     train={"steps": steps, "loss": "soft_f1", "learning_rate": 1.0})
    ds = runner.run_sweep(surrogate)
    assert (ds.zero_grad_steps == 0).all()


def test_perturbation_known_answer():
    # One point at x = 0 (only b matters), target 1, b0 = c > 0: accuracy flips iff
    # c + ε·sin θ < 0, i.e. with probability 1/2 − arcsin(c/ε)/π for ε > c, else never.
    c = 0.1
    eps = np.array([0.05, 0.1, 0.2, 0.5, 1.0])
    res = study_neuron.perturbation_sensitivity(np.array([0.3]), np.array([c]), np.array([0.0]), np.array([1.0]),
                                                eps, directions=40000, seed=3)
    expected = np.where(eps > c, 0.5 - np.arcsin(np.minimum(c / eps, 1.0)) / np.pi, 0.0)
    np.testing.assert_allclose(res["accuracy_changed"], expected, atol=0.01)
    assert np.all(res["loss_changed"] == 1.0)  # float64: every perturbation with a b-component moves the loss
    flipped = ~np.isnan(res["accuracy_delta"])
    np.testing.assert_array_equal(res["accuracy_delta"][flipped], 1.0)  # n = 1: a jump of 1/n
    # Loss change is linear in ε for small ε: |ΔL| ≈ |dL/db| ε·|sin θ| (median |sin θ| = √2/2).
    a = 1 / (1 + math.exp(-c))
    slope = (a - 1) * a * (1 - a)
    assert res["loss_delta"][0] == pytest.approx(abs(slope) * 0.05 * math.sqrt(0.5), rel=0.05)


def test_juncture_distance():
    np.testing.assert_allclose(study_neuron.juncture_distance([0.0, 0.25, 0.4, 0.9]), [0.25, 0.0, 0.1, 0.15])
