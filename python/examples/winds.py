"""The FNOC monthly surface winds through xarray: a gridded NetCDF record into a data folder.

    pip install xarray scipy     # scipy reads NetCDF-3 for xarray (or netcdf4)
    python python/examples/winds.py MONTHLY_NAVY_WINDS_CDF OUTPUT

MONTHLY_NAVY_WINDS_CDF is ``monthly_navy_winds.cdf`` of Debian's ``ferret-datasets``
(``scripts/real-data.sh`` unpacks it under ``target/real-data/ferret``; this script fetches
nothing): zonal and meridional winds UWND, VWND, 132 months on a 2.5-degree grid. As in
docs/real-data.md, the northernmost row is left out and the grid coarsened to 5 degrees (36 x
72), here with xarray; ``sda import --netcdf`` does the same with ``--select FNOCY=0:72
--coarsen FNOCY=2 --coarsen FNOCX=2``. Skipped, with a message, without xarray or a NetCDF
engine.
"""

import sys

try:
    import xarray as xr
except ImportError:
    print("xarray is not installed: skipping this example (pip install xarray scipy)")
    sys.exit(0)

import sda

if len(sys.argv) != 3:
    sys.exit(__doc__)
path, output = sys.argv[1:]
try:
    ds = xr.open_dataset(path)
except (ValueError, ImportError) as e:
    print(f"no NetCDF engine for xarray ({e}): skipping (pip install scipy or netcdf4)")
    sys.exit(0)
winds = ds[["UWND", "VWND"]].isel(FNOCY=slice(0, 72)).coarsen(FNOCY=2, FNOCX=2).mean()
data = sda.Data.from_xarray(winds, window=8, stride=1, split_by_time=[0.8, 0.1, 0.1])
print(data.summary)
data.save(output)
print(f"→ {output}")
