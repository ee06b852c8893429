"""Colorado monthly station temperatures: minimum and maximum at 376 stations, 1895-1997,
62 % missing.

    pip install rdata            # reads R data files without R (xarray optional)
    python python/examples/colorado.py COMONTHLYMET_RDA OUTPUT [--window 12] [--stride 3]

COMONTHLYMET_RDA is ``data/COmonthlyMet.rda`` of Debian's ``r-cran-fields`` (the R package
fields' Colorado data: ``CO.tmax``, ``CO.tmin`` and ``CO.ppt``, 103 years x 12 months x 376
stations, ``CO.loc`` their longitude and latitude, ``CO.id`` and ``CO.names``);
``scripts/real-data.sh`` unpacks it under ``target/real-data/fields``. This script fetches
nothing. Stations are named by their id (names repeat); months are stamped on their first
day. It writes the data folder OUTPUT, keeping the windows with missing values and their
masks.
"""

import argparse

import numpy as np

import rdata

from stations_common import station_record

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("rda")
p.add_argument("output")
p.add_argument("--window", type=int, default=12)
p.add_argument("--stride", type=int, default=3)
p.add_argument("--variables", default="tmin,tmax", help="of tmin, tmax, ppt")
p.add_argument("--numpy", action="store_true", help="Data.from_record even with xarray")
a = p.parse_args()

co = rdata.conversion.convert(rdata.parser.parse_file(a.rda))
years = np.asarray(co["CO.years"], dtype=int)
values = {}
for v in a.variables.split(","):
    x = np.asarray(co[f"CO.{v}"], dtype=float)  # (years, 12, stations)
    values[v] = x.reshape(len(years) * 12, x.shape[2])
months = np.arange(f"{years[0]}-01", f"{years[-1] + 1}-01", dtype="datetime64[M]")
times = months.astype("datetime64[D]")
loc = co["CO.loc"]
ids = [str(i).strip() for i in co["CO.id"]]
missing = np.mean([np.isnan(x).mean() for x in values.values()])
print(f"{a.rda}: {', '.join(values)} at {len(ids)} stations, {len(times)} months "
      f"{times[0]}..{times[-1]}, {100 * missing:.1f} % missing")
data = station_record(
    values,
    times,
    ids,
    np.asarray(loc["lat"]),
    np.asarray(loc["lon"]),
    window=a.window,
    stride=a.stride,
    split=[0.8, 0.1, 0.1],
    use_xarray=not a.numpy,
    units={"tmin": "degC", "tmax": "degC", "ppt": "mm"},
)
print(data.summary)
data.save(a.output)
print(f"→ {a.output}")
