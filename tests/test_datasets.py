"""Tests for lossjax.datasets: shapes, dtypes, determinism, and correctness by construction."""

from __future__ import annotations

import gzip
import os
import struct

import numpy as np
import pytest

from lossjax import data as datasets
from lossjax.data import (
    DATASETS,
    Dataset,
    DatasetFileNotFoundError,
    make_dataset,
    parse_idx,
    teacher_network,
)

SYNTHETIC = ["blobs1d", "blobs2d", "xor", "moons", "spirals", "teacher"]


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
        ("moons", "n_train", 0),
        ("moons", "noise", -1.0),
        ("spirals", "turns", 0.0),
        ("spirals", "noise", float("inf")),
        ("teacher", "depth", -1),
        ("teacher", "width", 0),
        ("teacher", "n_features", 0),
        ("teacher", "classes", 1),
        ("teacher", "n_test", 0),
        ("mnist1d", "n_train", 0),
        ("mnist1d", "n_train", 4001),
        ("mnist1d", "n_test", 1001),
        ("mnist", "path", None),
        ("fashion_mnist", "path", 3),
    ],
)
def test_bad_values_name_the_parameter(name, param, value):
    with pytest.raises(ValueError, match=f"'{param}'"):
        make_dataset(name, **{param: value})


def test_bad_seed():
    with pytest.raises(ValueError, match="'seed'"):
        make_dataset("blobs1d", seed=-1)
    with pytest.raises(ValueError, match="'seed'"):
        make_dataset("teacher", seed=1.5)
    with pytest.raises(ValueError, match="'seed' must be < 2\\*\\*32"):
        make_dataset("mnist1d", seed=2**32)


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


@pytest.mark.parametrize("name", [n for n in SYNTHETIC if n != "teacher"])  # teacher: by chance
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


# ----------------------------------------------------------------------------- moons, spirals


def test_moons_lie_on_their_half_circles_without_noise():
    ds = make_dataset("moons", seed=2, n_train=200, n_test=10, noise=0.0)
    x = ds.x_train + np.array([0.5, 0.25])  # undo the centring
    y = ds.y_train[:, 0]
    outer, inner = x[y == 0], x[y == 1]
    np.testing.assert_allclose(np.hypot(outer[:, 0], outer[:, 1]), 1.0, atol=1e-12)
    assert np.all(outer[:, 1] >= 0)
    np.testing.assert_allclose(np.hypot(inner[:, 0] - 1.0, inner[:, 1] - 0.5), 1.0, atol=1e-12)
    assert np.all(inner[:, 1] <= 0.5)


def test_spirals_without_noise_follow_their_arm():
    turns = 1.5
    ds = make_dataset("spirals", seed=2, n_train=300, n_test=10, noise=0.0, turns=turns)
    x, y = ds.x_train, ds.y_train[:, 0]
    r = np.hypot(x[:, 0], x[:, 1])
    assert np.all(r <= 1.0)
    # the angle of a point of radius r on arm c is 2 pi turns r + pi c (mod 2 pi)
    expected = 2 * np.pi * turns * r + np.pi * y
    diff = np.angle(np.exp(1j * (np.arctan2(x[:, 1], x[:, 0]) - expected)))
    np.testing.assert_allclose(diff, 0.0, atol=1e-9)


# ----------------------------------------------------------------------------- teacher


def _reference_teacher_labels(weights, x):
    """Independent forward pass: tanh hidden layers, linear output; sign or argmax."""
    h = x
    for w in weights[:-1]:
        h = np.tanh(np.einsum("ni,io->no", h, w))
    out = np.einsum("ni,io->no", h, weights[-1])
    return (out[:, 0] > 0).astype(int) if out.shape[1] == 1 else np.argmax(out, axis=1)


