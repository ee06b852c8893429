"""German rural background PM10: daily means at 70 stations, 1998-2009, about half missing.

    pip install rdata            # reads R data files without R (xarray optional)
    python python/examples/pm10.py AIR_RDA OUTPUT [--window 8] [--stride 4]

AIR_RDA is ``data/air.rda`` of Debian's ``r-cran-spacetime`` (the R package spacetime's
``air`` data: ``air``, a 70 x 4383 matrix of PM10 in ug/m3, ``dates`` and ``stations``,
SpatialPoints of longitude and latitude); ``scripts/real-data.sh`` unpacks it under
``target/real-data/spacetime``. This script fetches nothing. It writes the data folder OUTPUT
(``sda train --data OUTPUT``), keeping the windows with missing values and their masks
(``{train,valid,test}-observed.npy``).
"""

import argparse

import numpy as np

from stations_common import convert, r_objects, station_record

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("air_rda")
p.add_argument("output")
p.add_argument("--window", type=int, default=8)
p.add_argument("--stride", type=int, default=4)
p.add_argument("--numpy", action="store_true", help="Data.from_record even with xarray")
a = p.parse_args()

objs = r_objects(a.air_rda)
air = objs["air"]  # REAL with dim (stations, days) and dimnames (station ids, NULL)
dim = [int(v) for v in np.asarray(air.attributes.value[0].value)]
pm10 = np.asarray(air.value, dtype=float).reshape(dim, order="F")  # R is column-major
names = [str(n) for n in convert(air.attributes.value[1].value[0])[0]]
days = np.asarray(convert(objs["dates"]), dtype="int64")  # R Date: days since 1970-01-01
times = np.datetime64("1970-01-01", "D") + days
coords = np.asarray(convert(objs["stations"]).coords)  # (70, 2): longitude, latitude
print(f"{a.air_rda}: PM10 at {dim[0]} stations on {dim[1]} days {times[0]}..{times[-1]}, "
      f"{100 * np.isnan(pm10).mean():.1f} % missing")
data = station_record(
    {"PM10": pm10.T},
    times,
    names,
    coords[:, 1],
    coords[:, 0],
    window=a.window,
    stride=a.stride,
    split=[0.8, 0.1, 0.1],
    use_xarray=not a.numpy,
    units={"PM10": "ug/m3"},
)
print(data.summary)
data.save(a.output)
print(f"→ {a.output}")
