"""Tests for lossjax.datasets: shapes, dtypes, determinism, and correctness by construction."""

from __future__ import annotations

import numpy as np
import pytest

from lossjax.datasets import DATASETS, Dataset, make_dataset

SYNTHETIC = ["blobs1d", "blobs2d", "xor"]


def _check_common(ds: Dataset) -> None:
    """Contract shared by every dataset: dtypes, ranks, matching row counts, label encoding."""
    arrays = [ds.x_train, ds.y_train, ds.x_test, ds.y_test]
    for a in arrays:
        assert isinstance(a, np.ndarray)
        assert a.dtype == np.float64
        assert a.ndim == 2
        assert np.all(np.isfinite(a))
    assert ds.x_train.shape[0] == ds.y_train.shape[0] >= 1
    assert ds.x_test.shape[0] == ds.y_test.shape[0]
    assert ds.x_train.shape[1] == ds.x_test.shape[1]
    assert ds.y_train.shape[1] == ds.y_test.shape[1]
    assert isinstance(ds.n_classes, int)
    assert isinstance(ds.description, str) and ds.name in ds.description
    if ds.n_classes == 2:
        assert ds.y_train.shape[1] == 1
    else:
        assert ds.n_classes > 2
        assert ds.y_train.shape[1] == ds.n_classes
        for y in (ds.y_train, ds.y_test):
            assert set(np.unique(y)) <= {0.0, 1.0}
            np.testing.assert_array_equal(y.sum(axis=1), 1.0)


def _labels(y: np.ndarray) -> np.ndarray:
    return y[:, 0].astype(int) if y.shape[1] == 1 else y.argmax(axis=1)


# ----------------------------------------------------------------------------- registry


def test_registry_entries_are_complete():
    for name, info in DATASETS.items():
        assert callable(info.maker)
        assert isinstance(info.description, str) and "\n" not in info.description
        with pytest.raises(TypeError):
            info.params["new"] = 1  # read-only defaults


def test_unknown_name_lists_allowed_names():
    with pytest.raises(ValueError, match="unknown dataset 'nope'") as err:
        make_dataset("nope")
    for name in DATASETS:
        assert name in str(err.value)


def test_unknown_parameter_lists_allowed_parameters():
    with pytest.raises(ValueError, match="'n_trian'") as err:
        make_dataset("blobs1d", n_trian=3)
    for p in DATASETS["blobs1d"].params:
        assert p in str(err.value)


@pytest.mark.parametrize(
    "name, param, value",
    [
        ("blobs1d", "n_train", 0),
        ("blobs1d", "n_test", -1),
        ("blobs1d", "n_train", 2.5),
        ("blobs1d", "n_train", True),
        ("blobs1d", "separation", 0.0),
        ("blobs1d", "noise", -0.1),
        ("blobs2d", "noise", float("nan")),
        ("blobs2d", "separation", "wide"),
        ("xor", "n_test", 0),
        ("xor", "noise", -1.0),
        ("single", "y", 2.0),
        ("single", "x", []),
        ("single", "x", [[1.0, 2.0]]),
        ("single", "x", "one"),
    ],
)
def test_bad_values_name_the_parameter(name, param, value):
    with pytest.raises(ValueError, match=f"'{param}'"):
        make_dataset(name, **{param: value})


def test_bad_seed():
    with pytest.raises(ValueError, match="'seed'"):
        make_dataset("blobs1d", seed=-1)


def test_noise_too_large_for_margin_is_an_error():
    with pytest.raises(ValueError, match="'noise'"):
        make_dataset("blobs1d", separation=1e-4, noise=10.0)


# ----------------------------------------------------------------------------- generic


@pytest.mark.parametrize("name", SYNTHETIC)
def test_defaults_shapes_and_dtypes(name):
    ds = make_dataset(name)
    _check_common(ds)
    assert ds.name == name
    defaults = DATASETS[name].params
    assert ds.x_train.shape[0] == defaults["n_train"]
    assert ds.x_test.shape[0] == defaults["n_test"]


@pytest.mark.parametrize("name", SYNTHETIC)
def test_deterministic_per_seed(name):
    a = make_dataset(name, seed=5, n_train=40, n_test=12)
    b = make_dataset(name, seed=5, n_train=40, n_test=12)
    c = make_dataset(name, seed=6, n_train=40, n_test=12)
    for u, v in zip(a, b):
        if isinstance(u, np.ndarray):
            np.testing.assert_array_equal(u, v)
        else:
            assert u == v
    assert not np.array_equal(a.x_train, c.x_train)