@pytest.mark.parametrize(
    "depth, width, n_features, classes",
    [(0, 4, 3, 2), (1, 16, 8, 2), (3, 8, 5, 2), (2, 12, 6, 4)],
)
def test_teacher_labels_match_reference_forward_pass(depth, width, n_features, classes):
    kw = dict(depth=depth, width=width, n_features=n_features, classes=classes)
    ds = make_dataset("teacher", seed=7, n_train=300, n_test=200, **kw)
    _check_common(ds)
    assert ds.n_classes == classes
    assert ds.x_train.shape == (300, n_features)
    weights = teacher_network(7, **kw)
    n_out = 1 if classes == 2 else classes
    expected_shapes = list(zip([n_features] + [width] * depth, [width] * depth + [n_out]))
    assert [w.shape for w in weights] == expected_shapes
    for x, y in ((ds.x_train, ds.y_train), (ds.x_test, ds.y_test)):
        np.testing.assert_array_equal(_labels(y), _reference_teacher_labels(weights, x))
    # both/all classes occur, and the inputs are standard normal
    assert len(np.unique(_labels(ds.y_test))) == classes
    assert abs(ds.x_test.mean()) < 0.1 and abs(ds.x_test.std() - 1) < 0.1


def test_teacher_weights_are_lecun_normal():
    weights = teacher_network(0, depth=1, width=400, n_features=300, classes=2)
    np.testing.assert_allclose(weights[0].std(), 1 / np.sqrt(300), rtol=0.02)
    np.testing.assert_allclose(weights[1].std(), 1 / np.sqrt(400), rtol=0.15)


def test_linear_teacher_is_a_sign_of_a_projection():
    ds = make_dataset("teacher", seed=1, depth=0, n_features=4, n_train=100, n_test=10)
    (w,) = teacher_network(1, depth=0, width=16, n_features=4, classes=2)
    np.testing.assert_array_equal(ds.y_train[:, 0], (ds.x_train @ w[:, 0] > 0).astype(float))


def test_teacher_is_the_same_for_train_and_test_and_sizes():
    a = make_dataset("teacher", seed=3, n_train=10, n_test=10)
    b = make_dataset("teacher", seed=3, n_train=20, n_test=5)
    np.testing.assert_array_equal(a.x_train, b.x_train[:10])
    np.testing.assert_array_equal(a.y_train, b.y_train[:10])


# ----------------------------------------------------------------------------- mnist1d


@pytest.fixture(scope="module")
def mnist1d_cache(tmp_path_factory):
    """A private cache dir, and a network guard: generating MNIST-1D must never download."""
    import requests

    def no_network(*args, **kwargs):
        raise AssertionError("mnist1d tried to use the network")

    with pytest.MonkeyPatch.context() as mp:
        cache = tmp_path_factory.mktemp("lossjax-cache")
        mp.setenv("LOSSJAX_CACHE", str(cache))
        mp.setattr(requests, "get", no_network)
        yield cache


@pytest.fixture(scope="module")
def mnist1d_small(mnist1d_cache):
    return make_dataset("mnist1d", seed=0, n_train=200, n_test=100)


def test_mnist1d_shapes_and_classes(mnist1d_small):
    ds = mnist1d_small
    _check_common(ds)
    assert ds.n_classes == 10
    assert ds.x_train.shape == (200, 40) and ds.y_train.shape == (200, 10)
    assert ds.x_test.shape == (100, 40) and ds.y_test.shape == (100, 10)
    assert len(np.unique(ds.y_train.argmax(1))) == 10


def test_mnist1d_cache_is_written_atomically_and_reused(mnist1d_cache, mnist1d_small):
    files = sorted(os.listdir(mnist1d_cache))
    assert len(files) == 1 and files[0].startswith("mnist1d-") and files[0].endswith(".npz")
    full = make_dataset("mnist1d", seed=0)  # from the cache: same rows, nested subsets
    assert full.x_train.shape == (4000, 40) and full.x_test.shape == (1000, 40)
    np.testing.assert_array_equal(full.x_train[:200], mnist1d_small.x_train)
    np.testing.assert_array_equal(full.y_test[:100], mnist1d_small.y_test)
    # the package standardises the whole generated set
    allx = np.concatenate([full.x_train, full.x_test])
    assert abs(allx.mean()) < 1e-9 and abs(allx.std() - 1) < 1e-9
    assert sorted(os.listdir(mnist1d_cache)) == files  # no temporary files left behind


def test_mnist1d_regenerates_a_corrupt_cache_deterministically(mnist1d_cache, mnist1d_small):
    (path,) = mnist1d_cache.iterdir()
    path.write_bytes(b"not an npz file")
    state = np.random.get_state()
    ds = make_dataset("mnist1d", seed=0, n_train=200, n_test=100)
    after = np.random.get_state()
    assert state[0] == after[0] and np.array_equal(state[1], after[1]) and state[2:] == after[2:]
    for u, v in zip(ds, mnist1d_small):
        if isinstance(u, np.ndarray):
            np.testing.assert_array_equal(u, v)
    assert sorted(os.listdir(mnist1d_cache)) == [path.name]


