"""Your own data: trajectories imported from arrays (as `sda import` imports files) and
observations as a table of scattered measurements (as `--observations obs.csv`)."""

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

import sda

ROOT = Path(__file__).resolve().parents[2]
SDA = Path(os.environ.get("SDA", ROOT / "target" / "release" / "sda"))
needs_binary = pytest.mark.skipif(not SDA.exists(), reason=f"{SDA} not built")


def cli(*args):
    out = subprocess.run([str(SDA), *map(str, args)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout


def own_trajectories(rng, n=30, length=12, d=4):
    # A random walk with a drift and scale of its own per component: no built-in system.
    steps = rng.normal(size=(n, length, d)) * np.array([0.5, 1.0, 2.0, 0.1])
    return (np.cumsum(steps, axis=1) + np.array([3.0, -1.0, 10.0, 0.0])).astype(np.float64)


@needs_binary
def test_from_arrays_is_sda_import_of_the_same_array(rng, tmp_path):
    x = own_trajectories(rng)
    np.save(tmp_path / "x.npy", x)
    cli("import", "--train", tmp_path / "x.npy", "--split", "0.6,0.2,0.2", "--seed", 5,
        "--output", tmp_path / "cli")
    data = sda.Data.from_arrays(x, split=(0.6, 0.2, 0.2), seed=5)
    on_disk = sda.Data.load(tmp_path / "cli")
    assert data.system == on_disk.system == "external"
    assert data.train.shape == (18, 12, 4) and data.test.shape == (6, 12, 4)
    for split in ("train", "valid", "test"):
        assert np.array_equal(getattr(data, split), getattr(on_disk, split)), split
    # The shuffle is the seed's: another seed puts other trajectories in the test split.
    other = sda.Data.from_arrays(x, split=(0.6, 0.2, 0.2), seed=6)
    assert not np.array_equal(other.test, data.test)
    py, cl = data.description, on_disk.description
    # In memory and as read back from system.json (JSON keeps f64 to within an ulp).
    for key in ("mean", "scale"):
        assert np.allclose(py["normalisation"][key], cl["normalisation"][key], rtol=1e-12, atol=0)
    # Per value over the training split (the float32 values' mean and std).
    mean = data.train.astype(np.float64).reshape(-1, 4).mean(0)
    assert np.allclose(py["normalisation"]["mean"], mean, rtol=1e-6, atol=1e-6)
    assert np.allclose(py["normalisation"]["scale"], data.train.reshape(-1, 4).std(0), rtol=1e-3)
    # The record: same dtype, shape and checksum; the origin says where each came from.
    (ps,), (cs,) = py["system"]["provenance"]["sources"], cl["system"]["provenance"]["sources"]
    assert (ps["dtype"], ps["shape"], ps["checksum"]) == ("float64", [30, 12, 4], cs["checksum"])
    assert "Python" in ps["origin"] and cs["origin"].endswith("x.npy")
    assert py["system"]["provenance"]["trajectories"] == [18, 6, 6]

    # Saved, the folder is one `sda train` reads; sda.train takes the data itself.
    data.save(tmp_path / "py")
    back = sda.Data.load(tmp_path / "py")
    assert np.array_equal(back.valid, data.valid)
    assert back.description["normalisation"] == cl["normalisation"]
    assert back.description["system"] == py["system"]
    cli("train", "--data", tmp_path / "py", "--output", tmp_path / "run", "--epochs", 2,
        "--width", 16, "--depth", 1, "--order", 1)
    assert json.loads((tmp_path / "run" / "config.json").read_text())["data"] == \
        json.loads((tmp_path / "py" / "system.json").read_text())
    model = sda.train(data, order=1, width=16, depth=1, epochs=2, progress=False)
    # A 2-epoch prior: the round trip is the point, not the samples (the guard would refuse).
    x = model.sample(length=12, samples=3, steps=4, guard=False, progress=False)
    assert x.shape == (3, 12, 4) and np.isfinite(x).all()


def test_given_splits_fields_and_context_are_kept(rng, tmp_path):
    fields = rng.normal(size=(5, 3, 2, 4, 4)).astype(np.float32)
    fields[:, :, 1] = fields[:, :, 1] * 3.0 + 7.0
    ctx = rng.normal(size=(1, 4, 4))
    d = sda.Data.from_arrays(fields[:3], fields[3:4], fields[4:], context=ctx)
    assert np.array_equal(d.train, fields[:3]) and np.array_equal(d.test, fields[4:])
    assert d.context.shape == (1, 4, 4) and np.array_equal(d.context, ctx.astype(np.float32))
    # Per channel: every grid point of a channel shares the channel's mean.
    mean = np.array(d.description["normalisation"]["mean"]).reshape(2, 16)
    assert np.allclose(mean, fields[:3].transpose(2, 0, 1, 3, 4).reshape(2, -1).mean(1)[:, None],
                       atol=1e-5)
    d.save(tmp_path / "f")
    back = sda.Data.load(tmp_path / "f")
    assert np.array_equal(back.context, d.context)
    assert back.description["system"]["context_channels"] == 1


def write_table(path, rows):
    with open(path, "w") as f:
        f.write("index,time,std,value\n")  # any column order
        for t, i, v, s in rows:
            f.write(f"{i},{t},{float(s)!r},{float(v)!r}\n")


def test_a_table_gives_the_bits_of_the_same_observations_as_arrays(model, lorenz, tmp_path):
    truth = lorenz.test[0, :33]
    op = "stride:8|select:0,2"
    noise = np.array([[0.3, 0.5], [0.4, 0.2], [0.6, 0.3], [0.5, 0.5], [0.2, 0.7]], np.float32)
    y = sda.observe(truth, operator=op, noise=noise, seed=2)  # (5, 2)
    rows = [(8 * t, i, y[t, k], noise[t, k]) for t in range(5) for k, i in enumerate((0, 2))]
    # Rows of one time are kept in file order, times sorted: the file may list times in any order.
    write_table(tmp_path / "obs.csv", rows[4:] + rows[:4])
    # 8 steps of a briefly trained prior diverge: the bits are the point, not the samples.
    kw = dict(length=33, samples=4, steps=8, corrections=1, seed=7, guard=False, progress=False)
    a = model.assimilate(y, operator=op, noise=noise, **kw)
    b = model.assimilate(tmp_path / "obs.csv", **kw)
    assert a.dtype == b.dtype and a.shape == b.shape == (4, 33, 3)
    assert a.tobytes() == b.tobytes()
    # Other stds in the table: other samples (the noise is read, not ignored).
    write_table(tmp_path / "wide.csv", [(t, i, v, 5 * s) for t, i, v, s in rows])
    c = model.assimilate(str(tmp_path / "wide.csv"), **kw)
    assert c.tobytes() != a.tobytes()
    # evaluate: the same scores from the table as from the arrays.
    ea = sda.evaluate(a, truth=truth[None], y=y, operator=op, noise=noise)
    eb = sda.evaluate(a, truth=truth[None], y=tmp_path / "obs.csv")
    assert ea["log_py"] is not None and np.isfinite(ea["log_py"])
    for key in ("log_py", "residual_std", "noise_std", "rmse", "crps"):
        assert ea[key] == eb[key], key


@needs_binary
def test_observe_table_is_sda_observe_table(lorenz, model, tmp_path):
    np.save(tmp_path / "x.npy", lorenz.test[:2])
    cli("observe", "--trajectories", tmp_path / "x.npy", "--index", 1, "--length", 20,
        "--table", "--times", 6, "--stations", 2, "--noise", "0.1:0.5", "--seed", 3,
        "--output", tmp_path / "cli")
    out = sda.observe(lorenz.test[1, :20], table=True, times=6, stations=2, noise=(0.1, 0.5),
                      seed=3, output=tmp_path / "obs.csv")
    assert Path(out) == tmp_path / "obs.csv"
    text = (tmp_path / "obs.csv").read_text()
    assert text == (tmp_path / "cli" / "obs.csv").read_text()
    rows = np.loadtxt(tmp_path / "obs.csv", delimiter=",", skiprows=1)
    assert rows.shape == (12, 4) and len(set(rows[:, 0])) == 6
    assert ((rows[:, 3] >= 0.1) & (rows[:, 3] <= 0.5)).all()
    x = model.assimilate(out, length=20, samples=2, steps=4, guard=False, progress=False)
    assert x.shape == (2, 20, 3) and np.isfinite(x).all()


def test_bad_tables_raise_the_librarys_message_with_the_line(model, tmp_path):
    kw = dict(length=33, samples=2, steps=2, progress=False)

    def bad(text, kind, match, **extra):
        p = tmp_path / "bad.csv"
        p.write_text(text)
        with pytest.raises(kind, match=match) as info:
            model.assimilate(p, **{**kw, **extra})
        assert isinstance(info.value, sda.SdaError) and "\n" not in str(info.value)
        assert "bad.csv" in str(info.value)

    bad("time,index,value\n0,0,1.0\n", ValueError, r"no column 'std'")
    bad("time,index,value,std\n0,0,1.0,0.1\n8,1,abc,0.1\n", ValueError,
        r"line 3: value 'abc' is not a number")
    bad("time,index,value,std\n0,0,1.0,0.1\n# a comment\n8,3,2.0,0.1\n", ValueError,
        r"line 4: index 3")
    bad("time,index,value,std\n40,0,1.0,0.1\n", ValueError, r"line 2: time 40 lies outside")
    bad("time,index,value,std\n0,0,1.0,-1\n", ValueError, r"line 2: std -1")
    bad("time,index,value,std\n0,0,1.0,0.1\n", ValueError, r"operator/noise: not given",
        operator="stride:8|select:0")
    with pytest.raises(FileNotFoundError, match="none.csv"):
        model.assimilate(tmp_path / "none.csv", **kw)
    with pytest.raises(ValueError, match=r"^operator and noise: needed"):
        model.assimilate(np.zeros((5, 1), np.float32), **kw)
    with pytest.raises(ValueError, match=r"line 2: time 40"):
        (tmp_path / "bad.csv").write_text("time,index,value,std\n40,0,1.0,0.1\n")
        sda.evaluate(np.zeros((2, 33, 3), np.float32), y=tmp_path / "bad.csv")


def test_bad_imports_raise_with_what_and_where(rng):
    x = own_trajectories(rng, n=6)
    x[2, 3, 1] = np.nan
    with pytest.raises(ValueError, match=r"^train .*1 non-finite.* at \[2, 3, 1\]"):
        sda.Data.from_arrays(x)
    with pytest.raises(ValueError, match=r"^split: fractions must sum to 1"):
        sda.Data.from_arrays(own_trajectories(rng), split=(0.5, 0.5, 0.5))
    with pytest.raises(ValueError, match=r"^train .*2 trajectories cannot be split"):
        sda.Data.from_arrays(own_trajectories(rng, n=2))
    with pytest.raises(ValueError, match=r"field data"):
        sda.Data.from_arrays(own_trajectories(rng), context=np.zeros((1, 4, 4)))
    with pytest.raises(ValueError, match=r"^test: needs valid"):
        sda.Data.from_arrays(own_trajectories(rng), test=own_trajectories(rng))
    # Valid without test: the test period is the user's own, and there is no test trajectory.
    kept = sda.Data.from_arrays(own_trajectories(rng, n=6), own_trajectories(rng, n=3))
    assert kept.valid.shape[0] == 3 and kept.test.shape[0] == 0
    with pytest.raises(ValueError, match=r"only for system=\"external\""):
        sda.Data.from_arrays(np.zeros((4, 8, 3)), system="lorenz63", seed=1)


@needs_binary
def test_imported_fields_train_with_their_context_as_sda_train_does(rng, tmp_path):
    f = rng.normal(size=(8, 6, 2, 8, 8)).astype(np.float32)
    ctx = rng.normal(size=(1, 8, 8)).astype(np.float32)
    data = sda.Data.from_arrays(f, context=ctx, split=(0.5, 0.25, 0.25))
    data.save(tmp_path / "data")
    kw = dict(order=1, hidden=[8], blocks=1, epochs=2, batch_size=2)
    model = sda.train(sda.Data.load(tmp_path / "data"), progress=False, **kw)
    net = model.config["net"]
    # The imported field's own constant channel instead of the Kolmogorov forcing.
    assert net["forcing"] == 0 and np.array_equal(np.float32(net["context"]), ctx.ravel())
    cli("train", "--data", tmp_path / "data", "--order", 1, "--hidden", 8, "--blocks", 1,
        "--epochs", 2, "--batch-size", 2, "--output", tmp_path / "cli")
    assert json.loads((tmp_path / "cli" / "config.json").read_text()) == model.config


@needs_binary
def test_baselines_are_sda_filter_and_evaluate_scores_hidden_values(rng, tmp_path):
    # A stationary AR(1) of coefficient 0.7 per component, with a mean and scale of its own: a
    # linear inverse model fits it (a random walk it refuses, below).
    scale, mean = np.array([0.5, 1.0, 2.0, 0.1]), np.array([3.0, -1.0, 10.0, 0.0])
    x = np.empty((30, 12, 4))
    x[:, 0] = rng.normal(size=(30, 4))
    for t in range(1, 12):
        x[:, t] = 0.7 * x[:, t - 1] + np.sqrt(1 - 0.7 ** 2) * rng.normal(size=(30, 4))
    x = x * scale + mean
    np.save(tmp_path / "x.npy", x)
    cli("import", "--train", tmp_path / "x.npy", "--output", tmp_path / "d")
    truth = np.load(tmp_path / "d" / "test.npy")[0, :8]
    rows = ["time,index,value,std"] + [f"{t},{i},{truth[t, i] + 0.1:.5f},0.2"
                                       for t in (1, 4, 6) for i in (0, 2)]
    (tmp_path / "obs.csv").write_text("\n".join(rows) + "\n")
    for method in ("climatology", "persistence", "oi", "lim"):
        cli("filter", "--system", tmp_path / "d", "--method", method, "--observations",
            tmp_path / "obs.csv", "--length", 8, "--samples", 16, "--seed", 2,
            "--output", tmp_path / f"{method}.npy")
        got, mean = sda.filter(tmp_path / "obs.csv", system=tmp_path / "d", method=method,
                               length=8, samples=16, seed=2, mean=True)
        # The same bits as the command line.
        assert np.array_equal(got, np.load(tmp_path / f"{method}.npy")), method
        assert got.shape == (16, 8, 4) and mean.shape == (1, 8, 4)
        e = sda.evaluate(got, truth=truth, y=tmp_path / "obs.csv", hidden=True)
        full = sda.evaluate(got, truth=truth)
        # Hidden: 32 − 6 values; by hand from the samples.
        keep = np.ones((8, 4), bool)
        keep[[1, 1, 4, 4, 6, 6], [0, 2, 0, 2, 0, 2]] = False
        err = got.astype(np.float64).mean(0)[keep] - truth[keep]
        assert abs(e["rmse"] - np.sqrt((err ** 2).mean())) < 1e-5
        assert e["rmse"] != full["rmse"]
    with pytest.raises(ValueError, match="method"):
        sda.filter(tmp_path / "obs.csv", system=tmp_path / "d", method="kriging", length=8)
    np.save(tmp_path / "walk.npy", own_trajectories(rng, n=30, length=12))
    cli("import", "--train", tmp_path / "walk.npy", "--output", tmp_path / "walk")
    with pytest.raises(ValueError, match="not stationary"):
        sda.filter(tmp_path / "obs.csv", system=tmp_path / "walk", method="lim", length=8)
