"""What the station examples share: reading R data files with PyPI's ``rdata`` and
building a data folder from a station record (with xarray when installed, else numpy)."""

import warnings

import numpy as np

import sda


def r_objects(path):
    """The top-level objects of an R data file (``.rda``), unconverted, by name."""
    import rdata

    obj = rdata.parser.parse_file(path).object
    out = {}
    while obj is not None and obj.info.type.name == "LIST":
        out[obj.tag.value.value.decode()] = obj.value[0]
        obj = obj.value[1] if len(obj.value) > 1 else None
    return out


def convert(obj):
    """One R object as Python (numpy arrays, namespaces for S4 objects)."""
    from rdata.conversion import DEFAULT_CLASS_MAP, SimpleConverter

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # classes without a constructor come back as namespaces
        return SimpleConverter(DEFAULT_CLASS_MAP).convert(obj)


def station_record(values, times, names, lat, lon, *, window, stride, split, units=None,
                   use_xarray=True):
    """A data set of a station network: ``values`` a dict of ``(T, D)`` arrays by variable
    (NaN where missing), ``times`` datetime64, the D stations' names, latitudes and
    longitudes; missing values kept (``gaps="keep"``). With xarray (when installed and
    ``use_xarray``) through an ``xarray.Dataset``, else from the numpy arrays; both give the
    same data set."""
    xr = None
    if use_xarray:
        try:
            import xarray as xr
        except ImportError:
            pass
    if xr is not None:
        ds = xr.Dataset(
            {k: (("time", "station"), v, {"units": (units or {}).get(k, "")}) for k, v in values.items()},
            coords={
                "time": times,
                "station": np.asarray(names),
                "lat": ("station", np.asarray(lat, dtype=float)),
                "lon": ("station", np.asarray(lon, dtype=float)),
            },
        )
        print(f"with xarray {xr.__version__}: Data.from_xarray")
        return sda.Data.from_xarray(ds, window=window, stride=stride, split_by_time=split, gaps="keep")
    print("without xarray: Data.from_record")
    return sda.Data.from_record(
        values,
        time=times,
        stations={"name": list(names), "lat": lat, "lon": lon},
        units=units,
        window=window,
        stride=stride,
        split_by_time=split,
        gaps="keep",
    )