def test_mnist1d_seed_changes_the_data(mnist1d_cache, mnist1d_small):
    other = make_dataset("mnist1d", seed=1, n_train=200, n_test=100)
    assert not np.array_equal(other.x_train, mnist1d_small.x_train)
    assert len(os.listdir(mnist1d_cache)) == 2


def test_mnist1d_unwritable_cache_still_works(tmp_path, monkeypatch, mnist1d_small):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache directory should be")
    monkeypatch.setenv("LOSSJAX_CACHE", str(blocker / "cache"))
    with pytest.warns(UserWarning, match="could not cache"):
        ds = make_dataset("mnist1d", seed=0, n_train=200, n_test=100)
    np.testing.assert_array_equal(ds.x_train, mnist1d_small.x_train)


def test_cache_dir_default(monkeypatch, tmp_path):
    monkeypatch.delenv("LOSSJAX_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert datasets.cache_dir() == tmp_path / ".cache" / "lossjax"
    monkeypatch.setenv("LOSSJAX_CACHE", str(tmp_path / "c"))
    assert datasets.cache_dir() == tmp_path / "c"


# ----------------------------------------------------------------------------- IDX files

_CODES = {
    "uint8": 0x08, "int8": 0x09, "int16": 0x0B, "int32": 0x0C, "float32": 0x0D, "float64": 0x0E
}


def _idx_bytes(array: np.ndarray) -> bytes:
    """IDX encoding written independently with struct: magic, big-endian dims, data."""
    header = struct.pack(">BBBB", 0, 0, _CODES[array.dtype.name], array.ndim)
    header += struct.pack(">" + "I" * array.ndim, *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def _write_idx_dir(directory, n_train=6, n_test=4, rows=3, cols=5, gz=False, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, rows, cols), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, rows, cols), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    directory.mkdir(parents=True, exist_ok=True)
    for name, a in arrays.items():
        data = _idx_bytes(a)
        if gz:
            with gzip.open(directory / f"{name}.gz", "wb") as f:
                f.write(data)
        else:
            (directory / name).write_bytes(data)
    return arrays


@pytest.mark.parametrize("dtype", list(_CODES))
def test_parse_idx_round_trip(dtype):
    a = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    if dtype == "uint8":
        a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4) * 10
    out = parse_idx(_idx_bytes(a))
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    np.testing.assert_array_equal(out, a)


def test_parse_idx_big_endian_by_hand():
    data = bytes([0, 0, 0x0B, 1, 0, 0, 0, 2, 0x01, 0x02, 0xFF, 0xFE])  # int16 [258, -2]
    np.testing.assert_array_equal(parse_idx(data), [258, -2])


@pytest.mark.parametrize(
    "data, match",
    [
        (b"\x00\x00", "truncated IDX header"),
        (b"\x01\x02\x08\x01" + b"\x00" * 8, "bad magic number 0x01020801"),
        (b"\x00\x00\x07\x01" + b"\x00" * 8, "unknown IDX type code 0x07"),
        (b"\x00\x00\x08\x00", "0 dimensions"),
        (b"\x00\x00\x08\x03\x00\x00\x00\x02", "truncated IDX header"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x05abc", "truncated IDX data.*needs 5 bytes, found 3"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x02abc", "1 unexpected trailing bytes"),
    ],
)
def test_parse_idx_errors(data, match):
    with pytest.raises(ValueError, match=match) as err:
        parse_idx(data, source="some-file")
    assert "some-file" in str(err.value)


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
@pytest.mark.parametrize("gz", [False, True])
def test_idx_dataset_loads(tmp_path, name, gz):
    arrays = _write_idx_dir(tmp_path, gz=gz)
    ds = make_dataset(name, path=tmp_path)
    _check_common(ds)
    assert ds.name == name and ds.n_classes == 10
    assert ds.x_train.shape == (6, 15) and ds.x_test.shape == (4, 15)
    np.testing.assert_array_equal(
        ds.x_train, arrays["train-images-idx3-ubyte"].reshape(6, 15) / 255.0
    )
    np.testing.assert_array_equal(ds.y_train.argmax(1), arrays["train-labels-idx1-ubyte"])
    np.testing.assert_array_equal(ds.y_test.argmax(1), arrays["t10k-labels-idx1-ubyte"])
    assert ds.x_train.min() >= 0 and ds.x_train.max() <= 1


