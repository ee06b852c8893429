"""Conversion of an xarray object to the arrays of ``sda.Data.from_record`` (used by
``sda.Data.from_xarray``; xarray is imported only here, and only when that is called)."""

import numpy as np

_LAT = ("lat", "latitude")
_LON = ("lon", "longitude")


def _xarray():
    try:
        import xarray
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "sda.Data.from_xarray needs xarray (pip install xarray); without it, "
            "sda.Data.from_record takes numpy arrays"
        ) from e
    return xarray


def _time_dim(ds, first, time):
    if time is not None:
        if time not in first.dims:
            dims = ", ".join(map(str, first.dims))
            raise ValueError(f"time: '{time}' is not a dimension of {first.name} ({dims})")
        return time
    for d in first.dims:
        if d in ds.coords and np.issubdtype(ds[d].dtype, np.datetime64):
            return d
    for d in first.dims:
        if str(d).lower() in ("time", "t"):
            return d
    raise ValueError(
        f"time: cannot tell which dimension of {first.name} is time; name it with time="
    )


def _named(ds, dim, names):
    for k in list(ds.coords) + list(ds.data_vars):
        v = ds[k]
        if v.dims == (dim,) and str(k).lower() in names:
            return v
    return None


def _has_time(ds, k):
    """Whether data variable ``k`` has a dimension of datetime64 values or named ``time``."""
    dims = ds[k].dims
    dated = any(d in ds.coords and np.issubdtype(ds[d].dtype, np.datetime64) for d in dims)
    return dated or "time" in dims


def record_arguments(obj, variables=None, time=None):
    """The keyword arguments of ``from_record`` for ``obj`` (a Dataset or DataArray)."""
    xr = _xarray()
    if isinstance(obj, xr.DataArray):
        obj = obj.to_dataset(name=obj.name if obj.name is not None else "x")
    if not isinstance(obj, xr.Dataset):
        raise TypeError(f"obj: expected an xarray.Dataset or DataArray, got {type(obj).__name__}")
    ds = obj
    if variables is None:
        if time is None:
            variables = [k for k in ds.data_vars if _has_time(ds, k)]
        else:
            variables = [k for k in ds.data_vars if time in ds[k].dims]
        if not variables:
            raise ValueError(
                "variables: no data variable has a time dimension; name them with variables="
            )
    missing = [v for v in variables if v not in ds.data_vars]
    if missing:
        has = ", ".join(map(str, ds.data_vars))
        raise ValueError(f"variables: no variable {missing[0]!r} (the dataset has: {has})")
    first = ds[variables[0]]
    tdim = _time_dim(ds, first, time)
    space = [d for d in first.dims if d != tdim]
    for v in variables:
        if set(ds[v].dims) != set(first.dims):
            raise ValueError(
                f"variables: {v} has dimensions {ds[v].dims}, {first.name} has {first.dims}"
            )
    values = {
        str(v): np.asarray(ds[v].transpose(tdim, *space).values, dtype=np.float64)
        for v in variables
    }
    t = ds[tdim] if tdim in ds.coords else None
    time_units = calendar = None
    if t is None:
        times = np.arange(first.sizes[tdim], dtype=np.float64)
    elif np.issubdtype(t.dtype, np.datetime64):
        times = t.values
    elif t.dtype == object:  # cftime dates of a non-standard calendar
        num, time_units, calendar = xr.coding.times.encode_cf_datetime(
            t.values, calendar=t.encoding.get("calendar")
        )
        times = np.asarray(num, dtype=np.float64)
    else:
        times = np.asarray(t.values, dtype=np.float64)
        time_units = t.attrs.get("units", t.encoding.get("units"))
        calendar = t.attrs.get("calendar", t.encoding.get("calendar"))
    coords, units = {}, {}
    for d in space:
        if d in ds.coords and np.issubdtype(ds[d].dtype, np.number):
            coords[str(d)] = np.asarray(ds[d].values, dtype=np.float64)
            if "units" in ds[d].attrs:
                units[str(d)] = str(ds[d].attrs["units"])
        else:
            coords[str(d)] = np.arange(first.sizes[d], dtype=np.float64)
    for v in variables:
        if "units" in ds[v].attrs:
            units[str(v)] = str(ds[v].attrs["units"])
    stations = None
    if len(space) == 1:
        d = space[0]
        lat, lon = _named(ds, d, _LAT), _named(ds, d, _LON)
        if lat is not None and lon is not None:
            names = None
            for k in list(ds.coords) + list(ds.data_vars):
                v = ds[k]
                if v.dims == (d,) and v.dtype.kind in "USO":
                    names = [str(x) for x in v.values]
                    break
            if names is None:
                index = ds[d].values if d in ds.coords else range(first.sizes[d])
                names = [str(x) for x in index]
            stations = {
                "name": names,
                "lat": np.asarray(lat.values, dtype=np.float64),
                "lon": np.asarray(lon.values, dtype=np.float64),
            }
    return {
        "values": values,
        "time": times,
        "time_name": str(tdim),
        "time_units": time_units,
        "calendar": calendar,
        "coords": coords,
        "stations": stations,
        "units": units,
        "origin": f"xarray.{type(obj).__name__}",
    }
