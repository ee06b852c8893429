"""numpy in and out: dtypes, layouts, read-only outputs and file round trips."""

import numpy as np
import pytest

import sda
from conftest import OPERATOR


def test_simulate_gives_float32_splits_of_the_chains(lorenz):
    assert lorenz.system == "lorenz63"
    assert list(lorenz.state_shape) == [3]
    # 256 chains split 80/10/10 as `sda simulate` splits them.
    assert lorenz.train.shape == (204, 64, 3)
    assert lorenz.valid.shape == (26, 64, 3)
    assert lorenz.test.shape == (26, 64, 3)
    for a in (lorenz.train, lorenz.valid, lorenz.test):
        assert a.dtype == np.float32 and a.flags.c_contiguous and not a.flags.writeable
    d = lorenz.description
    assert d["system"]["name"] == "lorenz63" and d["trajectories"] == 256 and d["seed"] == 1
    assert d["normalisation"]["scale"] == [8.0, 9.0, 8.6]
    # The attractor's z stays positive and of the usual size.
    assert 10 < lorenz.train[..., 2].mean() < 40


def test_same_seed_same_data_and_another_seed_other_data():
    a = sda.simulate("linear", trajectories=10, length=8, burn_in=4, seed=5, progress=False)
    b = sda.simulate("linear", trajectories=10, length=8, burn_in=4, seed=5, progress=False)
    c = sda.simulate("linear", trajectories=10, length=8, burn_in=4, seed=6, progress=False)
    assert np.array_equal(a.train, b.train)
    assert not np.array_equal(a.train, c.train)


def test_data_save_load_round_trip(lorenz, tmp_path):
    lorenz.save(tmp_path / "data")
    for split in ("train", "valid", "test"):
        on_disk = np.load(tmp_path / "data" / f"{split}.npy")
        assert on_disk.dtype == np.float32
        assert np.array_equal(on_disk, getattr(lorenz, split))
    back = sda.Data.load(str(tmp_path / "data"))
    assert np.array_equal(back.train, lorenz.train)
    assert np.array_equal(back.test, lorenz.test)
    assert back.description == lorenz.description


def test_from_arrays_splits_converts_and_reads_any_layout(lorenz):
    x = np.concatenate([lorenz.train, lorenz.valid, lorenz.test])  # (256, 64, 3)
    d32 = sda.Data.from_arrays(x, system="lorenz63")
    assert d32.train.shape == (204, 64, 3) and d32.test.shape == (26, 64, 3)
    assert np.array_equal(d32.train, lorenz.train)
    # float64 is converted; the values are those of the float32 array.
    d64 = sda.Data.from_arrays(x.astype(np.float64), system="lorenz63")
    assert np.array_equal(d64.train, d32.train)
    # A non-contiguous view reads in C order, as np.ascontiguousarray would.
    view = x[:, ::2]
    assert not view.flags.c_contiguous
    dv = sda.Data.from_arrays(view, system="lorenz63")
    assert np.array_equal(dv.train, np.ascontiguousarray(view)[:204])
    # Fortran order too.
    df = sda.Data.from_arrays(np.asfortranarray(x), system="lorenz63")
    assert np.array_equal(df.train, d32.train)
    # Explicit splits are kept as given; the normalisation of a system without a fixed one is
    # the training split's.
    lin = sda.simulate("linear", trajectories=20, length=16, burn_in=8, seed=0, progress=False)
    d = sda.Data.from_arrays(lin.train, lin.valid, system="linear")
    assert np.array_equal(d.valid, lin.valid) and d.test.shape == (0, 16, 2)
    mean = d.description["normalisation"]["mean"]
    assert np.allclose(mean, lin.train.reshape(-1, 2).mean(0), atol=1e-5)


def test_observe_matches_the_operator(lorenz):
    x = lorenz.test[0, :65] if lorenz.test.shape[1] >= 65 else lorenz.test[0]
    y = sda.observe(x, operator="stride:8|select:0", noise=1e-6, seed=0)
    assert y.dtype == np.float32 and y.shape == (len(range(0, x.shape[0], 8)), 1)
    assert np.allclose(y[:, 0], x[::8, 0], atol=1e-3)
    # Same seed, same noise; a non-contiguous x gives the same y as its contiguous copy.
    full = np.asfortranarray(x)
    assert np.array_equal(sda.observe(full, operator=OPERATOR, noise=0.4, seed=2),
                          sda.observe(x, operator=OPERATOR, noise=0.4, seed=2))
    # Per-observation stds as an array of y's shape.
    std = np.full(y.shape, 0.4)
    assert np.array_equal(sda.observe(x, operator=OPERATOR, noise=std, seed=2),
                          sda.observe(x, operator=OPERATOR, noise=0.4, seed=2))


def test_model_save_load_round_trip_samples_the_same_bits(model, tmp_path):
    model.save(tmp_path / "run")
    assert (tmp_path / "run" / "config.json").exists()
    back = sda.Model.load(tmp_path / "run")
    assert back.config == model.config
    a = model.sample(length=12, samples=4, steps=8, seed=3, progress=False)
    b = back.sample(length=12, samples=4, steps=8, seed=3, progress=False)
    assert a.dtype == np.float32 and a.shape == (4, 12, 3)
    assert np.array_equal(a, b)
    c = back.sample(length=12, samples=4, steps=8, seed=4, progress=False)
    assert not np.array_equal(a, c)


def test_plot_returns_png_bytes_or_writes_the_file(model, observation, tmp_path):
    truth, y = observation
    # 4 steps of a briefly trained prior diverge: the plot is the point, not the samples.
    x = model.sample(length=truth.shape[0], samples=3, steps=4, guard=False, progress=False)
    png = sda.plot.trajectories(x, truth=truth[None], y=y, operator=OPERATOR)
    assert isinstance(png, bytes) and png[:8] == b"\x89PNG\r\n\x1a\n"
    out = sda.plot.trajectories(x, output=tmp_path / "x.png")
    assert (tmp_path / "x.png").read_bytes()[:4] == b"\x89PNG"
    assert str(out) == str(tmp_path / "x.png")


def test_version_is_the_crates():
    import pathlib
    import re

    root = pathlib.Path(__file__).resolve().parents[2] / "Cargo.toml"
    if not root.exists():
        pytest.skip("not run from the source tree")
    m = re.search(r'\[workspace\.package\]\s*version\s*=\s*"([^"]+)"', root.read_text())
    assert m and sda.__version__ == m.group(1)