@pytest.mark.parametrize("name", SYNTHETIC)
def test_train_set_does_not_depend_on_n_test(name):
    a = make_dataset(name, seed=1, n_train=40, n_test=10)
    b = make_dataset(name, seed=1, n_train=40, n_test=30)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_train, b.y_train)


@pytest.mark.parametrize("name", SYNTHETIC)
def test_two_class_labels_are_balanced(name):
    ds = make_dataset(name, n_train=101, n_test=50, **({"noise": 0.3} if name == "xor" else {}))
    for y in (ds.y_train, ds.y_test):
        counts = np.bincount(_labels(y), minlength=2)
        assert abs(counts[0] - counts[1]) <= 1


# ----------------------------------------------------------------------------- single


def test_single_defaults_are_the_texts_example():
    ds = make_dataset("single")
    _check_common(ds)
    np.testing.assert_array_equal(ds.x_train, [[1.0]])
    np.testing.assert_array_equal(ds.y_train, [[0.0]])
    assert ds.x_test.shape == (0, 1) and ds.y_test.shape == (0, 1)
    assert ds.n_classes == 2


def test_single_with_several_inputs():
    ds = make_dataset("single", x=[1.0, -2.0, 0.5], y=1.0)
    np.testing.assert_array_equal(ds.x_train, [[1.0, -2.0, 0.5]])
    np.testing.assert_array_equal(ds.y_train, [[1.0]])
    assert ds.x_test.shape == (0, 3)


# ----------------------------------------------------------------------------- blobs


@pytest.mark.parametrize("seed", range(5))
def test_blobs1d_separable_by_threshold_at_zero(seed):
    ds = make_dataset("blobs1d", seed=seed, n_train=500, n_test=500)
    for x, y in ((ds.x_train, ds.y_train), (ds.x_test, ds.y_test)):
        assert x.shape[1] == 1
        np.testing.assert_array_equal((x[:, 0] > 0).astype(float), y[:, 0])


@pytest.mark.parametrize("seed", range(5))
def test_blobs2d_separable_by_the_diagonal(seed):
    ds = make_dataset("blobs2d", seed=seed, n_train=500, n_test=500, noise=1.0)
    for x, y in ((ds.x_train, ds.y_train), (ds.x_test, ds.y_test)):
        assert x.shape[1] == 2
        np.testing.assert_array_equal((x[:, 0] + x[:, 1] > 0).astype(float), y[:, 0])


def test_blobs_statistics():
    """Class means sit at ±separation/2 along the direction; spread across it is `noise`."""
    sep, noise = 3.0, 0.4
    ds = make_dataset("blobs2d", seed=0, n_train=20000, n_test=1, separation=sep, noise=noise)
    u = np.array([1.0, 1.0]) / np.sqrt(2.0)
    v = np.array([1.0, -1.0]) / np.sqrt(2.0)
    y = ds.y_train[:, 0]
    for label, sign in ((1.0, 1.0), (0.0, -1.0)):
        pts = ds.x_train[y == label]
        assert abs((pts @ u).mean() - sign * sep / 2) < 0.02
        assert abs((pts @ v).std() - noise) < 0.02
    assert abs(ds.x_train @ u).min() > 0


def test_blobs_without_noise_sit_on_the_centres():
    ds = make_dataset("blobs1d", noise=0.0, separation=4.0, n_train=6)
    np.testing.assert_array_equal(np.sort(ds.x_train[:, 0]), [-2, -2, -2, 2, 2, 2])


# ----------------------------------------------------------------------------- xor


def test_xor_default_is_the_truth_table():
    ds = make_dataset("xor")
    _check_common(ds)
    rows = {tuple(x) + (y,) for x, y in zip(ds.x_train, ds.y_train[:, 0])}
    assert rows == {(-1, -1, 0), (-1, 1, 1), (1, -1, 1), (1, 1, 0)}


@pytest.mark.parametrize("noise", [0.1, 0.5, 2.0])
def test_xor_labels_correct_by_construction(noise):
    ds = make_dataset("xor", seed=3, n_train=400, n_test=400, noise=noise)
    for x, y in ((ds.x_train, ds.y_train), (ds.x_test, ds.y_test)):
        expected = (np.sign(x[:, 0]) != np.sign(x[:, 1])).astype(float)
        np.testing.assert_array_equal(y[:, 0], expected)
        assert np.all(x != 0)
        assert np.all(np.abs(x) < 2)
    corners = np.sign(ds.x_train)
    _, counts = np.unique(corners, axis=0, return_counts=True)
    np.testing.assert_array_equal(counts, [100, 100, 100, 100])