def test_idx_dataset_options(tmp_path):
    arrays = _write_idx_dir(tmp_path)
    ds = make_dataset("mnist", path=str(tmp_path), n_train=2, n_test=3, flatten=False,
                      normalise=False)
    assert ds.x_train.shape == (2, 3, 5) and ds.x_test.shape == (3, 3, 5)
    assert ds.x_train.dtype == np.float64
    np.testing.assert_array_equal(ds.x_train, arrays["train-images-idx3-ubyte"][:2])
    np.testing.assert_array_equal(ds.y_test.argmax(1), arrays["t10k-labels-idx1-ubyte"][:3])
    with pytest.raises(ValueError, match="'n_train'=7 exceeds the 6 examples"):
        make_dataset("mnist", path=tmp_path, n_train=7)
    with pytest.raises(ValueError, match="'flatten'"):
        make_dataset("mnist", path=tmp_path, flatten="yes")


def test_idx_missing_directory_names_expected_files(tmp_path):
    with pytest.raises(DatasetFileNotFoundError, match="does not exist") as err:
        make_dataset("mnist", path=tmp_path / "nowhere")
    assert isinstance(err.value, FileNotFoundError) and isinstance(err.value, ValueError)
    for base in datasets.IDX_FILES.values():
        assert base in str(err.value)


def test_idx_missing_file_is_named(tmp_path):
    _write_idx_dir(tmp_path, gz=True)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetFileNotFoundError, match=r"lacks t10k-labels-idx1-ubyte\[\.gz\]"):
        make_dataset("fashion_mnist", path=tmp_path)


def test_idx_path_is_a_file(tmp_path):
    f = tmp_path / "x"
    f.write_text("")
    with pytest.raises(ValueError, match="not a directory"):
        make_dataset("mnist", path=f)


def test_idx_bad_magic_names_the_file(tmp_path):
    _write_idx_dir(tmp_path)
    f = tmp_path / "train-images-idx3-ubyte"
    f.write_bytes(b"\x12\x34" + f.read_bytes()[2:])
    with pytest.raises(ValueError, match="bad magic number") as err:
        make_dataset("mnist", path=tmp_path)
    assert "train-images-idx3-ubyte" in str(err.value)


def test_idx_truncated_file_names_the_file(tmp_path):
    _write_idx_dir(tmp_path)
    f = tmp_path / "t10k-images-idx3-ubyte"
    f.write_bytes(f.read_bytes()[:-7])
    with pytest.raises(ValueError, match="truncated IDX data") as err:
        make_dataset("mnist", path=tmp_path)
    assert "t10k-images-idx3-ubyte" in str(err.value)


def test_idx_truncated_gzip_names_the_file(tmp_path):
    _write_idx_dir(tmp_path, gz=True)
    f = tmp_path / "train-labels-idx1-ubyte.gz"
    f.write_bytes(f.read_bytes()[:-12])
    with pytest.raises(ValueError, match="corrupt or truncated gzip") as err:
        make_dataset("mnist", path=tmp_path)
    assert "train-labels-idx1-ubyte.gz" in str(err.value)


def test_idx_count_mismatch(tmp_path):
    _write_idx_dir(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(_idx_bytes(np.zeros(5, np.uint8)))
    with pytest.raises(ValueError, match="label/image count mismatch.*6 images.*5 labels"):
        make_dataset("mnist", path=tmp_path)


def test_idx_wrong_rank_and_label_range(tmp_path):
    _write_idx_dir(tmp_path)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(_idx_bytes(np.zeros((6, 15), np.uint8)))
    with pytest.raises(ValueError, match="expected 3 dimensions"):
        make_dataset("mnist", path=tmp_path)
    _write_idx_dir(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(_idx_bytes(np.full(4, 10, np.uint8)))
    with pytest.raises(ValueError, match="labels must lie in 0..9"):
        make_dataset("mnist", path=tmp_path)
