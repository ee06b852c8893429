"""Long records from Python: `Data.from_record` (numpy) and `Data.from_xarray`, cut into
windows by the library as `sda import --netcdf` cuts a file's, station lists, masks of observed
values (`gaps="keep"`), and a table of station names and dates assimilated on the record."""

import numpy as np
import pytest

import sda

T, D = 40, 3
NAMES = ["DEBE032", "DENI063", "DESH001"]
LAT = [52.5, 52.0, 54.9]
LON = [13.4, 9.7, 8.3]


def pm10():
    """(T, D): 20 + t % 7 + 3 d, missing at station 1 every fifth day and at 2 on days 10..13."""
    t = np.arange(T)[:, None]
    d = np.arange(D)[None, :]
    x = 20.0 + t % 7 + 3.0 * d
    x[::5, 1] = np.nan
    x[10:14, 2] = np.nan
    return x


def times():
    return np.datetime64("1998-01-01") + np.arange(T).astype("timedelta64[D]")


def record(**kw):
    args = dict(
        time=times(),
        stations={"name": NAMES, "lat": LAT, "lon": LON},
        window=8,
        split_by_time=[24, 8, 8],
        gaps="keep",
    )
    args.update(kw)
    return sda.Data.from_record({"PM10": pm10()}, **args)


def test_from_record_keeps_the_stations_the_dates_and_the_missing_values(tmp_path):
    data = record()
    assert data.train.shape == (17, 8, 3) and data.test.shape == (1, 8, 3)
    train_obs, valid_obs, test_obs = data.observed
    x = pm10()
    # Window n of train covers days n..n+7: its mask is where the record is not NaN, and the
    # missing values are filled with their training mean (0 in normalised units).
    mean = np.asarray(data.description["normalisation"]["mean"])
    for n in range(17):
        window = x[n : n + 8]
        np.testing.assert_array_equal(train_obs[n], np.isfinite(window).astype(np.float32))
        np.testing.assert_allclose(data.train[n], np.where(np.isfinite(window), window, mean), rtol=1e-6)
    assert valid_obs.shape == (1, 8, 3) and test_obs.shape == (1, 8, 3)
    rec = data.description["system"]["record"]
    assert [s["name"] for s in rec["stations"]] == NAMES
    assert rec["time"]["units"] == "days since 1970-01-01 00:00:00"
    assert rec["time"]["values"][0] == 10227.0
    assert "1 variable(s) at 3 stations" in data.summary
    assert "1998-01-01..1998-01-24" in data.summary
    # Saved and loaded: the same arrays, masks and description.
    data.save(tmp_path / "d")
    assert (tmp_path / "d" / "train-observed.npy").exists()
    again = sda.Data.load(tmp_path / "d")
    np.testing.assert_array_equal(again.observed[0], train_obs)
    np.testing.assert_array_equal(again.train, data.train)
    assert again.description["system"] == data.description["system"]


def test_from_record_takes_numbers_in_time_units_and_a_stacked_array():
    x = np.stack([pm10(), 2 * pm10()], axis=1)  # (T, V, D)
    data = sda.Data.from_record(
        x,
        variables=["a", "b"],
        time=np.arange(T, dtype=float),
        time_units="days since 1998-01-01",
        calendar="noleap",
        window=8,
        split_by_time=[24, 8, 8],
        gaps="keep",
    )
    assert data.state_shape == [6]
    rec = data.description["system"]["record"]
    assert rec["time"]["calendar"] == "noleap"
    assert [v["name"] for v in rec["variables"]] == ["a", "b"]
    assert "stations" not in rec


def test_bad_records_are_value_errors():
    with pytest.raises(ValueError, match="station 'A' is named twice"):
        record(stations=[("A", 1.0, 2.0), ("A", 3.0, 4.0), ("B", 5.0, 6.0)])
    with pytest.raises(ValueError, match="not strictly increasing"):
        record(time=times()[::-1])
    with pytest.raises(ValueError, match="unknown value 'fill'"):
        record(gaps="fill")
    with pytest.raises(ValueError, match="no training window of 8 steps is left"):
        record(gaps="drop")
    with pytest.raises(ValueError, match="unit 'months'"):
        record(time=np.arange(T, dtype=float), time_units="months since 1998-01")


