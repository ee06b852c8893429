"""Trajectories from an xarray/NetCDF file into sda: train on them, assimilate, evaluate.

    pip install xarray netcdf4       # or scipy, for NetCDF3
    python python/examples/netcdf.py [trajectories.nc]

Without a file, it writes one first (Lorenz-63 trajectories as an xarray Dataset with
dimensions (chain, time, component)), so that the example runs anywhere xarray does.
Skipped, with a message, when xarray is not installed.
"""

import sys
import pathlib
import tempfile

try:
    import xarray as xr
except ImportError:
    print("xarray is not installed: skipping this example (pip install xarray netcdf4)")
    sys.exit(0)

import numpy as np

import sda

if len(sys.argv) > 1:
    path = pathlib.Path(sys.argv[1])
else:
    path = pathlib.Path(tempfile.mkdtemp()) / "lorenz63.nc"
    sim = sda.simulate("lorenz63", trajectories=256, length=256, burn_in=256, seed=0)
    x = np.concatenate([sim.train, sim.valid, sim.test])
    ds = xr.Dataset(
        {"state": (("chain", "time", "component"), x)},
        coords={"component": ["x", "y", "z"]},
        attrs={"system": "lorenz63"},
    )
    try:
        ds.to_netcdf(path)
    except (ValueError, ImportError) as e:
        print(f"no NetCDF engine for xarray ({e}): skipping (pip install netcdf4 or scipy)")
        sys.exit(0)
    print(f"wrote {path}")

# Read the trajectories: any (chain, time, component) variable of a known system.
ds = xr.open_dataset(path)
x = ds["state"].transpose("chain", "time", "component").values  # float32 or float64
data = sda.Data.from_arrays(x, system=ds.attrs.get("system", "lorenz63"))
print(data)

# A small network trained briefly (the paper: width 256, 4096 epochs).
model = sda.train(data, order=2, width=64, depth=3, epochs=512, batch_size=32, seed=0)
truth = data.test[0, :65]
y = sda.observe(truth, operator="stride:8|select:0", noise=0.4, seed=0)
samples = model.assimilate(y, operator="stride:8|select:0", noise=0.4, length=65,
                           samples=32, steps=64)
pf = sda.filter(y, system=data, operator="stride:8|select:0", noise=0.4, length=65,
                particles=4096, keep=256)
scores = sda.evaluate(samples, pf, truth[None], system=data)
print(f"W1 to the particle filter {scores['w1']:.2f}, RMSE to the truth {scores['rmse']:.2f}")

# Back to xarray: posterior samples with named dimensions.
post = xr.DataArray(samples, dims=("sample", "time", "component"),
                    coords={"component": ["x", "y", "z"]}, name="posterior")
print(post.mean("sample").to_pandas().head() if hasattr(post, "to_pandas") else post)
