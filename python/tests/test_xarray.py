"""Samples as an xarray.Dataset with the record's coordinates (``as_xarray=True``): the same
Dataset as ``xarray.open_dataset`` of the ``.nc`` that ``sda sample --output`` writes, with
the record's dims, coordinates, dates and attributes, and land missing (that a
log-transformed variable's samples stay positive is tests/transforms.rs's)."""

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

import sda

xr = pytest.importorskip("xarray", reason="xarray is not installed (pip install xarray)")

ROOT = Path(__file__).resolve().parents[2]
SDA = Path(os.environ.get("SDA", ROOT / "target" / "release" / "sda"))
needs_binary = pytest.mark.skipif(not SDA.exists(), reason=f"{SDA} not built")


def cli(*args):
    out = subprocess.run([str(SDA), *map(str, args)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout


def positive_record(path, rng):
    """24 daily 4 x 4 fields of a positive P (log-normal), cell (0, 1) land."""
    t = np.arange(24.0)
    p = np.exp(rng.normal(size=(24, 4, 4)) * 0.5 + np.sin(t / 4)[:, None, None])
    p[:, 0, 1] = np.nan
    ds = xr.Dataset(
        {"P": (("time", "lat", "lon"), p.astype(np.float32),
               {"units": "mm/day", "long_name": "precipitation"})},
        coords={
            "time": ("time", t, {"units": "days since 2000-01-01", "calendar": "standard"}),
            "lat": ("lat", np.array([-30.0, -10.0, 10.0, 30.0]), {"units": "degrees_north"}),
            "lon": ("lon", np.array([0.0, 90.0, 180.0, 270.0]), {"units": "degrees_east"}),
        },
    )
    ds.to_netcdf(path, format="NETCDF3_CLASSIC", engine="scipy")


@needs_binary
def test_as_xarray_is_the_dataset_of_the_nc_output(rng, tmp_path):
    pytest.importorskip("scipy", reason="scipy is not installed (xarray writes NetCDF-3 with it)")
    positive_record(tmp_path / "r.nc", rng)
    printed = cli("import", "--netcdf", tmp_path / "r.nc", "--variables", "P", "--window", 4,
                  "--split-by-time", "12,6,6", "--transform", "log", "--output", tmp_path / "data")
    assert "transforms P=log" in printed
    data = sda.Data.load(tmp_path / "data")
    assert data.description["transforms"] == [{"name": "P", "transform": "log"}]
    # A two-epoch prior: the layout is the point (the guard would refuse its samples).
    model = sda.train(data, order=1, epochs=2, preset="reduced", hidden=[4, 4, 4],
                      progress=False)
    model.save(tmp_path / "run")
    settings = dict(length=4, samples=2, steps=4, guard=False, seed=3)
    ds = model.sample(**settings, start="test:0", as_xarray=True, progress=False)
    cli("sample", "--model", tmp_path / "run", "--length", 4, "--samples", 2, "--steps", 4,
        "--no-guard", "--seed", 3, "--start", "test:0", "--output", tmp_path / "x.nc")
    with xr.open_dataset(tmp_path / "x.nc") as opened:
        xr.testing.assert_identical(ds, opened.load())
    assert ds["P"].dims == ("sample", "time", "lat", "lon")
    assert ds["P"].attrs["units"] == "mm/day" and ds["P"].attrs["transform"] == "log"
    assert ds["lat"].attrs["units"] == "degrees_north"
    assert list(ds["lon"].values) == [0.0, 90.0, 180.0, 270.0]
    # test:0 is the window starting at step 18: 2000-01-19 onwards.
    assert str(ds["time"].values[0])[:10] == "2000-01-19"
    p = ds["P"].values
    assert np.isnan(p[:, :, 0, 1]).all(), "land is missing"
    land = np.zeros((4, 4), bool)
    land[0, 1] = True
    # The plain array holds the same values (land filled), without as_xarray.
    x = model.sample(**settings, progress=False)
    assert x.shape == (2, 4, 1, 4, 4)
    assert np.array_equal(x[:, :, 0][:, :, ~land], p[:, :, ~land])
    with pytest.raises(ValueError, match="as_xarray"):
        model.sample(**settings, start="test:0", progress=False)
    with pytest.raises(ValueError, match="test split has 3 window"):
        model.sample(**settings, start="test:3", as_xarray=True, progress=False)


def test_arrays_without_a_record_come_as_one_variable_x(rng):
    x = np.exp(rng.normal(size=(12, 6, 3)))
    data = sda.Data.from_arrays(x, transform={1: "log"})
    assert data.description["transforms"][1] == {"name": "1", "transform": "log"}
    assert np.array_equal(data.train.min() > 0, True), "physical values kept"
    model = sda.train(data, order=1, width=16, depth=1, epochs=2, progress=False)
    ds = model.sample(length=6, samples=2, steps=4, guard=False, as_xarray=True, progress=False)
    assert ds["x"].dims == ("sample", "time", "value")
    assert list(ds["time"].values) == list(range(6))
    x = model.sample(length=6, samples=2, steps=4, guard=False, progress=False)
    assert np.array_equal(ds["x"].values, x)
    with pytest.raises(ValueError, match="not a record"):
        model.sample(length=6, samples=2, steps=4, guard=False, as_xarray=True,
                     start="test:0", progress=False)
    with pytest.raises(ValueError, match="value -1 at"):
        sda.Data.from_arrays(-np.ones((5, 4, 2)), transform="sqrt")