def test_a_table_of_station_names_and_dates_is_assimilated(tmp_path):
    data = record()
    model = sda.train(data, order=1, width=16, depth=1, epochs=3, batch_size=4, progress=False)
    table = tmp_path / "obs.csv"
    table.write_text(
        "date,station,value,std\n1998-02-03,DENI063,24.5,2\n1998-02-01,DESH001,29,2\n"
    )
    x = model.assimilate(str(table), start="1998-01-31", length=8, samples=2, steps=4,
                         guard=False, progress=False)
    assert x.shape == (2, 8, 3)
    table.write_text("date,station,value,std\n1998-02-03,NOWHERE,24.5,2\n")
    with pytest.raises(ValueError, match="line 2: station 'NOWHERE' is not in the record"):
        model.assimilate(str(table), length=8, samples=2, steps=4, progress=False)


def test_from_xarray_reads_a_station_dataset():
    xr = pytest.importorskip("xarray", reason="xarray is not installed: from_xarray untested")
    ds = xr.Dataset(
        {"PM10": (("time", "station"), pm10(), {"units": "ug/m3"})},
        coords={
            "time": times(),
            "station": NAMES,
            "lat": ("station", LAT),
            "lon": ("station", LON),
        },
    )
    data = sda.Data.from_xarray(ds, window=8, split_by_time=[24, 8, 8], gaps="keep")
    same = record()
    np.testing.assert_array_equal(data.train, same.train)
    np.testing.assert_array_equal(data.observed[0], same.observed[0])
    rec = data.description["system"]["record"]
    assert [s["name"] for s in rec["stations"]] == NAMES
    assert rec["variables"][0]["units"] == "ug/m3"
    assert rec["file"] == "xarray.Dataset"
    # A DataArray of fields on a latitude-longitude grid.
    grid = xr.DataArray(
        np.random.default_rng(0).normal(size=(T, 4, 8)),
        dims=("time", "lat", "lon"),
        coords={"time": times(), "lat": [-30.0, -10.0, 10.0, 30.0], "lon": np.arange(8) * 45.0},
        name="sst",
    )
    fields = sda.Data.from_xarray(grid, window=8, split_by_time=[24, 8, 8])
    assert fields.state_shape == [1, 4, 8]
    with pytest.raises(ValueError, match="no variable 'wind'"):
        sda.Data.from_xarray(ds, variables=["wind"], window=8)


def test_from_xarray_without_xarray_says_so(monkeypatch):
    # As if xarray were not installed (None in sys.modules makes `import xarray` fail).
    import sys

    monkeypatch.setitem(sys.modules, "xarray", None)
    with pytest.raises(ImportError, match=r"needs xarray \(pip install xarray\).*from_record"):
        sda.Data.from_xarray({"PM10": pm10()}, window=8)


def test_a_record_with_gaps_trains_on_its_observed_values_as_sda_train_does(tmp_path):
    # The masks of gaps="keep" weight the loss in memory exactly as `sda train --data` weights
    # it from the saved folder: the same losses, bit for bit; without them the losses differ.
    import json
    import subprocess
    from pathlib import Path

    binary = Path(__file__).resolve().parents[2] / "target" / "release" / "sda"
    if not binary.exists():
        pytest.skip(f"{binary} is not built (cargo build --release)")
    data = record()
    data.save(tmp_path / "d")
    kw = dict(order=1, width=16, depth=1, epochs=4, batch_size=4, seed=3)
    sda.train(data, output=tmp_path / "mem", progress=False, **kw)
    out = subprocess.run(
        [str(binary), "train", "--data", str(tmp_path / "d"), "--order", "1", "--width", "16",
         "--depth", "1", "--epochs", "4", "--batch-size", "4", "--seed", "3",
         "--output", str(tmp_path / "cli")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "masked loss" in out.stdout
    mem = (tmp_path / "mem" / "stats.csv").read_text()
    assert mem == (tmp_path / "cli" / "stats.csv").read_text()
    # The same windows with every value counted (no masks) train to other losses.
    plain = sda.Data.from_arrays(data.train, data.valid, data.test)
    sda.train(plain, output=tmp_path / "plain", progress=False, **kw)
    cfg = json.loads((tmp_path / "mem" / "config.json").read_text())
    assert cfg["data"]["system"]["record"]["observed"] is not None
    assert (tmp_path / "plain" / "stats.csv").read_text() != mem
