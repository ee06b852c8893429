"""Samples as an ``xarray.Dataset`` with the coordinates of the data (``as_xarray=True``).

The layout (coordinates, variables, attributes, missing values) comes from the Rust library,
the same one that writes ``sda assimilate --output x.nc``; the Dataset is decoded as
``xarray.open_dataset`` decodes that file (CF times become dates where their units allow).
"""

import numpy as np


def dataset(x, layout):
    """The Dataset of samples ``x`` ``(S, L, *state)`` laid out by ``layout``."""
    try:
        import xarray as xr
    except ImportError as e:
        raise ImportError("as_xarray=True needs xarray: pip install xarray") from e
    coords = {
        c["name"]: (c["name"], np.asarray(c["values"], dtype=np.float64), dict(c["attributes"]))
        for c in layout["coordinates"]
    }
    s, l = x.shape[:2]
    flat = x.reshape(s, l, -1)
    data_vars = {}
    for f in layout["fields"]:
        v = np.array(flat[..., f["offset"] : f["offset"] + f["len"]], dtype=np.float32)
        if f["missing"]:
            v[..., f["missing"]] = np.nan
        shape = [len(coords[d][1]) for d in f["dims"]]
        data_vars[f["name"]] = (f["dims"], v.reshape(shape), dict(f["attributes"]))
    raw = xr.Dataset(data_vars, coords=coords, attrs=dict(layout["attributes"]))
    return xr.decode_cf(raw)
